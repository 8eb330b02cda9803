//! `meshd edit FILE` (tinc's `edit`): opens the server configuration file, a host file or a
//! script in `$VISUAL`, `$EDITOR` or `vi`; then checks that the directory still loads and
//! tells a running daemon to reload.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::config_cmd::tell_daemon_to_reload;
use crate::config::edit::check_candidate;
use crate::config::NetDir;
use meshd_core::name::NodeName;

/// The scripts of the network directory `edit` opens by name (as tinc).
const SCRIPTS: &[&str] = &[
    "tinc-up",
    "tinc-down",
    "subnet-up",
    "subnet-down",
    "host-up",
    "host-down",
];

/// What `edit` opens, and whether the daemon loads it as configuration (checked afterwards).
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Config(PathBuf),
    Script(PathBuf),
}

/// `FILE` as tinc takes it: `tinc.conf` (or `meshd.conf`: the server file, whichever name it
/// has), a script name, `NODE` or `hosts/NODE`, `NODE-up`/`NODE-down` (or with `hosts/`).
fn target(netdir: &NetDir, file: &str) -> Option<Target> {
    if file == "tinc.conf" || file == "meshd.conf" {
        return Some(Target::Config(netdir.config_file()));
    }
    if SCRIPTS.contains(&file) {
        return Some(Target::Script(netdir.script(file)));
    }
    let host = file.strip_prefix("hosts/").unwrap_or(file);
    for event in ["up", "down"] {
        if let Some(node) = host.strip_suffix(&format!("-{event}")) {
            if NodeName::new(node).is_ok() {
                return Some(Target::Script(netdir.host_script(node, event)));
            }
        }
    }
    let node = NodeName::new(host).ok()?;
    Some(Target::Config(netdir.host_file(&node)))
}

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi` (run by `sh`, so it may carry
/// arguments, e.g. `code --wait`).
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

pub fn edit(netdir: &NetDir, file: &str) -> Result<i32> {
    let Some(target) = target(netdir, file) else {
        eprintln!(
            "Invalid configuration filename: {file} (tinc.conf, meshd.conf, {}, NODE, \
             hosts/NODE, NODE-up or NODE-down)",
            SCRIPTS.join(", ")
        );
        return Ok(1);
    };
    let (Target::Config(path) | Target::Script(path)) = &target;
    let existed = path.exists();
    let editor = editor();
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .with_context(|| format!("cannot run the editor {editor}"))?;
    if !status.success() {
        eprintln!(
            "The editor ({editor}) failed ({status}); {} not checked, daemon not reloaded.",
            path.display()
        );
        return Ok(1);
    }
    if !path.exists() {
        return Ok(0);
    }
    match &target {
        Target::Script(path) if !existed => {
            // A new script: executable, as the daemon and fsck want it.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
        Target::Script(_) => {}
        Target::Config(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match check_candidate(netdir, path, &text) {
                Ok(warnings) => {
                    for w in warnings {
                        eprintln!("Warning: {w}");
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!(
                        "The running daemon (if any) was not reloaded; fix it with: meshd edit {file}"
                    );
                    return Ok(1);
                }
            }
        }
    }
    tell_daemon_to_reload(netdir);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_as_tinc_takes_them() {
        let nd = NetDir::new("/n");
        let t = |f: &str| target(&nd, f);
        assert_eq!(t("tinc-up"), Some(Target::Script("/n/tinc-up".into())));
        assert_eq!(t("alpha"), Some(Target::Config("/n/hosts/alpha".into())));
        assert_eq!(
            t("hosts/alpha"),
            Some(Target::Config("/n/hosts/alpha".into()))
        );
        assert_eq!(
            t("alpha-up"),
            Some(Target::Script("/n/hosts/alpha-up".into()))
        );
        assert_eq!(
            t("hosts/alpha-down"),
            Some(Target::Script("/n/hosts/alpha-down".into()))
        );
        assert_eq!(t("../etc/passwd"), None);
        assert_eq!(t("hosts/"), None);
        assert_eq!(t("a.b"), None);
    }
}
