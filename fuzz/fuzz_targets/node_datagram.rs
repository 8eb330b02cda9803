//! The sans-IO node core driven by arbitrary input.
//!
//! A fresh node "alpha" knowing one peer "beta" is built per input. The input
//! is a script of operations: raw datagrams from several sources, and moves of
//! a scripted "beta" that holds its real key (handshakes in both directions,
//! sealed arbitrary plaintexts, signed gossip records), reflections and
//! corruptions of alpha's own output, timer ticks, frames and shutdown. The
//! node must never panic.
//!
//! Alpha serves two VIPs (10.1.1.10 unchecked, 10.1.1.11 behind a health
//! check), so frames from its TAP and from beta (sealed `Frame` messages, raw
//! or built around the VIPs: ARP for them, IPv4 to their virtual MACs) run
//! the VIP path too, and beta's gossip may carry VIP and subnet items.
//! Beyond "no panic": every frame alpha hands to its TAP is at least an
//! Ethernet header long.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::crypto::{
    data_receiver_index, initiate, packet_type, verify_init, InitiatorState, PacketType, Session,
};
use meshd::keys::PrivateKey;
use meshd::name::NodeName;
use meshd::node::{KnownHost, Node, NodeConfig, Transmit};
use meshd::switch::MacAddr;
use meshd::vip::LocalVip;
use meshd::wire::extension::{encode_extension, ExtensionItem, VipItem};
use meshd::wire::{Message, Neighbour, NodeRecord};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WALL_NS: u64 = 1_800_000_000_000_000_000;
const ALPHA_SEED: u64 = 1;
const BETA_SEED: u64 = 2;
const GAMMA_SEED: u64 = 3;
/// Bounds on what the harness keeps, so one input stays cheap.
const MAX_CAPTURED: usize = 32;
const MAX_BETA_SESSIONS: usize = 8;
const MAX_OPS: usize = 256;

fn node_name(s: &str) -> NodeName {
    NodeName::new(s).expect("a valid node name")
}

fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut ChaCha8Rng::seed_from_u64(seed))
}

/// The harness's keys, made once (key generation dominates a short input).
struct Keys {
    alpha: PrivateKey,
    beta: PrivateKey,
    gamma: PrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        alpha: key(ALPHA_SEED),
        beta: key(BETA_SEED),
        gamma: key(GAMMA_SEED),
    })
}

/// VIP `i`: 10.1.1.10, 10.1.1.11 (alpha's), 10.1.1.12 (nobody's).
fn vip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10 + i % 3))
}

/// The virtual MAC of VIP `i`.
fn vmac(i: u8) -> [u8; 6] {
    [0x02, 0x5e, 0, 0, 1, 10 + i % 3]
}

/// A frame from the input: raw, ARP about a VIP, or IPv4 to a virtual MAC.
fn frame(input: &mut Input<'_>) -> Vec<u8> {
    let kind = input.byte_or(0);
    let mut f = Vec::new();
    match kind % 4 {
        0 => {
            let len = usize::from(input.byte_or(0));
            return input.take(len);
        }
        1 => {
            // ARP request or reply about a VIP.
            let src = [0x02, 0, 0, 0, 0, input.byte_or(2)];
            let target = vip(input.byte_or(0));
            let dst = if kind & 0x10 == 0 {
                [0xff; 6]
            } else {
                vmac(kind >> 5)
            };
            f.extend_from_slice(&dst);
            f.extend_from_slice(&src);
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 + (kind >> 7)]);
            f.extend_from_slice(&src);
            f.extend_from_slice(&[10, 1, 1, input.byte_or(1)]);
            f.extend_from_slice(if kind & 0x20 == 0 { &[0; 6] } else { &dst });
            if let IpAddr::V4(a) = target {
                f.extend_from_slice(&a.octets());
            }
        }
        _ => {
            // IPv4 TCP/UDP to (or from) a VIP's virtual MAC.
            let i = input.byte_or(0);
            let peer = [0x02, 0, 0, 0, 0, input.byte_or(2)];
            let (dst, src) = if kind & 0x10 == 0 {
                (vmac(i), peer)
            } else {
                (peer, vmac(i))
            };
            f.extend_from_slice(&dst);
            f.extend_from_slice(&src);
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64]);
            f.push(if kind & 0x20 == 0 { 6 } else { 17 });
            f.extend_from_slice(&[0, 0, 10, 1, 2, input.byte_or(7)]);
            if let IpAddr::V4(a) = vip(i) {
                f.extend_from_slice(&a.octets());
            }
            f.extend(input.take(8));
            let len = usize::from(input.byte_or(0) % 32);
            f.extend(input.take(len));
        }
    }
    f
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], port))
}

