//! The daemon side of the control socket: accepts connections (a bounded
//! number at once), checks the cookie, and hands each request to the main loop.

use crate::control::{Greeting, Request, Response, CONTROL_VERSION};
use crate::node::Limit;
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most control connections served at once. Beyond it a new connection is
/// closed at once (counted): a client looping on `meshd dump` cannot pile up
/// tasks, and the ones being served finish within their 5 s timeouts.
pub const MAX_CONTROL_CONNECTIONS: usize = 32;
/// Most `meshd log` streams at once (each also holds a connection slot);
/// beyond it the client gets an error.
pub const MAX_LOG_STREAMS: usize = 4;
/// The longest line (greeting or request) read from a control connection; a
/// longer one closes the connection, unread beyond this, before its cookie is
/// even checked. The largest real request (`set` with a long value) is a few
/// hundred bytes.
pub const MAX_CONTROL_LINE: usize = 64 * 1024;

/// How full the control socket's bounds are, shared with its tasks.
#[derive(Debug)]
pub struct ControlStats {
    connections: Arc<Semaphore>,
    connections_refused: AtomicU64,
    log_streams: Arc<Semaphore>,
    log_streams_refused: AtomicU64,
    longest_line: AtomicU64,
    lines_refused: AtomicU64,
}

impl ControlStats {
    fn new() -> ControlStats {
        ControlStats {
            connections: Arc::new(Semaphore::new(MAX_CONTROL_CONNECTIONS)),
            connections_refused: AtomicU64::new(0),
            log_streams: Arc::new(Semaphore::new(MAX_LOG_STREAMS)),
            log_streams_refused: AtomicU64::new(0),
            longest_line: AtomicU64::new(0),
            lines_refused: AtomicU64::new(0),
        }
    }

