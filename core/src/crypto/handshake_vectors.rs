//! The handshake's known-answer vectors (`proto/vectors/handshake-v1.txt`): computed from
//! fixed seeds and compared with the checked-in file (`MESHD_WRITE_VECTORS=1` rewrites it).

use super::*;

const VECTOR_FILE: &str = include_str!("../../../proto/vectors/handshake-v1.txt");
const INITIATOR_RNG_SEED: [u8; 32] = [0xa1; 32];
const RESPONDER_RNG_SEED: [u8; 32] = [0xb2; 32];
const VEC_INITIATOR_INDEX: u32 = 0x1234_5678;
const VEC_RESPONDER_INDEX: u32 = 0x9abc_def0;
const VEC_PAYLOAD_I2R: &[u8] = b"meshd test vector: alpha to beta";
const VEC_PAYLOAD_R2I: &[u8] = b"pong";

fn compute_vectors() -> Vec<(&'static str, String, &'static str)> {
    let w = world();
    let now = crate::test_clock::start();
    let (mut st, init) = initiate(
        &w.alpha,
        &nm("alpha"),
        &nm("beta"),
        w.beta.public_key(),
        VEC_INITIATOR_INDEX,
        TS,
        &mut ChaCha20Rng::from_seed(INITIATOR_RNG_SEED),
    )
    .unwrap();
    let i_secret = st.ephemeral.as_ref().unwrap().to_bytes();
    let (_, mut rs, resp) = respond(
        &w.beta,
        &nm("beta"),
        &init,
        w.beta_lookup(),
        VEC_RESPONDER_INDEX,
        &mut ChaCha20Rng::from_seed(RESPONDER_RNG_SEED),
        now,
    )
    .unwrap();
    let r_secret = StaticSecret::random_from_rng(ChaCha20Rng::from_seed(RESPONDER_RNG_SEED));
    let mut is = st.complete(&resp, now).unwrap();

    // Independent recomputation of the key schedule.
    let r_pub = HandshakeResponse::parse(&resp).unwrap().ephemeral;
    assert_eq!(PublicKey::from(&r_secret).to_bytes(), r_pub);
    let shared = StaticSecret::from(i_secret)
        .diffie_hellman(&PublicKey::from(r_pub))
        .to_bytes();
    let shared_r = r_secret
        .diffie_hellman(&PublicKey::from(
            HandshakeInit::parse(&init).unwrap().ephemeral,
        ))
        .to_bytes();
    assert_eq!(shared, shared_r);
    let transcript = transcript_hash(&init, &resp);
    let keys = derive_keys(&shared, &transcript).unwrap();

    let d_i2r = seal(&mut is, VEC_PAYLOAD_I2R);
    rs.open(&mut d_i2r.clone(), now).unwrap();
    let d_r2i = seal(&mut rs, VEC_PAYLOAD_R2I);
    // The data packets decrypt with the raw keys (RFC 8439, nonce 0^4 ‖ le64(0)).
    for (pkt, key, pt) in [
        (&d_i2r, &keys.initiator_to_responder, VEC_PAYLOAD_I2R),
        (&d_r2i, &keys.responder_to_initiator, VEC_PAYLOAD_R2I),
    ] {
        let aead = ChaCha20Poly1305::new(key.into());
        let got = aead
            .decrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: &pkt[14..],
                    aad: &pkt[..14],
                },
            )
            .unwrap();
        assert_eq!(got, pt);
    }

    fn h(b: impl AsRef<[u8]>) -> String {
        hex::encode(b)
    }
    vec![
        (
            "initiator_identity_seed",
            h(seq32(0x00)),
            "Ed25519 secret key (RFC 8032 seed) of \"alpha\"",
        ),
        ("initiator_identity_public", h(w.alpha.public_key()), ""),
        (
            "responder_identity_seed",
            h(seq32(0x20)),
            "Ed25519 secret key of \"beta\"",
        ),
        ("responder_identity_public", h(w.beta.public_key()), ""),
        ("initiator_name", h("alpha"), "\"alpha\""),
        ("responder_name", h("beta"), "\"beta\""),
        (
            "initiator_rng_seed",
            h(INITIATOR_RNG_SEED),
            "rand_chacha ChaCha20Rng seed; first 32 output bytes = ephemeral secret",
        ),
        (
            "initiator_ephemeral_secret",
            h(i_secret),
            "X25519 scalar before clamping",
        ),
        (
            "initiator_ephemeral_public",
            h(HandshakeInit::parse(&init).unwrap().ephemeral),
            "",
        ),
        ("responder_rng_seed", h(RESPONDER_RNG_SEED), ""),
        ("responder_ephemeral_secret", h(r_secret.to_bytes()), ""),
        ("responder_ephemeral_public", h(r_pub), ""),
        (
            "initiator_index",
            h(VEC_INITIATOR_INDEX.to_be_bytes()),
            "u32",
        ),
        (
            "responder_index",
            h(VEC_RESPONDER_INDEX.to_be_bytes()),
            "u32",
        ),
        (
            "timestamp_ns",
            h(TS.to_be_bytes()),
            "u64, 1700000000123456789",
        ),
        ("init_packet", h(&init), "HandshakeInit datagram"),
        (
            "init_hash",
            h(Sha256::digest(&init)),
            "SHA-256(init_packet), signed by the responder",
        ),
        ("response_packet", h(&resp), "HandshakeResponse datagram"),
        (
            "shared_secret",
            h(shared),
            "X25519(initiator_ephemeral_secret, responder_ephemeral_public)",
        ),
        (
            "transcript_hash",
            h(transcript),
            "SHA-256(init_packet || response_packet) = HKDF salt",
        ),
        (
            "key_initiator_to_responder",
            h(keys.initiator_to_responder),
            "okm[0..32]",
        ),
        (
            "key_responder_to_initiator",
            h(keys.responder_to_initiator),
            "okm[32..64]",
        ),
        (
            "data_plaintext_i2r",
            h(VEC_PAYLOAD_I2R),
            "\"meshd test vector: alpha to beta\"",
        ),
        (
            "data_packet_i2r",
            h(&d_i2r),
            "first data packet alpha -> beta (counter 0, receiver = responder_index)",
        ),
        ("data_plaintext_r2i", h(VEC_PAYLOAD_R2I), "\"pong\""),
        (
            "data_packet_r2i",
            h(&d_r2i),
            "first data packet beta -> alpha (counter 0, receiver = initiator_index)",
        ),
    ]
}

