//! Wire formats carried inside authenticated data packets: encode/decode only, no I/O.
//!
//! The outer packet (version, type, handshake and data framing) lives in
//! [`crate::crypto`]; everything here is the plaintext of a data packet. Every
//! decoder returns a [`WireError`] on any malformed input and never panics; all
//! of them are fuzzed (see `fuzz/`). The formats are specified in
//! `proto/PROTOCOL.md`.

pub mod extension;
pub mod message;
pub mod reader;
pub mod record;

pub use extension::{ExtensionItem, VipItem};
pub use message::{Digest, DigestEntry, FramePiece, Hello, Message, MAX_PIECES};
pub use record::{Neighbour, NodeRecord};

/// A malformed inner message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended before the field named here.
    #[error("truncated message: missing {0}")]
    Truncated(&'static str),
    /// A field holds a value the format does not allow.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A name field is not a valid [`crate::name::NodeName`].
    #[error("invalid {field}: {error}")]
    BadName {
        /// Which field.
        field: &'static str,
        /// What is wrong with the name.
        error: crate::name::NameError,
    },
    /// The message type byte is not one this version knows.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// Bytes were left over after a complete message.
    #[error("{0} trailing bytes after message")]
    Trailing(usize),
}
