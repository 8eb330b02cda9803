//! Identity keys in tinc 1.1's exact file formats (this module owns them):
//! tinc-base64, `Ed25519PublicKey` host-file values and PEM blocks, the
//! `ed25519_key.priv` file (96-byte expanded key), `tinc sign`/`tinc verify`
//! documents and the invitation key-hash / file-name derivations.

pub mod base64;
mod document;
mod pem;
mod private;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};
use thiserror::Error;

pub use self::base64::Base64Error;
pub use self::document::{sign_document, verify_document};
pub use self::private::PrivateKey;

/// PEM label of tinc's Ed25519 private key file.
pub const PRIVATE_KEY_PEM_LABEL: &str = "ED25519 PRIVATE KEY";
/// PEM label of an Ed25519 public key block in a tinc host file.
pub const PUBLIC_KEY_PEM_LABEL: &str = "ED25519 PUBLIC KEY";

/// Everything that can go wrong reading, writing or using identity keys.
///
/// Errors about files always name the file; the message already contains
/// the underlying cause (there is no separate `source()` chain to print).
#[derive(Debug, Error)]
pub enum KeyError {
    /// Text that should be tinc-base64 is not.
    #[error("invalid tinc-base64 in {what}: {err}")]
    Base64 {
        /// What was being decoded (e.g. `Ed25519 public key`).
        what: &'static str,
        /// The decoder's complaint.
        err: Base64Error,
    },
    /// Decoded data has the wrong size.
    #[error("{what} is {actual} bytes long, expected {expected}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// Required number of bytes.
        expected: usize,
        /// Number of bytes found.
        actual: usize,
    },
    /// 32 bytes that do not decompress to a point on the Ed25519 curve.
    #[error("Ed25519 public key {text} is not a valid curve point")]
    InvalidPoint {
        /// The key as tinc-base64 text.
        text: String,
    },
    /// A PEM block's BEGIN line is missing.
    #[error("no \"-----BEGIN {label}-----\" line found")]
    MissingPemBegin {
        /// The PEM label looked for.
        label: &'static str,
    },
    /// A PEM block is not closed by its END line.
    #[error("no \"-----END {label}-----\" line after the BEGIN line")]
    MissingPemEnd {
        /// The PEM label looked for.
        label: &'static str,
    },
    /// The stored secret scalar is not clamped, so it cannot come from tinc.
    #[error("private key scalar is not clamped; not an Ed25519 expanded secret key")]
    NotClamped,
    /// scalar·B differs from the public key stored in the private key file.
    #[error("public key does not match private key")]
    PublicKeyMismatch,
    /// A parse error inside a named file.
    #[error("{}: {err}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with its contents.
        err: Box<KeyError>,
    },
    /// An I/O error on a named file.
    #[error("{}: {op} failed: {err}", .path.display())]
    Io {
        /// The file (or directory).
        path: PathBuf,
        /// The operation that failed (`open`, `read`, `rename`, ...).
        op: &'static str,
        /// The OS error.
        err: std::io::Error,
    },
    /// A private key file that group or others may read or write.
    #[error(
        "{}: permissions {mode:04o} are too open (group/world can {access} it); run chmod 600 {}",
        .path.display(),
        .path.display()
    )]
    PermissionsTooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// `read` or `write`.
        access: &'static str,
    },
    /// A secret in a directory that group or others may write (no sticky bit): they could
    /// replace it.
    #[error(
        "{}: its directory {} has mode {mode:04o}: group/others can replace the file; run chmod go-w {}",
        .path.display(),
        .dir.display(),
        .dir.display()
    )]
    DirectoryTooOpen {
        /// The secret file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The directory's permission bits.
        mode: u32,
    },
    /// A key path that is a directory, device, FIFO, ...
    #[error("{}: not a regular file", .path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// A `tinc sign` document whose structure is wrong.
    #[error("malformed signed document: {reason}")]
    MalformedDocument {
        /// What is wrong.
        reason: &'static str,
    },
    /// A `tinc sign` document whose signer is not a valid node name.
    #[error("malformed signed document: the signer: {error}")]
    BadSignerName {
        /// What is wrong with the name.
        error: crate::name::NameError,
    },
    /// A `tinc sign` document by a node whose public key is not known.
    #[error("document is signed by {signer}, whose Ed25519 public key is unknown")]
    UnknownSigner {
        /// The claimed signer.
        signer: crate::name::NodeName,
    },
    /// A `tinc sign` document whose signature does not verify.
    #[error("invalid signature on document signed by {signer}")]
    BadSignature {
        /// The claimed signer.
        signer: crate::name::NodeName,
    },
}

