//! The pidfile: `PID COOKIE HOST port PORT` on one line, mode 0600, as tinc writes it.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// What the pidfile says. `Debug` does not print the cookie.
#[derive(Clone, PartialEq, Eq)]
pub struct PidFile {
    /// Daemon process ID.
    pub pid: u32,
    /// 64 uppercase hex characters; the control socket's password.
    pub cookie: String,
    /// Listening address, loopback-mapped.
    pub host: String,
    /// Listening UDP port.
    pub port: u16,
}

impl PidFile {
    /// Parses the one-line format.
    pub fn parse(text: &str) -> Option<PidFile> {
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse().ok()?;
        let cookie = it.next()?.to_string();
        let host = it.next()?.to_string();
        if it.next()? != "port" {
            return None;
        }
        let port = it.next()?.parse().ok()?;
        Some(PidFile {
            pid,
            cookie,
            host,
            port,
        })
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<PidFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        match PidFile::parse(&text) {
            Some(p) => Ok(p),
            None => bail!("{}: not a meshd pidfile", path.display()),
        }
    }

    /// Writes it with mode 0600 (it holds the control cookie), atomically: a temporary dotfile
    /// beside it, fsync, rename, so a reader never sees half a line.
    pub fn write(&self, path: &Path) -> Result<()> {
        let line = format!(
            "{} {} {} port {}\n",
            self.pid, self.cookie, self.host, self.port
        );
        crate::config::write_atomic(path, line.as_bytes(), 0o600)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

impl std::fmt::Debug for PidFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PidFile")
            .field("pid", &self.pid)
            .field("cookie", &"<secret>")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

/// A fresh random cookie: 32 bytes as 64 uppercase hex characters.
pub fn new_cookie() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode_upper(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meshd.pid");
        let p = PidFile {
            pid: 42,
            cookie: new_cookie(),
            host: "127.0.0.1".into(),
            port: 655,
        };
        p.write(&path).unwrap();
        assert_eq!(PidFile::read(&path).unwrap(), p);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(p.cookie.len(), 64);
        // Rewriting replaces it whole and leaves no temporary file.
        p.write(&path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Debug never shows the cookie (it grants control of the daemon).
        let dbg = format!("{p:?} {p:#?}");
        assert!(!dbg.contains(&p.cookie), "{dbg}");
        assert!(dbg.contains("<secret>"), "{dbg}");
    }

    #[test]
    fn garbage_is_not_a_pidfile() {
        assert!(PidFile::parse("").is_none());
        assert!(PidFile::parse("12 abc 127.0.0.1 655").is_none());
        assert!(PidFile::parse("x abc 127.0.0.1 port 655").is_none());
    }
}
