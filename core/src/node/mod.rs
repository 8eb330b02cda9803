//! The per-node protocol state machine ([`Node`]): peers, handshakes,
//! liveness, membership gossip, and the glue to the switch and the VIP engine.
//!
//! [`Node`] never reads a clock, touches a socket or spawns anything; its
//! documentation lists the calls a driver makes and their order. The tokio
//! driver (the `meshd` crate) and the simulated network in the tests are its
//! only callers.

mod announce;
pub mod detector;
mod gossip;
mod handshake;
pub mod limits;
mod liveness;
mod membership;
mod observed;
mod path;
mod peer;
mod pieces;
mod pmtu;
mod relay;
mod revoke;
pub mod status;
mod strict;
mod subnet_status;
mod switching;
mod timers;
mod types;
mod vip;
mod vip_nd;
mod vip_owner;
mod vip_resteer;
pub mod vip_status;
// tinc's operator commands: disconnect, retry, purge.
mod operator;

pub use limits::{AtCap, Limit, LimitCounters, LogThrottle};
pub use peer::{KeySource, PathCheck, Peer, PeerStats, SignatureBudget};
pub use pieces::{PieceOutcome, Reassembly};
pub use pmtu::{PathMtu, FLOOR_DATAGRAM, FRAME_OVERHEAD};
pub use relay::{is_relay_addr, RelayBudget, RelayCounters};
pub use switching::TapStats;
pub use types::{
    DownReason, DropCounters, Event, HostPath, KnownHost, NodeConfig, QueueDepth, Transmit,
};

use crate::crypto::{
    self, HandshakeLimiter, InitiatorState, PacketType, Session, SessionPolicy, Signer,
};
use crate::keys::{PrivateKey, PublicKey};
use crate::name::NodeName;
use crate::wire::{Hello, Message};
use rand_core::{CryptoRng, RngCore};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One established or half-established session.
#[derive(Debug)]
struct SessionSlot {
    peer: NodeName,
    session: Session,
    confirmed: bool,
    /// When this slot stops being accepted (set once superseded or unconfirmed).
    retire_at: Option<Instant>,
}

/// A handshake we started and wait an answer for.
struct Pending {
    peer: NodeName,
    state: InitiatorState,
    /// When it started: it is given up `HANDSHAKE_TIMEOUT` later, resent or not.
    sent_at: Instant,
    /// When the init last went out (a collision resends it at most this often).
    last_sent: Instant,
    /// The HandshakeInit we sent, and where to (for a resend on collision).
    init: Vec<u8>,
    sent_to: Vec<SocketAddr>,
    /// Our init was sent again once to where the peer's colliding init came
    /// from (two NATs: the first copy may have arrived before the peer's NAT
    /// had a mapping towards us, and been dropped).
    collision_resent: bool,
}

/// How long a superseded session is still accepted for receiving.
const SESSION_GRACE: Duration = Duration::from_secs(10);
/// How long an unanswered handshake or an unconfirmed session lives.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most addresses one handshake attempt is sent to.
const MAX_CANDIDATES: usize = 8;
/// Most sessions kept per peer (current, previous, and in-flight ones).
const MAX_SESSIONS_PER_PEER: usize = 8;
/// Handshake inits per second (burst: one second's worth) that may reach
/// signature verification, all sources together. Each costs ~50-150 µs of
/// the one thread that also carries heartbeats: at 2000/s a flood of inits
/// with a known name and a wrong key took 30 % of a core and, on a loaded
/// 2-core machine, starved the loop until the kernel dropped peers'
/// heartbeats (scripts/bench-flood). 250/s still lets a node that restarts
/// in a 250-node mesh answer every peer within about a second.
const HANDSHAKES_PER_SEC: u32 = 250;
/// Handshake inits per second from one source address (or IPv6 /64).
const HANDSHAKES_PER_SOURCE_PER_SEC: u32 = 50;
/// A separate budget for inits that come from the address the named peer was
/// last seen at or that its host file gives: a flood of forged inits from
/// other addresses empties the budget above, and must not lock out a real
/// peer that restarts (or rekeys) from where it always was. Spoofing those
/// addresses exactly is needed to touch it.
const KNOWN_ENDPOINT_HANDSHAKES_PER_SEC: u32 = 100;
/// The same, per source address.
const KNOWN_ENDPOINT_HANDSHAKES_PER_SOURCE_PER_SEC: u32 = 20;

