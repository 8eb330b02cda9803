//! The join exchange (`meshd-join/1`, proto/PROTOCOL.md §8) as a sans-IO state machine:
//! the two plaintext hellos that authenticate the inviter against the URL's key hash and
//! agree on keys, then sealed, typed messages. Sockets live in the callers.

use crate::keys::{invitation_key_hash, PrivateKey, PublicKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use x25519_dalek::{EphemeralSecret, PublicKey as X25519Public};

/// First bytes of the joiner's hello.
pub const MAGIC: &[u8; 10] = b"meshd-join";
/// The exchange's version.
pub const VERSION: u8 = 1;
/// Largest frame body (the length prefix is a u16).
pub const MAX_FRAME: usize = u16::MAX as usize;
/// Domain separation of the inviter's signature.
const SIGNATURE_CONTEXT: &[u8] = b"meshd-join v1 inviter";
/// HKDF info for the two directional keys.
const KEY_INFO: &[u8] = b"meshd-join v1 keys";
/// Length of the joiner's hello: magic, version, ephemeral key.
pub const JOINER_HELLO_LEN: usize = MAGIC.len() + 1 + 32;
/// Length of the inviter's hello: version, invitation key, ephemeral key, signature.
pub const INVITER_HELLO_LEN: usize = 1 + 32 + 32 + 64;
/// First byte of an inviter's plaintext refusal instead of its hello (then a UTF-8 reason).
pub const REFUSAL: u8 = 0;
/// AEAD tag length.
const TAG_LEN: usize = 16;

/// What a sealed message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Joiner → inviter: the 18-byte cookie from the URL.
    Cookie = 1,
    /// Inviter → joiner: the invitation file.
    Invitation = 2,
    /// Joiner → inviter: the joiner's Ed25519 public key, tinc-base64 text.
    PublicKey = 3,
    /// Inviter → joiner: the key is stored; the join is complete.
    Accepted = 4,
    /// Either way: the exchange ends; the payload is a UTF-8 reason.
    Error = 0x7f,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Cookie,
            2 => Kind::Invitation,
            3 => Kind::PublicKey,
            4 => Kind::Accepted,
            0x7f => Kind::Error,
            _ => return None,
        })
    }
}

/// Why the exchange failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExchangeError {
    /// Not a meshd joiner / inviter (e.g. a tinc daemon or something else on that port).
    #[error("the other side does not speak meshd-join (not a meshd daemon, or the wrong port?)")]
    NotMeshd,
    /// A version this build does not speak.
    #[error("the other side speaks meshd-join version {0}; this build speaks version 1")]
    Version(u8),
    /// A message of the wrong length.
    #[error("a {what} of {got} bytes (expected {expected})")]
    Length {
        /// Which message.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length it must have.
        expected: usize,
    },
    /// The inviter's key does not hash to the URL's fingerprint.
    #[error(
        "the inviter's key does not match the invitation URL (fingerprint {expected} expected, \
         {got} received): someone may be intercepting the connection — refused"
    )]
    KeyMismatch {
        /// The URL's key hash.
        expected: String,
        /// The hash of the key the server presented.
        got: String,
    },
    /// The inviter's signature over the hellos is wrong.
    #[error("the inviter's signature is invalid: refused")]
    BadSignature,
    /// A degenerate ephemeral key (all-zero shared secret).
    #[error("the other side sent a degenerate key")]
    WeakKey,
    /// A sealed message did not authenticate.
    #[error("a message failed authentication (corrupted or forged)")]
    Decrypt,
    /// A sealed message of an unknown kind.
    #[error("a message of unknown kind {0}")]
    UnknownKind(u8),
    /// The inviter refused before the handshake (e.g. it has no outstanding invitations).
    #[error("the inviter refused: {0}")]
    Refused(String),
    /// A payload too large for one frame.
    #[error("a message of {0} bytes is too large for one frame")]
    TooLarge(usize),
}

/// The joiner between sending its hello and reading the inviter's.
pub struct JoinerHandshake {
    secret: EphemeralSecret,
    hello: Vec<u8>,
}

