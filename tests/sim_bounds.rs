//! Resource bounds in a simulated network with a virtual clock: every table a
//! peer, a host on a TAP segment or a flapping mesh can grow is driven to its
//! cap. Each test checks that the table stays at the cap, that `dump limits`'
//! counter counts, and that the mesh keeps working (a peer still gets frames,
//! a VIP still answers).

mod sim;

use meshd::name::NodeName;
use meshd::node::{Limit, NodeConfig};
use meshd::switch::MacAddr;
use meshd::vip::LocalVip;
use rand::SeedableRng;
use sim::SimNet;
use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(3);
const BCAST: [u8; 6] = [0xff; 6];

fn limit(net: &SimNet, node: &str, table: &str) -> Limit {
    net.node(node)
        .limits()
        .into_iter()
        .find(|l| l.name == table)
        .unwrap_or_else(|| panic!("{node} has no limit {table}"))
}

/// An Ethernet frame with a small payload (local experimental EtherType).
fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&[tag; 46]);
    f
}

fn arp_request(src: [u8; 6], sip: Ipv4Addr, tip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BCAST);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&sip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tip.octets());
    f
}

fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x55, b[0], b[1], b[2], b[3]]
}

/// `names` all knowing each other, connecting to the first; `tune` adjusts each config.
fn mesh(seed: u64, names: &[&str], tune: impl Fn(&str, &mut NodeConfig)) -> SimNet {
    let mut net = SimNet::new(seed, names);
    for n in names {
        let mut cfg = if *n == names[0] {
            net.config(n, &[])
        } else {
            net.config(n, &[names[0]])
        };
        tune(n, &mut cfg);
        net.start(cfg, names);
    }
    net.run_for(SETTLE);
    let all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&all), "mesh did not form");
    net
}

/// True if a frame tagged `tag` from `from`'s host to `to_mac` reaches `to`'s TAP.
fn delivers(net: &mut SimNet, from: &str, to: &str, to_mac: [u8; 6], tag: u8) -> bool {
    net.take_tap_rx(to);
    net.tap_send(from, &frame(to_mac, [0x02, 0xee, 0, 0, 0, 1], tag));
    net.run_for(Duration::from_millis(50));
    net.take_tap_rx(to)
        .iter()
        .any(|f| f.len() > 14 && f[14] == tag)
}

