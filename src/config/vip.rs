//! Shared virtual IPs (VIPs) this node serves: `VirtualIP`, `VirtualMAC`, `HealthCheck` and the
//! failover timing variables, read from the local node's merged lines (`meshd.conf`, `conf.d`,
//! own host file; see [`ServerConfig::raw`](super::ServerConfig::raw)).
//!
//! Syntax (variable names are case-insensitive; `VirtualIP`, `VirtualMAC` and `HealthCheck` may
//! be given several times):
//!
//! * `VirtualIP = ADDRESS[/PREFIX][#WEIGHT]`, e.g. `10.1.1.10/24#5`. The prefix defaults to the
//!   full length (/32, or /128 for IPv6); host bits may be set (it is an interface address, not
//!   a network). `#WEIGHT` works like tinc's `Subnet` weight: default 10, the live holders with
//!   the lowest weight get the traffic, equal weights share it. IPv4 or IPv6; not link-local,
//!   multicast or IPv4-mapped, and not the node's own address (a host `Subnet`, an `Address`).
//! * `VirtualMAC = ADDRESS MAC` overrides the MAC [`virtual_mac_for`] derives for a VIP that
//!   has a `VirtualIP` line. It must be a unicast MAC (a warning if it is not locally
//!   administered). Two VIPs may not share a virtual MAC.
//! * `HealthCheck = ADDRESS exec [OPTIONS] COMMAND...`: `COMMAND...` (the rest of the line,
//!   verbatim) runs with `/bin/sh -c`; exit status 0 is success. Options must come *before* the
//!   command: leading `interval=`/`timeout=`/`rise=`/`fall=` tokens are options, and the first
//!   token that is not one of them starts the command (so `FOO=1 cmd` is a command).
//! * `HealthCheck = ADDRESS tcp HOST:PORT [OPTIONS]`: a TCP connect within the timeout succeeds.
//! * `HealthCheck = ADDRESS udp HOST:PORT [send=HEX] [expect=HEX] [OPTIONS]`: sends `send` (an
//!   empty datagram without it) and succeeds on any reply within the timeout that starts with
//!   `expect` (any reply without it). For tcp and udp the options may appear anywhere after the
//!   check type; `HOST` is a literal IP address (`[::1]:53` for IPv6).
//! * OPTIONS are `interval=DURATION timeout=DURATION rise=N fall=N`; the defaults come from
//!   `HealthCheckInterval` (500ms), `HealthCheckTimeout` (500ms), `HealthCheckRise` (2) and
//!   `HealthCheckFall` (2). A timeout longer than the interval is allowed but warned about.
//! * `VIPHoldDown` (1s): a holder that came back gets new flows only after this long.
//!   `FlowIdleTimeout` (60s): a flow's pinning to its holder is forgotten after this much
//!   silence. `ShutdownGrace` (500ms): how long a graceful stop waits for peers to acknowledge
//!   the VIP withdrawal.
//!
//! A VIP with several checks is healthy only while all of them are.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::host::Vars;
use super::parse::ConfigLine;
use super::types::{format_duration, parse_duration};
use super::ConfigError;
use meshd_core::subnet::{Subnet, SubnetAddr};
use meshd_core::switch::{MacAddr, MacParseError};

/// Weight of a `VirtualIP` without `#weight` (lower is preferred; as tinc's `Subnet`).
pub const DEFAULT_VIP_WEIGHT: u32 = 10;
/// Default `HealthCheckInterval`: time between the starts of two probes of one check.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Default `HealthCheckTimeout`: how long one probe may take.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_millis(500);
/// Default `HealthCheckRise`: consecutive successes that make a failing check healthy.
pub const DEFAULT_HEALTH_CHECK_RISE: u32 = 2;
/// Default `HealthCheckFall`: consecutive failures that make a healthy check fail.
pub const DEFAULT_HEALTH_CHECK_FALL: u32 = 2;
/// Default `VIPHoldDown`.
pub const DEFAULT_VIP_HOLD_DOWN: Duration = Duration::from_secs(1);
/// Default `FlowIdleTimeout`.
pub const DEFAULT_FLOW_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `ShutdownGrace`.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// One `VirtualIP` this node serves, with its virtual MAC and health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipConfig {
    /// The shared address.
    pub address: IpAddr,
    /// Prefix length of the VIP's subnet (default: the full length, 32 or 128).
    pub prefix_len: u8,
    /// Lower weights win; equal weights share (default [`DEFAULT_VIP_WEIGHT`]).
    pub weight: u32,
    /// The MAC every node answers ARP/ND for this VIP with.
    pub virtual_mac: [u8; 6],
    /// Whether `virtual_mac` comes from a `VirtualMAC` line (else [`virtual_mac_for`]).
    pub mac_overridden: bool,
    /// The `HealthCheck` lines for this VIP, in configuration order (may be empty).
    pub checks: Vec<HealthCheckSpec>,
}

/// One `HealthCheck` line, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// The VIP this check guards.
    pub vip: IpAddr,
    /// What to probe.
    pub kind: CheckKind,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// How long one probe may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive successes that make a failing check healthy (≥ 1).
    pub rise: u32,
    /// Consecutive failures that make a healthy check fail (≥ 1).
    pub fall: u32,
    /// `FILE:LINE` of the `HealthCheck` line, for logs.
    pub origin: String,
}

/// What a health check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A command line run with `/bin/sh -c`; exit status 0 is success.
    Exec(String),
    /// A TCP connect to this address.
    Tcp(SocketAddr),
    /// A UDP request/reply exchange.
    Udp {
        /// Where to send the probe.
        addr: SocketAddr,
        /// The probe datagram (may be empty).
        send: Vec<u8>,
        /// If set, a reply must start with these bytes.
        expect: Option<Vec<u8>>,
    },
}

