//! What the core knows about one other node: its key, addresses, sessions,
//! liveness and counters.

use crate::crypto::TimestampGuard;
use crate::keys::PublicKey;
use crate::name::NodeName;
use crate::wire::NodeRecord;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a peer's public key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Pinned by the operator in `hosts/NAME`.
    HostFile,
    /// Learned from a node record flooded through the mesh (trust on first use).
    Gossip,
}

/// Traffic and health counters of one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// Ethernet frames received from this peer.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Ethernet frames sent to this peer.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Authenticated messages of any kind received (heartbeats, gossip, frames).
    pub rx_messages: u64,
    /// Messages of any kind sent.
    pub tx_messages: u64,
    /// Last round-trip time measured from heartbeats.
    pub rtt: Option<Duration>,
    /// Handshakes completed (initial and rekeys).
    pub handshakes: u64,
    /// Handshakes that failed verification.
    pub handshake_failures: u64,
    /// Times this peer went from alive to dead.
    pub deaths: u64,
}

/// A new address a peer's packets came from, not yet proven: the peer must
/// echo `token` from there before it becomes the endpoint (PROTOCOL §4.4).
#[derive(Debug, Clone)]
pub struct PathCheck {
    /// The address.
    pub addr: SocketAddr,
    /// The challenge's random token.
    pub token: u64,
    /// Bytes received from it so far.
    pub rx_bytes: u64,
    /// Bytes sent to it so far (at most 3 × `rx_bytes`).
    pub tx_bytes: u64,
    /// When the last challenge went out.
    pub last_challenge: Option<Instant>,
}

/// How many failed signature checks the records a peer relays may cost us:
/// a token bucket (10 a second, bursts of 20) spent only by records whose
/// signature does not verify, which an honest relay never forwards. Once it
/// is empty, that peer's records are dropped unchecked until it refills.
#[derive(Debug, Clone, Copy)]
pub struct SignatureBudget {
    tokens: f64,
    last: Option<Instant>,
}

impl SignatureBudget {
    /// Failed checks per second.
    pub const PER_SEC: f64 = 10.0;
    /// Most failed checks in a burst.
    pub const BURST: f64 = 20.0;

    /// Whether a check may run at `now`.
    pub fn available(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * Self::PER_SEC).min(Self::BURST);
        }
        self.last = Some(now);
        self.tokens >= 1.0
    }

    /// A check failed.
    pub fn spend(&mut self) {
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}

impl Default for SignatureBudget {
    fn default() -> Self {
        SignatureBudget {
            tokens: Self::BURST,
            last: None,
        }
    }
}

/// One other node of the mesh.
#[derive(Debug)]
pub struct Peer {
    /// The node's name.
    pub name: NodeName,
    /// Its Ed25519 key, if known.
    pub key: Option<PublicKey>,
    /// Where the key came from.
    pub key_source: KeySource,
    /// `Address` lines of `hosts/NAME`.
    pub static_addresses: Vec<SocketAddr>,
    /// Named by a `ConnectTo` line.
    pub connect_to: bool,
    /// Its latest signed record.
    pub record: Option<NodeRecord>,
    /// That record came from the node itself as our session came up and differs from the
    /// one before only in its neighbours: not flooded on nor offered in digest answers (the
    /// node floods that change at its own pace).
    pub record_unflooded: bool,
    /// Static subnets its record lists (`Subnet` lines of its own host file).
    pub subnets: Vec<crate::subnet::Subnet>,
    /// `Subnet` lines of its host file on our disk.
    pub host_subnets: Vec<crate::subnet::Subnet>,
    /// `VirtualIP` lines of its host file on our disk.
    pub host_vips: Vec<crate::vip::LocalVip>,
    /// Where we send to it: the address of its last handshake, or one it
    /// proved since by echoing a challenge.
    pub endpoint: Option<SocketAddr>,
    /// A new address its packets come from, being checked.
    pub path_check: Option<PathCheck>,
    /// When we last answered a digest of its (answers are rate-limited).
    pub last_digest_answer: Option<Instant>,
    /// Where the digest parts of its current round reached.
    pub digest_round_through: Option<NodeName>,
    /// Failed signature checks its gossip may still cost.
    pub signature_budget: SignatureBudget,
    /// The peer whose gossip first told us of this node (None: a host file
    /// or `ConnectTo` named it).
    pub introduced_by: Option<NodeName>,
    /// A session with it was live at least once.
    pub reached: bool,
    /// When a newer record of it last arrived (or it was created).
    pub record_refreshed: Instant,
    /// Local index of the session used to send to it.
    pub send_index: Option<u32>,
    /// Alive for steering: an authenticated packet arrived within DeadInterval.
    pub alive: bool,
    /// Alive, but `host-up` not yet announced: it waits (until this deadline at most)
    /// for the peer's record that lists this node, so that both directions of the
    /// new edge are known when the script runs (tinc sends ADD_EDGE before).
    pub up_pending: Option<Instant>,
    /// `purge` forgot it while it was down: `dump nodes` leaves it out (as tinc deletes the
    /// node) until it is alive again; its host file keeps it tried as usual.
    pub purged: bool,
    /// When the last authenticated packet arrived.
    pub last_rx: Option<Instant>,
    /// When we last sent it a heartbeat.
    pub last_hello_tx: Option<Instant>,
    /// When `alive` last changed.
    pub state_changed: Option<Instant>,
    /// When the next handshake attempt is due (while it has no live session).
    pub next_handshake: Instant,
    /// Consecutive handshake attempts without success (drives back-off).
    pub attempts: u32,
    /// Rejects replayed handshake initiations.
    pub timestamp_guard: TimestampGuard,
    /// `sent_us` of its last hello and when it arrived, echoed back for RTT.
    pub last_hello_rx: Option<(u64, Instant)>,
    /// When we sent the latest of our hellos that it echoed back: it answered
    /// everything we sent up to then (the on-demand detector's proof that we
    /// hear, and that paths did not slow down for everyone).
    pub last_echoed: Option<Instant>,
    /// Reply-requested probes sent since the last packet from it (0, 1 or 2).
    pub probes_sent: u8,
    /// The adaptive failure detector: RTT, heartbeat statistics, deadline,
    /// on-demand probing and suspicion.
    pub detector: super::detector::Detector,
    /// Counters.
    pub stats: PeerStats,
    /// The path MTU towards it (probed while it is alive).
    pub pmtu: super::pmtu::PathMtu,
    /// Its frames that arrive in pieces, being joined.
    pub reassembly: super::pieces::Reassembly,
    /// The number of our last frame to it sent in pieces.
    pub next_frame_id: u32,
    /// What it may still have us relay.
    pub relay_budget: super::relay::RelayBudget,
    /// While it is reached through a relay: when a direct handshake is next tried.
    pub next_direct_try: Option<Instant>,
    /// It went silent through its relay, also silent: when the relay check
    /// started (relay.rs). Cleared by any packet from it.
    pub relay_check: Option<Instant>,
    /// A relay that carried this peer into its death while answering itself,
    /// and until when it is passed over for this peer.
    pub shunned_relay: Option<(NodeName, Instant)>,
    /// What its host file on our disk says about reaching it.
    pub host_path: super::HostPath,
    /// Its direct path was found after it was reached through a relay
    /// (through NATs, or a firewall that opened).
    pub punched: bool,
    /// When a direct handshake to it was last tried while relayed.
    pub last_direct_try: Option<Instant>,
}

