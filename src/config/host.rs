//! Host files (`hosts/NAME`): typed [`HostConfig`], loading one or all of them, and the typed
//! variable lookup helpers shared with the server configuration.

use super::known;
use super::netdir::NetDir;
use super::parse::{read_config_file, ConfigLine};
use super::types::{parse_port, HostAddress, DEFAULT_PORT};
use super::ConfigError;
use meshd_core::name::{NameError, NodeName};
use meshd_core::subnet::Subnet;

/// The typed contents of one node's host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The node name (the file name).
    pub name: NodeName,
    /// `Address` lines, in order.
    pub addresses: Vec<HostAddress>,
    /// `Port` (default 655).
    pub port: u16,
    /// `Subnet` lines, in order.
    pub subnets: Vec<Subnet>,
    /// `Ed25519PublicKey`, raw text (decoded elsewhere).
    pub ed25519_public_key: Option<String>,
    /// `IndirectData`, `TCPOnly`, `PMTU`, `PMTUDiscovery`: how to reach it.
    pub path: meshd_core::node::HostPath,
    /// Non-fatal problems, each `FILE:LINE: message`.
    pub warnings: Vec<String>,
    /// Every line of the file, for variables not typed here.
    pub raw: Vec<ConfigLine>,
}

/// Typed access to a list of lines, collecting warnings.
pub(super) struct Vars<'a, 'w> {
    pub lines: &'a [ConfigLine],
    pub warnings: &'w mut Vec<String>,
}

/// `FILE:LINE: bad value for VAR: REASON`.
pub(super) fn bad_value(line: &ConfigLine, var: &str, reason: &str) -> ConfigError {
    line.error(format!("bad value for {var}: {reason}"))
}

impl<'a> Vars<'a, '_> {
    /// The first line setting a single-valued `var`; warns if there are more.
    pub fn single(&mut self, var: &str) -> Option<&'a ConfigLine> {
        let lines = self.lines;
        let mut it = lines.iter().filter(|l| l.is(var));
        let first = it.next()?;
        for dup in it {
            self.warnings.push(format!(
                "{}: {var} is given more than once; using the value from {}",
                dup.location(),
                first.location()
            ));
        }
        Some(first)
    }

    /// Parses the single-valued `var` with `f`; `None` if absent.
    pub fn get<T>(
        &mut self,
        var: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<(T, &'a ConfigLine)>, ConfigError> {
        match self.single(var) {
            None => Ok(None),
            Some(line) => f(&line.value)
                .map(|v| Some((v, line)))
                .map_err(|r| bad_value(line, var, &r)),
        }
    }

    /// Parses the single-valued `var` with `f`, or returns `default`.
    pub fn get_or<T>(
        &mut self,
        var: &str,
        default: T,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self.get(var, f)?.map_or(default, |(v, _)| v))
    }

    /// Parses every occurrence of the multi-valued `var` with `f`, in order.
    pub fn all<T>(
        &self,
        var: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        self.lines
            .iter()
            .filter(|l| l.is(var))
            .map(|line| f(&line.value).map_err(|r| bad_value(line, var, &r)))
            .collect()
    }

    /// Adds a warning for every variable that is neither a tinc nor a meshd variable.
    pub fn warn_unknown(&mut self) {
        for line in self.lines {
            if !known::is_known(&line.variable) {
                self.warnings.push(format!(
                    "{}: unknown variable '{}' ignored",
                    line.location(),
                    line.variable
                ));
            }
        }
    }

    /// Warns about each tinc variable given a value meshd does not implement.
    pub fn warn_unimplemented(&mut self) {
        for line in self.lines {
            let canonical = known::canonical(&line.variable).unwrap_or(&line.variable);
            if let Some(instead) = known::unimplemented(&line.variable, &line.value) {
                if known::is_obsolete(canonical) {
                    self.warnings.push(format!(
                        "{}: obsolete variable {canonical} ignored ({instead})",
                        line.location()
                    ));
                    continue;
                }
                self.warnings.push(format!(
                    "{}: {} = {} is not implemented by meshd and is ignored ({instead})",
                    line.location(),
                    known::canonical(&line.variable).unwrap_or(&line.variable),
                    line.value
                ));
            }
        }
    }
}

/// The host variables shared by [`HostConfig`] and the local node's server configuration.
pub(super) struct HostFields {
    pub addresses: Vec<HostAddress>,
    pub port: u16,
    pub subnets: Vec<Subnet>,
    pub ed25519_public_key: Option<String>,
}

pub(super) fn host_fields(vars: &mut Vars<'_, '_>) -> Result<HostFields, ConfigError> {
    Ok(HostFields {
        addresses: vars.all("Address", str::parse)?,
        port: vars.get_or("Port", DEFAULT_PORT, parse_port)?,
        subnets: vars.all("Subnet", str::parse)?,
        ed25519_public_key: vars
            .get("Ed25519PublicKey", |s| Ok(s.to_string()))?
            .map(|(k, _)| k),
    })
}

