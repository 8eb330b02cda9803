//! The node's Ed25519 private key and the contents of tinc 1.1's
//! `ed25519_key.priv` file (part of the keys module; reading and writing the
//! file is the daemon's `keyfile` module): 96 bytes = clamped scalar ‖ nonce prefix ‖ public key.

use std::fmt;

use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::VerifyingKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};

use super::{pem, wipe, KeyError, PublicKey, PRIVATE_KEY_PEM_LABEL};

/// Size of the expanded key stored in the file.
const EXPANDED_LEN: usize = 96;

/// A node's Ed25519 identity key, in tinc's expanded form (the seed is not kept).
///
/// `Debug` prints only the public key. The secret scalar and nonce prefix
/// are overwritten on drop.
pub struct PrivateKey {
    expanded: ExpandedSecretKey,
    /// The clamped scalar exactly as stored in the file. `expanded.scalar`
    /// is reduced mod ℓ, so it cannot reproduce the file's bytes.
    scalar_bytes: [u8; 32],
    verifying: VerifyingKey,
    public: PublicKey,
}

impl PrivateKey {
    /// Makes a new key from a random 32-byte seed (expanded with SHA-512,
    /// as tinc's `ed25519_create_keypair` does; the seed is discarded).
    pub fn generate(rng: &mut impl CryptoRngCore) -> PrivateKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self::from_seed(&seed);
        wipe(&mut seed);
        key
    }

    /// Expands an RFC 8032 seed.
    pub(super) fn from_seed(seed: &[u8; 32]) -> PrivateKey {
        let mut h: [u8; 64] = Sha512::digest(seed).into();
        let mut scalar_bytes = [0u8; 32];
        scalar_bytes.copy_from_slice(&h[..32]);
        scalar_bytes = curve25519_dalek::scalar::clamp_integer(scalar_bytes);
        let expanded = ExpandedSecretKey::from_bytes(&h);
        wipe(&mut h);
        let verifying = VerifyingKey::from(&expanded);
        PrivateKey {
            expanded,
            scalar_bytes,
            public: PublicKey::from_bytes(verifying.to_bytes()),
            verifying,
        }
    }

    /// Builds a key from the 96 decoded bytes of a key file, checking that
    /// the scalar is clamped and that scalar·B equals the stored public key.
    fn from_expanded(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        if bytes.len() != EXPANDED_LEN {
            return Err(KeyError::Length {
                what: PRIVATE_KEY_PEM_LABEL,
                expected: EXPANDED_LEN,
                actual: bytes.len(),
            });
        }
        let mut scalar_bytes = [0u8; 32];
        scalar_bytes.copy_from_slice(&bytes[..32]);
        if scalar_bytes[0] & 0x07 != 0 || scalar_bytes[31] & 0xc0 != 0x40 {
            wipe(&mut scalar_bytes);
            return Err(KeyError::NotClamped);
        }
        let mut h = [0u8; 64];
        h.copy_from_slice(&bytes[..64]);
        let expanded = ExpandedSecretKey::from_bytes(&h);
        wipe(&mut h);
        let verifying = VerifyingKey::from(&expanded);
        if verifying.as_bytes()[..] != bytes[64..] {
            wipe(&mut scalar_bytes);
            return Err(KeyError::PublicKeyMismatch);
        }
        Ok(PrivateKey {
            expanded,
            scalar_bytes,
            public: PublicKey::from_bytes(verifying.to_bytes()),
            verifying,
        })
    }

    /// Parses the contents of an `ed25519_key.priv` file. Lines before the
    /// `-----BEGIN ED25519 PRIVATE KEY-----` line are ignored; the base64
    /// lines may be split anywhere; the END line is required; the block must
    /// hold exactly 96 bytes whose public half matches the secret scalar.
    pub fn from_pem_str(text: &str) -> Result<PrivateKey, KeyError> {
        Self::from_pem_bytes(text.as_bytes())
    }

    /// [`PrivateKey::from_pem_str`] on bytes (a file's contents, not yet known to be UTF-8).
    pub fn from_pem_bytes(text: &[u8]) -> Result<PrivateKey, KeyError> {
        let mut bytes = pem::read_pem(text, PRIVATE_KEY_PEM_LABEL)?;
        let key = Self::from_expanded(&bytes);
        wipe(&mut bytes);
        key
    }

    /// The key file's contents, byte for byte as tinc writes them
    /// (two 64-char lines, trailing newline). The string holds the secret.
    pub fn to_pem_string(&self) -> String {
        let mut bytes = [0u8; EXPANDED_LEN];
        bytes[..32].copy_from_slice(&self.scalar_bytes);
        bytes[32..64].copy_from_slice(&self.expanded.hash_prefix);
        bytes[64..].copy_from_slice(self.public.as_bytes());
        let text = pem::write_pem(PRIVATE_KEY_PEM_LABEL, &bytes);
        wipe(&mut bytes);
        text
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// Signs `msg` (standard, deterministic Ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        raw_sign::<Sha512>(&self.expanded, msg, &self.verifying).to_bytes()
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // `expanded` zeroizes itself (ed25519-dalek's `zeroize` feature).
        wipe(&mut self.scalar_bytes);
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