impl Peer {
    /// A peer known by name only.
    pub fn new(name: &NodeName, now: Instant) -> Peer {
        Peer {
            name: name.clone(),
            key: None,
            key_source: KeySource::HostFile,
            static_addresses: Vec::new(),
            connect_to: false,
            record: None,
            record_unflooded: false,
            subnets: Vec::new(),
            host_subnets: Vec::new(),
            host_vips: Vec::new(),
            endpoint: None,
            path_check: None,
            last_digest_answer: None,
            digest_round_through: None,
            signature_budget: SignatureBudget::default(),
            introduced_by: None,
            reached: false,
            record_refreshed: now,
            send_index: None,
            alive: false,
            up_pending: None,
            purged: false,
            last_rx: None,
            last_hello_tx: None,
            state_changed: None,
            next_handshake: now,
            attempts: 0,
            timestamp_guard: TimestampGuard::default(),
            last_hello_rx: None,
            last_echoed: None,
            probes_sent: 0,
            detector: super::detector::Detector::default(),
            stats: PeerStats::default(),
            pmtu: super::pmtu::PathMtu::default(),
            reassembly: super::pieces::Reassembly::default(),
            next_frame_id: 0,
            relay_budget: super::relay::RelayBudget::default(),
            next_direct_try: None,
            relay_check: None,
            shunned_relay: None,
            last_direct_try: None,
            punched: false,
            host_path: super::HostPath::default(),
        }
    }

    /// Addresses worth sending a handshake to, best first, without duplicates.
    pub fn candidate_addresses(&self, observed: &[SocketAddr], limit: usize) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        let record_addrs = self.record.iter().flat_map(|r| r.addresses.iter());
        let all = self
            .endpoint
            .iter()
            .chain(self.static_addresses.iter())
            .chain(record_addrs)
            .chain(observed.iter());
        for addr in all {
            if out.len() >= limit {
                break;
            }
            let relayed = super::relay::is_relay_addr(*addr);
            if !relayed && !out.contains(addr) && !addr.ip().is_unspecified() && addr.port() != 0 {
                out.push(*addr);
            }
        }
        out
    }

    /// When the next reply-requested probe is due, while alive: at 1/2 and 3/4 of
    /// its deadline `dead` after the last packet from it.
    pub fn next_probe(&self, dead: Duration) -> Option<Instant> {
        let last = self.last_rx?;
        match self.probes_sent {
            0 => Some(last + dead / 2),
            1 => Some(last + dead * 3 / 4),
            _ => None,
        }
    }

    /// The back-off before the next handshake attempt: 250 ms doubling up to `max`.
    pub fn retry_delay(&self, max: Duration) -> Duration {
        let shift = self.attempts.min(8);
        (Duration::from_millis(250) * (1u32 << shift)).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_deduplicated_and_bounded() {
        let now = crate::test_clock::start();
        let mut p = Peer::new(&NodeName::new("b").unwrap(), now);
        let a: SocketAddr = "192.0.2.2:655".parse().unwrap();
        let c: SocketAddr = "192.0.2.3:655".parse().unwrap();
        p.endpoint = Some(a);
        p.static_addresses = vec![a, c, "0.0.0.0:655".parse().unwrap()];
        assert_eq!(p.candidate_addresses(&[c, a], 8), vec![a, c]);
        assert_eq!(p.candidate_addresses(&[], 1), vec![a]);
    }

    #[test]
    fn retry_backs_off_to_a_cap() {
        let mut p = Peer::new(&NodeName::new("b").unwrap(), crate::test_clock::start());
        assert_eq!(
            p.retry_delay(Duration::from_secs(5)),
            Duration::from_millis(250)
        );
        p.attempts = 3;
        assert_eq!(
            p.retry_delay(Duration::from_secs(5)),
            Duration::from_secs(2)
        );
        p.attempts = 30;
        assert_eq!(
            p.retry_delay(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
