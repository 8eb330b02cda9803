//! Node-to-node cryptography: outer packet framing, the signed X25519 handshake,
//! authenticated data sessions, anti-replay and handshake rate limiting.
//!
//! Everything here is sans-IO: no sockets, no clocks and no global randomness.
//! Time is passed in as [`std::time::Instant`] (monotonic) or, for the handshake
//! timestamp, as caller-supplied wall-clock nanoseconds; randomness is passed in
//! as `&mut impl rand_core::CryptoRngCore`.
//!
//! The wire format is specified in `proto/PROTOCOL.md` (sections 1 to 4) and
//! pinned by the test vectors in `proto/vectors/handshake-v1.txt`.
//!
//! Typical flow:
//! 1. Initiator: [`initiate`] → send the init bytes, keep the [`InitiatorState`].
//! 2. Responder: [`packet_type`] → [`verify_init`] (stateless) → check the
//!    peer's [`TimestampGuard`] → [`VerifiedInit::respond`] → send the response,
//!    keep the (unconfirmed) [`Session`].
//! 3. Initiator: [`InitiatorState::complete`] → confirmed [`Session`].
//! 4. Both: [`data_receiver_index`] to find the session, [`Session::open`] /
//!    [`Session::seal`] for data. The responder's session becomes confirmed
//!    (and may send) once the first data packet from the initiator opens.

mod handshake;
mod ratelimit;
mod replay;
mod session;

pub use handshake::{
    initiate, respond, verify_init, AcceptedInit, HandshakeError, HandshakeInit, HandshakeResponse,
    InitiatorState, TimestampGuard, VerifiedInit, INIT_SIGNATURE_CONTEXT, RESPONSE_LEN,
    RESP_SIGNATURE_CONTEXT, SESSION_KEYS_INFO,
};
pub use ratelimit::HandshakeLimiter;
pub use replay::{ReplayWindow, DEFAULT_REPLAY_WINDOW};
pub use session::{
    data_receiver_index, CryptoError, Session, SessionPolicy, DATA_HEADER_LEN, DATA_OVERHEAD,
    REJECT_AFTER_MESSAGES, TAG_LEN,
};

use thiserror::Error;

/// Protocol version carried in byte 0 of every datagram.
pub const PROTOCOL_VERSION: u8 = 1;

/// An Ed25519 identity able to sign handshake transcripts.
///
/// The identity key type lives outside this module; it only has to expose its
/// public key and produce (deterministic, RFC 8032) Ed25519 signatures.
pub trait Signer {
    /// The 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// An Ed25519 signature over `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

/// Packet type, byte 1 of every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Handshake initiation (type 1).
    HandshakeInit = 1,
    /// Handshake response (type 2).
    HandshakeResponse = 2,
    /// Encrypted data (type 3).
    Data = 3,
}

impl PacketType {
    /// Maps a wire byte to a packet type.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::HandshakeInit),
            2 => Some(Self::HandshakeResponse),
            3 => Some(Self::Data),
            _ => None,
        }
    }
}

/// An outer datagram (handshake or data packet) that is not well-formed.
/// Never contains secret material. (Malformed inner messages are
/// [`crate::wire::WireError`]s.)
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    /// Shorter than the fixed part of its packet type.
    #[error("{what}: datagram too short ({got} bytes, need at least {need})")]
    Truncated {
        /// Which structure was being parsed.
        what: &'static str,
        /// Bytes present.
        got: usize,
        /// Minimum bytes required.
        need: usize,
    },
    /// Length does not match the length implied by the header/fields.
    #[error("{what}: bad length ({got} bytes, expected {expected})")]
    BadLength {
        /// Which structure was being parsed.
        what: &'static str,
        /// Bytes present.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// Byte 0 is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// Byte 1 is not a known packet type.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// Known packet type, but not the one the parser expected.
    #[error("wrong packet type: expected {expected:?}, got {got:?}")]
    WrongType {
        /// Type the parser handles.
        expected: PacketType,
        /// Type found in the datagram.
        got: PacketType,
    },
    /// A name field is not a valid [`crate::name::NodeName`].
    #[error("{field}: {error}")]
    BadName {
        /// Which name field.
        field: &'static str,
        /// What is wrong with the name.
        error: crate::name::NameError,
    },
}

/// Classifies a datagram by its 2-byte outer header (version, type).
///
/// Only the header is checked; the type-specific parser validates the rest.
pub fn packet_type(datagram: &[u8]) -> Result<PacketType, DatagramError> {
    match datagram {
        [version, ty, ..] => {
            if *version != PROTOCOL_VERSION {
                return Err(DatagramError::BadVersion(*version));
            }
            PacketType::from_u8(*ty).ok_or(DatagramError::UnknownType(*ty))
        }
        _ => Err(DatagramError::Truncated {
            what: "outer header",
            got: datagram.len(),
            need: 2,
        }),
    }
}

/// Checks the outer header and that it carries `expected`.
pub(crate) fn expect_type(datagram: &[u8], expected: PacketType) -> Result<(), DatagramError> {
    let got = packet_type(datagram)?;
    if got != expected {
        return Err(DatagramError::WrongType { expected, got });
    }
    Ok(())
}

/// Best-effort wipe of transient key material. `black_box` keeps the
/// compiler from treating the zeroing stores as dead.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Test-only [`Signer`] backed by an `ed25519_dalek::SigningKey`.
    use super::Signer;
    use ed25519_dalek::Signer as _;

    pub struct TestSigner(pub ed25519_dalek::SigningKey);

    impl TestSigner {
        pub fn from_seed(seed: [u8; 32]) -> Self {
            Self(ed25519_dalek::SigningKey::from_bytes(&seed))
        }
    }

    impl Signer for TestSigner {
        fn public_key(&self) -> [u8; 32] {
            self.0.verifying_key().to_bytes()
        }
        fn sign(&self, msg: &[u8]) -> [u8; 64] {
            self.0.sign(msg).to_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_type_dispatch() {
        assert_eq!(packet_type(&[1, 1]), Ok(PacketType::HandshakeInit));
        assert_eq!(packet_type(&[1, 2, 9]), Ok(PacketType::HandshakeResponse));
        assert_eq!(packet_type(&[1, 3, 0, 0]), Ok(PacketType::Data));
        assert_eq!(packet_type(&[2, 1]), Err(DatagramError::BadVersion(2)));
        assert_eq!(packet_type(&[0, 1]), Err(DatagramError::BadVersion(0)));
        assert_eq!(packet_type(&[1, 0]), Err(DatagramError::UnknownType(0)));
        assert_eq!(packet_type(&[1, 4]), Err(DatagramError::UnknownType(4)));
        assert!(matches!(
            packet_type(&[]),
            Err(DatagramError::Truncated { .. })
        ));
        assert!(matches!(
            packet_type(&[1]),
            Err(DatagramError::Truncated { .. })
        ));
    }

    #[test]
    fn wipe_zeroes() {
        let mut b = [0xAAu8; 40];
        wipe(&mut b);
        assert_eq!(b, [0u8; 40]);
    }
}
