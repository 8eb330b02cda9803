//! The CLI side of the control socket: connect, authenticate, ask, read the answer.

use super::pidfile::PidFile;
use super::{Greeting, Request, Response, CONTROL_VERSION};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing is running (no pidfile, or nobody listens).
    #[error("meshd is not running in {0} (no answer on its control socket)")]
    NotRunning(String),
}

/// Sends one request to the daemon of the network whose pidfile and socket are given.
pub fn request(
    pidfile: &Path,
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<Response> {
    let dir = pidfile
        .parent()
        .unwrap_or(Path::new("."))
        .display()
        .to_string();
    let pid = PidFile::read(pidfile).map_err(|_| ConnectError::NotRunning(dir.clone()))?;
    let stream = UnixStream::connect(socket).map_err(|_| ConnectError::NotRunning(dir.clone()))?;
    stream
        .set_read_timeout(Some(timeout))
        .context("control socket")?;
    stream
        .set_write_timeout(Some(timeout))
        .context("control socket")?;
    let mut writer = stream.try_clone().context("control socket")?;
    let greeting = Greeting {
        cookie: pid.cookie,
        version: CONTROL_VERSION,
    };
    let mut line = serde_json::to_string(&greeting)?;
    line.push('\n');
    line.push_str(&serde_json::to_string(req)?);
    line.push('\n');
    writer
        .write_all(line.as_bytes())
        .context("writing to the control socket")?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    let n = reader
        .read_line(&mut answer)
        .context("reading from the control socket")?;
    if n == 0 {
        bail!("the daemon closed the control connection (wrong cookie or version?)");
    }
    serde_json::from_str(&answer).map_err(|e| anyhow!("bad answer from the daemon: {e}"))
}
