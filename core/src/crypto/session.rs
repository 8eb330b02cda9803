//! Established sessions: ChaCha20-Poly1305 data packets, send counters,
//! receive anti-replay, key confirmation and rekey/expiry signalling.

use std::time::{Duration, Instant};

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use thiserror::Error;

use super::replay::{ReplayWindow, DEFAULT_REPLAY_WINDOW};
use super::{expect_type, DatagramError, PacketType, PROTOCOL_VERSION};

/// Data header: version, type, receiver index (u32), counter (u64).
pub const DATA_HEADER_LEN: usize = 14;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a data packet adds to its plaintext.
pub const DATA_OVERHEAD: usize = DATA_HEADER_LEN + TAG_LEN;
/// A session never seals, and never accepts, a counter at or above this.
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
/// A rekey is asked for at least this many packets before
/// [`REJECT_AFTER_MESSAGES`], whatever `rekey_after_packets` says, so a
/// session never runs out of counters without having asked for its successor.
const REKEY_MARGIN_PACKETS: u64 = 1 << 32;

/// Rekey and expiry thresholds of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// [`Session::needs_rekey`] once this many packets were sealed.
    pub rekey_after_packets: u64,
    /// [`Session::needs_rekey`] once the session is this old.
    pub rekey_after_time: Duration,
    /// [`Session::is_expired`] (and `open` refuses) once the session is this old.
    pub reject_after_time: Duration,
    /// Anti-replay window in packets.
    pub replay_window: u64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            rekey_after_packets: 1 << 60,
            rekey_after_time: Duration::from_secs(120),
            reject_after_time: Duration::from_secs(180),
            replay_window: DEFAULT_REPLAY_WINDOW,
        }
    }
}

/// Errors sealing or opening data packets. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// Malformed datagram.
    #[error("malformed data packet: {0}")]
    Datagram(#[from] DatagramError),
    /// The datagram is addressed to another session.
    #[error("data packet for receiver index {got:#010x}, this session is {expected:#010x}")]
    WrongReceiver {
        /// This session's local index.
        expected: u32,
        /// Index in the datagram.
        got: u32,
    },
    /// Tag verification failed (forged, corrupted or wrong key).
    #[error("data packet authentication failed (receiver {receiver:#010x}, counter {counter})")]
    Decrypt {
        /// Receiver index of the packet.
        receiver: u32,
        /// Counter claimed by the packet.
        counter: u64,
    },
    /// Authentic, but the counter was already seen or is older than the window.
    #[error("replayed or too old data packet (receiver {receiver:#010x}, counter {counter})")]
    Replay {
        /// Receiver index of the packet.
        receiver: u32,
        /// Counter of the packet.
        counter: u64,
    },
    /// The counter is at or beyond [`REJECT_AFTER_MESSAGES`].
    #[error("counter {0} beyond the per-session limit; rekey required")]
    CounterExhausted(u64),
    /// The session is older than `reject_after_time`.
    #[error("session {0:#010x} expired; rekey required")]
    Expired(u32),
    /// Plaintext longer than the AEAD can process (about 256 GiB).
    #[error("plaintext of {0} bytes too large to seal")]
    TooLarge(usize),
    /// A responder session may not send before key confirmation.
    #[error(
        "session {0:#010x} not confirmed yet: responder must first receive data from the initiator"
    )]
    NotConfirmed(u32),
}

/// Reads the receiver index of a data packet so the caller can find the session.
pub fn data_receiver_index(datagram: &[u8]) -> Result<u32, DatagramError> {
    check_data_len(datagram)?;
    Ok(read_u32(datagram, 2))
}

