//! Tests of the keys module, including known-answer tests against real tinc 1.1 output.

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha512};

use super::*;
use crate::name::NodeName;

const ALPHA_PRIV: &str = include_str!("../../../proto/vectors/tinc11/alpha.ed25519_key.priv");
const ALPHA_HOST: &str = include_str!("../../../proto/vectors/tinc11/alpha.host");
const ALPHA_SIGNED: &str = include_str!("../../../proto/vectors/tinc11/alpha.signed.txt");
const INVITATION_PRIV: &str =
    include_str!("../../../proto/vectors/tinc11/invitation.ed25519_key.priv");
const INVITATION_URL: &str = include_str!("../../../proto/vectors/tinc11/invitation.url");
const INVITATION_FILENAME: &str = include_str!("../../../proto/vectors/tinc11/invitation.filename");

fn alpha_host_key() -> PublicKey {
    let value = ALPHA_HOST
        .trim()
        .strip_prefix("Ed25519PublicKey = ")
        .unwrap();
    PublicKey::from_tinc_base64(value).unwrap()
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x6d65_7368)
}

#[test]
fn kat_alpha_private_key_matches_host_file() {
    let key = PrivateKey::from_pem_str(ALPHA_PRIV).unwrap();
    assert_eq!(key.public(), alpha_host_key());
    assert_eq!(format!("Ed25519PublicKey = {}\n", key.public()), ALPHA_HOST);
}

#[test]
fn kat_private_key_files_round_trip_byte_for_byte() {
    for text in [ALPHA_PRIV, INVITATION_PRIV] {
        let key = PrivateKey::from_pem_str(text).unwrap();
        assert_eq!(key.to_pem_string(), text);
    }
}

#[test]
fn kat_alpha_signature_matches_tinc_sign() {
    let key = PrivateKey::from_pem_str(ALPHA_PRIV).unwrap();
    let sig = key.sign(b"hello meshd\n alpha 1795313705");
    let first_line = ALPHA_SIGNED.lines().next().unwrap();
    let expected = first_line.rsplit(' ').next().unwrap();
    assert_eq!(base64::encode(&sig), expected);
    assert!(alpha_host_key().verify(b"hello meshd\n alpha 1795313705", &sig));
    assert!(!alpha_host_key().verify(b"hello meshd\n alpha 1795313706", &sig));
    // The whole document, byte for byte.
    assert_eq!(
        sign_document(
            &key,
            &NodeName::new("alpha").unwrap(),
            1_795_313_705,
            b"hello meshd\n"
        ),
        ALPHA_SIGNED.as_bytes()
    );
}

#[test]
fn kat_verify_document_accepts_tinc_output_and_rejects_tampering() {
    let host = alpha_host_key();
    let lookup = |name: &str| (name == "alpha").then_some(host);
    let (signer, time, data) = verify_document(ALPHA_SIGNED.as_bytes(), lookup).unwrap();
    assert_eq!(signer, "alpha");
    assert_eq!(time, 1_795_313_705);
    assert_eq!(data, b"hello meshd\n");

    // One flipped data byte.
    let mut bad = ALPHA_SIGNED.as_bytes().to_vec();
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    assert!(matches!(
        verify_document(&bad, lookup),
        Err(KeyError::BadSignature { .. })
    ));
    // A changed time.
    let bad = ALPHA_SIGNED.replace("1795313705", "1795313706");
    assert!(matches!(
        verify_document(bad.as_bytes(), lookup),
        Err(KeyError::BadSignature { .. })
    ));
    // Unknown signer / wrong key.
    assert!(matches!(
        verify_document(ALPHA_SIGNED.as_bytes(), |_| None),
        Err(KeyError::UnknownSigner { .. })
    ));
    let other = PrivateKey::generate(&mut rng()).public();
    assert!(matches!(
        verify_document(ALPHA_SIGNED.as_bytes(), |_| Some(other)),
        Err(KeyError::BadSignature { .. })
    ));
}

