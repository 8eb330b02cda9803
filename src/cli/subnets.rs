//! `dump subnets` and `info ADDRESS`: who owns a MAC, an IP or a subnet.

use super::dump::{ask, print_out};
use crate::config::{NetDir, Subnet, SubnetAddr};
use crate::control::{Request, Response};
use crate::node::status::SubnetStatus;
use anyhow::{bail, Result};
use std::fmt::Write as _;

fn subnets(netdir: &NetDir) -> Result<Option<Vec<SubnetStatus>>> {
    match ask(netdir, &Request::DumpSubnets)? {
        Some(Response::Subnets { subnets }) => Ok(Some(subnets)),
        Some(other) => bail!("unexpected answer: {other:?}"),
        None => Ok(None),
    }
}

/// One `dump subnets` line: `SUBNET owner NAME`.
pub fn format_subnet(s: &SubnetStatus) -> String {
    format!("{} owner {}", s.subnet, s.owner)
}

/// `meshd dump subnets [--json]`.
pub fn dump_subnets(netdir: &NetDir, json: bool) -> Result<i32> {
    let Some(list) = subnets(netdir)? else {
        return Ok(1);
    };
    print_out(json, &list, |out| {
        for s in &list {
            out.push_str(&format_subnet(s));
            out.push('\n');
        }
    })
}

/// How `info` matches its argument against the subnets (tinc's rules).
enum Query {
    /// `#weight` given: that exact subnet, weight included.
    Exact(Subnet),
    /// `a.b.c.d/len` without a weight: that network and prefix, whatever its weight (tinc
    /// answers `info 10.9.1.0/24` with `Subnet: 10.9.1.0/24#5`).
    Network(Subnet),
    /// A bare address: every subnet containing it.
    Address(Subnet),
}

fn matches(query: &Query, entry: &SubnetStatus) -> bool {
    let Ok(have) = entry.subnet.parse::<Subnet>() else {
        return false;
    };
    match query {
        Query::Exact(want) => have == *want,
        Query::Network(want) => have.addr == want.addr,
        Query::Address(want) => match (want.addr, have.addr) {
            (SubnetAddr::Mac(a), SubnetAddr::Mac(b)) => a == b,
            (SubnetAddr::Ipv4 { addr, .. }, _) => have.contains_ip(addr.into()),
            (SubnetAddr::Ipv6 { addr, .. }, _) => have.contains_ip(addr.into()),
            _ => false,
        },
    }
}

/// How `info ARG` matches, or `None` if ARG is neither a subnet nor an address.
fn query(arg: &str) -> Option<Query> {
    let subnet = arg.parse::<Subnet>().ok()?;
    Some(if arg.contains('#') {
        Query::Exact(subnet)
    } else if arg.contains('/') {
        Query::Network(subnet)
    } else {
        Query::Address(subnet)
    })
}

/// `meshd info ADDRESS [--json]`: every subnet that matches, with its owner.
pub fn info_address(netdir: &NetDir, arg: &str, json: bool) -> Result<i32> {
    let Some(query) = query(arg) else {
        eprintln!("Could not parse subnet or address '{arg}'.");
        return Ok(1);
    };
    let exact = !matches!(query, Query::Address(_));
    let Some(list) = subnets(netdir)? else {
        return Ok(1);
    };
    let found: Vec<SubnetStatus> = list.into_iter().filter(|s| matches(&query, s)).collect();
    if found.is_empty() {
        let what = if exact { "subnet" } else { "address" };
        eprintln!("Unknown {what} {arg}.");
        return Ok(1);
    }
    print_out(json, &found, |out| {
        for s in &found {
            let _ = writeln!(out, "Subnet: {}", s.subnet);
            let _ = writeln!(out, "Owner:  {}", s.owner);
            if let Some(mac) = &s.mac {
                let _ = writeln!(out, "MAC:    {mac} (learned from ARP/ND)");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subnet: &str, owner: &str) -> SubnetStatus {
        SubnetStatus {
            subnet: subnet.into(),
            owner: owner.into(),
            origin: "static".into(),
            mac: None,
            idle_secs: None,
        }
    }

    #[test]
    fn address_queries_match_containing_subnets() {
        let q = Query::Address("10.1.1.5".parse().unwrap());
        assert!(matches(&q, &entry("10.1.1.0/24", "a")));
        assert!(matches(&q, &entry("10.1.1.5", "a")));
        assert!(!matches(&q, &entry("10.1.2.0/24", "a")));
        assert!(!matches(&q, &entry("02:00:00:00:00:01", "a")));
        let q = Query::Address("224.1.2.3".parse().unwrap());
        assert!(matches(&q, &entry("224.0.0.0/4", "(broadcast)")));
        let q = Query::Address("02:00:00:00:00:0A".parse().unwrap());
        assert!(matches(&q, &entry("02:00:00:00:00:0a", "a")));
    }

    #[test]
    fn exact_queries_need_the_same_prefix_and_weight() {
        let q = Query::Exact("10.1.1.5#5".parse().unwrap());
        assert!(matches(&q, &entry("10.1.1.5#5", "a")));
        assert!(!matches(&q, &entry("10.1.1.5", "b")));
        let q = Query::Exact("10.1.1.0/24".parse().unwrap());
        assert!(matches(&q, &entry("10.1.1.0/24", "a")));
        assert!(!matches(&q, &entry("10.1.1.5", "a")));
    }

    #[test]
    fn a_prefix_without_weight_finds_a_weighted_subnet() {
        // tinc: `info 10.9.1.0/24` answers `Subnet: 10.9.1.0/24#5`; only a `#` in the
        // query makes the weight part of the match.
        let q = query("10.9.1.0/24").unwrap();
        assert!(matches(&q, &entry("10.9.1.0/24#5", "alpha")));
        assert!(matches(&q, &entry("10.9.1.0/24", "beta")));
        assert!(!matches(&q, &entry("10.9.1.0/25#5", "alpha")));
        let q = query("10.9.1.0/24#5").unwrap();
        assert!(matches(&q, &entry("10.9.1.0/24#5", "alpha")));
        assert!(!matches(&q, &entry("10.9.1.0/24", "beta")));
        let q = query("10.9.1.0/24#10").unwrap();
        assert!(matches(&q, &entry("10.9.1.0/24", "beta")));
        assert!(query("10.9.1.0/33").is_none());
    }
}