fn check_data_len(datagram: &[u8]) -> Result<(), DatagramError> {
    expect_type(datagram, PacketType::Data)?;
    if datagram.len() < DATA_OVERHEAD {
        return Err(DatagramError::Truncated {
            what: "data packet",
            got: datagram.len(),
            need: DATA_OVERHEAD,
        });
    }
    Ok(())
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// A ChaCha20-Poly1305 (RFC 8439) key for data packets.
///
/// `ring`'s implementation, not the `chacha20poly1305` crate's (which the
/// join exchange uses, [`crate::join`]): same construction and bytes on the wire, but its assembly
/// (AVX2 and others, chosen at run time) seals a 1420-byte packet about six
/// times faster on x86-64 than that crate's portable build (see
/// `benches/crypto.rs` and the README's "Data path" section).
fn data_key(key: &[u8; 32]) -> LessSafeKey {
    match UnboundKey::new(&CHACHA20_POLY1305, key) {
        Ok(k) => LessSafeKey::new(k),
        // A 32-byte key is always accepted; no peer data reaches this.
        Err(_) => unreachable!("ChaCha20-Poly1305 takes 32-byte keys"),
    }
}

/// One direction-pair of transport keys between two nodes, created by a
/// completed handshake.
///
/// Sending: [`seal`](Self::seal) with counters 0, 1, 2, … (never reused).
/// Receiving: [`open`](Self::open) verifies the tag first, then the replay
/// window, then marks the counter.
///
/// Key confirmation: a responder session starts unconfirmed and refuses to
/// [`seal`](Self::seal) until a data packet from the initiator opened
/// successfully (proving the initiator holds the keys of *this* handshake, not
/// a replayed init). Initiator sessions are confirmed from the start. The
/// initiator should therefore send first (a keepalive with an empty payload
/// is fine).
///
/// Rekey: see [`needs_rekey`](Self::needs_rekey). Only the session's initiator
/// should start a time-based rekey so both sides do not handshake at once.
pub struct Session {
    local_index: u32,
    remote_index: u32,
    initiator: bool,
    confirmed: bool,
    send: LessSafeKey,
    recv: LessSafeKey,
    send_counter: u64,
    received: u64,
    replay: ReplayWindow,
    created: Instant,
    last_received: Option<Instant>,
    policy: SessionPolicy,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_index", &format_args!("{:#010x}", self.local_index))
            .field("remote_index", &format_args!("{:#010x}", self.remote_index))
            .field("initiator", &self.initiator)
            .field("confirmed", &self.confirmed)
            .field("packets_sent", &self.send_counter)
            .field("packets_received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds a session from derived keys (used by the handshake).
    pub(crate) fn new(
        local_index: u32,
        remote_index: u32,
        initiator: bool,
        send_key: &[u8; 32],
        recv_key: &[u8; 32],
        now: Instant,
    ) -> Self {
        let policy = SessionPolicy::default();
        Self {
            local_index,
            remote_index,
            initiator,
            confirmed: initiator,
            send: data_key(send_key),
            recv: data_key(recv_key),
            send_counter: 0,
            received: 0,
            replay: ReplayWindow::new(policy.replay_window),
            created: now,
            last_received: None,
            policy,
        }
    }

    /// Replaces the rekey/expiry policy. The replay window size only changes
    /// while nothing has been received yet.
    pub fn with_policy(mut self, policy: SessionPolicy) -> Self {
        if self.replay.max_seen().is_none() {
            self.replay = ReplayWindow::new(policy.replay_window);
        }
        self.policy = policy;
        self
    }

    /// Current policy.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }
    /// Index the peer puts in packets addressed to us.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }
    /// Index we put in packets addressed to the peer.
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }
    /// Whether we initiated the handshake that created this session.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }
    /// Whether this session may send (always true for the initiator; true for
    /// the responder after the first authenticated packet from the initiator).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }
    /// When the handshake completed.
    pub fn created(&self) -> Instant {
        self.created
    }
    /// Packets sealed so far (= next send counter).
    pub fn packets_sent(&self) -> u64 {
        self.send_counter
    }
    /// Packets opened successfully so far.
    pub fn packets_received(&self) -> u64 {
        self.received
    }
    /// When the last packet opened successfully.
    pub fn last_received(&self) -> Option<Instant> {
        self.last_received
    }

    /// True once `packets_sent >= rekey_after_packets` or the session is at
    /// least `rekey_after_time` old. Reported for both roles; the caller
    /// should start a handshake on the *time* condition only if
    /// [`is_initiator`](Self::is_initiator) (see [`should_initiate_rekey`](Self::should_initiate_rekey)).
    pub fn needs_rekey(&self, now: Instant) -> bool {
        self.send_counter >= self.rekey_packet_threshold()
            || now.saturating_duration_since(self.created) >= self.policy.rekey_after_time
    }

    /// The role-aware rule: the packet threshold applies to both sides, the
    /// time threshold only to the session's initiator.
    pub fn should_initiate_rekey(&self, now: Instant) -> bool {
        self.send_counter >= self.rekey_packet_threshold()
            || (self.initiator
                && now.saturating_duration_since(self.created) >= self.policy.rekey_after_time)
    }

    /// Packets sealed after which a rekey is due: `rekey_after_packets`, but
    /// never closer than [`REKEY_MARGIN_PACKETS`] to the counter limit.
    fn rekey_packet_threshold(&self) -> u64 {
        self.policy
            .rekey_after_packets
            .min(REJECT_AFTER_MESSAGES - REKEY_MARGIN_PACKETS)
    }

    /// True once the session must not be used any more (too old, or send
    /// counter exhausted). `open` enforces the age; `seal` the counter.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.send_counter >= REJECT_AFTER_MESSAGES
            || now.saturating_duration_since(self.created) >= self.policy.reject_after_time
    }

    /// Encrypts `plaintext` into a complete data datagram written to `out`
    /// (cleared first; reuse the buffer to avoid per-packet allocation).
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.seal_with(out, |buf| buf.extend_from_slice(plaintext))
    }

    /// Like [`seal`](Self::seal), with the plaintext written by `emit`
    /// straight into `out` after the header (one copy less than building it
    /// elsewhere first). `emit` must only append.
    pub fn seal_with(
        &mut self,
        out: &mut Vec<u8>,
        emit: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), CryptoError> {
        if !self.confirmed {
            return Err(CryptoError::NotConfirmed(self.local_index));
        }
        let counter = self.send_counter;
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(CryptoError::CounterExhausted(counter));
        }
        out.clear();
        out.push(PROTOCOL_VERSION);
        out.push(PacketType::Data as u8);
        out.extend_from_slice(&self.remote_index.to_be_bytes());
        out.extend_from_slice(&counter.to_be_bytes());
        emit(out);
        let len = out.len() - DATA_HEADER_LEN;
        let (header, body) = out.split_at_mut(DATA_HEADER_LEN);
        let tag = self
            .send
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&*header), body)
            .map_err(|_| CryptoError::TooLarge(len))?;
        out.extend_from_slice(tag.as_ref());
        self.send_counter = counter + 1;
        Ok(())
    }

    /// Authenticates and decrypts a data datagram in place, returning the
    /// plaintext as a sub-slice of `datagram`.
    ///
    /// Order: framing and receiver index, counter limit, session age, tag
    /// verification, replay window check, then the counter is marked. On any
    /// error no state changes; on tag failure the ciphertext part of the
    /// buffer is zeroed (decryption and authentication are one pass), the
    /// header and tag are untouched, and no plaintext is ever returned.
    pub fn open<'a>(
        &mut self,
        datagram: &'a mut [u8],
        now: Instant,
    ) -> Result<&'a [u8], CryptoError> {
        check_data_len(datagram)?;
        let receiver = read_u32(datagram, 2);
        if receiver != self.local_index {
            return Err(CryptoError::WrongReceiver {
                expected: self.local_index,
                got: receiver,
            });
        }
        let counter = read_u64(datagram, 6);
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(CryptoError::CounterExhausted(counter));
        }
        if now.saturating_duration_since(self.created) >= self.policy.reject_after_time {
            return Err(CryptoError::Expired(self.local_index));
        }
        let (header, rest) = datagram.split_at_mut(DATA_HEADER_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let tag = Tag::try_from(&*tag).map_err(|_| CryptoError::Decrypt { receiver, counter })?;
        self.recv
            .open_in_place_separate_tag(nonce(counter), Aad::from(&*header), tag, body, 0..)
            .map_err(|_| CryptoError::Decrypt { receiver, counter })?;
        if !self.replay.check(counter) {
            // Authentic but replayed: the plaintext was already delivered once.
            return Err(CryptoError::Replay { receiver, counter });
        }
        self.replay.mark(counter);
        self.received += 1;
        self.last_received = Some(now);
        self.confirmed = true;
        Ok(body)
    }
}

