//! Tests of the [`Switch`]: forwarding, learning, events, caps and validation,
//! with a fake clock. ARP/ND answering is in `switch_answer_tests`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

pub(super) const LOCAL: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub(super) const LOCAL2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
pub(super) const MB: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
pub(super) const MC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);
pub(super) const IP_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(super) const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

pub(super) fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub(super) fn data(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    eth(dst, src, ETHERTYPE_IPV4, &[0x45; 40])
}

pub(super) fn arp(
    op: u16,
    eth_dst: MacAddr,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sender.0 .0);
    p.extend_from_slice(&sender.1.octets());
    p.extend_from_slice(&target.0 .0);
    p.extend_from_slice(&target.1.octets());
    eth(eth_dst, sender.0, ETHERTYPE_ARP, &p)
}

/// A broadcast who-has `target` from the local host.
pub(super) fn who_has(target: Ipv4Addr) -> Vec<u8> {
    arp(
        1,
        MacAddr::BROADCAST,
        (LOCAL, IP_LOCAL),
        (MacAddr::ZERO, target),
    )
}

/// A gratuitous ARP reply from peer-side station `mac` at `ip`.
pub(super) fn is_at(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    arp(2, MacAddr::BROADCAST, (mac, ip), (MacAddr::ZERO, ip))
}

pub(super) fn all_alive(_: &str) -> bool {
    true
}

pub(super) fn events(sw: &mut Switch) -> Vec<SwitchEvent> {
    std::iter::from_fn(|| sw.poll_event()).collect()
}

pub(super) fn up(mac: MacAddr, port: Port) -> SwitchEvent {
    SwitchEvent::MacUp { mac, port }
}

pub(super) fn down(mac: MacAddr, port: Port) -> SwitchEvent {
    SwitchEvent::MacDown { mac, port }
}

pub(super) fn peer(name: &str) -> Port {
    Port::peer(name)
}

pub(super) fn tap(sw: &mut Switch, now: Instant, frame: &[u8]) -> Delivery {
    let mut replies = Vec::new();
    let d = sw.from_tap(now, frame, all_alive, &mut replies);
    assert!(replies.is_empty());
    d
}

#[test]
fn learns_and_forwards_unicast_to_the_right_peer() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    assert_eq!(sw.from_peer(t0, "b", &data(LOCAL, MB)), Delivery::Tap);
    assert_eq!(sw.from_peer(t0, "c", &data(LOCAL, MC)), Delivery::Tap);
    assert_eq!(events(&mut sw), vec![up(MB, peer("b")), up(MC, peer("c"))]);
    assert_eq!(
        tap(&mut sw, t0, &data(MB, LOCAL)),
        Delivery::Peer("b".into())
    );
    assert_eq!(
        tap(&mut sw, t0, &data(MC, LOCAL)),
        Delivery::Peer("c".into())
    );
    assert_eq!(events(&mut sw), vec![up(LOCAL, Port::Local)]);
    // Refreshes queue nothing.
    for _ in 0..100 {
        sw.from_peer(t0, "b", &data(LOCAL, MB));
        tap(&mut sw, t0, &data(MB, LOCAL));
    }
    assert_eq!(events(&mut sw), vec![]);
    assert_eq!(sw.counters().unicast, 102);
    assert_eq!(sw.counters().delivered, 102);
    assert_eq!(sw.macs().lookup(&LOCAL), Some(&Port::Local));
}

