//! `meshd network`: lists the networks under the base directory as tinc does (`.` for the base
//! itself when it holds a configuration, then every subdirectory that does). `network NET`
//! switches command mode's network (see `shell`); elsewhere it is `-n NET`.

use crate::config::netdir::{confdir_base, MESHD_CONF, TINC_CONF};
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

/// `meshd network [NET]` outside command mode.
pub fn network(net: Option<&str>) -> Result<i32> {
    if let Some(net) = net {
        eprintln!(
            "network {net} switches the network of command mode (meshd with no command); \
             on the command line use -n {net}"
        );
        return Ok(1);
    }
    let base = confdir_base();
    let entries = match std::fs::read_dir(&base) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "Could not read directory {}: {}",
                base.display(),
                strerror(&e)
            );
            return Ok(1);
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && has_config(&e.path()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    if has_config(&base) {
        names.insert(0, ".".to_string());
    }
    for n in names {
        println!("{n}");
    }
    Ok(0)
}
