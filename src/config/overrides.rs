//! tincd's `-o [HOST.]VAR=VALUE`: configuration given on the command line for one run, which
//! wins over the files (a single-valued variable replaces the files' lines, a multi-valued one
//! is added to them). Without `HOST.` it applies to this node (server and own host variables);
//! with `HOST.` to `hosts/HOST` as the daemon reads it. The daemon keeps them across reloads.

use super::known;
use super::parse::ConfigLine;
use super::ConfigError;
use meshd_core::name::NodeName;
use std::path::PathBuf;

/// The file name lines from `-o` carry in messages (`-o:2: ...` is the second `-o`).
pub const OVERRIDE_FILE: &str = "-o";

/// One `-o` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// `HOST` of `HOST.VAR`; `None` for this node.
    pub host: Option<NodeName>,
    /// The variable and value, located at `-o:N`.
    pub line: ConfigLine,
}

/// Parses the `-o` options in order: `[HOST.]VAR=VALUE` (or `VAR VALUE`, as a config line).
pub fn parse_overrides(args: &[String]) -> Result<Vec<Override>, ConfigError> {
    args.iter()
        .enumerate()
        .map(|(i, arg)| parse_override(arg, i + 1))
        .collect()
}

fn parse_override(arg: &str, n: usize) -> Result<Override, ConfigError> {
    let err = |m: String| ConfigError::at(OVERRIDE_FILE, n, m);
    let arg = arg.trim();
    let end = arg.find([' ', '\t', '=']).unwrap_or(arg.len());
    let (key, rest) = arg.split_at(end);
    let rest = rest.trim_start_matches([' ', '\t']);
    let value = rest.strip_prefix('=').unwrap_or(rest).trim();
    if key.is_empty() {
        return Err(err(format!(
            "'{arg}' names no variable: use -o VAR=VALUE or -o HOST.VAR=VALUE"
        )));
    }
    if value.is_empty() {
        return Err(err(format!("no value for variable '{key}' (-o VAR=VALUE)")));
    }
    let (host, variable) = match key.split_once('.') {
        Some((h, v)) => {
            let host = NodeName::new(h)
                .map_err(|e| err(format!("'{h}' in -o {key} is not a node name: {e}")))?;
            (Some(host), v)
        }
        None => (None, key),
    };
    if variable.is_empty() {
        return Err(err(format!("'{key}' names no variable after the dot")));
    }
    Ok(Override {
        host,
        line: ConfigLine {
            variable: variable.to_string(),
            value: value.to_string(),
            file: PathBuf::from(OVERRIDE_FILE),
            line: n,
        },
    })
}

/// Applies `overrides` to one set of lines: each single-valued variable's lines are replaced
/// by the override (put first, so it is the one read), a multi-valued one's are kept and the
/// override added.
pub fn apply<'a>(lines: &mut Vec<ConfigLine>, overrides: impl IntoIterator<Item = &'a Override>) {
    let mut front: Vec<ConfigLine> = Vec::new();
    for o in overrides {
        if !known::is_multi_valued(&o.line.variable) {
            lines.retain(|l| !l.is(&o.line.variable));
            front.retain(|l| !l.is(&o.line.variable));
        }
        front.push(o.line.clone());
    }
    front.append(lines);
    *lines = front;
}

/// Removes the lines of every single-valued variable that one of `overrides` sets (for a file
/// read together with the one the overrides are applied to).
pub fn remove_replaced<'a>(
    lines: &mut Vec<ConfigLine>,
    overrides: impl IntoIterator<Item = &'a Override>,
) {
    for o in overrides {
        if !known::is_multi_valued(&o.line.variable) {
            lines.retain(|l| !l.is(&o.line.variable));
        }
    }
}

/// The overrides for `hosts/NAME` (`NAME.VAR`).
pub fn for_host<'a>(
    overrides: &'a [Override],
    name: &'a NodeName,
) -> impl Iterator<Item = &'a Override> + 'a {
    overrides
        .iter()
        .filter(move |o| o.host.as_ref() == Some(name))
}

/// The overrides without `HOST.`: this node's server and host variables.
pub fn for_self(overrides: &[Override]) -> impl Iterator<Item = &Override> {
    overrides.iter().filter(|o| o.host.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_config_text;
    use std::path::Path;

    fn o(args: &[&str]) -> Vec<Override> {
        parse_overrides(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn forms() {
        let v = o(&["Port=1", "beta.Address = 10.0.0.2", "Subnet 10.1.1.0/24"]);
        assert_eq!(v[0].host, None);
        assert_eq!(
            (v[0].line.variable.as_str(), v[0].line.value.as_str()),
            ("Port", "1")
        );
        assert_eq!(v[1].host.as_ref().map(|h| h.as_str()), Some("beta"));
        assert_eq!(v[1].line.value, "10.0.0.2");
        assert_eq!(v[2].line.variable, "Subnet");
        assert_eq!(v[2].line.location(), "-o:3");
    }

    #[test]
    fn refused_with_the_option_named() {
        let bad = |a: &str| parse_overrides(&[a.to_string()]).unwrap_err().to_string();
        assert!(
            bad("Port").contains("no value for variable 'Port'"),
            "{}",
            bad("Port")
        );
        assert!(bad("=1").starts_with("-o:1: "), "{}", bad("=1"));
        assert!(bad("bad-name.Port=1").contains("not a node name"));
        assert!(bad("beta.=1").contains("no variable"));
    }

    #[test]
    fn single_valued_replace_multi_valued_add() {
        let mut lines =
            parse_config_text("Port = 2\nSubnet = 10.0.0.1\n", Path::new("hosts/a")).unwrap();
        let v = o(&["port=1", "Subnet=10.0.0.2", "Port=3"]);
        apply(&mut lines, &v);
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l.variable.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Subnet", "10.0.0.2"),
                ("Port", "3"),
                ("Subnet", "10.0.0.1")
            ]
        );
    }
}
