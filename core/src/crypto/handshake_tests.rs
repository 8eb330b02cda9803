//! Tests of the handshake ([`super`]): round trips, refusals, replay, and the known-answer
//! vectors of `proto/vectors/handshake-v1.txt`.

use super::*;
use crate::crypto::session::DATA_OVERHEAD;
use crate::crypto::testutil::TestSigner;
use crate::crypto::CryptoError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

fn nm(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

const TS: u64 = 1_700_000_000_123_456_789;

struct World {
    alpha: TestSigner,
    beta: TestSigner,
}

fn world() -> World {
    World {
        alpha: TestSigner::from_seed(seq32(0x00)),
        beta: TestSigner::from_seed(seq32(0x20)),
    }
}

fn seq32(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start + i as u8)
}

impl World {
    /// Beta's view of pinned keys.
    fn beta_lookup(&self) -> impl Fn(&str) -> Option<[u8; 32]> {
        let alpha = self.alpha.public_key();
        move |n: &str| (n == "alpha").then_some(alpha)
    }
    fn init(&self, idx: u32, ts: u64, rng: &mut ChaCha20Rng) -> (InitiatorState, Vec<u8>) {
        initiate(
            &self.alpha,
            &nm("alpha"),
            &nm("beta"),
            self.beta.public_key(),
            idx,
            ts,
            rng,
        )
        .unwrap()
    }
}

fn rng(b: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([b; 32])
}

fn seal(s: &mut Session, pt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    s.seal(pt, &mut out).unwrap();
    out
}

#[test]
fn full_handshake_and_data_both_ways() {
    let w = world();
    let now = crate::test_clock::start();
    let (mut st, init) = w.init(7, TS, &mut rng(1));
    assert_eq!(st.sender_index(), 7);
    assert_eq!(
        crate::crypto::packet_type(&init),
        Ok(PacketType::HandshakeInit)
    );
    let (acc, mut rs, resp) = respond(
        &w.beta,
        &nm("beta"),
        &init,
        w.beta_lookup(),
        9,
        &mut rng(2),
        now,
    )
    .unwrap();
    assert_eq!(
        acc,
        AcceptedInit {
            initiator_name: nm("alpha"),
            timestamp_ns: TS,
            initiator_index: 7,
            initiator_key: w.alpha.public_key(),
        }
    );
    assert_eq!(resp.len(), RESPONSE_LEN);
    let mut is = st.complete(&resp, now).unwrap();
    assert!(st.is_completed());
    assert!(is.is_initiator() && !rs.is_initiator());
    assert_eq!((is.local_index(), is.remote_index()), (7, 9));
    assert_eq!((rs.local_index(), rs.remote_index()), (9, 7));
    assert!(is.is_confirmed() && !rs.is_confirmed());

    let mut p = seal(&mut is, b"ping from alpha");
    assert_eq!(crate::crypto::data_receiver_index(&p), Ok(9));
    assert_eq!(rs.open(&mut p, now).unwrap(), b"ping from alpha");
    assert!(rs.is_confirmed());
    for n in 0..5u8 {
        let mut q = seal(&mut rs, &[n; 1420]);
        assert_eq!(q.len(), 1420 + DATA_OVERHEAD);
        assert_eq!(is.open(&mut q, now).unwrap(), &[n; 1420]);
    }
    // Directions use different keys: a packet cannot be reflected back.
    let mut p = seal(&mut is, b"x");
    p[2..6].copy_from_slice(&7u32.to_be_bytes());
    assert!(matches!(
        is.open(&mut p, now),
        Err(CryptoError::Decrypt { .. })
    ));
}