impl JoinerHandshake {
    /// Starts the exchange: returns the state and the hello to send.
    pub fn start(rng: &mut impl CryptoRngCore) -> JoinerHandshake {
        let secret = EphemeralSecret::random_from_rng(rng);
        let public = X25519Public::from(&secret);
        let mut hello = Vec::with_capacity(JOINER_HELLO_LEN);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.extend_from_slice(public.as_bytes());
        JoinerHandshake { secret, hello }
    }

    /// The hello to send (one frame body).
    pub fn hello(&self) -> &[u8] {
        &self.hello
    }

    /// Checks the inviter's hello against the URL's key hash and derives the channel.
    /// Returns the channel and the inviter's invitation key.
    pub fn finish(
        self,
        inviter_hello: &[u8],
        expected_key_hash: &str,
    ) -> Result<(Channel, PublicKey), ExchangeError> {
        let first = *inviter_hello.first().ok_or(ExchangeError::NotMeshd)?;
        if first == REFUSAL {
            let reason = String::from_utf8_lossy(&inviter_hello[1..]);
            let reason: String = reason
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            return Err(ExchangeError::Refused(reason));
        }
        if first != VERSION {
            return Err(if first > VERSION && first < 16 {
                ExchangeError::Version(first)
            } else {
                ExchangeError::NotMeshd
            });
        }
        if inviter_hello.len() != INVITER_HELLO_LEN {
            return Err(ExchangeError::Length {
                what: "inviter hello",
                got: inviter_hello.len(),
                expected: INVITER_HELLO_LEN,
            });
        }
        let (signed, signature) = inviter_hello.split_at(1 + 32 + 32);
        let key = PublicKey::from_bytes(to_array(&signed[1..33]));
        let got = invitation_key_hash(&key);
        if got != expected_key_hash {
            return Err(ExchangeError::KeyMismatch {
                expected: expected_key_hash.to_string(),
                got,
            });
        }
        let message = signed_message(&self.hello, signed);
        let signature: [u8; 64] = to_array(signature);
        if !key.verify(&message, &signature) {
            return Err(ExchangeError::BadSignature);
        }
        let their_ephemeral = X25519Public::from(to_array::<32>(&signed[33..65]));
        let shared = self.secret.diffie_hellman(&their_ephemeral);
        if !shared.was_contributory() {
            return Err(ExchangeError::WeakKey);
        }
        let (to_inviter, to_joiner) = derive_keys(shared.as_bytes(), &self.hello, inviter_hello);
        Ok((Channel::new(to_inviter, to_joiner), key))
    }
}

/// The inviter's answer to a joiner's hello: its hello and the channel.
pub fn inviter_respond(
    joiner_hello: &[u8],
    invitation_key: &PrivateKey,
    rng: &mut impl CryptoRngCore,
) -> Result<(Channel, Vec<u8>), ExchangeError> {
    if joiner_hello.len() < MAGIC.len() + 1 || &joiner_hello[..MAGIC.len()] != MAGIC {
        return Err(ExchangeError::NotMeshd);
    }
    let version = joiner_hello[MAGIC.len()];
    if version != VERSION {
        return Err(ExchangeError::Version(version));
    }
    if joiner_hello.len() != JOINER_HELLO_LEN {
        return Err(ExchangeError::Length {
            what: "joiner hello",
            got: joiner_hello.len(),
            expected: JOINER_HELLO_LEN,
        });
    }
    let their_ephemeral = X25519Public::from(to_array::<32>(&joiner_hello[MAGIC.len() + 1..]));
    let secret = EphemeralSecret::random_from_rng(rng);
    let public = X25519Public::from(&secret);
    let mut hello = Vec::with_capacity(INVITER_HELLO_LEN);
    hello.push(VERSION);
    hello.extend_from_slice(invitation_key.public().as_bytes());
    hello.extend_from_slice(public.as_bytes());
    let signature = invitation_key.sign(&signed_message(joiner_hello, &hello));
    hello.extend_from_slice(&signature);
    let shared = secret.diffie_hellman(&their_ephemeral);
    if !shared.was_contributory() {
        return Err(ExchangeError::WeakKey);
    }
    let (to_inviter, to_joiner) = derive_keys(shared.as_bytes(), joiner_hello, &hello);
    Ok((Channel::new(to_joiner, to_inviter), hello))
}

