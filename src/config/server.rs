//! The local node's typed configuration ([`ServerConfig`]): the server config file, `conf.d`,
//! and the node's own host file merged, with defaults and validation.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::host::{bad_value, host_fields, public_key_elsewhere, Vars};
use super::netdir::NetDir;
use super::overrides;
use super::parse::{lookup, parse_config_text, read_config_file, ConfigLine};
use super::types::{
    format_duration, parse_bool, parse_duration, AddressFamily, BindAddress, HostAddress,
};
use super::ConfigError;
use meshd_core::name::NodeName;
use meshd_core::subnet::Subnet;

/// Default `MACExpire`.
pub const DEFAULT_MAC_EXPIRE: Duration = Duration::from_secs(600);
/// Default `MACTableMax`: most learned MAC addresses in all.
pub const DEFAULT_MAC_TABLE_MAX: usize = 65536;
/// Default `MACTableMaxPerNode`: most learned MAC addresses behind one node.
pub const DEFAULT_MAC_TABLE_MAX_PER_NODE: usize = 4096;
/// Default `ARPExpire`: how long a learned IP-to-MAC binding is used to answer ARP/ND.
pub const DEFAULT_ARP_EXPIRE: Duration = Duration::from_secs(300);
/// Default `InterfaceMTU`: a 1500-byte underlay (IPv4 or IPv6) carries these frames whole.
pub const DEFAULT_INTERFACE_MTU: u32 = 1400;
/// Default `ScriptTimeout`: a script running longer is killed.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `HelloInterval` (meshd's failure-detection hello period).
pub const DEFAULT_HELLO_INTERVAL: Duration = Duration::from_millis(100);
/// Default `DeadInterval` (peer declared dead after this long without hellos).
pub const DEFAULT_DEAD_INTERVAL: Duration = Duration::from_millis(300);
/// tinc's default `PingInterval`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(60);
/// tinc's default `PingTimeout`.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `KeyExpire` (rekey period).
pub const DEFAULT_KEY_EXPIRE: Duration = Duration::from_secs(3600);
/// Default `RekeyPackets`.
pub const DEFAULT_REKEY_PACKETS: u64 = 1 << 40;
/// Default replay window in packets.
pub const DEFAULT_REPLAY_WINDOW: u32 = 2048;

/// Forwarding mode. meshd implements only switch mode (tinc's default is router).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// MAC learning, TAP device.
    #[default]
    Switch,
}

/// Virtual device type: a TAP device, or none (tinc's `dummy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceType {
    /// A Linux TAP device.
    #[default]
    Tap,
    /// No device: the node takes part in the mesh but carries no frames of its
    /// own (as tinc's `DeviceType = dummy`; also lets tests run without root).
    Dummy,
}

/// The local node's configuration: server config file, `conf.d/*.conf` and own host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// This node's name.
    pub name: NodeName,
    /// `Mode`; always switch.
    pub mode: Mode,
    /// `Port` (default 655), usually from the own host file.
    pub port: u16,
    /// Own `Address` lines.
    pub addresses: Vec<HostAddress>,
    /// `ConnectTo` node names, in order.
    pub connect_to: Vec<NodeName>,
    /// `Interface`; `None` lets the device code choose (tinc uses the netname).
    pub interface: Option<String>,
    /// `AddressFamily` (default any).
    pub address_family: AddressFamily,
    /// `BindToAddress` lines.
    pub bind_to_address: Vec<BindAddress>,
    /// `ListenAddress` lines (tinc: listen only; meshd's one socket listens and sends).
    pub listen_address: Vec<BindAddress>,
    /// `MACExpire` (default 600 s).
    pub mac_expire: Duration,
    /// `MACTableMax`.
    pub mac_table_max: usize,
    /// `MACTableMaxPerNode`.
    pub mac_table_max_per_node: usize,
    /// `ARPExpire`.
    pub arp_expire: Duration,
    /// `AnswerARP`: answer ARP/ND from the local TAP out of the learned table.
    pub answer_arp: bool,
    /// `InterfaceMTU`: the MTU meshd sets on the TAP device.
    pub interface_mtu: u32,
    /// `ScriptTimeout`.
    pub script_timeout: Duration,
    /// `ScriptsInterpreter`.
    pub scripts_interpreter: Option<String>,
    /// `ScriptsExtension`.
    pub scripts_extension: String,
    /// `HelloInterval` (default 100 ms).
    pub hello_interval: Duration,
    /// `DeadInterval` (default 300 ms), always greater than `hello_interval`.
    pub dead_interval: Duration,
    /// tinc's `PingInterval` (default 60 s); accepted but superseded by Hello/DeadInterval.
    pub ping_interval: Duration,
    /// tinc's `PingTimeout` (default 5 s); accepted but superseded by Hello/DeadInterval.
    pub ping_timeout: Duration,
    /// `KeyExpire` (default 3600 s): time-based rekey period.
    pub key_expire: Duration,
    /// `RekeyPackets` (default 2^40): packet-count-based rekey threshold.
    pub rekey_packets: u64,
    /// Replay window in packets (default 2048); tinc's `ReplayWindow` (bytes) × 8.
    pub replay_window: u32,
    /// `Ed25519PrivateKeyFile`, made absolute relative to the netdir root.
    pub private_key_file: PathBuf,
    /// Own `Subnet` lines.
    pub subnets: Vec<Subnet>,
    /// Own `Ed25519PublicKey`, raw text.
    pub ed25519_public_key: Option<String>,
    /// `Device` (e.g. `/dev/net/tun`).
    pub device: Option<String>,
    /// `DeviceType`: tap, or dummy (no device).
    pub device_type: DeviceType,
    /// `StoreLearnedHosts` (default no): write host files learned via gossip to `hosts/`.
    pub store_learned_hosts: bool,
    /// `StrictSubnets` (default no): honour peers' subnets and VIPs only from
    /// their host files here, and let no peer take over a learned MAC.
    pub strict_subnets: bool,
    /// Non-fatal problems, each `FILE:LINE: message`.
    pub warnings: Vec<String>,
    /// All lines (config file, `conf.d`, own host file), for variables not typed here.
    pub raw: Vec<ConfigLine>,
}

