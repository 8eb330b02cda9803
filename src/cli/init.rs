//! `init` and `generate-ed25519-keys`: create a network directory and keys.

use crate::config::{self, NetDir, NodeName};
use crate::keys::PrivateKey;
use anyhow::{Context, Result};

/// `meshd init NAME [--port N]`.
pub fn init(netdir: &NetDir, name: &str, port: Option<u16>, address: Option<&str>) -> Result<i32> {
    let name = &NodeName::new(name)?;
    if let Some(a) = address {
        a.parse::<config::HostAddress>()
            .map_err(|e| anyhow::anyhow!("--address {a}: {e}"))?;
    }
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let line = format!("Ed25519PublicKey = {}", key.public());
    config::init_netdir(netdir, name, port, &line)?;
    eprintln!("Generating Ed25519 key pair:");
    let key_path = netdir.default_private_key_file();
    crate::keyfile::save_private_key(&key, &key_path)
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    if let Some(a) = address {
        config::write::append_lines(&netdir.host_file(name), &format!("Address = {a}\n"), 0o644)
            .with_context(|| format!("cannot write {}", netdir.host_file(name).display()))?;
    }
    eprintln!("Done.");
    eprintln!(
        "Network directory {} is ready for node {name}.\nAdd peers' host files to {}, a ConnectTo line to {}, then: meshd -c {} start",
        netdir.root.display(),
        netdir.hosts_dir().display(),
        netdir.config_file().display(),
        netdir.root.display()
    );
    Ok(0)
}

/// `meshd generate-ed25519-keys`: a new key. As tinc: in `ed25519_key.priv` every line of the
/// old `ED25519 PRIVATE KEY` block is commented out with `#` in place and the new block
/// appended (the file stays 0600); in this node's host file the old `Ed25519PublicKey` lines
/// and `ED25519 PUBLIC KEY` blocks are commented out the same way and the new line appended.
/// tinc's "Warning: old key(s) found and disabled." is printed for each file that had one.
/// Every file is replaced atomically (write, fsync, rename): a crash leaves the old or the new
/// version, never a torn one. The loader skips `#` lines, so both tinc's and meshd's files load.
pub fn generate_keys(netdir: &NetDir) -> Result<i32> {
    let server = config::load_server_config(netdir)?;
    let key_path = server.private_key_file.clone();
    let host = netdir.host_file(&server.name);
    let host_text = read_if_exists(&host)?;
    let key_text = read_if_exists(&key_path)?;
    eprintln!("Generating Ed25519 key pair:");
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let (mut out, disabled) = disable_old_blocks(&key_text, "-----BEGIN ED25519 PRIVATE KEY-----");
    crate::keys::wipe(&mut key_text.into_bytes());
    if disabled {
        eprintln!("Warning: old key(s) found and disabled.");
    }
    let pem = key.to_pem_string();
    out.push_str(&pem);
    crate::keys::wipe(&mut pem.into_bytes());
    let mut bytes = out.into_bytes();
    let written = config::write_atomic(&key_path, &bytes, 0o600);
    crate::keys::wipe(&mut bytes);
    written.with_context(|| format!("cannot write {}", key_path.display()))?;
    let (mut out, disabled) = disable_old_public_keys(&host_text);
    if disabled {
        eprintln!("Warning: old key(s) found and disabled.");
    }
    out.push_str(&format!("Ed25519PublicKey = {}\n", key.public()));
    config::write_atomic(&host, out.as_bytes(), host_file_mode(&host))
        .with_context(|| format!("cannot write {}", host.display()))?;
    eprintln!("Done.");
    eprintln!("Other nodes need the new hosts/{} file.", server.name);
    Ok(0)
}

/// The text of `path`, empty if it does not exist.
fn read_if_exists(path: &std::path::Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The mode of an existing host file (kept when it is rewritten), else 0644.
fn host_file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644)
}

/// `text` with every line of each PEM block that starts with `begin` (a whole line, leading
/// whitespace ignored) prefixed by `#`, ending in a newline (unless empty); and whether any
/// line was disabled.
fn disable_old_blocks(text: &str, begin: &str) -> (String, bool) {
    disable_lines(text, |_| false, |line| line == begin)
}

