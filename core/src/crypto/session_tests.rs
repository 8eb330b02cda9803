//! Tests of data sessions ([`super`]): seal/open, counters, anti-replay, rekey timing, and
//! byte-identity with the RustCrypto AEAD.

use super::*;

/// A connected (initiator, responder) pair with fixed keys.
pub(crate) fn pair(now: Instant) -> (Session, Session) {
    let k1 = [0x11u8; 32];
    let k2 = [0x22u8; 32];
    let i = Session::new(0xAAAA_0001, 0xBBBB_0002, true, &k1, &k2, now);
    let r = Session::new(0xBBBB_0002, 0xAAAA_0001, false, &k2, &k1, now);
    (i, r)
}

fn seal(s: &mut Session, pt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    s.seal(pt, &mut out).unwrap();
    out
}

#[test]
fn roundtrip_and_layout() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let mut pkt = seal(&mut i, b"hello");
    assert_eq!(pkt.len(), DATA_OVERHEAD + 5);
    assert_eq!(&pkt[..6], &[1, 3, 0xBB, 0xBB, 0x00, 0x02]);
    assert_eq!(&pkt[6..14], &0u64.to_be_bytes());
    assert_eq!(data_receiver_index(&pkt), Ok(0xBBBB_0002));
    assert_eq!(r.open(&mut pkt, t).unwrap(), b"hello");
    let pkt2 = seal(&mut i, b"");
    assert_eq!(&pkt2[6..14], &1u64.to_be_bytes());
    assert_eq!(i.packets_sent(), 2);
    assert_eq!(r.packets_received(), 1);
}

/// The data path's AEAD (ring) and the RustCrypto crate (the join
/// exchange's) produce the same RFC 8439 bytes, both ways.
#[test]
fn wire_identical_to_rustcrypto_chacha20poly1305() {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce as RcNonce, Tag as RcTag};
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    i.send_counter = 0x0102_0304_0506;
    let plain: Vec<u8> = (0..1500u32).map(|n| n as u8).collect();
    let pkt = seal(&mut i, &plain);
    let rc = ChaCha20Poly1305::new(Key::from_slice(&[0x11u8; 32]));
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&0x0102_0304_0506u64.to_le_bytes());
    let mut body = plain.clone();
    let tag = rc
        .encrypt_in_place_detached(
            RcNonce::from_slice(&nonce),
            &pkt[..DATA_HEADER_LEN],
            &mut body,
        )
        .unwrap();
    assert_eq!(&pkt[DATA_HEADER_LEN..pkt.len() - TAG_LEN], &body[..]);
    assert_eq!(&pkt[pkt.len() - TAG_LEN..], tag.as_slice());
    // And a RustCrypto-sealed packet opens here.
    let mut other = pkt[..DATA_HEADER_LEN].to_vec();
    other[6..14].copy_from_slice(&7u64.to_be_bytes());
    nonce[4..].copy_from_slice(&7u64.to_le_bytes());
    let mut body = b"frame bytes".to_vec();
    let tag: RcTag = rc
        .encrypt_in_place_detached(RcNonce::from_slice(&nonce), &other, &mut body)
        .unwrap();
    other.extend_from_slice(&body);
    other.extend_from_slice(&tag);
    assert_eq!(r.open(&mut other, t).unwrap(), b"frame bytes");
}

#[test]
fn responder_confirmed_on_first_open() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    assert!(i.is_confirmed());
    assert!(!r.is_confirmed());
    let mut out = Vec::new();
    assert_eq!(
        r.seal(b"x", &mut out),
        Err(CryptoError::NotConfirmed(0xBBBB_0002))
    );
    // A forged packet does not confirm.
    let mut bad = seal(&mut i, b"ping");
    bad[20] ^= 1;
    assert!(r.open(&mut bad, t).is_err());
    assert!(!r.is_confirmed());
    let mut good = seal(&mut i, b"ping");
    r.open(&mut good, t).unwrap();
    assert!(r.is_confirmed());
    let mut back = seal(&mut r, b"pong");
    assert_eq!(i.open(&mut back, t).unwrap(), b"pong");
}

