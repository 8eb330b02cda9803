//! `meshd fsck`: checks a network directory as tinc's fsck does — the configuration loads, the
//! private key is there, readable by its owner only and matches the own host file's public key,
//! scripts are executable — and says how to fix each problem (`--force` fixes the key file's
//! mode, the own public key and script modes). Silent with exit 0 on a healthy directory, as
//! tinc; exit 1 while an error is left.

use crate::config::{load_all_hosts, load_server_config, NetDir, ServerConfig};
use crate::keys::{KeyError, PrivateKey};
use anyhow::Result;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Scripts in the network directory (tinc's, then meshd's).
const SCRIPTS: &[&str] = &[
    "tinc-up",
    "tinc-down",
    "host-up",
    "host-down",
    "subnet-up",
    "subnet-down",
    "invitation-created",
    "invitation-accepted",
    "vip-up",
    "vip-down",
];

/// What fsck found.
#[derive(Default)]
struct Report {
    errors: usize,
}

impl Report {
    fn error(&mut self, msg: impl std::fmt::Display) {
        eprintln!("ERROR: {msg}");
        self.errors += 1;
    }
    fn warning(&self, msg: impl std::fmt::Display) {
        eprintln!("WARNING: {msg}");
    }
    fn fixed(&self, msg: impl std::fmt::Display) {
        eprintln!("Fixed: {msg}");
    }
}

/// `meshd fsck`.
pub fn fsck(netdir: &NetDir, force: bool) -> Result<i32> {
    let mut r = Report::default();
    let conf = netdir.config_file();
    if let Err(e) = std::fs::metadata(&conf) {
        r.error(format!(
            "cannot read {}: {}",
            conf.display(),
            super::network::strerror(&e)
        ));
        eprintln!(
            "No tinc configuration found. Create a new one with:\n\nmeshd -c {} init NAME",
            netdir.root.display()
        );
        return Ok(1);
    }
    let server = match load_server_config(netdir) {
        Ok(s) => s,
        Err(e) => {
            r.error(e);
            if !super::fsck_vars::has_valid_name(&conf) {
                r.error("meshd cannot run without a valid Name.");
            }
            return Ok(1);
        }
    };
    super::fsck_vars::check_placement(netdir, &conf);
    for w in &server.warnings {
        r.warning(w);
    }
    let (_, host_errors) = load_all_hosts(netdir);
    for e in host_errors {
        r.warning(format!("{e} (this host is skipped)"));
    }
    if let Some(key) = check_private_key(&server, force, &mut r) {
        check_public_key(netdir, &server, &key, force, &mut r)?;
    }
    check_scripts(netdir, &server, force, &r);
    Ok(i32::from(r.errors > 0))
}

/// The private key, if it loads (after fixing its mode with `force`).
fn check_private_key(server: &ServerConfig, force: bool, r: &mut Report) -> Option<PrivateKey> {
    let path = &server.private_key_file;
    if !path.exists() {
        r.error(format!(
            "No Ed25519 private key found: {} does not exist; create one with meshd -c DIR \
             generate-ed25519-keys",
            path.display()
        ));
        return None;
    }
    match crate::keyfile::load_private_key(path) {
        Ok(k) => Some(k),
        Err(KeyError::PermissionsTooOpen { mode, .. }) if force => {
            if let Err(e) =
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            {
                r.error(format!("cannot chmod 600 {}: {e}", path.display()));
                return None;
            }
            r.fixed(format!("{} is now mode 0600", path.display()));
            match crate::keyfile::load_private_key(path) {
                Ok(k) => Some(k),
                Err(e) => {
                    r.error(e);
                    None
                }
            }
        }
        Err(e @ KeyError::PermissionsTooOpen { .. }) => {
            // tinc only warns; meshd's daemon refuses such a key (README Differences).
            r.error(format!(
                "{e} (unsafe file permissions: meshd start refuses such a key; or meshd fsck \
                 --force)"
            ));
            None
        }
        Err(e) => {
            r.error(format!("No Ed25519 private key found: {e}"));
            None
        }
    }
}

