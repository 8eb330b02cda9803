//! Per-peer timers: when each peer next needs the tick (a heartbeat, a probe,
//! a deadline, a handshake), kept in order, so the tick and `poll_timeout`
//! touch only the peers that are due — a node's idle cost does not grow with
//! the peers it knows but cannot reach.
//!
//! The queue holds, per peer, an instant no later than the peer's next due
//! time (a lower bound). A change that can only delay a peer (a data packet
//! arriving) needs nothing: its entry comes up early, the peer is ticked
//! (harmless) and queued again at its real time. A heartbeat arriving
//! *retimes* the peer (queued afresh at its real time): at idle, heartbeats
//! are what arrives, and a tick at the old time would wake the driver for
//! nothing once per heartbeat received. A change that can bring a
//! peer's time forward *touches* it; touched peers are queued again before
//! the next tick and counted in `poll_timeout` until then. The invariant is
//! checked after every step of the simulated-network tests
//! ([`Node::check_timers`]).

use super::{Node, Peer};
use crate::name::NodeName;
use crate::wire::Hello;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Instants per key, earliest first; one entry per key.
#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    queue: BTreeSet<(Instant, NodeName)>,
    queued: HashMap<NodeName, Instant>,
}

impl TimerQueue {
    /// Queues `key` at `at` unless it is already queued no later.
    pub(super) fn schedule(&mut self, key: &NodeName, at: Instant) {
        match self.queued.get(key) {
            Some(&t) if t <= at => {}
            Some(&t) => {
                self.queue.remove(&(t, key.clone()));
                self.queue.insert((at, key.clone()));
                self.queued.insert(key.clone(), at);
            }
            None => {
                self.queue.insert((at, key.clone()));
                self.queued.insert(key.clone(), at);
            }
        }
    }

    /// Forgets `key`.
    pub(super) fn cancel(&mut self, key: &str) {
        if let Some((k, t)) = self.queued.remove_entry(key) {
            self.queue.remove(&(t, k));
        }
    }

    /// The earliest instant queued.
    pub(super) fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(t, _)| *t)
    }

    /// When `key` is queued.
    pub(super) fn queued_at(&self, key: &str) -> Option<Instant> {
        self.queued.get(key).copied()
    }

    /// Removes and returns the keys queued at or before `now`, earliest first.
    pub(super) fn pop_due(&mut self, now: Instant) -> Vec<NodeName> {
        let mut due = Vec::new();
        while let Some((t, _)) = self.queue.first() {
            if *t > now {
                break;
            }
            if let Some((_, key)) = self.queue.pop_first() {
                self.queued.remove(&key);
                due.push(key);
            }
        }
        due
    }

    /// Keys queued.
    pub(super) fn len(&self) -> usize {
        self.queued.len()
    }
}

/// The first instant after `last` that is a multiple of `period` in wall-clock
/// time, for a clock that read `wall_ns_at_start` (Unix nanoseconds) at
/// `start`: nodes whose clocks agree share the grid whenever they started.
pub(super) fn next_on_wall_grid(
    start: Instant,
    wall_ns_at_start: u64,
    last: Instant,
    period: Duration,
) -> Instant {
    let period_ns = period.as_nanos().max(1);
    let phase = u128::from(wall_ns_at_start) % period_ns;
    let since = last.saturating_duration_since(start).as_nanos() + phase;
    let steps = since / period_ns + 1;
    let offset = steps.saturating_mul(period_ns).saturating_sub(phase);
    let offset = Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
    start
        .checked_add(offset)
        .or_else(|| last.checked_add(period))
        .unwrap_or(last)
}

/// Peers whose next due time may have moved earlier since they were queued.
#[derive(Debug, Default)]
pub(super) struct Touched {
    names: Vec<NodeName>,
    all: bool,
}

impl Node {
    /// When the tick next has something to do for `peer`: a death deadline,
    /// a probe, an on-demand check, a heartbeat, or (down, with a key) a
    /// handshake. `None`: nothing until something changes.
    pub(super) fn peer_due(&self, peer: &Peer) -> Option<Instant> {
        let bounds = self.bounds();
        if peer.alive {
            let dead = peer.detector.deadline(&bounds);
            let mut next = self.death_time(peer, dead);
            let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
            if let Some(t) = peer.next_probe(dead) {
                consider(t);
            }
            if let Some(t) = peer.detector.next_on_demand() {
                consider(t);
            }
            if let Some(t) = self.rekey_due(peer) {
                consider(t);
            }
            if let Some(t) = peer.up_pending {
                consider(t);
            }
            if let Some(t) = peer.pmtu.next_due() {
                consider(t);
            }
            if let Some(t) = self.relayed_due(peer) {
                consider(t);
            }
            let (period, flags) = peer.detector.sending(self.heartbeat_fast(), &bounds);
            let speed_up = flags & Hello::SLOW == 0 && peer.detector.sending_slow();
            match peer.last_hello_tx {
                Some(t) if !speed_up => consider(self.next_hello_after(t, period)),
                Some(t) => consider(t),
                None => consider(self.start),
            }
            next
        } else if peer.key.is_some() && !self.shutting_down {
            Some(peer.next_handshake)
        } else {
            None
        }
    }

    /// When the tick starts a time-based rekey with `peer` (the initiator of
    /// the session at `RekeyAfterTime`, the responder a tenth later), unless
    /// one is in flight; not before its handshake back-off.
    fn rekey_due(&self, peer: &Peer) -> Option<Instant> {
        let slot = self.sessions.get(&peer.send_index?)?;
        if self.pending.values().any(|p| p.peer == peer.name) {
            return None;
        }
        let after = self.config.rekey_after_time;
        let after = if slot.session.is_initiator() {
            after
        } else {
            after + after / 10
        };
        Some((slot.session.created() + after).max(peer.next_handshake))
    }

