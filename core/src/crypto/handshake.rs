//! The signed ephemeral-X25519 handshake (SIGMA-style): message formats,
//! initiator and responder logic, key schedule and init-timestamp replay guard.

use std::time::Instant;

use ed25519_dalek::{Signature, VerifyingKey};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};

use super::session::Session;
use super::{expect_type, wipe, DatagramError, PacketType, Signer, PROTOCOL_VERSION};
use crate::name::NodeName;

/// Signature context prefix of the init signature (23 ASCII bytes).
pub const INIT_SIGNATURE_CONTEXT: &[u8; 23] = b"meshd-v1 handshake init";
/// Signature context prefix of the response signature (23 ASCII bytes).
pub const RESP_SIGNATURE_CONTEXT: &[u8; 23] = b"meshd-v1 handshake resp";
/// HKDF `info` of the session key derivation.
pub const SESSION_KEYS_INFO: &[u8] = b"meshd-v1 session keys";
/// Length of a HandshakeResponse: 2 + 4 + 4 + 32 + 64.
pub const RESPONSE_LEN: usize = 106;

/// version, type, sender_index, ephemeral, timestamp.
const INIT_FIXED_LEN: usize = 2 + 4 + 32 + 8;
const INIT_MIN_LEN: usize = INIT_FIXED_LEN + 2 * (1 + 1) + 64;
const SIG_LEN: usize = 64;
const RESP_SIGNED_LEN: usize = RESPONSE_LEN - SIG_LEN;

/// Handshake failures. Names in errors are [`NodeName`]s (`[A-Za-z0-9_]`),
/// safe to log; no key material is ever included.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// Malformed handshake packet.
    #[error("malformed handshake packet: {0}")]
    Datagram(#[from] DatagramError),
    /// The init is addressed to another node.
    #[error("handshake init addressed to {got:?}, but this node is {expected:?}")]
    WrongResponder {
        /// Our name.
        expected: NodeName,
        /// Responder name in the init.
        got: NodeName,
    },
    /// No pinned key for the claimed initiator.
    #[error("handshake init from unknown peer {0:?}")]
    UnknownPeer(NodeName),
    /// The pinned key of a peer is not a valid Ed25519 public key.
    #[error("pinned public key of peer {peer:?} is not a valid Ed25519 key")]
    InvalidPeerKey {
        /// Peer name.
        peer: String,
    },
    /// Signature does not verify under the peer's pinned key.
    #[error("bad handshake signature from peer {peer:?}")]
    BadSignature {
        /// Peer name.
        peer: String,
    },
    /// The response answers a different init.
    #[error("handshake response for index {got:#010x}, expected {expected:#010x}")]
    ReceiverIndexMismatch {
        /// Our init's sender index.
        expected: u32,
        /// receiver_index in the response.
        got: u32,
    },
    /// The X25519 result is all-zero (peer sent a low-order point).
    #[error("non-contributory X25519 key from peer {peer:?}")]
    NonContributory {
        /// Peer name.
        peer: String,
    },
    /// [`InitiatorState::complete`] already produced a session.
    #[error("handshake already completed")]
    AlreadyCompleted,
    /// HKDF failure (cannot happen for the fixed 64-byte output).
    #[error("session key derivation failed")]
    KeyDerivation,
}

/// HandshakeInit (packet type 1), see PROTOCOL.md §2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInit {
    /// Initiator's local session index.
    pub sender_index: u32,
    /// Initiator's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// Initiator wall-clock time, ns since the UNIX epoch.
    pub timestamp_ns: u64,
    /// Initiator node name.
    pub initiator_name: NodeName,
    /// Intended responder node name.
    pub responder_name: NodeName,
    /// Ed25519 signature over [`INIT_SIGNATURE_CONTEXT`] ‖ all preceding bytes.
    pub signature: [u8; 64],
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn read_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// Reads a length-prefixed [`NodeName`]; an invalid name is refused here, at decode.
fn read_name(b: &[u8], at: usize, field: &'static str) -> Result<(NodeName, usize), DatagramError> {
    let len = usize::from(*b.get(at).ok_or(DatagramError::Truncated {
        what: "handshake init",
        got: b.len(),
        need: at + 1,
    })?);
    let end = at + 1 + len;
    // Room for this name, the next fields and the signature is checked by the caller.
    let bytes = b.get(at + 1..end).ok_or(DatagramError::Truncated {
        what: "handshake init",
        got: b.len(),
        need: end,
    })?;
    let name =
        NodeName::from_bytes(bytes).map_err(|error| DatagramError::BadName { field, error })?;
    Ok((name, end))
}