/// The own host file's `Ed25519PublicKey` must be the private key's.
fn check_public_key(
    netdir: &NetDir,
    server: &ServerConfig,
    key: &PrivateKey,
    force: bool,
    r: &mut Report,
) -> Result<()> {
    let host = netdir.host_file(&server.name);
    let want = key.public().to_tinc_base64();
    // tinc's words for a missing or unusable key, then what exactly is wrong.
    const NO_KEY: &str = "No (usable) public Ed25519 key found for this host";
    let problem = match &server.ed25519_public_key {
        _ if !host.exists() => format!("own host file {} does not exist", host.display()),
        None => format!("{NO_KEY}: {} has no Ed25519PublicKey", host.display()),
        Some(text) => match crate::keys::PublicKey::from_tinc_base64(text) {
            Ok(k) if k.to_tinc_base64() == want => return Ok(()),
            Ok(_) => format!(
                "the Ed25519PublicKey in {} does not match the private key {}",
                host.display(),
                server.private_key_file.display()
            ),
            Err(e) => format!("{NO_KEY}: {}: Ed25519PublicKey: {e}", host.display()),
        },
    };
    if !force {
        let msg =
            format!("{problem}; it should say: Ed25519PublicKey = {want} (or meshd fsck --force)");
        // As tinc: a missing or unreadable own public key is a warning (the daemon runs on
        // its private key; peers need the line); a different key is an error.
        if problem.starts_with(NO_KEY) {
            r.warning(msg);
        } else {
            r.error(msg);
        }
        return Ok(());
    }
    // As tinc: old key lines and blocks are commented out, the key appended as a PEM block
    // (meshd reads it as it reads the one-line form).
    r.warning(&problem);
    let text = std::fs::read_to_string(&host).unwrap_or_default();
    let (mut out, _) = super::init::disable_old_public_keys(&text);
    out.push_str(&key.public().to_pem_string());
    match crate::config::write::write_atomic(&host, out.as_bytes(), 0o644) {
        Ok(()) => eprintln!("Wrote Ed25519 public key to {}.", host.display()),
        Err(e) => r.error(format!("cannot write {}: {e}", host.display())),
    }
    Ok(())
}

/// Scripts that exist but would not run.
fn check_scripts(netdir: &NetDir, server: &ServerConfig, force: bool, r: &Report) {
    if server.scripts_interpreter.is_some() {
        return; // run through the interpreter: no executable bit needed
    }
    let ext = &server.scripts_extension;
    let mut paths: Vec<std::path::PathBuf> = SCRIPTS
        .iter()
        .map(|s| netdir.script(&format!("{s}{ext}")))
        .collect();
    if let Ok(entries) = std::fs::read_dir(netdir.hosts_dir()) {
        let mut hosts: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    let n = n.strip_suffix(ext.as_str()).unwrap_or(n);
                    n.ends_with("-up") || n.ends_with("-down")
                })
            })
            .collect();
        hosts.sort();
        paths.extend(hosts);
    }
    for path in paths {
        check_script(&path, force, r);
    }
    unknown_scripts(netdir, ext, r);
}

/// `*-up` / `*-down` files in the network directory that no event runs (tinc's warning).
fn unknown_scripts(netdir: &NetDir, ext: &str, r: &Report) {
    let Ok(entries) = std::fs::read_dir(&netdir.root) else {
        return;
    };
    let mut unknown: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            let stem = n.strip_suffix(ext).unwrap_or(n);
            let base = stem
                .strip_suffix("-up")
                .or_else(|| stem.strip_suffix("-down"));
            base.is_some_and(|b| !["tinc", "host", "subnet", "vip"].contains(&b))
        })
        .collect();
    unknown.sort();
    for (i, name) in unknown.iter().enumerate() {
        r.warning(format!(
            "Unknown script {}/{name} found.",
            netdir.root.display()
        ));
        if i == 0 {
            eprintln!(
                "The only scripts in {} executed by meshd are:\n{}.",
                netdir.root.display(),
                SCRIPTS.join(", ")
            );
        }
    }
}

fn check_script(path: &Path, force: bool, r: &Report) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_file() || mode & 0o100 != 0 {
        return;
    }
    if force {
        r.warning(format!(
            "{} is not executable: meshd cannot read and execute it",
            path.display()
        ));
        // Executable wherever it is readable.
        let new = mode | 0o100 | ((mode & 0o044) >> 2);
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(new)) {
            Ok(()) => r.fixed(format!("{} is now executable", path.display())),
            Err(e) => r.warning(format!("cannot chmod +x {}: {e}", path.display())),
        }
    } else {
        r.warning(format!(
            "{} is not executable: meshd cannot read and execute it (chmod +x {0}, or meshd \
             fsck --force)",
            path.display()
        ));
    }
}