#[test]
fn a_full_peer_table_refuses_gossiped_nodes_and_keeps_its_peers() {
    let names = ["b", "a", "c", "d", "e"];
    let mut net = SimNet::new(11, &names);
    for n in names {
        let mut cfg = if n == "b" {
            net.config(n, &[])
        } else {
            net.config(n, &["b"])
        };
        if n == "a" {
            cfg.max_peers = 2;
            net.start(cfg, &["b"]);
        } else {
            net.start(cfg, &names);
        }
    }
    net.run_for(Duration::from_secs(10));
    let peers = limit(&net, "a", "peers");
    assert_eq!((peers.in_use, peers.cap), (2, 2), "{peers:?}");
    assert!(peers.refused >= 2, "{peers:?}");
    assert_eq!(net.node("a").peers().len(), 2);
    assert!(net.sees("a", "b") && net.sees("b", "a"));
    let others: Vec<String> = ["b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&others), "the rest of the mesh suffered");
    assert!(delivers(&mut net, "b", "a", BCAST, 7));
}

#[test]
fn handshakes_in_flight_are_capped_and_a_reachable_peer_still_connects() {
    // 70 known nodes that never answer, and one ("zz", last in order) that does.
    let mut names: Vec<String> = (0..70).map(|i| format!("x{i:02}")).collect();
    names.insert(0, "a".into());
    names.push("zz".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = SimNet::new(12, &refs);
    let cfg = net.config("a", &[]);
    net.start(cfg, &refs);
    let cfg = net.config("zz", &[]);
    net.start(cfg, &["a"]);
    let mut worst = 0;
    for _ in 0..200 {
        net.run_for(Duration::from_millis(50));
        worst = worst.max(limit(&net, "a", "handshakes_in_flight").in_use);
    }
    let l = limit(&net, "a", "handshakes_in_flight");
    assert_eq!(l.cap, meshd::node::limits::MAX_HANDSHAKES_IN_FLIGHT as u64);
    assert!(worst <= l.cap, "{worst} in flight");
    assert_eq!(worst, l.cap, "the cap was never reached");
    assert!(l.refused > 0, "{l:?}");
    assert!(net.sees("a", "zz") && net.sees("zz", "a"));
}

#[test]
fn unreachable_peers_cost_only_their_back_off() {
    // 300 known nodes that never answer: past their first attempts, each
    // costs one attempt (or one deferral while the in-flight cap is full)
    // per back-off, not a retry at 4 Hz while it waits for a slot; and the
    // live pair is unaffected.
    let mut names: Vec<String> = (0..300).map(|i| format!("x{i:03}")).collect();
    names.insert(0, "a".into());
    names.push("zz".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = SimNet::new(14, &refs);
    let cfg = net.config("a", &[]);
    net.start(cfg, &refs);
    let cfg = net.config("zz", &[]);
    net.start(cfg, &["a"]);
    net.run_for(Duration::from_secs(60));
    let deferred_before = limit(&net, "a", "handshakes_in_flight").refused;
    net.run_for(Duration::from_secs(20));
    let deferred = limit(&net, "a", "handshakes_in_flight").refused - deferred_before;
    // At the 5 s back-off (plus jitter), 300 peers make at most ~1,200
    // attempts or deferrals in 20 s; waiting at 250 ms they made ~20,000.
    assert!(deferred <= 1500, "{deferred} deferrals in 20 s");
    assert!(net.sees("a", "zz") && net.sees("zz", "a"));
    assert!(
        net.node("a").timers_queued() >= 300,
        "every unreachable peer keeps its timer"
    );
}

#[test]
fn sessions_per_peer_evict_the_oldest_and_liveness_holds() {
    let names = ["a", "b"];
    let mut net = mesh(13, &names, |_, cfg| {
        cfg.rekey_after_time = Duration::from_millis(700);
    });
    net.run_for(Duration::from_secs(30));
    let l = limit(&net, "a", "sessions_per_peer");
    let lb = limit(&net, "b", "sessions_per_peer");
    assert!(l.in_use <= l.cap && lb.in_use <= lb.cap, "{l:?} {lb:?}");
    assert!(l.evicted + lb.evicted > 0, "{l:?} {lb:?}");
    assert!(net.sees("a", "b") && net.sees("b", "a"));
    for n in names {
        for p in net.node(n).peers().values() {
            assert_eq!(p.stats.deaths, 0, "{n} saw {} die", p.name);
        }
    }
    assert!(delivers(&mut net, "a", "b", BCAST, 9));
}

#[test]
fn mac_table_caps_refuse_a_flooding_peer_and_keep_the_others() {
    let names = ["a", "b", "c"];
    let mut net = mesh(14, &names, |n, cfg| {
        if n == "a" {
            cfg.switch.macs.max_per_port = 50;
            cfg.switch.macs.max_total = 80;
        }
    });
    // b's segment floods 500 random source MACs.
    for i in 0..500 {
        net.tap_send("b", &frame(BCAST, mac(i), 1));
    }
    net.run_for(Duration::from_millis(100));
    let per = limit(&net, "a", "mac_table_per_node");
    assert_eq!((per.in_use, per.cap, per.refused), (50, 50, 450), "{per:?}");
    // c's segment: 40 more; 30 fit under the total of 80.
    for i in 1000..1040 {
        net.tap_send("c", &frame(BCAST, mac(i), 2));
    }
    net.run_for(Duration::from_millis(100));
    let total = limit(&net, "a", "mac_table");
    assert_eq!(
        (total.in_use, total.cap, total.refused),
        (80, 80, 10),
        "{total:?}"
    );
    // Unicast to a learned MAC still goes to its node only.
    net.take_tap_rx("b");
    net.take_tap_rx("c");
    net.tap_send("a", &frame(mac(1000), [0x02, 0xee, 0, 0, 0, 1], 3));
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.take_tap_rx("c").len(), 1);
    assert!(net.take_tap_rx("b").is_empty());
    assert!(delivers(&mut net, "a", "b", mac(0), 4));
}

#[test]
fn a_full_ip_binding_table_refuses_new_bindings_and_still_answers_known_ones() {
    let names = ["a", "b"];
    let mut net = mesh(15, &names, |n, cfg| {
        if n == "a" {
            cfg.switch.neighbour_max = 20;
        }
    });
    let spoofer = [0x02, 0x66, 0, 0, 0, 1];
    for i in 0..100u8 {
        let f = arp_request(
            spoofer,
            Ipv4Addr::new(10, 0, 1, i),
            Ipv4Addr::new(10, 0, 9, 9),
        );
        net.tap_send("b", &f);
    }
    net.run_for(Duration::from_millis(100));
    let l = limit(&net, "a", "ip_bindings");
    assert_eq!((l.in_use, l.cap, l.refused), (20, 20, 80), "{l:?}");
    // A known binding is still answered locally; the question never crosses the mesh.
    let answered = net.node("a").switch().counters().arp_answered;
    net.take_tap_rx("b");
    let q = arp_request(
        [0x02, 0xee, 0, 0, 0, 1],
        Ipv4Addr::new(10, 0, 2, 1),
        Ipv4Addr::new(10, 0, 1, 0),
    );
    net.tap_send("a", &q);
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.node("a").switch().counters().arp_answered, answered + 1);
    assert!(net.take_tap_rx("b").is_empty());
    assert!(delivers(&mut net, "a", "b", spoofer, 5));
}

/// A UDP datagram in an Ethernet frame.
fn udp(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    f
}

#[test]
fn a_full_flow_table_still_steers_new_flows_to_the_vip() {
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);
    const VMAC: [u8; 6] = [0x02, 0x6d, 10, 1, 1, 10];
    let names = ["a", "b"];
    let mut net = mesh(16, &names, |n, cfg| {
        if n == "a" {
            cfg.vip_settings.max_flows = 16;
        } else {
            cfg.vips = vec![LocalVip {
                address: VIP.into(),
                prefix_len: 24,
                weight: 10,
                virtual_mac: MacAddr(VMAC),
                checked: false,
                owner: None,
                presence: None,
                policy: Default::default(),
            }];
        }
    });
    let seen: Rc<RefCell<Vec<u16>>> = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let holder = net.idx("b");
    net.nodes[holder].host = Some(Box::new(move |_, f: &[u8]| {
        if f.len() >= 42 && f[12..14] == [0x08, 0x00] && f[30..34] == VIP.octets() {
            log.borrow_mut().push(u16::from_be_bytes([f[34], f[35]]));
        }
        vec![]
    }));
    net.run_for(Duration::from_secs(2));
    let client = [0x02, 0xcc, 0, 0, 0, 1];
    for port in 1000..1040u16 {
        net.tap_send(
            "a",
            &udp(VMAC, client, Ipv4Addr::new(10, 1, 1, 2), VIP, port),
        );
    }
    net.run_for(Duration::from_millis(100));
    let l = limit(&net, "a", "vip_flows");
    assert_eq!((l.in_use, l.cap, l.refused), (16, 16, 24), "{l:?}");
    let mut got = seen.borrow().clone();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 40, "the VIP did not get every flow: {got:?}");
}

