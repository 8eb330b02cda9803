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

/// `meshd generate-ed25519-keys`: a new key. The old key file is kept as
/// `ed25519_key.priv.old` (0600); in this node's host file the old `Ed25519PublicKey` lines and
/// `ED25519 PUBLIC KEY` blocks are commented out with `#` (as tinc's `disable_old_keys` does) and
/// the new line appended. Every file is replaced atomically (write, fsync, rename): a crash
/// leaves the old or the new version, never a torn one.
pub fn generate_keys(netdir: &NetDir) -> Result<i32> {
    let server = config::load_server_config(netdir)?;
    let key_path = server.private_key_file.clone();
    let host = netdir.host_file(&server.name);
    let host_text = match std::fs::read_to_string(&host) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", host.display())),
    };
    if key_path.exists() {
        let old = key_path.with_extension("priv.old");
        let bytes = std::fs::read(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        config::write_atomic(&old, &bytes, 0o600)
            .with_context(|| format!("cannot write {}", old.display()))?;
        eprintln!("Old key saved as {}", old.display());
    }
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    crate::keyfile::save_private_key(&key, &key_path)
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    let mut out = disable_old_public_keys(&host_text);
    out.push_str(&format!("Ed25519PublicKey = {}\n", key.public()));
    config::write_atomic(&host, out.as_bytes(), host_file_mode(&host))
        .with_context(|| format!("cannot write {}", host.display()))?;
    eprintln!(
        "Generated a new Ed25519 key pair; public key written to {}",
        host.display()
    );
    eprintln!("Other nodes need the new hosts/{} file.", server.name);
    Ok(0)
}

/// The mode of an existing host file (kept when it is rewritten), else 0644.
fn host_file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644)
}

/// `text` with every `Ed25519PublicKey` line and every line of an `ED25519 PUBLIC KEY` PEM
/// block prefixed by `#`, ending in a newline (unless empty): what tinc's `disable_old_keys`
/// does before it appends a new key.
fn disable_old_public_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_block = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !in_block && trimmed.starts_with("-----BEGIN ") && trimmed.contains(" ED25519 ") {
            in_block = true;
        }
        let var = trimmed
            .split(|c: char| c == '=' || c.is_whitespace())
            .next()
            .unwrap_or("");
        let disable = in_block || var.eq_ignore_ascii_case("Ed25519PublicKey");
        if disable {
            out.push('#');
        }
        out.push_str(line);
        out.push('\n');
        if in_block && trimmed.starts_with("-----END ") {
            in_block = false;
        }
    }
    out
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
            disable_old_public_keys(text),
            "Port = 655\n#Ed25519PublicKey = AAA\n#  ed25519publickey=BBB\n\
             #-----BEGIN ED25519 PUBLIC KEY-----\n#abc\n#-----END ED25519 PUBLIC KEY-----\n\
             -----BEGIN RSA PUBLIC KEY-----\nrsa\n-----END RSA PUBLIC KEY-----\n\
             Subnet = 10.0.0.1\n#Ed25519PublicKey = CCC\n"
        );
        assert_eq!(disable_old_public_keys(""), "");
        // Ed25519PublicKeyFile is another variable; Ed25519PublicKeys is not ours either.
        assert_eq!(
            disable_old_public_keys("Ed25519PublicKeyFile = x\n"),
            "Ed25519PublicKeyFile = x\n"
        );
    }
}