impl HandshakeInit {
    /// Parses and validates a complete HandshakeInit datagram (exact length).
    pub fn parse(b: &[u8]) -> Result<Self, DatagramError> {
        expect_type(b, PacketType::HandshakeInit)?;
        if b.len() < INIT_MIN_LEN {
            return Err(DatagramError::Truncated {
                what: "handshake init",
                got: b.len(),
                need: INIT_MIN_LEN,
            });
        }
        let sender_index = read_u32(b, 2);
        let ephemeral = read_array::<32>(b, 6);
        let timestamp_ns = u64::from_be_bytes(read_array::<8>(b, 38));
        let (initiator_name, at) = read_name(b, INIT_FIXED_LEN, "initiator name")?;
        let (responder_name, at) = read_name(b, at, "responder name")?;
        let expected = at + SIG_LEN;
        if b.len() != expected {
            return Err(DatagramError::BadLength {
                what: "handshake init",
                got: b.len(),
                expected,
            });
        }
        let signature = read_array::<64>(b, at);
        Ok(Self {
            sender_index,
            ephemeral,
            timestamp_ns,
            initiator_name,
            responder_name,
            signature,
        })
    }

    /// Serialized length.
    pub fn buffer_len(&self) -> usize {
        INIT_FIXED_LEN + 2 + self.initiator_name.len() + self.responder_name.len() + SIG_LEN
    }

    /// The bytes covered by the signature (everything but the signature).
    fn emit_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        out.push(PROTOCOL_VERSION);
        out.push(PacketType::HandshakeInit as u8);
        out.extend_from_slice(&self.sender_index.to_be_bytes());
        out.extend_from_slice(&self.ephemeral);
        out.extend_from_slice(&self.timestamp_ns.to_be_bytes());
        for name in [&self.initiator_name, &self.responder_name] {
            // A NodeName is at most NodeName::MAX_LEN (64) bytes: its length fits the byte.
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        out
    }

    /// Serializes the packet (`parse(&x.emit()) == Ok(x)`).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = self.emit_unsigned();
        out.extend_from_slice(&self.signature);
        out
    }
}

/// HandshakeResponse (packet type 2), see PROTOCOL.md §2.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// Responder's local session index.
    pub sender_index: u32,
    /// The initiator's sender_index this answers.
    pub receiver_index: u32,
    /// Responder's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// Ed25519 signature over [`RESP_SIGNATURE_CONTEXT`] ‖ SHA-256(init) ‖ all preceding bytes.
    pub signature: [u8; 64],
}

impl HandshakeResponse {
    /// Parses a complete HandshakeResponse datagram (exactly [`RESPONSE_LEN`] bytes).
    pub fn parse(b: &[u8]) -> Result<Self, DatagramError> {
        expect_type(b, PacketType::HandshakeResponse)?;
        if b.len() != RESPONSE_LEN {
            return Err(DatagramError::BadLength {
                what: "handshake response",
                got: b.len(),
                expected: RESPONSE_LEN,
            });
        }
        Ok(Self {
            sender_index: read_u32(b, 2),
            receiver_index: read_u32(b, 6),
            ephemeral: read_array::<32>(b, 10),
            signature: read_array::<64>(b, RESP_SIGNED_LEN),
        })
    }

    fn emit_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RESPONSE_LEN);
        out.push(PROTOCOL_VERSION);
        out.push(PacketType::HandshakeResponse as u8);
        out.extend_from_slice(&self.sender_index.to_be_bytes());
        out.extend_from_slice(&self.receiver_index.to_be_bytes());
        out.extend_from_slice(&self.ephemeral);
        out
    }

    /// Serializes the packet (always [`RESPONSE_LEN`] bytes).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = self.emit_unsigned();
        out.extend_from_slice(&self.signature);
        out
    }
}

fn init_signed_message(unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(INIT_SIGNATURE_CONTEXT.len() + unsigned.len());
    m.extend_from_slice(INIT_SIGNATURE_CONTEXT);
    m.extend_from_slice(unsigned);
    m
}

