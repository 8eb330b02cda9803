//! Changing one variable in a configuration file, as `meshd set/add/del` do: the edit of the
//! file's text (comments, PEM blocks and every other line kept as they are) and the check that
//! the result loads as `meshd start` would load it.

use std::path::Path;

use super::host::parse_host_config;
use super::known;
use super::netdir::NetDir;
use super::parse::{parse_config_text, read_config_file};
use super::server::{load_server_config_with, read_conf_d, resolve_name};
use super::vip::parse_vip_settings;
use super::ConfigError;
use meshd_core::name::NodeName;

/// What to do with the variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditAction {
    /// Replace every occurrence by one line with the new value (in place of the first).
    Set,
    /// Append the value unless an identical one (case-insensitive) is there; a single-valued
    /// variable is replaced, as with [`EditAction::Set`].
    Add,
    /// Remove every occurrence, or only those whose value matches (case-insensitive).
    Del,
}

/// The result of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The file's new text.
    pub text: String,
    /// The values of the lines that were removed or replaced, in file order.
    pub removed: Vec<String>,
    /// Whether `text` differs from the old text.
    pub changed: bool,
}

/// Applies `action` for `variable` (written as given, e.g. the canonical spelling) to `text`,
/// the contents of `file` (used only for error locations). `value` is required for set and add;
/// for del it selects which occurrences go. Line endings and all other lines are kept.
pub fn edit_config_text(
    text: &str,
    file: &Path,
    action: EditAction,
    variable: &str,
    value: Option<&str>,
) -> Result<Edited, ConfigError> {
    let parsed = parse_config_text(text, file)?;
    let matching: Vec<&super::ConfigLine> = parsed.iter().filter(|l| l.is(variable)).collect();
    let action = match action {
        EditAction::Add if !known::is_multi_valued(variable) => EditAction::Set,
        a => a,
    };
    let new_line = value.map(|v| format!("{variable} = {v}"));
    if let Some(line) = &new_line {
        if line.contains(['\n', '\r']) {
            return Err(ConfigError::file(
                file,
                format!("the value for {variable} must be a single line"),
            ));
        }
    }
    // 1-based line numbers to drop, and the one to replace with the new line.
    let mut drop: Vec<usize> = Vec::new();
    let mut replace_at = None;
    let mut append = false;
    let mut removed = Vec::new();
    match action {
        EditAction::Set => {
            for (i, l) in matching.iter().enumerate() {
                if i == 0 {
                    replace_at = Some(l.line);
                } else {
                    drop.push(l.line);
                }
                if Some(l.value.as_str()) != value {
                    removed.push(l.value.clone());
                }
            }
            append = matching.is_empty();
        }
        EditAction::Add => {
            let v = value.unwrap_or_default();
            append = !matching.iter().any(|l| l.value.eq_ignore_ascii_case(v));
        }
        EditAction::Del => {
            for l in &matching {
                if value.is_none_or(|v| l.value.eq_ignore_ascii_case(v)) {
                    drop.push(l.line);
                    removed.push(l.value.clone());
                }
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    let raw: Vec<&str> = text.split('\n').collect();
    for (idx, raw_line) in raw.iter().enumerate() {
        let lineno = idx + 1;
        let last = idx + 1 == raw.len();
        if drop.contains(&lineno) {
            continue;
        }
        match (replace_at == Some(lineno), &new_line) {
            (true, Some(nl)) => {
                out.push_str(nl);
                if raw_line.ends_with('\r') {
                    out.push('\r');
                }
            }
            _ => out.push_str(raw_line),
        }
        if !last {
            out.push('\n');
        }
    }
    if append {
        if let Some(nl) = &new_line {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(nl);
            out.push('\n');
        }
    }
    let changed = out != text;
    Ok(Edited {
        text: out,
        removed,
        changed,
    })
}

/// The local node's name, from the server configuration file and `conf.d/` (`$VAR` expanded).
pub fn local_node_name(netdir: &NetDir) -> Result<NodeName, ConfigError> {
    let conf = netdir.config_file();
    let mut lines = read_config_file(&conf)?;
    lines.extend(read_conf_d(netdir)?);
    resolve_name(&lines, &conf, &|v| std::env::var(v).ok())
}

/// Checks that the network directory still loads as `meshd start` loads it if `path` (the
/// server config file, the own host file, or `hosts/NAME`) held `text`. Returns the warnings
/// that load gives; an error names the file and line (of `text`) that would be wrong.
pub fn check_candidate(
    netdir: &NetDir,
    path: &Path,
    text: &str,
) -> Result<Vec<String>, ConfigError> {
    let own = local_node_name(netdir).ok().map(|n| netdir.host_file(&n));
    let is_host = path.parent() == Some(netdir.hosts_dir().as_path());
    if !is_host || own.as_deref() == Some(path) {
        let server = load_server_config_with(netdir, Some((path, text)))?;
        let mut warnings = server.warnings.clone();
        parse_vip_settings(&server.raw, &mut warnings)?;
        return Ok(warnings);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| NodeName::new(n).ok())
        .ok_or_else(|| ConfigError::file(path, "not a host file (invalid node name)"))?;
    let host = parse_host_config(&name, parse_config_text(text, path)?)?;
    Ok(host.warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, a: EditAction, var: &str, value: Option<&str>) -> Edited {
        edit_config_text(text, Path::new("/n/f"), a, var, value).unwrap()
    }

    #[test]
    fn set_replaces_first_in_place_and_drops_others() {
        let t = "# c\nSubnet = 1.2.3.4\nPort = 1\nsubnet = 5.6.7.8\n";
        let e = edit(t, EditAction::Set, "Subnet", Some("9.9.9.9"));
        assert_eq!(e.text, "# c\nSubnet = 9.9.9.9\nPort = 1\n");
        assert_eq!(e.removed, vec!["1.2.3.4", "5.6.7.8"]);
        assert!(e.changed);
    }

    #[test]
    fn set_appends_when_absent_and_keeps_pem() {
        let t = "-----BEGIN X-----\nPort = 9\n-----END X-----\nAddress = a";
        let e = edit(t, EditAction::Set, "Port", Some("0"));
        assert_eq!(e.text, format!("{t}\nPort = 0\n"));
        assert!(e.removed.is_empty());
    }

    #[test]
    fn add_dedups_and_single_valued_add_is_set() {
        let t = "Subnet = 02:00:00:00:00:0A\n";
        let e = edit(t, EditAction::Add, "Subnet", Some("02:00:00:00:00:0a"));
        assert!(!e.changed);
        let e = edit(t, EditAction::Add, "Subnet", Some("10.0.0.1"));
        assert_eq!(e.text, "Subnet = 02:00:00:00:00:0A\nSubnet = 10.0.0.1\n");
        let e = edit("Port = 1\n", EditAction::Add, "Port", Some("2"));
        assert_eq!(e.text, "Port = 2\n");
    }

    #[test]
    fn del_all_or_matching() {
        let t = "Subnet = a\nName = x\nSubnet = B\n";
        let e = edit(t, EditAction::Del, "Subnet", Some("b"));
        assert_eq!(e.text, "Subnet = a\nName = x\n");
        assert_eq!(e.removed, vec!["B"]);
        let e = edit(t, EditAction::Del, "Subnet", None);
        assert_eq!(e.text, "Name = x\n");
        let e = edit(t, EditAction::Del, "Port", None);
        assert!(!e.changed && e.removed.is_empty());
    }

    #[test]
    fn broken_file_and_multiline_value_are_errors() {
        let e = edit_config_text("Port\n", Path::new("/n/f"), EditAction::Del, "Port", None);
        assert_eq!(e.unwrap_err().line, Some(1));
        let e = edit_config_text("", Path::new("/n/f"), EditAction::Set, "Port", Some("1\n2"));
        assert!(e.is_err());
    }
}