#[test]
fn two_step_responder_api_with_guard() {
    let w = world();
    let now = crate::test_clock::start();
    let mut guard = TimestampGuard::new();
    let (mut st, init) = w.init(1, TS, &mut rng(1));
    let v = verify_init(&nm("beta"), &init, w.beta_lookup()).unwrap();
    assert_eq!(v.initiator_name(), "alpha");
    assert_eq!(v.initiator_index(), 1);
    assert!(guard.accept(v.timestamp_ns()));
    let (_rs, resp) = v.respond(&w.beta, 2, &mut rng(2), now).unwrap();
    st.complete(&resp, now).unwrap();
    // The same init replayed verifies (it is authentic) but the guard refuses it.
    let v = verify_init(&nm("beta"), &init, w.beta_lookup()).unwrap();
    assert!(!guard.accept(v.timestamp_ns()));
    // An older one too; a newer one passes.
    let (_, old) = w.init(3, TS - 1, &mut rng(3));
    let v = verify_init(&nm("beta"), &old, w.beta_lookup()).unwrap();
    assert!(!guard.accept(v.timestamp_ns()));
    let (_, new) = w.init(4, TS + 1, &mut rng(4));
    let v = verify_init(&nm("beta"), &new, w.beta_lookup()).unwrap();
    assert!(guard.accept(v.timestamp_ns()));
    assert_eq!(guard.last(), Some(TS + 1));
}

#[test]
fn timestamp_guard_strictly_increasing() {
    let mut g = TimestampGuard::new();
    assert!(g.would_accept(0));
    assert!(g.accept(10));
    assert!(!g.accept(10));
    assert!(!g.accept(9));
    assert!(!g.would_accept(10));
    assert!(g.accept(11));
    assert!(!g.accept(0));
}

#[test]
fn responder_rejects_unknown_initiator() {
    let w = world();
    let (_, init) = w.init(1, TS, &mut rng(1));
    let err = verify_init(&nm("beta"), &init, |_| None).unwrap_err();
    assert_eq!(err, HandshakeError::UnknownPeer(nm("alpha")));
    assert!(err.to_string().contains("alpha"));
}

#[test]
fn responder_rejects_wrong_responder_name() {
    let w = world();
    let (_, init) = w.init(1, TS, &mut rng(1));
    let err = verify_init(&nm("gamma"), &init, w.beta_lookup()).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::WrongResponder {
            expected: nm("gamma"),
            got: nm("beta")
        }
    );
}

#[test]
fn responder_rejects_init_signed_by_wrong_key() {
    let w = world();
    let mallory = TestSigner::from_seed([0x66; 32]);
    let (_, init) = initiate(
        &mallory,
        &nm("alpha"),
        &nm("beta"),
        w.beta.public_key(),
        1,
        TS,
        &mut rng(1),
    )
    .unwrap();
    assert_eq!(
        verify_init(&nm("beta"), &init, w.beta_lookup()).unwrap_err(),
        HandshakeError::BadSignature {
            peer: "alpha".into()
        }
    );
}

#[test]
fn responder_rejects_invalid_pinned_key() {
    let w = world();
    let (_, init) = w.init(1, TS, &mut rng(1));
    // y = 2 is not on the curve.
    let mut bad = [0u8; 32];
    bad[0] = 2;
    assert_eq!(
        verify_init(&nm("beta"), &init, |_| Some(bad)).unwrap_err(),
        HandshakeError::InvalidPeerKey {
            peer: "alpha".into()
        }
    );
}

#[test]
fn responder_rejects_every_tampered_init_byte() {
    let w = world();
    let (_, init) = w.init(1, TS, &mut rng(1));
    for pos in 0..init.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = init.clone();
            t[pos] ^= flip;
            assert!(
                verify_init(&nm("beta"), &t, w.beta_lookup()).is_err(),
                "flip {flip:#x} at {pos} accepted"
            );
        }
    }
    for len in 0..init.len() {
        assert!(verify_init(&nm("beta"), &init[..len], w.beta_lookup()).is_err());
    }
    let mut long = init.clone();
    long.push(0);
    assert!(matches!(
        verify_init(&nm("beta"), &long, w.beta_lookup()),
        Err(HandshakeError::Datagram(DatagramError::BadLength { .. }))
    ));
}

/// A response for `init` signed by `signer` with arbitrary fields.
fn forge_response(
    signer: &TestSigner,
    init: &[u8],
    sender_index: u32,
    receiver_index: u32,
    ephemeral: [u8; 32],
) -> Vec<u8> {
    let mut r = HandshakeResponse {
        sender_index,
        receiver_index,
        ephemeral,
        signature: [0; 64],
    };
    let h: [u8; 32] = Sha256::digest(init).into();
    r.signature = signer.sign(&resp_signed_message(&h, &r.emit_unsigned()));
    r.emit()
}

