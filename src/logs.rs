//! The process's log pipeline: tracing to stderr or a file, with a level that can be changed
//! at run time (`meshd debug N`) and a copy of every line for `meshd log` clients, each of
//! which may ask for its own level (`meshd log 3`) without changing what the file gets.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// Lines kept for a slow `meshd log` client before it misses some.
const STREAM_BACKLOG: usize = 1024;

struct Control {
    /// What the output (stderr, file, syslog) gets.
    filter: reload::Handle<EnvFilter, Registry>,
    /// What the copy for `meshd log` clients gets: the most any of them asked for.
    copy_filter: reload::Handle<EnvFilter, Registry>,
    level: Mutex<u8>,
    /// The level each open `meshd log LEVEL` stream asked for, by stream.
    wanted: Mutex<BTreeMap<u64, u8>>,
    next_stream: std::sync::atomic::AtomicU64,
    /// Each line with its level (0 warnings and errors, 1 info, 2 debug, 3 trace).
    stream: broadcast::Sender<(u8, String)>,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// tinc-like debug level to a tracing filter: 0 warn, 1 info (default), 2 debug, 3+ trace.
/// `MESHD_LOG` (a tracing filter) overrides it at startup.
pub fn filter_for(level: Option<u8>) -> EnvFilter {
    if let Ok(spec) = std::env::var("MESHD_LOG") {
        if let Ok(f) = EnvFilter::try_new(spec) {
            return f;
        }
    }
    level_filter(level.unwrap_or(1))
}

fn level_filter(level: u8) -> EnvFilter {
    let l = match level {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    EnvFilter::new(format!("meshd={l},warn"))
}

/// Copies each formatted line to `meshd log` clients (only while one listens).
#[derive(Clone)]
struct StreamWriter;

/// One event's text and level, sent when the formatter is done with it.
struct LineBuffer(u8, Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if let Some(c) = CONTROL.get() {
            if c.stream.receiver_count() > 0 && !self.1.is_empty() {
                let _ = c
                    .stream
                    .send((self.0, String::from_utf8_lossy(&self.1).into_owned()));
            }
        }
    }
}

/// A tracing level as a meshd level.
fn level_of(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR | tracing::Level::WARN => 0,
        tracing::Level::INFO => 1,
        tracing::Level::DEBUG => 2,
        tracing::Level::TRACE => 3,
    }
}

impl<'a> MakeWriter<'a> for StreamWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(1, Vec::new())
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineBuffer {
        LineBuffer(level_of(meta.level()), Vec::new())
    }
}

fn init<W>(writer: W, ansi: bool, time: bool, level: Option<u8>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(filter_for(level));
    let (copy_filter, copy_handle) = reload::Layer::new(filter_for(level));
    let (stream, _) = broadcast::channel(STREAM_BACKLOG);
    let _ = CONTROL.set(Control {
        filter: handle,
        copy_filter: copy_handle,
        level: Mutex::new(level.unwrap_or(1)),
        wanted: Mutex::new(BTreeMap::new()),
        next_stream: std::sync::atomic::AtomicU64::new(0),
        stream,
    });
    let copy = tracing_subscriber::fmt::layer()
        .with_writer(StreamWriter)
        .with_ansi(false)
        .with_filter(copy_filter)
        .boxed();
    let main = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    // syslog stamps its own time.
    let main = if time {
        main.with_filter(filter).boxed()
    } else {
        main.without_time().with_filter(filter).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(vec![copy, main])
        .try_init();
}

/// Sends each line to the local syslog socket (`/dev/log`; the journal on systemd machines),
/// facility daemon, severity from the event's level.
struct SyslogWriter {
    socket: std::os::unix::net::UnixDatagram,
}

/// One syslog message under construction.
struct SyslogLine<'a> {
    socket: &'a std::os::unix::net::UnixDatagram,
    severity: u8,
    text: Vec<u8>,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine<'_> {
    fn drop(&mut self) {
        const FACILITY_DAEMON: u8 = 3;
        let text = String::from_utf8_lossy(&self.text);
        let msg = format!(
            "<{}>meshd[{}]: {}",
            FACILITY_DAEMON * 8 + self.severity,
            std::process::id(),
            text.trim_end()
        );
        let _ = self.socket.send(msg.as_bytes());
    }
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogLine<'a>;
    fn make_writer(&'a self) -> SyslogLine<'a> {
        SyslogLine {
            socket: &self.socket,
            severity: 6,
            text: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine<'a> {
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        SyslogLine {
            socket: &self.socket,
            severity,
            text: Vec::new(),
        }
    }
}

/// Logs to syslog (`/dev/log`, or `$MESHD_SYSLOG_SOCKET`).
pub fn to_syslog(level: Option<u8>) -> Result<()> {
    let path = std::env::var_os("MESHD_SYSLOG_SOCKET")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/dev/log".into());
    let socket = std::os::unix::net::UnixDatagram::unbound().context("syslog socket")?;
    socket.connect(&path).with_context(|| {
        format!(
            "cannot reach syslog at {} (is a syslog daemon or journald running?)",
            path.display()
        )
    })?;
    init(SyslogWriter { socket }, false, false, level);
    Ok(())
}

/// Logs to stderr.
pub fn to_stderr(level: Option<u8>) {
    init(std::io::stderr, true, true, level);
}

/// Logs to a file (appending).
pub fn to_file(path: &Path, level: Option<u8>) -> Result<()> {
    // Absolute, so that a reopen still finds it if the daemon changes directory (-R).
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let file = open_log_file(path)?;
    let log = LOG_FILE.get_or_init(|| LogFile {
        path: path.to_path_buf(),
        file: Mutex::new(file),
    });
    init(log, false, true, level);
    Ok(())
}

/// The log file, reopened by [`reopen_log_file`] (as tincd does on SIGHUP, for log rotation).
struct LogFile {
    path: std::path::PathBuf,
    file: Mutex<std::fs::File>,
}

static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

fn open_log_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))
}

