//! Relaying in a simulated network with a virtual clock: a and b cannot
//! exchange datagrams (a firewall between them), both have live sessions
//! with r1 (near) and r2 (far). Their traffic must go through the nearer
//! relay, sealed end to end; when that relay dies the pair must move to the
//! other one without either taking the relay's death for the other's; when
//! the firewall goes they must move to a direct path.

mod sim;

use meshd::node::{is_relay_addr, Event};
use sim::SimNet;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// A frame from a's station to b's (unicast to an unknown MAC: flooded to
/// every live peer, b among them) with a tag.
fn frame(tag: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x88, 0xb5];
    f.extend_from_slice(&tag.to_be_bytes());
    f.extend_from_slice(&[0x5a; 60]);
    f
}

fn relayed_mesh() -> SimNet {
    relayed_mesh_with(|_, _| {})
}

/// The mesh of [`relayed_mesh`], each node's config tuned by `tune(name, cfg)`.
fn relayed_mesh_with(tune: impl Fn(&str, &mut meshd::node::NodeConfig)) -> SimNet {
    let names = ["a", "b", "r1", "r2"];
    let mut net = SimNet::new(11, &names);
    net.delay = 10 * MS;
    for (x, y) in [("a", "r1"), ("b", "r1")] {
        net.set_link_delay(x, y, 2 * MS);
    }
    net.cut("a", "b");
    for (name, connect) in [
        ("a", &["b", "r1", "r2"][..]),
        ("b", &["a", "r1", "r2"][..]),
        ("r1", &[][..]),
        ("r2", &["r1"][..]),
    ] {
        let mut cfg = net.config(name, connect);
        tune(name, &mut cfg);
        net.start(cfg, &names);
    }
    net
}

/// The relay `node` reaches `peer` through, if any.
fn relay_of(net: &SimNet, node: &str, peer: &str) -> Option<String> {
    let p = net.node(node).peers().get(peer)?;
    if !p.alive || !p.endpoint.is_some_and(is_relay_addr) {
        return None;
    }
    Some(status_line(net, node, peer)?.via)
}

/// `peer`'s line in `node`'s `dump nodes`.
fn status_line(net: &SimNet, node: &str, peer: &str) -> Option<meshd::node::status::NodeStatus> {
    net.node(node)
        .node_statuses(net.now, 655)
        .into_iter()
        .find(|n| n.name == peer)
}

fn downs(net: &SimNet, node: &str, peer: &str) -> usize {
    let i = net.idx(node);
    net.nodes[i]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::PeerDown { name, .. } if name == peer))
        .count()
}

#[test]
fn a_blocked_pair_talks_through_the_nearer_relay() {
    let mut net = relayed_mesh();
    net.run_for(Duration::from_secs(5));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    assert_eq!(relay_of(&net, "b", "a").as_deref(), Some("r1"));
    let line = status_line(&net, "a", "b").expect("b listed");
    assert!(line.reachable);
    assert_eq!((line.nexthop.as_str(), line.distance), ("r1", 2));
    assert_eq!(line.path, "relayed");

    // Relayed peers are no edges: others must not relay through a to b.
    assert!(
        !net.node("a")
            .edge_statuses()
            .iter()
            .any(|e| (e.from.as_str(), e.to.as_str()) == ("a", "b")),
        "dump edges lists a relayed pair"
    );

    // Frames cross, and the relay's TAP gets only its own flooded copy.
    net.take_tap_rx("b");
    net.take_tap_rx("r1");
    for tag in 0..10 {
        net.tap_send("a", &frame(tag));
    }
    net.run_for(100 * MS);
    let want: Vec<Vec<u8>> = (0..10).map(frame).collect();
    assert_eq!(net.take_tap_rx("b"), want);
    assert_eq!(net.take_tap_rx("r1"), want, "r1's own flooded copies");
    let c = net.node("r1").relay_counters().clone();
    assert!(c.relayed_packets > 10, "{c:?}");
    assert_eq!((c.forged_source, c.nested), (0, 0), "{c:?}");
    // Neither side ever took the other for dead.
    assert_eq!(downs(&net, "a", "b") + downs(&net, "b", "a"), 0);
}