#[test]
fn spoofed_handshake_sources_are_evicted_and_sessions_survive() {
    let names = ["a", "b"];
    let mut net = mesh(17, &names, |_, _| {});
    // Inits that name a known peer but are signed with another key: they pass the
    // cheap checks and reach the rate limiter, from 20000 source addresses over 20 s.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let wrong = meshd::keys::PrivateKey::generate(&mut rng);
    let a_key = *net.node("a").public_key().as_bytes();
    let mut n: u32 = 0;
    let (b, a) = (NodeName::new("b").unwrap(), NodeName::new("a").unwrap());
    for _ in 0..20_000 {
        n += 1;
        let ts = sim::WALL_BASE_NS + u64::from(n);
        let (_, init) =
            meshd::crypto::initiate(&wrong, &b, &a, a_key, n, ts, &mut rng).expect("an init");
        let from = SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 655));
        net.inject("a", from, init);
        net.run_for(Duration::from_millis(1));
    }
    let l = limit(&net, "a", "handshake_sources");
    assert!(l.in_use <= l.cap, "{l:?}");
    assert!(l.evicted > 0, "{l:?}");
    assert!(net.node("a").drops().bad_handshake > 0);
    assert!(net.sees("a", "b") && net.sees("b", "a"));
    assert!(delivers(&mut net, "b", "a", BCAST, 6));
}