fn render_vectors(v: &[(&str, String, &str)]) -> String {
    let mut s = String::from(
        "# meshd wire protocol v1: handshake and data test vectors.\n\
         # Format: `key = lowercase hex`; lines starting with '#' are comments.\n\
         # Integers are big-endian. Regenerate with\n\
         #   MESHD_WRITE_VECTORS=1 cargo test -p meshd-core vectors_match_file\n\
         # and review the diff: any change here is a wire-protocol change.\n",
    );
    for (k, val, comment) in v {
        s.push('\n');
        if !comment.is_empty() {
            s.push_str(&format!("# {comment}\n"));
        }
        s.push_str(&format!("{k} = {val}\n"));
    }
    s
}

fn parse_vectors(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key = value");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn vectors_match_file() {
    let computed = compute_vectors();
    // MESHD_WRITE_VECTORS=1 (the same switch as tests/vectors.rs):
    // rewrite the checked-in file, then review the diff.
    if std::env::var_os("MESHD_WRITE_VECTORS").is_some_and(|v| v == "1") {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proto/vectors/handshake-v1.txt"
        );
        std::fs::write(path, render_vectors(&computed)).unwrap();
    }
    let expected = parse_vectors(VECTOR_FILE);
    let got: BTreeMap<String, String> = computed
        .into_iter()
        .map(|(k, v, _)| (k.to_owned(), v))
        .collect();
    for (k, v) in &got {
        assert_eq!(expected.get(k), Some(v), "vector {k} differs");
    }
    assert_eq!(expected.len(), got.len(), "vector file has extra keys");
}
