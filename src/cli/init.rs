//! `init` and `generate-ed25519-keys`: create a network directory and keys.

use crate::config::{self, NetDir};
use crate::keys::PrivateKey;
use anyhow::{bail, Context, Result};

/// `meshd init NAME [--port N]`.
pub fn init(netdir: &NetDir, name: &str, port: Option<u16>, address: Option<&str>) -> Result<i32> {
    if !config::valid_node_name(name) {
        bail!("'{name}' is not a valid node name: use letters, digits and _ only");
    }
    if let Some(a) = address {
        a.parse::<config::HostAddress>()
            .map_err(|e| anyhow::anyhow!("--address {a}: {e}"))?;
    }
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let line = format!("Ed25519PublicKey = {}", key.public());
    config::init_netdir(netdir, name, port, &line)?;
    eprintln!("Generating Ed25519 key pair:");
    let key_path = netdir.default_private_key_file();
    key.save(&key_path)
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

/// `meshd generate-ed25519-keys`: a new key; the old one is kept as ed25519_key.priv.old.
pub fn generate_keys(netdir: &NetDir) -> Result<i32> {
    let server = config::load_server_config(netdir)?;
    let key_path = server.private_key_file.clone();
    if key_path.exists() {
        let old = key_path.with_extension("priv.old");
        let bytes = std::fs::read(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        config::write_atomic(&old, &bytes, 0o600)
            .with_context(|| format!("cannot write {}", old.display()))?;
        eprintln!("Old key saved as {}", old.display());
    }
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    key.save(&key_path)
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    let host = netdir.host_file(&server.name);
    let text = std::fs::read_to_string(&host).unwrap_or_default();
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let var = l
                .trim_start()
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap_or("");
            !var.eq_ignore_ascii_case("Ed25519PublicKey")
        })
        .collect();
    let line = format!("Ed25519PublicKey = {}", key.public());
    kept.push(&line);
    let mut out = kept.join("\n");
    out.push('\n');
    config::write_atomic(&host, out.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", host.display()))?;
    eprintln!(
        "Generated a new Ed25519 key pair; public key written to {}",
        host.display()
    );
    eprintln!("Other nodes need the new hosts/{} file.", server.name);
    Ok(0)
}
