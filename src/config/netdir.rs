//! Locating the network directory (`-c`, `-n`, `NETNAME`) and the paths of the files inside it.

use std::path::{Path, PathBuf};

use super::ConfigError;
use meshd_core::name::NodeName;

/// Base directory for `-n NET` when `MESHD_CONFDIR_BASE` is not set.
pub const DEFAULT_CONFDIR_BASE: &str = "/etc/meshd";
/// Environment variable overriding [`DEFAULT_CONFDIR_BASE`].
pub const CONFDIR_BASE_ENV: &str = "MESHD_CONFDIR_BASE";
/// Where a tinc user's networks live: `-n NET` falls back to `/etc/tinc/NET` (see
/// [`NetDir::resolve`]).
pub const DEFAULT_TINC_CONFDIR_BASE: &str = "/etc/tinc";
/// Environment variable overriding [`DEFAULT_TINC_CONFDIR_BASE`].
pub const TINC_CONFDIR_BASE_ENV: &str = "MESHD_TINC_CONFDIR_BASE";
/// Environment variable used as the network name when `-n` is not given (as in tinc).
pub const NETNAME_ENV: &str = "NETNAME";
/// meshd's older server configuration file name: read (and edited) when it exists, winning
/// over `tinc.conf`, so directories made by earlier meshd versions keep working.
pub const MESHD_CONF: &str = "meshd.conf";
/// tinc's server configuration file name: what `init` and `join` write, so `tincd` and
/// `tinc fsck` read a directory meshd made.
pub const TINC_CONF: &str = "tinc.conf";

/// A network directory ("confbase" in tinc terms) and the paths derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDir {
    /// The directory holding `meshd.conf`/`tinc.conf` and `hosts/`.
    pub root: PathBuf,
    /// The network name, if one was given (`-n` or `NETNAME`).
    pub netname: Option<String>,
    /// `--pidfile`, if given.
    pub pidfile_override: Option<PathBuf>,
    /// `start -o [HOST.]VAR=VALUE`: configuration for this run, winning over the files.
    pub overrides: Vec<super::overrides::Override>,
}

/// Whether `name` is usable as a network name: non-empty, no `/`, no control characters,
/// and not `.` or `..`.
pub fn valid_netname(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

/// The directory `-n NET` is under: `$MESHD_CONFDIR_BASE`, else [`DEFAULT_CONFDIR_BASE`].
pub fn confdir_base() -> PathBuf {
    std::env::var_os(CONFDIR_BASE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFDIR_BASE))
}

/// The base `-n NET` falls back to when `BASE/NET` does not exist: `$MESHD_TINC_CONFDIR_BASE`,
/// else `/etc/tinc` unless `MESHD_CONFDIR_BASE` is set (a chosen base is then the only one).
pub fn tinc_confdir_base() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(TINC_CONFDIR_BASE_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    if std::env::var_os(CONFDIR_BASE_ENV).is_some_and(|v| !v.is_empty()) {
        return None;
    }
    Some(PathBuf::from(DEFAULT_TINC_CONFDIR_BASE))
}

impl NetDir {
    /// A network directory at `root`, without netname or pidfile override.
    pub fn new(root: impl Into<PathBuf>) -> NetDir {
        NetDir {
            root: root.into(),
            netname: None,
            pidfile_override: None,
            overrides: Vec::new(),
        }
    }

    /// Resolves the directory of an existing network from the command line and the
    /// environment: `-c DIR` wins; else `-n NET` (or `$NETNAME`) gives `BASE/NET`
    /// (`$MESHD_CONFDIR_BASE`, default `/etc/meshd`) if that directory exists, else a tinc
    /// network `TINCBASE/NET` (default `/etc/tinc`, see [`tinc_confdir_base`]) if it holds
    /// `tinc.conf`, else `BASE/NET`; without either, the base itself.
    pub fn resolve(
        config_dir: Option<PathBuf>,
        netname: Option<String>,
    ) -> Result<NetDir, ConfigError> {
        let nd = Self::resolve_new(config_dir.clone(), netname)?;
        let tinc = match (&config_dir, &nd.netname, tinc_confdir_base()) {
            (None, Some(n), Some(tinc_base)) => tinc_base.join(n),
            _ => return Ok(nd),
        };
        Ok(nd.or_tinc_network(tinc))
    }

    /// The directory a new network is made in (`init`, `join`): like [`NetDir::resolve`]
    /// without the fallback to tinc's directory, so `-n NET` is always `BASE/NET`.
    pub fn resolve_new(
        config_dir: Option<PathBuf>,
        netname: Option<String>,
    ) -> Result<NetDir, ConfigError> {
        let base = confdir_base();
        let env_netname = std::env::var(NETNAME_ENV).ok().filter(|v| !v.is_empty());
        Self::resolve_with(config_dir, netname, env_netname, &base)
    }

