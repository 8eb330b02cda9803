//! Bounded membership: how many never-reached nodes one peer's gossip may
//! introduce, and forgetting gossip-learned nodes whose records are no longer
//! refreshed or that no live peer lists as a neighbour (a member that invents
//! thousands of nodes and leaves does not fill the peer table for good).

use super::{Node, NodeName};
use crate::wire::NodeRecord;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// The record versions of nodes forgotten, so that a peer's anti-entropy
/// cannot bring them back with the same stale record: only a newer one (the
/// node is alive and refreshed it) introduces them again. Bounded: the
/// oldest entries go first.
#[derive(Debug, Default)]
pub(super) struct Forgotten {
    versions: HashMap<NodeName, (u64, u64)>,
    order: VecDeque<NodeName>,
}

impl Forgotten {
    fn insert(&mut self, name: NodeName, version: (u64, u64), cap: usize) {
        if self.versions.insert(name.clone(), version).is_none() {
            self.order.push_back(name);
        }
        while self.order.len() > cap.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.versions.remove(&old);
            }
        }
    }

    /// True if `rec` is no newer than the record of its node we forgot.
    pub(super) fn is_stale(&self, rec: &NodeRecord) -> bool {
        self.versions
            .get(&rec.name)
            .is_some_and(|&(g, v)| !rec.is_newer_than(g, v))
    }

    /// A node introduced again (a newer record) leaves the list.
    pub(super) fn remove(&mut self, name: &NodeName) {
        if self.versions.remove(name).is_some() {
            self.order.retain(|n| n != name);
        }
    }
}

impl Node {
    /// Whether `introducer` may introduce one more node we never reached.
    pub(super) fn may_introduce(&mut self, introducer: &str) -> bool {
        let unreached = self.unreached_introduced_by(introducer);
        if unreached < self.config.max_unreached_per_introducer {
            return true;
        }
        self.limit_counters.introductions_refused += 1;
        false
    }

    fn unreached_introduced_by(&self, introducer: &str) -> usize {
        self.peers
            .values()
            .filter(|p| {
                !p.reached
                    && p.introduced_by
                        .as_ref()
                        .is_some_and(|i| i.as_str() == introducer)
            })
            .count()
    }

    /// The most never-reached nodes any one peer introduced (`dump limits`).
    pub(super) fn most_unreached_by_one_introducer(&self) -> usize {
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for p in self.peers.values().filter(|p| !p.reached) {
            if let Some(i) = &p.introduced_by {
                *counts.entry(i.as_str()).or_insert(0) += 1;
            }
        }
        counts.values().copied().max().unwrap_or(0)
    }

    /// Forgets gossip-learned nodes that are not alive here and whose record
    /// was not refreshed for `record_ttl` (every node republishes at a third
    /// of it), or for a quarter of it while no live peer lists them as a
    /// neighbour. Host-file and `ConnectTo` nodes stay.
    pub(super) fn forget_stale_nodes(&mut self, now: Instant) {
        let ttl = self.config.record_ttl;
        let listed: std::collections::HashSet<&str> = self
            .peers
            .values()
            .filter(|p| p.alive)
            .filter_map(|p| p.record.as_ref())
            .flat_map(|r| r.neighbours.iter().map(|n| n.name.as_str()))
            .collect();
        let stale: Vec<NodeName> = self
            .peers
            .values()
            .filter(|p| p.introduced_by.is_some() && !p.alive && !p.connect_to)
            .filter(|p| {
                let silent_for = now.saturating_duration_since(p.record_refreshed);
                silent_for >= ttl || (silent_for >= ttl / 4 && !listed.contains(p.name.as_str()))
            })
            .map(|p| p.name.clone())
            .collect();
        for name in stale {
            tracing::debug!(node = %name, "forgetting a gossip-learned node: no fresh record, nobody lists it");
            self.limit_counters.nodes_forgotten += 1;
            self.forget_peer(now, &name, false);
        }
    }

    /// Drops what this node holds about `name`: sessions, pending handshakes,
    /// VIP claims, switch entries, and (unless `keep_entry`: a host-file node,
    /// tried again on its usual schedule) the peer itself, remembering its
    /// record's version so that a peer's stale copy cannot bring it back.
    /// The one place revocation, expiry and `purge` forget a node.
    pub(super) fn forget_peer(&mut self, now: Instant, name: &NodeName, keep_entry: bool) {
        let n = name.to_string();
        self.sessions.retain(|_, s| s.peer != *name);
        self.pending.retain(|_, p| p.peer != *name);
        self.vip.apply_peer_items(&n, &[], false, now);
        self.switch
            .set_static(crate::switch::Port::Peer(n.clone()), &[]);
        self.switch.peer_down(&n);
        // Its subnet-down and MAC events ran when it went down.
        while self.switch.poll_event().is_some() {}
        self.timers.cancel(name);
        let record = if keep_entry {
            self.peers.get_mut(name).and_then(|peer| {
                peer.subnets.clear();
                peer.send_index = None;
                peer.purged = true;
                peer.record.take()
            })
        } else {
            self.peers.remove(name).and_then(|p| p.record)
        };
        self.observed.replace(name, record.as_ref(), None);
        if let (Some(rec), false) = (record, keep_entry) {
            let cap = self.config.max_peers;
            self.forgotten
                .insert(name.clone(), (rec.generation, rec.version), cap);
        }
        self.reserve_virtual_macs();
        self.touch(name);
    }
}
