//! `get`, `set`, `add`, `del` (and `config get|set|add|del|replace|change`): read or change one
//! variable of the server config file or a host file, as tinc 1.1's CLI does.
//!
//! The words after the verb are joined with blanks and read like a config line:
//! `[NODE.]VARIABLE [=] [VALUE]`. Without `NODE.`, tinc's host variables (`Port`, `Address`,
//! `Subnet`, ...) go to the local node's host file and all others to the server config file.
//! A change is checked by loading the directory as `meshd start` would, written atomically, and
//! a running daemon is told to reload.

use crate::config::edit::{check_candidate, edit_config_text, local_node_name, EditAction};
use crate::config::known;
use crate::config::{write_atomic, NetDir};
use crate::control::client::request;
use crate::control::pidfile::PidFile;
use crate::control::{Request, Response};
use anyhow::{Context, Result};
use meshd_core::name::NodeName;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// How long to wait for a running daemon's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the command line asked: `None` is `get`.
pub type Verb = Option<EditAction>;

/// The verb of `config [ACTION] ARGS...`, and the arguments left: no action word means `get`
/// with one word and `set` with more.
pub fn split_config_action(args: &[String]) -> (Verb, &[String]) {
    let Some(first) = args.first() else {
        return (None, args);
    };
    let verb = match first.to_ascii_lowercase().as_str() {
        "get" => None,
        "set" | "replace" | "change" => Some(EditAction::Set),
        "add" => Some(EditAction::Add),
        "del" | "delete" | "remove" | "rm" => Some(EditAction::Del),
        _ => {
            return (
                if args.len() > 1 {
                    Some(EditAction::Set)
                } else {
                    None
                },
                args,
            )
        }
    };
    (verb, &args[1..])
}

/// `[NODE.]VARIABLE [VALUE]` split up.
struct Target {
    node: Option<String>,
    variable: String,
    value: String,
}

/// Joins the words and splits them like a config line; `None` if there is no variable.
fn parse_words(args: &[String]) -> Option<Target> {
    let line = args.join(" ");
    let line = line.trim();
    let end = line.find([' ', '\t', '=']).unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    if name.is_empty() {
        return None;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let value = rest.strip_prefix('=').unwrap_or(rest).trim().to_string();
    let (node, variable) = match name.split_once('.') {
        Some((n, v)) => (Some(n.to_string()), v.to_string()),
        None => (None, name.to_string()),
    };
    Some(Target {
        node,
        variable,
        value,
    })
}

/// Whether `variable` is one of tinc's host variables (those a host file holds).
fn is_host_variable(variable: &str) -> bool {
    known::TINC_HOST_VARIABLES
        .iter()
        .any(|v| v.eq_ignore_ascii_case(variable))
}

/// Runs `get`/`set`/`add`/`del`; returns the exit code.
pub fn config(netdir: &NetDir, verb: Verb, args: &[String], force: bool) -> Result<i32> {
    let Some(t) = parse_words(args) else {
        eprintln!("Invalid number of arguments.");
        return Ok(1);
    };
    let node = match t.node.as_deref().map(NodeName::new) {
        None => None,
        Some(Ok(node)) => Some(node),
        Some(Err(_)) => {
            eprintln!("Invalid name for node.");
            return Ok(1);
        }
    };
    if t.variable.is_empty() {
        eprintln!("Invalid number of arguments.");
        return Ok(1);
    }
    match (verb, t.value.is_empty()) {
        (None, false) => {
            eprintln!("Invalid number of arguments.");
            return Ok(1);
        }
        (Some(EditAction::Set | EditAction::Add), true) => {
            eprintln!("No value for variable given.");
            return Ok(1);
        }
        _ => {}
    }
    let canonical = known::canonical(&t.variable);
    let variable = canonical.map_or_else(|| t.variable.clone(), str::to_string);
    if verb.is_some() && verb != Some(EditAction::Del) {
        if canonical.is_none() {
            if !force {
                eprintln!(
                    "{variable}: is not a known configuration variable! Use --force to use it anyway."
                );
                return Ok(1);
            }
            eprintln!("Warning: {variable} is not a known configuration variable!");
        } else if known::is_obsolete(&variable) {
            if !force {
                eprintln!("{variable} is an obsolete variable! Use --force to use it anyway.");
                return Ok(1);
            }
            eprintln!("Warning: {variable} is an obsolete variable!");
        }
        if canonical.is_some() && t.node.is_some() && !is_host_variable(&variable) {
            if !force {
                eprintln!(
                    "{variable} is not a host configuration variable! Use --force to use it anyway."
                );
                return Ok(1);
            }
            eprintln!("Warning: {variable} is not a host configuration variable!");
        }
    }
    if verb.is_none() && t.node.is_none() && variable == "Port" {
        if let Some(port) = running_port(netdir) {
            println!("{port}");
            return Ok(0);
        }
    }
    let path = match &node {
        Some(node) => netdir.host_file(node),
        None if is_host_variable(&variable) => netdir.host_file(&local_node_name(netdir)?),
        None => netdir.config_file(),
    };
    let value = (!t.value.is_empty()).then_some(t.value.as_str());
    match verb {
        None => get(&path, &variable),
        Some(action) => change(netdir, &path, action, &variable, value, force),
    }
}

/// The port a running daemon recorded in its pidfile, if it answers on its control socket.
fn running_port(netdir: &NetDir) -> Option<u16> {
    let pidfile = netdir.pidfile();
    let answer = request(
        &pidfile,
        &netdir.control_socket(),
        &Request::Pid,
        ASK_TIMEOUT,
    );
    match answer {
        Ok(Response::Pid { .. }) => PidFile::read(&pidfile).ok().map(|p| p.port),
        _ => None,
    }
}

/// `get`: every value of `variable` in `path`, one a line.
fn get(path: &PathBuf, variable: &str) -> Result<i32> {
    let lines = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        _ => crate::config::read_config_file(path)?,
    };
    let mut found = false;
    for l in lines.iter().filter(|l| l.is(variable)) {
        println!("{}", l.value);
        found = true;
    }
    if !found {
        eprintln!("No matching configuration variables found.");
        return Ok(1);
    }
    Ok(0)
}