    /// `self`, or `tinc` when `self.root` does not exist and `tinc` holds `tinc.conf`.
    fn or_tinc_network(mut self, tinc: PathBuf) -> NetDir {
        if !self.root.exists() && tinc.join(TINC_CONF).is_file() {
            self.root = tinc;
        }
        self
    }

    /// [`NetDir::resolve`] with the environment passed explicitly (`env_netname` is `$NETNAME`,
    /// `base` is the effective `MESHD_CONFDIR_BASE`).
    pub fn resolve_with(
        config_dir: Option<PathBuf>,
        netname: Option<String>,
        env_netname: Option<String>,
        base: &Path,
    ) -> Result<NetDir, ConfigError> {
        let netname = netname.or(env_netname);
        if let Some(n) = &netname {
            if !valid_netname(n) {
                return Err(ConfigError::file(
                    base,
                    format!("invalid network name '{n}': it must not be empty, '.', '..' or contain '/'"),
                ));
            }
        }
        let root = match (config_dir, &netname) {
            (Some(dir), _) => absolute(dir),
            (None, Some(n)) => base.join(n),
            (None, None) => base.to_path_buf(),
        };
        Ok(NetDir {
            root,
            netname,
            pidfile_override: None,
            overrides: Vec::new(),
        })
    }

    /// Sets the `--pidfile` override.
    pub fn with_pidfile(mut self, pidfile: Option<PathBuf>) -> NetDir {
        self.pidfile_override = pidfile;
        self
    }

    /// Sets the `-o` overrides.
    pub fn with_overrides(mut self, overrides: Vec<super::overrides::Override>) -> NetDir {
        self.overrides = overrides;
        self
    }

    /// The server configuration file: `meshd.conf` if it exists (directories made by older
    /// meshd versions), else `tinc.conf` (what `init` and `join` write).
    pub fn config_file(&self) -> PathBuf {
        let meshd = self.root.join(MESHD_CONF);
        if meshd.exists() {
            return meshd;
        }
        self.root.join(TINC_CONF)
    }

    /// `ROOT/conf.d`: optional `*.conf` files read after the server configuration file.
    pub fn conf_d_dir(&self) -> PathBuf {
        self.root.join("conf.d")
    }

    /// `ROOT/hosts`.
    pub fn hosts_dir(&self) -> PathBuf {
        self.root.join("hosts")
    }

    /// `ROOT/hosts/NAME` (a [`NodeName`] has no `/` or `.`: the path stays in `hosts/`).
    pub fn host_file(&self, name: &NodeName) -> PathBuf {
        self.hosts_dir().join(name.as_str())
    }

    /// `ROOT/revoked`: one file per revoked node (its old host file, or empty).
    pub fn revoked_dir(&self) -> PathBuf {
        self.root.join("revoked")
    }

    /// The names of `revoked/` (files whose name is a valid node name; others are
    /// ignored). No directory: none.
    pub fn revoked_names(&self) -> Vec<NodeName> {
        let Ok(dir) = std::fs::read_dir(self.revoked_dir()) else {
            return Vec::new();
        };
        let mut names: Vec<NodeName> = dir
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().and_then(|n| NodeName::new(n).ok()))
            .collect();
        names.sort();
        names
    }

    /// `ROOT/ed25519_key.priv`.
    pub fn default_private_key_file(&self) -> PathBuf {
        self.root.join("ed25519_key.priv")
    }

    /// The pidfile: the `--pidfile` override, else `ROOT/meshd.pid`.
    pub fn pidfile(&self) -> PathBuf {
        self.pidfile_override
            .clone()
            .unwrap_or_else(|| self.root.join("meshd.pid"))
    }

    /// The control socket: the pidfile path with a trailing `.pid` replaced by `.socket`, or
    /// `.socket` appended if it does not end in `.pid`.
    pub fn control_socket(&self) -> PathBuf {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let pid = self.pidfile();
        let bytes = pid.as_os_str().as_bytes();
        let mut out = bytes.strip_suffix(b".pid").unwrap_or(bytes).to_vec();
        out.extend_from_slice(b".socket");
        PathBuf::from(std::ffi::OsString::from_vec(out))
    }

    /// `ROOT/meshd.log`.
    pub fn logfile(&self) -> PathBuf {
        self.root.join("meshd.log")
    }

    /// `ROOT/NAME`, e.g. `tinc-up`, `host-up`, `subnet-down`.
    pub fn script(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `ROOT/hosts/NODE-EVENT`, e.g. `hosts/alpha-up`.
    pub fn host_script(&self, node: &str, event: &str) -> PathBuf {
        self.hosts_dir().join(format!("{node}-{event}"))
    }

    /// `ROOT/invitations`.
    pub fn invitations_dir(&self) -> PathBuf {
        self.root.join("invitations")
    }
}