/// The relay is chosen by combined RTT: r1 is nearest to a (2 ms) but far from
/// b (30 ms), r2 a bit farther from a (8 ms) and near b (2 ms): a–r1–b costs
/// 64 ms round trip, a–r2–b 20 ms. Both ends end up relayed through r2 (each
/// relay's record gives its RTT to the other end), and stay there.
#[test]
fn the_relay_with_the_lowest_combined_rtt_is_chosen() {
    let names = ["a", "b", "r1", "r2"];
    let mut net = SimNet::new(13, &names);
    net.delay = 10 * MS;
    for (x, y, ms) in [
        ("a", "r1", 2),
        ("b", "r1", 30),
        ("a", "r2", 8),
        ("b", "r2", 2),
    ] {
        net.set_link_delay(x, y, ms * MS);
    }
    net.cut("a", "b");
    for (name, connect) in [
        ("a", &["b", "r1", "r2"][..]),
        ("b", &["a", "r1", "r2"][..]),
        ("r1", &[][..]),
        ("r2", &["r1"][..]),
    ] {
        let cfg = net.config(name, connect);
        net.start(cfg, &names);
    }
    let mut settled = None;
    for step in 0..300 {
        net.run_for(100 * MS);
        if relay_of(&net, "a", "b").as_deref() == Some("r2")
            && relay_of(&net, "b", "a").as_deref() == Some("r2")
        {
            settled = Some(step);
            break;
        }
    }
    let settled = settled.unwrap_or_else(|| {
        panic!(
            "not both through r2 after 30 s: a via {:?}, b via {:?}",
            relay_of(&net, "a", "b"),
            relay_of(&net, "b", "a")
        )
    });
    eprintln!(
        "both ends relayed through r2 after {} ms",
        (settled + 1) * 100
    );
    net.run_for(Duration::from_secs(20));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r2"));
    assert_eq!(relay_of(&net, "b", "a").as_deref(), Some("r2"));
    let srtt = net.node("a").peers()["b"].detector.srtt().expect("srtt");
    assert!(
        srtt < 30 * MS,
        "a's RTT to b is {srtt:?}: not the 20 ms path"
    );
    // `dump edges` weights are RTTs in ms, as tinc's: a's own, and r1's from its record.
    let weight = |from: &str, to: &str| {
        net.node("a")
            .edge_statuses()
            .into_iter()
            .find(|e| (e.from.as_str(), e.to.as_str()) == (from, to))
            .map(|e| e.weight)
    };
    assert!(
        matches!(weight("a", "r1"), Some(3..=6)),
        "{:?}",
        weight("a", "r1")
    );
    assert!(
        matches!(weight("r1", "b"), Some(55..=66)),
        "{:?}",
        weight("r1", "b")
    );
    assert_eq!(downs(&net, "a", "b") + downs(&net, "b", "a"), 0);
}

/// A relayed peer that dies while its relay answers may have been black-holed by
/// that relay (it can drop what it should pass on): the next path tries another
/// relay first, for 30 s; then the better relay again.
#[test]
fn a_peer_that_died_behind_a_live_relay_comes_back_through_another() {
    let mut net = relayed_mesh();
    net.run_for(Duration::from_secs(5));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    net.kill("b");
    net.run_until_cond(Duration::from_secs(30), 10 * MS, |n| !n.sees("a", "b"))
        .expect("a never declared b dead");
    net.restart("b");
    let back = net
        .run_until_cond(Duration::from_secs(10), 10 * MS, |n| {
            relay_of(n, "a", "b").is_some()
        })
        .expect("a never reached b again");
    eprintln!(
        "b back through {:?} after {back:?}",
        relay_of(&net, "a", "b")
    );
    assert_eq!(
        relay_of(&net, "a", "b").as_deref(),
        Some("r2"),
        "r1 first again"
    );
    // Once the 30 s are over, the nearer relay wins again (the 5 s check).
    net.run_for(Duration::from_secs(40));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    assert!(net.sees("a", "b") && net.sees("b", "a"));
}

