//! Tests of the VIP engine ([`super::VipEngine`]): holders, steering, hold-down, health and flows.

use super::*;
use std::net::Ipv4Addr;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10));

fn item(weight: u32, offered: bool) -> VipItem {
    VipItem {
        address: VIP,
        prefix_len: 24,
        weight,
        virtual_mac: [2, 0x6d, 10, 1, 1, 10],
        flags: if offered { VipItem::OFFERED } else { 0 },
    }
}

fn flow(n: u16) -> FlowKey {
    FlowKey::Ip {
        src: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 2)),
        dst: VIP,
        proto: 17,
        src_port: n,
        dst_port: 53,
    }
}

/// A client-side engine that knows holders h2..h4 with these weights, all settled.
fn client(weights: &[(&str, u32)], t0: Instant) -> VipEngine {
    let mut e = VipEngine::new("client", VipEngineSettings::default());
    for (name, w) in weights {
        e.apply_peer_items(name, &[item(*w, true)], true, t0);
    }
    e
}

fn spread(e: &mut VipEngine, now: Instant, n: u16) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in 0..n {
        if let Some(SteerTarget::Peer(p)) = e.steer(now, VIP, &flow(i)) {
            *out.entry(p).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn equal_weights_share_flows_and_flows_stick() {
    let t0 = crate::test_clock::start();
    let later = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 10), ("h3", 10), ("h4", 10)], t0);
    let counts = spread(&mut e, later, 3000);
    assert_eq!(counts.len(), 3);
    for (h, c) in &counts {
        assert!((800..=1200).contains(c), "{h} got {c} of 3000");
    }
    // The same flow always goes to the same holder.
    let first = e.steer(later, VIP, &flow(7));
    for _ in 0..10 {
        assert_eq!(e.steer(later, VIP, &flow(7)), first);
    }
}

#[test]
fn lowest_weight_is_active_others_are_backup() {
    let t0 = crate::test_clock::start();
    let later = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 5), ("h3", 10), ("h4", 10)], t0);
    let counts = spread(&mut e, later, 100);
    assert_eq!(counts.get("h2"), Some(&100));
    // h2 dies: its flows move to the backups at once.
    e.set_peer_alive("h2", false, later);
    let counts = spread(&mut e, later, 100);
    assert_eq!(counts.get("h2"), None);
    assert_eq!(counts.values().sum::<usize>(), 100);
    assert!(e.counters().flows_moved >= 100);
}

#[test]
fn a_dead_holder_only_moves_its_own_flows() {
    let t0 = crate::test_clock::start();
    let later = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 10), ("h3", 10), ("h4", 10)], t0);
    let before: Vec<Option<SteerTarget>> =
        (0..300).map(|i| e.steer(later, VIP, &flow(i))).collect();
    e.set_peer_alive("h3", false, later);
    for (i, b) in before.iter().enumerate() {
        let now = e.steer(later, VIP, &flow(i as u16));
        if *b != Some(SteerTarget::Peer("h3".into())) {
            assert_eq!(&now, b, "flow {i} moved although its holder lives");
        } else {
            assert_ne!(now, Some(SteerTarget::Peer("h3".into())));
        }
    }
}

#[test]
fn a_returning_holder_waits_out_its_hold_down_and_takes_no_established_flow() {
    let t0 = crate::test_clock::start();
    let t1 = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 10), ("h3", 10)], t0);
    e.set_peer_alive("h2", false, t1);
    // All established flows now sit on h3.
    for i in 0..200 {
        assert_eq!(
            e.steer(t1, VIP, &flow(i)),
            Some(SteerTarget::Peer("h3".into()))
        );
    }
    e.set_peer_alive("h2", true, t1 + Duration::from_millis(100));
    // Within the hold-down, new flows still avoid h2.
    let t2 = t1 + Duration::from_millis(600);
    for i in 200..400 {
        assert_eq!(
            e.steer(t2, VIP, &flow(i)),
            Some(SteerTarget::Peer("h3".into()))
        );
    }
    // After it, new flows spread again but established ones stay on h3.
    let t3 = t1 + Duration::from_secs(2);
    for i in 0..400 {
        assert_eq!(
            e.steer(t3, VIP, &flow(i)),
            Some(SteerTarget::Peer("h3".into()))
        );
    }
    let counts = spread(&mut e, t3, 2000);
    assert!(counts.get("h2").copied().unwrap_or(0) > 0);
}

