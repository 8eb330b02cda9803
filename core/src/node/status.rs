//! Read-only snapshots of the core for `dump` and `info`: nodes, edges and
//! sessions, in plain serialisable structs.

use super::{KeySource, Node};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha512};
use std::net::SocketAddr;
use std::time::Instant;

/// tinc's node status bits (TINC-COMPAT §1.4), as meshd sets them.
pub mod status_bits {
    /// A session key is established.
    pub const VALIDKEY: u32 = 0x2;
    /// Seen by the last graph walk.
    pub const VISITED: u32 = 0x8;
    /// Reachable.
    pub const REACHABLE: u32 = 0x10;
    /// Authenticated sessions (tinc: SPTPS).
    pub const SPTPS: u32 = 0x40;
    /// Direct UDP confirmed.
    pub const UDP_CONFIRMED: u32 = 0x80;
    /// The host file has an Address.
    pub const HAS_ADDRESS: u32 = 0x800;
}

/// The largest frame a datagram of `datagram` bytes carries; 0 without a path.
fn frame_mtu(alive: bool, datagram: u16) -> u32 {
    if alive {
        u32::from(datagram.saturating_sub(super::FRAME_OVERHEAD))
    } else {
        0
    }
}

/// One line of `dump nodes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// First 6 bytes of SHA-512(name), hex (tinc's node ID).
    pub id: String,
    /// UDP address, `MYSELF` for this node, or `unknown`.
    pub address: String,
    /// UDP port, or `unknown`.
    pub port: String,
    /// True for the node answering.
    pub is_self: bool,
    /// Live direct session (or self).
    pub reachable: bool,
    /// tinc-style status bitfield.
    pub status: u32,
    /// First hop of the shortest path in the membership graph.
    pub nexthop: String,
    /// Where data goes (meshd sends only directly).
    pub via: String,
    /// Hops in the membership graph, -1 if none.
    pub distance: i32,
    /// Largest frame carried to it in one datagram (0: no path).
    pub pmtu: u32,
    /// How it is reached: `direct`, `punched` (direct, found through NATs
    /// after a relayed start), `relayed`, or `none`.
    #[serde(default)]
    pub path: String,
    /// Largest frame known to pass in one datagram (path MTU discovery).
    #[serde(default)]
    pub min_mtu: u32,
    /// Largest frame that may pass in one datagram (the search's upper bound).
    #[serde(default)]
    pub max_mtu: u32,
    /// Packets and bytes received from it.
    pub rx_packets: u64,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Packets sent to it.
    pub tx_packets: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// Last heartbeat round trip in microseconds.
    pub rtt_us: Option<u64>,
    /// Smoothed round trip (the detector's SRTT) in microseconds.
    #[serde(default)]
    pub srtt_us: Option<u64>,
    /// Its variation (RTTVAR) in microseconds.
    #[serde(default)]
    pub rttvar_us: Option<u64>,
    /// Current detection deadline (silence before it is dead) in microseconds.
    #[serde(default)]
    pub deadline_us: Option<u64>,
    /// Frames to it went unanswered: out of steering for new flows.
    #[serde(default)]
    pub suspected: bool,
    /// Unix time of the last reachability change.
    pub last_state_change: Option<u64>,
    /// Where its key came from: `self`, `hostfile`, `gossip` or `none`.
    pub key_source: String,
    /// Nodes it has live sessions with, by its own record.
    pub edges: Vec<String>,
    /// Handshakes completed with it.
    pub handshakes: u64,
    /// Times it was declared dead.
    pub deaths: u64,
    /// Its subnets: static ones, then MACs learned behind it (tinc's form).
    #[serde(default)]
    pub subnets: Vec<String>,
}

