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
//! * `HealthCheck = ADDRESS presence [interval=] [rise=] [fall=]`: healthy while a station on
//!   this node's side of the TAP (its own stack, a container or VM on a bridge with the TAP, a
//!   LAN host) answers ARP (IPv4) or a Neighbour Solicitation (IPv6) for the VIP. meshd probes
//!   itself every interval; a probe unanswered by the next one failed. No command runs. At most
//!   one per VIP; `timeout=` does not apply.
//! * `VIPOwner = ADDRESS MAC`: frames for the VIP are delivered to this MAC on the local side
//!   (the container or host that holds the address). Without it, meshd learns the owner from
//!   its ARP/ND and probes; a VIP on the TAP itself needs neither. A unicast MAC, not a virtual
//!   MAC.
//! * `VIPPolicy = ADDRESS hash|nearest`: how senders pick among this VIP's holders for a new
//!   flow. `hash` (the default) shares flows by rendezvous hashing; `nearest` sends each new
//!   flow to the holder with the lowest round-trip time from the sender, changing its choice
//!   only for one 20 % and 0.5 ms faster. The holder announces it in its record; senders use
//!   `nearest` only while every holder of the lowest weight asks for it (else `hash`).
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

use super::host::Vars;
use super::parse::ConfigLine;
use super::types::{format_duration, parse_duration};
use super::ConfigError;
use meshd_core::subnet::{Subnet, SubnetAddr};
use meshd_core::switch::{MacAddr, MacParseError};

#[path = "vip_check.rs"]
mod check;
#[path = "vip_owner_policy.rs"]
mod owner_policy;
use check::{parse_check_body, CheckDefaults};
pub use meshd_core::vip::{virtual_mac_for, SteerPolicy};
use owner_policy::{parse_owners, parse_policies};

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
    /// `VIPOwner`: the MAC of the station holding the VIP on the local side.
    pub owner: Option<[u8; 6]>,
    /// `VIPPolicy`: how senders pick a holder for a new flow.
    pub policy: SteerPolicy,
}

impl VipConfig {
    /// The presence check, if one of [`VipConfig::checks`] is one (the core runs it).
    pub fn presence(&self) -> Option<&HealthCheckSpec> {
        self.checks
            .iter()
            .find(|c| matches!(c.kind, CheckKind::Presence))
    }
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
    /// A station on the local side answers ARP/ND for the VIP (probed by the core, not
    /// the driver; `timeout` is unused).
    Presence,
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
    /// Every health check of every VIP that the driver runs (all but presence), in
    /// configuration order.
    pub fn health_checks(&self) -> Vec<HealthCheckSpec> {
        self.vips
            .iter()
            .flat_map(|v| v.checks.iter())
            .filter(|c| c.kind != CheckKind::Presence)
            .cloned()
            .collect()
    }

    /// The VIP with this address, if configured.
    pub fn find(&self, address: IpAddr) -> Option<&VipConfig> {
        self.vips.iter().find(|v| v.address == address)
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
/// One `VAR = ADDRESS VALUE` line about a configured VIP.
pub(super) struct VipLine<'a> {
    pub line: &'a ConfigLine,
    pub ip: IpAddr,
    /// The VIP's position in the `VirtualIP` list.
    pub index: usize,
    /// The word after the address.
    pub value: &'a str,
}

/// The `var` lines (`ADDRESS VALUE`, at most one per VIP), in order. Errors
/// name the line: not two words (`usage` says what is expected), not an IP
/// address, no `VirtualIP` for it, or a second line for the same VIP.
pub(super) fn per_vip_lines<'a>(
    lines: &'a [ConfigLine],
    var: &str,
    usage: &str,
    index: &HashMap<IpAddr, usize>,
) -> Result<Vec<VipLine<'a>>, ConfigError> {
    let mut out: Vec<VipLine<'a>> = Vec::new();
    for line in lines.iter().filter(|l| l.is(var)) {
        let err = |r: String| line.error(format!("{var}: {r}"));
        let toks = tokens(&line.value);
        let [(_, addr_s), (_, value)] = toks[..] else {
            return Err(err(format!("'{}': expected {usage}", line.value)));
        };
        let ip: IpAddr = addr_s
            .parse()
            .map_err(|_| err(format!("'{addr_s}' is not an IP address")))?;
        let Some(&i) = index.get(&ip) else {
            return Err(err(format!("{ip} has no VirtualIP line")));
        };
        if let Some(prev) = out.iter().find(|v| v.ip == ip) {
            return Err(err(format!(
                "{ip} already has a {var} at {}",
                prev.line.location()
            )));
        }
        out.push(VipLine {
            line,
            ip,
            index: i,
            value,
        });
    }
    Ok(out)
}

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
            owner: None,
            policy: SteerPolicy::Hash,
        });
    }

    refuse_own_addresses(lines, &vips, &vip_lines)?;

    // VirtualMAC lines.
    let mut mac_lines: HashMap<IpAddr, &ConfigLine> = HashMap::new();
    let usage = "'ADDRESS MAC', e.g. '10.1.1.10 02:00:5e:00:01:0a'";
    for VipLine {
        line,
        ip,
        index: i,
        value: mac_s,
    } in per_vip_lines(lines, "VirtualMAC", usage, &index)?
    {
        let err = |r: String| line.error(format!("VirtualMAC: {r}"));
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

    parse_owners(lines, &index, &mut vips)?;
    parse_policies(lines, &index, &mut vips)?;

    // HealthCheck lines.
    let mut presence_lines: HashMap<IpAddr, &ConfigLine> = HashMap::new();
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
        if kind == CheckKind::Presence {
            if let Some(prev) = presence_lines.insert(ip, line) {
                return Err(err(format!(
                    "{ip} already has a presence check at {}",
                    prev.location()
                )));
            }
        }
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
        if own_timing && spec.timeout > spec.interval && spec.kind != CheckKind::Presence {
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
#[path = "vip_tests.rs"]
mod tests;
