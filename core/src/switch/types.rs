//! The switch's settings ([`SwitchConfig`]), decisions ([`Delivery`]), events
//! ([`SwitchEvent`]) and counters ([`SwitchCounters`]).

use std::net::IpAddr;
use std::time::Duration;

use super::frame::{ETH_HEADER_LEN, VLAN_TAG_LEN};
use super::mac::MacAddr;
use super::mac_table::{MacTableLimits, Port};
#[cfg(doc)]
use super::Switch;

/// Default [`SwitchConfig::neighbour_expire`].
pub const DEFAULT_NEIGHBOUR_EXPIRE: Duration = Duration::from_secs(300);
/// Default [`SwitchConfig::neighbour_max`].
pub const DEFAULT_NEIGHBOUR_MAX: usize = 16384;
/// Default [`SwitchConfig::max_frame_len`]: a 65535-byte IP packet behind an
/// Ethernet header and one VLAN tag.
pub const DEFAULT_MAX_FRAME_LEN: usize = 65535 + ETH_HEADER_LEN + VLAN_TAG_LEN;

/// Switch settings; [`Switch::reconfigure`] applies new ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// MAC table caps and ageing.
    pub macs: MacTableLimits,
    /// How long an IP-to-MAC binding is used after its last ARP/ND claim (default 300 s).
    pub neighbour_expire: Duration,
    /// Most IP-to-MAC bindings (default 16384).
    pub neighbour_max: usize,
    /// Answer ARP requests and Neighbour Solicitations from the local TAP for
    /// addresses behind live peers (default true).
    pub answer_arp: bool,
    /// Longer frames are dropped (default [`DEFAULT_MAX_FRAME_LEN`]).
    pub max_frame_len: usize,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            macs: MacTableLimits::default(),
            neighbour_expire: DEFAULT_NEIGHBOUR_EXPIRE,
            neighbour_max: DEFAULT_NEIGHBOUR_MAX,
            answer_arp: true,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// Where a frame goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nowhere (the reason is already counted).
    Drop,
    /// The input frame to this peer only.
    Peer(String),
    /// The input frame to every live peer, once each.
    Flood,
    /// The input frame into the local TAP.
    Tap,
}

/// A change the owner may want to act on or log. Queued only on changes,
/// never per frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchEvent {
    /// A MAC appeared at a port (learned or configured).
    MacUp {
        /// The station.
        mac: MacAddr,
        /// Where.
        port: Port,
    },
    /// A MAC left the table (expired, peer down, or static removed).
    MacDown {
        /// The station.
        mac: MacAddr,
        /// Where it was.
        port: Port,
    },
    /// A MAC moved from one port to another (by learning, or taken over by a
    /// static entry).
    MacMoved {
        /// The station.
        mac: MacAddr,
        /// Where it was.
        from: Port,
        /// Where it is now.
        to: Port,
    },
    /// An IP claimed by one MAC is now claimed by another (the newest claim wins).
    NeighbourConflict {
        /// The address.
        ip: IpAddr,
        /// The MAC it was bound to.
        old: MacAddr,
        /// The MAC it is bound to now.
        new: MacAddr,
    },
    /// Learning at a port was refused by a MAC table cap. At most one is
    /// queued per port at a time (a new one may be queued once it has been
    /// polled); [`SwitchCounters::cap_hits`] counts every refusal.
    CapHit {
        /// The port whose station was not learned.
        port: Port,
    },
}

/// Frame counters, since the switch was created.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SwitchCounters {
    /// Dropped: shorter than an Ethernet header (or its VLAN tag).
    pub runt: u64,
    /// Dropped: longer than `max_frame_len`.
    pub oversized: u64,
    /// Dropped: multicast, broadcast or all-zero source MAC.
    pub multicast_source: u64,
    /// Dropped: EtherType ARP but not a well-formed Ethernet/IPv4 ARP packet.
    pub malformed_arp: u64,
    /// Dropped: from the TAP to a MAC that is itself behind the TAP.
    pub looped: u64,
    /// ARP requests answered into the TAP (and dropped).
    pub arp_answered: u64,
    /// Neighbour Solicitations answered into the TAP (and dropped).
    pub nd_answered: u64,
    /// Dropped: ARP requests / solicitations from the TAP for an address behind the TAP.
    pub local_target: u64,
    /// Flooded to every live peer (broadcast, multicast, unknown or unreachable unicast).
    pub flooded: u64,
    /// Of `flooded`: unicast to an unknown MAC.
    pub unknown_unicast: u64,
    /// Of `flooded`: unicast to a MAC behind a peer without a live session.
    pub dead_peer: u64,
    /// Sent to one peer.
    pub unicast: u64,
    /// Frames from peers delivered to the TAP.
    pub delivered: u64,
    /// Frames whose source MAC is static at another port (forwarded; not learned).
    pub pinned_source: u64,
    /// Source MACs not learned because of a cap.
    pub cap_hits: u64,
    /// MACs that moved between ports by learning.
    pub mac_moves: u64,
    /// IP-to-MAC bindings changed by a newer claim.
    pub neighbour_conflicts: u64,
    /// Events dropped because the owner did not drain the queue.
    pub events_dropped: u64,
}
