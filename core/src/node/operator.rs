//! Operator commands on a running node, as tinc's `disconnect NODE`, `retry` and `purge`: drop
//! one peer's sessions, try every missing session again now, forget what unreachable nodes left
//! behind.

use super::{DownReason, Node};
use crate::name::NodeName;
use std::time::Instant;

impl Node {
    /// tinc's `disconnect NODE`: drops every session and pending handshake with `name` and
    /// marks it down here (host-down runs, steering moves). A new session is made by the next
    /// handshake of either side: ours after `handshake_retry_max`, the peer's once it finds us
    /// silent. False (nothing done) if there was no session or handshake with it.
    pub fn disconnect(&mut self, now: Instant, name: &str) -> bool {
        let had = self.sessions.values().any(|s| s.peer == name)
            || self.pending.values().any(|p| p.peer == name);
        if !had {
            return false;
        }
        tracing::info!(peer = %name, "disconnecting (operator request)");
        self.sessions.retain(|_, s| s.peer != name);
        self.pending.retain(|_, p| p.peer != name);
        self.mark_dead(now, name, DownReason::Disconnected);
        let retry = self.config.handshake_retry_max;
        if let Some(peer) = self.peers.get_mut(name) {
            peer.send_index = None;
            peer.next_handshake = now + retry;
        }
        true
    }

    /// tinc's `retry`: every peer without a live session gets a handshake now, its back-off
    /// reset. Returns how many.
    pub fn retry(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for peer in self.peers.values_mut().filter(|p| !p.alive) {
            peer.attempts = 0;
            peer.next_handshake = now;
            n += 1;
        }
        self.touch_all();
        tracing::info!(
            peers = n,
            "retrying every missing session now (operator request)"
        );
        n
    }

    /// tinc's `purge`: forgets what the unreachable nodes left: their records, subnets, VIP
    /// claims, learned MACs, stale sessions and unanswered handshakes; nodes known only from
    /// gossip (no host file) are forgotten entirely, nodes with a host file are kept (they are
    /// configuration: tried again on their usual schedule) and come back with a new record
    /// when they return. Returns the names purged.
    pub fn purge(&mut self, now: Instant) -> Vec<NodeName> {
        let down: Vec<NodeName> = self
            .peers
            .values()
            .filter(|p| !p.alive)
            .map(|p| p.name.clone())
            .collect();
        for name in &down {
            // A host-file node keeps its entry and is tried again on its usual
            // schedule; a gossip-learned one comes back only with a newer record.
            let keep_entry = self.host_files.contains(name);
            self.forget_peer(now, name, keep_entry);
        }
        tracing::info!(
            nodes = down.len(),
            "purged unreachable nodes (operator request)"
        );
        down
    }
}