#[test]
fn verify_document_rejects_malformed_headers() {
    let host = alpha_host_key();
    let lookup = |_: &str| Some(host);
    let sig = ALPHA_SIGNED
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap();
    for doc in [
        String::new(),
        "Signature = alpha 1795313705".to_string(),
        format!("Signature alpha 1795313705 {sig}\nhello meshd\n"),
        "Signature = alpha 1795313705\nhello meshd\n".to_string(),
        format!("Signature = alpha 1795313705 {sig} extra\nhello meshd\n"),
        format!("Signature = alpha 0 {sig}\nhello meshd\n"),
        format!("Signature = alpha -5 {sig}\nhello meshd\n"),
        format!("Signature = alpha x {sig}\nhello meshd\n"),
        format!("Signature = alpha 1795313705 {}\nhello meshd\n", &sig[1..]),
        format!("Signature = alpha 1795313705 {}*\nhello meshd\n", &sig[1..]),
        "\u{0}\u{ff}garbage\n".to_string(),
    ] {
        assert!(
            matches!(
                verify_document(doc.as_bytes(), lookup),
                Err(KeyError::MalformedDocument { .. })
            ),
            "{doc:?}"
        );
    }
    // The signer is a NodeName: tinc's characters, at most 64 bytes.
    for (signer, why) in [
        ("al-pha", "'-'"),
        (&"a".repeat(65)[..], "too long (65 bytes, at most 64)"),
    ] {
        let doc = format!("Signature = {signer} 1795313705 {sig}\nhello meshd\n");
        match verify_document(doc.as_bytes(), lookup) {
            Err(e @ KeyError::BadSignerName { .. }) => {
                assert!(e.to_string().contains(why), "{e}")
            }
            other => panic!("{signer}: {other:?}"),
        }
    }
    // tinc's sscanf is lenient about spacing; so are we, and CRLF is fine.
    let relaxed = ALPHA_SIGNED.replacen("Signature = ", "Signature=  ", 1);
    assert!(verify_document(relaxed.as_bytes(), lookup).is_ok());
    let crlf = ALPHA_SIGNED.replacen('\n', "\r\n", 1);
    assert!(verify_document(crlf.as_bytes(), lookup).is_ok());
}

#[test]
fn sign_and_verify_document_round_trip() {
    let key = PrivateKey::generate(&mut rng());
    let data = b"\x00binary\ndata\xff without trailing newline";
    let doc = sign_document(&key, &NodeName::new("node_1").unwrap(), 42, data);
    let (signer, time, out) = verify_document(&doc, |_| Some(key.public())).unwrap();
    assert_eq!(
        (signer.as_str(), time, out.as_slice()),
        ("node_1", 42, &data[..])
    );
    let empty = sign_document(&key, &NodeName::new("n").unwrap(), 1, b"");
    assert_eq!(
        verify_document(&empty, |_| Some(key.public())).unwrap().2,
        b""
    );
}

#[test]
fn kat_invitation_url_and_file_name() {
    let key = PrivateKey::from_pem_str(INVITATION_PRIV).unwrap();
    let pubkey = key.public();
    let url = INVITATION_URL.trim();
    let (_, slug) = url.rsplit_once('/').unwrap();
    assert_eq!(slug.len(), 48);
    let (hash, cookie_text) = slug.split_at(24);

    // Spelled out once, then via the helpers.
    let digest = Sha512::digest(pubkey.to_tinc_base64().as_bytes());
    assert_eq!(base64::encode_urlsafe(&digest[..18]), hash);
    assert_eq!(invitation_key_hash(&pubkey), hash);

    let cookie = base64::decode(cookie_text).unwrap();
    assert_eq!(cookie.len(), 18);
    let mut h = Sha512::new();
    h.update(&cookie);
    h.update(pubkey.to_tinc_base64().as_bytes());
    let name = base64::encode_urlsafe(&h.finalize()[..18]);
    assert_eq!(name, INVITATION_FILENAME.trim());
    assert_eq!(
        invitation_file_name(&cookie, &pubkey),
        INVITATION_FILENAME.trim()
    );
    assert_ne!(pubkey, alpha_host_key());
}

#[test]
fn base64_abc() {
    assert_eq!(base64::encode(b"abc"), "hJ2Y");
}

