//! Value parsers for configuration variables: durations, booleans, ports, addresses.
//!
//! Each parser returns `Err(reason)` where the reason quotes the offending value, e.g.
//! `'abc' is not a port number (0-65535)`; callers prefix `FILE:LINE: bad value for VAR: `.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// tinc's default port (TCP and UDP).
pub const DEFAULT_PORT: u16 = 655;

/// Parses a duration: `100ms`, `2s`, `1.5s`, `1m`, `1h`, `250us`, `10ns`, or a bare number
/// meaning seconds (tinc's unit for `MACExpire`, `PingInterval`, `KeyExpire`). Blanks between
/// the number and the unit are allowed. Zero is accepted here; callers reject it where it
/// makes no sense.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("'{s}' is not a duration (e.g. 100ms, 2s, 1.5s, 1m; a bare number means seconds)")
    };
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..num_end], t[num_end..].trim_start());
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad());
    }
    let mult: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "ns" => 1,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    let digits = |d: &str| -> Result<u128, String> {
        if d.is_empty() {
            Ok(0)
        } else {
            d.parse::<u128>().map_err(|_| bad())
        }
    };
    let frac = &frac[..frac.len().min(18)];
    let int_ns = digits(int)?.checked_mul(mult).ok_or_else(bad)?;
    let frac_ns = digits(frac)? * mult / 10u128.pow(frac.len() as u32);
    let total = int_ns.checked_add(frac_ns).ok_or_else(bad)?;
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration so that [`parse_duration`] gives it back exactly: `2s`, `100ms`,
/// `250us` or `7ns`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else if nanos % 1_000 == 0 {
        format!("{}us", d.as_micros())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// Parses a boolean: yes/no, true/false, on/off, 1/0 (case-insensitive).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean (yes/no)")),
    }
}

/// Parses a port number 0..=65535.
pub fn parse_port(s: &str) -> Result<u16, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a port number (0-65535)"));
    }
    t.parse::<u16>()
        .map_err(|_| format!("'{s}' is not a port number (0-65535)"))
}

/// `AddressFamily`: which IP versions to listen on and connect with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamily {
    /// Both IPv4 and IPv6 (tinc's default).
    #[default]
    Any,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl FromStr for AddressFamily {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "any" => Ok(AddressFamily::Any),
            "ipv4" => Ok(AddressFamily::Ipv4),
            "ipv6" => Ok(AddressFamily::Ipv6),
            _ => Err(format!("'{s}' is not an address family (any, ipv4, ipv6)")),
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Any => "any",
            AddressFamily::Ipv4 => "ipv4",
            AddressFamily::Ipv6 => "ipv6",
        })
    }
}

/// The host part of an `Address` line: an IP address or a host name to resolve later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressHost {
    /// A literal IPv4/IPv6 address.
    Ip(IpAddr),
    /// A DNS name, kept as written.
    Name(String),
}

impl fmt::Display for AddressHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressHost::Ip(ip) => write!(f, "{ip}"),
            AddressHost::Name(n) => f.write_str(n),
        }
    }
}

/// An `Address = HOST [PORT]` line of a host file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddress {
    /// Where to connect.
    pub host: AddressHost,
    /// Explicit port; when absent the node's `Port` applies.
    pub port: Option<u16>,
}

impl HostAddress {
    /// The port to use, given the node's `Port` as fallback.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }
}

fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Splits `HOST [PORT]`; HOST may be a bracketed IPv6 address.
fn split_host_port(s: &str, what: &str) -> Result<(String, Option<u16>), String> {
    let mut parts = s.split_whitespace();
    let (Some(host), port, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("'{s}' is not of the form {what}"));
    };
    let port = port.map(parse_port).transpose()?;
    let host = match host.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']') {
            Some(h) if h.parse::<std::net::Ipv6Addr>().is_ok() => h.to_string(),
            _ => return Err(format!("'{host}' is not a bracketed IPv6 address")),
        },
        None => host.to_string(),
    };
    Ok((host, port))
}

