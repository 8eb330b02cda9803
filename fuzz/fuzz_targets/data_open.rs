//! `Session::open` on arbitrary datagrams, for a session pair made by a real
//! handshake.
//!
//! Input byte 0 selects the mode:
//! * bit 7 clear: "forged" mode. The rest of the input is opened by one side
//!   of a fixed session pair. It must never succeed (nobody holds the keys but
//!   the harness) and, on error, must change neither the session nor the
//!   buffer (except the documented zeroing of the ciphertext part after a
//!   failed tag check). Bit 0 picks the side, bit 1 forces the first 6 bytes
//!   to a valid version/type/receiver index, bits 2-3 pick the clock.
//! * bit 7 set: "genuine" mode. A fresh pair seals fuzzer-chosen plaintexts in
//!   both directions and delivers them in a fuzzer-chosen order, some with a
//!   flipped byte; every result is checked against a model of the anti-replay
//!   window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::crypto::{
    data_receiver_index, initiate, respond, CryptoError, Session, SessionPolicy, DATA_HEADER_LEN,
    DATA_OVERHEAD, TAG_LEN,
};
use meshd::keys::PrivateKey;
use meshd::name::NodeName;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const INITIATOR_INDEX: u32 = 0x1111_2222;
const RESPONDER_INDEX: u32 = 0x3333_4444;
const TIMESTAMP_NS: u64 = 1_800_000_000_000_000_000;

struct Identities {
    alpha: PrivateKey,
    beta: PrivateKey,
}

fn identities() -> &'static Identities {
    static IDS: OnceLock<Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(0x6d65_7368_6466_757a);
        Identities {
            alpha: PrivateKey::generate(&mut rng),
            beta: PrivateKey::generate(&mut rng),
        }
    })
}

/// A real handshake between "alpha" (initiator) and "beta" (responder).
fn handshake(now: Instant) -> (Session, Session) {
    let ids = identities();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let alpha = NodeName::new("alpha").expect("a valid node name");
    let beta = NodeName::new("beta").expect("a valid node name");
    let (mut state, init) = initiate(
        &ids.alpha,
        &alpha,
        &beta,
        *ids.beta.public().as_bytes(),
        INITIATOR_INDEX,
        TIMESTAMP_NS,
        &mut rng,
    )
    .expect("initiate");
    let alpha_key = *ids.alpha.public().as_bytes();
    let (_accepted, responder, response) = respond(
        &ids.beta,
        &beta,
        &init,
        |name| (name == "alpha").then_some(alpha_key),
        RESPONDER_INDEX,
        &mut rng,
        now,
    )
    .expect("respond");
    let initiator = state.complete(&response, now).expect("complete");
    (initiator, responder)
}

struct Fixed {
    created: Instant,
    initiator: Session,
    responder: Session,
}

fn fixed() -> &'static Mutex<Fixed> {
    static FIXED: OnceLock<Mutex<Fixed>> = OnceLock::new();
    FIXED.get_or_init(|| {
        let created = Instant::now();
        let (initiator, responder) = handshake(created);
        Mutex::new(Fixed {
            created,
            initiator,
            responder,
        })
    })
}

/// What `Session::open` documents for a failure: the buffer is unchanged,
/// except that after a failed tag check (`decrypt_failed`) the ciphertext
/// part may be zeroed; header and tag are never touched and no plaintext is
/// ever left behind.
fn check_failed_open(buf: &[u8], before: &[u8], decrypt_failed: bool) {
    assert_eq!(buf.len(), before.len());
    if buf == before {
        return;
    }
    assert!(decrypt_failed, "failed open modified the buffer");
    let body = DATA_HEADER_LEN..before.len() - TAG_LEN;
    assert_eq!(
        buf[..body.start],
        before[..body.start],
        "failed open modified the header"
    );
    assert_eq!(
        buf[body.end..],
        before[body.end..],
        "failed open modified the tag"
    );
    assert!(
        buf[body].iter().all(|b| *b == 0),
        "failed open changed the body without zeroing it"
    );
}

fn forged(flags: u8, rest: &[u8]) {
    let mut guard = fixed().lock().unwrap_or_else(|e| e.into_inner());
    let fixed = &mut *guard;
    let session = if flags & 1 == 0 {
        &mut fixed.responder
    } else {
        &mut fixed.initiator
    };
    let mut buf = rest.to_vec();
    if flags & 2 != 0 && buf.len() >= 6 {
        buf[0] = meshd::crypto::PROTOCOL_VERSION;
        buf[1] = 3;
        buf[2..6].copy_from_slice(&session.local_index().to_be_bytes());
    }
    let now = fixed.created
        + match (flags >> 2) & 3 {
            0 => Duration::ZERO,
            1 => Duration::from_secs(179),
            2 => Duration::from_secs(180),
            _ => Duration::from_secs(100_000),
        };
    let before = buf.clone();
    let received = session.packets_received();
    let confirmed = session.is_confirmed();
    let framing = data_receiver_index(&before);
    let result = session.open(&mut buf, now).map(<[u8]>::to_vec);
    let decrypt_failed = matches!(result, Err(CryptoError::Decrypt { .. }));
    match result {
        Ok(plain) => panic!("forged datagram opened ({} plaintext bytes)", plain.len()),
        Err(CryptoError::Datagram(_)) => assert!(framing.is_err()),
        Err(CryptoError::WrongReceiver { expected, got }) => {
            assert_eq!(expected, session.local_index());
            assert_eq!(framing, Ok(got));
            assert_ne!(got, expected);
        }
        Err(_) => assert_eq!(framing, Ok(session.local_index())),
    }
    check_failed_open(&buf, &before, decrypt_failed);
    assert_eq!(session.packets_received(), received);
    assert_eq!(session.is_confirmed(), confirmed);
}

