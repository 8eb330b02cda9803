//! Relaying (PROTOCOL §5.6, r10): two nodes without a working direct path
//! talk through a node both have live sessions with. Their packets —
//! handshakes, heartbeats, frames — stay sealed end to end; the relay
//! forwards them inside its own sessions (`RelayTo` in, `RelayFrom` out),
//! checks who sent each one, forwards only between nodes it has direct
//! sessions with, never forwards a relayed packet again (no loops), and
//! always sends less than it received.
//!
//! Inside the node a relayed path is an *address*: `[100::N]:1`, one per
//! (peer, relay) pair, from the discard-only prefix 100::/64 (RFC 6666), so
//! that handshakes, endpoints, path validation and the detector work on it
//! unchanged. Such an address never reaches the driver: a datagram for it is
//! wrapped for the relay as it leaves ([`Node::poll_transmit`]), and one
//! unwrapped from a relay arrives from it.

use super::{limits, Node};
use crate::name::NodeName;
use crate::wire::extension::{decode_extension, ExtensionItem};
use crate::wire::Message;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Most relayed paths a node keeps addresses for (peers × relays it used).
const MAX_RELAY_PATHS: usize = 16_384;
/// Failed direct attempts after which a handshake also goes through a relay.
pub(super) const RELAY_AFTER_ATTEMPTS: u32 = 2;
/// While relayed, how often a direct handshake is tried (NAT traversal and
/// the return to a direct path; both sides try, so their attempts cross).
pub(super) const DIRECT_RETRY: Duration = Duration::from_secs(5);
/// Least time between two direct handshakes tried because a relayed peer
/// asked (`DirectTry`).
const DIRECT_TRY_ANSWER_EVERY: Duration = Duration::from_secs(1);
/// How long a relayed peer whose relay went silent may take to come up
/// through another path before it is declared dead.
pub(super) const FAILOVER_GRACE: Duration = Duration::from_millis(500);
/// How long a relay that carried a peer into its death while answering
/// itself is passed over for that peer (another relay or a direct path
/// first; it is used again if there is none: the peer may simply have died).
pub(super) const SHUN_RELAY: Duration = Duration::from_secs(30);
/// Packets per second (burst: one second's worth) one peer may have relayed.
const RELAY_PACKETS_PER_SEC: f64 = 100_000.0;

/// True for the addresses that stand for relayed paths.
pub fn is_relay_addr(addr: SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V6(ip) => ip.segments()[..4] == [0x100, 0, 0, 0],
        IpAddr::V4(_) => false,
    }
}

/// Counters of what this node relayed and refused to relay.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RelayCounters {
    /// Packets forwarded between two other nodes.
    pub relayed_packets: u64,
    /// Their bytes (the end-to-end packets).
    pub relayed_bytes: u64,
    /// Refused: the sender claimed another node's name.
    pub forged_source: u64,
    /// Refused: the destination is not a live direct peer (or is the sender).
    pub no_route: u64,
    /// Refused: the sender's relay budget was spent, or the send queue is full.
    pub over_budget: u64,
    /// Refused: a relay message inside a relayed packet (a loop).
    pub nested: u64,
    /// Datagrams for a relayed path not sent: its relay is gone.
    pub relay_gone: u64,
    /// Relayed packets from nodes we hold no key for.
    pub unknown_source: u64,
}

/// The addresses of relayed paths.
#[derive(Debug, Default)]
pub(super) struct RelayPaths {
    by_addr: HashMap<SocketAddr, (NodeName, NodeName)>,
    by_pair: HashMap<(NodeName, NodeName), SocketAddr>,
    next: u32,
}

impl RelayPaths {
    /// The address of `peer` through `relay` (made on first use); `None`
    /// when the table is full.
    pub(super) fn addr_for(&mut self, peer: &NodeName, relay: &NodeName) -> Option<SocketAddr> {
        let key = (peer.clone(), relay.clone());
        if let Some(addr) = self.by_pair.get(&key) {
            return Some(*addr);
        }
        if self.by_addr.len() >= MAX_RELAY_PATHS {
            return None;
        }
        self.next += 1;
        let n = self.next;
        let ip = Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16);
        let addr = SocketAddr::new(IpAddr::V6(ip), 1);
        self.by_addr.insert(addr, key.clone());
        self.by_pair.insert(key, addr);
        Some(addr)
    }

    /// Which peer, through which relay, `addr` stands for.
    pub(super) fn lookup(&self, addr: SocketAddr) -> Option<&(NodeName, NodeName)> {
        self.by_addr.get(&addr)
    }
}