#[test]
fn floods_broadcast_multicast_unknown_and_dead() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    assert_eq!(
        tap(&mut sw, t0, &data(MacAddr::BROADCAST, LOCAL)),
        Delivery::Flood
    );
    assert_eq!(
        tap(&mut sw, t0, &data(MacAddr([0x01, 0, 0x5e, 0, 0, 9]), LOCAL)),
        Delivery::Flood
    );
    assert_eq!(tap(&mut sw, t0, &data(MB, LOCAL)), Delivery::Flood);
    assert_eq!(sw.counters().unknown_unicast, 1);
    sw.from_peer(t0, "b", &data(LOCAL, MB));
    let mut replies = Vec::new();
    let d = sw.from_tap(t0, &data(MB, LOCAL), |p| p != "b", &mut replies);
    assert_eq!(d, Delivery::Flood);
    assert_eq!(sw.counters().dead_peer, 1);
    assert_eq!(sw.counters().flooded, 4);
    // Frames from peers, even broadcast ones, only ever reach the TAP.
    assert_eq!(
        sw.from_peer(t0, "c", &data(MacAddr::BROADCAST, MC)),
        Delivery::Tap
    );
    assert_eq!(sw.from_peer(t0, "c", &data(MB, MC)), Delivery::Tap);
}

#[test]
fn local_destination_is_looped() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    tap(&mut sw, t0, &data(MacAddr::BROADCAST, LOCAL2));
    assert_eq!(tap(&mut sw, t0, &data(LOCAL2, LOCAL)), Delivery::Drop);
    assert_eq!(sw.counters().looped, 1);
}

#[test]
fn mac_moves_between_peers_at_once() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    sw.from_peer(t0, "b", &data(LOCAL, MB));
    events(&mut sw);
    sw.from_peer(t0, "c", &data(LOCAL, MB));
    assert_eq!(
        events(&mut sw),
        vec![SwitchEvent::MacMoved {
            mac: MB,
            from: peer("b"),
            to: peer("c")
        }]
    );
    assert_eq!(
        tap(&mut sw, t0, &data(MB, LOCAL)),
        Delivery::Peer("c".into())
    );
    // Moving to the local side, and back.
    tap(&mut sw, t0, &data(MacAddr::BROADCAST, MB));
    sw.from_peer(t0, "b", &data(LOCAL, MB));
    let ev = events(&mut sw);
    assert!(ev.contains(&SwitchEvent::MacMoved {
        mac: MB,
        from: peer("c"),
        to: Port::Local
    }));
    assert!(ev.contains(&SwitchEvent::MacMoved {
        mac: MB,
        from: Port::Local,
        to: peer("b")
    }));
    assert_eq!(sw.counters().mac_moves, 3);
}

#[test]
fn expiry_with_fake_clock() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    sw.from_peer(t0, "b", &data(LOCAL, MB));
    sw.from_peer(t0, "b", &is_at(MC, IP_B));
    tap(&mut sw, t0 + Duration::from_secs(100), &data(MB, LOCAL));
    events(&mut sw);
    sw.expire(t0 + Duration::from_secs(599));
    assert_eq!(events(&mut sw), vec![]);
    assert_eq!(sw.neighbours().len(), 0, "bindings expire after 300 s");
    sw.expire(t0 + Duration::from_secs(600));
    assert_eq!(
        events(&mut sw),
        vec![down(MB, peer("b")), down(MC, peer("b"))]
    );
    sw.expire(t0 + Duration::from_secs(700));
    assert_eq!(events(&mut sw), vec![down(LOCAL, Port::Local)]);
    assert!(sw.macs().is_empty());
    // An expired MAC is unknown again: flooded.
    assert_eq!(
        tap(&mut sw, t0 + Duration::from_secs(701), &data(MB, LOCAL)),
        Delivery::Flood
    );
}

#[test]
fn static_pin_beats_learning() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    sw.from_peer(t0, "c", &data(LOCAL, MB));
    events(&mut sw);
    sw.set_static(peer("b"), &[MB, MC]);
    assert_eq!(
        events(&mut sw),
        vec![
            SwitchEvent::MacMoved {
                mac: MB,
                from: peer("c"),
                to: peer("b")
            },
            up(MC, peer("b"))
        ]
    );
    // Neither the TAP nor another peer can take a pinned MAC.
    assert_eq!(
        tap(&mut sw, t0, &data(MacAddr::BROADCAST, MB)),
        Delivery::Flood
    );
    assert_eq!(sw.from_peer(t0, "c", &data(LOCAL, MB)), Delivery::Tap);
    assert_eq!(sw.counters().pinned_source, 2);
    assert_eq!(sw.macs().lookup(&MB), Some(&peer("b")));
    assert_eq!(
        tap(&mut sw, t0, &data(MB, LOCAL)),
        Delivery::Peer("b".into())
    );
    // Statics survive the peer going down and expiry; replacing the set removes them.
    sw.peer_down("b");
    sw.expire(t0 + Duration::from_secs(10_000));
    let ev = events(&mut sw);
    assert!(!ev
        .iter()
        .any(|e| matches!(e, SwitchEvent::MacDown { mac, .. } if *mac == MB || *mac == MC)));
    sw.set_static(peer("b"), &[MC]);
    assert_eq!(events(&mut sw), vec![down(MB, peer("b"))]);
}