#[test]
fn initiator_rejects_wrong_receiver_index() {
    let w = world();
    let now = crate::test_clock::start();
    let (mut st, init) = w.init(0x1111, TS, &mut rng(1));
    let (_, _, resp) = respond(
        &w.beta,
        &nm("beta"),
        &init,
        w.beta_lookup(),
        9,
        &mut rng(2),
        now,
    )
    .unwrap();
    let parsed = HandshakeResponse::parse(&resp).unwrap();
    let wrong = forge_response(&w.beta, &init, 9, 0x2222, parsed.ephemeral);
    assert_eq!(
        st.complete(&wrong, now).unwrap_err(),
        HandshakeError::ReceiverIndexMismatch {
            expected: 0x1111,
            got: 0x2222
        }
    );
    // The genuine response still completes the same state.
    assert!(!st.is_completed());
    st.complete(&resp, now).unwrap();
    assert_eq!(
        st.complete(&resp, now).unwrap_err(),
        HandshakeError::AlreadyCompleted
    );
}

#[test]
fn initiator_rejects_response_signed_by_wrong_key() {
    let w = world();
    let now = crate::test_clock::start();
    let impostor = TestSigner::from_seed([0x77; 32]);
    let (mut st, init) = w.init(5, TS, &mut rng(1));
    // The impostor passes as "beta" to a responder that has its key ...
    let (_, _, resp) = respond(
        &impostor,
        &nm("beta"),
        &init,
        w.beta_lookup(),
        9,
        &mut rng(2),
        now,
    )
    .unwrap();
    // ... but alpha pinned the real beta key.
    assert_eq!(
        st.complete(&resp, now).unwrap_err(),
        HandshakeError::BadSignature {
            peer: "beta".into()
        }
    );
    // Signed by the right key but over another init: also rejected.
    let (_, other_init) = w.init(5, TS + 1, &mut rng(3));
    let (_, _, other_resp) = respond(
        &w.beta,
        &nm("beta"),
        &other_init,
        w.beta_lookup(),
        9,
        &mut rng(2),
        now,
    )
    .unwrap();
    assert!(matches!(
        st.complete(&other_resp, now),
        Err(HandshakeError::BadSignature { .. })
    ));
}

#[test]
fn initiator_rejects_every_tampered_response_byte() {
    let w = world();
    let now = crate::test_clock::start();
    let (mut st, init) = w.init(5, TS, &mut rng(1));
    let (_, _, resp) = respond(
        &w.beta,
        &nm("beta"),
        &init,
        w.beta_lookup(),
        9,
        &mut rng(2),
        now,
    )
    .unwrap();
    for pos in 0..resp.len() {
        let mut t = resp.clone();
        t[pos] ^= 0x01;
        assert!(st.complete(&t, now).is_err(), "flip at {pos} accepted");
    }
    for len in 0..resp.len() {
        assert!(st.complete(&resp[..len], now).is_err());
    }
    st.complete(&resp, now).unwrap();
}

#[test]
fn low_order_ephemerals_rejected() {
    let w = world();
    let now = crate::test_clock::start();
    // Initiator sends the all-zero point, correctly signed.
    let mut m = HandshakeInit {
        sender_index: 1,
        ephemeral: [0; 32],
        timestamp_ns: TS,
        initiator_name: nm("alpha"),
        responder_name: nm("beta"),
        signature: [0; 64],
    };
    m.signature = w.alpha.sign(&init_signed_message(&m.emit_unsigned()));
    let init = m.emit();
    assert_eq!(
        respond(
            &w.beta,
            &nm("beta"),
            &init,
            w.beta_lookup(),
            9,
            &mut rng(2),
            now
        )
        .unwrap_err(),
        HandshakeError::NonContributory {
            peer: "alpha".into()
        }
    );
    // Responder sends the all-zero point, correctly signed.
    let (mut st, init) = w.init(5, TS, &mut rng(1));
    let resp = forge_response(&w.beta, &init, 9, 5, [0; 32]);
    assert_eq!(
        st.complete(&resp, now).unwrap_err(),
        HandshakeError::NonContributory {
            peer: "beta".into()
        }
    );
}