/// A peer's budget of packets to relay.
#[derive(Debug, Clone)]
pub struct RelayBudget {
    tokens: f64,
    last: Option<Instant>,
}

impl Default for RelayBudget {
    fn default() -> Self {
        RelayBudget {
            tokens: RELAY_PACKETS_PER_SEC,
            last: None,
        }
    }
}

impl RelayBudget {
    fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * RELAY_PACKETS_PER_SEC;
            self.tokens = (self.tokens + refill).min(RELAY_PACKETS_PER_SEC);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Node {
    /// The relay `name`'s packets go through, if its endpoint is relayed.
    pub(super) fn relay_of(&self, name: &str) -> Option<&NodeName> {
        let endpoint = self.peers.get(name)?.endpoint?;
        self.relay_paths.lookup(endpoint).map(|(_, relay)| relay)
    }

    /// The address to show for `name` (scripts' `REMOTEADDRESS`, `dump
    /// nodes`): its endpoint, or for a relayed peer the first real address
    /// known for it (host file, its record, others' records).
    pub fn shown_endpoint(&self, name: &str) -> Option<SocketAddr> {
        let peer = self.peers.get(name)?;
        match peer.endpoint {
            Some(e) if !is_relay_addr(e) => Some(e),
            _ => peer
                .candidate_addresses(&self.observed.of(name), 1)
                .first()
                .copied(),
        }
    }

    /// A live peer with a direct endpoint (it may relay, and be relayed to).
    fn direct_and_alive(&self, name: &str) -> bool {
        self.peers
            .get(name)
            .is_some_and(|p| p.alive && p.endpoint.is_some_and(|e| !is_relay_addr(e)))
    }

    /// The relayed path to try for `name`: through the live direct peer whose
    /// record lists `name` as a neighbour (it has a session with it) with the
    /// lowest combined RTT — ours to it plus its own to `name`, as its record
    /// gives it (a relay whose record gives none, an older node, counts its
    /// RTT twice). `None` if there is none.
    pub(super) fn relay_candidate(
        &mut self,
        now: Instant,
        name: &NodeName,
        avoid: Option<&NodeName>,
    ) -> Option<SocketAddr> {
        let relay = self.best_relay(now, name, avoid)?;
        self.relay_paths.addr_for(name, &relay)
    }

    /// The relay [`Node::relay_candidate`] picks for `name`: not `avoid`, and
    /// not one that carried `name` into its death lately while it answered
    /// itself (it may drop what it should relay: [`SHUN_RELAY`]).
    fn best_relay(
        &self,
        now: Instant,
        name: &NodeName,
        avoid: Option<&NodeName>,
    ) -> Option<NodeName> {
        let shunned = self
            .peers
            .get(name)
            .and_then(|p| p.shunned_relay.as_ref())
            .filter(|(_, until)| now < *until)
            .map(|(relay, _)| relay);
        let candidates: Vec<NodeName> = self
            .observed
            .reporters(name)
            .into_iter()
            .filter(|r| r != name && Some(r) != avoid && self.direct_and_alive(r))
            .collect();
        let fastest = |skip: Option<&NodeName>| {
            candidates
                .iter()
                .filter(|r| Some(*r) != skip)
                .min_by_key(|r| self.relayed_rtt(r, name))
                .cloned()
        };
        fastest(shunned).or_else(|| fastest(None))
    }

    /// Whether a relay other than `current` now reaches `name` clearly faster
    /// (a quarter and a millisecond less combined RTT): records carry RTTs
    /// only from their second version on, so the first choice may be wrong.
    fn better_relay_than(&self, now: Instant, name: &NodeName, current: &NodeName) -> bool {
        let Some(best) = self.best_relay(now, name, None) else {
            return false;
        };
        if &best == current {
            return false;
        }
        let now_rtt = self.relayed_rtt(current, name);
        let best_rtt = self.relayed_rtt(&best, name);
        best_rtt.saturating_add(Duration::from_millis(1)) < now_rtt
            && best_rtt.saturating_mul(4) < now_rtt.saturating_mul(3)
    }

    /// Our RTT to `relay` plus the RTT `relay`'s record gives for its session
    /// with `target` (our own to `relay` again if it gives none).
    fn relayed_rtt(&self, relay: &str, target: &str) -> Duration {
        let Some(peer) = self.peers.get(relay) else {
            return Duration::MAX;
        };
        let Some(ours) = peer.detector.srtt() else {
            return Duration::MAX;
        };
        let theirs = peer
            .record
            .as_ref()
            .and_then(|r| decode_extension(&r.extension).ok())
            .and_then(|items| {
                items.into_iter().find_map(|item| match item {
                    ExtensionItem::NeighbourRtts(list) => list
                        .into_iter()
                        .find(|n| n.name.as_str() == target)
                        .map(|n| n.rtt()),
                    _ => None,
                })
            })
            .unwrap_or(ours);
        ours.saturating_add(theirs)
    }

    /// A datagram addressed to a relayed path, sealed for its relay; `None`
    /// (counted) if the relay is not a live direct peer any more.
    pub(super) fn wrap_for_relay(&mut self, t: super::Transmit) -> Option<super::Transmit> {
        let Some((peer, relay)) = self.relay_paths.lookup(t.destination).cloned() else {
            return Some(t);
        };
        let out = if self.direct_and_alive(&relay) {
            let msg = Message::RelayTo {
                dst: peer,
                src: self.config.name.clone(),
                packet: &t.payload,
            };
            self.seal_for(&relay, &msg)
        } else {
            None
        };
        if out.is_none() {
            self.relay.relay_gone += 1;
        }
        self.recycle(t.payload);
        out
    }

    /// `from` asks us to relay `packet` to `dst`.
    pub(super) fn on_relay_to(
        &mut self,
        now: Instant,
        from: &str,
        dst: &NodeName,
        src: &NodeName,
        packet: &[u8],
    ) {
        if self.in_relay {
            self.relay.nested += 1;
            return;
        }
        if src.as_str() != from {
            self.relay.forged_source += 1;
            return;
        }
        if dst.as_str() == from || !self.direct_and_alive(dst) || !self.direct_and_alive(from) {
            self.relay.no_route += 1;
            return;
        }
        let allowed = self
            .peers
            .get_mut(from)
            .is_some_and(|p| p.relay_budget.allow(now));
        if !allowed || self.transmits.len() >= limits::MAX_SEND_QUEUE {
            self.relay.over_budget += 1;
            return;
        }
        let msg = Message::RelayFrom {
            src: src.clone(),
            packet,
        };
        if let Some(t) = self.seal_for(dst, &msg) {
            self.relay.relayed_packets += 1;
            self.relay.relayed_bytes += packet.len() as u64;
            self.transmits.push_back(t);
        }
    }

    /// `relay` forwards `packet` from `src`: handled as a datagram from the
    /// relayed path's address.
    pub(super) fn on_relay_from(
        &mut self,
        now: Instant,
        relay: &str,
        src: &NodeName,
        packet: &[u8],
    ) {
        if self.in_relay {
            self.relay.nested += 1;
            return;
        }
        let known = src.as_str() != relay
            && *src != self.config.name
            && self.peers.get(src).is_some_and(|p| p.key.is_some());
        let Some(relay) = self.peers.get_key_value(relay).map(|(k, _)| k.clone()) else {
            return;
        };
        if !known {
            self.relay.unknown_source += 1;
            return;
        }
        let Some(addr) = self.relay_paths.addr_for(src, &relay) else {
            self.relay.over_budget += 1;
            return;
        };
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.in_relay = true;
        self.handle_datagram_mut(now, addr, &mut buf);
        self.in_relay = false;
        self.recycle(buf);
    }

    /// `relay` died: the peers reached through it keep their state for a
    /// fresh deadline while a handshake goes through another relay (or
    /// directly) at once — a relay's death is not theirs.
    pub(super) fn relay_died(&mut self, now: Instant, relay: &str) {
        let relayed: Vec<NodeName> = self
            .peers
            .values()
            .filter(|p| p.alive && self.relay_of(&p.name).is_some_and(|r| r.as_str() == relay))
            .map(|p| p.name.clone())
            .collect();
        for name in relayed {
            tracing::info!(peer = %name, %relay, "relay is down: finding another path");
            if let Some(p) = self.peers.get_mut(&name) {
                p.last_rx = Some(now);
                p.probes_sent = 0;
                p.attempts = p.attempts.max(RELAY_AFTER_ATTEMPTS);
                p.next_handshake = now;
            }
            self.touch(&name);
        }
    }

    /// The tick of a live peer reached through a relay: another path at
    /// once if the relay died, and a direct handshake now and then (NAT
    /// traversal; the way back to a direct path).
    pub(super) fn tick_relayed(&mut self, now: Instant, name: &NodeName) {
        let Some(relay) = self.relay_of(name).cloned() else {
            return;
        };
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        if !self.direct_and_alive(&relay) {
            if now >= peer.next_handshake {
                self.start_handshake(now, name);
            }
        } else if peer.next_direct_try.is_some_and(|t| now >= t) && !peer.host_path.indirect {
            // With a clearly faster relay known by now, its path is tried too.
            let better = self.better_relay_than(now, name, &relay);
            tracing::debug!(peer = %name, %relay, better, "trying a direct path");
            self.start_handshake_on(now, name, better);
            if let Some(p) = self.peers.get_mut(name) {
                p.next_direct_try = Some(now + DIRECT_RETRY);
                p.last_direct_try = Some(now);
            }
            // Through the relay: "try me now", so that both send at once
            // and each NAT opens towards the other (hole punching).
            self.send_message(name, &Message::DirectTry);
        }
    }

    /// A relayed peer tries a direct handshake now: one back at once (at
    /// most once per [`DIRECT_TRY_ANSWER_EVERY`]), which opens this side's
    /// NAT towards it.
    pub(super) fn on_direct_try(&mut self, now: Instant, name: &str) {
        let Some((key, peer)) = self.peers.get_key_value(name) else {
            return;
        };
        let name = key.clone();
        let recent = peer
            .last_direct_try
            .is_some_and(|t| now.saturating_duration_since(t) < DIRECT_TRY_ANSWER_EVERY);
        if self.relay_of(&name).is_none() || recent || peer.host_path.indirect {
            return;
        }
        tracing::debug!(peer = %name, "peer tries a direct path: trying back");
        if let Some(p) = self.peers.get_mut(&name) {
            p.last_direct_try = Some(now);
        }
        // Our own attempt crosses its: the handshake collision rule (§4.2)
        // keeps one of the two.
        self.start_handshake_on(now, &name, false);
    }

    /// When [`Node::tick_relayed`] has something to do for `peer`.
    pub(super) fn relayed_due(&self, peer: &super::Peer) -> Option<Instant> {
        let relay = self.relay_of(&peer.name)?;
        if peer.host_path.indirect && self.direct_and_alive(relay) {
            return None;
        }
        // A handshake in flight: it is requeued when that one ends.
        if self.pending.values().any(|p| p.peer == peer.name) {
            return None;
        }
        if self.direct_and_alive(relay) {
            peer.next_direct_try
        } else {
            Some(peer.next_handshake)
        }
    }

    /// When `peer` (alive, detection deadline `dead`) is declared dead: its
    /// last packet + `dead`, as any peer — unless it is reached through a
    /// relay not heard from since: then the relay is checked first (a
    /// reply-requested Hello, and a handshake through another path at once,
    /// [`Node::check_relay`]); if the relay answers, the peer dies then; if
    /// not, the relay is taken for the culprit and the peer gets
    /// [`FAILOVER_GRACE`] for its new path to come up.
    pub(super) fn death_time(&self, peer: &super::Peer, dead: Duration) -> Option<Instant> {
        let rx = peer.last_rx?;
        let own = rx + dead;
        if !self.relay_silent_too(peer) {
            return Some(own);
        }
        let relay = self.relay_of(&peer.name).and_then(|r| self.peers.get(r))?;
        match peer.relay_check {
            None => Some(own),
            Some(started) => {
                let answer = relay
                    .detector
                    .srtt()
                    .map_or(dead, |srtt| srtt * 2)
                    .clamp(Duration::from_millis(50), dead);
                Some((started + answer + FAILOVER_GRACE).max(own))
            }
        }
    }

    /// `peer` is reached through a relay not heard from since the peer's
    /// last packet (if the relay spoke since, it lives and passed nothing on).
    pub(super) fn relay_silent_too(&self, peer: &super::Peer) -> bool {
        let Some(relay) = self.relay_of(&peer.name).and_then(|r| self.peers.get(r)) else {
            return false;
        };
        match (relay.last_rx, peer.last_rx) {
            (Some(relay_rx), Some(rx)) => relay_rx <= rx,
            _ => true,
        }
    }

    /// `name`'s deadline passed (or it is suspected) while its relay was
    /// silent too: probe the relay, and handshake through another relay or
    /// directly at once. Once per silence.
    pub(super) fn check_relay(&mut self, now: Instant, name: &NodeName) {
        let Some(relay) = self.relay_of(name).cloned() else {
            return;
        };
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if peer.relay_check.is_some() {
            return;
        }
        peer.relay_check = Some(now);
        self.relay_checks = true;
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        peer.attempts = peer.attempts.max(RELAY_AFTER_ATTEMPTS);
        tracing::info!(peer = %name, %relay, "silent through its relay: checking the relay, trying another path");
        self.send_hello(now, &relay, super::Hello::REPLY_REQUESTED);
        self.start_handshake_avoiding(now, name, Some(&relay));
        self.touch(name);
    }

    /// `name` was heard from: a relayed peer whose relay check waits for it
    /// is decided now (its death time moved to its own deadline).
    pub(super) fn relay_answered(&mut self, name: &str) {
        if !self.relay_checks {
            return;
        }
        let waiting: Vec<NodeName> = self
            .peers
            .values()
            .filter(|p| p.relay_check.is_some())
            .map(|p| p.name.clone())
            .collect();
        self.relay_checks = !waiting.is_empty();
        for peer in waiting {
            if self.relay_of(&peer).is_some_and(|r| r.as_str() == name) {
                self.retime(&peer);
            }
        }
    }

    /// Seals `msg` for `name` and queues it, as the node's own code would:
    /// for tests that play a misbehaving member. False if `name` has no
    /// session.
    #[doc(hidden)]
    pub fn send_message_as_test(&mut self, name: &str, msg: &Message<'_>) -> bool {
        self.send_message(name, msg)
    }

    /// What this node relayed and refused.
    pub fn relay_counters(&self) -> &RelayCounters {
        &self.relay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    #[test]
    fn relayed_path_addresses_are_stable_and_never_real() {
        let mut paths = RelayPaths::default();
        let ab = paths.addr_for(&name("b"), &name("r")).unwrap();
        let ac = paths.addr_for(&name("c"), &name("r")).unwrap();
        assert_ne!(ab, ac);
        assert_eq!(paths.addr_for(&name("b"), &name("r")), Some(ab));
        assert!(is_relay_addr(ab) && is_relay_addr(ac));
        assert_eq!(paths.lookup(ab), Some(&(name("b"), name("r"))));
        for real in [
            "192.0.2.1:655",
            "[2001:db8::1]:655",
            "[::ffff:192.0.2.1]:655",
        ] {
            assert!(!is_relay_addr(real.parse().unwrap()), "{real}");
        }
    }

    #[test]
    fn the_budget_refills_over_time() {
        let t0 = crate::test_clock::start();
        let mut b = RelayBudget::default();
        let burst = RELAY_PACKETS_PER_SEC as usize;
        assert!((0..burst).all(|_| b.allow(t0)));
        assert!(!b.allow(t0));
        assert!(b.allow(t0 + Duration::from_millis(1)));
    }
}