#[test]
fn generate_matches_rfc8032_seed_expansion() {
    // RFC 8032 test 1: seed 9d61b1..., public key d75a98...
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let key = PrivateKey::from_seed(&seed);
    assert_eq!(
        hex::encode(key.public().as_bytes()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(
        hex::encode(key.sign(b"")),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    let reparsed = PrivateKey::from_pem_str(&key.to_pem_string()).unwrap();
    assert_eq!(reparsed.to_pem_string(), key.to_pem_string());
}

#[test]
fn truncated_or_corrupt_private_keys_are_errors() {
    for i in 0..ALPHA_PRIV.len() - 1 {
        assert!(
            PrivateKey::from_pem_str(&ALPHA_PRIV[..i]).is_err(),
            "prefix of {i} bytes accepted"
        );
    }
    // Without the final newline it is still complete.
    assert!(PrivateKey::from_pem_str(&ALPHA_PRIV[..ALPHA_PRIV.len() - 1]).is_ok());

    // Any changed base64 character is detected, except in the nonce prefix
    // (bytes 32..64, chars 43..=84): nothing ties it to the rest once the
    // seed is gone, so a changed prefix is a different but valid key.
    let lines: Vec<&str> = ALPHA_PRIV.lines().collect();
    let b64: String = lines[1..3].concat();
    for pos in (0..b64.len()).filter(|p| !(43..=84).contains(p)) {
        let mut chars: Vec<char> = b64.chars().collect();
        chars[pos] = if chars[pos] == 'A' { 'B' } else { 'A' };
        let s: String = chars.into_iter().collect();
        let text = format!("{}\n{}\n{}\n", lines[0], s, lines[3]);
        assert!(PrivateKey::from_pem_str(&text).is_err(), "pos {pos}");
    }

    // A mismatching public half gives the documented message.
    let key = PrivateKey::from_pem_str(ALPHA_PRIV).unwrap();
    let other = PrivateKey::generate(&mut rng());
    let mut bytes = base64::decode(&b64).unwrap();
    bytes[64..].copy_from_slice(other.public().as_bytes());
    let text = pem::write_pem(PRIVATE_KEY_PEM_LABEL, &bytes);
    let err = PrivateKey::from_pem_str(&text).unwrap_err();
    assert!(matches!(err, KeyError::PublicKeyMismatch));
    assert_eq!(err.to_string(), "public key does not match private key");
    drop(key);

    // Wrong sizes.
    for len in [0, 32, 64, 95, 97, 144] {
        let text = pem::write_pem(PRIVATE_KEY_PEM_LABEL, &vec![0x40; len]);
        assert!(
            matches!(
                PrivateKey::from_pem_str(&text),
                Err(KeyError::Length { actual, .. }) if actual == len
            ),
            "{len}"
        );
    }

    // Unclamped scalar.
    let mut unclamped = bytes.clone();
    unclamped[0] |= 1;
    let text = pem::write_pem(PRIVATE_KEY_PEM_LABEL, &unclamped);
    assert!(matches!(
        PrivateKey::from_pem_str(&text),
        Err(KeyError::NotClamped)
    ));

    // A public-key block is not a private key.
    assert!(PrivateKey::from_pem_str(&key_public_pem()).is_err());
}

fn key_public_pem() -> String {
    alpha_host_key().to_pem_string()
}

#[test]
fn private_key_file_with_leading_comments_and_any_line_split() {
    let lines: Vec<&str> = ALPHA_PRIV.lines().collect();
    let b64: String = lines[1..3].concat();
    let text = format!(
        "# comment\n\n{}\r\n{}\n{}\n\n{}\r\n{}",
        lines[0],
        &b64[..3],
        &b64[3..101],
        &b64[101..],
        lines[3]
    );
    let key = PrivateKey::from_pem_str(&text).unwrap();
    assert_eq!(key.public(), alpha_host_key());
}

#[test]
fn debug_does_not_leak_secrets() {
    let key = PrivateKey::from_pem_str(ALPHA_PRIV).unwrap();
    let dbg = format!("{key:?} {key:#?}");
    assert!(dbg.contains(&alpha_host_key().to_tinc_base64()));
    let secret = base64::decode(&ALPHA_PRIV.lines().collect::<Vec<_>>()[1..3].concat()).unwrap();
    for window in [&secret[..32], &secret[32..64]] {
        assert!(!dbg.contains(&hex::encode(window)));
        assert!(!dbg.contains(&base64::encode(window)));
        assert!(!dbg.contains(&format!("{window:?}")));
    }
    // Nor a prefix of the secret lines.
    assert!(!dbg.contains(&ALPHA_PRIV.lines().nth(1).unwrap()[..16]));
}

#[test]
fn public_key_parsing() {
    let host = alpha_host_key();
    let text = host.to_tinc_base64();
    assert_eq!(text.len(), 43);
    assert_eq!(host.to_string(), text);
    assert_eq!(text.parse::<PublicKey>().unwrap(), host);
    assert_eq!(
        PublicKey::from_tinc_base64(&format!(" {text}\n")).unwrap(),
        host
    );
    assert_eq!(PublicKey::from_bytes(*host.as_bytes()), host);
    assert_eq!(format!("{host:?}"), format!("PublicKey({text})"));

    assert!(matches!(
        PublicKey::from_tinc_base64(&text[..42]),
        Err(KeyError::Length {
            expected: 32,
            actual: 31,
            ..
        })
    ));
    assert!(matches!(
        PublicKey::from_tinc_base64(&format!("{text}A")),
        Err(KeyError::Length { actual: 33, .. })
    ));
    assert!(matches!(
        PublicKey::from_tinc_base64(&text[..41]),
        Err(KeyError::Base64 { .. })
    ));
    assert!(matches!(
        PublicKey::from_tinc_base64(&format!("{}=", &text[..42])),
        Err(KeyError::Base64 { .. })
    ));
    assert!(PublicKey::from_tinc_base64("").is_err());

    // Some y coordinates have no point; those must be rejected.
    let mut invalid = 0;
    for y in 0..32u8 {
        let mut b = [0u8; 32];
        b[0] = y;
        let k = PublicKey::from_bytes(b);
        match PublicKey::from_tinc_base64(&k.to_tinc_base64()) {
            Ok(_) => assert!(k.is_valid_point()),
            Err(e) => {
                assert!(matches!(e, KeyError::InvalidPoint { .. }), "{e}");
                assert!(!k.is_valid_point());
                assert!(!k.verify(b"x", &[0; 64]));
                invalid += 1;
            }
        }
    }
    assert!(invalid > 0);
}

#[test]
fn public_key_pem_block() {
    let host = alpha_host_key();
    let pem = host.to_pem_string();
    assert_eq!(
        pem,
        format!(
            "-----BEGIN ED25519 PUBLIC KEY-----\n{}\n-----END ED25519 PUBLIC KEY-----\n",
            host.to_tinc_base64()
        )
    );
    // Inside a host file, after variables and an RSA block.
    let host_file = format!(
        "Address = 192.0.2.1\n-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA\n-----END RSA PUBLIC KEY-----\n{pem}Port = 655\n"
    );
    assert_eq!(PublicKey::from_pem_str(&host_file).unwrap(), host);
    assert!(matches!(
        PublicKey::from_pem_str(ALPHA_PRIV),
        Err(KeyError::MissingPemBegin { .. })
    ));
    let long = pem::write_pem(PUBLIC_KEY_PEM_LABEL, &[1u8; 33]);
    assert!(matches!(
        PublicKey::from_pem_str(&long),
        Err(KeyError::Length { actual: 33, .. })
    ));
}

proptest! {
    #[test]
    fn garbage_pem_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(PrivateKey::from_pem_str(&text).is_err());
        let _ = PublicKey::from_pem_str(&text);
        let _ = verify_document(&bytes, |_| None);
    }

    #[test]
    fn garbage_inside_pem_block_is_an_error(body in "[A-Za-z0-9+/_\\- \r\n=]{0,200}") {
        let text = format!("-----BEGIN ED25519 PRIVATE KEY-----\n{body}\n-----END ED25519 PRIVATE KEY-----\n");
        prop_assert!(PrivateKey::from_pem_str(&text).is_err());
    }
}
