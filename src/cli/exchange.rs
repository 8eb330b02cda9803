//! `export`, `export-all`, `import`, `exchange`, `exchange-all`: host files handed between
//! nodes as text, in tinc's format: each file preceded by `Name = NODE` (its own `Name` lines
//! left out), files separated by a line of `#`, 63 `-` and `#`.

use crate::config::edit::local_node_name;
use crate::config::write::{write_atomic, write_new_atomic};
use crate::config::{parse_config_text, parse_host_config, NetDir};
use anyhow::{Context, Result};
use meshd_core::name::NodeName;
use std::io::{BufRead, Write};

/// The line between two exported host files.
const SEPARATOR: &str = "#---------------------------------------------------------------#";

/// `NODE`'s host file as exported: `Name = NODE`, then the file without its `Name` lines.
fn export_one(netdir: &NetDir, node: &NodeName) -> Result<String> {
    let path = netdir.host_file(node);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("Could not open configuration file {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let name_lines: Vec<usize> = parse_config_text(&text, &path)?
        .iter()
        .filter(|l| l.is("Name"))
        .map(|l| l.line)
        .collect();
    let mut out = format!("Name = {node}\n");
    for (idx, line) in text.lines().enumerate() {
        if !name_lines.contains(&(idx + 1)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Every host file's node name in `hosts/`, sorted.
fn host_names(netdir: &NetDir) -> Result<Vec<NodeName>> {
    let dir = netdir.hosts_dir();
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            if let Ok(name) = NodeName::new(name) {
                if entry.path().is_file() {
                    names.push(name);
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The text `export` (this node) or `export-all` (every host file) prints.
fn export_text(netdir: &NetDir, all: bool) -> Result<String> {
    // tinc's words when there is no server configuration file at all.
    let conf = netdir.config_file();
    if let Err(e) = std::fs::File::open(&conf) {
        anyhow::bail!(
            "Could not open {}: {}",
            conf.display(),
            super::network::strerror(&e)
        );
    }
    let names = if all {
        host_names(netdir)?
    } else {
        vec![local_node_name(netdir)?]
    };
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(SEPARATOR);
            out.push('\n');
        }
        out.push_str(&export_one(netdir, name)?);
    }
    Ok(out)
}

/// `export` / `export-all`.
pub fn export(netdir: &NetDir, all: bool) -> Result<i32> {
    let text = export_text(netdir, all)?;
    super::print_bytes(text.as_bytes())
}

/// One host file being read from the input.
struct Incoming {
    name: NodeName,
    text: String,
}

/// Writes one imported host file; returns whether it was written.
fn store(netdir: &NetDir, file: Incoming, force: bool) -> Result<bool> {
    let path = netdir.host_file(&file.name);
    // The blank line before a separator belongs to no file.
    let file = Incoming {
        text: format!("{}\n", file.text.trim_end()),
        name: file.name,
    };
    let checked =
        parse_config_text(&file.text, &path).and_then(|l| parse_host_config(&file.name, l));
    if let Err(e) = checked {
        eprintln!("Not importing {}: {e}", file.name);
        return Ok(false);
    }
    let written = if force {
        write_atomic(&path, file.text.as_bytes(), 0o644)
    } else {
        write_new_atomic(&path, file.text.as_bytes(), 0o644)
    };
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "Host configuration file {} already exists, skipping.",
                file.name
            );
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// The node name of a `Name = NODE` line, if `line` is one. As tinc's import: `Name`
/// spelled so, then `=` (blanks around it optional), then the first word; `name = x`,
/// `Name x` and other lines are data (junk before the first `Name` line).
fn name_line(line: &str) -> Option<String> {
    let rest = line.strip_prefix("Name")?.trim_start();
    let value = rest.strip_prefix('=')?.split_whitespace().next()?;
    Some(value.to_string())
}

/// tinc's PATH_MAX: a host file path this long cannot be created.
const PATH_MAX: usize = 4096;

/// `import`: reads exported host files from `input` and writes those not in `hosts/` yet.
pub fn import_from(netdir: &NetDir, input: impl BufRead, force: bool) -> Result<i32> {
    let hosts = netdir.hosts_dir();
    if !hosts.is_dir() {
        std::fs::create_dir_all(&hosts)
            .with_context(|| format!("cannot create {}", hosts.display()))?;
    }
    let mut current: Option<Incoming> = None;
    let mut skipping = false;
    let mut junk_reported = false;
    let mut count = 0usize;
    for line in input.lines() {
        let line = line.context("cannot read stdin")?;
        if line.trim_end() == SEPARATOR {
            continue;
        }
        if let Some(name) = name_line(&line) {
            if let Some(file) = current.take() {
                count += usize::from(store(netdir, file, force)?);
            }
            let path = hosts.join(&name);
            if path.as_os_str().len() >= PATH_MAX {
                eprintln!("Filename too long: {}", path.display());
                return Ok(1);
            }
            let Ok(name) = NodeName::new(&name) else {
                eprintln!("Invalid Name in input!");
                return Ok(1);
            };
            skipping = !force && netdir.host_file(&name).exists();
            if skipping {
                eprintln!("Host configuration file {name} already exists, skipping.");
            } else {
                current = Some(Incoming {
                    name,
                    text: String::new(),
                });
            }
            continue;
        }
        match &mut current {
            Some(file) => {
                file.text.push_str(&line);
                file.text.push('\n');
            }
            None if skipping || line.trim().is_empty() => {}
            None => {
                if !junk_reported {
                    eprintln!("Junk at the beginning of the input, ignoring.");
                    junk_reported = true;
                }
            }
        }
    }
    if let Some(file) = current.take() {
        count += usize::from(store(netdir, file, force)?);
    }
    if count == 0 {
        eprintln!("No host configuration files imported.");
        return Ok(1);
    }
    eprintln!("Imported {count} host configuration files.");
    // tincd reads hosts/NODE when NODE connects; meshd reads hosts/ at start and reload, so a
    // running daemon is told to reload (silently, as after `set`).
    super::config_cmd::tell_daemon_to_reload(netdir);
    Ok(0)
}

/// `import` from stdin.
pub fn import(netdir: &NetDir, force: bool) -> Result<i32> {
    import_from(netdir, std::io::stdin().lock(), force)
}

/// `exchange` / `exchange-all`: export to stdout, then import from stdin.
pub fn exchange(netdir: &NetDir, all: bool, force: bool) -> Result<i32> {
    let text = export_text(netdir, all)?;
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    import(netdir, force)
}