/// `text` with every `Ed25519PublicKey` line and every line of an `ED25519 PUBLIC KEY` PEM
/// block prefixed by `#`, ending in a newline (unless empty), and whether any line was
/// disabled: what tinc does to the host file before it appends a new key.
pub(super) fn disable_old_public_keys(text: &str) -> (String, bool) {
    disable_lines(
        text,
        |line| {
            line.split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .is_some_and(|var| var.eq_ignore_ascii_case("Ed25519PublicKey"))
        },
        |line| line.starts_with("-----BEGIN ") && line.contains(" ED25519 "),
    )
}

/// Prefixes with `#` the lines `single` accepts and the PEM blocks (through their `-----END `
/// line) whose first line `block` accepts; both get the line without leading whitespace.
fn disable_lines(
    text: &str,
    single: impl Fn(&str) -> bool,
    block: impl Fn(&str) -> bool,
) -> (String, bool) {
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_block = false;
    let mut disabled = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !in_block && block(trimmed.trim_end()) {
            in_block = true;
        }
        if in_block || single(trimmed) {
            out.push('#');
            disabled = true;
        }
        out.push_str(line);
        out.push('\n');
        if in_block && trimmed.starts_with("-----END ") {
            in_block = false;
        }
    }
    (out, disabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_keys_are_commented_out_like_tinc() {
        let text = "Port = 655\nEd25519PublicKey = AAA\n  ed25519publickey=BBB\n\
                    -----BEGIN ED25519 PUBLIC KEY-----\nabc\n-----END ED25519 PUBLIC KEY-----\n\
                    -----BEGIN RSA PUBLIC KEY-----\nrsa\n-----END RSA PUBLIC KEY-----\n\
                    Subnet = 10.0.0.1\n#Ed25519PublicKey = CCC";
        assert_eq!(
            disable_old_public_keys(text).0,
            "Port = 655\n#Ed25519PublicKey = AAA\n#  ed25519publickey=BBB\n\
             #-----BEGIN ED25519 PUBLIC KEY-----\n#abc\n#-----END ED25519 PUBLIC KEY-----\n\
             -----BEGIN RSA PUBLIC KEY-----\nrsa\n-----END RSA PUBLIC KEY-----\n\
             Subnet = 10.0.0.1\n#Ed25519PublicKey = CCC\n"
        );
        assert_eq!(disable_old_public_keys(""), (String::new(), false));
        // Ed25519PublicKeyFile is another variable; Ed25519PublicKeys is not ours either.
        assert_eq!(
            disable_old_public_keys("Ed25519PublicKeyFile = x\n"),
            ("Ed25519PublicKeyFile = x\n".to_string(), false)
        );
    }

    #[test]
    fn old_private_key_block_is_commented_out_in_place() {
        let text =
            "-----BEGIN ED25519 PRIVATE KEY-----\nAAAA\nBBBB\n-----END ED25519 PRIVATE KEY-----\n";
        let (out, disabled) = disable_old_blocks(text, "-----BEGIN ED25519 PRIVATE KEY-----");
        assert!(disabled);
        assert_eq!(
            out,
            "#-----BEGIN ED25519 PRIVATE KEY-----\n#AAAA\n#BBBB\n#-----END ED25519 PRIVATE KEY-----\n"
        );
        // Already disabled blocks stay as they are.
        let (again, disabled) = disable_old_blocks(&out, "-----BEGIN ED25519 PRIVATE KEY-----");
        assert!(!disabled);
        assert_eq!(again, out);
    }

    #[test]
    fn a_key_file_with_a_disabled_block_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ed25519_key.priv");
        let old = PrivateKey::generate(&mut rand::rngs::OsRng);
        let new = PrivateKey::generate(&mut rand::rngs::OsRng);
        let (mut text, _) =
            disable_old_blocks(&old.to_pem_string(), "-----BEGIN ED25519 PRIVATE KEY-----");
        text.push_str(&new.to_pem_string());
        config::write_atomic(&path, text.as_bytes(), 0o600).unwrap();
        let loaded = crate::keyfile::load_private_key(&path).unwrap();
        assert_eq!(loaded.public(), new.public());
    }
}