/// An Ed25519 public key: the 32-byte compressed Edwards point.
///
/// In host files it is written as `Ed25519PublicKey = <43 chars>` (tinc-base64);
/// [`fmt::Display`] and [`FromStr`] use that text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps 32 raw bytes without validating them; [`PublicKey::verify`]
    /// returns `false` for bytes that are not a valid point. Use
    /// [`PublicKey::is_valid_point`] to check explicitly.
    pub const fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the tinc-base64 text of an `Ed25519PublicKey` value (43 chars;
    /// surrounding ASCII whitespace is ignored). It must decode to exactly
    /// 32 bytes forming a valid curve point.
    pub fn from_tinc_base64(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let bytes = base64::decode(text).map_err(|err| KeyError::Base64 {
            what: "Ed25519 public key",
            err,
        })?;
        Self::from_decoded(&bytes, "Ed25519 public key")
    }

    fn from_decoded(bytes: &[u8], what: &'static str) -> Result<PublicKey, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            what,
            expected: 32,
            actual: bytes.len(),
        })?;
        let key = PublicKey(arr);
        if key.is_valid_point() {
            Ok(key)
        } else {
            Err(KeyError::InvalidPoint {
                text: key.to_tinc_base64(),
            })
        }
    }

    /// The tinc-base64 text (43 chars) as written after `Ed25519PublicKey =`.
    pub fn to_tinc_base64(&self) -> String {
        base64::encode(&self.0)
    }

    /// Whether the bytes decompress to a point on the curve.
    pub fn is_valid_point(&self) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok()
    }

    /// Parses the first `-----BEGIN ED25519 PUBLIC KEY-----` block in `text`
    /// (other lines before it, e.g. an RSA key block or host variables, are
    /// skipped). The block must hold exactly 32 bytes forming a valid point.
    pub fn from_pem_str(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = pem::read_pem(text.as_bytes(), PUBLIC_KEY_PEM_LABEL)?;
        Self::from_decoded(&bytes, PUBLIC_KEY_PEM_LABEL)
    }

    /// The key as a `-----BEGIN ED25519 PUBLIC KEY-----` block, as tinc writes it.
    pub fn to_pem_string(&self) -> String {
        pem::write_pem(PUBLIC_KEY_PEM_LABEL, &self.0)
    }

    /// Verifies an Ed25519 signature over `msg` (strict: rejects
    /// non-canonical signatures and small-order keys). Returns `false` for
    /// any failure, including an invalid key.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        match VerifyingKey::from_bytes(&self.0) {
            Ok(vk) => vk.verify_strict(msg, &Signature::from_bytes(sig)).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_tinc_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_tinc_base64())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_tinc_base64(s)
    }
}

/// The 24-char key hash in an invitation URL (`HOST:PORT/<hash><cookie>`):
/// URL-safe tinc-base64 of SHA-512(the invitation key's 43-char base64 text)[0..18].
pub fn invitation_key_hash(pubkey: &PublicKey) -> String {
    let digest = Sha512::digest(pubkey.to_tinc_base64().as_bytes());
    base64::encode_urlsafe(&digest[..18])
}

/// The name of the file under `invitations/` for an invitation cookie:
/// URL-safe tinc-base64 of SHA-512(cookie ‖ invitation key's base64 text)[0..18].
/// `cookie` is the raw (decoded, normally 18-byte) cookie.
pub fn invitation_file_name(cookie: &[u8], pubkey: &PublicKey) -> String {
    let mut h = Sha512::new();
    h.update(cookie);
    h.update(pubkey.to_tinc_base64().as_bytes());
    base64::encode_urlsafe(&h.finalize()[..18])
}

/// Overwrites `buf` with zeros in a way the optimiser may not elide
/// (best effort; used for secret material in transient buffers).
pub fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}