impl ServerConfig {
    /// The first raw line setting `variable` (case-insensitive).
    pub fn get(&self, variable: &str) -> Option<&ConfigLine> {
        lookup(&self.raw, variable)
    }

    /// All raw lines setting `variable` (case-insensitive), in order.
    pub fn get_all<'a>(&'a self, variable: &'a str) -> impl Iterator<Item = &'a ConfigLine> + 'a {
        super::parse::lookup_all(&self.raw, variable)
    }
}

/// Loads the local node's configuration: the config file ([`NetDir::config_file`]), then
/// `conf.d/*.conf` (sorted), then the own host file `hosts/NAME` (a missing host file is only a
/// warning). A missing config file is an error naming it.
pub fn load_server_config(netdir: &NetDir) -> Result<ServerConfig, ConfigError> {
    load_server_config_with(netdir, None)
}

/// [`load_server_config`], with the text of one file (the config file or the own host file)
/// given instead of read: how `meshd set` checks a change before writing it.
pub(super) fn load_server_config_with(
    netdir: &NetDir,
    replaced: Option<(&Path, &str)>,
) -> Result<ServerConfig, ConfigError> {
    let read = |path: &Path| match replaced {
        Some((p, text)) if p == path => parse_config_text(text, path),
        _ => read_config_file(path),
    };
    let conf = netdir.config_file();
    if let Err(e) = std::fs::metadata(&conf) {
        if e.kind() == ErrorKind::NotFound {
            return Err(ConfigError::file(
                conf,
                "configuration file not found (create it with `meshd init`)",
            ));
        }
    }
    let mut lines = read(&conf)?;
    lines.extend(read_conf_d(netdir)?);
    overrides::apply(&mut lines, overrides::for_self(&netdir.overrides));
    let name = resolve_name(&lines, &conf, &|v| std::env::var(v).ok())?;
    let host_path = netdir.host_file(&name);
    let mut warnings = Vec::new();
    let mut host_lines = if host_path.exists() || replaced.is_some_and(|(p, _)| p == host_path) {
        read(&host_path)?
    } else {
        warnings.push(format!(
            "{}: own host file does not exist",
            host_path.display()
        ));
        Vec::new()
    };
    // `-o VAR=VALUE` wins over the own host file too; `-o NAME.VAR=VALUE` over both files.
    overrides::remove_replaced(&mut host_lines, overrides::for_self(&netdir.overrides));
    overrides::remove_replaced(&mut lines, overrides::for_host(&netdir.overrides, &name));
    overrides::apply(
        &mut host_lines,
        overrides::for_host(&netdir.overrides, &name),
    );
    build_server_config(netdir, name, lines, host_lines, warnings)
}

pub(super) fn read_conf_d(netdir: &NetDir) -> Result<Vec<ConfigLine>, ConfigError> {
    let dir = netdir.conf_d_dir();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| ConfigError::io(&dir, "cannot list", &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        lines.extend(read_config_file(&f)?);
    }
    Ok(lines)
}

