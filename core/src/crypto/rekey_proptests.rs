//! Property tests of anti-replay across a rekey, on real [`Session`]s made by
//! real handshakes: packets sealed under an old and a new session, delivered
//! reordered, duplicated and partly lost around the switch-over, open at most
//! once, only under the session that sealed them, while the old session lives.

use super::*;
use crate::crypto::testutil::TestSigner;
use crate::crypto::{initiate, respond, Signer};
use crate::name::NodeName;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{HashMap, HashSet};

const T0_WALL_NS: u64 = 1_800_000_000_000_000_000;

/// alpha initiates, beta responds: a fresh handshake with fresh ephemerals.
fn handshake(
    alpha: &TestSigner,
    beta: &TestSigner,
    indices: (u32, u32),
    seed: u8,
    now: Instant,
    policy: SessionPolicy,
) -> (Session, Session) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let beta_key = beta.public_key();
    let alpha_key = alpha.public_key();
    let (mut st, init) = initiate(
        alpha,
        &NodeName::new("alpha").unwrap(),
        &NodeName::new("beta").unwrap(),
        beta_key,
        indices.0,
        T0_WALL_NS + u64::from(seed),
        &mut rng,
    )
    .expect("initiate");
    let lookup = move |n: &str| (n == "alpha").then_some(alpha_key);
    let (_, r, resp) = respond(
        beta,
        &NodeName::new("beta").unwrap(),
        &init,
        lookup,
        indices.1,
        &mut rng,
        now,
    )
    .expect("respond");
    let i = st.complete(&resp, now).expect("complete");
    (i.with_policy(policy), r.with_policy(policy))
}

/// Reference replay rule (PROTOCOL.md §4.1) for one session.
#[derive(Default)]
struct Seen {
    max: Option<u64>,
    all: HashSet<u64>,
}

impl Seen {
    fn acceptable(&self, c: u64, window: u64) -> bool {
        match self.max {
            None => true,
            Some(m) if c > m => true,
            Some(m) => m - c < window && !self.all.contains(&c),
        }
    }
    fn accept(&mut self, c: u64) {
        self.all.insert(c);
        self.max = Some(self.max.map_or(c, |m| m.max(c)));
    }
}

/// A packet on the wire: which session generation sealed it, its plaintext.
#[derive(Clone)]
struct Sent {
    generation: usize,
    counter: u64,
    plaintext: Vec<u8>,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Scenario {
    window: u64,
    /// Packets sealed under the old session, then under the new one.
    old_packets: usize,
    new_packets: usize,
    /// Indices into the sent list, each delivered in this order (repeats are duplicates).
    deliveries: Vec<usize>,
    /// Delivery times in ms after the start, sorted to match `deliveries`.
    times_ms: Vec<u64>,
    seed: u8,
}

fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(2048u64), 8u64..64],
        1usize..120,
        0usize..120,
        any::<u8>(),
    )
        .prop_flat_map(|(window, old_packets, new_packets, seed)| {
            let total = old_packets + new_packets;
            // Deliveries: each packet 0..3 times (0 = lost), in random order.
            let copies = prop::collection::vec(
                prop_oneof![1 => Just(0usize), 6 => Just(1), 2 => Just(2), 1 => Just(3)],
                total,
            );
            (copies, any::<u64>()).prop_flat_map(move |(copies, shuffle_seed)| {
                let mut deliveries: Vec<usize> = copies
                    .iter()
                    .enumerate()
                    .flat_map(|(i, n)| std::iter::repeat_n(i, *n))
                    .collect();
                shuffle(&mut deliveries, shuffle_seed);
                let n = deliveries.len();
                // Times span the old session's whole life and beyond (reject_after_time = 180 s).
                let times = prop::collection::vec(0u64..240_000, n).prop_map(|mut t| {
                    t.sort_unstable();
                    t
                });
                (Just(deliveries), times).prop_map(move |(deliveries, times_ms)| Scenario {
                    window,
                    old_packets,
                    new_packets,
                    deliveries,
                    times_ms,
                    seed,
                })
            })
        })
}