fn resp_signed_message(init_hash: &[u8; 32], unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RESP_SIGNATURE_CONTEXT.len() + 32 + unsigned.len());
    m.extend_from_slice(RESP_SIGNATURE_CONTEXT);
    m.extend_from_slice(init_hash);
    m.extend_from_slice(unsigned);
    m
}

fn verify(peer: &str, key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Result<(), HandshakeError> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| HandshakeError::InvalidPeerKey {
        peer: peer.to_owned(),
    })?;
    vk.verify_strict(msg, &Signature::from_bytes(sig))
        .map_err(|_| HandshakeError::BadSignature {
            peer: peer.to_owned(),
        })
}

/// Directional session keys; wiped on drop, never printed.
pub(crate) struct SessionKeys {
    pub(crate) initiator_to_responder: [u8; 32],
    pub(crate) responder_to_initiator: [u8; 32],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        wipe(&mut self.initiator_to_responder);
        wipe(&mut self.responder_to_initiator);
    }
}

/// `transcript = SHA-256(init ‖ response)`;
/// `okm = HKDF-SHA256(salt = transcript, ikm = shared, info = SESSION_KEYS_INFO, L = 64)`.
pub(crate) fn derive_keys(
    shared: &[u8; 32],
    transcript: &[u8; 32],
) -> Result<SessionKeys, HandshakeError> {
    let hk = Hkdf::<Sha256>::new(Some(transcript), shared);
    let mut okm = [0u8; 64];
    hk.expand(SESSION_KEYS_INFO, &mut okm)
        .map_err(|_| HandshakeError::KeyDerivation)?;
    let keys = SessionKeys {
        initiator_to_responder: read_array::<32>(&okm, 0),
        responder_to_initiator: read_array::<32>(&okm, 32),
    };
    wipe(&mut okm);
    Ok(keys)
}

fn transcript_hash(init: &[u8], resp: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(init)
        .chain_update(resp)
        .finalize()
        .into()
}

/// X25519 with the all-zero (non-contributory) result rejected.
fn agree(secret: &StaticSecret, their: &[u8; 32], peer: &str) -> Result<[u8; 32], HandshakeError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their));
    if !shared.was_contributory() {
        return Err(HandshakeError::NonContributory {
            peer: peer.to_owned(),
        });
    }
    Ok(shared.to_bytes())
}

/// Initiator side of one handshake attempt: keeps the ephemeral secret until
/// a valid response arrives.
pub struct InitiatorState {
    /// `None` once a session was produced (prevents two sessions with the same keys).
    ephemeral: Option<StaticSecret>,
    init_bytes: Vec<u8>,
    init_hash: [u8; 32],
    sender_index: u32,
    timestamp_ns: u64,
    peer_name: NodeName,
    peer_key: [u8; 32],
}

impl std::fmt::Debug for InitiatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitiatorState")
            .field("sender_index", &format_args!("{:#010x}", self.sender_index))
            .field("peer_name", &self.peer_name)
            .field("timestamp_ns", &self.timestamp_ns)
            .field("completed", &self.ephemeral.is_none())
            .finish_non_exhaustive()
    }
}