/// Builds a [`HostConfig`] for node `name` from already parsed lines.
pub fn parse_host_config(
    name: &NodeName,
    lines: Vec<ConfigLine>,
) -> Result<HostConfig, ConfigError> {
    let mut warnings = Vec::new();
    let mut vars = Vars {
        lines: &lines,
        warnings: &mut warnings,
    };
    vars.warn_unknown();
    let f = host_fields(&mut vars)?;
    let indirect = vars.get_or("IndirectData", false, super::types::parse_bool)?;
    let tcp_only = vars.get_or("TCPOnly", false, super::types::parse_bool)?;
    let pmtu = vars.get("PMTU", |s| {
        s.parse::<u16>()
            .ok()
            .filter(|n| (576..=9000).contains(n))
            .ok_or_else(|| format!("{s:?} is not a frame size from 576 to 9000"))
    })?;
    let path = meshd_core::node::HostPath {
        // tinc: TCPOnly implies IndirectData; meshd has no TCP path, a relay stands in.
        indirect: indirect || tcp_only,
        pmtu: pmtu.map(|(n, _)| n),
        pmtu_discovery: vars.get_or("PMTUDiscovery", true, super::types::parse_bool)?,
    };
    Ok(HostConfig {
        name: name.clone(),
        addresses: f.addresses,
        port: f.port,
        subnets: f.subnets,
        ed25519_public_key: f.ed25519_public_key,
        path,
        warnings,
        raw: lines,
    })
}

/// Reads and parses `hosts/NAME` (with the daemon's `-o NAME.VAR=VALUE` applied).
pub fn load_host_config(netdir: &NetDir, name: &NodeName) -> Result<HostConfig, ConfigError> {
    let path = netdir.host_file(name);
    let mut lines = read_config_file(&path)?;
    super::overrides::apply(
        &mut lines,
        super::overrides::for_host(&netdir.overrides, name),
    );
    let mut host = parse_host_config(name, lines)?;
    if host.ed25519_public_key.is_none() {
        host.ed25519_public_key = public_key_elsewhere(&host.raw, &path, &netdir.root)?;
    }
    Ok(host)
}

/// The key of a host without an `Ed25519PublicKey` line, in tinc's two other forms: the
/// `ED25519 PUBLIC KEY` PEM block of the file named by `Ed25519PublicKeyFile` (relative to
/// the network directory), else such a block in the host file itself. As tinc-base64.
pub(super) fn public_key_elsewhere(
    lines: &[ConfigLine],
    host_file: &std::path::Path,
    root: &std::path::Path,
) -> Result<Option<String>, ConfigError> {
    use meshd_core::keys::PublicKey;
    if let Some(line) = lines.iter().find(|l| l.is("Ed25519PublicKeyFile")) {
        let path = root.join(&line.value);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| line.error(format!("cannot read {}: {e}", path.display())))?;
        let key = PublicKey::from_pem_str(&text).map_err(|e| {
            line.error(format!(
                "{}: no usable ED25519 PUBLIC KEY block: {e}",
                path.display()
            ))
        })?;
        return Ok(Some(key.to_tinc_base64()));
    }
    let text = std::fs::read_to_string(host_file).unwrap_or_default();
    Ok(PublicKey::from_pem_str(&text)
        .ok()
        .map(|k| k.to_tinc_base64()))
}