#[test]
fn a_lone_holder_in_hold_down_gets_traffic_and_none_when_dead() {
    let t0 = crate::test_clock::start();
    let mut e = client(&[("h2", 10)], t0);
    assert_eq!(
        e.steer(t0, VIP, &flow(1)),
        Some(SteerTarget::Peer("h2".into()))
    );
    e.set_peer_alive("h2", false, t0);
    assert_eq!(e.steer(t0, VIP, &flow(1)), None);
    assert_eq!(e.counters().no_holder, 1);
}

#[test]
fn withdrawn_vips_get_no_new_flows() {
    let t0 = crate::test_clock::start();
    let later = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 10), ("h3", 10)], t0);
    e.apply_peer_items("h2", &[item(10, false)], true, later);
    let counts = spread(&mut e, later, 100);
    assert_eq!(counts.get("h3"), Some(&100));
    // A record without the VIP removes the holder.
    e.apply_peer_items("h3", &[], true, later);
    assert_eq!(e.steer(later, VIP, &flow(1)), None);
    assert!(e.vip_for_mac(&MacAddr([2, 0x6d, 10, 1, 1, 10])).is_some());
}

#[test]
fn replies_to_flows_a_holder_started_go_back_to_it() {
    let t0 = crate::test_clock::start();
    let later = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 10), ("h3", 10), ("h4", 10)], t0);
    // h4 sends a query from the VIP (VIP:53 -> client:4000).
    let outbound = FlowKey::Ip {
        src: VIP,
        dst: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 2)),
        proto: 17,
        src_port: 53,
        dst_port: 4000,
    };
    e.pin_reply(later, VIP, "h4", &outbound);
    for _ in 0..5 {
        assert_eq!(
            e.steer(later, VIP, &outbound.reversed()),
            Some(SteerTarget::Peer("h4".into()))
        );
    }
}

#[test]
fn local_vips_follow_health_and_emit_up_down() {
    let t0 = crate::test_clock::start();
    let mut e = VipEngine::new("h2", VipEngineSettings::default());
    let cfg = LocalVip {
        address: VIP,
        prefix_len: 24,
        weight: 10,
        virtual_mac: MacAddr([2, 0x6d, 10, 1, 1, 10]),
        checked: true,
        owner: None,
        presence: None,
        policy: Default::default(),
    };
    e.set_local(vec![cfg.clone()], t0);
    // The first owner probe is due at once; the next one in OWNER_DISCOVER.
    assert_eq!(e.next_deadline(), Some(t0));
    assert_eq!(e.owner_probes(t0), (vec![VIP], vec![]));
    assert_eq!(e.poll_event(), None, "checked VIPs wait for a verdict");
    assert!(!e.local_items()[0].is_offered());
    assert!(e.set_health(VIP, true, t0));
    assert_eq!(e.poll_event(), Some(VipEvent::Up(cfg.clone())));
    assert!(e.local_items()[0].is_offered());
    assert_eq!(e.steer(t0, VIP, &flow(1)), Some(SteerTarget::Local));
    assert!(e.set_health(VIP, false, t0));
    assert!(
        !e.local_items()[0].is_offered(),
        "withdrawn from the record at once"
    );
    assert_eq!(
        e.poll_event(),
        None,
        "still answering what peers already sent"
    );
    assert_eq!(e.next_deadline(), Some(t0 + HEALTH_WITHDRAW_LINGER));
    e.tick(t0 + HEALTH_WITHDRAW_LINGER - Duration::from_millis(1));
    assert_eq!(e.poll_event(), None);
    e.tick(t0 + HEALTH_WITHDRAW_LINGER);
    assert_eq!(e.poll_event(), Some(VipEvent::Down(cfg.clone())));
    assert_eq!(
        e.next_deadline(),
        Some(t0 + OWNER_DISCOVER),
        "only the owner probe"
    );
    e.set_health(VIP, true, t0);
    assert_eq!(e.poll_event(), Some(VipEvent::Up(cfg.clone())));
    // Healthy again within the linger: no vip-down, no second vip-up.
    e.set_health(VIP, false, t0);
    e.set_health(VIP, true, t0 + Duration::from_millis(100));
    e.tick(t0 + HEALTH_WITHDRAW_LINGER * 2);
    assert_eq!(e.poll_event(), None);
    assert!(e.local_items()[0].is_offered());
    // A graceful stop withdraws but keeps serving until the end.
    e.withdraw_all(t0);
    assert!(!e.local_items()[0].is_offered());
    assert_eq!(e.poll_event(), None);
    e.stop_serving();
    assert_eq!(e.poll_event(), Some(VipEvent::Down(cfg)));
}

