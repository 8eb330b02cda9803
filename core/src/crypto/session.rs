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
#[path = "session_tests.rs"]
pub(crate) mod tests;
