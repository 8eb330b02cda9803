//! Line syntax of tinc/meshd configuration files: `Variable = Value` lines, comments, PEM blocks.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// One `Variable = Value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLine {
    /// The variable name as written (compare with [`ConfigLine::is`], names are case-insensitive).
    pub variable: String,
    /// The value: the rest of the line after the separator, trailing whitespace removed.
    pub value: String,
    /// The file the line came from.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl ConfigLine {
    /// Whether this line sets `variable` (case-insensitive).
    pub fn is(&self, variable: &str) -> bool {
        self.variable.eq_ignore_ascii_case(variable)
    }

    /// `FILE:LINE`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// An error located at this line.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file.clone(), self.line, message)
    }
}

/// Parses configuration text; `file` is only used for locations in lines and errors.
///
/// Rules: `Variable = Value` where the `=` may be replaced by blanks; a line whose first non-blank
/// character is `#` is a comment; blank lines are ignored; trailing whitespace and CR are
/// stripped; `-----BEGIN ...` to `-----END ...` blocks are skipped; a variable without a value
/// is an error.
pub fn parse_config_text(text: &str, file: &Path) -> Result<Vec<ConfigLine>, ConfigError> {
    let mut out = Vec::new();
    let mut in_pem = false;
    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.trim();
        if in_pem {
            if line.starts_with("-----END") {
                in_pem = false;
            }
            continue;
        }
        if line.starts_with("-----BEGIN") {
            in_pem = true;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let var_end = line.find([' ', '\t', '=']).unwrap_or(line.len());
        let variable = &line[..var_end];
        if variable.is_empty() {
            return Err(ConfigError::at(
                file,
                lineno,
                "missing variable name before '='",
            ));
        }
        let rest = line[var_end..].trim_start_matches([' ', '\t']);
        let rest = rest.strip_prefix('=').unwrap_or(rest);
        let value = rest.trim_start_matches([' ', '\t']);
        if value.is_empty() {
            return Err(ConfigError::at(
                file,
                lineno,
                format!("No value for variable `{variable}'"),
            ));
        }
        out.push(ConfigLine {
            variable: variable.to_string(),
            value: value.to_string(),
            file: file.to_path_buf(),
            line: lineno,
        });
    }
    Ok(out)
}

/// Reads and parses a configuration file. Invalid UTF-8 is replaced, not rejected.
pub fn read_config_file(path: impl AsRef<Path>) -> Result<Vec<ConfigLine>, ConfigError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ConfigError::io(path, "cannot read", &e))?;
    parse_config_text(&String::from_utf8_lossy(&bytes), path)
}

/// All lines setting `variable` (case-insensitive), in order.
pub fn lookup_all<'a>(
    lines: &'a [ConfigLine],
    variable: &'a str,
) -> impl Iterator<Item = &'a ConfigLine> + 'a {
    lines.iter().filter(move |l| l.is(variable))
}

/// The first line setting `variable` (case-insensitive).
pub fn lookup<'a>(lines: &'a [ConfigLine], variable: &str) -> Option<&'a ConfigLine> {
    lines.iter().find(|l| l.is(variable))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<ConfigLine>, ConfigError> {
        parse_config_text(text, Path::new("/n/meshd.conf"))
    }

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|l| (l.variable, l.value))
            .collect()
    }

    #[test]
    fn separator_forms() {
        let p = |v: &str| ("Port".to_string(), v.to_string());
        assert_eq!(
            pairs("Port = 1\nPort=2\nPort 3\nPort\t4\nPort =5\nPort= 6\n  Port \t=\t 7  \n"),
            vec![p("1"), p("2"), p("3"), p("4"), p("5"), p("6"), p("7")]
        );
    }

    #[test]
    fn value_is_rest_of_line() {
        assert_eq!(
            pairs("Subnet = 10.0.0.0/8#5\nAddress = example.com 655\n"),
            vec![
                ("Subnet".into(), "10.0.0.0/8#5".into()),
                ("Address".into(), "example.com 655".into())
            ]
        );
    }

    #[test]
    fn comments_blank_and_cr() {
        let lines =
            parse("# comment\r\n\r\n   # indented comment\nName = a \t\r\n\nPort = 1\r").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].value, "a");
        assert_eq!(lines[0].line, 4);
        assert_eq!(lines[1].value, "1");
        assert_eq!(lines[1].line, 6);
    }

    #[test]
    fn case_insensitive_lookup() {
        let lines = parse("pOrT = 1\nPORT = 2\n").unwrap();
        assert!(lines[0].is("Port"));
        assert_eq!(lookup(&lines, "port").map(|l| l.value.as_str()), Some("1"));
        assert_eq!(lookup_all(&lines, "Port").count(), 2);
        assert!(lookup(&lines, "Name").is_none());
    }

    #[test]
    fn pem_block_skipped() {
        let text = "Address = a\n-----BEGIN ED25519 PUBLIC KEY-----\nPort = 999\nabc\n-----END ED25519 PUBLIC KEY-----\nPort = 1\n";
        assert_eq!(
            pairs(text),
            vec![("Address".into(), "a".into()), ("Port".into(), "1".into())]
        );
    }

    #[test]
    fn missing_value_is_error_with_line() {
        let e = parse("Name = a\n\nPort\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(
            e.to_string(),
            "/n/meshd.conf:3: No value for variable `Port'"
        );
        let e = parse("Port = \n").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse("= 5\n").unwrap_err();
        assert!(e.message.contains("missing variable name"));
    }

    #[test]
    fn read_file_errors_name_file() {
        let e = read_config_file("/nonexistent/meshd.conf").unwrap_err();
        assert_eq!(e.file, PathBuf::from("/nonexistent/meshd.conf"));
        assert!(e
            .to_string()
            .starts_with("/nonexistent/meshd.conf: cannot read"));
    }
}