    /// `name`'s next due time may have moved earlier: queue it again before
    /// the next tick.
    pub(super) fn touch(&mut self, name: &str) {
        if self.touched.all {
            return;
        }
        if let Some((key, _)) = self.peers.get_key_value(name) {
            self.touched.names.push(key.clone());
        }
    }

    /// `name`'s due time moved, later or earlier (a heartbeat arrived: its
    /// probes and deadline move later, its rate may have changed): queue it
    /// afresh before the next tick instead of ticking it at the old time.
    pub(super) fn retime(&mut self, name: &str) {
        self.timers.cancel(name);
        self.touch(name);
    }

    /// Every peer's due time may have moved (settings, our own VIPs, a stall).
    pub(super) fn touch_all(&mut self) {
        self.touched.all = true;
        self.touched.names.clear();
    }

    /// Queues every touched peer at its due time.
    pub(super) fn requeue_touched(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        let mut queue = std::mem::take(&mut self.timers);
        if touched.all {
            for peer in self.peers.values() {
                if let Some(t) = self.peer_due(peer) {
                    queue.schedule(&peer.name, t);
                }
            }
        } else {
            for name in &touched.names {
                if let Some(t) = self.peers.get(name).and_then(|p| self.peer_due(p)) {
                    queue.schedule(name, t);
                }
            }
        }
        self.timers = queue;
    }

    /// The earliest time any peer needs the tick.
    pub(super) fn next_peer_due(&self) -> Option<Instant> {
        let touched = if self.touched.all {
            self.peers.values().filter_map(|p| self.peer_due(p)).min()
        } else {
            self.touched
                .names
                .iter()
                .filter_map(|n| self.peers.get(n).and_then(|p| self.peer_due(p)))
                .min()
        };
        match (self.timers.next(), touched) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks the timer queue's invariant: every peer with something due is
    /// queued no later than that, or touched. For tests (the simulated
    /// network runs it after every step); `Err` names the first peer that
    /// would be ticked late.
    #[doc(hidden)]
    pub fn check_timers(&self) -> Result<(), String> {
        if self.touched.all {
            return Ok(());
        }
        for peer in self.peers.values() {
            let Some(due) = self.peer_due(peer) else {
                continue;
            };
            if self.touched.names.contains(&peer.name) {
                continue;
            }
            match self.timers.queued_at(&peer.name) {
                Some(t) if t <= due => {}
                queued => {
                    return Err(format!(
                        "{}: peer {} is due at {:?} but queued at {:?} (alive {})",
                        self.config.name,
                        peer.name,
                        due.saturating_duration_since(self.start),
                        queued.map(|t| t.saturating_duration_since(self.start)),
                        peer.alive
                    ))
                }
            }
        }
        Ok(())
    }

    /// Peers in the timer queue (for `dump limits`-style introspection and tests).
    #[doc(hidden)]
    pub fn timers_queued(&self) -> usize {
        self.timers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    #[test]
    fn keeps_the_earliest_instant_per_key() {
        let t0 = crate::test_clock::start();
        let mut q = TimerQueue::default();
        q.schedule(&name("a"), t0 + Duration::from_secs(5));
        q.schedule(&name("a"), t0 + Duration::from_secs(9));
        assert_eq!(q.queued_at("a"), Some(t0 + Duration::from_secs(5)));
        q.schedule(&name("a"), t0 + Duration::from_secs(1));
        assert_eq!(q.queued_at("a"), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.next(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn nodes_started_apart_share_the_wall_clock_grid() {
        let t0 = crate::test_clock::start();
        let ms = Duration::from_millis;
        let period = ms(100);
        // Node a started at t0 when the wall clock read 1000.030 s; node b
        // 47 ms later (wall 1000.077 s). Grid points: wall multiples of 100 ms.
        let wall_a = 1_000_030_000_000u64;
        let (start_b, wall_b) = (t0 + ms(47), wall_a + 47_000_000);
        let a = next_on_wall_grid(t0, wall_a, t0 + ms(5), period);
        assert_eq!(a, t0 + ms(70), "wall 1000.100 s");
        let b = next_on_wall_grid(start_b, wall_b, start_b, period);
        assert_eq!(b, a, "the same wall instant");
        // On a grid point, the next one; a reply sent between points does not move it.
        assert_eq!(next_on_wall_grid(t0, wall_a, a, period), t0 + ms(170));
        assert_eq!(
            next_on_wall_grid(t0, wall_a, t0 + ms(169), period),
            t0 + ms(170)
        );
        // A clock exactly on the grid at start.
        assert_eq!(
            next_on_wall_grid(t0, 2_000_000_000, t0, period),
            t0 + ms(100)
        );
    }

    #[test]
    fn pops_only_what_is_due_in_order() {
        let t0 = crate::test_clock::start();
        let mut q = TimerQueue::default();
        q.schedule(&name("late"), t0 + Duration::from_secs(3));
        q.schedule(&name("early"), t0 + Duration::from_secs(1));
        q.schedule(&name("mid"), t0 + Duration::from_secs(2));
        let due = q.pop_due(t0 + Duration::from_secs(2));
        assert_eq!(due, vec![name("early"), name("mid")]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next(), Some(t0 + Duration::from_secs(3)));
        q.cancel("late");
        assert_eq!(q.next(), None);
        assert!(q.pop_due(t0 + Duration::from_secs(9)).is_empty());
    }
}
