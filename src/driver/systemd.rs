//! systemd's notify protocol (`sd_notify`): `READY=1` once the daemon serves, `WATCHDOG=1`
//! keepalives from the packet loop, `RELOADING=1` / `STOPPING=1`, `STATUS=` lines — datagrams
//! to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The connection to systemd, when run under a `Type=notify` unit.
pub struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` / `$WATCHDOG_USEC` / `$WATCHDOG_PID`; `None` outside systemd.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_string_lossy().into_owned();
        let target = if let Some(name) = path.strip_prefix('@') {
            abstract_addr(name)?
        } else {
            SocketAddr::from_pathname(&path).ok()?
        };
        let socket = match UnixDatagram::unbound() {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(%err, "cannot create the socket for systemd notifications");
                return None;
            }
        };
        let watchdog = watchdog_from_env();
        Some(Notifier {
            socket,
            target,
            watchdog,
        })
    }

    /// How often to send `WATCHDOG=1` (half of `WatchdogSec`), if systemd asked for it.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (several `KEY=VALUE` lines); failures are logged at debug level.
    pub fn send(&self, message: &str) {
        if let Err(err) = self.socket.send_to_addr(message.as_bytes(), &self.target) {
            tracing::debug!(%err, "systemd notification failed");
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).ok()
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &str) -> Option<SocketAddr> {
    None
}

/// Half of `$WATCHDOG_USEC`, if set for this process (`$WATCHDOG_PID` absent or ours).
fn watchdog_from_env() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// `MONOTONIC_USEC=` for `RELOADING=1` (systemd ≥ 253 wants it with `Type=notify-reload`).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            target: SocketAddr::from_pathname(&path).unwrap(),
            watchdog: None,
        };
        n.send("READY=1\nSTATUS=ok");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");
        assert!(monotonic_usec() > 0);
    }
}
