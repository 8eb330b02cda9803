//! The process's log pipeline: tracing to stderr or a file, with a level that can be changed
//! at run time (`meshd debug N`) and a copy of every line for `meshd log` clients.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Lines kept for a slow `meshd log` client before it misses some.
const STREAM_BACKLOG: usize = 1024;

struct Control {
    filter: reload::Handle<EnvFilter, Registry>,
    level: Mutex<u8>,
    stream: broadcast::Sender<String>,
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

/// One event's text, sent when the formatter is done with it.
struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if let Some(c) = CONTROL.get() {
            if c.stream.receiver_count() > 0 && !self.0.is_empty() {
                let _ = c.stream.send(String::from_utf8_lossy(&self.0).into_owned());
            }
        }
    }
}

impl<'a> MakeWriter<'a> for StreamWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::new())
    }
}

fn init<W>(writer: W, ansi: bool, time: bool, level: Option<u8>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(filter_for(level));
    let (stream, _) = broadcast::channel(STREAM_BACKLOG);
    let _ = CONTROL.set(Control {
        filter: handle,
        level: Mutex::new(level.unwrap_or(1)),
        stream,
    });
    let copy = tracing_subscriber::fmt::layer()
        .with_writer(StreamWriter)
        .with_ansi(false);
    let main = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter).with(copy);
    // syslog stamps its own time.
    let _ = if time {
        registry.with(main).try_init()
    } else {
        registry.with(main.without_time()).try_init()
    };
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
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    init(Mutex::new(file), false, true, level);
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
    let mut current = c.level.lock().unwrap_or_else(|e| e.into_inner());
    let previous = *current;
    *current = level;
    Ok(previous)
}

/// The current level (as set by -d or `meshd debug`).
pub fn level() -> u8 {
    CONTROL
        .get()
        .map(|c| *c.level.lock().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or(1)
}

/// A copy of every log line from now on (`meshd log`).
pub fn subscribe() -> Option<broadcast::Receiver<String>> {
    CONTROL.get().map(|c| c.stream.subscribe())
}
