//! Network directory and configuration: locating it, parsing `meshd.conf`/`tinc.conf` and host
//! files into typed values with defaults, clear `FILE:LINE: message` errors, atomic writes.
//!
//! Layout of this module:
//! * [`parse`]: the line syntax shared by all files (`Variable = Value`).
//! * [`netdir`]: where the network directory is and the paths inside it.
//! * [`types`]: value parsers (durations, booleans, ports, addresses); the [`Subnet`] value
//!   itself is the protocol core's (`meshd_core::subnet`, re-exported here).
//! * [`known`]: the table of recognised variable names.
//! * [`server`] / [`host`]: typed [`ServerConfig`] and [`HostConfig`].
//! * [`vip`](mod@vip): `VirtualIP`, `VirtualMAC`, `HealthCheck` and the VIP settings.
//! * [`write`](mod@write): atomic file writing, appending to host files, `init`.
//! * [`edit`]: one variable changed in one file (`meshd set/add/del`), checked before writing.
//! * [`overrides`]: `start -o [HOST.]VAR=VALUE`, applied over the files for one run.
//!
//! Differences from tinc worth knowing:
//! * meshd implements only switch mode, so `Mode` defaults to `switch` (tinc: `router`) and
//!   `Mode = router`/`hub` or a `DeviceType` other than `tap` are errors.
//! * `meshd.conf` is preferred over `tinc.conf` when both exist.
//! * For single-valued variables the server config file (then `conf.d/*.conf`) wins over the own
//!   host file; tinc picks the lowest line number across both files. A warning is emitted when a
//!   single-valued variable is given more than once.

pub mod addr_cache;
pub mod edit;
pub mod host;
pub mod known;
pub mod netdir;
pub mod overrides;
pub mod parse;
pub mod server;

pub mod types;
pub mod vip;
pub mod write;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod server_tests;

use std::path::PathBuf;

pub use host::{load_all_hosts, load_host_config, parse_host_config, HostConfig};
pub use meshd_core::name::{NameError, NodeName};
pub use meshd_core::subnet::{Subnet, SubnetAddr, DEFAULT_SUBNET_WEIGHT};
pub use netdir::{valid_netname, NetDir};
pub use parse::{parse_config_text, read_config_file, ConfigLine};
pub use server::{load_server_config, DeviceType, Mode, ServerConfig};
pub use types::{
    format_duration, parse_bool, parse_duration, parse_port, AddressFamily, AddressHost,
    BindAddress, HostAddress, DEFAULT_PORT,
};
pub use vip::{
    parse_vip_settings, virtual_mac_for, CheckKind, HealthCheckSpec, VipConfig, VipSettings,
};
pub use write::{append_to_host_file, init_netdir, write_atomic};

/// An error in a configuration file or in the network directory.
///
/// Displays as `FILE:LINE: message`, or `FILE: message` when no line applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}", .file.display(), line_suffix(.line), .message)]
pub struct ConfigError {
    /// The file (or directory) the error is about.
    pub file: PathBuf,
    /// 1-based line number, when the error is about one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn line_suffix(line: &Option<usize>) -> String {
    match line {
        Some(n) => format!(":{n}"),
        None => String::new(),
    }
}

impl ConfigError {
    /// An error about a whole file (no line number).
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }

    /// An error about one line of a file.
    pub fn at(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: Some(line),
            message: message.into(),
        }
    }

    /// An I/O error while doing `what` (e.g. "cannot read") on `file`.
    pub fn io(file: impl Into<PathBuf>, what: &str, err: &std::io::Error) -> Self {
        ConfigError::file(file, format!("{what}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_line() {
        let e = ConfigError::at("/etc/meshd/x/meshd.conf", 3, "bad value");
        assert_eq!(e.to_string(), "/etc/meshd/x/meshd.conf:3: bad value");
        let e = ConfigError::file("/etc/meshd/x/meshd.conf", "missing");
        assert_eq!(e.to_string(), "/etc/meshd/x/meshd.conf: missing");
        let _: &dyn std::error::Error = &e;
    }
}
