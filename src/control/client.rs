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
    /// No pidfile: nothing was started there (`PATH: reason`, the directory).
    #[error("Could not open pid file {0} (meshd is not running in {1})")]
    NoPidfile(String, String),
}

/// An I/O error as tinc prints it (strerror: `No such file or directory`), without Rust's
/// ` (os error 2)`.
fn os_error(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// Sends a streaming request (`Log`): after the daemon's `Ok`, hands every line to `on_line`
/// until the daemon closes the connection or `on_line` returns false.
pub fn stream(
    pidfile: &Path,
    socket: &Path,
    req: &Request,
    mut on_line: impl FnMut(&str) -> bool,
) -> Result<()> {
    let mut reader = open_stream(pidfile, socket, req)?;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                if !on_line(&line) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e).context("reading from the control socket"),
        }
    }
}

/// Sends a streaming request and waits for the daemon's `Ok`; returns the
/// connection, with no read timeout, positioned at the stream.
fn open_stream(pidfile: &Path, socket: &Path, req: &Request) -> Result<BufReader<UnixStream>> {
    let (reader, answer) = send(pidfile, socket, req, Duration::from_secs(5))?;
    match answer {
        Response::Ok => {}
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer: {other:?}"),
    }
    reader
        .get_ref()
        .set_read_timeout(None)
        .context("control socket")?;
    Ok(reader)
}

/// Sends a streaming request whose stream is bytes (`Pcap`): after the daemon's `Ok`, copies
/// everything to `out` until the daemon closes the connection or `out` refuses (a closed pipe).
pub fn stream_bytes(
    pidfile: &Path,
    socket: &Path,
    req: &Request,
    out: &mut impl std::io::Write,
) -> Result<()> {
    let mut reader = open_stream(pidfile, socket, req)?;
    let mut buf = [0u8; 65536];
    loop {
        let n = match std::io::Read::read(&mut reader, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading from the control socket"),
        };
        if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
}

/// Sends one request to the daemon of the network whose pidfile and socket are given.
pub fn request(
    pidfile: &Path,
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<Response> {
    send(pidfile, socket, req, timeout).map(|(_, answer)| answer)
}

/// Connects, greets, sends `req`, reads the first answer line.
fn send(
    pidfile: &Path,
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<(BufReader<UnixStream>, Response)> {
    let dir = pidfile
        .parent()
        .unwrap_or(Path::new("."))
        .display()
        .to_string();
    // tinc's words first ("Could not open pid file PATH: No such file or directory"), so what
    // a tinc user greps for is there.
    let text = std::fs::read_to_string(pidfile).map_err(|e| {
        ConnectError::NoPidfile(
            format!("{}: {}", pidfile.display(), os_error(&e)),
            dir.clone(),
        )
    })?;
    let pid = PidFile::parse(&text).ok_or_else(|| ConnectError::NotRunning(dir.clone()))?;
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
    let answer =
        serde_json::from_str(&answer).map_err(|e| anyhow!("bad answer from the daemon: {e}"))?;
    Ok((reader, answer))
}