#[test]
fn peer_down_forgets_its_macs() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    sw.from_peer(t0, "b", &data(LOCAL, MB));
    sw.from_peer(t0, "b", &data(LOCAL, MC));
    sw.from_peer(t0, "c", &data(LOCAL, LOCAL2));
    events(&mut sw);
    sw.peer_down("b");
    assert_eq!(
        events(&mut sw),
        vec![down(MB, peer("b")), down(MC, peer("b"))]
    );
    sw.peer_down("b");
    assert_eq!(events(&mut sw), vec![]);
    assert_eq!(sw.macs().lookup(&LOCAL2), Some(&peer("c")));
}

#[test]
fn caps_hold_against_a_flood_of_source_macs() {
    let t0 = crate::test_clock::start();
    let cfg = SwitchConfig {
        macs: MacTableLimits {
            max_per_port: 100,
            ..MacTableLimits::default()
        },
        ..SwitchConfig::default()
    };
    let mut sw = Switch::new(cfg);
    for n in 0..20u8 {
        sw.from_peer(t0, "good", &data(LOCAL, MacAddr([0x02, 0xaa, 0, 0, 0, n])));
    }
    events(&mut sw);
    let mut rng_state = 0x1234_5678_9abc_def0u64;
    let mut delivered = 0;
    for _ in 0..10_000 {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let b = rng_state.to_be_bytes();
        let src = MacAddr([b[0] & 0xfe, b[1], b[2], b[3], b[4], b[5]]);
        if sw.from_peer(t0, "evil", &data(LOCAL, src)) == Delivery::Tap {
            delivered += 1;
        }
    }
    assert_eq!(
        delivered, 10_000,
        "frames are still delivered, just not learned"
    );
    assert_eq!(sw.macs().count_for(&peer("evil")), 100);
    assert_eq!(sw.counters().cap_hits, 9_900);
    assert_eq!(sw.macs().cap_hits(), 9_900);
    for n in 0..20u8 {
        assert_eq!(
            sw.macs().lookup(&MacAddr([0x02, 0xaa, 0, 0, 0, n])),
            Some(&peer("good"))
        );
    }
    // One CapHit queued for the port, not one per frame.
    let ev = events(&mut sw);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, SwitchEvent::CapHit { .. }))
            .count(),
        1
    );
    assert!(ev.contains(&SwitchEvent::CapHit { port: peer("evil") }));
    assert_eq!(ev.len(), 101);
    // Once polled, the next refusal queues another.
    sw.from_peer(t0, "evil", &data(LOCAL, MacAddr([0x02, 0xbb, 0, 0, 0, 1])));
    sw.from_peer(t0, "evil", &data(LOCAL, MacAddr([0x02, 0xbb, 0, 0, 0, 2])));
    assert_eq!(
        events(&mut sw),
        vec![SwitchEvent::CapHit { port: peer("evil") }]
    );
}

