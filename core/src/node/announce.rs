//! Announcing a peer up (`host-up`, then its `subnet-up`s) once both sides of
//! the new edge are known: the session is live and the peer's signed record
//! lists this node, as tinc runs `host-up` after the ADD_EDGEs of the meta
//! handshake. Each side sends its record to the new peer the moment the
//! session comes up, so the wait is one message, not a gossip round.

use super::{Event, Node};
use std::time::{Duration, Instant};

/// Longest `host-up` waits for the peer's record (a peer that does not send
/// its record on a new session still republishes it within
/// `NEIGHBOURS_REPUBLISH_EVERY`).
pub(super) const UP_WAIT: Duration = Duration::from_secs(2);

impl Node {
    /// A session with `name` just went live: send it our record (listing it)
    /// at once, then announce it up if its record already lists us.
    pub(super) fn session_up(&mut self, now: Instant, name: &str) {
        if let Some(peer) = self.peers.get_mut(name) {
            peer.up_pending = Some(now + UP_WAIT);
        }
        self.send_own_record_to(now, name);
        self.announce_up_if_ready(name);
    }

    /// True if the record we hold of `name` lists this node as a neighbour.
    fn lists_us(&self, name: &str) -> bool {
        self.peers
            .get(name)
            .and_then(|p| p.record.as_ref())
            .is_some_and(|r| r.neighbours.iter().any(|n| n.name == self.config.name))
    }

    /// `host-up` for `name` if it waits and its record now lists us.
    pub(super) fn announce_up_if_ready(&mut self, name: &str) {
        let waiting = self
            .peers
            .get(name)
            .is_some_and(|p| p.alive && p.up_pending.is_some());
        if waiting && self.lists_us(name) {
            self.announce_up(name);
        }
    }

    /// `host-up` for `name` if it still waits and `now` passed its deadline.
    pub(super) fn announce_up_if_due(&mut self, now: Instant, name: &str) {
        let due = self
            .peers
            .get(name)
            .and_then(|p| p.up_pending)
            .is_some_and(|t| now >= t);
        if due {
            tracing::debug!(peer = %name, "its record does not list us yet; announcing it up anyway");
            self.announce_up(name);
        }
    }

    /// Emits the pending `host-up` of `name` and its static `subnet-up`s.
    pub(super) fn announce_up(&mut self, name: &str) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if peer.up_pending.take().is_none() {
            return;
        }
        if peer.endpoint.is_none() {
            return;
        }
        let Some(endpoint) = self.shown_endpoint(name) else {
            return;
        };
        self.events.push_back(Event::PeerUp {
            name: name.to_string(),
            endpoint,
        });
        self.push_static_subnet_events(true, name);
    }
}