/// Forged inits naming `claimed` and signed with a wrong key, one per virtual
/// millisecond from `count` distinct source addresses, for `duration`.
fn forged_init_flood(net: &mut SimNet, to: &str, claimed: &str, seed: u64, duration: Duration) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let wrong = meshd::keys::PrivateKey::generate(&mut rng);
    let to_key = *net.node(to).public_key().as_bytes();
    let steps = duration.as_millis() as u32;
    let (claimed, to_name) = (NodeName::new(claimed).unwrap(), NodeName::new(to).unwrap());
    for n in 1..=steps {
        let ts = sim::WALL_BASE_NS + u64::from(n);
        let (_, init) =
            meshd::crypto::initiate(&wrong, &claimed, &to_name, to_key, n, ts, &mut rng)
                .expect("an init");
        let from = SocketAddr::from((Ipv4Addr::from(0x0a63_0000 + n % 4096), 655));
        net.inject(to, from, init);
        net.run_for(Duration::from_millis(1));
    }
}

#[test]
fn a_forged_init_flood_does_not_lock_out_a_peer_from_its_known_address() {
    let names = ["a", "b"];
    let mut net = mesh(21, &names, |_, _| {});
    // b never reaches a with an init of its own (as if a were behind a NAT):
    // a's inits are the only way back in once a restarts. (b's name is the
    // larger, so b answers a's inits rather than insisting on its own.)
    let (ia, ib) = (net.idx("a"), net.idx("b"));
    net.tap = Some(Box::new(move |from, to, payload| {
        !(from == ib && to == ia && payload.get(1) == Some(&1))
    }));
    net.kill("a");
    // a and b share no VIP: their pair heartbeats at the idle rate, and b
    // needs seconds to declare a dead.
    net.run_for(Duration::from_secs(8));
    // 1000 forged inits a second naming a, from 4096 rotating sources: four
    // times the budget for unknown sources, which stays empty throughout.
    forged_init_flood(&mut net, "b", "a", 21, Duration::from_secs(1));
    assert!(!net.sees("b", "a"));
    net.restart("a");
    forged_init_flood(&mut net, "b", "a", 22, Duration::from_secs(3));
    assert!(
        net.node("b").drops().rate_limited > 1000,
        "the flood did not exhaust the budget: {:?}",
        net.node("b").drops()
    );
    assert!(
        net.sees("a", "b") && net.sees("b", "a"),
        "a, restarted at its known address, was locked out by the flood"
    );
    assert!(delivers(&mut net, "a", "b", BCAST, 9));
}