#[test]
fn the_other_relay_takes_over_when_the_relay_dies() {
    let mut net = relayed_mesh();
    net.run_for(Duration::from_secs(5));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    // b's station speaks first: a learns its MAC, and a's frames to it are
    // unicast, watched for answers (a ping's echo requests).
    let mut hello = vec![0xff; 6];
    hello.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0b, 0x88, 0xb5]);
    hello.extend_from_slice(&[0; 60]);
    net.tap_send("b", &hello);
    net.run_for(100 * MS);
    net.take_tap_rx("b");
    let killed = net.elapsed();
    net.kill("r1");
    // A frame every 10 ms during the failover: the longest gap at b.
    let mut sent = 0u16;
    while net.elapsed() < killed + Duration::from_secs(3) {
        net.tap_send("a", &frame(sent));
        sent += 1;
        net.run_for(10 * MS);
    }
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r2"));
    assert_eq!(relay_of(&net, "b", "a").as_deref(), Some("r2"));
    let i = net.idx("b");
    let arrivals: Vec<Duration> = net.nodes[i]
        .tap_rx
        .iter()
        .filter(|(t, _)| *t >= killed)
        .map(|(t, _)| *t)
        .collect();
    let mut gap = arrivals.first().map_or(Duration::MAX, |t| *t - killed);
    for w in arrivals.windows(2) {
        gap = gap.max(w[1] - w[0]);
    }
    eprintln!(
        "relay r1 killed: frames a -> b resumed through r2 after a gap of {gap:?} ({} of {sent} arrived)",
        arrivals.len()
    );
    // DeadInterval (300 ms) plus a few hundred milliseconds.
    assert!(gap <= Duration::from_millis(800), "gap {gap:?}");
    // The relay's death is not the pair's.
    assert_eq!(downs(&net, "a", "b") + downs(&net, "b", "a"), 0);
    // r1 itself is declared dead on its own (idle, slow) deadline, later.
    net.run_for(Duration::from_secs(8));
    assert_eq!(downs(&net, "a", "r1"), 1);
    assert_eq!(downs(&net, "a", "b") + downs(&net, "b", "a"), 0);
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r2"));
}

#[test]
fn the_pair_goes_direct_when_the_firewall_goes() {
    let mut net = relayed_mesh();
    net.run_for(Duration::from_secs(5));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    net.heal();
    let healed = net.elapsed();
    let mut direct = None;
    for _ in 0..150 {
        net.run_for(100 * MS);
        let a_direct = relay_of(&net, "a", "b").is_none() && net.sees("a", "b");
        let b_direct = relay_of(&net, "b", "a").is_none() && net.sees("b", "a");
        if a_direct && b_direct {
            direct = Some(net.elapsed() - healed);
            break;
        }
    }
    let took = direct.expect("still relayed 15 s after the firewall went");
    let line = status_line(&net, "a", "b").expect("b listed");
    assert_eq!(
        (line.path.as_str(), line.via.as_str(), line.distance),
        ("punched", "b", 1)
    );
    eprintln!("direct again {took:?} after the firewall went");
    // A direct try every 5 s (DIRECT_RETRY), both sides.
    assert!(took <= Duration::from_secs(7), "{took:?}");
    assert_eq!(downs(&net, "a", "b") + downs(&net, "b", "a"), 0);
}