/// Reference model of the anti-replay window.
struct ReplayModel {
    window: u64,
    seen: HashSet<u64>,
    max: Option<u64>,
}

impl ReplayModel {
    fn accepts(&self, counter: u64) -> bool {
        match self.max {
            None => true,
            Some(max) if counter > max => true,
            Some(max) => max - counter < self.window && !self.seen.contains(&counter),
        }
    }
    fn mark(&mut self, counter: u64) {
        self.seen.insert(counter);
        self.max = Some(self.max.map_or(counter, |m| m.max(counter)));
    }
}

struct Sealed {
    /// true: initiator -> responder.
    forward: bool,
    counter: u64,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
}

fn genuine(flags: u8, rest: &[u8]) {
    let mut input = rest.iter().copied();
    let mut next = move || input.next();
    let created = Instant::now();
    let (initiator, responder) = handshake(created);
    let window = u64::from(flags & 0x3f) + 1;
    let policy = SessionPolicy {
        replay_window: window,
        ..SessionPolicy::default()
    };
    // sessions[0] is the initiator, sessions[1] the responder; models[i] is
    // what sessions[i] has received.
    let mut sessions = [initiator.with_policy(policy), responder.with_policy(policy)];
    let mut models = [0, 1].map(|_| ReplayModel {
        window,
        seen: HashSet::new(),
        max: None,
    });
    let mut sealed: Vec<Sealed> = Vec::new();
    let mut out = Vec::new();

    // Ops: 00LLLLLL seal L bytes initiator->responder, 01LLLLLL the other
    // way, 10IIIIII deliver packet I, 11IIIIII deliver packet I with the
    // byte at position (next byte) xor-ed with (next byte).
    while let Some(op) = next() {
        let arg = usize::from(op & 0x3f);
        if op & 0x80 == 0 {
            let forward = op & 0x40 == 0;
            let plaintext: Vec<u8> = (0..arg).map_while(|_| next()).collect();
            let sender = &mut sessions[usize::from(!forward)];
            let counter = sender.packets_sent();
            match sender.seal(&plaintext, &mut out) {
                Ok(()) => {
                    assert!(sender.is_confirmed());
                    assert_eq!(out.len(), plaintext.len() + DATA_OVERHEAD);
                    assert_eq!(sender.packets_sent(), counter + 1);
                    assert_eq!(data_receiver_index(&out), Ok(sender.remote_index()));
                    assert_eq!(&out[6..14], &counter.to_be_bytes());
                    if sealed.len() < 64 {
                        sealed.push(Sealed {
                            forward,
                            counter,
                            bytes: out.clone(),
                            plaintext,
                        });
                    }
                }
                Err(CryptoError::NotConfirmed(_)) => {
                    assert!(!forward && !sender.is_confirmed());
                    assert_eq!(sender.packets_sent(), counter);
                }
                Err(e) => panic!("seal failed: {e}"),
            }
            continue;
        }
        if sealed.is_empty() {
            continue;
        }
        let packet = &sealed[arg % sealed.len()];
        let slot = usize::from(packet.forward);
        let mut buf = packet.bytes.clone();
        let tamper = op & 0x40 != 0;
        if tamper {
            let pos = usize::from(next().unwrap_or(0)) % buf.len();
            buf[pos] ^= next().unwrap_or(1).max(1);
        }
        let before = buf.clone();
        let receiver = &mut sessions[slot];
        let received = receiver.packets_received();
        let confirmed = receiver.is_confirmed();
        let result = receiver.open(&mut buf, created).map(<[u8]>::to_vec);
        let model = &mut models[slot];
        if tamper {
            assert!(result.is_err(), "tampered packet opened");
            let decrypt_failed = matches!(result, Err(CryptoError::Decrypt { .. }));
            check_failed_open(&buf, &before, decrypt_failed);
            assert_eq!(receiver.packets_received(), received);
            assert_eq!(receiver.is_confirmed(), confirmed);
        } else if model.accepts(packet.counter) {
            let plain = result.unwrap_or_else(|e| panic!("genuine packet refused: {e}"));
            assert_eq!(plain, packet.plaintext);
            assert_eq!(&buf[DATA_HEADER_LEN..][..plain.len()], &plain[..]);
            assert_eq!(receiver.packets_received(), received + 1);
            assert!(receiver.is_confirmed());
            model.mark(packet.counter);
        } else {
            assert!(
                matches!(result, Err(CryptoError::Replay { counter, .. }) if counter == packet.counter),
                "replayed or too old packet: {result:?}"
            );
            assert_eq!(receiver.packets_received(), received);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 0x80 == 0 {
        forged(flags, rest);
    } else {
        genuine(flags, rest);
    }
});
