//! Membership gossip: our own signed record, flooding of records, digests for
//! anti-entropy, and the key a node record introduces.

use super::{Event, KeySource, Node, Peer};
use crate::keys::PublicKey;
use crate::name::NodeName;
use crate::wire::extension::{
    decode_extension, encode_extension, without_neighbour_rtts, ExtensionItem, NeighbourRtt,
};
use crate::wire::{Digest, DigestEntry, Message, Neighbour, NodeRecord};
use rand_core::RngCore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Largest plaintext we pack gossip into (records bigger than this go alone).
const GOSSIP_BUDGET: usize = 1200;
/// Most reflexive addresses our own record carries.
const MAX_REFLEXIVE: usize = 4;
/// A peer's digests are answered at most once per this interval (one comes
/// every `GossipInterval`, 2 s, and one when a session comes up): a digest
/// that lacks entries costs the answerer every record it holds.
pub(super) const DIGEST_ANSWER_EVERY: Duration = Duration::from_millis(500);
/// Our record is signed again for a change of its neighbour list alone at
/// most this often (PROTOCOL §6.2).
pub(super) const NEIGHBOURS_REPUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Of the origin's neighbours (which had the record from the origin itself),
/// how many a relaying node still sends it to: copies against loss.
const REDUNDANT_FORWARDS: usize = 2;

/// Our own record and whether it needs republishing.
#[derive(Debug)]
pub(super) struct OwnRecord {
    pub generation: u64,
    pub version: u64,
    pub record: Option<NodeRecord>,
    pub dirty: bool,
    /// When the current version was signed.
    pub signed_at: Option<Instant>,
    /// Sign a new version even if nothing changed (the periodic refresh).
    pub refresh: bool,
    /// A change of the neighbour list alone waits until then (pacing).
    pub publish_at: Option<Instant>,
    /// The current version went to one new neighbour only; the others get it
    /// at the next publish even if nothing changed by then.
    pub flood_owed: bool,
    /// The current version's extension without its RTT item: what a change is
    /// judged by (RTTs move all the time; they ride along with other changes
    /// and the periodic refresh, never causing a version themselves).
    pub base_extension: Vec<u8>,
    /// The RTTs the current version gives.
    pub rtts: Vec<NeighbourRtt>,
    /// A session's RTT is missing from the current version: the next version
    /// is due at the neighbour-list pace.
    pub rtts_stale: bool,
}

impl OwnRecord {
    pub fn new(generation: u64) -> OwnRecord {
        OwnRecord {
            generation,
            version: 0,
            record: None,
            dirty: true,
            signed_at: None,
            refresh: false,
            publish_at: None,
            flood_owed: false,
            base_extension: Vec::new(),
            rtts: Vec::new(),
            rtts_stale: false,
        }
    }
}

impl Node {
    /// Every `record_ttl / 3`, a new version of our record even if nothing
    /// changed: nodes that cannot reach us keep it (they forget records not
    /// refreshed for `record_ttl`).
    pub(super) fn refresh_own_record(&mut self, now: Instant) {
        let every = self.config.record_ttl / 3;
        if self
            .own
            .signed_at
            .is_some_and(|t| now.saturating_duration_since(t) >= every)
        {
            self.own.refresh = true;
            self.own.dirty = true;
        }
        if self.own.record.is_some() && !self.own.rtts_stale && self.rtts_outdated() {
            self.own.rtts_stale = true;
            self.own.dirty = true;
        }
    }

    /// Whether a session's RTT is measured but missing from our record (it
    /// was signed as the session came up). A changed RTT waits for the next
    /// version: an idle mesh must not re-sign records as RTTs wander.
    fn rtts_outdated(&self) -> bool {
        let current = self.own_neighbours();
        self.neighbour_rtts(&current)
            .iter()
            .any(|now| !self.own.rtts.iter().any(|a| a.name == now.name))
    }