#[test]
fn tampering_any_byte_fails() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let pkt = seal(&mut i, b"some payload bytes");
    for pos in 0..pkt.len() {
        let mut p = pkt.clone();
        p[pos] ^= 0x01;
        let flipped = p.clone();
        let res = r.open(&mut p, t).map(<[u8]>::to_vec);
        assert!(res.is_err(), "flip at {pos} accepted");
        if pos >= 6 {
            // counter, ciphertext or tag: authentication must catch it
            assert!(
                matches!(res, Err(CryptoError::Decrypt { .. })),
                "{pos}: {res:?}"
            );
        }
        // Header and tag untouched; the body unchanged, or zeroed after a
        // failed tag check (never left as plaintext).
        let body = DATA_HEADER_LEN..p.len() - TAG_LEN;
        assert_eq!(p[..body.start], flipped[..body.start], "header modified");
        assert_eq!(p[body.end..], flipped[body.end..], "tag modified");
        assert!(
            p[body.clone()] == flipped[body.clone()] || p[body].iter().all(|b| *b == 0),
            "body left as plaintext on failure"
        );
    }
    let mut p = pkt.clone();
    assert_eq!(r.open(&mut p, t).unwrap(), b"some payload bytes");
}

#[test]
fn replay_rejected_reorder_accepted() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let pkts: Vec<Vec<u8>> = (0..10u8).map(|n| seal(&mut i, &[n])).collect();
    for n in [3usize, 0, 9, 1, 2, 8, 4, 7, 5, 6] {
        let mut p = pkts[n].clone();
        assert_eq!(r.open(&mut p, t).unwrap(), &[n as u8]);
    }
    for n in [0usize, 5, 9] {
        let mut p = pkts[n].clone();
        assert_eq!(
            r.open(&mut p, t),
            Err(CryptoError::Replay {
                receiver: 0xBBBB_0002,
                counter: n as u64
            })
        );
    }
    assert_eq!(r.packets_received(), 10);
}

#[test]
fn too_old_rejected() {
    let t = crate::test_clock::start();
    let (i, r) = pair(t);
    let policy = SessionPolicy {
        replay_window: 64,
        ..SessionPolicy::default()
    };
    let (mut i, mut r) = (i.with_policy(policy), r.with_policy(policy));
    let first = seal(&mut i, b"old");
    let mut last = Vec::new();
    for _ in 0..64 {
        last = seal(&mut i, b"new");
    }
    r.open(&mut last, t).unwrap(); // counter 64
    let mut p = first.clone();
    assert!(matches!(
        r.open(&mut p, t),
        Err(CryptoError::Replay { counter: 0, .. })
    ));
}

#[test]
fn truncated_datagrams_rejected() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let pkt = seal(&mut i, b"");
    assert_eq!(pkt.len(), 30);
    for len in 0..30 {
        let mut p = pkt[..len].to_vec();
        assert!(r.open(&mut p, t).is_err(), "len {len}");
        assert!(data_receiver_index(&pkt[..len]).is_err(), "len {len}");
    }
    let mut p = pkt.clone();
    assert_eq!(r.open(&mut p, t).unwrap(), b"");
}

#[test]
fn wrong_receiver_and_type() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let mut p = seal(&mut i, b"x");
    assert!(matches!(
        i.open(&mut p.clone(), t),
        Err(CryptoError::WrongReceiver { .. })
    ));
    p[1] = 1;
    assert!(matches!(
        r.open(&mut p, t),
        Err(CryptoError::Datagram(DatagramError::WrongType { .. }))
    ));
}