#[cfg(test)]
#[path = "rekey_proptests.rs"]
mod rekey_proptests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A connected (initiator, responder) pair with fixed keys.
    pub(crate) fn pair(now: Instant) -> (Session, Session) {
        let k1 = [0x11u8; 32];
        let k2 = [0x22u8; 32];
        let i = Session::new(0xAAAA_0001, 0xBBBB_0002, true, &k1, &k2, now);
        let r = Session::new(0xBBBB_0002, 0xAAAA_0001, false, &k2, &k1, now);
        (i, r)
    }

    fn seal(s: &mut Session, pt: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        s.seal(pt, &mut out).unwrap();
        out
    }

    #[test]
    fn roundtrip_and_layout() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let mut pkt = seal(&mut i, b"hello");
        assert_eq!(pkt.len(), DATA_OVERHEAD + 5);
        assert_eq!(&pkt[..6], &[1, 3, 0xBB, 0xBB, 0x00, 0x02]);
        assert_eq!(&pkt[6..14], &0u64.to_be_bytes());
        assert_eq!(data_receiver_index(&pkt), Ok(0xBBBB_0002));
        assert_eq!(r.open(&mut pkt, t).unwrap(), b"hello");
        let pkt2 = seal(&mut i, b"");
        assert_eq!(&pkt2[6..14], &1u64.to_be_bytes());
        assert_eq!(i.packets_sent(), 2);
        assert_eq!(r.packets_received(), 1);
    }

    /// The data path's AEAD (ring) and the RustCrypto crate (the join
    /// exchange's) produce the same RFC 8439 bytes, both ways.
    #[test]
    fn wire_identical_to_rustcrypto_chacha20poly1305() {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce as RcNonce, Tag as RcTag};
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        i.send_counter = 0x0102_0304_0506;
        let plain: Vec<u8> = (0..1500u32).map(|n| n as u8).collect();
        let pkt = seal(&mut i, &plain);
        let rc = ChaCha20Poly1305::new(Key::from_slice(&[0x11u8; 32]));
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&0x0102_0304_0506u64.to_le_bytes());
        let mut body = plain.clone();
        let tag = rc
            .encrypt_in_place_detached(
                RcNonce::from_slice(&nonce),
                &pkt[..DATA_HEADER_LEN],
                &mut body,
            )
            .unwrap();
        assert_eq!(&pkt[DATA_HEADER_LEN..pkt.len() - TAG_LEN], &body[..]);
        assert_eq!(&pkt[pkt.len() - TAG_LEN..], tag.as_slice());
        // And a RustCrypto-sealed packet opens here.
        let mut other = pkt[..DATA_HEADER_LEN].to_vec();
        other[6..14].copy_from_slice(&7u64.to_be_bytes());
        nonce[4..].copy_from_slice(&7u64.to_le_bytes());
        let mut body = b"frame bytes".to_vec();
        let tag: RcTag = rc
            .encrypt_in_place_detached(RcNonce::from_slice(&nonce), &other, &mut body)
            .unwrap();
        other.extend_from_slice(&body);
        other.extend_from_slice(&tag);
        assert_eq!(r.open(&mut other, t).unwrap(), b"frame bytes");
    }

    #[test]
    fn responder_confirmed_on_first_open() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        assert!(i.is_confirmed());
        assert!(!r.is_confirmed());
        let mut out = Vec::new();
        assert_eq!(
            r.seal(b"x", &mut out),
            Err(CryptoError::NotConfirmed(0xBBBB_0002))
        );
        // A forged packet does not confirm.
        let mut bad = seal(&mut i, b"ping");
        bad[20] ^= 1;
        assert!(r.open(&mut bad, t).is_err());
        assert!(!r.is_confirmed());
        let mut good = seal(&mut i, b"ping");
        r.open(&mut good, t).unwrap();
        assert!(r.is_confirmed());
        let mut back = seal(&mut r, b"pong");
        assert_eq!(i.open(&mut back, t).unwrap(), b"pong");
    }

    #[test]
    fn tampering_any_byte_fails() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let pkt = seal(&mut i, b"some payload bytes");
        for pos in 0..pkt.len() {
            let mut p = pkt.clone();
            p[pos] ^= 0x01;
            let flipped = p.clone();
            let res = r.open(&mut p, t).map(<[u8]>::to_vec);
            assert!(res.is_err(), "flip at {pos} accepted");
            if pos >= 6 {
                // counter, ciphertext or tag: authentication must catch it
                assert!(
                    matches!(res, Err(CryptoError::Decrypt { .. })),
                    "{pos}: {res:?}"
                );
            }
            // Header and tag untouched; the body unchanged, or zeroed after a
            // failed tag check (never left as plaintext).
            let body = DATA_HEADER_LEN..p.len() - TAG_LEN;
            assert_eq!(p[..body.start], flipped[..body.start], "header modified");
            assert_eq!(p[body.end..], flipped[body.end..], "tag modified");
            assert!(
                p[body.clone()] == flipped[body.clone()] || p[body].iter().all(|b| *b == 0),
                "body left as plaintext on failure"
            );
        }
        let mut p = pkt.clone();
        assert_eq!(r.open(&mut p, t).unwrap(), b"some payload bytes");
    }

    #[test]
    fn replay_rejected_reorder_accepted() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let pkts: Vec<Vec<u8>> = (0..10u8).map(|n| seal(&mut i, &[n])).collect();
        for n in [3usize, 0, 9, 1, 2, 8, 4, 7, 5, 6] {
            let mut p = pkts[n].clone();
            assert_eq!(r.open(&mut p, t).unwrap(), &[n as u8]);
        }
        for n in [0usize, 5, 9] {
            let mut p = pkts[n].clone();
            assert_eq!(
                r.open(&mut p, t),
                Err(CryptoError::Replay {
                    receiver: 0xBBBB_0002,
                    counter: n as u64
                })
            );
        }
        assert_eq!(r.packets_received(), 10);
    }

    #[test]
    fn too_old_rejected() {
        let t = crate::test_clock::start();
        let (i, r) = pair(t);
        let policy = SessionPolicy {
            replay_window: 64,
            ..SessionPolicy::default()
        };
        let (mut i, mut r) = (i.with_policy(policy), r.with_policy(policy));
        let first = seal(&mut i, b"old");
        let mut last = Vec::new();
        for _ in 0..64 {
            last = seal(&mut i, b"new");
        }
        r.open(&mut last, t).unwrap(); // counter 64
        let mut p = first.clone();
        assert!(matches!(
            r.open(&mut p, t),
            Err(CryptoError::Replay { counter: 0, .. })
        ));
    }

    #[test]
    fn truncated_datagrams_rejected() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let pkt = seal(&mut i, b"");
        assert_eq!(pkt.len(), 30);
        for len in 0..30 {
            let mut p = pkt[..len].to_vec();
            assert!(r.open(&mut p, t).is_err(), "len {len}");
            assert!(data_receiver_index(&pkt[..len]).is_err(), "len {len}");
        }
        let mut p = pkt.clone();
        assert_eq!(r.open(&mut p, t).unwrap(), b"");
    }

    #[test]
    fn wrong_receiver_and_type() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let mut p = seal(&mut i, b"x");
        assert!(matches!(
            i.open(&mut p.clone(), t),
            Err(CryptoError::WrongReceiver { .. })
        ));
        p[1] = 1;
        assert!(matches!(
            r.open(&mut p, t),
            Err(CryptoError::Datagram(DatagramError::WrongType { .. }))
        ));
    }

    #[test]
    fn rekey_by_packets() {
        let t = crate::test_clock::start();
        let (i, r) = pair(t);
        let policy = SessionPolicy {
            rekey_after_packets: 3,
            ..SessionPolicy::default()
        };
        let (mut i, mut r) = (i.with_policy(policy), r.with_policy(policy));
        for _ in 0..3 {
            assert!(!i.needs_rekey(t));
            assert!(!i.should_initiate_rekey(t));
            let mut p = seal(&mut i, b"x");
            r.open(&mut p, t).unwrap();
        }
        assert!(i.needs_rekey(t));
        assert!(i.should_initiate_rekey(t));
        assert!(!r.needs_rekey(t), "receiving does not count");
        for _ in 0..3 {
            seal(&mut r, b"y");
        }
        assert!(r.needs_rekey(t));
        assert!(r.should_initiate_rekey(t));
    }

    #[test]
    fn rekey_and_expiry_by_time() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let p = *i.policy();
        let before = t + p.rekey_after_time - Duration::from_millis(1);
        let at = t + p.rekey_after_time;
        assert!(!i.needs_rekey(before) && !r.needs_rekey(before));
        assert!(i.needs_rekey(at) && r.needs_rekey(at));
        assert!(i.should_initiate_rekey(at));
        assert!(
            !r.should_initiate_rekey(at),
            "responder never rekeys by time"
        );
        // Still usable until reject_after_time.
        let mut pkt = seal(&mut i, b"late");
        assert!(!r.is_expired(at));
        let dead = t + p.reject_after_time;
        assert!(r.is_expired(dead));
        assert_eq!(
            r.open(&mut pkt.clone(), dead),
            Err(CryptoError::Expired(0xBBBB_0002))
        );
        assert_eq!(r.open(&mut pkt, at).unwrap(), b"late");
    }

    #[test]
    fn counter_exhaustion() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        i.send_counter = REJECT_AFTER_MESSAGES - 1;
        let mut p = seal(&mut i, b"last");
        assert_eq!(
            i.seal(b"more", &mut Vec::new()),
            Err(CryptoError::CounterExhausted(REJECT_AFTER_MESSAGES))
        );
        assert!(i.is_expired(t));
        assert_eq!(r.open(&mut p, t).unwrap(), b"last");
        // A (forged) header claiming a counter beyond the limit is refused early.
        let mut q = p.clone();
        q[6..14].copy_from_slice(&REJECT_AFTER_MESSAGES.to_be_bytes());
        assert_eq!(
            r.open(&mut q, t),
            Err(CryptoError::CounterExhausted(REJECT_AFTER_MESSAGES))
        );
    }

    /// Found by `rekey_proptests`: with `RekeyPackets` at or above the
    /// counter limit (the config accepts any u64) the packet rule never fired
    /// and a busy session ran out of counters without asking for a rekey.
    #[test]
    fn rekey_is_asked_for_before_the_counter_limit_whatever_the_policy() {
        let t = crate::test_clock::start();
        let (i, _) = pair(t);
        let policy = SessionPolicy {
            rekey_after_packets: u64::MAX,
            ..SessionPolicy::default()
        };
        let mut i = i.with_policy(policy);
        i.send_counter = REJECT_AFTER_MESSAGES - REKEY_MARGIN_PACKETS - 1;
        assert!(!i.needs_rekey(t));
        seal(&mut i, b"x");
        assert!(i.needs_rekey(t) && i.should_initiate_rekey(t));
        assert!(!i.is_expired(t), "still able to send while the rekey runs");
    }

    #[test]
    fn debug_has_no_keys() {
        let (i, _) = pair(crate::test_clock::start());
        let s = format!("{i:?}");
        assert!(s.contains("0xbbbb0002"));
        assert!(
            !s.contains("11, 17") && !s.to_lowercase().contains("key"),
            "{s}"
        );
    }

    #[test]
    fn seal_reuses_buffer() {
        let t = crate::test_clock::start();
        let (mut i, mut r) = pair(t);
        let mut out = Vec::with_capacity(2048);
        let ptr = out.as_ptr();
        for n in 0..100u32 {
            i.seal(&n.to_be_bytes(), &mut out).unwrap();
            assert_eq!(out.as_ptr(), ptr);
            assert_eq!(r.open(&mut out, t).unwrap(), &n.to_be_bytes());
        }
    }
}