#[test]
fn names_validated() {
    let w = world();
    // Parser rejects bad names even when the packet is otherwise well-formed.
    let (_, init) = w.init(1, TS, &mut rng(1));
    let mut t = init.clone();
    t[INIT_FIXED_LEN + 1] = b'-';
    assert!(matches!(
        HandshakeInit::parse(&t),
        Err(DatagramError::BadName {
            field: "initiator name",
            error: crate::name::NameError::BadChar { ch: '-', at: 0, .. },
        })
    ));
    // A 65-byte initiator name (its length byte could say up to 255) is
    // refused at decode, before any signature check.
    let mut long = init[..INIT_FIXED_LEN].to_vec();
    long.push(65);
    long.extend_from_slice(&[b'a'; 65]);
    long.extend_from_slice(b"\x04beta");
    long.extend_from_slice(&[0; SIG_LEN]);
    assert_eq!(
        HandshakeInit::parse(&long),
        Err(DatagramError::BadName {
            field: "initiator name",
            error: crate::name::NameError::TooLong { len: 65 },
        })
    );
    assert!(matches!(
        verify_init(&nm("beta"), &long, w.beta_lookup()),
        Err(HandshakeError::Datagram(DatagramError::BadName { .. }))
    ));
    let mut t = init.clone();
    t[INIT_FIXED_LEN] = 0;
    assert!(HandshakeInit::parse(&t).is_err());
}

#[test]
fn parse_emit_roundtrip_and_layout() {
    let w = world();
    let (_, init) = w.init(0x0102_0304, TS, &mut rng(1));
    let m = HandshakeInit::parse(&init).unwrap();
    assert_eq!(m.emit(), init);
    assert_eq!(m.buffer_len(), init.len());
    assert_eq!(init.len(), INIT_FIXED_LEN + 1 + 5 + 1 + 4 + 64);
    assert_eq!(&init[..6], &[1, 1, 1, 2, 3, 4]);
    assert_eq!(&init[38..46], &TS.to_be_bytes());
    assert_eq!(&init[46..52], b"\x05alpha");
    assert_eq!(&init[52..57], b"\x04beta");
    let (_, _, resp) = respond(
        &w.beta,
        &nm("beta"),
        &init,
        w.beta_lookup(),
        0x0a0b_0c0d,
        &mut rng(2),
        crate::test_clock::start(),
    )
    .unwrap();
    let r = HandshakeResponse::parse(&resp).unwrap();
    assert_eq!(r.emit(), resp);
    assert_eq!(&resp[..10], &[1, 2, 10, 11, 12, 13, 1, 2, 3, 4]);
    assert!(matches!(
        HandshakeResponse::parse(&init),
        Err(DatagramError::WrongType { .. })
    ));
}

#[test]
fn debug_output_has_no_secrets() {
    let w = world();
    let (st, _) = w.init(1, TS, &mut rng(1));
    let secret = st.ephemeral.as_ref().unwrap().to_bytes();
    let dbg = format!("{st:?}");
    let first = format!("{:?}", &secret[..4]);
    assert!(!dbg.contains(first.trim_end_matches(']')), "{dbg}");
    assert!(!dbg.contains(&hex::encode(secret)));
    assert!(dbg.contains("peer_name"));
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = HandshakeInit::parse(&bytes);
        let _ = HandshakeResponse::parse(&bytes);
        let _ = crate::crypto::packet_type(&bytes);
        let _ = crate::crypto::data_receiver_index(&bytes);
    }

    #[test]
    fn init_roundtrip(
        idx in any::<u32>(), eph in any::<[u8; 32]>(), ts in any::<u64>(),
        a in "[A-Za-z0-9_]{1,64}", b in "[A-Za-z0-9_]{1,64}", sig in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let m = HandshakeInit {
            sender_index: idx, ephemeral: eph, timestamp_ns: ts,
            initiator_name: nm(&a), responder_name: nm(&b),
            signature: sig.try_into().unwrap(),
        };
        let bytes = m.emit();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        prop_assert_eq!(HandshakeInit::parse(&bytes), Ok(m));
    }

    #[test]
    fn response_roundtrip(s in any::<u32>(), r in any::<u32>(), eph in any::<[u8; 32]>(), sig in proptest::collection::vec(any::<u8>(), 64)) {
        let m = HandshakeResponse { sender_index: s, receiver_index: r, ephemeral: eph, signature: sig.try_into().unwrap() };
        prop_assert_eq!(HandshakeResponse::parse(&m.emit()), Ok(m));
    }
}

#[path = "handshake_vectors.rs"]
mod vectors;
