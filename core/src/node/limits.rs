//! Resource bounds of the core: every table that grows with what peers, the
//! TAP segment or the mesh send has a cap, and this module reports each one
//! (in use, cap, refusals, evictions) for `meshd dump limits` and the metrics.

use super::*;
use serde::{Deserialize, Serialize};

/// Most handshakes this node has started and waits answers for, over all
/// peers. At the cap a due attempt is put off by its back-off delay (counted
/// as refused); established sessions are untouched, so the mesh keeps working.
pub const MAX_HANDSHAKES_IN_FLIGHT: usize = 64;
/// Most Ethernet frames queued for the UDP socket. The driver drains the queue
/// after every input, so this is only reached by one input fanning out
/// widely; the frame that would exceed it is dropped (counted) — heartbeats,
/// gossip and handshakes are never refused.
pub const MAX_SEND_QUEUE: usize = 8192;
/// Most frames queued for the TAP; beyond it frames are dropped (counted).
pub const MAX_TAP_QUEUE: usize = 8192;

/// What happens when a table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtCap {
    /// New entries are refused; existing ones stay.
    Refuse,
    /// The oldest or idle entries make room for the new one.
    Evict,
}

/// One bounded table: how full it is and what its cap did so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// The table (`peers`, `mac_table`, ...).
    pub name: String,
    /// Entries now (for a per-item cap: the fullest item).
    pub in_use: u64,
    /// The cap.
    pub cap: u64,
    /// What happens at the cap.
    pub at_cap: AtCap,
    /// New entries refused by the cap, since start.
    pub refused: u64,
    /// Entries evicted to make room, since start.
    pub evicted: u64,
}

impl Limit {
    /// A table that refuses new entries at its cap.
    pub fn refusing(name: &str, in_use: usize, cap: usize, refused: u64) -> Limit {
        Limit {
            name: name.to_string(),
            in_use: in_use as u64,
            cap: cap as u64,
            at_cap: AtCap::Refuse,
            refused,
            evicted: 0,
        }
    }

    /// A table that evicts entries to make room at its cap.
    pub fn evicting(name: &str, in_use: usize, cap: usize, evicted: u64) -> Limit {
        Limit {
            name: name.to_string(),
            in_use: in_use as u64,
            cap: cap as u64,
            at_cap: AtCap::Evict,
            refused: 0,
            evicted,
        }
    }
}

/// Refusals and evictions counted by the core itself.
#[derive(Debug, Clone, Default)]
pub struct LimitCounters {
    /// Gossip records of unknown nodes refused: the peer table was full.
    pub peers_refused: u64,
    /// Gossip records of unknown nodes refused: their introducer had
    /// introduced `max_unreached_per_introducer` nodes never reached.
    pub introductions_refused: u64,
    /// Gossip-learned nodes forgotten (record not refreshed, or listed by
    /// no live peer, for `record_ttl`).
    pub nodes_forgotten: u64,
    /// Sessions dropped because a peer held MAX_SESSIONS_PER_PEER.
    pub sessions_evicted: u64,
    /// Handshake attempts put off: MAX_HANDSHAKES_IN_FLIGHT were in flight.
    pub handshakes_deferred: u64,
    /// Frames not queued for the socket: MAX_SEND_QUEUE were waiting.
    pub send_queue_refused: u64,
    /// Frames not queued for the TAP: MAX_TAP_QUEUE were waiting.
    pub tap_queue_refused: u64,
    /// Buffers handed back while MAX_SPARE were kept (freed instead).
    pub spare_released: u64,
}

impl Node {
    /// Every bounded table of the core, in a fixed order.
    pub fn limits(&self) -> Vec<Limit> {
        let c = &self.limit_counters;
        let mut per_peer: HashMap<&str, usize> = HashMap::new();
        for s in self.sessions.values() {
            *per_peer.entry(s.peer.as_str()).or_insert(0) += 1;
        }
        let fullest = per_peer.values().copied().max().unwrap_or(0);
        let macs = self.switch.macs();
        let mac_limits = macs.limits();
        let neighbours = self.switch.neighbours();
        let flows = self.vip.flows();
        vec![
            Limit::refusing(
                "peers",
                self.peers.len(),
                self.config.max_peers,
                c.peers_refused,
            ),
            Limit::refusing(
                "unreached_per_introducer",
                self.most_unreached_by_one_introducer(),
                self.config.max_unreached_per_introducer,
                c.introductions_refused,
            ),
            Limit::evicting(
                "gossip_learned_nodes",
                self.peers
                    .values()
                    .filter(|p| p.introduced_by.is_some())
                    .count(),
                self.config.max_peers,
                c.nodes_forgotten,
            ),
            Limit::evicting(
                "sessions_per_peer",
                fullest,
                MAX_SESSIONS_PER_PEER,
                c.sessions_evicted,
            ),
            Limit::refusing(
                "handshakes_in_flight",
                self.pending.len(),
                MAX_HANDSHAKES_IN_FLIGHT,
                c.handshakes_deferred,
            ),
            Limit::evicting(
                "handshake_sources",
                self.limiter.tracked_sources(),
                self.limiter.max_tracked_sources(),
                self.limiter.evicted_sources(),
            ),
            Limit::evicting(
                "handshake_sources_known",
                self.known_limiter.tracked_sources(),
                self.known_limiter.max_tracked_sources(),
                self.known_limiter.evicted_sources(),
            ),
            Limit::refusing(
                "mac_table",
                macs.learned_len(),
                mac_limits.max_total,
                macs.cap_hits() - macs.per_port_cap_hits(),
            ),
            Limit::refusing(
                "mac_table_per_node",
                macs.largest_port(),
                mac_limits.max_per_port,
                macs.per_port_cap_hits(),
            ),
            Limit::refusing(
                "ip_bindings",
                neighbours.len(),
                neighbours.max(),
                neighbours.full_refusals(),
            ),
            Limit::refusing(
                "vip_flows",
                flows.len(),
                flows.capacity(),
                flows.full_refusals,
            ),
            Limit::refusing(
                "send_queue",
                self.transmits.len() + self.urgent.len(),
                MAX_SEND_QUEUE,
                c.send_queue_refused,
            ),
            Limit::refusing(
                "tap_queue",
                self.tap_out.len(),
                MAX_TAP_QUEUE,
                c.tap_queue_refused,
            ),
            Limit::refusing(
                "spare_buffers",
                self.spare.len(),
                Self::MAX_SPARE,
                c.spare_released,
            ),
        ]
    }
}

/// How often a throttled warning may be written (see [`LogThrottle`]).
pub const LOG_THROTTLE_INTERVAL: Duration = Duration::from_secs(1);

/// Rate limit of one kind of warning that an outsider can trigger at will
/// (refused handshakes, join connections): at most one line per
/// [`LOG_THROTTLE_INTERVAL`], which says how many were not written since the
/// previous one. A flood would otherwise write a log line per packet.
#[derive(Debug, Default)]
pub struct LogThrottle {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// `Some(n)` when a warning at `now` may be written (`n` were suppressed
    /// since the last line); `None` when it is only counted.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < LOG_THROTTLE_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}