#[test]
fn idle_flows_expire() {
    let t0 = crate::test_clock::start();
    let mut e = client(&[("h2", 10)], t0);
    e.steer(t0, VIP, &flow(1));
    assert_eq!(e.flows().len(), 1);
    e.expire(t0 + Duration::from_secs(30));
    assert_eq!(e.flows().len(), 1);
    e.expire(t0 + Duration::from_secs(61));
    assert_eq!(e.flows().len(), 0);
}

#[test]
fn late_frames_from_a_returning_holder_do_not_pull_an_established_flow_back() {
    let t0 = crate::test_clock::start();
    let later = t0 + Duration::from_secs(5);
    let mut e = client(&[("h2", 10), ("h3", 10)], t0);
    let key = flow(9);
    let first = e.steer(later, VIP, &key).unwrap();
    let (dead, other) = match &first {
        SteerTarget::Peer(p) if p == "h2" => ("h2", "h3"),
        _ => ("h3", "h2"),
    };
    e.set_peer_alive(dead, false, later);
    assert_eq!(
        e.steer(later, VIP, &key),
        Some(SteerTarget::Peer(other.into()))
    );
    // It thaws and its kernel's replies (queued while it was frozen) arrive.
    e.set_peer_alive(dead, true, later);
    e.pin_reply(later, VIP, dead, &key.reversed());
    assert_eq!(
        e.steer(later, VIP, &key),
        Some(SteerTarget::Peer(other.into()))
    );
}

#[path = "flow_proptests.rs"]
mod flow_proptests;

#[test]
fn fnv1a64_matches_the_published_vectors() {
    assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(&[b"foo", b"bar"]), 0x8594_4171_f739_67e8);
}

#[test]
fn the_rendezvous_score_is_pinned_across_builds() {
    // PROTOCOL §7.2's example: a restart or another compiler must steer the same way.
    let key = FlowKey::Ip {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10)),
        proto: 17,
        src_port: 40000,
        dst_port: 53,
    };
    let (bytes, len) = key.canonical_bytes();
    assert_eq!(len, 38);
    assert_eq!(bytes[0], 1);
    assert_eq!(
        &bytes[1..17],
        &Ipv4Addr::new(192, 0, 2, 5).to_ipv6_mapped().octets()
    );
    assert_eq!(&bytes[33..38], &[17, 0x9c, 0x40, 0, 53]);
    // Computed independently (a few lines of Python following the spec).
    assert_eq!(score(&key, "node_2"), 0xf7f9_44d9_d64f_7b51);
    assert_eq!(score(&key, "node_3"), 0x7480_b2d8_55dc_9031);
    let mac = FlowKey::Mac {
        src: MacAddr([0x02, 0, 0, 0, 0, 0x05]),
    };
    assert_eq!(mac.canonical_bytes().1, 7);
    assert_eq!(score(&mac, "node_2"), 0x6a7c_5006_a61a_666c);
}

fn v6_item(addr: &str, mac: [u8; 6]) -> VipItem {
    VipItem {
        address: addr.parse().unwrap(),
        prefix_len: 64,
        weight: 10,
        virtual_mac: mac,
        flags: VipItem::OFFERED,
    }
}