/// The protocol state machine of one node: everything meshd decides, with no
/// I/O.
///
/// A `Node` is fed inputs, each with the current time `now` (a monotonic
/// [`Instant`] the caller reads; the node never reads a clock), and queues
/// what it wants done; the caller drains those queues and carries them out.
/// Nothing happens between calls: timers fire only when the caller calls
/// [`Node::handle_timeout`] at (or after) [`Node::poll_timeout`].
///
/// # Methods by kind
///
/// **Construction and configuration**
/// - [`Node::new`]: the node's config, identity key, known hosts (from
///   `hosts/`), the start time and the wall clock (for record generations),
///   and a random source.
/// - [`Node::reload`]: new config and hosts (SIGHUP, `meshd reload`).
/// - [`Node::set_tap_mac`]: the TAP's MAC, once the device exists (holders
///   deliver steered frames to it).
///
/// **Inputs** (each may queue outputs)
/// - [`Node::handle_datagram`] / [`Node::handle_datagram_mut`]: a UDP datagram
///   from the underlay (the `_mut` form decrypts in place: one copy less).
/// - [`Node::handle_frame`]: an Ethernet frame read from the TAP.
/// - [`Node::handle_timeout`]: the time in [`Node::poll_timeout`] was reached.
/// - [`Node::set_vip_health`]: a health check's verdict on one of our VIPs.
///
/// **Outputs to poll** (drain each until `None` after every input)
/// - [`Node::poll_transmit`]: a datagram to send (liveness and gossip before
///   frames); hand its buffer back with [`Node::recycle`].
/// - [`Node::poll_frame`]: a frame to write to the TAP; same recycling.
/// - [`Node::poll_event`]: something to act on: scripts to run (`host-up`,
///   `vip-up`, ...), a learned host to store, a graceful stop that may proceed
///   ([`Event::ReadyToLeave`]).
/// - [`Node::poll_timeout`]: when to call [`Node::handle_timeout`] next.
/// - [`Node::queued`]: how much output waits (a driver reads less input while
///   the queues are long, so timers get their turn).
///
/// **Commands**
/// - [`Node::begin_leave`]: graceful stop, step one (withdraw our VIPs, wait
///   for acknowledgements); keep driving the node until
///   [`Event::ReadyToLeave`].
/// - [`Node::shutdown`]: graceful stop, step two (goodbyes, `down` events);
///   drain the outputs one last time, then drop the node.
/// - [`Node::send_frame`]: send a frame to a named peer over its session.
/// - [`Node::disconnect`], [`Node::retry`], [`Node::purge`]: tinc's operator commands.
///
/// **Getters** (for `dump`, `info`, metrics and tests; no side effects)
/// [`Node::name`], [`Node::config`], [`Node::public_key`], [`Node::peers`],
/// [`Node::is_alive`], [`Node::drops`], [`Node::limits`], [`Node::tap_stats`],
/// [`Node::switch`], [`Node::vip_engine`], and the `dump` rows
/// [`Node::node_statuses`], [`Node::edge_statuses`],
/// [`Node::connection_statuses`], [`Node::subnet_statuses`],
/// [`Node::vip_statuses`].
///
/// # The order a driver calls them in
///
/// ```text
/// node = Node::new(config, key, hosts, now, wall_ns, rng)
/// node.set_tap_mac(mac)
/// loop {
///     wait for the first of: a datagram, a TAP frame, poll_timeout(), a signal
///     now = clock()
///     handle_datagram(now, ..) | handle_frame(now, ..) | handle_timeout(now)
///         | set_vip_health(now, ..) | reload(..) | begin_leave(now)
///     while let Some(t) = poll_transmit() { send t; recycle(t.payload) }
///     while let Some(f) = poll_frame()    { write f to the TAP; recycle(f) }
///     while let Some(e) = poll_event()    { act on e; ReadyToLeave => break }
/// }
/// shutdown(now); drain poll_transmit / poll_event once more
/// ```
///
/// Calling `handle_timeout` early is harmless; calling it late only delays
/// what was due. Inputs may come in any order; outputs must be drained before
/// waiting again (a node whose transmits are not drained keeps them queued,
/// bounded by its limits, and refuses new frames).
pub struct Node {
    config: NodeConfig,
    identity: PrivateKey,
    rng: Box<dyn RngSend>,
    start: Instant,
    wall_ns_at_start: u64,
    peers: BTreeMap<NodeName, Peer>,
    sessions: HashMap<u32, SessionSlot>,
    pending: HashMap<u32, Pending>,
    limiter: HandshakeLimiter,
    /// Budget for inits from a peer's known address (see KNOWN_ENDPOINT_HANDSHAKES_PER_SEC).
    known_limiter: HandshakeLimiter,
    refusal_log: LogThrottle,
    transmits: VecDeque<Transmit>,
    /// Heartbeats, gossip and goodbyes: sent before any queued frame, so a
    /// saturated data path never delays the liveness protocol.
    urgent: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: DropCounters,
    limit_counters: LimitCounters,
    last_tick: Option<Instant>,
    /// When every peer last fell silent at once and got a grace (liveness).
    mass_silence_grace_at: Option<Instant>,
    next_gossip: Instant,
    /// Where the next round of anti-entropy digests starts among the live peers.
    digest_cursor: usize,
    own: gossip::OwnRecord,
    open_buf: Vec<u8>,
    /// Addresses that stand for relayed paths (relay.rs).
    relay_paths: relay::RelayPaths,
    /// What this node relayed and refused to.
    relay: RelayCounters,
    /// A datagram unwrapped from a relay is being handled (relay messages
    /// inside it are refused: no loops).
    in_relay: bool,
    /// Some relayed peer's relay is being checked (relay.rs): packets from
    /// relays then wake those peers.
    relay_checks: bool,
    shutting_down: bool,
    switch: crate::switch::Switch,
    tap_out: VecDeque<Vec<u8>>,
    /// Emptied packet and frame buffers handed back by the driver
    /// ([`Node::recycle`]), reused so the frame path does not allocate.
    spare: Vec<Vec<u8>>,
    tap_stats: TapStats,
    reply_buf: Vec<Vec<u8>>,
    next_switch_sweep: Instant,
    cap_logged_at: Option<Instant>,
    vip: crate::vip::VipEngine,
    tap_mac: Option<crate::switch::MacAddr>,
    /// Frames from peers for our VIPs whose owner's vanish is being confirmed.
    vip_held: std::collections::HashMap<std::net::IpAddr, Vec<(String, Vec<u8>)>>,
    leaving: Option<vip::Leaving>,
    /// Names with a host file at the last load (a name that loses it is revoked).
    host_files: BTreeSet<NodeName>,
    /// Revoked names: their records and handshakes are refused.
    revoked: BTreeSet<NodeName>,
    /// Gossip-learned nodes forgotten, with their last record's version.
    forgotten: membership::Forgotten,
    /// When each peer next needs the tick.
    timers: timers::TimerQueue,
    /// Peers whose next tick may have come forward since they were queued.
    touched: timers::Touched,
    /// The addresses peers' records give for each node.
    observed: observed::ObservedEndpoints,
}

