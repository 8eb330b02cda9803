//! tinc's address cache: `cache/NODE` holds the address NODE was last reached at, so a node
//! whose `Address` lines are gone (or stale) can still be found. `init` and `join` make
//! `cache/`; the daemon writes a node's endpoint when a session with a node it connects to
//! (`ConnectTo`) comes up, and an invitee's address when its join is accepted; at start and
//! reload the cached address is tried after the host file's `Address` lines.

use super::{write_atomic, HostAddress, NetDir};
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// The cache directory of a network directory.
pub fn dir(netdir: &NetDir) -> PathBuf {
    netdir.root.join("cache")
}

/// Makes `cache/` (0755) if it is missing.
pub fn create_dir(netdir: &NetDir) -> io::Result<()> {
    let d = dir(netdir);
    match DirBuilder::new().mode(0o755).create(&d) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => Ok(()),
        r => r,
    }
}

/// Records `address` (`HOST [PORT]`) as where `node` was reached.
pub fn store(netdir: &NetDir, node: &str, address: &str) -> io::Result<()> {
    create_dir(netdir)?;
    let text = format!("# Written by meshd: where {node} was last reached.\nAddress = {address}\n");
    write_atomic(&dir(netdir).join(node), text.as_bytes(), 0o644)
}

/// The cached addresses of `node` (none when there is no usable file).
pub fn load(netdir: &NetDir, node: &str) -> Vec<HostAddress> {
    let Ok(text) = std::fs::read_to_string(dir(netdir).join(node)) else {
        return Vec::new();
    };
    let Ok(lines) = super::parse_config_text(&text, &dir(netdir).join(node)) else {
        return Vec::new();
    };
    lines
        .iter()
        .filter(|l| l.variable.eq_ignore_ascii_case("Address"))
        .filter_map(|l| l.value.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_addresses_load_back() {
        let tmp = tempfile::tempdir().unwrap();
        let nd = NetDir::new(tmp.path().to_path_buf());
        assert!(load(&nd, "beta").is_empty());
        store(&nd, "beta", "127.0.0.1 6555").unwrap();
        let got = load(&nd, "beta");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].port, Some(6555));
    }
}
