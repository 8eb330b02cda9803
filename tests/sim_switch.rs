//! The distributed switch in a simulated network with a virtual clock:
//! learning, flooding without duplicates, expiry, migration, table caps,
//! local ARP answers, static MAC pins, subnet events and bad frames.

mod sim;

use meshd::node::Event;
use meshd::switch::MacAddr;
use sim::SimNet;
use std::net::Ipv4Addr;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(3);

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, last]
}

/// An Ethernet frame with a small IPv4-ish payload.
fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f.extend_from_slice(&[tag; 46]);
    f
}

fn arp(
    op: u16,
    dst: [u8; 6],
    src: [u8; 6],
    sip: Ipv4Addr,
    tmac: [u8; 6],
    tip: Ipv4Addr,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&src);
    f.extend_from_slice(&sip.octets());
    f.extend_from_slice(&tmac);
    f.extend_from_slice(&tip.octets());
    f
}

const BCAST: [u8; 6] = [0xff; 6];

/// A full mesh of `names`, everybody connecting to the first.
fn mesh(seed: u64, names: &[&str]) -> SimNet {
    let mut net = SimNet::new(seed, names);
    let hub = names[0];
    for n in names {
        let cfg = if *n == hub {
            net.config(n, &[])
        } else {
            net.config(n, &[hub])
        };
        net.start(cfg, names);
    }
    net.run_for(SETTLE);
    let all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&all), "mesh did not form");
    net
}

fn clear_taps(net: &mut SimNet, names: &[&str]) {
    for n in names {
        net.take_tap_rx(n);
    }
}

#[test]
fn learns_floods_once_then_switches_unicast_to_one_node() {
    let names = ["a", "b", "c"];
    let mut net = mesh(1, &names);
    clear_taps(&mut net, &names);
    // A broadcast from a's host reaches b and c once each, never back to a.
    net.tap_send("a", &frame(BCAST, mac(0xa1), 1));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("b"), vec![frame(BCAST, mac(0xa1), 1)]);
    assert_eq!(net.take_tap_rx("c"), vec![frame(BCAST, mac(0xa1), 1)]);
    assert!(net.take_tap_rx("a").is_empty());
    // b's answer to a1 goes to a only: b learned where a1 is.
    net.tap_send("b", &frame(mac(0xa1), mac(0xb1), 2));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("a"), vec![frame(mac(0xa1), mac(0xb1), 2)]);
    assert!(
        net.take_tap_rx("c").is_empty(),
        "unicast to a known MAC was flooded"
    );
    // And a learned b1 from that answer.
    net.tap_send("a", &frame(mac(0xb1), mac(0xa1), 3));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("b").len(), 1);
    assert!(net.take_tap_rx("c").is_empty());
    // Unknown unicast is flooded.
    net.tap_send("a", &frame(mac(0xee), mac(0xa1), 4));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("b").len(), 1);
    assert_eq!(net.take_tap_rx("c").len(), 1);
    // dump nodes counters count those frames.
    let a = net.node("a");
    let b_stats = &a.peers()["b"].stats;
    assert_eq!(b_stats.tx_packets, 3);
    assert_eq!(b_stats.rx_packets, 1);
    assert_eq!(a.tap_stats().rx_packets, 3);
    // At stop, a runs subnet-down for the MAC it learned on its own TAP, as tinc does.
    net.stop("a");
    let a1: meshd::config::Subnet = "02:00:00:00:00:a1".parse().unwrap();
    assert!(net.nodes[net.idx("a")]
        .events
        .iter()
        .any(|(_, e)| matches!(e,
        Event::SubnetDown { owner: None, subnet, .. } if *subnet == a1)));
}