impl Signer for PrivateKey {
    fn public_key(&self) -> [u8; 32] {
        *self.public().as_bytes()
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        PrivateKey::sign(self, msg)
    }
}

/// The random source the core uses (OS randomness in the driver, seeded in tests).
pub trait RngSend: RngCore + CryptoRng + Send {}
impl<T: RngCore + CryptoRng + Send> RngSend for T {}

impl Node {
    /// A node that knows the hosts given, starting at `now` with the wall
    /// clock at `wall_ns` (nanoseconds since the Unix epoch: the generation of
    /// our gossip record, so peers tell a restart from a stale copy).
    #[must_use]
    pub fn new(
        config: NodeConfig,
        identity: PrivateKey,
        hosts: Vec<KnownHost>,
        now: Instant,
        wall_ns: u64,
        rng: Box<dyn RngSend>,
    ) -> Node {
        let own = gossip::OwnRecord::new(wall_ns);
        let config_switch = config.switch.clone();
        let config_name = config.name.clone();
        let config_vip_settings = config.vip_settings.clone();
        let mut node = Node {
            limiter: HandshakeLimiter::new(HANDSHAKES_PER_SEC, HANDSHAKES_PER_SOURCE_PER_SEC, 4096),
            known_limiter: HandshakeLimiter::new(
                KNOWN_ENDPOINT_HANDSHAKES_PER_SEC,
                KNOWN_ENDPOINT_HANDSHAKES_PER_SOURCE_PER_SEC,
                4096,
            ),
            refusal_log: LogThrottle::default(),
            config,
            identity,
            rng,
            start: now,
            wall_ns_at_start: wall_ns,
            peers: BTreeMap::new(),
            sessions: HashMap::new(),
            pending: HashMap::new(),
            transmits: VecDeque::new(),
            urgent: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounters::default(),
            limit_counters: LimitCounters::default(),
            last_tick: None,
            mass_silence_grace_at: None,
            next_gossip: now,
            digest_cursor: 0,
            own,
            open_buf: Vec::with_capacity(2048),
            relay_paths: relay::RelayPaths::default(),
            relay: RelayCounters::default(),
            in_relay: false,
            relay_checks: false,
            shutting_down: false,
            switch: crate::switch::Switch::new(config_switch),
            tap_out: VecDeque::new(),
            spare: Vec::new(),
            tap_stats: TapStats::default(),
            reply_buf: Vec::new(),
            next_switch_sweep: now + switching::SWITCH_SWEEP,
            cap_logged_at: None,
            vip: crate::vip::VipEngine::new(&config_name, config_vip_settings),
            tap_mac: None,
            vip_held: std::collections::HashMap::new(),
            leaving: None,
            host_files: BTreeSet::new(),
            revoked: BTreeSet::new(),
            forgotten: membership::Forgotten::default(),
            timers: timers::TimerQueue::default(),
            touched: timers::Touched::default(),
            observed: observed::ObservedEndpoints::default(),
        };
        node.apply_hosts(hosts, now);
        node.apply_own_subnets(&[]);
        node.apply_own_vips(now);
        node.own.dirty = true;
        node
    }