/// One line of `dump subnets`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubnetStatus {
    /// tinc's form: `02:00:00:00:00:0a`, `10.1.1.0/24`, `10.1.1.2#5` (no `#10`).
    pub subnet: String,
    /// Owning node, or `(broadcast)`.
    pub owner: String,
    /// `static` (a Subnet line), `learned` (a MAC seen in traffic), `arp`
    /// (an IP-to-MAC binding learned from ARP/ND) or `broadcast`.
    pub origin: String,
    /// For `arp` entries: the MAC the IP is bound to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac: Option<String>,
    /// Seconds since the entry was last refreshed (learned entries only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idle_secs: Option<u64>,
}

/// One line of `dump edges`: FROM has a live session with TO.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EdgeStatus {
    /// The node whose record lists the session.
    pub from: String,
    /// Its peer.
    pub to: String,
    /// TO's UDP address as seen by FROM.
    pub address: String,
    /// TO's UDP port as seen by FROM.
    pub port: u16,
    /// FROM's advertised address, or `unspec`.
    pub local_address: String,
    /// FROM's advertised port, or 0.
    pub local_port: u16,
    /// Edge weight as tinc gives it: the session's round-trip time in
    /// milliseconds (rounded), as the edge's origin measures it — its record's
    /// RTTs (r11) for other nodes' edges; 0 where none is known.
    pub weight: i32,
}

/// One line of `dump connections`: a peer we hold a sending session with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionStatus {
    /// Peer name.
    pub name: String,
    /// Its UDP address.
    pub address: String,
    /// Its UDP port.
    pub port: u16,
    /// Local index of the session (shown where tinc shows a socket).
    pub session: u32,
    /// tinc's connection bits: [`CONNECTION_MST`] (alive: broadcasts go over it),
    /// [`CONNECTION_CONTROL`].
    pub status: u32,
    /// Whether this node initiated the session.
    #[serde(default)]
    pub initiator: bool,
    /// Seconds since the session was established.
    pub age_secs: u64,
}

/// `dump connections` status bit: the connection carries broadcasts (tinc's "mst"; meshd sends
/// broadcasts to every live peer, so every live session has it).
pub const CONNECTION_MST: u32 = 0x100;
/// `dump connections` status bit: a control connection.
pub const CONNECTION_CONTROL: u32 = 0x200;
/// The name `dump connections` gives a control connection (as tinc).
pub const CONTROL_CONNECTION_NAME: &str = "<control>";

/// tinc's node ID: the first 6 bytes of SHA-512(name), in hex.
pub fn node_id(name: &str) -> String {
    hex::encode(&Sha512::digest(name.as_bytes())[..6])
}

/// This node's `dump nodes` status: visited, reachable, sptps, and has_address when its host
/// file has an `Address` (as tinc shows `0858` for itself then).
fn own_status(has_address: bool) -> u32 {
    let mut status = status_bits::VISITED | status_bits::REACHABLE | status_bits::SPTPS;
    if has_address {
        status |= status_bits::HAS_ADDRESS;
    }
    status
}

impl Node {
    fn unix_secs(&self, t: Instant) -> u64 {
        self.wall_ns(t) / 1_000_000_000
    }