/// An encoded Hello (built from bytes so the harness does not depend on the
/// exact fields of `meshd::wire::Hello`).
fn hello_bytes() -> Vec<u8> {
    let mut hello = vec![0x01];
    hello.extend_from_slice(&1u64.to_be_bytes()); // sent_us
    hello.extend_from_slice(&0u64.to_be_bytes()); // echo_us
    hello.extend_from_slice(&0u32.to_be_bytes()); // echo_delay_us
    hello.push(0); // flags, in versions that have them
    if Message::parse(&hello).is_err() {
        hello.pop();
    }
    hello
}

struct Input<'a>(std::slice::Iter<'a, u8>);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        self.0.next().copied()
    }
    fn byte_or(&mut self, default: u8) -> u8 {
        self.byte().unwrap_or(default)
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map_while(|_| self.byte()).collect()
    }
}

struct Harness {
    now: Instant,
    node: Node,
    alpha: &'static PrivateKey,
    beta: &'static PrivateKey,
    gamma: &'static PrivateKey,
    beta_rng: ChaCha8Rng,
    beta_ts: u64,
    beta_pending: Vec<InitiatorState>,
    beta_sessions: Vec<Session>,
    captured: Vec<Transmit>,
    seal_buf: Vec<u8>,
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        let keys = keys();
        let mut config = NodeConfig::new(node_name("alpha"));
        config.advertised_addresses = vec![addr(1, 655)];
        config.connect_to = vec![node_name("beta")];
        config.vips = (0..2)
            .map(|i| LocalVip {
                address: vip(i),
                prefix_len: 24,
                weight: 10,
                virtual_mac: MacAddr(vmac(i)),
                checked: i == 1,
                owner: None,
                presence: None,
                policy: Default::default(),
            })
            .collect();
        let hosts = vec![KnownHost {
            name: node_name("beta"),
            public_key: Some(keys.beta.public()),
            addresses: vec![addr(2, 655)],
            subnets: Vec::new(),
            vips: Vec::new(),
            path: Default::default(),
        }];
        let node = Node::new(
            config,
            // The node's own copy: `Node::new` takes the key by value.
            key(ALPHA_SEED),
            hosts,
            now,
            WALL_NS,
            Box::new(ChaCha8Rng::seed_from_u64(0xa1fa)),
        );
        let mut h = Harness {
            now,
            node,
            alpha: &keys.alpha,
            beta: &keys.beta,
            gamma: &keys.gamma,
            beta_rng: ChaCha8Rng::seed_from_u64(0xbe7a),
            beta_ts: WALL_NS,
            beta_pending: Vec::new(),
            beta_sessions: Vec::new(),
            captured: Vec::new(),
            seal_buf: Vec::new(),
        };
        h.drain();
        h
    }

    fn source(&self, sel: u8) -> SocketAddr {
        match sel % 4 {
            0 => addr(2, 655),
            1 => addr(2, 40000),
            2 => addr(3, 655),
            _ => SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], 655)),
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if self.captured.len() == MAX_CAPTURED {
                self.captured.remove(0);
            }
            self.captured.push(t);
        }
        while let Some(f) = self.node.poll_frame() {
            assert!(f.len() >= 14, "a {}-byte frame to the TAP", f.len());
        }
        while self.node.poll_event().is_some() {}
        let _ = self.node.poll_timeout();
    }

    fn feed(&mut self, from: SocketAddr, datagram: &[u8]) {
        self.node.handle_datagram(self.now, from, datagram);
        self.drain();
    }

    fn add_beta_session(&mut self, s: Session) {
        if self.beta_sessions.len() == MAX_BETA_SESSIONS {
            self.beta_sessions.remove(0);
        }
        self.beta_sessions.push(s);
    }

    /// Beta starts a handshake; `delta` 0 replays the previous timestamp.
    fn beta_initiate(&mut self, from: SocketAddr, delta: u8) {
        self.beta_ts += u64::from(delta);
        let index = self.beta_ts as u32 | 1;
        let Ok((state, init)) = initiate(
            self.beta,
            &node_name("beta"),
            &node_name("alpha"),
            *self.alpha.public().as_bytes(),
            index,
            self.beta_ts,
            &mut self.beta_rng,
        ) else {
            return;
        };
        if self.beta_pending.len() == 4 {
            self.beta_pending.remove(0);
        }
        self.beta_pending.push(state);
        self.feed(from, &init);
    }

    /// Beta receives one datagram alpha sent, and answers like a real peer.
    fn beta_receive(&mut self, which: u8, from: SocketAddr) {
        if self.captured.is_empty() {
            return;
        }
        let t = self
            .captured
            .remove(usize::from(which) % self.captured.len());
        let mut bytes = t.payload;
        match packet_type(&bytes) {
            Ok(PacketType::HandshakeInit) => {
                let alpha_key = *self.alpha.public().as_bytes();
                let Ok(verified) = verify_init(&node_name("beta"), &bytes, |n| {
                    (n == "alpha").then_some(alpha_key)
                }) else {
                    return;
                };
                let index = verified.initiator_index().rotate_left(7) | 2;
                if let Ok((session, response)) =
                    verified.respond(self.beta, index, &mut self.beta_rng, self.now)
                {
                    self.add_beta_session(session);
                    self.feed(from, &response);
                }
            }
            Ok(PacketType::HandshakeResponse) => {
                for i in 0..self.beta_pending.len() {
                    if let Ok(session) = self.beta_pending[i].complete(&bytes, self.now) {
                        self.beta_pending.remove(i);
                        self.add_beta_session(session);
                        // Key confirmation, as the real node does.
                        let hello = hello_bytes();
                        self.beta_send(255, from, &hello);
                        break;
                    }
                }
            }
            Ok(PacketType::Data) => {
                let Ok(index) = data_receiver_index(&bytes) else {
                    return;
                };
                let now = self.now;
                if let Some(s) = self
                    .beta_sessions
                    .iter_mut()
                    .find(|s| s.local_index() == index)
                {
                    if let Ok(plain) = s.open(&mut bytes, now) {
                        let _ = Message::parse(plain);
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// Beta seals `plaintext` on one of its sessions (255 = newest usable).
    fn beta_send(&mut self, which: u8, from: SocketAddr, plaintext: &[u8]) {
        let usable: Vec<usize> = (0..self.beta_sessions.len())
            .filter(|&i| self.beta_sessions[i].is_confirmed())
            .collect();
        let Some(&i) = (if which == 255 {
            usable.last()
        } else if usable.is_empty() {
            None
        } else {
            usable.get(usize::from(which) % usable.len())
        }) else {
            return;
        };
        let mut out = std::mem::take(&mut self.seal_buf);
        if self.beta_sessions[i].seal(plaintext, &mut out).is_ok() {
            self.feed(from, &out);
        }
        self.seal_buf = out;
    }

    /// A node record built from the input, signed by the key matching its name
    /// (or deliberately by the wrong one).
    fn record(&self, input: &mut Input<'_>) -> NodeRecord {
        let sel = input.byte_or(0);
        let names = ["gamma", "beta", "alpha", "delta"];
        let name = names[usize::from(sel % 4)];
        let signer = match (name, sel & 0x10 != 0) {
            ("alpha", false) => self.alpha,
            ("beta", false) => self.beta,
            _ => self.gamma,
        };
        let naddr = input.byte_or(0) % 3;
        let addresses = (0..naddr).map(|_| addr(input.byte_or(9), 655)).collect();
        let nneigh = input.byte_or(0) % 3;
        let neighbours = (0..nneigh)
            .map(|_| {
                let b = input.byte_or(0);
                Neighbour {
                    name: node_name(names[usize::from(b % 4)]),
                    endpoint: addr(b >> 2, 655),
                }
            })
            .collect();
        let mut record = NodeRecord {
            name: node_name(name),
            public_key: *signer.public().as_bytes(),
            generation: WALL_NS + u64::from(input.byte_or(0) % 4) * 1_000,
            version: u64::from(input.byte_or(1)),
            addresses,
            neighbours,
            extension: {
                let n = input.byte_or(0);
                if n & 0x80 == 0 {
                    input.take(usize::from(n % 8))
                } else {
                    // Well-formed items: VIPs (maybe alpha's own) and subnets.
                    let items: Vec<ExtensionItem> = (0..n % 4)
                        .map(|_| {
                            let b = input.byte_or(0);
                            if b & 0x80 == 0 {
                                ExtensionItem::Vip(VipItem {
                                    address: vip(b),
                                    prefix_len: 24,
                                    weight: u32::from(input.byte_or(10)),
                                    virtual_mac: vmac(b >> 2),
                                    flags: b >> 4 & 1,
                                })
                            } else {
                                ExtensionItem::Subnet(format!("10.1.{}.0/24", b & 0x7f))
                            }
                        })
                        .collect();
                    encode_extension(&items)
                }
            },
            signature: [0; 64],
        };
        record.signature = signer.sign(&record.signed_bytes());
        if sel & 0x20 != 0 {
            record.signature[usize::from(sel >> 6) * 8] ^= 1;
        }
        record
    }

    fn step(&mut self, input: &mut Input<'_>) -> bool {
        let Some(op) = input.byte() else {
            return false;
        };
        let from = self.source(op >> 4);
        match op % 12 {
            // A raw datagram of up to 255 bytes.
            0 => {
                let len = usize::from(input.byte_or(0));
                let bytes = input.take(len);
                self.feed(from, &bytes);
            }
            // A raw datagram with a valid outer header of type 1, 2 or 3.
            1 => {
                let ty = input.byte_or(0) % 3 + 1;
                let len = usize::from(input.byte_or(0));
                let mut bytes = vec![1, ty];
                bytes.extend(input.take(len));
                if ty == 3 && bytes.len() >= 6 && input.byte_or(0) & 1 == 1 {
                    // Aim at a live session index of the node.
                    if let Some(s) = self.beta_sessions.last() {
                        bytes[2..6].copy_from_slice(&s.remote_index().to_be_bytes());
                    }
                }
                self.feed(from, &bytes);
            }
            2 => {
                let delta = input.byte_or(1);
                self.beta_initiate(from, delta);
            }
            3 => {
                let which = input.byte_or(0);
                self.beta_receive(which, from);
            }
            4 => {
                while !self.captured.is_empty() {
                    self.beta_receive(0, from);
                }
            }
            // Beta sends an arbitrary plaintext.
            5 => {
                let which = input.byte_or(255);
                let len = usize::from(input.byte_or(0));
                let plaintext = input.take(len);
                self.beta_send(which, from, &plaintext);
            }
            // Beta sends signed gossip.
            6 => {
                let n = input.byte_or(1) % 4 + 1;
                let records = (0..n).map(|_| self.record(input)).collect();
                let msg = Message::Gossip(records).to_vec();
                self.beta_send(255, from, &msg);
            }
            // Time passes.
            7 => {
                let b = input.byte_or(0);
                let step = if b & 0x80 == 0 {
                    Duration::from_millis(u64::from(b) * 5)
                } else {
                    Duration::from_secs(u64::from(b & 0x7f) * 30)
                };
                self.now += step;
                self.node.handle_timeout(self.now);
                self.drain();
            }
            // One of alpha's own datagrams comes back, maybe corrupted.
            8 => {
                let which = input.byte_or(0);
                let pos = input.byte_or(0);
                let xor = input.byte_or(0);
                if !self.captured.is_empty() {
                    let mut bytes = self.captured[usize::from(which) % self.captured.len()]
                        .payload
                        .clone();
                    if !bytes.is_empty() {
                        let i = usize::from(pos) % bytes.len();
                        bytes[i] ^= xor;
                    }
                    self.feed(from, &bytes);
                }
            }
            // Beta's genuine data packet, corrupted in flight.
            9 => {
                let pos = input.byte_or(0);
                let xor = input.byte_or(1);
                let len = usize::from(input.byte_or(0) % 64);
                let plaintext = input.take(len);
                if let Some(s) = self
                    .beta_sessions
                    .iter_mut()
                    .rev()
                    .find(|s| s.is_confirmed())
                {
                    let mut out = Vec::new();
                    if s.seal(&plaintext, &mut out).is_ok() {
                        let i = usize::from(pos) % out.len();
                        out[i] ^= xor;
                        self.feed(from, &out);
                    }
                }
            }
            10 => {
                let sel = input.byte_or(0);
                let frame = frame(input);
                match sel % 4 {
                    // From alpha's TAP.
                    0 => self.node.handle_frame(self.now, &frame),
                    // From beta, sealed on its newest session.
                    1 => {
                        let msg = Message::Frame(&frame).to_vec();
                        self.beta_send(255, from, &msg);
                    }
                    // Alpha's VIP health changes.
                    2 => self
                        .node
                        .set_vip_health(self.now, vip(sel >> 2), sel & 0x80 != 0),
                    _ => {
                        let peer = if op & 0x10 == 0 { "beta" } else { "gamma" };
                        self.node.send_frame(self.now, peer, &frame);
                    }
                }
                self.drain();
            }
            _ => {
                if op & 0xf0 == 0xf0 {
                    self.node.shutdown(self.now);
                } else {
                    self.node.handle_timeout(self.now);
                }
                self.drain();
            }
        }
        true
    }
}

fuzz_target!(|data: &[u8]| {
    let mut harness = Harness::new();
    let mut input = Input(data.iter());
    for _ in 0..MAX_OPS {
        if !harness.step(&mut input) {
            break;
        }
    }
    harness.now += Duration::from_secs(1);
    harness.node.handle_timeout(harness.now);
    harness.drain();
    let _ = harness.node.drops();
    for peer in harness.node.peers().values() {
        let _ = harness.node.is_alive(&peer.name);
    }
    // The status views read the whole state.
    let _ = harness.node.node_statuses(harness.now, 655);
    let _ = harness.node.edge_statuses();
    let _ = harness.node.connection_statuses(harness.now);
});