#[test]
fn send_tap_and_spare_queues_are_capped_and_drain() {
    use meshd::node::limits::{MAX_SEND_QUEUE, MAX_TAP_QUEUE};
    let names = ["a", "b", "c"];
    let mut net = mesh(18, &names, |_, _| {});
    let now = net.now;
    // One burst of broadcasts with no flush in between: 2 copies each.
    for i in 0..5000u32 {
        net.node_mut("a")
            .handle_frame(now, &frame(BCAST, mac(i % 100), 1));
    }
    let send = limit(&net, "a", "send_queue");
    assert!(send.in_use <= MAX_SEND_QUEUE as u64 + 64, "{send:?}");
    assert_eq!(send.refused, 10_000 - MAX_SEND_QUEUE as u64, "{send:?}");
    // A binding behind b, then a burst of ARP requests for it: answers go to the TAP.
    net.run_for(Duration::from_millis(100));
    let bm = [0x02, 0x77, 0, 0, 0, 2];
    net.tap_send(
        "b",
        &arp_request(bm, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 9)),
    );
    net.run_for(Duration::from_millis(50));
    let q = arp_request(
        [0x02, 0xee, 0, 0, 0, 1],
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
    );
    let now = net.now;
    for _ in 0..(MAX_TAP_QUEUE + 100) {
        net.node_mut("a").handle_frame(now, &q);
    }
    let tap = limit(&net, "a", "tap_queue");
    assert_eq!(
        (tap.in_use, tap.refused),
        (MAX_TAP_QUEUE as u64, 100),
        "{tap:?}"
    );
    for _ in 0..(1024 + 10) {
        net.node_mut("a").recycle(Vec::with_capacity(64));
    }
    let spare = limit(&net, "a", "spare_buffers");
    assert_eq!(spare.in_use, spare.cap);
    assert!(spare.refused >= 10, "{spare:?}");
    // Drained, the mesh carries frames again.
    let drained = net.run_until_cond(Duration::from_secs(5), Duration::from_millis(10), |n| {
        n.node("a").queued()
            == meshd::node::QueueDepth {
                transmits: 0,
                frames: 0,
            }
    });
    assert!(drained.is_some(), "the queues did not drain");
    assert!(net.sees("a", "b") && net.sees("a", "c"));
    assert!(delivers(&mut net, "a", "c", BCAST, 8));
}