    /// This node's name.
    pub fn name(&self) -> &NodeName {
        &self.config.name
    }

    /// The configuration in force.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Our public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// All peers, by name.
    pub fn peers(&self) -> &BTreeMap<NodeName, Peer> {
        &self.peers
    }

    /// Packets refused so far, by reason.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Names of the peers with a live direct session.
    fn alive_peer_names(&self) -> Vec<NodeName> {
        self.peers
            .values()
            .filter(|p| p.alive)
            .map(|p| p.name.clone())
            .collect()
    }

    /// True if `name` has a live direct session.
    pub fn is_alive(&self, name: &str) -> bool {
        self.peers.get(name).is_some_and(|p| p.alive)
    }

    /// Replaces the configuration and host list (SIGHUP / `meshd reload`).
    pub fn reload(&mut self, config: NodeConfig, hosts: Vec<KnownHost>, now: Instant) {
        let keep_name = self.config.name.clone();
        let old_subnets = std::mem::replace(&mut self.config, config).subnets;
        self.config.name = keep_name;
        self.switch.reconfigure(self.config.switch.clone());
        self.apply_hosts(hosts, now);
        // Host files (StrictSubnets' source of truth) may have changed.
        self.reapply_peer_extensions(now);
        self.apply_own_subnets(&old_subnets);
        self.vip.set_settings(self.config.vip_settings.clone());
        self.apply_own_vips(now);
        self.own.dirty = true;
        self.finish(now);
    }