/// Starts a handshake with `peer_name`, whose pinned identity key is `peer_key`.
///
/// Returns the state to keep (look it up by [`InitiatorState::sender_index`]
/// when a response arrives) and the HandshakeInit datagram to send.
/// `timestamp_ns` must strictly increase across inits to the same responder
/// (wall-clock ns since the UNIX epoch is the intended source).
pub fn initiate(
    me: &impl Signer,
    my_name: &NodeName,
    peer_name: &NodeName,
    peer_key: [u8; 32],
    sender_index: u32,
    timestamp_ns: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(InitiatorState, Vec<u8>), HandshakeError> {
    let secret = StaticSecret::random_from_rng(&mut *rng);
    let mut msg = HandshakeInit {
        sender_index,
        ephemeral: PublicKey::from(&secret).to_bytes(),
        timestamp_ns,
        initiator_name: my_name.clone(),
        responder_name: peer_name.clone(),
        signature: [0; 64],
    };
    msg.signature = me.sign(&init_signed_message(&msg.emit_unsigned()));
    let init_bytes = msg.emit();
    let init_hash = Sha256::digest(&init_bytes).into();
    let state = InitiatorState {
        ephemeral: Some(secret),
        init_bytes: init_bytes.clone(),
        init_hash,
        sender_index,
        timestamp_ns,
        peer_name: peer_name.clone(),
        peer_key,
    };
    Ok((state, init_bytes))
}

impl InitiatorState {
    /// Our local index, echoed as `receiver_index` by the response.
    pub fn sender_index(&self) -> u32 {
        self.sender_index
    }
    /// Name of the peer being contacted.
    pub fn peer_name(&self) -> &NodeName {
        &self.peer_name
    }
    /// Timestamp carried by the init.
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    /// The init datagram (for retransmission).
    pub fn init_bytes(&self) -> &[u8] {
        &self.init_bytes
    }
    /// Whether [`complete`](Self::complete) already succeeded.
    pub fn is_completed(&self) -> bool {
        self.ephemeral.is_none()
    }

    /// Processes a HandshakeResponse: checks `receiver_index`, verifies the
    /// responder's signature with the pinned key, derives keys and returns the
    /// (already confirmed) initiator session.
    ///
    /// Takes `&mut self` so a forged or corrupted response does not destroy
    /// the attempt: on error the state is unchanged and a genuine response can
    /// still complete it. After one success, further calls fail with
    /// [`HandshakeError::AlreadyCompleted`] (two sessions with the same keys
    /// would reuse nonces).
    pub fn complete(&mut self, resp_bytes: &[u8], now: Instant) -> Result<Session, HandshakeError> {
        let secret = self
            .ephemeral
            .as_ref()
            .ok_or(HandshakeError::AlreadyCompleted)?;
        let resp = HandshakeResponse::parse(resp_bytes)?;
        if resp.receiver_index != self.sender_index {
            return Err(HandshakeError::ReceiverIndexMismatch {
                expected: self.sender_index,
                got: resp.receiver_index,
            });
        }
        verify(
            &self.peer_name,
            &self.peer_key,
            &resp_signed_message(&self.init_hash, &resp_bytes[..RESP_SIGNED_LEN]),
            &resp.signature,
        )?;
        let mut shared = agree(secret, &resp.ephemeral, &self.peer_name)?;
        let keys = derive_keys(&shared, &transcript_hash(&self.init_bytes, resp_bytes));
        wipe(&mut shared);
        let keys = keys?;
        self.ephemeral = None;
        Ok(Session::new(
            self.sender_index,
            resp.sender_index,
            true,
            &keys.initiator_to_responder,
            &keys.responder_to_initiator,
            now,
        ))
    }
}

/// Keeps the last accepted init timestamp of one peer; accepts only strictly
/// increasing timestamps.
///
/// Call it only for inits that passed [`verify_init`] (otherwise a forged init
/// could push the value forward and lock the peer out). It is in-memory: after
/// a restart an old init could be accepted once, but the resulting session is
/// never confirmed, so it can neither send nor deliver data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimestampGuard {
    last: Option<u64>,
}

impl TimestampGuard {
    /// A guard that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }
    /// Last accepted timestamp.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
    /// Whether `timestamp_ns` is newer than everything accepted so far.
    pub fn would_accept(&self, timestamp_ns: u64) -> bool {
        self.last.is_none_or(|l| timestamp_ns > l)
    }
    /// Accepts and records `timestamp_ns` if strictly newer; false otherwise.
    pub fn accept(&mut self, timestamp_ns: u64) -> bool {
        if self.would_accept(timestamp_ns) {
            self.last = Some(timestamp_ns);
            true
        } else {
            false
        }
    }
}

/// A HandshakeInit that was addressed to us and verified against the
/// initiator's pinned key. Holds no secrets and no responder state.
#[derive(Debug, Clone)]
pub struct VerifiedInit {
    init: HandshakeInit,
    init_hash: [u8; 32],
    transcript: Sha256,
    initiator_key: [u8; 32],
}

/// What the responder learned from an accepted init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedInit {
    /// Authenticated initiator name.
    pub initiator_name: NodeName,
    /// Initiator timestamp; feed to that peer's [`TimestampGuard`].
    pub timestamp_ns: u64,
    /// Initiator's session index (our session's remote index).
    pub initiator_index: u32,
    /// The pinned key the init was verified with.
    pub initiator_key: [u8; 32],
}