/// `set`/`add`/`del` on `path`, checked, written atomically, then a reload.
fn change(
    netdir: &NetDir,
    path: &PathBuf,
    action: EditAction,
    variable: &str,
    value: Option<&str>,
    force: bool,
) -> Result<i32> {
    let (text, mode) = match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)
                .with_context(|| format!("cannot stat {}", path.display()))?
                .permissions()
                .mode()
                & 0o7777;
            match String::from_utf8(bytes) {
                Ok(text) => (text, mode),
                Err(e) => {
                    eprintln!(
                        "{}: not UTF-8 text (byte {}); not changed",
                        path.display(),
                        e.utf8_error().valid_up_to()
                    );
                    return Ok(1);
                }
            }
        }
        Err(e) => {
            eprintln!("Could not open configuration file {}: {e}", path.display());
            return Ok(1);
        }
    };
    let edited = edit_config_text(&text, path, action, variable, value)?;
    if action == EditAction::Del && edited.removed.is_empty() {
        eprintln!("No matching configuration variables found.");
        return Ok(1);
    }
    if action != EditAction::Del && known::is_multi_valued(variable) {
        for old in &edited.removed {
            eprintln!("Warning: removing {variable} = {old}");
        }
    }
    if !edited.changed {
        return Ok(0);
    }
    match check_candidate(netdir, path, &edited.text) {
        Ok(warnings) => {
            // Only what concerns this variable, e.g. that another file's value wins.
            let needle = variable.to_ascii_lowercase();
            for w in warnings {
                if w.to_ascii_lowercase().contains(&needle) {
                    eprintln!("Warning: {w}");
                }
            }
        }
        Err(e) if !force => {
            eprintln!("{e}");
            eprintln!("Nothing changed ({} is as it was).", path.display());
            return Ok(1);
        }
        Err(e) => eprintln!("Warning: {e} (written anyway: --force)"),
    }
    write_atomic(path, edited.text.as_bytes(), mode)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tell_daemon_to_reload(netdir);
    Ok(0)
}

/// After a change: a running daemon rereads its configuration; none running is fine.
pub fn tell_daemon_to_reload(netdir: &NetDir) {
    let answer = request(
        &netdir.pidfile(),
        &netdir.control_socket(),
        &Request::Reload,
        ASK_TIMEOUT,
    );
    if let Ok(Response::Error { message }) = answer {
        eprintln!("Warning: the running daemon could not reload: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn words_parse_like_a_config_line() {
        let t = parse_words(&words("beta.Subnet = 10.0.0.1/32")).unwrap();
        assert_eq!(t.node.as_deref(), Some("beta"));
        assert_eq!(
            (t.variable.as_str(), t.value.as_str()),
            ("Subnet", "10.0.0.1/32")
        );
        let t = parse_words(&words("Port=0")).unwrap();
        assert_eq!(
            (t.node, t.variable.as_str(), t.value.as_str()),
            (None, "Port", "0")
        );
        let t = parse_words(&words("Address example.org 655")).unwrap();
        assert_eq!(t.value, "example.org 655");
        assert!(parse_words(&[]).is_none());
    }

    #[test]
    fn config_action_words() {
        let a = words("replace Mode switch");
        assert_eq!(split_config_action(&a).0, Some(EditAction::Set));
        let a = words("Mode");
        assert_eq!(split_config_action(&a).0, None);
        let a = words("Mode switch");
        assert_eq!(split_config_action(&a), (Some(EditAction::Set), &a[..]));
        let a = words("del Subnet");
        assert_eq!(split_config_action(&a).0, Some(EditAction::Del));
    }
}
