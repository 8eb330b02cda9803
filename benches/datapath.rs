//! Benchmarks of the data path in memory (no sockets, no TAP): the switch's
//! MAC lookup, TAP offload work (TSO split, GRO coalescing), and a whole
//! 1400-byte frame from one node's TAP side to the other's (switch, seal,
//! open, switch), so regressions show without network namespaces.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meshd::driver::offload::{self, VnetHdr};
use meshd::keys::PrivateKey;
use meshd::name::NodeName;
use meshd::node::{KnownHost, Node, NodeConfig};
use meshd::switch::{Delivery, MacAddr, Switch, SwitchConfig};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

fn node_name(s: &str) -> NodeName {
    NodeName::new(s).expect("a valid node name")
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// An Ethernet + IPv4 + TCP frame (20-byte TCP header) with `payload` bytes,
/// checksums as the kernel leaves them for offload.
fn tcp_frame(src: [u8; 6], dst: [u8; 6], payload: usize, seq: u32) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((40 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0, 10, 1, 1, 1, 10, 1, 1, 2]);
    f.extend_from_slice(&[0x13, 0x88, 0xc3, 0x50]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x10, 0x01, 0xf5, 0, 0, 0, 0]);
    f.extend((0..payload).map(|i| i as u8));
    f
}

fn bench_switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch");
    let now = Instant::now();
    let mut sw = Switch::new(SwitchConfig::default());
    // 1000 stations learned behind 10 peers, and ours.
    for i in 0..1000u32 {
        let b = i.to_be_bytes();
        let mac = [0x02, 0x10, b[0], b[1], b[2], b[3]];
        let peer = format!("node_{}", i % 10);
        sw.from_peer(now, &peer, &tcp_frame(mac, MAC_A, 0, 0));
    }
    let mut replies = Vec::new();
    let local = tcp_frame(MAC_A, [0x02, 0x10, 0, 0, 1, 0xf4], 1346, 1);
    sw.from_tap(now, &local, |_| true, &mut replies);
    g.bench_function("mac_lookup", |b| {
        let mac = MacAddr([0x02, 0x10, 0, 0, 1, 0xf4]);
        b.iter(|| black_box(sw.macs().lookup(black_box(&mac))))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("from_tap_unicast_1400", |b| {
        b.iter(|| {
            let d = sw.from_tap(now, black_box(&local), |_| true, &mut replies);
            assert!(matches!(d, Delivery::Peer(_)));
        })
    });
    let from_peer = tcp_frame([0x02, 0x10, 0, 0, 1, 0xf4], MAC_A, 1346, 1);
    g.bench_function("from_peer_to_tap_1400", |b| {
        b.iter(|| black_box(sw.from_peer(now, "node_0", black_box(&from_peer))))
    });
    g.finish();
}

fn bench_offload(c: &mut Criterion) {
    let mut g = c.benchmark_group("offload");
    // A 64 KiB TSO read of 48 segments of 1348 bytes.
    let big = tcp_frame(MAC_A, MAC_B, 48 * 1348, 7);
    let hdr = VnetHdr {
        flags: offload::F_NEEDS_CSUM,
        gso_type: offload::GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1348,
        csum_start: 34,
        csum_offset: 16,
    };
    let mut read = hdr.bytes().to_vec();
    read.extend_from_slice(&big);
    g.throughput(Throughput::Bytes(big.len() as u64));
    let mut scratch = Vec::new();
    g.bench_function("tso_split_64k", |b| {
        b.iter(|| {
            let mut n = 0;
            offload::split_read(black_box(&read), &mut scratch, |f| n += f.len()).unwrap();
            black_box(n)
        })
    });
    let mut segs = Vec::new();
    offload::split_read(&read, &mut scratch, |f| segs.push(f.to_vec())).unwrap();
    g.bench_function("gro_run_64k", |b| {
        b.iter(|| black_box(offload::coalesce_run(black_box(&segs))))
    });
    g.finish();
}

/// Two nodes with a live session, and frames that go from `a` to `b`.
struct Pair {
    a: Node,
    b: Node,
    now: Instant,
}

impl Pair {
    fn new() -> Pair {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ka = PrivateKey::generate(&mut rng);
        let kb = PrivateKey::generate(&mut rng);
        let addr_a: SocketAddr = "192.0.2.1:655".parse().unwrap();
        let addr_b: SocketAddr = "192.0.2.2:655".parse().unwrap();
        let now = Instant::now();
        let host = |name: &str, k: &PrivateKey, addr| KnownHost {
            name: node_name(name),
            public_key: Some(k.public()),
            addresses: vec![addr],
            subnets: Vec::new(),
            vips: Vec::new(),
            path: Default::default(),
        };
        let mut ca = NodeConfig::new(node_name("a"));
        ca.connect_to = vec![node_name("b")];
        let cb = NodeConfig::new(node_name("b"));
        let b = Node::new(
            cb,
            PrivateKey::from_pem_str(&kb.to_pem_string()).unwrap(),
            vec![host("a", &ka, addr_a)],
            now,
            1,
            Box::new(ChaCha8Rng::seed_from_u64(2)),
        );
        let a = Node::new(
            ca,
            ka,
            vec![host("b", &kb, addr_b)],
            now,
            1,
            Box::new(ChaCha8Rng::seed_from_u64(3)),
        );
        let mut p = Pair { a, b, now };
        for _ in 0..50 {
            p.now += Duration::from_millis(10);
            p.a.handle_timeout(p.now);
            p.b.handle_timeout(p.now);
            p.exchange();
            if p.a.is_alive("b") && p.b.is_alive("a") {
                break;
            }
        }
        assert!(p.a.is_alive("b") && p.b.is_alive("a"), "no session");
        // Each side learns the other's MAC.
        p.a.handle_frame(p.now, &tcp_frame(MAC_A, MAC_B, 10, 0));
        p.exchange();
        p.b.handle_frame(p.now, &tcp_frame(MAC_B, MAC_A, 10, 0));
        p.exchange();
        while let Some(f) = p.a.poll_frame() {
            p.a.recycle(f);
        }
        while let Some(f) = p.b.poll_frame() {
            p.b.recycle(f);
        }
        p
    }

    /// Delivers everything queued, both ways, until quiet.
    fn exchange(&mut self) {
        let from_a: SocketAddr = "192.0.2.1:655".parse().unwrap();
        let from_b: SocketAddr = "192.0.2.2:655".parse().unwrap();
        loop {
            let mut moved = false;
            while let Some(mut t) = self.a.poll_transmit() {
                self.b.handle_datagram_mut(self.now, from_a, &mut t.payload);
                self.a.recycle(t.payload);
                moved = true;
            }
            while let Some(mut t) = self.b.poll_transmit() {
                self.a.handle_datagram_mut(self.now, from_b, &mut t.payload);
                self.b.recycle(t.payload);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
}

fn bench_frame_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_path");
    let mut p = Pair::new();
    let from_a: SocketAddr = "192.0.2.1:655".parse().unwrap();
    let frame = tcp_frame(MAC_A, MAC_B, 1346, 9);
    assert_eq!(frame.len(), 1400);
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("tap_to_tap_1400", |b| {
        b.iter(|| {
            p.a.handle_frame(p.now, black_box(&frame));
            let Some(mut t) = p.a.poll_transmit() else {
                panic!("nothing sent")
            };
            p.b.handle_datagram_mut(p.now, from_a, &mut t.payload);
            p.a.recycle(t.payload);
            let Some(out) = p.b.poll_frame() else {
                panic!("nothing delivered")
            };
            assert_eq!(out.len(), 1400);
            p.b.recycle(out);
        })
    });
    g.bench_function("send_side_1400", |b| {
        b.iter(|| {
            p.a.handle_frame(p.now, black_box(&frame));
            let Some(t) = p.a.poll_transmit() else {
                panic!("nothing sent")
            };
            p.a.recycle(black_box(t.payload));
        })
    });
    g.finish();
}

/// A live pair where `a` also knows `stale` nodes (host files with keys and
/// addresses) that never answer, long past their first attempts: what one
/// second of idle costs `a`, so the cost of unreachable peers shows (the
/// per-peer timer queue keeps it to their own retries).
fn idle_pair_with_stale_peers(stale: usize) -> (Pair, Vec<KnownHost>) {
    let mut p = Pair::new();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut hosts: Vec<KnownHost> = (0..stale)
        .map(|i| KnownHost {
            name: node_name(&format!("stale_{i}")),
            public_key: Some(PrivateKey::generate(&mut rng).public()),
            addresses: vec![SocketAddr::from(([198, 51, 100, (i % 250) as u8], 655))],
            subnets: Vec::new(),
            vips: Vec::new(),
            path: Default::default(),
        })
        .collect();
    hosts.push(KnownHost {
        name: node_name("b"),
        public_key: Some(p.b.public_key()),
        addresses: vec!["192.0.2.2:655".parse().unwrap()],
        subnets: Vec::new(),
        vips: Vec::new(),
        path: Default::default(),
    });
    let mut config = p.a.config().clone();
    config.handshake_retry_max = Duration::from_secs(60);
    p.a.reload(config, hosts.clone(), p.now);
    // Past every stale peer's first attempts: they are at the longest back-off.
    p.idle(Duration::from_secs(300));
    (p, hosts)
}

impl Pair {
    /// Runs both nodes' timers for `span` of virtual time, delivering what
    /// goes between them and dropping what goes anywhere else.
    fn idle(&mut self, span: Duration) -> usize {
        let end = self.now + span;
        let mut wakes = 0;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            wakes += 1;
            self.exchange_between();
        }
        self.now = end;
        wakes
    }

    /// As `exchange`, dropping datagrams not addressed to the other node.
    fn exchange_between(&mut self) {
        let addr_a: SocketAddr = "192.0.2.1:655".parse().unwrap();
        let addr_b: SocketAddr = "192.0.2.2:655".parse().unwrap();
        loop {
            let mut moved = false;
            while let Some(mut t) = self.a.poll_transmit() {
                if t.destination == addr_b {
                    self.b.handle_datagram_mut(self.now, addr_a, &mut t.payload);
                    moved = true;
                }
                self.a.recycle(t.payload);
            }
            while let Some(mut t) = self.b.poll_transmit() {
                self.a.handle_datagram_mut(self.now, addr_b, &mut t.payload);
                self.b.recycle(t.payload);
                moved = true;
            }
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
    }
}

fn bench_idle(c: &mut Criterion) {
    let mut g = c.benchmark_group("idle");
    g.sample_size(20);
    for stale in [0usize, 1000, 4000] {
        let (mut p, _) = idle_pair_with_stale_peers(stale);
        assert!(p.a.is_alive("b"), "the live pair survived");
        g.bench_function(format!("one_second_{stale}_stale_peers"), |b| {
            b.iter(|| black_box(p.idle(Duration::from_secs(1))))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_switch,
    bench_offload,
    bench_frame_path,
    bench_idle
);
criterion_main!(benches);
