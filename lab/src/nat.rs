//! NAT routers for lab nodes: a namespace that takes a node's place on the
//! shared bridge (and its public address) and masquerades the node behind
//! it, inbound filtered as home routers do (only replies come in). Used by
//! the NAT traversal tests and the paths benchmark.

use crate::netns::{must, Lab};

/// How a NAT picks the public port of a new mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// The node's own port whenever it is free (endpoint-independent
    /// mapping: plain `MASQUERADE`, as most home routers).
    KeepsPort,
    /// A new random port for every mapping (`MASQUERADE --random-fully`):
    /// the address one peer saw is not the one another peer gets.
    RandomPort,
}

impl Lab {
    /// Puts `node` behind a NAT router `PREFIXnatN`: the router takes the
    /// node's bridge port and public address; the node gets 10.0.N.2/24
    /// behind it, with the router as its default route.
    pub fn put_behind_nat(&mut self, node: &str, n: u8, kind: NatKind) {
        let node_ns = self.node(node).ns.clone();
        let public = self.node(node).ip.clone();
        let bridge = self.bridge_ns.clone();
        let nat = self.add_netns(&format!("nat{n}"));
        let bridge_port = format!(
            "v{}",
            self.nodes.iter().position(|x| x.name == node).unwrap_or(0) + 1
        );
        let ip = |ns: &str, args: &[&str]| {
            let mut a = vec!["-n", ns];
            a.extend_from_slice(args);
            must("ip", &a);
        };
        // The node's uplink goes; the router takes its bridge port and address.
        ip(&node_ns, &["link", "del", "eth0"]);
        ip(
            &bridge,
            &[
                "link",
                "add",
                &bridge_port,
                "type",
                "veth",
                "peer",
                "name",
                "wan",
                "netns",
                &nat,
            ],
        );
        ip(
            &bridge,
            &["link", "set", &bridge_port, "master", "br0", "up"],
        );
        ip(
            &nat,
            &["addr", "add", &format!("{public}/24"), "dev", "wan"],
        );
        ip(&nat, &["link", "set", "wan", "up"]);
        ip(
            &nat,
            &[
                "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &node_ns,
            ],
        );
        ip(
            &nat,
            &["addr", "add", &format!("10.0.{n}.1/24"), "dev", "lan"],
        );
        ip(&nat, &["link", "set", "lan", "up"]);
        ip(
            &node_ns,
            &["addr", "add", &format!("10.0.{n}.2/24"), "dev", "eth0"],
        );
        ip(&node_ns, &["link", "set", "eth0", "up"]);
        ip(
            &node_ns,
            &["route", "add", "default", "via", &format!("10.0.{n}.1")],
        );
        self.must_in(&nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let mut masquerade = vec![
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
        ];
        if kind == NatKind::RandomPort {
            masquerade.push("--random-fully");
        }
        self.must_in(&nat, &masquerade);
        let established = [
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ];
        for chain in ["FORWARD", "INPUT"] {
            let mut accept = vec!["iptables", "-A", chain, "-i", "wan"];
            accept.extend_from_slice(&established);
            self.must_in(&nat, &accept);
            self.must_in(&nat, &["iptables", "-A", chain, "-i", "wan", "-j", "DROP"]);
        }
    }

    /// The NAT router namespace [`Lab::put_behind_nat`] made with number `n`.
    pub fn nat_ns(&self, n: u8) -> String {
        format!("{}nat{n}", self.prefix)
    }
}