/// Everything about the VIPs this node serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSettings {
    /// `VirtualIP` lines, in configuration order.
    pub vips: Vec<VipConfig>,
    /// `VIPHoldDown`: a recovered holder gets new flows only after this long.
    pub hold_down: Duration,
    /// `FlowIdleTimeout`: idle time after which a flow's holder is forgotten.
    pub flow_idle_timeout: Duration,
    /// `ShutdownGrace`: how long a graceful stop waits for withdrawal acknowledgements.
    pub shutdown_grace: Duration,
}

impl Default for VipSettings {
    fn default() -> Self {
        VipSettings {
            vips: Vec::new(),
            hold_down: DEFAULT_VIP_HOLD_DOWN,
            flow_idle_timeout: DEFAULT_FLOW_IDLE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl VipSettings {
    /// Every health check of every VIP, in configuration order (for the health checker).
    pub fn health_checks(&self) -> Vec<HealthCheckSpec> {
        self.vips.iter().flat_map(|v| v.checks.clone()).collect()
    }

    /// The VIP with this address, if configured.
    pub fn find(&self, address: IpAddr) -> Option<&VipConfig> {
        self.vips.iter().find(|v| v.address == address)
    }
}

/// The virtual MAC of a VIP: IPv4 `a.b.c.d` gives `02:6d:a:b:c:d`; IPv6 gives `06:6d`
/// followed by the first 4 bytes of the SHA-256 of the 16 address bytes.
///
/// Both are locally administered unicast MACs, and every node computes the same one, so a
/// client's neighbour entry for the VIP stays valid whichever node holds it.
pub fn virtual_mac_for(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [0x02, 0x6d, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let h = Sha256::digest(v6.octets());
            [0x06, 0x6d, h[0], h[1], h[2], h[3]]
        }
    }
}

fn fmt_mac(m: &[u8; 6]) -> String {
    MacAddr(*m).to_string()
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}' must be greater than zero"));
    }
    Ok(d)
}

fn positive_count(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("'{s}' is not a positive count")),
    }
}

/// Whitespace-separated tokens with their byte offsets in `s`.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                out.push((st, &s[st..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

/// Parses `ADDRESS[/PREFIX][#WEIGHT]`.
fn parse_virtual_ip(value: &str) -> Result<(IpAddr, u8, u32), String> {
    let generic = || format!("'{value}' is not an IP address[/prefix][#weight]");
    let t = value.trim();
    let (body, weight) = match t.split_once('#') {
        Some((b, w)) => {
            let w = w.trim();
            let weight = w
                .parse::<u32>()
                .ok()
                .filter(|_| w.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    format!("'{w}' in '{value}' is not a weight (a number 0-4294967295)")
                })?;
            (b.trim(), weight)
        }
        None => (t, DEFAULT_VIP_WEIGHT),
    };
    let (addr_s, prefix_s) = match body.split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim())),
        None => (body, None),
    };
    let ip: IpAddr = addr_s.parse().map_err(|_| generic())?;
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_s {
        None => max,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(generic());
            }
            match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{value}': prefix length must be 0-{max}")),
            }
        }
    };
    let unusable = match ip {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    };
    if unusable {
        return Err(format!(
            "'{value}': {ip} cannot be a virtual IP (unspecified, loopback, multicast or broadcast)"
        ));
    }
    if let IpAddr::V6(a) = ip {
        if a.segments()[0] & 0xffc0 == 0xfe80 {
            return Err(format!(
                "'{value}': {ip} is link-local (fe80::/10); a virtual IP must be routable (use a ULA such as fd00::/8)"
            ));
        }
        if a.to_ipv4_mapped().is_some() {
            return Err(format!(
                "'{value}': {ip} is an IPv4-mapped address; write the IPv4 VIP as IPv4"
            ));
        }
    }
    Ok((ip, prefix, weight))
}

/// The node's own addresses (its `Subnet` host entries, `/32` or `/128`, and literal `Address`
/// lines) cannot be VIPs: the VIP would be answered with a virtual MAC and steered away from
/// the node that owns it. The error names the `VirtualIP` line and the line it collides with.
fn refuse_own_addresses(
    lines: &[ConfigLine],
    vips: &[VipConfig],
    vip_lines: &[&ConfigLine],
) -> Result<(), ConfigError> {
    for line in lines {
        let own: Option<IpAddr> = if line.is("Subnet") {
            match line.value.parse::<Subnet>().map(|s| s.addr) {
                Ok(SubnetAddr::Ipv4 { addr, prefix: 32 }) => Some(IpAddr::V4(addr)),
                Ok(SubnetAddr::Ipv6 { addr, prefix: 128 }) => Some(IpAddr::V6(addr)),
                _ => None,
            }
        } else if line.is("Address") {
            line.value
                .split_whitespace()
                .next()
                .and_then(|h| h.parse::<IpAddr>().ok())
        } else {
            None
        };
        let Some(own) = own else { continue };
        if let Some(i) = vips.iter().position(|v| v.address == own) {
            return Err(vip_lines[i].error(format!(
                "VirtualIP: {own} is this node's own address ({} at {}); a VIP must be an address of its own",
                line.variable,
                line.location()
            )));
        }
    }
    Ok(())
}

/// Per-check options as written on a `HealthCheck` line (`None` = use the global default).
#[derive(Default)]
struct CheckOptions {
    interval: Option<Duration>,
    timeout: Option<Duration>,
    rise: Option<u32>,
    fall: Option<u32>,
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
}