#[test]
fn broadcast_on_a_redundant_mesh_arrives_exactly_once_everywhere() {
    let names = ["n1", "n2", "n3", "n4", "n5", "n6"];
    let mut net = SimNet::new(2, &names);
    // Redundant paths: a ring plus chords.
    let links: [(&str, &[&str]); 6] = [
        ("n1", &["n2", "n4"]),
        ("n2", &["n3", "n5"]),
        ("n3", &["n4", "n6"]),
        ("n4", &["n5"]),
        ("n5", &["n6"]),
        ("n6", &["n1"]),
    ];
    for (n, to) in links {
        let cfg = net.config(n, to);
        net.start(cfg, &names);
    }
    net.run_for(SETTLE);
    let all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&all));
    clear_taps(&mut net, &names);
    for (k, origin) in names.iter().enumerate() {
        net.tap_send(origin, &frame(BCAST, mac(k as u8 + 1), k as u8));
        net.run_for(Duration::from_millis(50));
        for n in &names {
            let got = net.take_tap_rx(n);
            let expect = usize::from(n != origin);
            assert_eq!(
                got.len(),
                expect,
                "{n} got {} copies from {origin}",
                got.len()
            );
        }
    }
}

#[test]
fn learned_macs_expire_after_mac_expire_of_silence() {
    let names = ["a", "b", "c"];
    let mut net = SimNet::new(3, &names);
    for n in names {
        let mut cfg = net.config(n, if n == "a" { &[] } else { &["a"] });
        cfg.switch.macs.expire = Duration::from_secs(20);
        net.start(cfg, &names);
    }
    net.run_for(SETTLE);
    net.tap_send("a", &frame(BCAST, mac(0xa1), 1));
    net.run_for(Duration::from_secs(10));
    clear_taps(&mut net, &names);
    net.tap_send("b", &frame(mac(0xa1), mac(0xb1), 2));
    net.run_for(Duration::from_millis(10));
    assert!(net.take_tap_rx("c").is_empty(), "still known after 10 s");
    // 20 s of silence from a1 (b1 keeps talking; that does not refresh a1).
    net.run_for(Duration::from_secs(12));
    clear_taps(&mut net, &names);
    net.tap_send("b", &frame(mac(0xa1), mac(0xb1), 3));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("c").len(), 1, "expired MAC must be flooded");
    let b_events = &net.nodes[net.idx("b")].events;
    let a1: meshd::config::Subnet = "02:00:00:00:00:a1".parse().unwrap();
    assert!(b_events.iter().any(|(_, e)| matches!(e,
        Event::SubnetDown { owner: Some(o), subnet, .. } if o == "a" && *subnet == a1)));
}

#[test]
fn a_mac_that_shows_up_behind_another_node_moves_at_once() {
    let names = ["a", "b", "c"];
    let mut net = mesh(4, &names);
    net.tap_send("a", &frame(BCAST, mac(0x77), 1));
    net.run_for(Duration::from_millis(10));
    // The VM migrates to c and speaks once.
    net.tap_send("c", &frame(BCAST, mac(0x77), 2));
    net.run_for(Duration::from_millis(10));
    clear_taps(&mut net, &names);
    net.tap_send("b", &frame(mac(0x77), mac(0xb1), 3));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("c").len(), 1);
    assert!(
        net.take_tap_rx("a").is_empty(),
        "frame went to the old location"
    );
}

#[test]
fn a_random_source_mac_flood_cannot_evict_other_entries() {
    let names = ["a", "b", "c"];
    let mut net = SimNet::new(5, &names);
    for n in names {
        let mut cfg = net.config(n, if n == "a" { &[] } else { &["a"] });
        cfg.switch.macs.max_per_port = 100;
        cfg.switch.macs.max_total = 150;
        net.start(cfg, &names);
    }
    net.run_for(SETTLE);
    net.tap_send("c", &frame(BCAST, mac(0xc1), 1));
    net.run_for(Duration::from_millis(10));
    // b's host (or b itself) sends 10 000 frames from random source MACs.
    for k in 0..10_000u32 {
        let b = k.to_be_bytes();
        let src = [0x02, 0x99, b[0], b[1], b[2], b[3]];
        net.tap_send("b", &frame(BCAST, src, 0));
        if k % 500 == 0 {
            net.run_for(Duration::from_millis(5));
        }
    }
    net.run_for(Duration::from_millis(50));
    let a = net.node("a");
    let macs = a.switch().macs();
    let from_b = macs.count_for(&meshd::switch::Port::Peer("b".into()));
    assert!(from_b <= 100, "b holds {from_b} entries");
    assert!(macs.len() <= 150);
    assert!(a.switch().counters().cap_hits > 0);
    assert_eq!(
        macs.lookup(&MacAddr(mac(0xc1))),
        Some(&meshd::switch::Port::Peer("c".into())),
        "c's entry was evicted"
    );
}