/// Loads every host file in `hosts/` whose file name is a valid node name (so `NAME-up`,
/// `NAME-down`, dotfiles and temporary files are skipped), sorted by name. A file that fails to
/// load, or whose name has a node name's characters but is longer than
/// [`NodeName::MAX_LEN`], is reported in the error list and does not stop the others.
pub fn load_all_hosts(netdir: &NetDir) -> (Vec<HostConfig>, Vec<ConfigError>) {
    let dir = netdir.hosts_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => return (Vec::new(), vec![ConfigError::io(dir, "cannot list", &e)]),
    };
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(ConfigError::io(&dir, "cannot list", &e));
                continue;
            }
        };
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !entry.path().is_file() {
            continue;
        }
        match NodeName::new(name) {
            Ok(name) => names.push(name),
            Err(e @ NameError::TooLong { .. }) => {
                errors.push(ConfigError::file(entry.path(), e.to_string()));
            }
            Err(_) => {}
        }
    }
    names.sort();
    let mut hosts = Vec::new();
    for name in names {
        match load_host_config(netdir, &name) {
            Ok(h) => hosts.push(h),
            Err(e) => errors.push(e),
        }
    }
    (hosts, errors)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_config_text;
    use super::super::types::AddressHost;
    use super::*;
    use std::path::Path;

    fn host(text: &str) -> Result<HostConfig, ConfigError> {
        parse_host_config(
            &NodeName::new("alpha").unwrap(),
            parse_config_text(text, Path::new("/n/hosts/alpha"))?,
        )
    }

    #[test]
    fn typed_host() {
        let h = host(
            "Address = 192.0.2.1\nAddress = b.example 700\nSubnet = aa:bb:cc:dd:ee:ff\nPort = 1655\n\
             Ed25519PublicKey = abcdef\nCipher = aes-256-cbc\nFoo = bar\n",
        )
        .unwrap();
        assert_eq!(h.port, 1655);
        assert_eq!(h.addresses.len(), 2);
        assert_eq!(h.addresses[1].host, AddressHost::Name("b.example".into()));
        assert_eq!(h.subnets[0].to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(h.ed25519_public_key.as_deref(), Some("abcdef"));
        assert_eq!(
            h.warnings,
            vec!["/n/hosts/alpha:7: unknown variable 'Foo' ignored".to_string()]
        );
        assert_eq!(h.raw.len(), 7);
    }

    #[test]
    fn path_variables_as_tinc() {
        let h = host("").unwrap();
        assert_eq!(h.path, meshd_core::node::HostPath::default());
        let h = host("IndirectData = yes\nPMTU = 1300\nPMTUDiscovery = no\n").unwrap();
        assert!(h.path.indirect && !h.path.pmtu_discovery);
        assert_eq!(h.path.pmtu, Some(1300));
        // TCPOnly implies IndirectData, as in tinc.
        assert!(host("TCPOnly = yes\n").unwrap().path.indirect);
        let err = host("Port = 1\nPMTU = 40\n").unwrap_err().to_string();
        assert!(
            err.contains("/n/hosts/alpha:2") && err.contains("PMTU"),
            "{err}"
        );
        let err = host("IndirectData = maybe\n").unwrap_err().to_string();
        assert!(
            err.contains("/n/hosts/alpha:1") && err.contains("IndirectData"),
            "{err}"
        );
    }

    #[test]
    fn mac_subnets_use_tincs_grammar() {
        let h = host("Subnet = 2:0:0:0:0:a\n").unwrap();
        assert_eq!(h.subnets[0].to_string(), "02:00:00:00:00:0a");
        let e = host("Subnet = 02-00-00-00-00-0a\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(
            e.message.contains("'-' is not a MAC separator (use ':')"),
            "{e}"
        );
    }

    #[test]
    fn defaults_and_errors() {
        let h = host("").unwrap();
        assert_eq!(h.port, 655);
        assert!(h.addresses.is_empty());
        let e = host("Port = abc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/n/hosts/alpha:1: bad value for Port: 'abc' is not a port number (0-65535)"
        );
        let e = host("\nSubnet = 10.0.0.1/8\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.starts_with("bad value for Subnet:"));
        let w = host("Port = 1\nport = 2\n").unwrap();
        assert_eq!(w.port, 1);
        assert!(w.warnings[0].contains("more than once"));
    }

    #[test]
    fn all_hosts_skips_scripts_and_collects_errors() {
        let dir = tempfile::tempdir().unwrap();
        let nd = NetDir::new(dir.path());
        let hosts = nd.hosts_dir();
        std::fs::create_dir_all(&hosts).unwrap();
        std::fs::write(hosts.join("alpha"), "Port = 1\n").unwrap();
        std::fs::write(hosts.join("beta"), "Subnet = 10.0.0.0/8\n").unwrap();
        std::fs::write(hosts.join("alpha-up"), "#!/bin/sh\n").unwrap();
        std::fs::write(hosts.join("alpha-down"), "#!/bin/sh\n").unwrap();
        std::fs::write(hosts.join(".alpha.tmp"), "junk\n").unwrap();
        std::fs::write(hosts.join("broken"), "Port = x\n").unwrap();
        std::fs::create_dir(hosts.join("subdir")).unwrap();
        let long = "a".repeat(65);
        std::fs::write(hosts.join(&long), "Port = 1\n").unwrap();
        let (ok, mut errs) = load_all_hosts(&nd);
        let names: Vec<_> = ok.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta"]);
        assert_eq!(errs.len(), 2);
        errs.sort_by(|a, b| a.file.cmp(&b.file));
        assert_eq!(errs[1].file, hosts.join("broken"));
        assert_eq!(errs[1].line, Some(1));
        assert_eq!(errs[0].file, hosts.join(&long));
        assert!(
            errs[0].message.contains("too long (65 bytes, at most 64)"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn missing_hosts_dir_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (ok, errs) = load_all_hosts(&NetDir::new(dir.path().join("nope")));
        assert!(ok.is_empty());
        assert_eq!(errs.len(), 1);
    }
}