#[test]
fn a_relayed_vip_holder_that_dies_is_declared_dead_within_the_usual_bound() {
    // b holds a VIP: it heartbeats every peer fast, a through the relay.
    let mut net = relayed_mesh_with(|name, cfg| {
        if name == "b" {
            cfg.vips = vec![meshd::vip::LocalVip {
                address: std::net::Ipv4Addr::new(10, 1, 1, 10).into(),
                prefix_len: 24,
                weight: 10,
                virtual_mac: meshd::switch::MacAddr([0x02, 0x6d, 10, 1, 1, 10]),
                checked: false,
                owner: None,
                presence: None,
                policy: Default::default(),
            }];
        }
    });
    net.run_for(Duration::from_secs(5));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    let killed = net.elapsed();
    net.kill("b");
    let i = net.idx("a");
    let mut declared = None;
    for _ in 0..300 {
        net.run_for(5 * MS);
        if let Some((t, _)) = net.nodes[i]
            .events
            .iter()
            .find(|(t, e)| *t >= killed && matches!(e, Event::PeerDown { name, .. } if name == "b"))
        {
            declared = Some(*t - killed);
            break;
        }
    }
    let took = declared.expect("a never declared the relayed holder dead");
    eprintln!("relayed holder b killed: a declared it dead after {took:?}");
    // DeadInterval (300 ms) and the relay's answer to one probe: the relay
    // lives, so the holder's silence is its own.
    assert!(took <= Duration::from_millis(450), "{took:?}");
    assert_eq!(downs(&net, "a", "r1"), 0, "the relay is not blamed");
    // Shown as tinc shows a node without a path, not as two hops away.
    let line = status_line(&net, "a", "b").expect("b listed");
    assert!(!line.reachable);
    assert_eq!(
        (
            line.nexthop.as_str(),
            line.via.as_str(),
            line.distance,
            line.path.as_str()
        ),
        ("-", "-", -1, "none")
    );
}