#[test]
fn arp_is_answered_locally_on_a_hit_and_flooded_on_a_miss() {
    let names = ["a", "b", "c"];
    let mut net = mesh(6, &names);
    let ip_b = Ipv4Addr::new(10, 1, 1, 2);
    let ip_a = Ipv4Addr::new(10, 1, 1, 1);
    // b's host announces itself (a gratuitous ARP); everybody learns 10.1.1.2 = b1.
    net.tap_send("b", &arp(1, BCAST, mac(0xb1), ip_b, [0; 6], ip_b));
    net.run_for(Duration::from_millis(10));
    clear_taps(&mut net, &names);
    let before: u64 = net
        .node("a")
        .peers()
        .values()
        .map(|p| p.stats.tx_packets)
        .sum();
    net.tap_send("a", &arp(1, BCAST, mac(0xa1), ip_a, [0; 6], ip_b));
    net.run_for(Duration::from_millis(10));
    let after: u64 = net
        .node("a")
        .peers()
        .values()
        .map(|p| p.stats.tx_packets)
        .sum();
    assert_eq!(after - before, 0, "the ARP request crossed the mesh");
    assert!(net.take_tap_rx("b").is_empty());
    assert!(net.take_tap_rx("c").is_empty());
    let replies = net.take_tap_rx("a");
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert_eq!(&r[0..6], &mac(0xa1), "reply goes to the asker");
    assert_eq!(&r[6..12], &mac(0xb1));
    assert_eq!(&r[20..22], &[0, 2], "an ARP reply");
    assert_eq!(&r[22..28], &mac(0xb1), "sender MAC = b's host");
    assert_eq!(&r[28..32], &ip_b.octets());
    assert_eq!(&r[32..38], &mac(0xa1));
    assert_eq!(&r[38..42], &ip_a.octets());
    // A miss floods.
    net.tap_send(
        "a",
        &arp(
            1,
            BCAST,
            mac(0xa1),
            ip_a,
            [0; 6],
            Ipv4Addr::new(10, 1, 1, 99),
        ),
    );
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("b").len(), 1);
    assert_eq!(net.take_tap_rx("c").len(), 1);
    // When b dies, its binding is not used: the request floods to c.
    net.kill("b");
    // No VIP here: a-b is an idle pair, dead after its idle deadline (4.3-8.3 s).
    net.run_for(Duration::from_secs(10));
    assert!(!net.sees("a", "b"));
    clear_taps(&mut net, &["a", "c"]);
    net.tap_send("a", &arp(1, BCAST, mac(0xa1), ip_a, [0; 6], ip_b));
    net.run_for(Duration::from_millis(10));
    assert!(net.take_tap_rx("a").is_empty(), "answered for a dead node");
    assert_eq!(net.take_tap_rx("c").len(), 1);
}