fn absolute(dir: PathBuf) -> PathBuf {
    if dir.is_absolute() {
        return dir;
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(dir),
        Err(_) => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PathBuf {
        PathBuf::from("/base")
    }

    #[test]
    fn config_dir_wins() {
        let nd = NetDir::resolve_with(
            Some("/x/y".into()),
            Some("net".into()),
            Some("envnet".into()),
            &base(),
        )
        .unwrap();
        assert_eq!(nd.root, PathBuf::from("/x/y"));
        assert_eq!(nd.netname.as_deref(), Some("net"));
    }

    #[test]
    fn relative_config_dir_made_absolute() {
        let nd = NetDir::resolve_with(Some("rel".into()), None, None, &base()).unwrap();
        assert!(nd.root.is_absolute());
        assert!(nd.root.ends_with("rel"));
    }

    #[test]
    fn netname_under_base() {
        let nd = NetDir::resolve_with(None, Some("vpn".into()), None, &base()).unwrap();
        assert_eq!(nd.root, PathBuf::from("/base/vpn"));
        let nd = NetDir::resolve_with(None, None, Some("envnet".into()), &base()).unwrap();
        assert_eq!(nd.root, PathBuf::from("/base/envnet"));
        assert_eq!(nd.netname.as_deref(), Some("envnet"));
        let nd =
            NetDir::resolve_with(None, Some("vpn".into()), Some("envnet".into()), &base()).unwrap();
        assert_eq!(nd.root, PathBuf::from("/base/vpn"));
        let nd = NetDir::resolve_with(None, None, None, &base()).unwrap();
        assert_eq!(nd.root, PathBuf::from("/base"));
        assert_eq!(nd.netname, None);
    }

    #[test]
    fn unsafe_netnames_rejected() {
        for bad in ["..", ".", "a/b", "", "a\nb"] {
            let e = NetDir::resolve_with(None, Some(bad.into()), None, &base()).unwrap_err();
            assert!(e.message.contains("invalid network name"), "{e}");
        }
        assert!(NetDir::resolve_with(None, None, Some("../x".into()), &base()).is_err());
        assert!(valid_netname("my.net-1"));
    }

    #[test]
    fn derived_paths() {
        let nd = NetDir::new("/n");
        assert_eq!(nd.hosts_dir(), PathBuf::from("/n/hosts"));
        assert_eq!(
            nd.host_file(&NodeName::new("a").unwrap()),
            PathBuf::from("/n/hosts/a")
        );
        assert_eq!(
            nd.default_private_key_file(),
            PathBuf::from("/n/ed25519_key.priv")
        );
        assert_eq!(nd.pidfile(), PathBuf::from("/n/meshd.pid"));
        assert_eq!(nd.control_socket(), PathBuf::from("/n/meshd.socket"));
        assert_eq!(nd.logfile(), PathBuf::from("/n/meshd.log"));
        assert_eq!(nd.script("tinc-up"), PathBuf::from("/n/tinc-up"));
        assert_eq!(
            nd.host_script("b", "down"),
            PathBuf::from("/n/hosts/b-down")
        );
        assert_eq!(nd.invitations_dir(), PathBuf::from("/n/invitations"));
        let nd = nd.with_pidfile(Some("/run/x.pid".into()));
        assert_eq!(nd.control_socket(), PathBuf::from("/run/x.socket"));
        let nd = NetDir::new("/n").with_pidfile(Some("/run/x.lock".into()));
        assert_eq!(nd.control_socket(), PathBuf::from("/run/x.lock.socket"));
    }

    #[test]
    fn config_file_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let nd = NetDir::new(dir.path());
        assert_eq!(nd.config_file(), dir.path().join("tinc.conf"));
        std::fs::write(dir.path().join("tinc.conf"), "Name = a\n").unwrap();
        assert_eq!(nd.config_file(), dir.path().join("tinc.conf"));
        std::fs::write(dir.path().join("meshd.conf"), "Name = a\n").unwrap();
        assert_eq!(nd.config_file(), dir.path().join("meshd.conf"));
    }

    #[test]
    fn netname_falls_back_to_a_tinc_network() {
        let tmp = tempfile::tempdir().unwrap();
        let (meshd, tinc) = (tmp.path().join("meshd"), tmp.path().join("tinc"));
        std::fs::create_dir_all(tinc.join("vpn")).unwrap();
        let nd = |base: &Path| {
            NetDir::resolve_with(None, Some("vpn".into()), None, base)
                .unwrap()
                .or_tinc_network(tinc.join("vpn"))
        };
        // No tinc.conf there: not a tinc network.
        assert_eq!(nd(&meshd).root, meshd.join("vpn"));
        std::fs::write(tinc.join("vpn/tinc.conf"), "Name = a\n").unwrap();
        assert_eq!(nd(&meshd).root, tinc.join("vpn"));
        // meshd's own directory wins once it exists.
        std::fs::create_dir_all(meshd.join("vpn")).unwrap();
        assert_eq!(nd(&meshd).root, meshd.join("vpn"));
    }
}
