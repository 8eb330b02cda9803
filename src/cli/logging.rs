//! Log setup: tracing to stderr or to a log file, level from -d or MESHD_LOG.

use anyhow::{Context, Result};
use std::path::Path;
use tracing_subscriber::EnvFilter;

/// tinc-like debug level to a tracing filter: 0 warn, 1 info (default), 2 debug, 3+ trace.
pub fn filter_for(level: Option<u8>) -> EnvFilter {
    if let Ok(spec) = std::env::var("MESHD_LOG") {
        if let Ok(f) = EnvFilter::try_new(spec) {
            return f;
        }
    }
    let l = match level.unwrap_or(1) {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    EnvFilter::new(format!("meshd={l},warn"))
}

/// Logs to stderr.
pub fn to_stderr(level: Option<u8>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter_for(level))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logs to a file (appending).
pub fn to_file(path: &Path, level: Option<u8>) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter_for(level))
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}