#[test]
fn a_burst_of_deaths_backs_off_re_handshakes_and_spares_the_survivors() {
    let names: Vec<String> = (0..12).map(|i| format!("n{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = mesh(19, &refs, |_, _| {});
    let inits = Rc::new(RefCell::new(0u64));
    let count = inits.clone();
    let survivors = [net.idx("n00"), net.idx("n01")];
    net.tap = Some(Box::new(move |from, to, payload| {
        if survivors.contains(&from) && !survivors.contains(&to) && payload.get(1) == Some(&1) {
            *count.borrow_mut() += 1;
        }
        true
    }));
    for n in &refs[2..] {
        net.kill(n);
    }
    net.run_for(Duration::from_secs(60));
    // 10 dead peers, two survivors, 60 s: back-off 250 ms doubling to 5 s with jitter is
    // about 16 attempts per peer; without back-off it would be 240.
    let sent = *inits.borrow();
    assert!(sent <= 2 * 10 * 25, "{sent} handshake inits to dead peers");
    assert!(net.sees("n00", "n01") && net.sees("n01", "n00"));
    for s in ["n00", "n01"] {
        let other = if s == "n00" { "n01" } else { "n00" };
        assert_eq!(net.node(s).peers()[other].stats.deaths, 0);
        assert!(limit(&net, s, "handshakes_in_flight").in_use <= 10);
    }
}

/// `node` never declared any of `peers` dead and sees them all.
fn assert_keeps_peers(net: &SimNet, node: &str, peers: &[&str]) {
    for p in peers {
        assert_eq!(
            net.node(node).peers()[*p].stats.deaths,
            0,
            "{node} declared {p} dead"
        );
        assert!(net.sees(node, p));
    }
}

#[test]
fn a_stalled_node_does_not_declare_its_peers_dead() {
    let names = ["a", "b", "c"];
    let mut net = mesh(20, &names, |_, _| {});
    // The node is not run for 2 s (a stalled loop) but its peers keep sending;
    // when it runs again, it reads what queued up before looking at its timers.
    net.freeze("a");
    net.run_for(Duration::from_secs(2));
    net.thaw("a");
    net.run_for(Duration::from_secs(1));
    assert_keeps_peers(&net, "a", &["b", "c"]);
    assert!(delivers(&mut net, "a", "b", BCAST, 10));
}

#[test]
fn a_node_deaf_for_a_moment_does_not_declare_all_its_peers_dead() {
    let names = ["a", "b", "c"];
    let mut net = mesh(22, &names, |_, _| {});
    // For 320 ms nothing reaches a (its loop busy with bulk data, say) while a
    // itself runs and sends: every peer crosses a's 300 ms deadline at once.
    let ia = net.idx("a");
    let deaf = Rc::new(RefCell::new(true));
    let gate = deaf.clone();
    net.tap = Some(Box::new(move |_, to, _| !(to == ia && *gate.borrow())));
    net.run_for(Duration::from_millis(320));
    *deaf.borrow_mut() = false;
    net.run_for(Duration::from_secs(1));
    assert_keeps_peers(&net, "a", &["b", "c"]);
}

#[test]
fn a_node_really_cut_off_still_declares_its_peers_dead() {
    let names = ["a", "b", "c"];
    let mut net = mesh(23, &names, |_, _| {});
    net.partition(&["a"]);
    // No VIP: the pairs heartbeat every IdleHelloInterval (2 s) and a peer
    // is dead after about two of them plus DeadInterval (at most four), plus
    // the one grace of three quarters of that for silence from all at once.
    net.run_for(Duration::from_secs(2));
    assert!(
        net.sees("a", "b"),
        "an idle pair died before two idle heartbeats"
    );
    net.run_for(Duration::from_secs(12));
    for p in ["b", "c"] {
        assert!(!net.sees("a", p), "a still sees {p}");
        assert_eq!(net.node("a").peers()[p].stats.deaths, 1);
    }
    // b and c, which still hear each other, declared only a dead, on time.
    assert!(net.sees("b", "c") && net.sees("c", "b"));
    assert!(!net.sees("b", "a"));
}

#[test]
fn forged_handshake_responses_spend_the_handshake_budget() {
    use meshd::crypto::{HandshakeInit, HandshakeResponse};
    let mut net = mesh(31, &["a", "b"], |_, _| {});
    // b dies; a keeps trying it, and whoever sees a's init (here: the test)
    // learns the index a waits an answer for.
    let seen: Rc<RefCell<Vec<u32>>> = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    net.tap = Some(Box::new(move |from, _to, payload| {
        if from == 0 {
            if let Ok(init) = HandshakeInit::parse(payload) {
                log.borrow_mut().push(init.sender_index);
            }
        }
        true
    }));
    net.kill("b");
    net.run_until_cond(Duration::from_secs(20), Duration::from_millis(10), |n| {
        !n.sees("a", "b") && !seen.borrow().is_empty()
    })
    .expect("a never retried b");
    let index = *seen.borrow().last().expect("a sent no handshake init to b");
    let forged = HandshakeResponse {
        sender_index: 7,
        receiver_index: index,
        ephemeral: [9; 32],
        signature: [0; 64],
    }
    .emit();
    let attacker: SocketAddr = "198.51.100.9:655".parse().unwrap();
    let rate_limited = net.node("a").drops().rate_limited;
    for _ in 0..1000 {
        net.inject("a", attacker, forged.clone());
    }
    let failures = net.node("a").peers()["b"].stats.handshake_failures;
    let refused = net.node("a").drops().rate_limited - rate_limited;
    eprintln!("1000 forged responses: {failures} verified, {refused} refused by the limiter");
    assert!(
        failures <= 50,
        "{failures} forged responses reached signature verification"
    );
    assert!(refused >= 950, "only {refused} were rate-limited");
    // b comes back: its genuine response still completes a handshake.
    net.restart("b");
    net.run_until_cond(Duration::from_secs(10), Duration::from_millis(10), |n| {
        n.sees("a", "b")
    })
    .expect("a never saw b again");
}
