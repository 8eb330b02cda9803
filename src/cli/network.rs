//! `meshd network`: lists the networks under the base directory as tinc does (`.` for the base
//! itself when it holds a configuration, then every subdirectory that does, and the tinc
//! networks `-n NET` reaches in tinc's directory). `network NET`
//! switches command mode's network (see `shell`); elsewhere it is `-n NET`.

use crate::config::netdir::{confdir_base, tinc_confdir_base, MESHD_CONF, TINC_CONF};
use anyhow::Result;
use std::path::Path;

/// An I/O error as C's strerror says it (tinc's messages): without Rust's ` (os error N)`.
pub(super) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn has_config(dir: &Path) -> bool {
    dir.join(MESHD_CONF).is_file() || dir.join(TINC_CONF).is_file()
}

/// The subdirectories of a base that hold a configuration.
fn networks_in(entries: std::fs::ReadDir) -> Vec<String> {
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && has_config(&e.path()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}

/// The tinc networks `-n NET` falls back to (see `NetDir::resolve`): subdirectories of
/// tinc's base with `tinc.conf` and no directory of that name under `base`. `None`: no
/// fallback, or tinc's base cannot be read.
fn tinc_networks(base: &Path) -> Option<Vec<String>> {
    let tinc_base = tinc_confdir_base()?;
    let entries = std::fs::read_dir(tinc_base).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(TINC_CONF).is_file() && !base.join(e.file_name()).exists())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect(),
    )
}

/// tinc's check of `network NET`: `Err` is tinc's error (exit 1), `Ok(Some(_))` its warning
/// for a name that works but is unsafe in a shell or on Windows (`foo.<`).
pub(super) fn check_netname(net: &str) -> Result<Option<&'static str>, &'static str> {
    if net == "." {
        return Ok(None);
    }
    // tinc's check_netname(name, false), and meshd's own rule for -n (no `..`).
    let invalid = net.starts_with('.') || net.contains('\\') || !crate::config::valid_netname(net);
    if invalid {
        return Err("Invalid character in netname!");
    }
    // tinc's check_netname(name, true).
    if net.chars().any(|c| " $%<>:`\"|?*".contains(c)) {
        return Ok(Some("Warning: unsafe character in netname!"));
    }
    Ok(None)
}

/// `meshd network [NET]` outside command mode. With NET it does what tinc does there:
/// checks the name (exit 1 when invalid, a warning when unsafe) and switches nothing, since
/// the process ends (exit 0); meshd adds a line saying so.
pub fn network(net: Option<&str>) -> Result<i32> {
    if let Some(net) = net {
        match check_netname(net) {
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
            Ok(warning) => {
                if let Some(w) = warning {
                    eprintln!("{w}");
                }
            }
        }
        eprintln!(
            "network {net} switches the network of command mode (meshd with no command); \
             on the command line use -n {net}"
        );
        return Ok(0);
    }
    let base = confdir_base();
    let mut names = match std::fs::read_dir(&base) {
        Ok(entries) => networks_in(entries),
        // tinc's message; unless tinc's directory has networks `-n` reaches.
        Err(e) => match tinc_networks(&base) {
            Some(names) if !names.is_empty() => names,
            _ => {
                eprintln!(
                    "Could not read directory {}: {}",
                    base.display(),
                    strerror(&e)
                );
                return Ok(1);
            }
        },
    };
    if base.is_dir() {
        names.extend(tinc_networks(&base).unwrap_or_default());
    }
    names.sort();
    if has_config(&base) {
        names.insert(0, ".".to_string());
    }
    for n in names {
        println!("{n}");
    }
    Ok(0)
}
