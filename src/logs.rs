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

fn init<W>(writer: W, ansi: bool, level: Option<u8>)
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
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(StreamWriter)
                .with_ansi(false),
        )
        .try_init();
}

/// Logs to stderr.
pub fn to_stderr(level: Option<u8>) {
    init(std::io::stderr, true, level);
}

/// Logs to a file (appending).
pub fn to_file(path: &Path, level: Option<u8>) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    init(Mutex::new(file), false, level);
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
