//! The `Subnet` value: a MAC address or an IPv4/IPv6 network, with an optional `#weight`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::switch::{MacAddr, MacParseError, MacParseReason};

/// Weight of a subnet without `#weight` (lower is preferred).
pub const DEFAULT_SUBNET_WEIGHT: i32 = 10;

/// What a [`Subnet`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubnetAddr {
    /// One Ethernet address (switch mode).
    Mac([u8; 6]),
    /// An IPv4 network; `addr` has no host bits set.
    Ipv4 {
        /// Network address.
        addr: Ipv4Addr,
        /// Prefix length 0..=32.
        prefix: u8,
    },
    /// An IPv6 network; `addr` has no host bits set.
    Ipv6 {
        /// Network address.
        addr: Ipv6Addr,
        /// Prefix length 0..=128.
        prefix: u8,
    },
}

/// A `Subnet = ...` value: `MAC` | `IPv4[/len]` | `IPv6[/len]`, optional `#weight`.
///
/// `Display` uses tinc's format: lowercase MAC, prefix omitted when it is the full length,
/// `#W` shown only when the weight is not 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The address or network.
    pub addr: SubnetAddr,
    /// Preference weight, default [`DEFAULT_SUBNET_WEIGHT`]; lower is preferred.
    pub weight: i32,
}

impl Subnet {
    /// A MAC subnet with the default weight.
    pub fn mac(mac: [u8; 6]) -> Subnet {
        Subnet {
            addr: SubnetAddr::Mac(mac),
            weight: DEFAULT_SUBNET_WEIGHT,
        }
    }

    /// Whether this is a MAC subnet for exactly `mac`.
    pub fn matches_mac(&self, mac: &[u8; 6]) -> bool {
        matches!(&self.addr, SubnetAddr::Mac(m) if m == mac)
    }

    /// Whether this is an IP subnet containing `ip`.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (SubnetAddr::Ipv4 { addr, prefix }, IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(prefix) == u32::from(addr)
            }
            (SubnetAddr::Ipv6 { addr, prefix }, IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(prefix) == u128::from(addr)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (body, weight) = match t.split_once('#') {
            Some((b, w)) => {
                let w = w
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| format!("'{w}' in '{s}' is not a subnet weight"))?;
                (b.trim(), w)
            }
            None => (t, DEFAULT_SUBNET_WEIGHT),
        };
        let (addr_s, prefix_s) = match body.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (body, None),
        };
        let mac = addr_s.parse::<MacAddr>();
        let addr = if let Ok(MacAddr(mac)) = mac {
            if prefix_s.is_some() {
                return Err(format!("'{s}': a MAC subnet cannot have a prefix length"));
            }
            SubnetAddr::Mac(mac)
        } else if let Err(
            e @ MacParseError {
                reason: MacParseReason::DashSeparator,
                ..
            },
        ) = mac
        {
            return Err(e.to_string());
        } else if let Ok(ip) = addr_s.parse::<IpAddr>() {
            let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix_s {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                    _ => return Err(format!("'{s}': prefix length must be 0-{max}")),
                },
            };
            let (addr, network) = match ip {
                IpAddr::V4(a) => {
                    let net = Ipv4Addr::from(u32::from(a) & mask_v4(prefix));
                    (SubnetAddr::Ipv4 { addr: a, prefix }, IpAddr::V4(net))
                }
                IpAddr::V6(a) => {
                    let net = Ipv6Addr::from(u128::from(a) & mask_v6(prefix));
                    (SubnetAddr::Ipv6 { addr: a, prefix }, IpAddr::V6(net))
                }
            };
            if network != ip {
                return Err(format!(
                    "'{s}' is not a network address (host bits are set; did you mean {network}/{prefix}?)"
                ));
            }
            addr
        } else {
            return Err(format!(
                "'{s}' is not a subnet (expected MAC, IPv4[/len] or IPv6[/len], optional #weight)"
            ));
        };
        Ok(Subnet { addr, weight })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            SubnetAddr::Mac(m) => write!(f, "{}", MacAddr(m))?,
            SubnetAddr::Ipv4 { addr, prefix } => {
                write!(f, "{addr}")?;
                if prefix != 32 {
                    write!(f, "/{prefix}")?;
                }
            }
            SubnetAddr::Ipv6 { addr, prefix } => {
                write!(f, "{addr}")?;
                if prefix != 128 {
                    write!(f, "/{prefix}")?;
                }
            }
        }
        if self.weight != DEFAULT_SUBNET_WEIGHT {
            write!(f, "#{}", self.weight)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn mac_subnets() {
        let s = p("AA:bb:0:1:2:3");
        assert_eq!(s.addr, SubnetAddr::Mac([0xaa, 0xbb, 0, 1, 2, 3]));
        assert_eq!(s.weight, 10);
        assert_eq!(s.to_string(), "aa:bb:00:01:02:03");
        assert!(s.matches_mac(&[0xaa, 0xbb, 0, 1, 2, 3]));
        assert_eq!(p("aa:bb:cc:dd:ee:ff#5").to_string(), "aa:bb:cc:dd:ee:ff#5");
        assert!("aa:bb:cc:dd:ee:ff/48".parse::<Subnet>().is_err());
        assert!("aa:bb:cc:dd:ee".parse::<Subnet>().is_err());
        assert!("aa:bb:cc:dd:ee:ff:00".parse::<Subnet>().is_err());
        assert!("aaa:bb:cc:dd:ee:ff".parse::<Subnet>().is_err());
        // tinc's grammar, the same as MacAddr's: 1-2 hex digits, ':' only.
        assert_eq!(p("2:0:0:0:0:a").to_string(), "02:00:00:00:00:0a");
        let e = "02-00-00-00-00-0a".parse::<Subnet>().unwrap_err();
        assert!(e.contains("'-' is not a MAC separator (use ':')"), "{e}");
        let e = "02-00-00-00-00-0a#5".parse::<Subnet>().unwrap_err();
        assert!(e.contains("'-' is not a MAC separator"), "{e}");
    }

    #[test]
    fn ip_subnets() {
        let s = p("192.168.1.0/24");
        assert_eq!(
            s.addr,
            SubnetAddr::Ipv4 {
                addr: Ipv4Addr::new(192, 168, 1, 0),
                prefix: 24
            }
        );
        assert_eq!(s.to_string(), "192.168.1.0/24");
        assert!(s.contains_ip("192.168.1.77".parse().unwrap()));
        assert!(!s.contains_ip("192.168.2.1".parse().unwrap()));
        assert_eq!(p("10.1.1.1").to_string(), "10.1.1.1");
        assert_eq!(p("10.1.1.1/32#3").to_string(), "10.1.1.1#3");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(p("2001:DB8::/32").to_string(), "2001:db8::/32");
        assert_eq!(p("::1/128").to_string(), "::1");
        assert_eq!(p("::/0#-1").weight, -1);
        assert!(p("::/0").contains_ip("2001::1".parse().unwrap()));
    }

    #[test]
    fn bad_subnets() {
        let e = "192.168.1.1/24".parse::<Subnet>().unwrap_err();
        assert!(e.contains("not a network address"), "{e}");
        assert!(e.contains("192.168.1.0/24"), "{e}");
        assert!("2001:db8::1/64".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("0-32"));
        assert!("::/129".parse::<Subnet>().is_err());
        assert!("10.0.0.0/+8".parse::<Subnet>().is_err());
        assert!("10.0.0.0/8#x".parse::<Subnet>().is_err());
        assert!("hello".parse::<Subnet>().is_err());
    }
}