    /// `dump nodes`: every node known, this one included, sorted by name.
    pub fn node_statuses(&self, now: Instant, own_port: u16) -> Vec<NodeStatus> {
        let mut out = Vec::new();
        let me = &self.config.name;
        let own_edges = self
            .peers
            .values()
            .filter(|p| p.alive)
            .map(|p| p.name.to_string())
            .collect();
        out.push(NodeStatus {
            name: me.to_string(),
            id: node_id(me),
            address: "MYSELF".into(),
            port: own_port.to_string(),
            is_self: true,
            reachable: true,
            status: own_status(!self.config.advertised_addresses.is_empty()),
            nexthop: me.to_string(),
            via: me.to_string(),
            distance: 0,
            pmtu: 1518,
            path: "self".into(),
            min_mtu: 1518,
            max_mtu: 1518,
            rx_packets: self.tap_stats.rx_packets,
            rx_bytes: self.tap_stats.rx_bytes,
            tx_packets: self.tap_stats.tx_packets,
            tx_bytes: self.tap_stats.tx_bytes,
            subnets: self.subnets_of(None),
            rtt_us: None,
            srtt_us: None,
            rttvar_us: None,
            deadline_us: None,
            suspected: false,
            last_state_change: Some(self.unix_secs(self.start)),
            key_source: "self".into(),
            edges: own_edges,
            handshakes: 0,
            deaths: 0,
        });
        // A purged node is gone from tinc's node list until it comes back.
        for p in self.peers.values().filter(|p| p.alive || !p.purged) {
            let mut status = 0;
            if p.send_index.is_some() {
                status |= status_bits::VALIDKEY | status_bits::SPTPS;
            }
            if p.alive {
                status |=
                    status_bits::VISITED | status_bits::REACHABLE | status_bits::UDP_CONFIRMED;
            }
            if !p.static_addresses.is_empty() {
                status |= status_bits::HAS_ADDRESS;
            }
            let endpoint: Option<SocketAddr> = self.shown_endpoint(&p.name);
            let relay = self.relay_of(&p.name).filter(|_| p.alive);
            if relay.is_some() {
                // tinc's udp_confirmed is for a direct UDP path.
                status &= !status_bits::UDP_CONFIRMED;
            }
            out.push(NodeStatus {
                name: p.name.to_string(),
                id: node_id(&p.name),
                address: endpoint.map_or("unknown".into(), |e| e.ip().to_string()),
                port: endpoint.map_or("unknown".into(), |e| e.port().to_string()),
                is_self: false,
                reachable: p.alive,
                status,
                // tinc's `nexthop`/`via`: the relay, or the node itself when
                // direct; `-` and distance -1 without a working path (as tinc
                // prints an unreachable node).
                nexthop: match (p.alive, relay) {
                    (true, Some(r)) => r.to_string(),
                    (true, None) => p.name.to_string(),
                    (false, _) => "-".into(),
                },
                via: match (p.alive, relay) {
                    (true, Some(r)) => r.to_string(),
                    (true, None) => p.name.to_string(),
                    (false, _) => "-".into(),
                },
                distance: match (p.alive, relay) {
                    (true, Some(_)) => 2,
                    (true, None) => 1,
                    (false, _) => -1,
                },
                pmtu: frame_mtu(p.alive, p.pmtu.confirmed()),
                path: match (p.alive, relay.is_some(), p.punched) {
                    (false, _, _) => "none",
                    (true, true, _) => "relayed",
                    (true, false, true) => "punched",
                    (true, false, false) => "direct",
                }
                .into(),
                min_mtu: frame_mtu(p.alive, p.pmtu.confirmed()),
                max_mtu: frame_mtu(p.alive, p.pmtu.upper()),
                rx_packets: p.stats.rx_packets,
                rx_bytes: p.stats.rx_bytes,
                tx_packets: p.stats.tx_packets,
                tx_bytes: p.stats.tx_bytes,
                rtt_us: if p.alive {
                    p.stats.rtt.map(|d| d.as_micros() as u64)
                } else {
                    None
                },
                srtt_us: p
                    .detector
                    .srtt()
                    .filter(|_| p.alive)
                    .map(|d| d.as_micros() as u64),
                rttvar_us: p
                    .detector
                    .srtt()
                    .filter(|_| p.alive)
                    .map(|_| p.detector.rttvar().as_micros() as u64),
                deadline_us: self
                    .detection_deadline(&p.name)
                    .map(|d| d.as_micros() as u64),
                suspected: p.alive && p.detector.suspected(),
                last_state_change: p.state_changed.map(|t| self.unix_secs(t)),
                key_source: match (p.key.is_some(), p.key_source) {
                    (false, _) => "none".into(),
                    (true, KeySource::HostFile) => "hostfile".into(),
                    (true, KeySource::Gossip) => "gossip".into(),
                },
                edges: self
                    .record_edges(p)
                    .map(|(_, n)| n.name.to_string())
                    .collect(),
                handshakes: p.stats.handshakes,
                deaths: p.stats.deaths,
                subnets: self.subnets_of(Some(&p.name)),
            });
        }
        let _ = now;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// `dump edges`: every session listed in a known record (ours from live state).
    pub fn edge_statuses(&self) -> Vec<EdgeStatus> {
        let mut out = Vec::new();
        let mut push = |from: &str,
                        local: Option<&SocketAddr>,
                        to: &str,
                        at: SocketAddr,
                        rtt: Option<std::time::Duration>| {
            out.push(EdgeStatus {
                from: from.to_string(),
                to: to.to_string(),
                address: at.ip().to_string(),
                port: at.port(),
                local_address: local.map_or("unspec".into(), |a| a.ip().to_string()),
                local_port: local.map_or(0, |a| a.port()),
                weight: rtt.map_or(0, |d| {
                    i32::try_from((d.as_micros() + 500) / 1000).unwrap_or(i32::MAX)
                }),
            });
        };
        let own_local = self.config.advertised_addresses.first();
        // Direct sessions only: a relayed peer is reached over two edges.
        for p in self.peers.values().filter(|p| p.alive) {
            if let Some(at) = p.endpoint.filter(|e| !super::relay::is_relay_addr(*e)) {
                push(&self.config.name, own_local, &p.name, at, p.detector.srtt());
            }
        }
        for p in self.peers.values() {
            let rtts: Vec<crate::wire::extension::NeighbourRtt> = p
                .record
                .as_ref()
                .and_then(|r| crate::wire::extension::decode_extension(&r.extension).ok())
                .into_iter()
                .flatten()
                .filter_map(|item| match item {
                    crate::wire::ExtensionItem::NeighbourRtts(list) => Some(list),
                    _ => None,
                })
                .flatten()
                .collect();
            for (rec, n) in self.record_edges(p) {
                let rtt = rtts.iter().find(|r| r.name == n.name).map(|r| r.rtt());
                push(&rec.name, rec.addresses.first(), &n.name, n.endpoint, rtt);
            }
        }
        out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        out
    }

    /// The edges a peer's gossip record claims (its neighbours), without the one to this node
    /// while the peer is down: that link is known to be gone (tinc deletes both directions
    /// when a direct connection ends).
    fn record_edges<'a>(
        &'a self,
        p: &'a super::Peer,
    ) -> impl Iterator<
        Item = (
            &'a crate::wire::NodeRecord,
            &'a crate::wire::record::Neighbour,
        ),
    > + 'a {
        p.record.iter().flat_map(move |rec| {
            rec.neighbours
                .iter()
                .filter(move |n| p.alive || n.name != self.config.name)
                .map(move |n| (rec, n))
        })
    }

    /// `dump connections`: peers we hold a sending session with.
    pub fn connection_statuses(&self, now: Instant) -> Vec<ConnectionStatus> {
        let mut out = Vec::new();
        for p in self.peers.values() {
            let (Some(index), Some(endpoint)) = (p.send_index, p.endpoint) else {
                continue;
            };
            let Some(slot) = self.sessions.get(&index) else {
                continue;
            };
            let status = if p.alive { CONNECTION_MST } else { 0 };
            out.push(ConnectionStatus {
                name: p.name.to_string(),
                address: endpoint.ip().to_string(),
                port: endpoint.port(),
                session: index,
                status,
                initiator: slot.session.is_initiator(),
                age_secs: now
                    .saturating_duration_since(slot.session.created())
                    .as_secs(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_matches_tinc() {
        // From TINC-COMPAT §1.4: alpha's ID in the lab.
        assert_eq!(node_id("alpha"), "ba3ce58667ca");
        assert_eq!(node_id("beta"), "560c72de72c0");
    }
}
