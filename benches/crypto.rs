//! Benchmarks of the crypto module: handshake legs and 1420-byte data seal/open.

use std::hint::black_box;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::Signer as _;
use meshd::crypto::{initiate, respond, Session, Signer};
use meshd::name::NodeName;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Key(ed25519_dalek::SigningKey);

impl Signer for Key {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

const PAYLOAD: usize = 1420;

fn name(s: &str) -> NodeName {
    NodeName::new(s).expect("a valid node name")
}
const TS: u64 = 1_700_000_000_000_000_000;

struct Fixture {
    alpha: Key,
    beta: Key,
    rng: ChaCha20Rng,
}

impl Fixture {
    fn new() -> Self {
        Self {
            alpha: Key(ed25519_dalek::SigningKey::from_bytes(&[1; 32])),
            beta: Key(ed25519_dalek::SigningKey::from_bytes(&[2; 32])),
            rng: ChaCha20Rng::from_seed([3; 32]),
        }
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<[u8; 32]> {
        let alpha = self.alpha.public_key();
        move |n: &str| (n == "alpha").then_some(alpha)
    }

    fn init(&mut self) -> (meshd::crypto::InitiatorState, Vec<u8>) {
        let beta = self.beta.public_key();
        initiate(
            &self.alpha,
            &name("alpha"),
            &name("beta"),
            beta,
            1,
            TS,
            &mut self.rng,
        )
        .unwrap()
    }

    fn handshake(&mut self) -> (Session, Session) {
        let now = Instant::now();
        let (mut st, init) = self.init();
        let lookup = self.lookup();
        let (_, rs, resp) = respond(
            &self.beta,
            &name("beta"),
            &init,
            lookup,
            2,
            &mut self.rng,
            now,
        )
        .unwrap();
        let is = st.complete(&resp, now).unwrap();
        (is, rs)
    }
}

fn bench_handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    let mut f = Fixture::new();

    g.bench_function("initiate", |b| b.iter(|| black_box(f.init())));

    let (_, init) = f.init();
    g.bench_function("respond", |b| {
        let now = Instant::now();
        let lookup = f.lookup();
        b.iter(|| {
            black_box(
                respond(
                    &f.beta,
                    &name("beta"),
                    black_box(&init),
                    &lookup,
                    2,
                    &mut f.rng,
                    now,
                )
                .unwrap(),
            )
        })
    });

    let mut setup = Fixture::new();
    g.bench_function("complete", |b| {
        let now = Instant::now();
        b.iter_batched(
            || {
                let (st, init) = setup.init();
                let lookup = setup.lookup();
                let (_, _, resp) = respond(
                    &setup.beta,
                    &name("beta"),
                    &init,
                    lookup,
                    2,
                    &mut setup.rng,
                    now,
                )
                .unwrap();
                (st, resp)
            },
            |(mut st, resp)| black_box(st.complete(&resp, now).unwrap()),
            BatchSize::SmallInput,
        )
    });

    g.bench_function("full_initiate_respond_complete", |b| {
        b.iter(|| black_box(f.handshake()))
    });
    g.finish();
}

fn bench_data(c: &mut Criterion) {
    let mut g = c.benchmark_group("data");
    g.throughput(Throughput::Bytes(PAYLOAD as u64));
    let mut f = Fixture::new();
    let (mut is, mut rs) = f.handshake();
    let payload = vec![0x5a; PAYLOAD];
    let mut out = Vec::with_capacity(PAYLOAD + 64);

    g.bench_function("seal_1420", |b| {
        b.iter(|| is.seal(black_box(&payload), &mut out).unwrap())
    });

    // Baseline: the bare AEAD on the same buffer, to show framing overhead.
    let aead = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = payload.clone();
    g.bench_function("raw_rustcrypto_chacha20poly1305_encrypt_1420", |b| {
        b.iter(|| {
            aead.encrypt_in_place_detached(&[0u8; 12].into(), &[0u8; 14], black_box(&mut buf))
                .unwrap()
        })
    });

    // The AEAD the data path uses (ring), bare.
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7u8; 32]).unwrap(),
    );
    g.bench_function("raw_ring_chacha20poly1305_encrypt_1420", |b| {
        b.iter(|| {
            ring_key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key([0u8; 12]),
                    ring::aead::Aad::from([0u8; 14]),
                    black_box(&mut buf),
                )
                .unwrap()
        })
    });

    let now = Instant::now();
    g.bench_function("open_1420", |b| {
        b.iter_batched_ref(
            || {
                let mut pkt = Vec::with_capacity(PAYLOAD + 64);
                is.seal(&payload, &mut pkt).unwrap();
                pkt
            },
            |pkt| {
                black_box(rs.open(pkt, now).unwrap());
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_handshake, bench_data);
criterion_main!(benches);
