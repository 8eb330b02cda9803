//! The values that cross the [`Node`](super::Node) API: its configuration
//! ([`NodeConfig`], [`KnownHost`]) and what it hands the driver ([`Transmit`],
//! [`Event`], [`QueueDepth`], [`DropCounters`]).

#[cfg(doc)]
use super::Node;
use crate::keys::PublicKey;
use crate::name::NodeName;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the core needs from the configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's name.
    pub name: NodeName,
    /// Addresses other nodes may reach this one at (its `Address` lines).
    pub advertised_addresses: Vec<SocketAddr>,
    /// Nodes named by `ConnectTo`.
    pub connect_to: Vec<NodeName>,
    /// Heartbeat period of a pair with a steering relation (one of the two
    /// holds a VIP); the fastest rate.
    pub hello_interval: Duration,
    /// The longest silence of such a pair before it is dead (the detector
    /// adapts below it, never above).
    pub dead_interval: Duration,
    /// Heartbeat period of a pair without a steering relation.
    pub idle_hello_interval: Duration,
    /// Rekey a session this old (initiator side).
    pub rekey_after_time: Duration,
    /// Rekey a session after this many packets sent.
    pub rekey_after_packets: u64,
    /// Anti-replay window in packets.
    pub replay_window: u32,
    /// Longest pause between handshake attempts to a dead peer.
    pub handshake_retry_max: Duration,
    /// Period of the anti-entropy digest sent to every live peer.
    pub gossip_interval: Duration,
    /// Most peers the node will track (a bound on memory).
    pub max_peers: usize,
    /// Our static subnets (`Subnet` lines of our host file), published in our record.
    pub subnets: Vec<crate::subnet::Subnet>,
    /// MAC table, ARP answering and frame limits.
    pub switch: crate::switch::SwitchConfig,
    /// VIPs this node serves.
    pub vips: Vec<crate::vip::LocalVip>,
    /// Hold-down, flow idle timeout, flow table bound.
    pub vip_settings: crate::vip::VipEngineSettings,
    /// Longest wait for peers to acknowledge a VIP withdrawal at a graceful stop.
    pub shutdown_grace: Duration,
    /// Revoked nodes (`revoked/NAME` files): without a host file of their
    /// own, nothing (gossip, handshakes) may introduce them. A node whose host
    /// file disappears between two loads is revoked as well.
    pub revoked: Vec<NodeName>,
    /// `StrictSubnets`: a peer's subnets and VIPs are what its host file on
    /// this node's disk gives it ([`KnownHost::subnets`], [`KnownHost::vips`]),
    /// never what its record claims; and a MAC learned behind a peer cannot be
    /// taken over by another peer until it expires.
    pub strict_subnets: bool,
    /// Most nodes one peer's gossip may introduce that this node has never
    /// reached (a member inventing nodes fills at most this much of the peer
    /// table; the cap is `max_peers`).
    pub max_unreached_per_introducer: usize,
    /// A gossip-learned node that is not alive here is forgotten once its
    /// record was not refreshed for this long, or once no live peer lists it
    /// as a neighbour for this long. Every node republishes its record at a
    /// third of it.
    pub record_ttl: Duration,
}

impl NodeConfig {
    /// Defaults for everything but the name.
    pub fn new(name: NodeName) -> NodeConfig {
        NodeConfig {
            name,
            advertised_addresses: Vec::new(),
            connect_to: Vec::new(),
            hello_interval: Duration::from_millis(100),
            dead_interval: Duration::from_millis(300),
            idle_hello_interval: Duration::from_secs(2),
            rekey_after_time: Duration::from_secs(3600),
            rekey_after_packets: 1 << 40,
            replay_window: 2048,
            handshake_retry_max: Duration::from_secs(5),
            gossip_interval: Duration::from_secs(2),
            max_peers: 4096,
            subnets: Vec::new(),
            switch: crate::switch::SwitchConfig::default(),
            vips: Vec::new(),
            vip_settings: crate::vip::VipEngineSettings::default(),
            shutdown_grace: Duration::from_millis(500),
            revoked: Vec::new(),
            strict_subnets: false,
            max_unreached_per_introducer: 1024,
            record_ttl: Duration::from_secs(600),
        }
    }
}

/// A host known from `hosts/NAME`.
#[derive(Debug, Clone)]
pub struct KnownHost {
    /// Its name.
    pub name: NodeName,
    /// Its pinned key, if the file has one.
    pub public_key: Option<PublicKey>,
    /// Its `Address` lines, resolved.
    pub addresses: Vec<SocketAddr>,
    /// Its `Subnet` lines (honoured alone under `StrictSubnets`).
    pub subnets: Vec<crate::subnet::Subnet>,
    /// Its `VirtualIP` lines, with weight and virtual MAC (under
    /// `StrictSubnets`, the only VIPs it may hold, at these weights).
    pub vips: Vec<crate::vip::LocalVip>,
    /// Its `IndirectData`, `TCPOnly`, `PMTU` and `PMTUDiscovery` lines.
    pub path: HostPath,
}