#[test]
fn rekey_by_packets() {
    let t = crate::test_clock::start();
    let (i, r) = pair(t);
    let policy = SessionPolicy {
        rekey_after_packets: 3,
        ..SessionPolicy::default()
    };
    let (mut i, mut r) = (i.with_policy(policy), r.with_policy(policy));
    for _ in 0..3 {
        assert!(!i.needs_rekey(t));
        assert!(!i.should_initiate_rekey(t));
        let mut p = seal(&mut i, b"x");
        r.open(&mut p, t).unwrap();
    }
    assert!(i.needs_rekey(t));
    assert!(i.should_initiate_rekey(t));
    assert!(!r.needs_rekey(t), "receiving does not count");
    for _ in 0..3 {
        seal(&mut r, b"y");
    }
    assert!(r.needs_rekey(t));
    assert!(r.should_initiate_rekey(t));
}

#[test]
fn rekey_and_expiry_by_time() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let p = *i.policy();
    let before = t + p.rekey_after_time - Duration::from_millis(1);
    let at = t + p.rekey_after_time;
    assert!(!i.needs_rekey(before) && !r.needs_rekey(before));
    assert!(i.needs_rekey(at) && r.needs_rekey(at));
    assert!(i.should_initiate_rekey(at));
    assert!(
        !r.should_initiate_rekey(at),
        "responder never rekeys by time"
    );
    // Still usable until reject_after_time.
    let mut pkt = seal(&mut i, b"late");
    assert!(!r.is_expired(at));
    let dead = t + p.reject_after_time;
    assert!(r.is_expired(dead));
    assert_eq!(
        r.open(&mut pkt.clone(), dead),
        Err(CryptoError::Expired(0xBBBB_0002))
    );
    assert_eq!(r.open(&mut pkt, at).unwrap(), b"late");
}

#[test]
fn counter_exhaustion() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    i.send_counter = REJECT_AFTER_MESSAGES - 1;
    let mut p = seal(&mut i, b"last");
    assert_eq!(
        i.seal(b"more", &mut Vec::new()),
        Err(CryptoError::CounterExhausted(REJECT_AFTER_MESSAGES))
    );
    assert!(i.is_expired(t));
    assert_eq!(r.open(&mut p, t).unwrap(), b"last");
    // A (forged) header claiming a counter beyond the limit is refused early.
    let mut q = p.clone();
    q[6..14].copy_from_slice(&REJECT_AFTER_MESSAGES.to_be_bytes());
    assert_eq!(
        r.open(&mut q, t),
        Err(CryptoError::CounterExhausted(REJECT_AFTER_MESSAGES))
    );
}

/// Found by `rekey_proptests`: with `RekeyPackets` at or above the
/// counter limit (the config accepts any u64) the packet rule never fired
/// and a busy session ran out of counters without asking for a rekey.
#[test]
fn rekey_is_asked_for_before_the_counter_limit_whatever_the_policy() {
    let t = crate::test_clock::start();
    let (i, _) = pair(t);
    let policy = SessionPolicy {
        rekey_after_packets: u64::MAX,
        ..SessionPolicy::default()
    };
    let mut i = i.with_policy(policy);
    i.send_counter = REJECT_AFTER_MESSAGES - REKEY_MARGIN_PACKETS - 1;
    assert!(!i.needs_rekey(t));
    seal(&mut i, b"x");
    assert!(i.needs_rekey(t) && i.should_initiate_rekey(t));
    assert!(!i.is_expired(t), "still able to send while the rekey runs");
}

#[test]
fn debug_has_no_keys() {
    let (i, _) = pair(crate::test_clock::start());
    let s = format!("{i:?}");
    assert!(s.contains("0xbbbb0002"));
    assert!(
        !s.contains("11, 17") && !s.to_lowercase().contains("key"),
        "{s}"
    );
}

#[test]
fn seal_reuses_buffer() {
    let t = crate::test_clock::start();
    let (mut i, mut r) = pair(t);
    let mut out = Vec::with_capacity(2048);
    let ptr = out.as_ptr();
    for n in 0..100u32 {
        i.seal(&n.to_be_bytes(), &mut out).unwrap();
        assert_eq!(out.as_ptr(), ptr);
        assert_eq!(r.open(&mut out, t).unwrap(), &n.to_be_bytes());
    }
}