    fn apply_hosts(&mut self, hosts: Vec<KnownHost>, now: Instant) {
        let host_files = hosts.iter().map(|h| h.name.clone()).collect();
        self.apply_revocations(now, host_files);
        // Keys, addresses and bounds may all have changed.
        self.touch_all();
        for peer in self.peers.values_mut() {
            peer.connect_to = false;
            peer.static_addresses.clear();
        }
        for host in hosts {
            if host.name == self.config.name {
                continue;
            }
            let peer = self
                .peers
                .entry(host.name.clone())
                .or_insert_with(|| Peer::new(&host.name, now));
            peer.host_subnets = host.subnets;
            peer.host_vips = host.vips;
            peer.host_path = host.path;
            // Named by the operator: never forgotten, counts against no introducer.
            peer.introduced_by = None;
            if let Some(key) = host.public_key {
                if peer.key.is_some_and(|k| k != key) {
                    tracing::warn!(peer = %host.name, "host file key changed; dropping its sessions");
                    let name = host.name.clone();
                    self.sessions.retain(|_, s| s.peer != name);
                    self.pending.retain(|_, p| p.peer != name);
                    let peer = self.peers.get_mut(&host.name).expect("inserted above");
                    peer.send_index = None;
                    peer.key = Some(key);
                    peer.key_source = KeySource::HostFile;
                    peer.static_addresses = host.addresses;
                    continue;
                }
                peer.key = Some(key);
                peer.key_source = KeySource::HostFile;
            }
            peer.static_addresses = host.addresses;
        }
        for name in self.config.connect_to.clone() {
            if name == self.config.name {
                continue;
            }
            let peer = self
                .peers
                .entry(name.clone())
                .or_insert_with(|| Peer::new(&name, now));
            peer.connect_to = true;
            if peer.key.is_none() {
                tracing::warn!(peer = %name, "ConnectTo names a node without a known Ed25519PublicKey");
            }
        }
    }

    fn micros(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_micros() as u64 + 1
    }

    // ----------------------------------------------------------------- input