impl CheckOptions {
    /// Applies `key=value` if `key` is a timing option; `Ok(false)` if it is not one.
    fn timing(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let key = key.to_ascii_lowercase();
        let bad = |r: String| format!("bad {key}: {r}");
        let twice = || format!("{key}= is given twice");
        match key.as_str() {
            "interval" | "timeout" => {
                let slot = if key == "interval" {
                    &mut self.interval
                } else {
                    &mut self.timeout
                };
                if slot.is_some() {
                    return Err(twice());
                }
                *slot = Some(positive_duration(value).map_err(bad)?);
            }
            "rise" | "fall" => {
                let slot = if key == "rise" {
                    &mut self.rise
                } else {
                    &mut self.fall
                };
                if slot.is_some() {
                    return Err(twice());
                }
                *slot = Some(positive_count(value).map_err(bad)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies the udp-only `send=`/`expect=`; `Ok(false)` if `key` is neither.
    fn udp(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "send" => &mut self.send,
            "expect" => &mut self.expect,
            _ => return Ok(false),
        };
        if slot.is_some() {
            return Err(format!("{key}= is given twice"));
        }
        let bytes = hex::decode(value)
            .map_err(|_| format!("bad {key}: '{value}' is not hex bytes (e.g. {key}=0a1b)"))?;
        if key == "expect" && bytes.is_empty() {
            return Err(
                "bad expect: it must not be empty (leave it out to accept any reply)".into(),
            );
        }
        *slot = Some(bytes);
        Ok(true)
    }
}

/// Global health check defaults.
struct CheckDefaults {
    interval: Duration,
    timeout: Duration,
    rise: u32,
    fall: u32,
}

/// Parses the part of a `HealthCheck` value after the address.
fn parse_check_body(
    value: &str,
    toks: &[(usize, &str)],
) -> Result<(CheckKind, CheckOptions), String> {
    let Some(&(_, kind)) = toks.first() else {
        return Err("expected 'ADDRESS exec|tcp|udp ...' after the address".into());
    };
    let rest = &toks[1..];
    let mut opts = CheckOptions::default();
    match kind.to_ascii_lowercase().as_str() {
        "exec" => {
            let mut cmd_start = None;
            for &(off, tok) in rest {
                if let Some((k, v)) = tok.split_once('=') {
                    if opts.timing(k, v)? {
                        continue;
                    }
                }
                cmd_start = Some(off);
                break;
            }
            let command = cmd_start.map(|off| value[off..].trim()).unwrap_or_default();
            if command.is_empty() {
                return Err(
                    "exec needs a command (syntax: exec [interval=..] [timeout=..] [rise=..] [fall=..] COMMAND...)"
                        .into(),
                );
            }
            Ok((CheckKind::Exec(command.to_string()), opts))
        }
        k @ ("tcp" | "udp") => {
            let allowed = if k == "udp" {
                "interval, timeout, rise, fall, send, expect"
            } else {
                "interval, timeout, rise, fall"
            };
            let mut target: Option<SocketAddr> = None;
            for &(_, tok) in rest {
                if let Some((key, v)) = tok.split_once('=') {
                    if opts.timing(key, v)? || (k == "udp" && opts.udp(key, v)?) {
                        continue;
                    }
                    return Err(format!(
                        "unknown option '{tok}' for {k} (options: {allowed})"
                    ));
                }
                if target.is_some() {
                    return Err(format!(
                        "unexpected '{tok}' ({k} takes one address:port and the options {allowed})"
                    ));
                }
                let addr: SocketAddr = tok.parse().map_err(|_| {
                    format!("'{tok}' is not an address:port (e.g. 127.0.0.1:53 or [::1]:53)")
                })?;
                if addr.port() == 0 {
                    return Err(format!("'{tok}': port 0 cannot be probed"));
                }
                target = Some(addr);
            }
            let Some(addr) = target else {
                return Err(format!(
                    "{k} needs an address:port to probe, e.g. {k} 127.0.0.1:53"
                ));
            };
            let kind = if k == "tcp" {
                CheckKind::Tcp(addr)
            } else {
                CheckKind::Udp {
                    addr,
                    send: opts.send.take().unwrap_or_default(),
                    expect: opts.expect.take(),
                }
            };
            Ok((kind, opts))
        }
        _ => Err(format!("'{kind}' is not a check type (exec, tcp or udp)")),
    }
}

/// Reads the VIP variables from the local node's merged configuration lines. Non-fatal
/// problems are appended to `warnings` as `FILE:LINE: message`.
///
/// Errors name the offending line: an unparsable `VirtualIP`, the same VIP twice (at the
/// second line), a `VirtualMAC` or `HealthCheck` for an address without `VirtualIP`, a
/// multicast or shared virtual MAC, and bad durations, counts or options.
pub fn parse_vip_settings(
    lines: &[ConfigLine],
    warnings: &mut Vec<String>,
) -> Result<VipSettings, ConfigError> {
    let mut v = Vars {
        lines,
        warnings: &mut *warnings,
    };
    let hold_down = v.get_or("VIPHoldDown", DEFAULT_VIP_HOLD_DOWN, parse_duration)?;
    let flow_idle_timeout = v.get_or(
        "FlowIdleTimeout",
        DEFAULT_FLOW_IDLE_TIMEOUT,
        positive_duration,
    )?;
    let shutdown_grace = v.get_or("ShutdownGrace", DEFAULT_SHUTDOWN_GRACE, parse_duration)?;
    let interval = v.get("HealthCheckInterval", positive_duration)?;
    let timeout = v.get("HealthCheckTimeout", positive_duration)?;
    let defaults = CheckDefaults {
        interval: interval
            .as_ref()
            .map_or(DEFAULT_HEALTH_CHECK_INTERVAL, |(d, _)| *d),
        timeout: timeout
            .as_ref()
            .map_or(DEFAULT_HEALTH_CHECK_TIMEOUT, |(d, _)| *d),
        rise: v.get_or("HealthCheckRise", DEFAULT_HEALTH_CHECK_RISE, positive_count)?,
        fall: v.get_or("HealthCheckFall", DEFAULT_HEALTH_CHECK_FALL, positive_count)?,
    };
    if defaults.timeout > defaults.interval {
        if let Some((_, line)) = timeout.as_ref().or(interval.as_ref()) {
            warnings.push(format!(
                "{}: HealthCheckTimeout ({}) is longer than HealthCheckInterval ({}); probes will run back to back",
                line.location(),
                format_duration(defaults.timeout),
                format_duration(defaults.interval)
            ));
        }
    }

    // VirtualIP lines.
    let mut vips: Vec<VipConfig> = Vec::new();
    let mut vip_lines: Vec<&ConfigLine> = Vec::new();
    let mut index: HashMap<IpAddr, usize> = HashMap::new();
    for line in lines.iter().filter(|l| l.is("VirtualIP")) {
        let (address, prefix_len, weight) =
            parse_virtual_ip(&line.value).map_err(|r| line.error(format!("VirtualIP: {r}")))?;
        if let Some(&i) = index.get(&address) {
            return Err(line.error(format!(
                "VirtualIP: {address} is already configured at {}",
                vip_lines[i].location()
            )));
        }
        index.insert(address, vips.len());
        vip_lines.push(line);
        vips.push(VipConfig {
            address,
            prefix_len,
            weight,
            virtual_mac: virtual_mac_for(address),
            mac_overridden: false,
            checks: Vec::new(),
        });
    }

    refuse_own_addresses(lines, &vips, &vip_lines)?;

    // VirtualMAC lines.
    let mut mac_lines: HashMap<IpAddr, &ConfigLine> = HashMap::new();
    for line in lines.iter().filter(|l| l.is("VirtualMAC")) {
        let err = |r: String| line.error(format!("VirtualMAC: {r}"));
        let toks = tokens(&line.value);
        let [(_, addr_s), (_, mac_s)] = toks[..] else {
            return Err(err(format!(
                "'{}': expected 'ADDRESS MAC', e.g. '10.1.1.10 02:00:5e:00:01:0a'",
                line.value
            )));
        };
        let ip: IpAddr = addr_s
            .parse()
            .map_err(|_| err(format!("'{addr_s}' is not an IP address")))?;
        let Some(&i) = index.get(&ip) else {
            return Err(err(format!("{ip} has no VirtualIP line")));
        };
        if let Some(prev) = mac_lines.get(&ip) {
            return Err(err(format!(
                "{ip} already has a VirtualMAC at {}",
                prev.location()
            )));
        }
        let MacAddr(mac) = mac_s
            .parse()
            .map_err(|e: MacParseError| err(e.to_string()))?;
        if mac[0] & 0x01 != 0 {
            return Err(err(format!(
                "{} is a multicast address; a virtual MAC must be unicast",
                fmt_mac(&mac)
            )));
        }
        if mac == [0; 6] {
            return Err(err("00:00:00:00:00:00 is not a usable MAC address".into()));
        }
        if mac[0] & 0x02 == 0 {
            warnings.push(format!(
                "{}: VirtualMAC {} for {ip} is not locally administered (second bit of the first byte clear); it could clash with a real network card",
                line.location(),
                fmt_mac(&mac)
            ));
        }
        mac_lines.insert(ip, line);
        vips[i].virtual_mac = mac;
        vips[i].mac_overridden = true;
    }

    // Every VIP needs its own virtual MAC.
    let mut by_mac: HashMap<[u8; 6], usize> = HashMap::new();
    for (i, vip) in vips.iter().enumerate() {
        if let Some(&j) = by_mac.get(&vip.virtual_mac) {
            let other = &vips[j];
            let here = mac_lines.get(&vip.address).copied().unwrap_or(vip_lines[i]);
            let there = mac_lines
                .get(&other.address)
                .copied()
                .unwrap_or(vip_lines[j]);
            return Err(here.error(format!(
                "VirtualMAC {} of {} is also the virtual MAC of {} ({}); every VIP needs its own",
                fmt_mac(&vip.virtual_mac),
                vip.address,
                other.address,
                there.location()
            )));
        }
        by_mac.insert(vip.virtual_mac, i);
    }

    // HealthCheck lines.
    for line in lines.iter().filter(|l| l.is("HealthCheck")) {
        let err = |r: String| line.error(format!("HealthCheck: {r}"));
        let toks = tokens(&line.value);
        let Some(&(_, addr_s)) = toks.first() else {
            return Err(err("expected 'ADDRESS exec|tcp|udp ...'".into()));
        };
        let ip: IpAddr = addr_s
            .parse()
            .map_err(|_| err(format!("'{addr_s}' is not an IP address")))?;
        let Some(&i) = index.get(&ip) else {
            return Err(err(format!("{ip} has no VirtualIP line")));
        };
        let (kind, opts) = parse_check_body(&line.value, &toks[1..]).map_err(err)?;
        let spec = HealthCheckSpec {
            vip: ip,
            kind,
            interval: opts.interval.unwrap_or(defaults.interval),
            timeout: opts.timeout.unwrap_or(defaults.timeout),
            rise: opts.rise.unwrap_or(defaults.rise),
            fall: opts.fall.unwrap_or(defaults.fall),
            origin: line.location(),
        };
        let own_timing = opts.interval.is_some() || opts.timeout.is_some();
        if own_timing && spec.timeout > spec.interval {
            warnings.push(format!(
                "{}: HealthCheck timeout ({}) is longer than its interval ({}); probes will run back to back",
                line.location(),
                format_duration(spec.timeout),
                format_duration(spec.interval)
            ));
        }
        vips[i].checks.push(spec);
    }

    Ok(VipSettings {
        vips,
        hold_down,
        flow_idle_timeout,
        shutdown_grace,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_config_text;
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<(VipSettings, Vec<String>), ConfigError> {
        let lines = parse_config_text(text, Path::new("/n/meshd.conf"))?;
        let mut warnings = Vec::new();
        let s = parse_vip_settings(&lines, &mut warnings)?;
        Ok((s, warnings))
    }

    fn ok(text: &str) -> VipSettings {
        let (s, w) = parse(text).unwrap();
        assert!(w.is_empty(), "{w:?}");
        s
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn mac_derivation() {
        assert_eq!(
            virtual_mac_for(ip("10.1.1.10")),
            [0x02, 0x6d, 0x0a, 0x01, 0x01, 0x0a]
        );
        assert_eq!(
            fmt_mac(&virtual_mac_for(ip("10.1.1.10"))),
            "02:6d:0a:01:01:0a"
        );
        let v6 = virtual_mac_for(ip("2001:db8::10"));
        assert_eq!(&v6[..2], &[0x06, 0x6d]);
        let h = Sha256::digest(ip6_octets("2001:db8::10"));
        assert_eq!(&v6[2..], &h[..4]);
        for mac in [virtual_mac_for(ip("192.0.2.1")), v6] {
            assert_eq!(mac[0] & 0x01, 0, "unicast");
            assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
        }
        assert_ne!(v6, virtual_mac_for(ip("2001:db8::11")));
    }

    fn ip6_octets(s: &str) -> [u8; 16] {
        match ip(s) {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        }
    }

    #[test]
    fn defaults_without_vips() {
        let s = ok("Name = alpha\n");
        assert_eq!(s, VipSettings::default());
        assert_eq!(s.hold_down, Duration::from_secs(1));
        assert_eq!(s.flow_idle_timeout, Duration::from_secs(60));
        assert_eq!(s.shutdown_grace, ms(500));
        assert!(s.health_checks().is_empty());
    }

    #[test]
    fn virtual_ip_forms() {
        let s = ok(
            "VirtualIP = 10.1.1.10/24\nvirtualip 10.1.2.10/24#5\nVIRTUALIP=10.1.3.10\n\
             VirtualIP = 2001:db8::10/64#3\nVirtualIP = 10.1.4.10 # 7\n",
        );
        let got: Vec<_> = s
            .vips
            .iter()
            .map(|v| (v.address, v.prefix_len, v.weight, v.mac_overridden))
            .collect();
        assert_eq!(
            got,
            vec![
                (ip("10.1.1.10"), 24, 10, false),
                (ip("10.1.2.10"), 24, 5, false),
                (ip("10.1.3.10"), 32, 10, false),
                (ip("2001:db8::10"), 64, 3, false),
                (ip("10.1.4.10"), 32, 7, false),
            ]
        );
        assert_eq!(s.vips[0].virtual_mac, [0x02, 0x6d, 10, 1, 1, 10]);
        assert_eq!(ok("VirtualIP = 2001:db8::1\n").vips[0].prefix_len, 128);
        assert!(s.vips.iter().all(|v| v.checks.is_empty()));
        assert_eq!(s.find(ip("10.1.2.10")).map(|v| v.weight), Some(5));
        assert!(s.find(ip("10.9.9.9")).is_none());
    }

    #[test]
    fn virtual_ip_errors() {
        assert_eq!(
            err("Name = a\nVirtualIP = 10.1.1.300/24\n"),
            "/n/meshd.conf:2: VirtualIP: '10.1.1.300/24' is not an IP address[/prefix][#weight]"
        );
        for bad in [
            "foo",
            "10.1.1.1/",
            "10.1.1.1/x",
            "10.1.1.1/+8",
            "10.1.1.1 extra",
        ] {
            assert!(
                err(&format!("VirtualIP = {bad}\n"))
                    .contains("is not an IP address[/prefix][#weight]"),
                "{bad}"
            );
        }
        assert!(err("VirtualIP = 10.1.1.1/33\n").contains("prefix length must be 0-32"));
        assert!(err("VirtualIP = ::10/129\n").contains("prefix length must be 0-128"));
        assert!(err("VirtualIP = 10.1.1.1#-1\n").contains("'-1' in '10.1.1.1#-1' is not a weight"));
        assert!(err("VirtualIP = 10.1.1.1#\n").contains("is not a weight"));
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.5",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
        ] {
            assert!(
                err(&format!("VirtualIP = {bad}\n")).contains("cannot be a virtual IP"),
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicate_vip_errors_at_second_line() {
        assert_eq!(
            err("VirtualIP = 10.1.1.10/24\nVirtualIP = 10.1.1.11\nVirtualIP = 10.1.1.10#5\n"),
            "/n/meshd.conf:3: VirtualIP: 10.1.1.10 is already configured at /n/meshd.conf:1"
        );
    }

    #[test]
    fn ipv6_virtual_ip_bad_input() {
        assert_eq!(
            err("Name = a\nVirtualIP = fe80::10/64\n"),
            "/n/meshd.conf:2: VirtualIP: 'fe80::10/64': fe80::10 is link-local (fe80::/10); a virtual IP must be routable (use a ULA such as fd00::/8)"
        );
        assert!(err("VirtualIP = febf::1\n").contains("is link-local"));
        assert!(err("VirtualIP = ff05::10\n").contains("cannot be a virtual IP"));
        assert!(err("VirtualIP = ::ffff:10.1.1.10\n").contains("IPv4-mapped"));
        // fec0:: is past fe80::/10: accepted.
        assert_eq!(ok("VirtualIP = fec0::1\n").vips.len(), 1);
        // A VIP equal to the node's own address (a host Subnet or an Address line).
        assert_eq!(
            err("Subnet = fd00:1::2/128\nVirtualIP = fd00:1::2/64\n"),
            "/n/meshd.conf:2: VirtualIP: fd00:1::2 is this node's own address (Subnet at /n/meshd.conf:1); a VIP must be an address of its own"
        );
        assert!(err("VirtualIP = 10.1.1.2/24\nSubnet = 10.1.1.2\n")
            .starts_with("/n/meshd.conf:1: VirtualIP: 10.1.1.2 is this node's own address"));
        assert!(err("Address = fd00:9::1 655\nVirtualIP = fd00:9::1\n")
            .contains("own address (Address at /n/meshd.conf:1)"));
        // A network Subnet containing the VIP is fine (that is the usual case).
        assert_eq!(
            ok("Subnet = fd00:1::/64\nVirtualIP = fd00:1::10/64\nVirtualIP = 10.1.1.10/24\n")
                .vips
                .len(),
            2
        );
    }

    #[test]
    fn ipv6_macs_never_equal_ipv4_ones() {
        // Derived IPv6 MACs start 06:6d, derived IPv4 ones 02:6d.
        for s in ["fd00:1::10", "2001:db8::1", "fd00::a01:10a", "::a01:10a"] {
            assert_eq!(&virtual_mac_for(ip(s))[..2], &[0x06, 0x6d], "{s}");
        }
        // The documented example (PROTOCOL.md §7.1).
        assert_eq!(
            fmt_mac(&virtual_mac_for(ip("fd00:1::10"))),
            fmt_mac(&{
                let h = Sha256::digest(ip6_octets("fd00:1::10"));
                [0x06, 0x6d, h[0], h[1], h[2], h[3]]
            })
        );
        // An override that collides with a derived IPv6 MAC of another VIP is refused.
        let v6mac = fmt_mac(&virtual_mac_for(ip("fd00:1::10")));
        let e = err(&format!(
            "VirtualIP = fd00:1::10/64\nVirtualIP = 10.1.1.10/24\nVirtualMAC = 10.1.1.10 {v6mac}\n"
        ));
        assert!(e.starts_with("/n/meshd.conf:3: VirtualMAC "), "{e}");
        assert!(
            e.contains("also the virtual MAC of fd00:1::10 (/n/meshd.conf:1)"),
            "{e}"
        );
        // A dual-stack service: one IPv4 and one IPv6 VIP, distinct MACs.
        let s = ok("VirtualIP = 10.1.1.10/24\nVirtualIP = fd00:1::10/64\n");
        assert_ne!(s.vips[0].virtual_mac, s.vips[1].virtual_mac);
    }

    #[test]
    fn virtual_mac_override() {
        let s = ok("VirtualIP = 10.1.1.10/24\nVirtualIP = 10.1.1.11\n\
             VirtualMAC = 10.1.1.10 02:00:5E:00:01:0a\n");
        assert_eq!(s.vips[0].virtual_mac, [2, 0, 0x5e, 0, 1, 0x0a]);
        assert!(s.vips[0].mac_overridden);
        assert_eq!(s.vips[1].virtual_mac, virtual_mac_for(ip("10.1.1.11")));
        assert!(!s.vips[1].mac_overridden);
    }

    #[test]
    fn virtual_mac_rules() {
        // Not locally administered: a warning.
        let (s, w) =
            parse("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 00:11:22:33:44:55\n").unwrap();
        assert_eq!(s.vips[0].virtual_mac, [0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("/n/meshd.conf:2: VirtualMAC 00:11:22:33:44:55 for 10.1.1.10 is not locally administered"), "{w:?}");
        // Multicast: an error.
        assert_eq!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 03:00:00:00:00:01\n"),
            "/n/meshd.conf:2: VirtualMAC: 03:00:00:00:00:01 is a multicast address; a virtual MAC must be unicast"
        );
        assert!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 ff:ff:ff:ff:ff:ff\n")
                .contains("multicast")
        );
        assert!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 00:00:00:00:00:00\n")
                .contains("not a usable MAC")
        );
        // No VirtualIP for that address (even a later one in another VIP is not enough).
        assert_eq!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.11 02:00:00:00:00:01\n"),
            "/n/meshd.conf:2: VirtualMAC: 10.1.1.11 has no VirtualIP line"
        );
        // Syntax.
        assert!(err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10\n")
            .contains("expected 'ADDRESS MAC'"));
        assert_eq!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 02:00:00:00:00\n"),
            "/n/meshd.conf:2: VirtualMAC: invalid MAC address \"02:00:00:00:00\": 5 ':'-separated \
             groups, expected 6 (a MAC is six groups of 1-2 hex digits separated by ':', e.g. \
             02:00:00:00:00:0a)"
        );
        // One MAC grammar (tinc's, MacAddr's): one-digit groups yes, '-' no.
        let s = ok("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 2:0:0:0:0:a\n");
        assert_eq!(s.vips[0].virtual_mac, [2, 0, 0, 0, 0, 0x0a]);
        assert!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 02-00-00-00-00-0a\n")
                .contains("'-' is not a MAC separator (use ':')")
        );
        assert!(
            err("VirtualIP = 10.1.1.10\nVirtualMAC = x 02:00:00:00:00:01\n")
                .contains("'x' is not an IP address")
        );
        // Twice for the same VIP.
        assert_eq!(
            err(
                "VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 02:00:00:00:00:01\n\
                 VirtualMAC = 10.1.1.10 02:00:00:00:00:02\n"
            ),
            "/n/meshd.conf:3: VirtualMAC: 10.1.1.10 already has a VirtualMAC at /n/meshd.conf:2"
        );
        // The VirtualMAC line may come before the VirtualIP line.
        let s = ok("VirtualMAC = 10.1.1.10 02:00:00:00:00:01\nVirtualIP = 10.1.1.10\n");
        assert!(s.vips[0].mac_overridden);
    }

    #[test]
    fn virtual_macs_must_be_distinct() {
        // An override equal to another VIP's derived MAC.
        assert_eq!(
            err("VirtualIP = 10.1.1.10\nVirtualIP = 10.1.1.11\nVirtualMAC = 10.1.1.11 02:6d:0a:01:01:0a\n"),
            "/n/meshd.conf:3: VirtualMAC 02:6d:0a:01:01:0a of 10.1.1.11 is also the virtual MAC of 10.1.1.10 (/n/meshd.conf:1); every VIP needs its own"
        );
        // Two overrides alike.
        let e = err("VirtualIP = 10.1.1.10\nVirtualIP = 10.1.1.11\nVirtualMAC = 10.1.1.10 02:00:00:00:00:01\n\
             VirtualMAC = 10.1.1.11 02:00:00:00:00:01\n");
        assert!(
            e.starts_with("/n/meshd.conf:4: VirtualMAC 02:00:00:00:00:01"),
            "{e}"
        );
    }

    #[test]
    fn health_checks_with_defaults() {
        let s = ok("VirtualIP = 10.1.1.10/24\n\
             HealthCheck = 10.1.1.10 exec /usr/local/bin/check-dns --fast\n\
             HealthCheck = 10.1.1.10 tcp 127.0.0.1:53\n\
             HealthCheck = 10.1.1.10 udp [::1]:53\n");
        let c = &s.vips[0].checks;
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0].kind,
            CheckKind::Exec("/usr/local/bin/check-dns --fast".into())
        );
        assert_eq!(c[1].kind, CheckKind::Tcp("127.0.0.1:53".parse().unwrap()));
        assert_eq!(
            c[2].kind,
            CheckKind::Udp {
                addr: "[::1]:53".parse().unwrap(),
                send: Vec::new(),
                expect: None
            }
        );
        for check in c {
            assert_eq!(check.vip, ip("10.1.1.10"));
            assert_eq!((check.interval, check.timeout), (ms(500), ms(500)));
            assert_eq!((check.rise, check.fall), (2, 2));
        }
        assert_eq!(c[1].origin, "/n/meshd.conf:3");
        assert_eq!(s.health_checks().len(), 3);
    }

    #[test]
    fn health_check_options() {
        let s = ok("VirtualIP = 10.1.1.10\n\
             HealthCheck = 10.1.1.10 tcp interval=1s 127.0.0.1:53 timeout=300ms rise=3 fall=1\n\
             HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=0A0b expect=ff rise=5\n\
             HealthCheck = 10.1.1.10 exec timeout=100ms  fall=4   FOO=x  test -f '/a b'  rise=9\n");
        let c = &s.vips[0].checks;
        assert_eq!(
            (c[0].interval, c[0].timeout, c[0].rise, c[0].fall),
            (ms(1000), ms(300), 3, 1)
        );
        assert_eq!(
            c[1].kind,
            CheckKind::Udp {
                addr: "127.0.0.1:53".parse().unwrap(),
                send: vec![0x0a, 0x0b],
                expect: Some(vec![0xff])
            }
        );
        assert_eq!((c[1].rise, c[1].fall), (5, 2));
        // exec: options only before the command; the command is kept verbatim.
        assert_eq!(
            c[2].kind,
            CheckKind::Exec("FOO=x  test -f '/a b'  rise=9".into())
        );
        assert_eq!((c[2].timeout, c[2].fall, c[2].rise), (ms(100), 4, 2));
    }

    #[test]
    fn global_check_defaults() {
        let (s, w) = parse(
            "VirtualIP = 10.1.1.10\nHealthCheckInterval = 200ms\nHealthCheckTimeout = 1s\n\
             HealthCheckRise = 4\nHealthCheckFall = 3\n\
             HealthCheck = 10.1.1.10 tcp 127.0.0.1:80\n\
             HealthCheck = 10.1.1.10 tcp 127.0.0.1:81 timeout=100ms\n",
        )
        .unwrap();
        let c = &s.vips[0].checks;
        assert_eq!(
            (c[0].interval, c[0].timeout, c[0].rise, c[0].fall),
            (ms(200), ms(1000), 4, 3)
        );
        assert_eq!((c[1].interval, c[1].timeout), (ms(200), ms(100)));
        // The global mismatch is warned about once, at the HealthCheckTimeout line.
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(
            "/n/meshd.conf:3: HealthCheckTimeout (1s) is longer than HealthCheckInterval (200ms)"
        ));
        // A check's own mismatch is warned about at its line.
        let (_, w) = parse(
            "VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 tcp 127.0.0.1:80 interval=100ms\n",
        )
        .unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(
            "/n/meshd.conf:2: HealthCheck timeout (500ms) is longer than its interval (100ms)"
        ));
    }

    #[test]
    fn timing_variables() {
        let s = ok("VIPHoldDown = 2.5s\nFlowIdleTimeout = 5m\nShutdownGrace = 0\n");
        assert_eq!(s.hold_down, ms(2500));
        assert_eq!(s.flow_idle_timeout, Duration::from_secs(300));
        assert_eq!(s.shutdown_grace, Duration::ZERO);
        assert_eq!(ok("viPholddown = 0ms\n").hold_down, Duration::ZERO);
        assert!(err("FlowIdleTimeout = 0\n")
            .contains("bad value for FlowIdleTimeout: '0' must be greater than zero"));
        assert!(err("VIPHoldDown = soon\n")
            .starts_with("/n/meshd.conf:1: bad value for VIPHoldDown: 'soon' is not a duration"));
        assert!(err("ShutdownGrace = -1s\n").contains("bad value for ShutdownGrace"));
        assert!(err("HealthCheckInterval = 0s\n").contains("bad value for HealthCheckInterval"));
        assert!(err("HealthCheckTimeout = x\n").contains("bad value for HealthCheckTimeout"));
        assert!(err("HealthCheckRise = 0\n")
            .contains("bad value for HealthCheckRise: '0' is not a positive count"));
        assert!(err("HealthCheckFall = +2\n").contains("bad value for HealthCheckFall"));
        // Given twice: the first wins, with a warning.
        let (s, w) = parse("VIPHoldDown = 2s\nVIPHoldDown = 3s\n").unwrap();
        assert_eq!(s.hold_down, Duration::from_secs(2));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn health_check_errors() {
        let e = |line: &str| err(&format!("VirtualIP = 10.1.1.10\n{line}\n"));
        assert_eq!(
            e("HealthCheck = 10.1.1.11 tcp 127.0.0.1:53"),
            "/n/meshd.conf:2: HealthCheck: 10.1.1.11 has no VirtualIP line"
        );
        assert_eq!(
            e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 interval=5x"),
            "/n/meshd.conf:2: HealthCheck: bad interval: '5x' is not a duration (e.g. 100ms, 2s, 1.5s, 1m; a bare number means seconds)"
        );
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 timeout=0")
            .contains("bad timeout: '0' must be greater than zero"));
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 rise=0")
            .contains("bad rise: '0' is not a positive count"));
        assert!(e("HealthCheck = 10.1.1.10 exec fall=x true")
            .contains("bad fall: 'x' is not a positive count"));
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 rise=1 rise=2")
            .contains("rise= is given twice"));
        assert!(
            e("HealthCheck = x tcp 127.0.0.1:53").contains("HealthCheck: 'x' is not an IP address")
        );
        assert!(e("HealthCheck = 10.1.1.10").contains("expected 'ADDRESS exec|tcp|udp ...'"));
        assert!(e("HealthCheck = 10.1.1.10 icmp 127.0.0.1").contains("'icmp' is not a check type"));
        assert!(e("HealthCheck = 10.1.1.10 exec").contains("exec needs a command"));
        assert!(e("HealthCheck = 10.1.1.10 exec interval=1s").contains("exec needs a command"));
        assert!(e("HealthCheck = 10.1.1.10 tcp").contains("tcp needs an address:port"));
        assert!(e("HealthCheck = 10.1.1.10 udp rise=1").contains("udp needs an address:port"));
        assert!(e("HealthCheck = 10.1.1.10 tcp localhost:53")
            .contains("'localhost:53' is not an address:port"));
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1").contains("is not an address:port"));
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:0").contains("port 0"));
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 127.0.0.1:54")
            .contains("unexpected '127.0.0.1:54'"));
        assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 send=00")
            .contains("unknown option 'send=00' for tcp"));
        assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 foo=1")
            .contains("unknown option 'foo=1' for udp"));
        assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=zz")
            .contains("bad send: 'zz' is not hex bytes"));
        assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=abc").contains("bad send"));
        assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 expect=")
            .contains("bad expect: it must not be empty"));
        assert!(
            e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=00 send=01")
                .contains("send= is given twice")
        );
        // An empty send= is an empty datagram.
        let s = ok("VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=\n");
        assert!(
            matches!(&s.vips[0].checks[0].kind, CheckKind::Udp { send, .. } if send.is_empty())
        );
    }

    #[test]
    fn multi_vip_config() {
        let lines = parse_config_text(
            "Name = alpha\nHealthCheckFall = 3\nVIPHoldDown = 500ms\n\
             VirtualIP = 10.1.1.10/24\nHealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=00\n",
            Path::new("/n/meshd.conf"),
        )
        .unwrap()
        .into_iter()
        .chain(
            parse_config_text(
                "Subnet = 10.1.1.2/32\nVirtualIP = 10.1.1.20/24#20\nVirtualIP = 2001:db8::53/64#5\n\
                 VirtualMAC = 10.1.1.20 02:00:00:00:00:20\n\
                 HealthCheck = 2001:db8::53 tcp [::1]:53 rise=1\n\
                 HealthCheck = 10.1.1.20 exec /bin/true\nHealthCheck = 10.1.1.20 tcp 127.0.0.1:80\n",
                Path::new("/n/hosts/alpha"),
            )
            .unwrap(),
        )
        .collect::<Vec<_>>();
        let mut warnings = Vec::new();
        let s = parse_vip_settings(&lines, &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(s.hold_down, ms(500));
        let addrs: Vec<_> = s.vips.iter().map(|v| v.address).collect();
        assert_eq!(
            addrs,
            [ip("10.1.1.10"), ip("10.1.1.20"), ip("2001:db8::53")]
        );
        let v = &s.vips;
        assert_eq!((v[0].weight, v[1].weight, v[2].weight), (10, 20, 5));
        assert_eq!(v[0].checks.len(), 1);
        assert_eq!(v[0].checks[0].fall, 3);
        assert_eq!(v[1].virtual_mac, [2, 0, 0, 0, 0, 0x20]);
        assert_eq!(v[1].checks.len(), 2);
        assert_eq!(v[1].checks[0].origin, "/n/hosts/alpha:6");
        assert_eq!(v[2].virtual_mac, virtual_mac_for(ip("2001:db8::53")));
        assert_eq!((v[2].checks[0].rise, v[2].checks[0].fall), (1, 3));
        let all: Vec<_> = s.health_checks().iter().map(|c| c.vip).collect();
        assert_eq!(
            all,
            [
                ip("10.1.1.10"),
                ip("10.1.1.20"),
                ip("10.1.1.20"),
                ip("2001:db8::53")
            ]
        );
    }

    #[test]
    fn known_variables() {
        for var in [
            "VirtualIP",
            "VirtualMAC",
            "HealthCheck",
            "HealthCheckInterval",
            "HealthCheckTimeout",
            "HealthCheckRise",
            "HealthCheckFall",
            "VIPHoldDown",
            "FlowIdleTimeout",
            "ShutdownGrace",
        ] {
            assert!(super::super::known::is_known(var), "{var}");
        }
        assert!(super::super::known::is_multi_valued("healthcheck"));
    }
}