/// Finds `Name` and expands `$VAR` (see [`expand_name`]).
pub(super) fn resolve_name(
    lines: &[ConfigLine],
    conf: &std::path::Path,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<NodeName, ConfigError> {
    let line =
        lookup(lines, "Name").ok_or_else(|| ConfigError::file(conf, "Could not find Name"))?;
    expand_name(&line.value, getenv).map_err(|r| bad_value(line, "Name", &r))
}

/// `Name = $VAR` takes environment variable VAR (`$HOST` falls back to the host name), with
/// characters other than ASCII letters and digits mapped to `_`. Other names must be valid
/// [`NodeName`]s; so must the expansion (a host name longer than 64 bytes is refused).
pub(super) fn expand_name(
    value: &str,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<NodeName, String> {
    let Some(var) = value.strip_prefix('$') else {
        return node_name(value);
    };
    let raw = match getenv(var) {
        Some(v) => v,
        None if var == "HOST" => {
            hostname().ok_or_else(|| "cannot determine the host name".to_string())?
        }
        None => return Err(format!("environment variable {var} is not set")),
    };
    let mapped: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if mapped.is_empty() {
        return Err(format!("'{value}' expands to an empty name"));
    }
    NodeName::new(mapped).map_err(|e| format!("'{value}' expands to an invalid name: {e}"))
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let s = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!s.is_empty()).then_some(s)
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}' must be greater than zero"));
    }
    Ok(d)
}

fn positive_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("'{s}' is not a positive count")),
    }
}

fn node_name(s: &str) -> Result<NodeName, String> {
    NodeName::new(s).map_err(|e| e.to_string())
}

fn interface_name(s: &str) -> Result<String, String> {
    if s.len() > 15 || s == "." || s == ".." || s.contains(['/', ' ', '\t']) {
        return Err(format!(
            "'{s}' is not a valid interface name (at most 15 bytes, no '/' or blanks)"
        ));
    }
    Ok(s.to_string())
}