    /// Rebuilds, signs and floods our record.
    pub(super) fn publish_own_record(&mut self, now: Instant) {
        self.own.dirty = false;
        let extension = encode_extension(&self.own_extension_items());
        let only_neighbours = !self.own.refresh
            && self.own.base_extension == extension
            && self
                .own
                .record
                .as_ref()
                .is_some_and(|r| r.addresses == self.own_addresses());
        // Every session that comes up or goes changes the neighbour list, and
        // each version is flooded to the whole mesh: while a mesh forms that
        // was O(N^3) datagrams. Such changes go out at most once per
        // NEIGHBOURS_REPUBLISH_EVERY; addresses, VIPs and health at once.
        if only_neighbours {
            if let Some(at) = self
                .own
                .signed_at
                .map(|t| t + NEIGHBOURS_REPUBLISH_EVERY)
                .filter(|&at| now < at)
            {
                self.own.dirty = true;
                self.own.publish_at = Some(at);
                return;
            }
        }
        self.own.publish_at = None;
        let neighbours = self.own_neighbours();
        let unchanged =
            self.own.base_extension == extension
                && !self.own.rtts_stale
                && self.own.record.as_ref().is_some_and(|r| {
                    r.neighbours == neighbours && r.addresses == self.own_addresses()
                });
        let record = match &self.own.record {
            Some(record) if unchanged && !self.own.refresh => {
                if !self.own.flood_owed {
                    return;
                }
                record.clone()
            }
            _ => {
                self.own.refresh = false;
                self.sign_own_record(now, neighbours, extension)
            }
        };
        self.own.flood_owed = false;
        let alive = self.alive_peer_names();
        for name in alive {
            self.send_records(&name, std::slice::from_ref(&record));
        }
    }

    /// The addresses our record gives for us: the advertised ones, then
    /// the reflexive ones — where at least two peers' records say they see
    /// us (a NAT's public address and port) — at most
    /// [`MAX_REFLEXIVE`] of them. One peer cannot plant an address in our
    /// record.
    pub(super) fn own_addresses(&self) -> Vec<SocketAddr> {
        let mut out = self.config.advertised_addresses.clone();
        let reflexive = self.observed.confirmed(&self.config.name, 2);
        for addr in reflexive.into_iter().take(MAX_REFLEXIVE) {
            if !out.contains(&addr) && !super::relay::is_relay_addr(addr) {
                out.push(addr);
            }
        }
        out
    }

    /// Our live sessions, as our record lists them.
    fn own_neighbours(&self) -> Vec<Neighbour> {
        self.peers
            .values()
            .filter(|p| p.alive)
            // A relayed peer is no direct session: others must not relay through us to it.
            .filter(|p| p.endpoint.is_some_and(|e| !super::relay::is_relay_addr(e)))
            .filter_map(|p| {
                p.endpoint.map(|endpoint| Neighbour {
                    name: p.name.clone(),
                    endpoint,
                })
            })
            .collect()
    }

    /// The measured RTTs of the sessions `neighbours` lists, for our record.
    fn neighbour_rtts(&self, neighbours: &[Neighbour]) -> Vec<NeighbourRtt> {
        neighbours
            .iter()
            .filter_map(|n| {
                let srtt = self.peers.get(n.name.as_str())?.detector.srtt()?;
                Some(NeighbourRtt::new(n.name.clone(), srtt))
            })
            .collect()
    }

    /// Signs the next version of our record and keeps it as the current one.
    fn sign_own_record(
        &mut self,
        now: Instant,
        neighbours: Vec<Neighbour>,
        extension: Vec<u8>,
    ) -> NodeRecord {
        self.own.signed_at = Some(now);
        self.own.version += 1;
        let rtts = self.neighbour_rtts(&neighbours);
        self.own.base_extension = extension.clone();
        self.own.rtts = rtts.clone();
        self.own.rtts_stale = false;
        let mut extension = extension;
        // The RTT item last, and only while the items fit (a decoder refuses more).
        let items = decode_extension(&extension).map_or(0, |i| i.len());
        if !rtts.is_empty() && items < crate::wire::extension::MAX_ITEMS {
            extension.extend(encode_extension(&[ExtensionItem::NeighbourRtts(rtts)]));
        }
        let mut record = NodeRecord {
            name: self.config.name.clone(),
            public_key: *self.identity.public().as_bytes(),
            generation: self.own.generation,
            version: self.own.version,
            addresses: self.own_addresses(),
            neighbours,
            extension,
            signature: [0; 64],
        };
        record.signature = self.identity.sign(&record.signed_bytes());
        self.own.record = Some(record.clone());
        record
    }

    /// A session with `name` just went live: it gets our record listing it at
    /// once (its `host-up` waits for that, announce.rs). A change of the
    /// neighbour list alone is signed for it now but flooded to the others at
    /// the usual pace; any other change is flooded to all now.
    pub(super) fn send_own_record_to(&mut self, now: Instant, name: &str) {
        if self.shutting_down {
            return;
        }
        let extension = encode_extension(&self.own_extension_items());
        let neighbours = self.own_neighbours();
        let same_extension = self.own.base_extension == extension;
        let record = match &self.own.record {
            Some(r)
                if same_extension
                    && r.neighbours == neighbours
                    && r.addresses == self.own_addresses() =>
            {
                r.clone()
            }
            Some(r) if same_extension && r.addresses == self.own_addresses() => {
                let record = self.sign_own_record(now, neighbours, extension);
                self.own.flood_owed = true;
                self.own.dirty = true;
                self.own.publish_at = Some(now + NEIGHBOURS_REPUBLISH_EVERY);
                record
            }
            _ => {
                self.own.refresh = true;
                self.publish_own_record(now);
                return;
            }
        };
        self.send_records(name, std::slice::from_ref(&record));
    }