#[test]
fn a_member_cannot_forge_a_source_or_relay_to_what_the_relay_does_not_reach() {
    use meshd::name::NodeName;
    use meshd::wire::Message;
    let mut net = relayed_mesh();
    net.run_for(Duration::from_secs(5));
    let name = |s: &str| NodeName::new(s).unwrap();
    let before = net.node("r1").relay_counters().clone();
    let packet = [1u8, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let bad = [
        // a speaks for r2.
        Message::RelayTo {
            dst: name("b"),
            src: name("r2"),
            packet: &packet,
        },
        // To itself through r1.
        Message::RelayTo {
            dst: name("a"),
            src: name("a"),
            packet: &packet,
        },
        // To a node r1 does not know.
        Message::RelayTo {
            dst: name("ghost"),
            src: name("a"),
            packet: &packet,
        },
    ];
    for msg in &bad {
        assert!(net.node_mut("a").send_message_as_test("r1", msg));
    }
    let i = net.idx("a");
    net.pump(i);
    net.run_for(50 * MS);
    let after = net.node("r1").relay_counters().clone();
    assert_eq!(after.forged_source - before.forged_source, 1, "{after:?}");
    assert_eq!(after.no_route - before.no_route, 2, "{after:?}");
    // A relay that forwards junk "from a": b drops it as a datagram that
    // opens no session (the relay can forge nothing end to end).
    let b_before = net.node("b").drops().clone();
    assert!(net.node_mut("r1").send_message_as_test(
        "b",
        &Message::RelayFrom {
            src: name("a"),
            packet: &packet
        }
    ));
    let i = net.idx("r1");
    net.pump(i);
    net.run_for(50 * MS);
    let b_after = net.node("b").drops().clone();
    assert!(
        b_after.unknown_session + b_after.malformed > b_before.unknown_session + b_before.malformed,
        "a junk relayed packet was not dropped"
    );
    // Nothing of it reached b's TAP, and the pair is untouched.
    assert!(net.sees("a", "b") && net.sees("b", "a"));
}

/// No chains: a relay request sealed inside the relayed a–b session (so it
/// reaches b through r1) is refused by b and counted, and nothing leaves b
/// for its destination.
#[test]
fn a_relay_request_that_came_through_a_relay_is_refused() {
    use meshd::name::NodeName;
    use meshd::wire::Message;
    let mut net = relayed_mesh();
    net.run_for(Duration::from_secs(5));
    assert_eq!(relay_of(&net, "a", "b").as_deref(), Some("r1"));
    let name = |s: &str| NodeName::new(s).unwrap();
    let packet = [1u8, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let r2_relayed = net.node("r2").relay_counters().relayed_packets;
    let b_before = net.node("b").relay_counters().clone();
    assert!(net.node_mut("a").send_message_as_test(
        "b",
        &Message::RelayTo {
            dst: name("r2"),
            src: name("a"),
            packet: &packet,
        }
    ));
    let i = net.idx("a");
    net.pump(i);
    net.run_for(100 * MS);
    let b_after = net.node("b").relay_counters().clone();
    assert_eq!(b_after.nested - b_before.nested, 1, "{b_after:?}");
    assert_eq!(
        b_after.relayed_packets, b_before.relayed_packets,
        "{b_after:?}"
    );
    assert_eq!(net.node("r2").relay_counters().relayed_packets, r2_relayed);
    assert!(net.sees("a", "b") && net.sees("b", "a"));
}

#[test]
fn a_relayed_message_is_shorter_than_the_request_that_carried_it() {
    use meshd::name::NodeName;
    use meshd::wire::Message;
    // No amplification by construction: RelayFrom lacks RelayTo's `dst`.
    for (dst, src) in [("b", "a_much_longer_name"), ("a_much_longer_name", "b")] {
        let packet = [1u8; 100];
        let to = Message::RelayTo {
            dst: NodeName::new(dst).unwrap(),
            src: NodeName::new(src).unwrap(),
            packet: &packet,
        };
        let from = Message::RelayFrom {
            src: NodeName::new(src).unwrap(),
            packet: &packet,
        };
        assert!(from.to_vec().len() < to.to_vec().len());
    }
}

#[test]
fn indirect_data_in_a_host_file_keeps_the_node_behind_a_relay() {
    // b's host file says `IndirectData = yes`: nobody starts a handshake
    // to it directly, even with no firewall in the way (its own attempts
    // are answered where they come from, as a NAT would let through).
    let names = ["a", "b", "r1", "r2"];
    let mut net = SimNet::new(12, &names);
    let direct_inits = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let seen = direct_inits.clone();
    net.tap = Some(Box::new(move |from, to, payload| {
        // [version 1, type 1 = HandshakeInit], from anyone straight to b.
        if to == 1 && from != 1 && payload.get(..2) == Some(&[1, 1][..]) {
            seen.set(seen.get() + 1);
        }
        true
    }));
    net.host_paths.insert(
        "b".into(),
        meshd::node::HostPath {
            indirect: true,
            ..Default::default()
        },
    );
    for (name, connect) in [
        ("a", &["r1", "r2"][..]),
        ("b", &["r1", "r2"][..]),
        ("r1", &[][..]),
        ("r2", &["r1"][..]),
    ] {
        let cfg = net.config(name, connect);
        net.start(cfg, &names);
    }
    net.run_for(Duration::from_secs(15));
    assert!(
        net.sees("a", "b") && net.sees("b", "a"),
        "a and b never met"
    );
    assert_eq!(direct_inits.get(), 0, "a handshake was sent straight to b");
}

#[test]
fn a_pmtu_line_in_a_host_file_caps_whole_frames() {
    let names = ["a", "b"];
    let mut net = SimNet::new(13, &names);
    net.host_paths.insert(
        "b".into(),
        meshd::node::HostPath {
            pmtu: Some(1000),
            pmtu_discovery: false,
            ..Default::default()
        },
    );
    let cfg = net.config("a", &["b"]);
    net.start(cfg, &names);
    let cfg = net.config("b", &[]);
    net.start(cfg, &names);
    net.run_for(Duration::from_secs(2));
    let p = &net.node("a").peers()["b"];
    assert_eq!(p.pmtu.confirmed(), 1031, "PMTU 1000 + 31");
    // A 1400-byte frame still arrives whole, in pieces.
    net.take_tap_rx("b");
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a, 0x88, 0xb5]);
    f.extend(std::iter::repeat_n(7u8, 1400));
    net.tap_send("a", &f);
    net.run_for(50 * MS);
    assert_eq!(net.take_tap_rx("b"), vec![f]);
}