/// Builds the typed configuration from the (already read) config lines and own host lines.
/// Config-file lines come first, so they win for single-valued variables.
pub(super) fn build_server_config(
    netdir: &NetDir,
    name: NodeName,
    conf_lines: Vec<ConfigLine>,
    host_lines: Vec<ConfigLine>,
    mut warnings: Vec<String>,
) -> Result<ServerConfig, ConfigError> {
    let mut raw = conf_lines;
    raw.extend(host_lines);
    let mut v = Vars {
        lines: &raw,
        warnings: &mut warnings,
    };
    v.warn_unknown();
    v.warn_unimplemented();
    v.single("Name");
    if let Some(line) = v.single("TunnelServer") {
        if parse_bool(&line.value).map_err(|r| bad_value(line, "TunnelServer", &r))? {
            return Err(line.error(
                "TunnelServer = yes is not supported: meshd nodes learn each other through \
                 gossip and talk directly; to limit what members may claim use StrictSubnets = yes",
            ));
        }
    }

    // Every Mode line, not only the first that counts: `init` writes `Mode = switch`, and a
    // `Mode = router` added below it must not pass silently.
    let _ = v.single("Mode");
    for line in v.lines.iter().filter(|l| l.is("Mode")) {
        match line.value.to_ascii_lowercase().as_str() {
            "switch" => {}
            m @ ("router" | "hub") => {
                return Err(line.error(format!(
                    "Mode = {m} is not supported: meshd implements only switch mode"
                )))
            }
            _ => {
                let r = format!(
                    "'{}' is not a mode (meshd supports only switch)",
                    line.value
                );
                return Err(bad_value(line, "Mode", &r));
            }
        }
    }
    let mut device_type = DeviceType::Tap;
    if let Some(line) = v.single("DeviceType") {
        if line.value.eq_ignore_ascii_case("dummy") {
            device_type = DeviceType::Dummy;
        } else if !line.value.eq_ignore_ascii_case("tap") {
            return Err(line.error(format!(
                "DeviceType = {} is not supported: meshd implements switch mode with a tap device (or dummy: none)",
                line.value
            )));
        }
    }

    let mut host = host_fields(&mut v)?;
    if host.ed25519_public_key.is_none() {
        let host_file = netdir.host_file(&name);
        host.ed25519_public_key = public_key_elsewhere(v.lines, &host_file, &netdir.root)?;
    }
    let connect_to = v.all("ConnectTo", node_name)?;
    let interface = v.get("Interface", interface_name)?.map(|(i, _)| i);
    let address_family = v.get_or("AddressFamily", AddressFamily::Any, str::parse)?;
    let bind_to_address = v.all("BindToAddress", str::parse)?;
    let listen_address = v.all("ListenAddress", str::parse)?;
    let mac_expire = v.get_or("MACExpire", DEFAULT_MAC_EXPIRE, positive_duration)?;

    let mac_table_max = v.get_or("MACTableMax", DEFAULT_MAC_TABLE_MAX, positive_count)?;
    let mac_table_max_per_node = v.get_or(
        "MACTableMaxPerNode",
        DEFAULT_MAC_TABLE_MAX_PER_NODE,
        positive_count,
    )?;
    let arp_expire = v.get_or("ARPExpire", DEFAULT_ARP_EXPIRE, positive_duration)?;
    let answer_arp = v.get_or("AnswerARP", true, parse_bool)?;
    let interface_mtu = v.get_or("InterfaceMTU", DEFAULT_INTERFACE_MTU, |s| {
        match s.parse::<u32>() {
            Ok(n) if (576..=65535).contains(&n) => Ok(n),
            _ => Err(format!("'{s}' is not an MTU between 576 and 65535")),
        }
    })?;
    let script_timeout = v.get_or("ScriptTimeout", DEFAULT_SCRIPT_TIMEOUT, positive_duration)?;
    let scripts_interpreter = v
        .get("ScriptsInterpreter", |s| Ok(s.to_string()))?
        .map(|(s, _)| s);
    let scripts_extension = v
        .get("ScriptsExtension", |s| Ok(s.to_string()))?
        .map(|(s, _)| s)
        .unwrap_or_default();

    let hello = v.get("HelloInterval", positive_duration)?;
    let dead = v.get("DeadInterval", positive_duration)?;
    let hello_interval = hello.as_ref().map_or(DEFAULT_HELLO_INTERVAL, |(d, _)| *d);
    let dead_interval = dead.as_ref().map_or(DEFAULT_DEAD_INTERVAL, |(d, _)| *d);
    if dead_interval <= hello_interval {
        let msg = format!(
            "DeadInterval ({}) must be longer than HelloInterval ({})",
            format_duration(dead_interval),
            format_duration(hello_interval)
        );
        let line = dead.or(hello).map(|(_, l)| l);
        return Err(match line {
            Some(l) => l.error(msg),
            None => ConfigError::file(netdir.config_file(), msg),
        });
    }

    let mut ping_interval = DEFAULT_PING_INTERVAL;
    let mut ping_timeout = DEFAULT_PING_TIMEOUT;
    for (var, slot, parse) in [
        (
            "PingInterval",
            &mut ping_interval,
            positive_duration as fn(&str) -> Result<Duration, String>,
        ),
        ("PingTimeout", &mut ping_timeout, parse_duration),
    ] {
        if let Some((d, line)) = v.get(var, parse)? {
            *slot = d;
            v.warnings.push(format!(
                "{}: {var} is accepted for tinc compatibility but superseded by HelloInterval/DeadInterval in meshd",
                line.location()
            ));
        }
    }

    let key_expire = v.get_or("KeyExpire", DEFAULT_KEY_EXPIRE, positive_duration)?;
    let rekey_packets = v.get_or("RekeyPackets", DEFAULT_REKEY_PACKETS, |s| {
        match s.parse::<u64>() {
            Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(format!("'{s}' is not a positive packet count")),
        }
    })?;
    let replay_window = v.get_or("ReplayWindow", DEFAULT_REPLAY_WINDOW, |s| {
        s.parse::<u32>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|bytes| bytes.checked_mul(8))
            .ok_or_else(|| format!("'{s}' is not a replay window size in bytes"))
    })?;
    let private_key_file = v
        .get("Ed25519PrivateKeyFile", |s| Ok(PathBuf::from(s)))?
        .map_or_else(
            || netdir.default_private_key_file(),
            |(p, _)| netdir.root.join(p),
        );
    let device = v.get("Device", |s| Ok(s.to_string()))?.map(|(d, _)| d);
    let store_learned_hosts = v.get_or("StoreLearnedHosts", false, parse_bool)?;
    let strict_subnets = v.get_or("StrictSubnets", false, parse_bool)?;

    Ok(ServerConfig {
        name,
        mode: Mode::Switch,
        port: host.port,
        addresses: host.addresses,
        connect_to,
        interface,
        address_family,
        bind_to_address,
        listen_address,
        mac_expire,
        mac_table_max,
        mac_table_max_per_node,
        arp_expire,
        answer_arp,
        interface_mtu,
        script_timeout,
        scripts_interpreter,
        scripts_extension,
        hello_interval,
        dead_interval,
        ping_interval,
        ping_timeout,
        key_expire,
        rekey_packets,
        replay_window,
        private_key_file,
        subnets: host.subnets,
        ed25519_public_key: host.ed25519_public_key,
        device,
        device_type,
        store_learned_hosts,
        strict_subnets,
        warnings,
        raw,
    })
}