impl FromStr for HostAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s, "HOST [PORT]")?;
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => AddressHost::Ip(ip),
            Err(_) if valid_hostname(&host) => AddressHost::Name(host),
            Err(_) => return Err(format!("'{host}' is not an IP address or host name")),
        };
        Ok(HostAddress { host, port })
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// A `BindToAddress = ADDR [PORT]` line; ADDR `*` means any address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BindAddress {
    /// The address to bind, `None` for `*` (any).
    pub addr: Option<IpAddr>,
    /// Explicit port; when absent the node's `Port` applies.
    pub port: Option<u16>,
}

impl FromStr for BindAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s, "ADDRESS [PORT]")?;
        let addr = if host == "*" {
            None
        } else {
            Some(
                host.parse::<IpAddr>()
                    .map_err(|_| format!("'{host}' is not an IP address or '*'"))?,
            )
        };
        Ok(BindAddress { addr, port })
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(ip) => write!(f, "{ip}")?,
            None => f.write_str("*")?,
        }
        if let Some(p) = self.port {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("100ms"), Duration::from_millis(100));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("600"), Duration::from_secs(600));
        assert_eq!(ok("0.25"), Duration::from_millis(250));
        assert_eq!(ok("100 ms"), Duration::from_millis(100));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        for bad in [
            "",
            "abc",
            "1x",
            "-1",
            "1..2",
            "1.2.3s",
            ".",
            "ms",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("abc").unwrap_err().contains("'abc'"));
    }

    #[test]
    fn duration_format_roundtrip() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_millis(1500),
            Duration::from_micros(1),
            Duration::from_nanos(123_456_789),
        ] {
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn booleans() {
        for t in ["yes", "YES", "true", "on", "1"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for f in ["no", "False", "off", "0"] {
            assert_eq!(parse_bool(f), Ok(false));
        }
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(
            parse_port("abc"),
            Err("'abc' is not a port number (0-65535)".to_string())
        );
        assert!(parse_port("65536").is_err());
        assert!(parse_port("+5").is_err());
        assert!(parse_port("-1").is_err());
    }

    #[test]
    fn host_addresses() {
        let a: HostAddress = "192.0.2.1".parse().unwrap();
        assert_eq!(a.host, AddressHost::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(a.port, None);
        assert_eq!(a.port_or(655), 655);
        let a: HostAddress = "example.com 1655".parse().unwrap();
        assert_eq!(a.host, AddressHost::Name("example.com".into()));
        assert_eq!(a.port, Some(1655));
        let a: HostAddress = "[2001:db8::1] 700".parse().unwrap();
        assert_eq!(a.host, AddressHost::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(a.to_string(), "2001:db8::1 700");
        let a: HostAddress = "fe80::1".parse().unwrap();
        assert!(matches!(a.host, AddressHost::Ip(_)));
        assert!("a b c".parse::<HostAddress>().is_err());
        assert!("host port".parse::<HostAddress>().is_err());
        assert!("[nothost] 1".parse::<HostAddress>().is_err());
        assert!("bad/host".parse::<HostAddress>().is_err());
    }

    #[test]
    fn bind_addresses() {
        let b: BindAddress = "* 655".parse().unwrap();
        assert_eq!(b.addr, None);
        assert_eq!(b.port, Some(655));
        assert_eq!(b.to_string(), "* 655");
        let b: BindAddress = "[::1]".parse().unwrap();
        assert_eq!(b.addr, Some("::1".parse().unwrap()));
        assert!("example.com".parse::<BindAddress>().is_err());
    }

    #[test]
    fn address_family() {
        assert_eq!("IPv4".parse(), Ok(AddressFamily::Ipv4));
        assert_eq!("any".parse(), Ok(AddressFamily::Any));
        assert!("ipx".parse::<AddressFamily>().is_err());
    }
}