/// How the operator's host file says a node is to be reached (tinc's
/// `IndirectData`, `TCPOnly`, `PMTU`, `PMTUDiscovery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPath {
    /// `IndirectData = yes` or `TCPOnly = yes`: never sent to directly,
    /// only through a relay (tinc: only over the meta connections).
    pub indirect: bool,
    /// `PMTU = N`: frames longer than N bytes go in pieces (tinc's fixed
    /// path MTU, in its frame units).
    pub pmtu: Option<u16>,
    /// `PMTUDiscovery` (default yes): probe the path's MTU. Without it,
    /// frames longer than `PMTU` (or the 1201-byte floor) go in pieces.
    pub pmtu_discovery: bool,
}

impl Default for HostPath {
    fn default() -> Self {
        HostPath {
            indirect: false,
            pmtu: None,
            pmtu_discovery: true,
        }
    }
}

/// A datagram the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Something the driver should know about (run a script, write a file, log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer became reachable through a direct, authenticated session.
    PeerUp {
        /// The peer.
        name: String,
        /// Its UDP address.
        endpoint: SocketAddr,
    },
    /// A peer stopped being reachable.
    PeerDown {
        /// The peer.
        name: String,
        /// Its last known UDP address.
        endpoint: Option<SocketAddr>,
        /// Why: silence, or a goodbye.
        reason: DownReason,
    },
    /// A new node and its key were learned from gossip.
    HostLearned {
        /// The node.
        name: NodeName,
        /// Its key.
        public_key: PublicKey,
    },
    /// A subnet became reachable: learned or static, ours (`owner` None) or a peer's.
    SubnetUp {
        /// The owning peer, or None for this node.
        owner: Option<String>,
        /// The subnet (a MAC for learned addresses).
        subnet: crate::subnet::Subnet,
        /// The owner's UDP address, when it is a peer.
        endpoint: Option<SocketAddr>,
    },
    /// This node started serving a VIP (`vip-up`).
    VipUp {
        /// The VIP.
        vip: crate::vip::LocalVip,
    },
    /// This node stopped serving a VIP (`vip-down`).
    VipDown {
        /// The VIP.
        vip: crate::vip::LocalVip,
    },
    /// A graceful stop ([`Node::begin_leave`]) may proceed to
    /// [`Node::shutdown`]: every live peer acknowledged our VIP withdrawal (and
    /// frames sent before it had time to arrive), or `ShutdownGrace` ran out.
    /// Emitted once per stop.
    ReadyToLeave {
        /// Peers that never acknowledged (empty when all did).
        unacknowledged: Vec<String>,
    },
    /// A subnet went away (expired, moved, or its owner went down).
    SubnetDown {
        /// The owning peer, or None for this node.
        owner: Option<String>,
        /// The subnet.
        subnet: crate::subnet::Subnet,
        /// The owner's last UDP address, when it is a peer.
        endpoint: Option<SocketAddr>,
    },
}

/// How much output waits to be drained ([`Node::queued`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Datagrams for [`Node::poll_transmit`].
    pub transmits: usize,
    /// Frames for [`Node::poll_frame`].
    pub frames: usize,
}

impl QueueDepth {
    /// True if either queue holds at least `limit` items.
    pub fn either_at_least(&self, limit: usize) -> bool {
        self.transmits >= limit || self.frames >= limit
    }
}

/// Why a peer went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Silent for DeadInterval.
    Timeout,
    /// It said goodbye (graceful stop).
    Goodbye,
    /// We are stopping.
    LocalShutdown,
    /// Its host file was removed (revocation, on reload).
    Revoked,
    /// The operator dropped its sessions (`meshd disconnect NODE`).
    Disconnected,
}

/// Counters of packets the core refused, by reason.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DropCounters {
    /// Not a meshd packet, wrong version or bad framing.
    pub malformed: u64,
    /// Data for a session index we do not have.
    pub unknown_session: u64,
    /// Failed authentication or replayed.
    pub bad_data: u64,
    /// Handshakes refused (bad signature, unknown key, replayed).
    pub bad_handshake: u64,
    /// Handshakes not even looked at because of the rate limit.
    pub rate_limited: u64,
    /// Authenticated messages that failed to decode.
    pub bad_message: u64,
    /// Gossip records refused (bad signature, key mismatch, table full).
    pub bad_record: u64,
    /// Gossip records of revoked nodes, ignored.
    pub revoked_record: u64,
    /// Subnet and VIP claims in peers' records that `StrictSubnets` refused
    /// (their host files here do not give them).
    pub strict_refused: u64,
    /// Challenges and echoes not sent to an unproven address: its budget (3 ×
    /// the bytes received from it) was spent (path validation).
    pub unproven_path: u64,
    /// Digests not answered: the peer sent them faster than one per
    /// `DIGEST_ANSWER_EVERY`.
    pub digest_rate_limited: u64,
    /// Gossip records dropped unchecked: their relay's budget of failed
    /// signature checks was spent.
    pub gossip_budget: u64,
    /// Frames not sent: larger than [`crate::wire::MAX_PIECES`] pieces of the
    /// path's MTU.
    pub frame_too_big: u64,
    /// Frame pieces refused: duplicates, counts that disagree, frames
    /// longer than the TAP takes.
    pub bad_piece: u64,
}
