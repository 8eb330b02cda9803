//! `meshd fsck`'s checks of where variables stand, in tinc's words: a host variable in
//! `tinc.conf`, a server variable in a host file, a single-valued variable given more than
//! once in one file, and whether `tinc.conf` names this node.

use crate::config::known::{self, TINC_HOST_VARIABLES, TINC_SERVER_VARIABLES};
use crate::config::parse::{lookup, read_config_file, ConfigLine};
use crate::config::NetDir;
use meshd_core::name::NodeName;
use std::path::Path;

/// Whether `conf` has a `Name` line with a valid node name (or `$VAR`, read at start).
pub fn has_valid_name(conf: &Path) -> bool {
    let Ok(lines) = read_config_file(conf) else {
        return false;
    };
    lookup(&lines, "Name")
        .is_some_and(|l| l.value.starts_with('$') || NodeName::new(&l.value).is_ok())
}

/// Which file a variable belongs in, for tinc's two warnings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Server,
    Host,
}

/// Warns (as tinc's fsck) about misplaced and repeated variables in `tinc.conf` and in every
/// host file.
pub fn check_placement(netdir: &NetDir, conf: &Path) {
    if let Ok(lines) = read_config_file(conf) {
        check_file(conf, &lines, Place::Server);
    }
    let Ok(entries) = std::fs::read_dir(netdir.hosts_dir()) else {
        return;
    };
    let mut hosts: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| NodeName::new(n).is_ok())
        })
        .collect();
    hosts.sort();
    for host in hosts {
        if let Ok(lines) = read_config_file(&host) {
            check_file(&host, &lines, Place::Host);
        }
    }
}

fn only_in(var: &str, place: Place) -> bool {
    let (mine, other) = match place {
        Place::Server => (TINC_SERVER_VARIABLES, TINC_HOST_VARIABLES),
        Place::Host => (TINC_HOST_VARIABLES, TINC_SERVER_VARIABLES),
    };
    mine.contains(&var) && !other.contains(&var)
}

fn check_file(file: &Path, lines: &[ConfigLine], place: Place) {
    let mut seen: Vec<&'static str> = Vec::new();
    for line in lines {
        let Some(var) = known::canonical(&line.variable) else {
            continue; // the loader warns about unknown variables
        };
        match place {
            Place::Server if only_in(var, Place::Host) => eprintln!(
                "WARNING: host variable {var} found in server config {}",
                line.location()
            ),
            Place::Host if only_in(var, Place::Server) => eprintln!(
                "WARNING: server variable {var} found in host config {}",
                line.location()
            ),
            _ => {}
        }
        if known::is_multi_valued(var) || seen.contains(&var) {
            continue;
        }
        let count = lines
            .iter()
            .filter(|l| l.variable.eq_ignore_ascii_case(var))
            .count();
        if count > 1 {
            seen.push(var);
            eprintln!(
                "WARNING: multiple instances of variable {var} in {} (the first is used)",
                file.display()
            );
        }
    }
}