    /// Sends records to one peer, packed into messages of a sane size.
    pub(super) fn send_records(&mut self, name: &str, records: &[NodeRecord]) {
        let mut batch: Vec<NodeRecord> = Vec::new();
        let mut size = 0;
        for rec in records {
            let len = rec.encoded_len();
            if !batch.is_empty() && size + len > GOSSIP_BUDGET {
                let full = std::mem::take(&mut batch);
                self.send_message(name, &Message::Gossip(full));
                size = 0;
            }
            size += len;
            batch.push(rec.clone());
        }
        if !batch.is_empty() {
            self.send_message(name, &Message::Gossip(batch));
        }
    }

    /// Sends our digest (every record we hold, ours included) to one peer:
    /// one message if it fits in [`GOSSIP_BUDGET`], else parts that each
    /// cover a range of names (r5), so that no datagram outgrows UDP.
    pub(super) fn send_digest(&mut self, _now: Instant, name: &str) {
        let mut entries: Vec<DigestEntry> = self
            .peers
            .values()
            .filter_map(|p| p.record.as_ref())
            .chain(self.own.record.iter())
            .map(|r| DigestEntry {
                name: r.name.clone(),
                generation: r.generation,
                version: r.version,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let size = |e: &DigestEntry| 1 + e.name.as_str().len() + 16;
        if entries.iter().map(size).sum::<usize>() <= GOSSIP_BUDGET {
            self.send_message(
                name,
                &Message::Digest(Digest {
                    entries,
                    ..Digest::default()
                }),
            );
            return;
        }
        let mut after: Option<NodeName> = None;
        let mut part: Vec<DigestEntry> = Vec::new();
        let mut used = 0;
        let mut rest = entries.into_iter().peekable();
        while let Some(e) = rest.next() {
            used += size(&e);
            part.push(e);
            let full = rest.peek().is_some_and(|n| used + size(n) > GOSSIP_BUDGET);
            if full || rest.peek().is_none() {
                let through = match rest.peek() {
                    Some(_) => part.last().map(|e| e.name.clone()),
                    None => None,
                };
                let digest = Digest {
                    entries: std::mem::take(&mut part),
                    after: after.clone(),
                    through: through.clone(),
                };
                self.send_message(name, &Message::Digest(digest));
                after = through;
                used = 0;
            }
        }
    }

    /// A peer told us which records it has: send it every one we hold newer.
    pub(super) fn on_digest(&mut self, now: Instant, from: &str, digest: Digest) {
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        // The parts of one digest come together: a round starts with the part
        // that covers the first name, and only that start is rate-limited.
        let continues_round = digest.after.is_some()
            && peer
                .last_digest_answer
                .is_some_and(|t| now.saturating_duration_since(t) < DIGEST_ANSWER_EVERY)
            && peer.digest_round_through.as_ref() == digest.after.as_ref();
        if !continues_round {
            if peer
                .last_digest_answer
                .is_some_and(|t| now.saturating_duration_since(t) < DIGEST_ANSWER_EVERY)
                || digest.after.is_some()
            {
                self.drops.digest_rate_limited += 1;
                return;
            }
            peer.last_digest_answer = Some(now);
        }
        peer.digest_round_through = digest.through.clone();
        let theirs: HashMap<&str, (u64, u64)> = digest
            .entries
            .iter()
            .map(|e| (e.name.as_str(), (e.generation, e.version)))
            .collect();
        let mut newer: Vec<NodeRecord> = Vec::new();
        let own = self.own.record.iter();
        // A record its origin sent only us as our session came up is its origin's to flood.
        for rec in self
            .peers
            .values()
            .filter(|p| !p.record_unflooded)
            .filter_map(|p| p.record.as_ref())
            .chain(own)
            .filter(|r| digest.covers(&r.name))
        {
            let known = theirs.get(rec.name.as_str()).copied();
            if rec.name == from {
                // Its own record: only if ours is newer than what it runs now
                // (it restarted with a clock behind the one it had), so that it
                // moves its generation past it.
                if known.is_some_and(|(g, v)| rec.is_newer_than(g, v)) {
                    newer.push(rec.clone());
                }
                continue;
            }
            if known.is_none_or(|(g, v)| rec.is_newer_than(g, v)) {
                newer.push(rec.clone());
            }
        }
        // Our own record goes even if theirs is "newer": that happens only when we restarted
        // with a clock that went backwards, and they need to see the current one.
        if !newer.is_empty() {
            self.send_records(from, &newer);
        }
    }

    /// Records arrived from a peer: verify, store the newer ones, flood them on.
    pub(super) fn on_gossip(&mut self, now: Instant, from: &str, records: Vec<NodeRecord>) {
        let mut fresh: Vec<NodeRecord> = Vec::new();
        for rec in records {
            if self.revoked.contains(&rec.name) {
                // Expected while other nodes still trust it: counted, not logged.
                self.drops.revoked_record += 1;
                continue;
            }
            let direct = rec.name == from;
            let session_delta = direct && self.session_delta(from, &rec);
            match self.accept_record(now, from, &rec) {
                Ok(true) => {
                    if direct {
                        // Straight from its origin: acknowledge (a leaving node waits for this).
                        self.ack_record(from, rec.generation, rec.version);
                    }
                    if let Some(p) = self.peers.get_mut(&rec.name) {
                        p.record_unflooded = session_delta;
                    }
                    if !session_delta {
                        fresh.push(rec)
                    }
                }
                Ok(false) => {
                    if direct && self.holds_record(&rec) {
                        self.ack_record(from, rec.generation, rec.version);
                    }
                }
                Err(reason) => {
                    self.drops.bad_record += 1;
                    if let Some(suppressed) = self.refusal_log.allow(now) {
                        tracing::warn!(peer = %from, node = %rec.name, reason, suppressed, "refused node record");
                    }
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        let others: Vec<NodeName> = self
            .peers
            .values()
            .filter(|p| p.alive && p.name != from)
            .map(|p| p.name.clone())
            .collect();
        // The origin sent each record to the neighbours it lists: flood it on
        // to the others, and to a few of those only as a copy against loss
        // (a full mesh no longer costs N^2 datagrams per record).
        let mut copies: HashMap<&str, usize> = HashMap::new();
        let mut plan: Vec<(NodeName, Vec<usize>)> = Vec::new();
        let start = self.rng.next_u32() as usize;
        for (k, name) in others.iter().enumerate() {
            let mut forward = Vec::new();
            for (i, r) in fresh.iter().enumerate() {
                if r.name == *name {
                    continue;
                }
                let listed = r.neighbours.iter().any(|n| n.name == *name);
                if listed {
                    // Rotate where the copies go, so that they spread.
                    let c = copies.entry(r.name.as_str()).or_default();
                    if *c >= REDUNDANT_FORWARDS || (k + start) % 3 != 0 {
                        continue;
                    }
                    *c += 1;
                }
                forward.push(i);
            }
            if !forward.is_empty() {
                plan.push((name.clone(), forward));
            }
        }
        for (name, idx) in plan {
            let forward: Vec<NodeRecord> = idx.iter().map(|&i| fresh[i].clone()).collect();
            self.send_records(&name, &forward);
        }
    }

    /// True if `rec` is the record its origin `from` sent us as our session came up (its
    /// `host-up` still waits here): only its neighbour list differs from the one we hold, and
    /// its origin floods that to the mesh at its own pace, so it is not flooded on from here
    /// (forming a mesh would otherwise flood one version per session).
    fn session_delta(&self, from: &str, rec: &NodeRecord) -> bool {
        self.peers.get(from).is_some_and(|p| {
            p.up_pending.is_some()
                && p.record.as_ref().is_some_and(|old| {
                    old.generation == rec.generation
                        && old.addresses == rec.addresses
                        && without_neighbour_rtts(&old.extension)
                            == without_neighbour_rtts(&rec.extension)
                })
        })
    }

    /// Checks one record; Ok(true) if it is new and was stored.
    fn accept_record(
        &mut self,
        now: Instant,
        from: &str,
        rec: &NodeRecord,
    ) -> Result<bool, &'static str> {
        if rec.name == self.config.name {
            if rec.public_key != *self.identity.public().as_bytes() {
                return Err("a record claims our own name with another key");
            }
            // Our own record from a previous life that peers still prefer (same
            // generation, or a later one: our clock was ahead then): jump past
            // it so ours wins again. Signed by us, so nobody else can push our
            // generation forward.
            if rec.is_newer_than(self.own.generation, self.own.version)
                || (rec.generation == self.own.generation && rec.version >= self.own.version)
            {
                let key = PublicKey::from_bytes(rec.public_key);
                if !key.verify(&rec.signed_bytes(), &rec.signature) {
                    return Err("bad signature");
                }
                if rec.generation > self.own.generation {
                    tracing::warn!(
                        ahead_s = (rec.generation - self.own.generation) / 1_000_000_000,
                        "peers hold a record of ours from a later generation (the clock was \
                         ahead at an earlier start): moving our generation past it"
                    );
                    self.own.generation = rec.generation;
                }
                self.own.version = rec.version;
                self.own.record = None;
                self.own.dirty = true;
            }
            return Ok(false);
        }
        if let Some(peer) = self.peers.get(&rec.name) {
            if let Some(old) = &peer.record {
                if !rec.is_newer_than(old.generation, old.version) {
                    return Ok(false);
                }
            }
            if peer.key.is_some_and(|k| *k.as_bytes() != rec.public_key) {
                return Err("its key differs from the one we hold for that node");
            }
        } else if self.forgotten.is_stale(rec) {
            // Forgotten, and this is no newer: a peer's stale copy.
            return Ok(false);
        } else if self.peers.len() >= self.config.max_peers {
            self.limit_counters.peers_refused += 1;
            return Err("peer table full");
        } else if !self.may_introduce(from) {
            return Err("its introducer already introduced too many nodes we never reached");
        }
        if !self
            .peers
            .get_mut(from)
            .is_some_and(|p| p.signature_budget.available(now))
        {
            self.drops.gossip_budget += 1;
            return Err("its relay sent too many records with bad signatures; dropped unchecked");
        }
        let key = PublicKey::from_bytes(rec.public_key);
        if !key.verify(&rec.signed_bytes(), &rec.signature) {
            if let Some(p) = self.peers.get_mut(from) {
                p.signature_budget.spend();
            }
            return Err("bad signature");
        }
        let is_new_peer = !self.peers.contains_key(&rec.name);
        if is_new_peer {
            self.forgotten.remove(&rec.name);
        }
        let peer = self.peers.entry(rec.name.clone()).or_insert_with(|| {
            let mut p = Peer::new(&rec.name, now);
            p.introduced_by = NodeName::new(from).ok();
            p
        });
        peer.record_refreshed = now;
        if peer.key.is_none() {
            peer.key = Some(key);
            peer.key_source = KeySource::Gossip;
            tracing::info!(node = %rec.name, key = %key, "learned a node from gossip");
            self.events.push_back(Event::HostLearned {
                name: rec.name.clone(),
                public_key: key,
            });
        }
        let restarted = peer
            .record
            .as_ref()
            .is_some_and(|old| old.generation != rec.generation);
        let extension_changed = peer.record.as_ref().is_none_or(|old| {
            without_neighbour_rtts(&old.extension) != without_neighbour_rtts(&rec.extension)
        });
        let old = peer.record.replace(rec.clone());
        let sees_us = |r: &NodeRecord| {
            r.neighbours
                .iter()
                .find(|n| n.name == self.config.name)
                .map(|n| n.endpoint)
        };
        // Where it sees us changed: our reflexive addresses may have too.
        let reflexive_news = old.as_ref().and_then(sees_us) != sees_us(rec);
        self.observed.replace(&rec.name, old.as_ref(), Some(rec));
        if !peer.alive && (is_new_peer || restarted) {
            // A node we can't reach yet, or one that came back: try it now.
            peer.next_handshake = now;
            peer.attempts = 0;
        }
        if reflexive_news {
            let published = self.own.record.as_ref().map(|r| r.addresses.clone());
            if published.is_some_and(|a| a != self.own_addresses()) {
                self.own.dirty = true;
            }
        }
        if extension_changed {
            self.apply_peer_extension(now, &rec.name, &rec.extension);
        }
        // A new key, a handshake now, a VIP (a steering relation): all bring
        // its timer forward.
        self.touch(&rec.name);
        self.announce_up_if_ready(&rec.name);
        Ok(true)
    }

    /// True if the record we hold for `rec`'s origin is the same as `rec`.
    fn holds_record(&self, rec: &NodeRecord) -> bool {
        self.peers
            .get(&rec.name)
            .and_then(|p| p.record.as_ref())
            .is_some_and(|r| {
                r.generation == rec.generation
                    && r.version == rec.version
                    && r.signature == rec.signature
            })
    }

    /// Addresses at which other nodes' records say they reach `name`.
    pub(super) fn observed_endpoints(&self, name: &str) -> Vec<SocketAddr> {
        self.observed.of(name)
    }
}
