//! Liveness: heartbeats, probes, the timer tick, stall detection, and
//! declaring peers up, suspected and down (the per-peer detector's verdicts).

use super::detector::{Bounds, OnDemand};
use super::*;

/// Live peers that get our anti-entropy digest each `gossip_interval`.
const DIGEST_FANOUT: usize = 4;

impl Node {
    /// The operator's liveness bounds.
    pub(super) fn bounds(&self) -> Bounds {
        Bounds {
            hello: self.config.hello_interval,
            dead: self.config.dead_interval,
            idle_hello: self
                .config
                .idle_hello_interval
                .max(self.config.hello_interval),
        }
    }

    /// Whether our peers need our heartbeats at the fast rate: we hold a VIP,
    /// so any of them may steer frames to us and must notice within
    /// `DeadInterval` when we die. The other direction (a peer holds a VIP we
    /// may steer to) needs nothing fast from us: its own heartbeats tell us it
    /// lives, and our frames to it are watched on demand. So idle cost grows
    /// with the number of holders, one fast direction per holder and peer.
    pub(super) fn heartbeat_fast(&self) -> bool {
        self.vip.local_vips().next().is_some()
    }

    /// A live peer's current detection deadline: the silence after which it
    /// is declared dead (for `dump`, `info` and the metrics).
    pub fn detection_deadline(&self, name: &str) -> Option<Duration> {
        let peer = self.peers.get(name).filter(|p| p.alive)?;
        Some(self.deadline_of(peer))
    }

    /// The peer's current silence deadline.
    pub(super) fn deadline_of(&self, peer: &Peer) -> Duration {
        peer.detector.deadline(&self.bounds())
    }

    /// A frame that expects an answer went to `name` (steered to a holder or
    /// unicast to a station behind it): arm its on-demand detection.
    pub(super) fn note_frame_sent(&mut self, now: Instant, name: &str) {
        let armed = self
            .peers
            .get_mut(name)
            .is_some_and(|peer| peer.detector.frame_sent(now));
        if armed {
            self.touch(name);
        }
    }

    /// Alive for steering: alive and not suspected.
    pub(super) fn steerable(&self, name: &str) -> bool {
        self.peers
            .get(name)
            .is_some_and(|p| p.alive && !p.detector.suspected())
    }

    /// An authenticated packet of `len` bytes from `name` arrived from
    /// `from`. A new address becomes its endpoint at once only if `trusted`
    /// (a handshake just came from there) or it has none; otherwise it is
    /// checked first (path validation).
    pub(super) fn note_life(
        &mut self,
        now: Instant,
        name: &str,
        from: SocketAddr,
        len: usize,
        trusted: bool,
    ) {
        let ceiling = self.pmtu_ceiling();
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        peer.last_rx = Some(now);
        peer.probes_sent = 0;
        peer.relay_check = None;
        self.relay_answered(name);
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if peer.detector.heard() && peer.alive {
            tracing::info!(peer = %name, "suspected peer answers again");
            self.vip.set_peer_alive(name, true, now);
        }
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if peer.endpoint != Some(from) {
            if trusted || peer.endpoint.is_none() {
                if peer.endpoint.is_some() {
                    tracing::info!(peer = %name, %from, "peer moved to a new address");
                    // Another path: its MTU is found afresh.
                    peer.pmtu.restart_for(now, ceiling, peer.host_path);
                }
                let was_relayed = peer.endpoint.is_some_and(super::relay::is_relay_addr);
                peer.endpoint = Some(from);
                peer.path_check = None;
                let relayed = super::relay::is_relay_addr(from);
                if was_relayed && !relayed && peer.alive {
                    tracing::info!(peer = %name, %from, "direct path found: leaving the relay");
                    peer.punched = true;
                }
                peer.next_direct_try = relayed.then(|| now + super::relay::DIRECT_RETRY);
                self.own.dirty = true;
                self.touch(name);
                if let Some(relay) = self.relay_of(name) {
                    tracing::info!(peer = %name, %relay, "peer reached through a relay");
                }
            } else if !super::relay::is_relay_addr(from) {
                // A relayed packet of a peer now reached directly (one still
                // in flight, or the peer not yet moved) is a sign of life; it
                // must not move the endpoint back to the relay.
                self.check_path(now, name, from, len);
            }
        }
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let endpoint = peer.endpoint.unwrap_or(from);
        if !peer.alive && peer.send_index.is_some() {
            peer.alive = true;
            peer.purged = false;
            peer.reached = true;
            peer.state_changed = Some(now);
            peer.attempts = 0;
            peer.pmtu.restart_for(now, ceiling, peer.host_path);
            tracing::info!(peer = %name, %endpoint, "peer is up");
            self.touch(name);
            self.own.dirty = true;
            self.vip.set_peer_alive(name, true, now);
            // `host-up` once its record lists us (announce.rs).
            self.session_up(now, name);
            // Exchange membership at once so a newcomer converges quickly.
            self.send_digest(now, name);
        }
    }