#[test]
fn ipv6_vips_steer_beside_ipv4_ones() {
    let t0 = crate::test_clock::start();
    let v6: IpAddr = "fd00:1::10".parse().unwrap();
    let mac6 = [6, 0x6d, 0x69, 0x9a, 0xb5, 0x47];
    let mut e = VipEngine::new("client", VipEngineSettings::default());
    for h in ["h2", "h3"] {
        e.apply_peer_items(h, &[item(10, true), v6_item("fd00:1::10", mac6)], true, t0);
    }
    assert_eq!(e.vip_for_mac(&MacAddr(mac6)), Some(v6));
    assert_eq!(e.vip_for_mac(&MacAddr([2, 0x6d, 10, 1, 1, 10])), Some(VIP));
    let key = FlowKey::Ip {
        src: "fd00:1::2".parse().unwrap(),
        dst: v6,
        proto: 58,
        src_port: 7,
        dst_port: 0,
    };
    let later = t0 + Duration::from_secs(2);
    let first = e.steer(later, v6, &key);
    assert!(matches!(first, Some(SteerTarget::Peer(_))));
    // The holder dies: its flow moves to the other one.
    let Some(SteerTarget::Peer(h)) = first else {
        unreachable!()
    };
    e.set_peer_alive(&h, false, later);
    let second = e.steer(later, v6, &key);
    assert!(matches!(&second, Some(SteerTarget::Peer(o)) if *o != h));
    assert_eq!(e.counters().items_refused, 0);
}

#[test]
fn bad_peer_items_are_refused_alone() {
    let t0 = crate::test_clock::start();
    let mut e = VipEngine::new("client", VipEngineSettings::default());
    let good6 = v6_item("fd00:1::10", [6, 0x6d, 1, 2, 3, 4]);
    let items = [
        item(10, true),
        v6_item("fe80::10", [6, 0x6d, 9, 9, 9, 1]),
        v6_item("ff05::10", [6, 0x6d, 9, 9, 9, 2]),
        v6_item("::ffff:10.1.1.11", [6, 0x6d, 9, 9, 9, 3]),
        good6.clone(),
        // Another VIP claiming the IPv4 VIP's virtual MAC.
        v6_item("fd00:1::11", [2, 0x6d, 10, 1, 1, 10]),
    ];
    e.apply_peer_items("h2", &items, true, t0);
    assert_eq!(e.counters().items_refused, 4);
    let known: Vec<IpAddr> = e.vips().keys().copied().collect();
    assert_eq!(known, vec![VIP, good6.address]);
    assert_eq!(
        e.vip_for_mac(&MacAddr([2, 0x6d, 10, 1, 1, 10])),
        Some(VIP),
        "the first VIP keeps its MAC"
    );
    assert!(usable_vip(&"fd00::1".parse().unwrap()));
    assert!(!usable_vip(&"febf::1".parse().unwrap()));
    assert!(usable_vip(&"fec0::1".parse().unwrap()));
}

#[test]
fn a_peer_may_move_its_virtual_mac_to_a_renamed_vip() {
    let t0 = crate::test_clock::start();
    let mac = [6, 0x6d, 1, 2, 3, 4];
    let mut e = VipEngine::new("client", VipEngineSettings::default());
    e.apply_peer_items("h2", &[v6_item("fd00:1::10", mac)], true, t0);
    // h2 renames its VIP, keeping the MAC override: accepted.
    e.apply_peer_items("h2", &[v6_item("fd00:1::20", mac)], true, t0);
    let renamed: IpAddr = "fd00:1::20".parse().unwrap();
    assert_eq!(e.vip_for_mac(&MacAddr(mac)), Some(renamed));
    assert_eq!(e.vips().keys().copied().collect::<Vec<_>>(), vec![renamed]);
    // Another peer claiming that MAC for a third VIP is refused.
    e.apply_peer_items("h3", &[v6_item("fd00:1::30", mac)], true, t0);
    assert_eq!(e.counters().items_refused, 1);
    assert_eq!(e.vip_for_mac(&MacAddr(mac)), Some(renamed));
}