#[test]
fn static_mac_subnets_pin_a_mac_and_run_subnet_events() {
    let names = ["a", "b", "c"];
    let mut net = SimNet::new(7, &names);
    for n in names {
        let mut cfg = net.config(n, if n == "a" { &[] } else { &["a"] });
        if n == "c" {
            cfg.subnets = vec!["02:00:00:00:00:cc".parse().unwrap()];
        }
        net.start(cfg, &names);
    }
    net.run_for(SETTLE);
    clear_taps(&mut net, &names);
    // b never saw traffic from cc, yet sends to c only.
    net.tap_send("b", &frame(mac(0xcc), mac(0xb1), 1));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("c").len(), 1);
    assert!(net.take_tap_rx("a").is_empty());
    // A frame claiming cc from a does not move the pinned entry.
    net.tap_send("a", &frame(BCAST, mac(0xcc), 2));
    net.run_for(Duration::from_millis(10));
    clear_taps(&mut net, &names);
    net.tap_send("b", &frame(mac(0xcc), mac(0xb1), 3));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.take_tap_rx("c").len(), 1);
    assert!(net.take_tap_rx("a").is_empty());
    // b ran subnet-up for c's static subnet right after host-up for c.
    let cc: meshd::config::Subnet = "02:00:00:00:00:cc".parse().unwrap();
    let ev = &net.nodes[net.idx("b")].events;
    let up = ev
        .iter()
        .position(|(_, e)| matches!(e, Event::PeerUp { name, .. } if name == "c"))
        .expect("host-up c");
    let sub = ev
        .iter()
        .position(|(_, e)| matches!(e, Event::SubnetUp { owner: Some(o), subnet, .. } if o == "c" && *subnet == cc))
        .expect("subnet-up cc");
    assert!(sub > up);
    // And dump subnets lists it with its owner, plus a learned MAC.
    let subs = net.node("b").subnet_statuses(net.now);
    assert!(subs
        .iter()
        .any(|s| s.subnet == "02:00:00:00:00:cc" && s.owner == "c"));
    assert!(subs
        .iter()
        .any(|s| s.subnet == "ff:ff:ff:ff:ff:ff" && s.owner == "(broadcast)"));
    // c going away runs subnet-down for it on b.
    net.stop("c");
    net.run_for(Duration::from_millis(100));
    let ev = &net.nodes[net.idx("b")].events;
    assert!(ev.iter().any(|(_, e)| matches!(e,
        Event::SubnetDown { owner: Some(o), subnet, .. } if o == "c" && *subnet == cc)));
}

#[test]
fn bad_frames_are_dropped_and_counted() {
    let names = ["a", "b"];
    let mut net = mesh(8, &names);
    clear_taps(&mut net, &names);
    net.tap_send("a", &[1, 2, 3]);
    net.tap_send("a", &frame(BCAST, [0x03, 0, 0, 0, 0, 1], 0)); // multicast source
    let mut bad_arp = arp(
        1,
        BCAST,
        mac(0xa1),
        Ipv4Addr::new(10, 1, 1, 1),
        [0; 6],
        Ipv4Addr::new(10, 1, 1, 2),
    );
    bad_arp[18] = 9; // hlen
    net.tap_send("a", &bad_arp);
    net.tap_send("a", &vec![0x02; 70_000]);
    net.run_for(Duration::from_millis(10));
    assert!(net.take_tap_rx("b").is_empty());
    let c = net.node("a").switch().counters().clone();
    assert!(c.runt >= 1, "{c:?}");
    assert!(c.multicast_source >= 1, "{c:?}");
    assert!(c.malformed_arp >= 1, "{c:?}");
    assert!(c.oversized >= 1, "{c:?}");
}

/// Heartbeats are not queued behind frames: with a burst of frames waiting
/// to go out, the Hello that falls due is the first datagram sent.
#[test]
fn heartbeats_leave_before_queued_frames() {
    let mut net = mesh(41, &["a", "b"]);
    net.tap_send("b", &frame(BCAST, mac(2), 0));
    net.run_for(Duration::from_millis(50));
    let now = net.now;
    let node = net.node_mut("a");
    let mut big = frame(mac(2), mac(1), 7);
    big.resize(1400, 7);
    for _ in 0..100 {
        node.handle_frame(now, &big);
    }
    // Nothing was sent yet; the next Hello is due within HelloInterval.
    node.handle_timeout(now + Duration::from_millis(150));
    let first = node.poll_transmit().expect("datagrams queued");
    assert!(
        first.payload.len() < 200,
        "first datagram is {} bytes: a frame went before the heartbeat",
        first.payload.len()
    );
    let mut frames = 0;
    while let Some(t) = node.poll_transmit() {
        if t.payload.len() > 1000 {
            frames += 1;
        }
    }
    assert_eq!(frames, 100, "every frame still goes out");
}