fn shuffle(v: &mut [usize], seed: u64) {
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (s >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Old- and new-session packets, reordered, duplicated and lost across a
    /// rekey: every plaintext opens at most once; a packet opens only under
    /// the session that sealed it (also when re-addressed to the other one);
    /// an old-session packet still opens before that session's
    /// `reject_after_time` exactly when the replay rule accepts it; after that
    /// none opens.
    #[test]
    fn rekey_never_replays_or_crosses_sessions(sc in arb_scenario()) {
        let alpha = TestSigner::from_seed([0x0a; 32]);
        let beta = TestSigner::from_seed([0x0b; 32]);
        let t0 = crate::test_clock::start();
        let policy = SessionPolicy { replay_window: sc.window, ..SessionPolicy::default() };
        // Generation 0 at t0; the rekey (generation 1) 30 s later.
        let rekey_at = t0 + Duration::from_secs(30);
        let (mut old_i, old_r) = handshake(&alpha, &beta, (0x0100, 0x0200), sc.seed, t0, policy);
        let (mut new_i, new_r) =
            handshake(&alpha, &beta, (0x0101, 0x0201), sc.seed.wrapping_add(1), rekey_at, policy);
        prop_assert_ne!(old_r.local_index(), new_r.local_index());
        let created = [t0, rekey_at];

        let mut sent: Vec<Sent> = Vec::new();
        for (generation, (s, n)) in [(&mut old_i, sc.old_packets), (&mut new_i, sc.new_packets)]
            .into_iter()
            .enumerate()
        {
            for k in 0..n {
                let plaintext = format!("gen{generation} pkt{k}").into_bytes();
                let counter = s.packets_sent();
                let mut bytes = Vec::new();
                s.seal(&plaintext, &mut bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                sent.push(Sent { generation, counter, plaintext, bytes });
            }
        }
        // Fresh keys: counter 0 of each generation uses a different keystream.
        if let (Some(a), Some(b)) = (
            sent.iter().find(|p| p.generation == 0 && p.counter == 0),
            sent.iter().find(|p| p.generation == 1 && p.counter == 0),
        ) {
            let ks = |p: &Sent| -> Vec<u8> {
                p.bytes[DATA_HEADER_LEN..].iter().zip(&p.plaintext).map(|(c, m)| c ^ m).collect()
            };
            prop_assert_ne!(ks(a), ks(b), "the rekey reused the old keys");
        }
        // Nonces never repeat within a session.
        for g in 0..2 {
            let counters: HashSet<u64> = sent.iter().filter(|p| p.generation == g).map(|p| p.counter).collect();
            prop_assert_eq!(counters.len(), sent.iter().filter(|p| p.generation == g).count());
        }

        // Beta keeps both sessions and demultiplexes by receiver index.
        let mut sessions: HashMap<u32, (usize, Session)> = HashMap::new();
        sessions.insert(old_r.local_index(), (0, old_r));
        sessions.insert(new_r.local_index(), (1, new_r));
        let index_of = |g: usize, s: &HashMap<u32, (usize, Session)>| {
            s.iter().find(|(_, (gen, _))| *gen == g).map(|(i, _)| *i).unwrap_or(0)
        };
        let indices = [index_of(0, &sessions), index_of(1, &sessions)];
        let mut seen = [Seen::default(), Seen::default()];
        let mut delivered: HashSet<Vec<u8>> = HashSet::new();
        let reject = policy.reject_after_time;

        for (&d, &ms) in sc.deliveries.iter().zip(&sc.times_ms) {
            let now = t0 + Duration::from_millis(ms);
            let p = &sent[d];
            // Re-addressed to the other session: its keys must refuse it.
            let other = 1 - p.generation;
            let mut forged = p.bytes.clone();
            forged[2..6].copy_from_slice(&indices[other].to_be_bytes());
            if let Some((_, s)) = sessions.get_mut(&indices[other]) {
                let got = s.open(&mut forged, now).map(<[u8]>::to_vec);
                prop_assert!(
                    matches!(got, Err(CryptoError::Decrypt { .. }) | Err(CryptoError::Expired(_))),
                    "gen {} packet opened under gen {}: {:?}", p.generation, other, got
                );
            }
            // Delivered to the session it is addressed to.
            let Ok(index) = data_receiver_index(&p.bytes) else {
                return Err(TestCaseError::fail("unparsable sealed packet"));
            };
            prop_assert_eq!(index, indices[p.generation]);
            let Some((_, s)) = sessions.get_mut(&index) else {
                return Err(TestCaseError::fail("no session for a sealed packet"));
            };
            let alive = now.saturating_duration_since(created[p.generation]) < reject;
            let expect_open = alive && seen[p.generation].acceptable(p.counter, sc.window);
            let mut buf = p.bytes.clone();
            let got = s.open(&mut buf, now).map(<[u8]>::to_vec);
            match got {
                Ok(plain) => {
                    prop_assert!(expect_open, "gen {} counter {} opened at +{} ms, should not", p.generation, p.counter, ms);
                    prop_assert_eq!(&plain, &p.plaintext);
                    prop_assert!(delivered.insert(plain), "plaintext delivered twice");
                    seen[p.generation].accept(p.counter);
                }
                Err(e) => {
                    prop_assert!(!expect_open, "gen {} counter {} refused at +{} ms: {}", p.generation, p.counter, ms, e);
                    if !alive {
                        prop_assert_eq!(e, CryptoError::Expired(index));
                    } else {
                        prop_assert!(matches!(e, CryptoError::Replay { .. }), "{}", e);
                    }
                }
            }
        }
        // Nothing was delivered that was not sent, and the counters agree.
        for g in 0..2 {
            let (_, s) = &sessions[&indices[g]];
            prop_assert_eq!(s.packets_received(), seen[g].all.len() as u64);
        }
    }

    /// The packet-count rekey threshold fires before the counter limit: for
    /// any `rekey_after_packets` up to the limit, `needs_rekey` turns true
    /// exactly when that many packets were sealed; sealing never repeats a
    /// counter and stops (with the session expired) at the limit.
    #[test]
    fn packet_rekey_fires_before_the_nonce_limit(
        rekey_after in prop_oneof![1u64..50, (REJECT_AFTER_MESSAGES - 40)..=REJECT_AFTER_MESSAGES, any::<u64>()],
        start_back in 0u64..45,
        responder_side in any::<bool>(),
    ) {
        let t = crate::test_clock::start();
        let (i, r) = tests::pair(t);
        let policy = SessionPolicy { rekey_after_packets: rekey_after, ..SessionPolicy::default() };
        let (mut i, mut r) = (i.with_policy(policy), r.with_policy(policy));
        // Confirm the responder, then let the chosen side send.
        let mut first = Vec::new();
        i.seal(b"hello", &mut first).map_err(|e| TestCaseError::fail(e.to_string()))?;
        r.open(&mut first, t).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (tx, rx) = if responder_side { (&mut r, &mut i) } else { (&mut i, &mut r) };
        // Start a little before the threshold (or the limit), not 2^60 packets in.
        let near = rekey_after.min(REJECT_AFTER_MESSAGES);
        tx.send_counter = near.saturating_sub(start_back).max(tx.send_counter);
        rx.replay = ReplayWindow::new(policy.replay_window);
        let mut last = None::<u64>;
        for _ in 0..90 {
            let before = tx.packets_sent();
            if before >= rekey_after || before + 1 >= REJECT_AFTER_MESSAGES {
                // The threshold is reached, or this is the last counter the
                // session may seal: a rekey must be asked for now.
                prop_assert!(tx.needs_rekey(t), "no rekey at {} (threshold {})", before, rekey_after);
                prop_assert!(tx.should_initiate_rekey(t), "no rekey at {} (threshold {})", before, rekey_after);
            } else if rekey_after <= 1 << 60 {
                prop_assert!(!tx.needs_rekey(t), "early rekey at {} (threshold {})", before, rekey_after);
                prop_assert!(!tx.should_initiate_rekey(t));
            }
            let mut out = Vec::new();
            match tx.seal(b"x", &mut out) {
                Ok(()) => {
                    let c = u64::from_be_bytes(out[6..14].try_into().map_err(|_| TestCaseError::fail("short"))?);
                    prop_assert_eq!(c, before);
                    prop_assert!(last.is_none_or(|l| c > l), "counter {} repeated or went back", c);
                    prop_assert!(c < REJECT_AFTER_MESSAGES);
                    last = Some(c);
                    let plain = rx.open(&mut out, t).map(<[u8]>::to_vec);
                    prop_assert_eq!(plain, Ok(b"x".to_vec()));
                }
                Err(e) => {
                    prop_assert_eq!(e, CryptoError::CounterExhausted(REJECT_AFTER_MESSAGES));
                    prop_assert_eq!(before, REJECT_AFTER_MESSAGES);
                    prop_assert!(tx.is_expired(t), "exhausted but not expired");
                    prop_assert!(tx.needs_rekey(t), "exhausted without asking for a rekey");
                    break;
                }
            }
        }
    }
}
