//! Sessions: answering and starting handshakes, installing the resulting
//! sessions, and choosing which one carries traffic to each peer.

use super::*;

/// Failed attempts after which the back-off gets up to 50 % random jitter.
const RETRY_JITTER_AFTER: u32 = 3;
/// A colliding attempt of ours older than this is sent again to the other side.
const COLLISION_RESEND_AFTER: Duration = Duration::from_millis(200);

impl Node {
    pub(super) fn session_policy(&self) -> SessionPolicy {
        let rekey = self.config.rekey_after_time;
        SessionPolicy {
            rekey_after_packets: self.config.rekey_after_packets,
            rekey_after_time: rekey,
            // Long enough for the rekey to happen even with a lossy handshake.
            reject_after_time: rekey + (rekey / 2).max(Duration::from_secs(60)),
            replay_window: u64::from(self.config.replay_window),
        }
    }

    /// Wall-clock nanoseconds at `now` (for handshake timestamps), strictly increasing.
    pub(super) fn wall_ns(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start).as_nanos() as u64;
        self.wall_ns_at_start.saturating_add(since)
    }

    pub(super) fn fresh_index(&mut self) -> u32 {
        loop {
            let idx = self.rng.next_u32();
            if idx != 0 && !self.sessions.contains_key(&idx) && !self.pending.contains_key(&idx) {
                return idx;
            }
        }
    }

    /// Whether a handshake packet from `from` may reach its signature check:
    /// from a peer's known address it spends the separate known budget
    /// (KNOWN_ENDPOINT_HANDSHAKES_PER_SEC), else the general one. Refusals are
    /// counted.
    fn handshake_budget_allows(&mut self, now: Instant, from: SocketAddr, known: bool) -> bool {
        let limiter = if known {
            &mut self.known_limiter
        } else {
            &mut self.limiter
        };
        let allowed = limiter.allow(from.ip(), now);
        if !allowed {
            self.drops.rate_limited += 1;
        }
        allowed
    }

    pub(super) fn on_handshake_init(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.shutting_down {
            return;
        }
        // Cheap checks first (a parse, two names): an init that can never be
        // accepted must not spend the rate limiter's tokens, which peers need.
        let plausible = match crypto::HandshakeInit::parse(datagram) {
            Ok(init) if init.responder_name != self.config.name => {
                Err(format!("addressed to {:?}, not to us", init.responder_name))
            }
            Ok(init) => match self.peers.get(&init.initiator_name) {
                Some(peer) if peer.key.is_some() => {
                    Ok(peer.endpoint == Some(from) || peer.static_addresses.contains(&from))
                }
                _ => Err(format!("from unknown peer {:?}", init.initiator_name)),
            },
            Err(err) => Err(err.to_string()),
        };
        let from_known_address = match plausible {
            Ok(known) => known,
            Err(why) => {
                self.drops.bad_handshake += 1;
                if let Some(suppressed) = self.refusal_log.allow(now) {
                    tracing::warn!(%from, suppressed, "refused handshake: {why}");
                }
                return;
            }
        };
        if !self.handshake_budget_allows(now, from, from_known_address) {
            return;
        }
        let peers = &self.peers;
        let lookup = |name: &str| peers.get(name).and_then(|p| p.key).map(|k| *k.as_bytes());
        let verified = match crypto::verify_init(&self.config.name, datagram, lookup) {
            Ok(v) => v,
            Err(err) => {
                self.drops.bad_handshake += 1;
                if let Some(suppressed) = self.refusal_log.allow(now) {
                    tracing::warn!(%from, %err, suppressed, "refused handshake");
                }
                return;
            }
        };
        let initiator = verified.initiator_name().clone();
        // Both sides initiated at once: the node with the smaller name keeps its
        // own attempt and ignores the other's, so both end on the same session.
        if self.config.name.as_str() < initiator.as_str() {
            if let Some(ours) = self.pending.values_mut().find(|p| p.peer == initiator) {
                // If our attempt went elsewhere or a while ago (to the node before
                // it restarted, say), it has not seen it: send it where this one
                // came from, or the peer would wait out our whole retry backoff.
                // The attempt still expires on its first schedule: if the peer
                // took our init and lost its answer, its replay guard refuses
                // the resends, and only a fresh attempt ends the stand-off.
                let stale = now.saturating_duration_since(ours.last_sent) >= COLLISION_RESEND_AFTER;
                // The first collision always resends: behind NATs, our first
                // copy may have reached the peer's NAT before the peer's own
                // init opened it towards us (simultaneous open).
                if stale || !ours.sent_to.contains(&from) || !ours.collision_resent {
                    ours.collision_resent = true;
                    ours.last_sent = now;
                    if !ours.sent_to.contains(&from) {
                        ours.sent_to.push(from);
                    }
                    let payload = ours.init.clone();
                    self.transmits.push_back(Transmit {
                        destination: from,
                        payload,
                    });
                }
                tracing::debug!(peer = %initiator, resent = stale, "handshake collision: keeping our own attempt");
                return;
            }
        }
        let Some(peer) = self.peers.get_mut(&initiator) else {
            self.drops.bad_handshake += 1;
            return;
        };
        if !peer.timestamp_guard.accept(verified.timestamp_ns()) {
            self.drops.bad_handshake += 1;
            peer.stats.handshake_failures += 1;
            tracing::warn!(peer = %peer.name, %from, "refused replayed handshake initiation");
            return;
        }
        let name = peer.name.clone();
        // Its newer attempt supersedes its older ones: it keeps only the newest.
        self.pending.retain(|_, p| p.peer != name);
        self.sessions.retain(|_, s| s.peer != name || s.confirmed);
        // Without our attempt in flight, our own rekey may be due sooner.
        self.touch(&name);
        let index = self.fresh_index();
        let (session, response) = match verified.respond(&self.identity, index, &mut self.rng, now)
        {
            Ok(ok) => ok,
            Err(err) => {
                self.drops.bad_handshake += 1;
                tracing::warn!(peer = %name, %from, %err, "refused handshake");
                return;
            }
        };
        let session = session.with_policy(self.session_policy());
        tracing::debug!(peer = %name, %from, "answered handshake");
        self.insert_session(now, name, index, session, false);
        self.transmits.push_back(Transmit {
            destination: from,
            payload: response,
        });
    }

    pub(super) fn on_handshake_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) {
        let Ok(response) = crypto::HandshakeResponse::parse(datagram) else {
            self.drops.malformed += 1;
            return;
        };
        let receiver = response.receiver_index;
        let policy = self.session_policy();
        let Some(pending) = self.pending.get_mut(&receiver) else {
            self.drops.bad_handshake += 1;
            return;
        };
        let index = pending.state.sender_index();
        let peer_name = pending.peer.clone();
        // Checking one costs a signature verification: forged responses (from
        // anyone who saw our init, say at an address a member's record lists)
        // spend the same budgets as inits.
        let from_known_address = self
            .peers
            .get(&peer_name)
            .is_some_and(|p| p.endpoint == Some(from) || p.static_addresses.contains(&from));
        if !self.handshake_budget_allows(now, from, from_known_address) {
            return;
        }
        let Some(pending) = self.pending.get_mut(&receiver) else {
            return;
        };
        // A forged response leaves the attempt intact for the genuine one.
        match pending.state.complete(datagram, now) {
            Ok(session) => {
                self.pending.remove(&receiver);
                let session = session.with_policy(policy);
                let name = peer_name;
                self.insert_session(now, name.clone(), index, session, true);
                self.promote(now, &name, index, from);
                // Key confirmation for the responder, and first sign of life.
                self.send_hello(now, &name, 0);
            }
            Err(err) => {
                self.drops.bad_handshake += 1;
                if let Some(p) = self.peers.get_mut(&peer_name) {
                    p.stats.handshake_failures += 1;
                }
                if let Some(suppressed) = self.refusal_log.allow(now) {
                    tracing::warn!(peer = %peer_name, %from, %err, suppressed, "refused handshake response");
                }
            }
        }
    }

    pub(super) fn insert_session(
        &mut self,
        now: Instant,
        peer: NodeName,
        index: u32,
        session: Session,
        confirmed: bool,
    ) {
        // Bound the sessions one peer can hold: drop its oldest non-sending ones.
        let send_index = self.peers.get(&peer).and_then(|p| p.send_index);
        let mut mine: Vec<(u32, Instant)> = self
            .sessions
            .iter()
            .filter(|(i, s)| s.peer == peer && Some(**i) != send_index)
            .map(|(i, s)| (*i, s.session.created()))
            .collect();
        if mine.len() + 2 > MAX_SESSIONS_PER_PEER {
            mine.sort_by_key(|(_, created)| *created);
            let excess = mine.len() + 2 - MAX_SESSIONS_PER_PEER;
            for (i, _) in mine.iter().take(excess) {
                if self.sessions.remove(i).is_some() {
                    self.limit_counters.sessions_evicted += 1;
                }
            }
        }
        let retire_at = if confirmed {
            None
        } else {
            Some(now + HANDSHAKE_TIMEOUT)
        };
        self.sessions.insert(
            index,
            SessionSlot {
                peer,
                session,
                confirmed,
                retire_at,
            },
        );
    }

    /// Makes session `index` the one used to send to `name`, and notes life.
    pub(super) fn promote(&mut self, now: Instant, name: &str, index: u32, from: SocketAddr) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if let Some(old) = peer.send_index.replace(index) {
            if old != index {
                if let Some(slot) = self.sessions.get_mut(&old) {
                    slot.retire_at = Some(now + SESSION_GRACE);
                }
            }
        }
        if let Some(slot) = self.sessions.get_mut(&index) {
            slot.retire_at = None;
        }
        peer.stats.handshakes += 1;
        peer.attempts = 0;
        // A new session: its rekey time is the peer's next due.
        self.touch(name);
        // A handshake just completed through `from` (signed, fresh and
        // rate-limited): the new session's address is taken as it is.
        self.note_life(now, name, from, 0, true);
    }

    /// Starts a handshake with `name` at its known addresses, and through a
    /// relay too once direct attempts failed or while it is relayed.
    pub(super) fn start_handshake(&mut self, now: Instant, name: &NodeName) {
        self.start_handshake_on(now, name, true);
    }

    /// Starts a handshake with `name` at its known addresses and through a
    /// relay other than `avoid` (a relay that went silent).
    pub(super) fn start_handshake_avoiding(
        &mut self,
        now: Instant,
        name: &NodeName,
        avoid: Option<&NodeName>,
    ) {
        let relay = self.relay_candidate(now, name, avoid);
        self.start_handshake_with(now, name, relay);
    }

    /// Starts a handshake with `name`; `relays`: a relayed path may be
    /// among the candidates (false: the periodic direct try of a relayed peer).
    pub(super) fn start_handshake_on(&mut self, now: Instant, name: &NodeName, relays: bool) {
        let relay = match self.peers.get(name) {
            Some(p)
                if relays
                    && (p.attempts >= super::relay::RELAY_AFTER_ATTEMPTS
                        || p.host_path.indirect
                        || self.relay_of(name).is_some()) =>
            {
                self.relay_candidate(now, name, None)
            }
            _ => None,
        };
        self.start_handshake_with(now, name, relay);
    }

    /// Starts a handshake with `name` at its known addresses, and at the
    /// relayed path `relay` if given.
    fn start_handshake_with(&mut self, now: Instant, name: &NodeName, relay: Option<SocketAddr>) {
        let observed = self.observed_endpoints(name);
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let Some(key) = peer.key else { return };
        let mut candidates = peer.candidate_addresses(&observed, MAX_CANDIDATES);
        if peer.host_path.indirect {
            // `IndirectData`/`TCPOnly`: only ever through a relay.
            candidates.clear();
        }
        if let Some(relay) = relay {
            candidates.truncate(MAX_CANDIDATES - 1);
            candidates.push(relay);
        }
        let mut delay = peer.retry_delay(self.config.handshake_retry_max);
        if peer.attempts >= RETRY_JITTER_AFTER {
            // After repeated failures, spread the attempts: peers that all died at
            // once (a stalled machine, a partition) are not retried in lockstep.
            let spread = (delay.as_micros() as u64 / 2).max(1);
            delay += Duration::from_micros(self.rng.next_u64() % spread);
        }
        peer.next_handshake = now + delay;
        let replaces_own = self.pending.values().any(|p| p.peer == *name);
        // A deferred attempt backs off as a failed one does: thousands of
        // unreachable peers waiting for a slot must not retry at 4 Hz each.
        peer.attempts = peer.attempts.saturating_add(1);
        if !replaces_own && self.pending.len() >= super::limits::MAX_HANDSHAKES_IN_FLIGHT {
            // Put off, not lost: the peer is tried again after its back-off.
            self.limit_counters.handshakes_deferred += 1;
            return;
        }
        if candidates.is_empty() {
            return;
        }
        let index = self.fresh_index();
        let timestamp = self.wall_ns(now);
        let (state, init) = match crypto::initiate(
            &self.identity,
            &self.config.name,
            name,
            *key.as_bytes(),
            index,
            timestamp,
            &mut self.rng,
        ) {
            Ok(ok) => ok,
            Err(err) => {
                tracing::warn!(peer = %name, %err, "cannot start a handshake");
                return;
            }
        };
        // Only the newest attempt per peer is kept.
        self.pending.retain(|_, p| p.peer != *name);
        self.pending.insert(
            index,
            Pending {
                peer: name.clone(),
                state,
                sent_at: now,
                last_sent: now,
                init: init.clone(),
                sent_to: candidates.clone(),
                collision_resent: false,
            },
        );
        for destination in candidates {
            self.transmits.push_back(Transmit {
                destination,
                payload: init.clone(),
            });
        }
    }
}