/// One line's writer: the file, locked while the line is written.
struct LogFileGuard<'a>(std::sync::MutexGuard<'a, std::fs::File>);

impl Write for LogFileGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for &'static LogFile {
    type Writer = LogFileGuard<'a>;
    fn make_writer(&'a self) -> LogFileGuard<'a> {
        LogFileGuard(self.file.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Reopens the log file (after `logrotate` moved or deleted it): called on a reload. Logging to
/// stderr or syslog: nothing to do. A file that cannot be reopened: the old one is kept.
pub fn reopen_log_file() -> Result<()> {
    let Some(log) = LOG_FILE.get() else {
        return Ok(());
    };
    let file = open_log_file(&log.path)?;
    *log.file.lock().unwrap_or_else(|e| e.into_inner()) = file;
    Ok(())
}

/// `meshd debug N`: sets the level; returns the previous one.
pub fn set_level(level: u8) -> Result<u8> {
    let c = CONTROL
        .get()
        .ok_or_else(|| anyhow::anyhow!("logging is not set up in this process"))?;
    c.filter
        .reload(level_filter(level))
        .map_err(|e| anyhow::anyhow!("cannot change the log level: {e}"))?;
    let previous = {
        let mut current = c.level.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, level)
    };
    update_copy_filter(c);
    Ok(previous)
}

/// The copy for streams carries the daemon's level or the most a stream asked for.
fn update_copy_filter(c: &Control) {
    let current = *c.level.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = c
        .wanted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .copied()
        .max();
    let filter = match wanted {
        Some(w) if w > current => level_filter(w),
        _ => level_filter(current),
    };
    let _ = c.copy_filter.reload(filter);
}

/// The current level (as set by -d or `meshd debug`).
pub fn level() -> u8 {
    CONTROL
        .get()
        .map(|c| *c.level.lock().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or(1)
}

/// One `meshd log [LEVEL]` client's copy of the log lines: at LEVEL, or at the daemon's level.
pub struct Subscription {
    rx: broadcast::Receiver<(u8, String)>,
    level: Option<u8>,
    id: u64,
}

impl Subscription {
    /// The next line at this stream's level.
    pub async fn recv(&mut self) -> Result<String, broadcast::error::RecvError> {
        loop {
            let (line_level, line) = self.rx.recv().await?;
            let wanted = self.level.unwrap_or_else(level);
            if line_level <= wanted {
                return Ok(line);
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(c) = CONTROL.get() {
            c.wanted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
            update_copy_filter(c);
        }
    }
}

/// Every log line from now on (`meshd log`), at `level` (`meshd log LEVEL`; the lines above
/// the daemon's level are made for this stream only) or at the daemon's level.
pub fn subscribe(level: Option<u8>) -> Option<Subscription> {
    let c = CONTROL.get()?;
    let id = c
        .next_stream
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rx = c.stream.subscribe();
    if let Some(l) = level {
        c.wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, l);
        update_copy_filter(c);
    }
    Some(Subscription { rx, level, id })
}
