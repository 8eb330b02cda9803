//! Liveness: heartbeats, probes, the timer tick, stall detection, and
//! declaring peers up and down.

use super::*;

impl Node {
    /// An authenticated packet from `name` arrived from `from`.
    pub(super) fn note_life(&mut self, now: Instant, name: &str, from: SocketAddr) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        peer.last_rx = Some(now);
        peer.probes_sent = 0;
        if peer.endpoint != Some(from) {
            if peer.endpoint.is_some() {
                tracing::info!(peer = %name, %from, "peer moved to a new address");
            }
            peer.endpoint = Some(from);
            self.own.dirty = true;
        }
        if !peer.alive && peer.send_index.is_some() {
            peer.alive = true;
            peer.state_changed = Some(now);
            peer.attempts = 0;
            tracing::info!(peer = %name, %from, "peer is up");
            self.own.dirty = true;
            self.events.push_back(Event::PeerUp {
                name: name.to_string(),
                endpoint: from,
            });
            self.peer_subnets_up(now, name);
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
        self.vip.tick(now);
        self.drain_vip_events();
        let names: Vec<NodeName> = self.peers.keys().cloned().collect();
        for name in &names {
            self.tick_peer(now, name);
        }
        self.sessions
            .retain(|_, s| s.retire_at.is_none_or(|t| t > now) && !s.session.is_expired(now));
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent_at) >= HANDSHAKE_TIMEOUT)
            .map(|(i, _)| *i)
            .collect();
        for i in expired {
            self.pending.remove(&i);
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.config.gossip_interval;
            let alive = self.alive_peer_names();
            for name in alive {
                self.send_digest(now, &name);
            }
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
        let grace = now
            - self
                .config
                .dead_interval
                .saturating_sub(self.config.hello_interval);
        let mut extended = 0;
        for peer in self.peers.values_mut().filter(|p| p.alive) {
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
        let dead = self.config.dead_interval;
        let (mut live, mut due, mut quiet) = (0usize, 0usize, 0usize);
        for peer in self.peers.values().filter(|p| p.alive) {
            live += 1;
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
            .is_some_and(|t| now.saturating_duration_since(t) < dead * 2)
        {
            return;
        }
        self.mass_silence_grace_at = Some(now);
        // Three quarters of a DeadInterval more, probing again after a quarter
        // and a half of it.
        let grace = now.checked_sub(dead / 4).unwrap_or(now);
        for peer in self.peers.values_mut().filter(|p| p.alive) {
            peer.last_rx = Some(grace);
            peer.probes_sent = 0;
        }
        tracing::warn!(
            peers = live,
            "every peer silent at once: probing them before declaring them down"
        );
    }

    pub(super) fn tick_peer(&mut self, now: Instant, name: &NodeName) {
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        if peer.alive
            && peer
                .last_rx
                .is_some_and(|t| now.saturating_duration_since(t) >= self.config.dead_interval)
        {
            self.mark_dead(now, name, DownReason::Timeout);
        }
        let Some(peer) = self.peers.get(name) else {
            return;
        };
        if self.shutting_down {
            return;
        }
        let alive = peer.alive;
        let hello_due = peer
            .last_hello_tx
            .is_none_or(|t| now.saturating_duration_since(t) >= self.config.hello_interval);
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
        let probe_due = peer
            .next_probe(self.config.dead_interval)
            .is_some_and(|t| now >= t);
        if alive {
            if probe_due {
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

    pub(super) fn mark_dead(&mut self, now: Instant, name: &str, reason: DownReason) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if !peer.alive {
            return;
        }
        peer.alive = false;
        peer.state_changed = Some(now);
        peer.stats.deaths += 1;
        peer.next_handshake = now;
        peer.attempts = 0;
        peer.last_hello_rx = None;
        if reason == DownReason::Goodbye {
            // It forgot its sessions; don't keep sending on them.
            peer.send_index = None;
            peer.next_handshake = now + self.config.handshake_retry_max;
            let n = name.to_string();
            self.sessions.retain(|_, s| s.peer != n);
        }
        match reason {
            DownReason::Timeout => {
                tracing::warn!(peer = %name, "peer is down (silent for DeadInterval)")
            }
            DownReason::Goodbye => tracing::info!(peer = %name, "peer left"),
            DownReason::LocalShutdown => tracing::debug!(peer = %name, "leaving peer"),
        }
        let endpoint = self.peers.get(name).and_then(|p| p.endpoint);
        self.own.dirty = true;
        self.events.push_back(Event::PeerDown {
            name: name.to_string(),
            endpoint,
            reason,
        });
        self.peer_subnets_down(now, name);
    }

    pub(super) fn send_hello(&mut self, now: Instant, name: &str, flags: u8) {
        let now_us = self.micros(now);
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
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