#[test]
fn malformed_inputs_are_counted() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig {
        max_frame_len: 100,
        ..SwitchConfig::default()
    });
    let mut replies = Vec::new();
    let runt = [0u8; 13];
    let oversized = eth(MB, LOCAL, ETHERTYPE_IPV4, &[0; 87]);
    let group_src = data(MB, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    let zero_src = data(MB, MacAddr::ZERO);
    let mut bad_arp = who_has(IP_B);
    bad_arp[14 + 4] = 8; // hardware length 8
    let short_arp = who_has(IP_B)[..40].to_vec();
    for frame in [
        &runt[..],
        &oversized,
        &group_src,
        &zero_src,
        &bad_arp,
        &short_arp,
    ] {
        assert_eq!(
            sw.from_tap(t0, frame, all_alive, &mut replies),
            Delivery::Drop
        );
        assert_eq!(sw.from_peer(t0, "b", frame), Delivery::Drop);
    }
    let c = sw.counters();
    assert_eq!(
        (c.runt, c.oversized, c.multicast_source, c.malformed_arp),
        (2, 2, 4, 4)
    );
    // Exactly max_frame_len passes.
    let max = eth(MB, LOCAL, ETHERTYPE_IPV4, &[0; 86]);
    assert_eq!(sw.from_peer(t0, "b", &max), Delivery::Tap);
    assert!(replies.is_empty());
    let json = serde_json::to_value(sw.counters()).unwrap();
    assert_eq!(json["malformed_arp"], 4);
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_switch(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..20),
        from_peer in proptest::collection::vec(any::<bool>(), 20),
    ) {
        let t0 = crate::test_clock::start();
        let mut sw = Switch::new(SwitchConfig::default());
        let mut replies = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if from_peer[i] {
                let d = sw.from_peer(t0, "p", f);
                prop_assert!(d == Delivery::Tap || d == Delivery::Drop);
            } else {
                sw.from_tap(t0, f, |p| p.len() % 2 == 1, &mut replies);
            }
        }
        sw.expire(t0 + Duration::from_secs(1000));
        while sw.poll_event().is_some() {}
    }

    /// Well-formed headers with random payloads reach the ARP/ND/IP parsers.
    #[test]
    fn random_payloads_never_panic_the_switch(
        ethertype in prop_oneof![Just(ETHERTYPE_ARP), Just(ETHERTYPE_IPV4), Just(ETHERTYPE_IPV6), Just(0x8100u16), any::<u16>()],
        dst in any::<[u8; 6]>(),
        payload in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let t0 = crate::test_clock::start();
        let mut sw = Switch::new(SwitchConfig::default());
        let frame = eth(MacAddr(dst), LOCAL, ethertype, &payload);
        let mut replies = Vec::new();
        sw.from_peer(t0, "p", &frame);
        sw.from_tap(t0, &frame, |_| true, &mut replies);
    }
}

#[test]
fn reserved_macs_are_forwarded_but_never_learned() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    let vmac = MacAddr([0x02, 0x5e, 0, 0, 0, 1]);
    sw.from_peer(t0, "b", &data(LOCAL, vmac));
    sw.set_static(peer("b"), &[MC]);
    events(&mut sw);
    sw.set_reserved(&[vmac, MC]);
    assert_eq!(events(&mut sw), vec![down(vmac, peer("b"))], "statics stay");
    assert_eq!(sw.macs().lookup(&vmac), None);
    assert_eq!(sw.macs().lookup(&MC), Some(&peer("b")));
    // Several holders send from the virtual MAC: no learning, no moves, no events.
    assert_eq!(sw.from_peer(t0, "b", &data(LOCAL, vmac)), Delivery::Tap);
    assert_eq!(sw.from_peer(t0, "c", &data(LOCAL, vmac)), Delivery::Tap);
    assert_eq!(
        tap(&mut sw, t0, &data(MacAddr::BROADCAST, vmac)),
        Delivery::Flood
    );
    assert_eq!(events(&mut sw), vec![]);
    assert_eq!(sw.macs().lookup(&vmac), None);
    assert_eq!(sw.counters().mac_moves, 0);
    // Unreserved, it is learned again.
    sw.set_reserved(&[]);
    sw.from_peer(t0, "c", &data(LOCAL, vmac));
    assert_eq!(events(&mut sw), vec![up(vmac, peer("c"))]);
}