    /// A UDP datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let mut buf = std::mem::take(&mut self.open_buf);
        buf.clear();
        buf.extend_from_slice(datagram);
        self.handle_datagram_mut(now, from, &mut buf);
        self.open_buf = buf;
    }

    /// A UDP datagram arrived from `from`, in a buffer the node may decrypt
    /// in place (its content is unspecified afterwards): the driver's path,
    /// one copy less than [`Node::handle_datagram`].
    pub fn handle_datagram_mut(&mut self, now: Instant, from: SocketAddr, datagram: &mut [u8]) {
        match crypto::packet_type(datagram) {
            Ok(PacketType::HandshakeInit) => self.on_handshake_init(now, from, datagram),
            Ok(PacketType::HandshakeResponse) => self.on_handshake_response(now, from, datagram),
            Ok(PacketType::Data) => self.on_data(now, from, datagram),
            Err(err) => {
                self.drops.malformed += 1;
                tracing::debug!(%from, %err, len = datagram.len(), "dropping malformed datagram");
            }
        }
        self.finish(now);
    }

    fn on_data(&mut self, now: Instant, from: SocketAddr, buf: &mut [u8]) {
        let Ok(index) = crypto::data_receiver_index(buf) else {
            self.drops.malformed += 1;
            return;
        };
        let Some(slot) = self.sessions.get_mut(&index) else {
            self.drops.unknown_session += 1;
            return;
        };
        let plain_range = match slot.session.open(buf, now) {
            Ok(plain) => crypto::DATA_HEADER_LEN..crypto::DATA_HEADER_LEN + plain.len(),
            Err(err) => {
                self.drops.bad_data += 1;
                tracing::debug!(peer = %slot.peer, %from, %err, "dropping data packet");
                return;
            }
        };
        let name = slot.peer.clone();
        let newly_confirmed = !slot.confirmed;
        slot.confirmed = true;
        if slot.retire_at.is_some() && !newly_confirmed {
            // The peer still sends on it: never drop a session in use.
            slot.retire_at = Some(now + SESSION_GRACE);
        }
        if newly_confirmed {
            self.promote(now, &name, index, from);
        } else {
            self.note_life(now, &name, from, buf.len(), false);
        }
        if let Some(peer) = self.peers.get_mut(&name) {
            peer.stats.rx_messages += 1;
        }
        match Message::parse(&buf[plain_range]) {
            Ok(msg) => self.on_message(now, &name, from, msg),
            Err(err) => {
                self.drops.bad_message += 1;
                tracing::debug!(peer = %name, %err, "undecodable message");
            }
        }
    }

    fn on_message(&mut self, now: Instant, from: &str, src: SocketAddr, msg: Message<'_>) {
        match msg {
            Message::Hello(hello) => {
                let reply = hello.flags & Hello::REPLY_REQUESTED != 0;
                let bounds = self.bounds();
                if let Some(peer) = self.peers.get_mut(from) {
                    peer.last_hello_rx = Some((hello.sent_us, now));
                    peer.detector.on_hello(now, hello.flags, &bounds);
                    if hello.echo_us != 0 {
                        let now_us =
                            now.saturating_duration_since(self.start).as_micros() as u64 + 1;
                        let rtt = now_us
                            .saturating_sub(hello.echo_us)
                            .saturating_sub(hello.echo_delay_us as u64);
                        let rtt = Duration::from_micros(rtt);
                        // The peer controls echo_us: an instant past now is no answer.
                        let echoed = self
                            .start
                            .checked_add(Duration::from_micros(hello.echo_us - 1))
                            .filter(|t| *t <= now);
                        if echoed > peer.last_echoed {
                            peer.last_echoed = echoed;
                        }
                        peer.stats.rtt = Some(rtt);
                        peer.detector.rtt_sample(rtt);
                        self.vip.set_rtt(from, peer.detector.srtt());
                    }
                }
                // Its probes and deadline moved later, its deadline may have
                // shrunk, its heartbeat rate changed.
                self.retime(from);
                if reply {
                    self.send_hello(now, from, 0);
                }
            }
            Message::Frame(frame) => self.on_frame(now, from, frame),
            Message::Gossip(records) => self.on_gossip(now, from, records),
            Message::Digest(digest) => self.on_digest(now, from, digest),
            Message::Goodbye => self.mark_dead(now, from, DownReason::Goodbye),
            Message::RecordAck {
                generation,
                version,
            } => self.on_record_ack(now, from, generation, version),
            Message::PathChallenge(token) => self.on_path_challenge(from, src, token),
            Message::PathResponse(token) => self.on_path_response(now, from, src, token),
            Message::MtuProbe { token, padding } => self.on_mtu_probe(from, token, padding),
            Message::MtuProbeAck { token, .. } => self.on_mtu_probe_ack(now, from, token),
            Message::FramePiece(piece) => self.on_frame_piece(now, from, &piece),
            Message::RelayTo { dst, src, packet } => {
                self.on_relay_to(now, from, &dst, &src, packet)
            }
            Message::RelayFrom { src, packet } => self.on_relay_from(now, from, &src, packet),
            Message::DirectTry => self.on_direct_try(now, from),
        }
    }

    // ---------------------------------------------------------------- output

    /// Seals `msg` for `name` on its send session and queues it for its
    /// endpoint. Returns false if there is none.
    fn send_message(&mut self, name: &str, msg: &Message<'_>) -> bool {
        let Some(t) = self.seal_for(name, msg) else {
            return false;
        };
        // A RecordAck is a barrier (PROTOCOL §7.3): it leaves behind
        // the frames queued before it, so a holder that stops once
        // acknowledged has received everything steered to it first.
        // Everything else but frames jumps the queue.
        if matches!(msg, Message::Frame(_) | Message::RecordAck { .. }) {
            self.transmits.push_back(t);
        } else {
            self.urgent.push_back(t);
        }
        true
    }

    /// `msg` sealed on `name`'s send session, addressed to its endpoint;
    /// `None` if it has no session or endpoint (or sealing failed: then a new
    /// handshake is forced).
    fn seal_for(&mut self, name: &str, msg: &Message<'_>) -> Option<Transmit> {
        let peer = self.peers.get_mut(name)?;
        let (Some(index), Some(destination)) = (peer.send_index, peer.endpoint) else {
            return None;
        };
        let Some(slot) = self.sessions.get_mut(&index) else {
            peer.send_index = None;
            return None;
        };
        let mut out = self.spare.pop().unwrap_or_default();
        match slot.session.seal_with(&mut out, |buf| msg.emit(buf)) {
            Ok(()) => {
                peer.stats.tx_messages += 1;
                Some(Transmit {
                    destination,
                    payload: out,
                })
            }
            Err(err) => {
                tracing::warn!(peer = %name, %err, "cannot seal; forcing a new handshake");
                peer.send_index = None;
                self.spare.push(out);
                None
            }
        }
    }

    /// Sends an Ethernet frame to `name`. Returns false if it has no live session.
    pub fn send_frame(&mut self, now: Instant, name: &str, frame: &[u8]) -> bool {
        if !self.is_alive(name) {
            return false;
        }
        if self.transmits.len() >= limits::MAX_SEND_QUEUE {
            self.limit_counters.send_queue_refused += 1;
            return false;
        }
        // A frame the path cannot carry whole goes in pieces (pieces.rs), to
        // a peer that joins them (r10; an older one gets it whole).
        let large = frame.len() + usize::from(FRAME_OVERHEAD) > usize::from(FLOOR_DATAGRAM);
        let (datagram, pieces, woke) = match self.peers.get_mut(name) {
            Some(p) => (
                p.pmtu.confirmed(),
                p.pmtu.takes_pieces(),
                large && p.pmtu.note_large_frame(now),
            ),
            None => (0, false, false),
        };
        if woke {
            self.touch(name);
        }
        let sent = if pieces && frame.len() + usize::from(FRAME_OVERHEAD) > usize::from(datagram) {
            self.send_frame_in_pieces(name, frame, datagram)
        } else {
            self.send_message(name, &Message::Frame(frame))
        };
        if sent {
            if let Some(peer) = self.peers.get_mut(name) {
                peer.stats.tx_packets += 1;
                peer.stats.tx_bytes += frame.len() as u64;
            }
        }
        sent
    }

    /// Graceful stop: tell every live peer we leave, and stop initiating.
    /// Events follow tinc's order for the scripts: `host-down` and the
    /// `subnet-down`s of every peer, then `subnet-down` for our own subnets.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let alive = self.alive_peer_names();
        for name in &alive {
            self.send_message(name, &Message::Goodbye);
        }
        for name in &alive {
            self.mark_dead(now, name, DownReason::LocalShutdown);
        }
        self.vip.stop_serving();
        self.drain_vip_events();
        let mut learned: Vec<crate::switch::MacAddr> = self
            .switch
            .macs()
            .entries()
            .filter(|(_, e)| !e.is_static && e.port == crate::switch::Port::Local)
            .map(|(m, _)| m)
            .collect();
        learned.sort();
        let own_subnets = self.config.subnets.clone();
        for s in learned
            .into_iter()
            .map(|m| crate::subnet::Subnet::mac(m.0))
            .chain(own_subnets)
        {
            self.events.push_back(Event::SubnetDown {
                owner: None,
                subnet: s,
                endpoint: None,
            });
        }
        self.finish(now);
    }

    /// Work common to the end of every input: publish our record if it changed.
    fn finish(&mut self, now: Instant) {
        if self.own.dirty && !self.shutting_down {
            self.publish_own_record(now);
        }
        self.requeue_touched();
    }

    /// Next datagram to send: liveness and membership messages first, then
    /// handshakes and frames in the order they were queued.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = self
                .urgent
                .pop_front()
                .or_else(|| self.transmits.pop_front())?;
            if !is_relay_addr(t.destination) {
                return Some(t);
            }
            // For a relayed path: sealed again for its relay (relay.rs).
            if let Some(wrapped) = self.wrap_for_relay(t) {
                return Some(wrapped);
            }
        }
    }

    /// Datagrams and TAP frames queued for the driver (it stops reading
    /// input while these are many, so timers get their turn).
    #[must_use]
    pub fn queued(&self) -> QueueDepth {
        QueueDepth {
            transmits: self.urgent.len() + self.transmits.len(),
            frames: self.tap_out.len(),
        }
    }

    /// Most spare buffers kept for reuse.
    const MAX_SPARE: usize = 1024;

    /// Hands back the buffer of a sent [`Transmit`] or a written frame
    /// ([`Node::poll_frame`]) for reuse: in a steady flow the frame path then
    /// allocates nothing.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < Self::MAX_SPARE && buf.capacity() <= 1 << 17 {
            buf.clear();
            self.spare.push(buf);
        } else {
            self.limit_counters.spare_released += 1;
        }
    }

    /// Next event for the driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = Some(self.next_gossip.min(self.next_switch_sweep));
        let paced_record = self.own.publish_at.filter(|_| self.own.dirty);
        for t in [self.leave_timeout(), self.vip.next_deadline(), paced_record]
            .into_iter()
            .flatten()
        {
            next = next.map(|n| n.min(t));
        }
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        };
        if let Some(t) = self.next_peer_due() {
            consider(t);
        }
        for slot in self.sessions.values() {
            if let Some(t) = slot.retire_at {
                consider(t);
            }
        }
        for p in self.pending.values() {
            consider(p.sent_at + HANDSHAKE_TIMEOUT);
        }
        next
    }
}
