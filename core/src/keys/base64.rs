//! tinc-base64: the little-endian base64 variant tinc 1.1 uses for keys,
//! signatures, invitation hashes and cookies (this module owns it).
//!
//! The alphabet is the usual one (`A–Z a–z 0–9 + /`, or `- _` for 62/63 in
//! the URL-safe variant), but three input bytes are combined as
//! `b0 | b1 << 8 | b2 << 16` and the LOW six bits are emitted first. There is
//! no padding: a one-byte tail gives two characters, a two-byte tail three.
//! So `abc` encodes as `hJ2Y`, not `YWJj`.

use thiserror::Error;

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a tinc-base64 text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Base64Error {
    /// A character outside both alphabets (whitespace included).
    #[error("invalid base64 character {found} at offset {offset}")]
    InvalidChar {
        /// Byte offset of the offending character in the input.
        offset: usize,
        /// Printable description of the character (e.g. `'='` or `byte 0xc3`).
        found: String,
    },
    /// A length no encoder can produce (`len % 4 == 1`).
    #[error("invalid base64 length {0} (a length of 4n+1 characters is impossible)")]
    InvalidLength(usize),
}

/// Encodes `bytes` as tinc-base64 with the standard alphabet (`+`, `/`).
pub fn encode(bytes: &[u8]) -> String {
    encode_with(bytes, STANDARD)
}

/// Encodes `bytes` as tinc-base64 with the URL-safe alphabet (`-`, `_`),
/// as used in invitation URLs and invitation file names.
pub fn encode_urlsafe(bytes: &[u8]) -> String {
    encode_with(bytes, URLSAFE)
}

/// Number of characters [`encode`] produces for `n` input bytes.
pub const fn encoded_len(n: usize) -> usize {
    n / 3 * 4 + if n % 3 == 0 { 0 } else { n % 3 + 1 }
}

fn encode_with(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    for chunk in bytes.chunks(3) {
        let mut triplet = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            triplet |= u32::from(b) << (8 * i);
        }
        for _ in 0..=chunk.len() {
            out.push(char::from(alphabet[(triplet & 0x3f) as usize]));
            triplet >>= 6;
        }
    }
    out
}

/// Decodes tinc-base64 text; both alphabets are accepted, even mixed.
///
/// Like tinc, the unused low-order bits of a 2- or 3-character tail are
/// ignored. Any other character (including whitespace and `=` padding) and
/// lengths of the form `4n+1` are rejected.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    decode_bytes(text.as_bytes())
}

/// Value of one base64 symbol, or `None` if it is in neither alphabet.
fn symbol_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// [`decode`] on raw bytes (lets callers avoid copying secret text into a `String`).
pub(super) fn decode_bytes(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    if text.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength(text.len()));
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for (n, chunk) in text.chunks(4).enumerate() {
        let mut triplet = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = symbol_value(c).ok_or_else(|| Base64Error::InvalidChar {
                offset: n * 4 + i,
                found: if c.is_ascii_graphic() || c == b' ' {
                    format!("{:?}", char::from(c))
                } else {
                    format!("byte {c:#04x}")
                },
            })?;
            triplet |= v << (6 * i);
        }
        // A chunk of k characters carries k-1 whole bytes.
        for i in 0..chunk.len() - 1 {
            out.push((triplet >> (8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn abc_is_hj2y() {
        assert_eq!(encode(b"abc"), "hJ2Y");
        assert_eq!(decode("hJ2Y").unwrap(), b"abc");
    }

    #[test]
    fn tails_and_lengths() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(&[0x00]), "AA");
        assert_eq!(encode(&[0xff]), "/D");
        assert_eq!(encode(&[0xff, 0xff]), "//P");
        assert_eq!(encode(&[0xff, 0xff, 0xff]), "////");
        assert_eq!(encode_urlsafe(&[0xff, 0xff, 0xff]), "____");
        assert_eq!(encode(&[0xfb]), "7D");
        assert_eq!(decode("/D").unwrap(), [0xff]);
        assert_eq!(decode("//P").unwrap(), [0xff, 0xff]);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        for n in 0..100 {
            assert_eq!(encode(&vec![7u8; n]).len(), encoded_len(n));
        }
        assert_eq!(encoded_len(32), 43);
        assert_eq!(encoded_len(64), 86);
        assert_eq!(encoded_len(18), 24);
    }

    #[test]
    fn mixed_alphabets() {
        assert_eq!(decode("-_/+").unwrap(), decode("+/_-").unwrap());
        assert_eq!(decode("__-/").unwrap(), decode("//+/").unwrap());
        assert_eq!(decode("____").unwrap(), [0xff, 0xff, 0xff]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode("A"), Err(Base64Error::InvalidLength(1)));
        assert_eq!(decode("hJ2YA"), Err(Base64Error::InvalidLength(5)));
        assert!(matches!(
            decode("hJ2="),
            Err(Base64Error::InvalidChar { offset: 3, .. })
        ));
        assert!(matches!(
            decode("hJ 2"),
            Err(Base64Error::InvalidChar { offset: 2, .. })
        ));
        assert!(matches!(
            decode("hJ2\n"),
            Err(Base64Error::InvalidChar { offset: 3, .. })
        ));
        assert!(decode("hJé").is_err());
        let e = decode("ab*d").unwrap_err().to_string();
        assert!(e.contains("'*'") && e.contains("offset 2"), "{e}");
    }

    #[test]
    fn ignores_unused_tail_bits_like_tinc() {
        // "/D" and "//" both carry 0xff in their low 8 bits.
        assert_eq!(decode("//").unwrap(), [0xff]);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = encode(&bytes);
            prop_assert_eq!(s.len(), encoded_len(bytes.len()));
            prop_assert_eq!(decode(&s).unwrap(), bytes.clone());
            let u = encode_urlsafe(&bytes);
            prop_assert!(!u.contains('+') && !u.contains('/'));
            prop_assert_eq!(decode(&u).unwrap(), bytes);
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,64}") {
            let _ = decode(&s);
        }
    }
}