    /// Timers: call when [`Node::poll_timeout`] is reached (calling early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.detect_stall(now);
        self.detect_mass_silence(now);
        self.last_tick = Some(now);
        self.sweep_switch(now);
        self.tick_leave(now);
        self.tick_vips(now);
        self.sessions
            .retain(|_, s| s.retire_at.is_none_or(|t| t > now) && !s.session.is_expired(now));
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent_at) >= HANDSHAKE_TIMEOUT)
            .map(|(i, _)| *i)
            .collect();
        for i in expired {
            if let Some(p) = self.pending.remove(&i) {
                // A rekey that got no answer is due again.
                self.touch(&p.peer);
            }
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.config.gossip_interval;
            self.forget_stale_nodes(now);
            self.refresh_own_record(now);
            // Anti-entropy with a bounded fan-out, rotating through the live
            // peers: its cost per node stays constant as the mesh grows.
            let alive = self.alive_peer_names();
            let n = alive.len();
            for k in 0..n.min(DIGEST_FANOUT) {
                let name = &alive[(self.digest_cursor + k) % n];
                self.send_digest(now, name);
            }
            self.digest_cursor = self.digest_cursor.wrapping_add(DIGEST_FANOUT);
        }
        // Last, so what the steps above changed is seen: only the peers
        // whose timers are due; a peer down and not due for a handshake costs
        // nothing here.
        self.requeue_touched();
        let names = self.timers.pop_due(now);
        for name in &names {
            self.tick_peer(now, name);
            self.touch(name);
        }
        self.finish(now);
    }

    /// If the caller did not run us for longer than DeadInterval (a stalled
    /// loop, a suspended process), peers were not necessarily silent: we were
    /// deaf. Give every live peer one more DeadInterval instead of declaring
    /// them all dead.
    pub(super) fn detect_stall(&mut self, now: Instant) {
        let Some(last) = self.last_tick else { return };
        let gap = now.saturating_duration_since(last);
        if gap <= self.config.dead_interval {
            return;
        }
        let bounds = self.bounds();
        let mut extended = 0;
        for peer in self.peers.values_mut().filter(|p| p.alive) {
            let dead = peer.detector.deadline(&bounds);
            let grace = now
                .checked_sub(dead.saturating_sub(self.config.hello_interval))
                .unwrap_or(now);
            if peer.last_rx.is_some_and(|t| t < grace) {
                peer.last_rx = Some(grace);
                extended += 1;
            }
        }
        if extended > 0 {
            tracing::warn!(
                gap_ms = gap.as_millis() as u64,
                peers = extended,
                "event loop stalled; extending liveness grace"
            );
        }
    }

    /// When a peer reaches its deadline while every other live peer (two or
    /// more in all) has been silent past its first probe too, the likelier
    /// story is that we could not hear them (a loop busy with bulk data, a
    /// machine that did not run us or them for a while), not that all of them
    /// died in the same instant. Give them three quarters of a DeadInterval
    /// more, probing again, before declaring them down; once per episode, so
    /// a node that really is cut off still gives up. A single dead peer (a VIP
    /// holder failing while the others talk) is not delayed.
    pub(super) fn detect_mass_silence(&mut self, now: Instant) {
        let bounds = self.bounds();
        let (mut live, mut due, mut quiet) = (0usize, 0usize, 0usize);
        // The episode lasts as long as the longest deadline among them.
        let mut longest = self.config.dead_interval;
        for peer in self.peers.values().filter(|p| p.alive) {
            live += 1;
            let dead = peer.detector.deadline(&bounds);
            longest = longest.max(dead);
            let silent = peer
                .last_rx
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            // Past its deadline, or at least past its first unanswered probe.
            due += usize::from(silent >= dead);
            quiet += usize::from(silent >= dead / 2);
        }
        if live < 2 || due == 0 || quiet < live {
            return;
        }
        if self
            .mass_silence_grace_at
            .is_some_and(|t| now.saturating_duration_since(t) < longest * 2)
        {
            return;
        }
        self.mass_silence_grace_at = Some(now);
        // Three quarters of its deadline more, probing again after a quarter
        // and a half of it.
        for peer in self.peers.values_mut().filter(|p| p.alive) {
            let dead = peer.detector.deadline(&bounds);
            peer.last_rx = Some(now.checked_sub(dead / 4).unwrap_or(now));
            peer.probes_sent = 0;
        }
        self.touch_all();
        tracing::warn!(
            peers = live,
            "every peer silent at once: probing them before declaring them down"
        );
    }

    pub(super) fn tick_peer(&mut self, now: Instant, name: &NodeName) {
        self.announce_up_if_due(now, name);
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        let dead = self.deadline_of(peer);
        let silent = peer.last_rx.is_some_and(|t| now >= t + dead);
        if peer.alive && silent && peer.relay_check.is_none() && self.relay_silent_too(peer) {
            // Its relay is checked before it is declared dead (relay.rs).
            self.check_relay(now, name);
        }
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        if peer.alive && self.death_time(peer, dead).is_some_and(|t| now >= t) {
            self.mark_dead(now, name, DownReason::Timeout);
        }
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        if self.shutting_down {
            return;
        }
        let alive = peer.alive;
        if alive && peer.pmtu.next_due().is_some_and(|t| t <= now) {
            self.tick_pmtu(now, name);
        }
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        let bounds = self.bounds();
        let (period, flags) = peer.detector.sending(self.heartbeat_fast(), &bounds);
        // Gaining a steering relation speeds the pair up at once.
        let speed_up = flags & Hello::SLOW == 0 && peer.detector.sending_slow();
        let hello_due = speed_up
            || peer
                .last_hello_tx
                .is_none_or(|t| now >= self.next_hello_after(t, period));
        let handshake_due = peer.key.is_some() && now >= peer.next_handshake;
        let needs_rekey = peer
            .send_index
            .and_then(|i| self.sessions.get(&i))
            .is_some_and(|s| {
                // The initiator rekeys by time; the responder steps in if it did not.
                let overdue = now.saturating_duration_since(s.session.created())
                    >= self.config.rekey_after_time + self.config.rekey_after_time / 10;
                s.session.should_initiate_rekey(now) || overdue
            });
        let answering = self
            .sessions
            .values()
            .any(|s| s.peer == *name && !s.confirmed);
        let probe_due = peer.next_probe(dead).is_some_and(|t| now >= t);
        let on_demand_due = peer.detector.next_on_demand().is_some_and(|t| now >= t);
        let on_demand = if alive && on_demand_due {
            let since = peer.detector.unanswered_since();
            let others_heard = || since.is_some_and(|s| self.another_answered(name, s));
            let mut detector = peer.detector.clone();
            let verdict = detector.on_demand(now, others_heard);
            if let Some(p) = self.peers.get_mut(name) {
                p.detector = detector;
            }
            verdict
        } else {
            OnDemand::Wait
        };
        if on_demand == OnDemand::Suspect {
            tracing::warn!(
                peer = %name,
                "frames and probes unanswered: suspected, out of steering for new flows"
            );
            self.vip.set_peer_alive(name, false, now);
            // Through a relay, the relay may be what failed: another path at once.
            if self.relay_of(name).is_some() {
                self.check_relay(now, name);
            }
        }
        if alive {
            if on_demand == OnDemand::Probe {
                self.send_hello(now, name, Hello::REPLY_REQUESTED);
                self.check_hearing(now, name);
            } else if probe_due {
                if let Some(p) = self.peers.get_mut(name) {
                    p.probes_sent += 1;
                }
                self.send_hello(now, name, Hello::REPLY_REQUESTED);
            } else if hello_due {
                self.send_hello(now, name, 0);
            }
            let has_pending = self.pending.values().any(|p| p.peer == *name);
            if needs_rekey && !has_pending {
                tracing::debug!(peer = %name, "rekeying");
                self.start_handshake(now, name);
            } else if !has_pending {
                self.tick_relayed(now, name);
            }
        } else if handshake_due && answering {
            // It is handshaking with us right now; look again shortly.
            if let Some(peer) = self.peers.get_mut(name) {
                peer.next_handshake = now + Duration::from_millis(250);
            }
        } else if handshake_due {
            self.start_handshake(now, name);
        }
    }

    /// When the heartbeat after one sent at `last` is due: the next point of
    /// the grid of wall-clock multiples of `period`, not `last + period`.
    /// All peers on one rate come due at the same instants, so a node's
    /// heartbeats leave in one wakeup instead of one each; and since every
    /// node's grid is the same (clocks agree to a few milliseconds), the
    /// heartbeats a node receives arrive together too: at idle a daemon's
    /// cost is its wakeups, not its packets. A peer sees `period` between
    /// heartbeats; a probe or an answer sent between grid points does not
    /// move the grid.
    pub(super) fn next_hello_after(&self, last: Instant, period: Duration) -> Instant {
        super::timers::next_on_wall_grid(self.start, self.wall_ns_at_start, last, period)
    }

    /// Whether a live peer other than `silent` answered a hello we sent at
    /// or after `since`: proof that we hear, and that paths did not just
    /// slow down for everyone (a heartbeat that merely arrived proves
    /// neither: it may have left long before).
    fn another_answered(&self, silent: &str, since: Instant) -> bool {
        // The relay of a relayed peer is no witness: its silence is the peer's.
        let relay = self.relay_of(silent);
        self.peers.values().any(|q| {
            q.name != *silent
                && Some(&q.name) != relay
                && q.alive
                && q.last_echoed.is_some_and(|t| t >= since)
        })
    }

    /// Frames to `silent` go unanswered: unless another peer already answered
    /// since they started to, ask the live peer with the shortest round trip
    /// for an answer, so that the window's end can tell a dead holder from
    /// our own deafness or a path that slowed down for everyone. One
    /// datagram per on-demand probe, at most.
    fn check_hearing(&mut self, now: Instant, silent: &str) {
        let Some(since) = self
            .peers
            .get(silent)
            .and_then(|p| p.detector.unanswered_since())
        else {
            return;
        };
        if self.another_answered(silent, since) {
            return;
        }
        let relay = self.relay_of(silent);
        let witness = self
            .peers
            .values()
            .filter(|q| q.name != *silent && Some(&q.name) != relay)
            .filter(|q| q.alive && !q.detector.suspected())
            .min_by_key(|q| q.detector.srtt().unwrap_or(Duration::MAX))
            .map(|q| q.name.clone());
        if let Some(witness) = witness {
            self.send_hello(now, &witness, Hello::REPLY_REQUESTED);
        }
    }

    pub(super) fn mark_dead(&mut self, now: Instant, name: &str, reason: DownReason) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if !peer.alive {
            return;
        }
        // Its `host-up` still waited for its record: run it first, so that
        // every `host-down` follows a `host-up`.
        self.announce_up(name);
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        peer.alive = false;
        peer.state_changed = Some(now);
        peer.stats.deaths += 1;
        peer.next_handshake = now;
        peer.attempts = 0;
        peer.last_hello_rx = None;
        peer.pmtu.forget_peer();
        peer.punched = false;
        peer.detector.reset_on_demand();
        self.touch(name);
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if reason == DownReason::Goodbye {
            // It forgot its sessions; don't keep sending on them.
            peer.send_index = None;
            peer.next_handshake = now + self.config.handshake_retry_max;
            let n = name.to_string();
            self.sessions.retain(|_, s| s.peer != n);
        }
        match reason {
            DownReason::Timeout => {
                tracing::warn!(peer = %name, "peer is down (silent past its detection deadline)")
            }
            DownReason::Goodbye => tracing::info!(peer = %name, "peer left"),
            DownReason::LocalShutdown => tracing::debug!(peer = %name, "leaving peer"),
            DownReason::Revoked => tracing::info!(peer = %name, "peer revoked"),
            DownReason::Disconnected => tracing::info!(peer = %name, "peer disconnected"),
        }
        // Relayed, and its relay lives and answered (it was checked first):
        // that relay may drop what it should pass on; not that one for a while.
        if reason == DownReason::Timeout {
            if let Some(relay) = self.relay_of(name).cloned() {
                if self.peers.get(relay.as_str()).is_some_and(|r| r.alive) {
                    tracing::info!(peer = %name, %relay, "died behind a live relay: trying others first");
                    if let Some(p) = self.peers.get_mut(name) {
                        p.shunned_relay = Some((relay, now + super::relay::SHUN_RELAY));
                    }
                }
            }
        }
        let endpoint = self.shown_endpoint(name);
        self.own.dirty = true;
        self.relay_died(now, name);
        self.events.push_back(Event::PeerDown {
            name: name.to_string(),
            endpoint,
            reason,
        });
        self.peer_subnets_down(now, name);
    }

    pub(super) fn send_hello(&mut self, now: Instant, name: &str, flags: u8) {
        let now_us = self.micros(now);
        let bounds = self.bounds();
        let fast = self.heartbeat_fast();
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let (_, rate_flags) = peer.detector.sending(fast, &bounds);
        let flags = flags | rate_flags;
        peer.detector.hello_sent(flags);
        peer.last_hello_tx = Some(now);
        let (echo_us, echo_delay_us) = match peer.last_hello_rx {
            Some((sent, at)) => (
                sent,
                now.saturating_duration_since(at)
                    .as_micros()
                    .min(u32::MAX as u128) as u32,
            ),
            None => (0, 0),
        };
        self.send_message(
            name,
            &Message::Hello(Hello {
                sent_us: now_us,
                echo_us,
                echo_delay_us,
                flags,
            }),
        );
    }
}
