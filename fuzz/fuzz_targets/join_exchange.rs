//! The join exchange (`invite::exchange`): arbitrary joiner hellos to the inviter,
//! arbitrary inviter hellos to a joiner, and arbitrary sealed frames into a channel made
//! by a genuine exchange. Nothing forged may open; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::invite::exchange::{inviter_respond, JoinerHandshake, Kind};
use meshd::keys::{invitation_key_hash, PrivateKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fuzz_target!(|data: &[u8]| {
    let mut rng = ChaCha8Rng::seed_from_u64(0x101);
    let key = PrivateKey::generate(&mut rng);
    let hash = invitation_key_hash(&key.public());
    let (selector, rest) = data.split_first().unwrap_or((&0, &[]));
    match selector % 3 {
        0 => {
            if let Ok((_, hello)) = inviter_respond(rest, &key, &mut rng) {
                assert_eq!(hello.len(), 129);
            }
        }
        1 => {
            let joiner = JoinerHandshake::start(&mut rng);
            // Only the genuine key can pass the fingerprint check; random bytes never do.
            if joiner.finish(rest, &hash).is_ok() {
                panic!("a forged inviter hello was accepted");
            }
        }
        _ => {
            let joiner = JoinerHandshake::start(&mut rng);
            let (mut inviter, hello) =
                inviter_respond(joiner.hello(), &key, &mut rng).expect("genuine hello");
            let (mut joiner, _) = joiner.finish(&hello, &hash).expect("genuine exchange");
            let genuine = joiner.seal(Kind::Cookie, &[7; 18]).expect("seal");
            if rest != genuine.as_slice() {
                assert!(inviter.open(rest).is_err(), "a forged frame opened");
            }
            assert_eq!(inviter.open(&genuine).map(|(k, _)| k), Ok(Kind::Cookie));
        }
    }
});