fn signed_message(joiner_hello: &[u8], inviter_signed_part: &[u8]) -> Vec<u8> {
    let mut m = SIGNATURE_CONTEXT.to_vec();
    m.extend_from_slice(joiner_hello);
    m.extend_from_slice(inviter_signed_part);
    m
}

/// HKDF-SHA256 (salt = SHA-256 of both hellos) → (joiner→inviter key, inviter→joiner key).
fn derive_keys(
    shared: &[u8; 32],
    joiner_hello: &[u8],
    inviter_hello: &[u8],
) -> ([u8; 32], [u8; 32]) {
    let salt = Sha256::new()
        .chain_update(joiner_hello)
        .chain_update(inviter_hello)
        .finalize();
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut okm = [0u8; 64];
    // 64 bytes is far below HKDF-SHA256's limit of 8160: this cannot fail.
    if hk.expand(KEY_INFO, &mut okm).is_err() {
        unreachable!("HKDF-SHA256 refused 64 bytes");
    }
    (to_array(&okm[..32]), to_array(&okm[32..]))
}

fn to_array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

/// The sealed channel after the hellos: ChaCha20-Poly1305, one key and one counter per direction.
pub struct Channel {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    sent: u64,
    received: u64,
}

impl Channel {
    fn new(send_key: [u8; 32], recv_key: [u8; 32]) -> Channel {
        Channel {
            send: ChaCha20Poly1305::new(Key::from_slice(&send_key)),
            recv: ChaCha20Poly1305::new(Key::from_slice(&recv_key)),
            sent: 0,
            received: 0,
        }
    }

    fn nonce(counter: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        *Nonce::from_slice(&n)
    }

    /// Seals one message: the frame body to send.
    pub fn seal(&mut self, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        if payload.len() + 1 + TAG_LEN > MAX_FRAME {
            return Err(ExchangeError::TooLarge(payload.len()));
        }
        let mut plain = Vec::with_capacity(1 + payload.len());
        plain.push(kind as u8);
        plain.extend_from_slice(payload);
        let sealed = self
            .send
            .encrypt(&Self::nonce(self.sent), Payload::from(plain.as_slice()))
            .map_err(|_| ExchangeError::TooLarge(payload.len()))?;
        self.sent += 1;
        Ok(sealed)
    }

    /// Opens one received frame body.
    pub fn open(&mut self, body: &[u8]) -> Result<(Kind, Vec<u8>), ExchangeError> {
        let mut plain = self
            .recv
            .decrypt(&Self::nonce(self.received), Payload::from(body))
            .map_err(|_| ExchangeError::Decrypt)?;
        self.received += 1;
        let kind_byte = *plain.first().ok_or(ExchangeError::Decrypt)?;
        let kind = Kind::from_u8(kind_byte).ok_or(ExchangeError::UnknownKind(kind_byte))?;
        plain.remove(0);
        Ok((kind, plain))
    }
}

/// The frame body of a plaintext refusal (sent instead of the inviter's hello).
pub fn refusal(reason: &str) -> Vec<u8> {
    let mut body = vec![REFUSAL];
    body.extend_from_slice(reason.as_bytes());
    body
}