    /// `control_connections`, `log_streams` and `control_line_bytes` (the
    /// longest line read so far) for `dump limits`.
    pub fn limits(&self) -> Vec<Limit> {
        vec![
            Limit::refusing(
                "control_connections",
                MAX_CONTROL_CONNECTIONS - self.connections.available_permits(),
                MAX_CONTROL_CONNECTIONS,
                self.connections_refused.load(Ordering::Relaxed),
            ),
            Limit::refusing(
                "log_streams",
                MAX_LOG_STREAMS - self.log_streams.available_permits(),
                MAX_LOG_STREAMS,
                self.log_streams_refused.load(Ordering::Relaxed),
            ),
            Limit::refusing(
                "control_line_bytes",
                self.longest_line.load(Ordering::Relaxed) as usize,
                MAX_CONTROL_LINE,
                self.lines_refused.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// A request waiting for the main loop, with the way to answer it.
pub type Pending = (Request, oneshot::Sender<Response>);

/// Binds the control socket (mode 0600) and serves it on a background task.
pub fn spawn(path: &Path, cookie: String) -> Result<(mpsc::Receiver<Pending>, Arc<ControlStats>)> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot listen on control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    let (tx, rx) = mpsc::channel(64);
    let path: PathBuf = path.to_path_buf();
    let stats = Arc::new(ControlStats::new());
    let shared = stats.clone();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
                        let n = shared.connections_refused.fetch_add(1, Ordering::Relaxed);
                        if n.is_power_of_two() || n == 0 {
                            tracing::warn!(
                                refused = n + 1,
                                "{MAX_CONTROL_CONNECTIONS} control connections open, closing a new one"
                            );
                        }
                        drop(stream);
                        continue;
                    };
                    let tx = tx.clone();
                    let cookie = cookie.clone();
                    let stats = shared.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        if let Err(err) = serve(stream, &cookie, tx, &stats).await {
                            tracing::debug!(%err, "control connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(socket = %path.display(), %err, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((rx, stats))
}

async fn serve(
    stream: UnixStream,
    cookie: &str,
    tx: mpsc::Sender<Pending>,
    stats: &ControlStats,
) -> Result<()> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let timeout = std::time::Duration::from_secs(5);
    let Ok(Some(first)) = tokio::time::timeout(timeout, read_line(&mut lines, stats)).await else {
        return Ok(());
    };
    let Ok(greeting) = serde_json::from_str::<Greeting>(&first) else {
        return Ok(());
    };
    if !bool::from(greeting.cookie.as_bytes().ct_eq(cookie.as_bytes()))
        || greeting.version != CONTROL_VERSION
    {
        tracing::warn!("control connection with a wrong cookie or version closed");
        return Ok(());
    }
    let Ok(Some(line)) = tokio::time::timeout(timeout, read_line(&mut lines, stats)).await else {
        return Ok(());
    };
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Log { level }) => match stats.log_streams.clone().try_acquire_owned() {
            Ok(_stream_permit) => return stream_log(lines, write, level).await,
            Err(_) => {
                stats.log_streams_refused.fetch_add(1, Ordering::Relaxed);
                Response::Error {
                    message: format!("{MAX_LOG_STREAMS} log streams are open already"),
                }
            }
        },
        // `meshd pcap`: a stream like `log`, served in driver/pcap.rs.
        Ok(Request::Pcap { snaplen }) => match stats.log_streams.clone().try_acquire_owned() {
            Ok(_stream_permit) => {
                let ok = serde_json::to_string(&Response::Ok)? + "\n";
                return super::pcap::stream(lines.into_inner(), write, ok.as_bytes(), snaplen)
                    .await;
            }
            Err(_) => {
                stats.log_streams_refused.fetch_add(1, Ordering::Relaxed);
                Response::Error {
                    message: format!("{MAX_LOG_STREAMS} log or pcap streams are open already"),
                }
            }
        },
        Ok(req) => {
            let (reply_tx, reply_rx) = oneshot::channel();
            if tx.send((req, reply_tx)).await.is_err() {
                return Ok(());
            }
            match reply_rx.await {
                Ok(r) => with_this_control_connection(r, fd),
                Err(_) => return Ok(()),
            }
        }
        Err(e) => Response::Error {
            message: format!("unknown request: {e}"),
        },
    };
    let mut out = serde_json::to_string(&response)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    write.shutdown().await?;
    Ok(())
}

/// `dump connections` lists, as tinc's, the control connection that asks (its socket).
fn with_this_control_connection(response: Response, fd: i32) -> Response {
    use crate::node::status::{ConnectionStatus, CONNECTION_CONTROL, CONTROL_CONNECTION_NAME};
    match response {
        Response::Connections { mut connections } => {
            connections.push(ConnectionStatus {
                name: CONTROL_CONNECTION_NAME.into(),
                address: "localhost".into(),
                port: 0,
                session: u32::try_from(fd).unwrap_or(0),
                status: CONNECTION_CONTROL,
                initiator: false,
                age_secs: 0,
            });
            Response::Connections { connections }
        }
        other => other,
    }
}

/// One line of at most [`MAX_CONTROL_LINE`] bytes, without its newline;
/// `None` at end of input, on an error, or (counted) when the line is longer.
async fn read_line(reader: &mut ControlReader, stats: &ControlStats) -> Option<String> {
    let mut line = Vec::new();
    let mut bounded = (&mut *reader).take(MAX_CONTROL_LINE as u64 + 1);
    let n = bounded.read_until(b'\n', &mut line).await.ok()?;
    if n == 0 {
        return None;
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.len() > MAX_CONTROL_LINE {
        let refused = stats.lines_refused.fetch_add(1, Ordering::Relaxed);
        if refused.is_power_of_two() || refused == 0 {
            tracing::warn!(
                refused = refused + 1,
                "control connection sent a line over {MAX_CONTROL_LINE} bytes; closed"
            );
        }
        return None;
    }
    stats
        .longest_line
        .fetch_max(line.len() as u64, Ordering::Relaxed);
    String::from_utf8(line).ok()
}

type ControlReader = BufReader<tokio::net::unix::OwnedReadHalf>;

/// `meshd log`: `Ok`, then every log line until the client goes away.
async fn stream_log(
    mut lines: ControlReader,
    mut write: tokio::net::unix::OwnedWriteHalf,
    level: Option<u8>,
) -> Result<()> {
    let Some(mut rx) = crate::logs::subscribe(level) else {
        let mut out = serde_json::to_string(&Response::Error {
            message: "this daemon has no log stream".into(),
        })?;
        out.push('\n');
        write.write_all(out.as_bytes()).await?;
        return Ok(());
    };
    let mut out = serde_json::to_string(&Response::Ok)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Ok(line) => write.write_all(line.as_bytes()).await?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    write.write_all(format!("[meshd log: {n} lines skipped, the reader was too slow]\n").as_bytes()).await?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // The client closing its side ends the stream.
            r = lines.fill_buf() => match r {
                Ok([]) | Err(_) => return Ok(()),
                Ok(buf) => {
                    let n = buf.len();
                    lines.consume(n);
                }
            },
        }
    }
}
