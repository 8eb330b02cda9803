//! `dump subnets` and the subnet lists of `info NODE`: static subnets of every
//! node, MACs learned from traffic, IP bindings learned from ARP/ND, and
//! tinc's four broadcast entries.

use super::status::SubnetStatus;
use super::Node;
use crate::subnet::{Subnet, SubnetAddr};
use crate::switch::Port;
use std::time::Instant;

/// The `(broadcast)` entries tinc always lists.
const BROADCAST_SUBNETS: [&str; 4] = [
    "ff:ff:ff:ff:ff:ff",
    "255.255.255.255",
    "224.0.0.0/4",
    "ff00::/8",
];

fn port_owner(node: &Node, port: &Port) -> String {
    match port {
        Port::Local => node.config.name.to_string(),
        Port::Peer(name) => name.clone(),
    }
}

/// Sort key: MAC < IPv4 < IPv6, then the longer prefix first, then address, then weight, then
/// owner (tinc's order: `255.255.255.255` before `224.0.0.0/4`).
fn sort_key(s: &SubnetStatus) -> (u8, std::cmp::Reverse<u8>, Vec<u8>, i32, String) {
    let parsed = s.subnet.parse::<Subnet>().ok();
    let (kind, bytes, prefix) = match parsed.map(|p| p.addr) {
        Some(SubnetAddr::Mac(m)) => (0, m.to_vec(), 48),
        Some(SubnetAddr::Ipv4 { addr, prefix }) => (1, addr.octets().to_vec(), prefix),
        Some(SubnetAddr::Ipv6 { addr, prefix }) => (2, addr.octets().to_vec(), prefix),
        None => (3, s.subnet.as_bytes().to_vec(), 0),
    };
    let weight = parsed.map_or(0, |p| p.weight);
    (
        kind,
        std::cmp::Reverse(prefix),
        bytes,
        weight,
        s.owner.clone(),
    )
}

impl Node {
    /// Every subnet this node knows, sorted as tinc sorts them.
    pub fn subnet_statuses(&self, now: Instant) -> Vec<SubnetStatus> {
        let mut out = Vec::new();
        let mut push_static = |owner: &str, s: &Subnet| {
            out.push(SubnetStatus {
                subnet: s.to_string(),
                owner: owner.to_string(),
                origin: "static".into(),
                mac: None,
                idle_secs: None,
            })
        };
        for s in &self.config.subnets {
            push_static(&self.config.name, s);
        }
        for p in self.peers.values() {
            for s in &p.subnets {
                push_static(&p.name, s);
            }
        }
        for (mac, entry) in self.switch.macs().entries() {
            if entry.is_static {
                continue;
            }
            out.push(SubnetStatus {
                subnet: mac.to_string(),
                owner: port_owner(self, &entry.port),
                origin: "learned".into(),
                mac: None,
                idle_secs: entry
                    .last_seen
                    .map(|t| now.saturating_duration_since(t).as_secs()),
            });
        }
        for (ip, entry) in self.switch.neighbours().entries() {
            let owner = self
                .switch
                .macs()
                .lookup(&entry.mac)
                .map_or_else(|| "(unknown)".to_string(), |p| port_owner(self, p));
            out.push(SubnetStatus {
                subnet: ip.to_string(),
                owner,
                origin: "arp".into(),
                mac: Some(entry.mac.to_string()),
                idle_secs: Some(now.saturating_duration_since(entry.last_seen).as_secs()),
            });
        }
        for b in BROADCAST_SUBNETS {
            out.push(SubnetStatus {
                subnet: b.to_string(),
                owner: "(broadcast)".into(),
                origin: "broadcast".into(),
                mac: None,
                idle_secs: None,
            });
        }
        out.sort_by_cached_key(sort_key);
        out
    }

    /// The subnets of one node (`None`: this node) for `info NODE`.
    pub(super) fn subnets_of(&self, peer: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = match peer {
            None => self.config.subnets.iter().map(|s| s.to_string()).collect(),
            Some(name) => self
                .peers
                .get(name)
                .map(|p| p.subnets.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        };
        let mut learned: Vec<String> = self
            .switch
            .macs()
            .entries()
            .filter(|(_, e)| !e.is_static)
            .filter(|(_, e)| match (&e.port, peer) {
                (Port::Local, None) => true,
                (Port::Peer(n), Some(p)) => n == p,
                _ => false,
            })
            .map(|(m, _)| m.to_string())
            .collect();
        learned.sort();
        out.extend(learned);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_prefixes_first_within_a_type_as_tinc() {
        let mut v: Vec<SubnetStatus> = [
            ("ff00::/8", "(broadcast)"),
            ("224.0.0.0/4", "(broadcast)"),
            ("255.255.255.255", "(broadcast)"),
            ("10.9.0.0/16", "beta"),
            ("10.9.0.1", "alpha"),
            ("ff:ff:ff:ff:ff:ff", "(broadcast)"),
            ("02:00:00:00:00:0a", "alpha"),
        ]
        .iter()
        .map(|(s, o)| SubnetStatus {
            subnet: s.to_string(),
            owner: o.to_string(),
            origin: "static".into(),
            mac: None,
            idle_secs: None,
        })
        .collect();
        v.sort_by_cached_key(sort_key);
        let order: Vec<&str> = v.iter().map(|s| s.subnet.as_str()).collect();
        assert_eq!(
            order,
            [
                "02:00:00:00:00:0a",
                "ff:ff:ff:ff:ff:ff",
                "10.9.0.1",
                "255.255.255.255",
                "10.9.0.0/16",
                "224.0.0.0/4",
                "ff00::/8"
            ]
        );
    }
}