/// Responder step 1 (stateless): parses `init_bytes`, checks the responder
/// name is `my_name`, looks up the initiator's pinned key with `lookup_key`
/// and verifies the signature. Check [`VerifiedInit::timestamp_ns`] with the
/// peer's [`TimestampGuard`] before calling [`VerifiedInit::respond`].
pub fn verify_init(
    my_name: &NodeName,
    init_bytes: &[u8],
    lookup_key: impl Fn(&str) -> Option<[u8; 32]>,
) -> Result<VerifiedInit, HandshakeError> {
    let init = HandshakeInit::parse(init_bytes)?;
    if init.responder_name != *my_name {
        return Err(HandshakeError::WrongResponder {
            expected: my_name.clone(),
            got: init.responder_name,
        });
    }
    let initiator_key = lookup_key(&init.initiator_name)
        .ok_or_else(|| HandshakeError::UnknownPeer(init.initiator_name.clone()))?;
    let signed_len = init_bytes.len() - SIG_LEN;
    verify(
        &init.initiator_name,
        &initiator_key,
        &init_signed_message(&init_bytes[..signed_len]),
        &init.signature,
    )?;
    let init_hash = Sha256::digest(init_bytes).into();
    let transcript = Sha256::new().chain_update(init_bytes);
    Ok(VerifiedInit {
        init,
        init_hash,
        transcript,
        initiator_key,
    })
}

impl VerifiedInit {
    /// Authenticated initiator name.
    pub fn initiator_name(&self) -> &NodeName {
        &self.init.initiator_name
    }
    /// Initiator timestamp (ns since the UNIX epoch, initiator's clock).
    pub fn timestamp_ns(&self) -> u64 {
        self.init.timestamp_ns
    }
    /// Initiator's session index.
    pub fn initiator_index(&self) -> u32 {
        self.init.sender_index
    }
    /// The parsed init.
    pub fn message(&self) -> &HandshakeInit {
        &self.init
    }
    /// Summary of the accepted init.
    pub fn accepted(&self) -> AcceptedInit {
        AcceptedInit {
            initiator_name: self.init.initiator_name.clone(),
            timestamp_ns: self.init.timestamp_ns,
            initiator_index: self.init.sender_index,
            initiator_key: self.initiator_key,
        }
    }

    /// Responder step 2: creates the ephemeral key, the signed
    /// HandshakeResponse datagram and the responder [`Session`] (unconfirmed:
    /// it may not send until the initiator's first data packet opens).
    pub fn respond(
        self,
        me: &impl Signer,
        sender_index: u32,
        rng: &mut impl CryptoRngCore,
        now: Instant,
    ) -> Result<(Session, Vec<u8>), HandshakeError> {
        let secret = StaticSecret::random_from_rng(&mut *rng);
        let ephemeral = PublicKey::from(&secret).to_bytes();
        let mut shared = agree(&secret, &self.init.ephemeral, &self.init.initiator_name)?;
        drop(secret);
        let mut resp = HandshakeResponse {
            sender_index,
            receiver_index: self.init.sender_index,
            ephemeral,
            signature: [0; 64],
        };
        resp.signature = me.sign(&resp_signed_message(&self.init_hash, &resp.emit_unsigned()));
        let resp_bytes = resp.emit();
        let transcript: [u8; 32] = self
            .transcript
            .clone()
            .chain_update(&resp_bytes)
            .finalize()
            .into();
        let keys = derive_keys(&shared, &transcript);
        wipe(&mut shared);
        let keys = keys?;
        let session = Session::new(
            sender_index,
            self.init.sender_index,
            false,
            &keys.responder_to_initiator,
            &keys.initiator_to_responder,
            now,
        );
        Ok((session, resp_bytes))
    }
}

/// Convenience: [`verify_init`] then [`VerifiedInit::respond`].
///
/// The caller MUST then check `AcceptedInit::timestamp_ns` with the
/// initiator's [`TimestampGuard`] and, if it is rejected, drop the session and
/// not send the response. Prefer the two-step API, which checks before doing
/// the X25519 work.
pub fn respond(
    me: &impl Signer,
    my_name: &NodeName,
    init_bytes: &[u8],
    lookup_key: impl Fn(&str) -> Option<[u8; 32]>,
    sender_index: u32,
    rng: &mut impl CryptoRngCore,
    now: Instant,
) -> Result<(AcceptedInit, Session, Vec<u8>), HandshakeError> {
    let verified = verify_init(my_name, init_bytes, lookup_key)?;
    let accepted = verified.accepted();
    let (session, resp) = verified.respond(me, sender_index, rng, now)?;
    Ok((accepted, session, resp))
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