/// Prefixes a frame body with its big-endian u16 length.
pub fn frame(body: &[u8]) -> Result<Vec<u8>, ExchangeError> {
    let len = u16::try_from(body.len()).map_err(|_| ExchangeError::TooLarge(body.len()))?;
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A deterministic random source (the tests must not depend on the OS).
    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x6a6f_696e)
    }

    fn pair() -> (Channel, Channel, PrivateKey) {
        let mut r = rng();
        let key = PrivateKey::generate(&mut r);
        let joiner = JoinerHandshake::start(&mut r);
        let (inviter_channel, hello) = inviter_respond(joiner.hello(), &key, &mut r).unwrap();
        let hash = invitation_key_hash(&key.public());
        let (joiner_channel, seen) = joiner.finish(&hello, &hash).unwrap();
        assert_eq!(seen, key.public());
        (joiner_channel, inviter_channel, key)
    }

    #[test]
    fn both_sides_agree_and_messages_flow_in_order() {
        let (mut j, mut i, _) = pair();
        let cookie = [7u8; 18];
        let m = j.seal(Kind::Cookie, &cookie).unwrap();
        assert_eq!(i.open(&m).unwrap(), (Kind::Cookie, cookie.to_vec()));
        let m = i.seal(Kind::Invitation, b"Name = beta\n").unwrap();
        assert_eq!(
            j.open(&m).unwrap(),
            (Kind::Invitation, b"Name = beta\n".to_vec())
        );
        let _skipped = j.seal(Kind::PublicKey, b"k1").unwrap();
        let second = j.seal(Kind::PublicKey, b"k2").unwrap();
        // Out of order: refused.
        assert_eq!(i.open(&second), Err(ExchangeError::Decrypt));
        // Replayed: refused.
        let (mut j, mut i, _) = pair();
        let m = j.seal(Kind::Cookie, b"x").unwrap();
        assert_eq!(i.open(&m).unwrap().0, Kind::Cookie);
        assert_eq!(i.open(&m), Err(ExchangeError::Decrypt));
    }

    #[test]
    fn a_man_in_the_middle_is_refused() {
        let mut r = rng();
        // The joiner expects the real inviter's key; an impostor answers with its own.
        let real = PrivateKey::generate(&mut r);
        let impostor = PrivateKey::generate(&mut r);
        let joiner = JoinerHandshake::start(&mut r);
        let (_, hello) = inviter_respond(joiner.hello(), &impostor, &mut r).unwrap();
        let e = joiner
            .finish(&hello, &invitation_key_hash(&real.public()))
            .err()
            .unwrap();
        assert!(matches!(e, ExchangeError::KeyMismatch { .. }), "{e}");
        assert!(e.to_string().contains("intercepting"), "{e}");

        // The impostor replays the real inviter's hello (from another session): the
        // signature covers the joiner's ephemeral key, so it fails.
        let other_joiner = JoinerHandshake::start(&mut r);
        let (_, real_hello) = inviter_respond(other_joiner.hello(), &real, &mut r).unwrap();
        let joiner = JoinerHandshake::start(&mut r);
        let e = joiner
            .finish(&real_hello, &invitation_key_hash(&real.public()))
            .err()
            .unwrap();
        assert_eq!(e, ExchangeError::BadSignature);
    }

    #[test]
    fn tampered_sealed_message_fails() {
        let (mut j, mut i, _) = pair();
        let mut m = j.seal(Kind::Cookie, &[1; 18]).unwrap();
        m[3] ^= 1;
        assert_eq!(i.open(&m), Err(ExchangeError::Decrypt));
    }

    #[test]
    fn garbage_hellos_are_refused() {
        let mut r = rng();
        let key = PrivateKey::generate(&mut r);
        assert_eq!(
            inviter_respond(b"0 ?abc 17.1\n", &key, &mut r).err(),
            Some(ExchangeError::NotMeshd)
        );
        let mut hello = JoinerHandshake::start(&mut r).hello().to_vec();
        hello[MAGIC.len()] = 2;
        assert_eq!(
            inviter_respond(&hello, &key, &mut r).err(),
            Some(ExchangeError::Version(2))
        );
        hello[MAGIC.len()] = 1;
        hello.push(0);
        assert!(matches!(
            inviter_respond(&hello, &key, &mut r).err(),
            Some(ExchangeError::Length { .. })
        ));
        // An all-zero ephemeral key is refused (no contributory secret).
        let mut weak = hello[..JOINER_HELLO_LEN].to_vec();
        weak[MAGIC.len() + 1..].fill(0);
        assert_eq!(
            inviter_respond(&weak, &key, &mut r).err(),
            Some(ExchangeError::WeakKey)
        );
        let joiner = JoinerHandshake::start(&mut r);
        assert_eq!(
            joiner.finish(b"0 alpha 17.7", "x").err(),
            Some(ExchangeError::NotMeshd)
        );
        let joiner = JoinerHandshake::start(&mut r);
        assert_eq!(
            joiner.finish(&refusal("no invitations\n"), "x").err(),
            Some(ExchangeError::Refused("no invitations".into()))
        );
    }

    #[test]
    fn frames_carry_length() {
        assert_eq!(frame(b"abc").unwrap(), b"\x00\x03abc");
        assert!(frame(&vec![0u8; MAX_FRAME + 1]).is_err());
        let (mut j, _, _) = pair();
        assert!(j.seal(Kind::Invitation, &vec![0u8; MAX_FRAME]).is_err());
    }
}
