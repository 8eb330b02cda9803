//! Known-answer vectors for the messages inside data packets
//! (`proto/vectors/messages-v1.txt`, specified in `proto/PROTOCOL.md` §5–6).
//! Run with `MESHD_WRITE_VECTORS=1` to regenerate the file after a deliberate
//! format change (and bump the protocol version).

use meshd::keys::{PrivateKey, PublicKey};
use meshd::name::NodeName;
use meshd::wire::{Digest, DigestEntry, Hello, Message, Neighbour, NodeRecord};
use rand::SeedableRng;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/vectors/messages-v1.txt");

fn name(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

fn record() -> (NodeRecord, PublicKey) {
    let key = PrivateKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
    let mut rec = NodeRecord {
        name: name("node_1"),
        public_key: *key.public().as_bytes(),
        generation: 1_795_313_705_000_000_000,
        version: 3,
        addresses: vec!["192.0.2.1:655".parse().unwrap()],
        neighbours: vec![
            Neighbour {
                name: name("node_2"),
                endpoint: "192.0.2.2:655".parse().unwrap(),
            },
            Neighbour {
                name: name("node_3"),
                endpoint: "[2001:db8::3]:6553".parse().unwrap(),
            },
        ],
        extension: Vec::new(),
        signature: [0; 64],
    };
    rec.signature = key.sign(&rec.signed_bytes());
    (rec, key.public())
}

fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    let (rec, _) = record();
    let frame: Vec<u8> = (0u8..60).collect();
    vec![
        (
            "hello",
            Message::Hello(Hello {
                sent_us: 1_000_000,
                echo_us: 999_500,
                echo_delay_us: 250,
                flags: 0,
            })
            .to_vec(),
        ),
        ("frame", Message::Frame(&frame).to_vec()),
        ("gossip", Message::Gossip(vec![rec.clone()]).to_vec()),
        (
            "digest",
            Message::Digest(Digest {
                entries: vec![DigestEntry {
                    name: name("node_1"),
                    generation: rec.generation,
                    version: 3,
                }],
                ..Digest::default()
            })
            .to_vec(),
        ),
        (
            "digest_part",
            Message::Digest(Digest {
                entries: vec![DigestEntry {
                    name: name("node_3"),
                    generation: rec.generation,
                    version: 3,
                }],
                after: Some(name("node_2")),
                through: Some(name("node_3")),
            })
            .to_vec(),
        ),
        ("goodbye", Message::Goodbye.to_vec()),
        (
            "record_ack",
            Message::RecordAck {
                generation: rec.generation,
                version: 3,
            }
            .to_vec(),
        ),
        (
            "path_challenge",
            Message::PathChallenge(0x0123_4567_89ab_cdef).to_vec(),
        ),
        (
            "path_response",
            Message::PathResponse(0x0123_4567_89ab_cdef).to_vec(),
        ),
        (
            "mtu_probe",
            Message::MtuProbe {
                token: 0x0102_0304,
                padding: 8,
            }
            .to_vec(),
        ),
        (
            "mtu_probe_ack",
            Message::MtuProbeAck {
                token: 0x0102_0304,
                size: 13,
            }
            .to_vec(),
        ),
        (
            "frame_piece",
            Message::FramePiece(meshd::wire::FramePiece {
                frame_id: 7,
                index: 1,
                count: 2,
                bytes: &frame[..16],
            })
            .to_vec(),
        ),
        (
            "relay_to",
            Message::RelayTo {
                dst: name("node_2"),
                src: name("node_1"),
                packet: &[1, 3, 0, 0, 0, 1],
            }
            .to_vec(),
        ),
        (
            "relay_from",
            Message::RelayFrom {
                src: name("node_1"),
                packet: &[1, 3, 0, 0, 0, 1],
            }
            .to_vec(),
        ),
        ("direct_try", Message::DirectTry.to_vec()),
        ("record_signed_bytes", rec.signed_bytes()),
        (
            "record_extension",
            meshd::wire::extension::encode_extension(&[
                meshd::wire::ExtensionItem::Subnet("02:00:00:00:00:0a".into()),
                meshd::wire::ExtensionItem::Vip(meshd::wire::VipItem {
                    address: "10.1.1.10".parse().unwrap(),
                    prefix_len: 24,
                    weight: 10,
                    virtual_mac: [0x02, 0x6d, 0x0a, 0x01, 0x01, 0x0a],
                    flags: meshd::wire::VipItem::OFFERED,
                }),
            ]),
        ),
        // r11: the origin's session RTTs (beta 0.5 ms, gamma 12.3 ms).
        (
            "record_extension_rtts",
            meshd::wire::extension::encode_extension(&[meshd::wire::ExtensionItem::NeighbourRtts(
                vec![
                    meshd::wire::extension::NeighbourRtt {
                        name: meshd::name::NodeName::new("beta").unwrap(),
                        rtt_100us: 5,
                    },
                    meshd::wire::extension::NeighbourRtt {
                        name: meshd::name::NodeName::new("gamma").unwrap(),
                        rtt_100us: 123,
                    },
                ],
            )]),
        ),
    ]
}

#[test]
fn message_vectors_match_the_file() {
    let v = vectors();
    // MESHD_WRITE_VECTORS=1 (the same switch as the handshake vectors in
    // core/src/crypto/handshake.rs): rewrite the file, then review the diff.
    if std::env::var_os("MESHD_WRITE_VECTORS").is_some_and(|v| v == "1") {
        let mut out = String::from(
            "# meshd v1 inner messages (proto/PROTOCOL.md §5-6); record key: ChaCha8Rng seed 7\n",
        );
        for (k, bytes) in &v {
            out.push_str(&format!("{k} = {}\n", hex::encode(bytes)));
        }
        std::fs::write(FILE, out).unwrap();
    }
    let text = std::fs::read_to_string(FILE).expect("proto/vectors/messages-v1.txt");
    for (k, bytes) in &v {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap_or_else(|| panic!("{k} missing from the vector file"));
        assert_eq!(line, hex::encode(bytes), "{k} differs from the vector file");
        if k.starts_with("record_extension") {
            let raw = hex::decode(line).unwrap();
            let items = meshd::wire::extension::decode_extension(&raw).expect("vector decodes");
            assert_eq!(meshd::wire::extension::encode_extension(&items), raw);
        } else if *k != "record_signed_bytes" {
            let raw = hex::decode(line).unwrap();
            let parsed = Message::parse(&raw).expect("vector parses");
            assert_eq!(parsed.to_vec(), raw, "{k} does not round-trip");
        }
    }
}

#[test]
fn the_vector_record_signature_verifies_and_tampering_breaks_it() {
    let (rec, key) = record();
    assert!(key.verify(&rec.signed_bytes(), &rec.signature));
    let mut bad = rec.clone();
    bad.neighbours.pop();
    assert!(!key.verify(&bad.signed_bytes(), &bad.signature));
}
