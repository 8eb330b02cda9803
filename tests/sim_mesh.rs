//! Simulated-network tests of the mesh: full-mesh formation through one hub,
//! hub death, partitions, restarts, freezes, liveness timing, rekey, and hostile
//! packets. All on a virtual clock.

mod sim;

use meshd::node::{DownReason, Event};
use sim::SimNet;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

fn names(n: usize) -> Vec<String> {
    let mut v = vec!["hub".to_string()];
    v.extend((1..n).map(|i| format!("n{i}")));
    v
}

/// `n` nodes: each knows only the hub's host file and ConnectTo hub; the hub knows all.
fn hub_mesh(seed: u64, n: usize) -> (SimNet, Vec<String>) {
    hub_mesh_with(seed, n, |_| {})
}

/// The same with every pair heartbeating at `HelloInterval` (no idle rate), as
/// pairs that share a VIP do: for the fast liveness timings.
fn fast_hub_mesh(seed: u64, n: usize) -> (SimNet, Vec<String>) {
    hub_mesh_with(seed, n, |c| c.idle_hello_interval = c.hello_interval)
}

fn hub_mesh_with(
    seed: u64,
    n: usize,
    tune: impl Fn(&mut meshd::node::NodeConfig),
) -> (SimNet, Vec<String>) {
    let all = names(n);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut net = SimNet::new(seed, &refs);
    let others: Vec<&str> = refs[1..].to_vec();
    let mut cfg = net.config("hub", &[]);
    tune(&mut cfg);
    net.start(cfg, &others);
    for name in &others {
        let mut cfg = net.config(name, &["hub"]);
        tune(&mut cfg);
        net.start(cfg, &["hub"]);
    }
    (net, all)
}

#[test]
fn ten_nodes_through_one_hub_reach_a_full_mesh() {
    let (mut net, all) = hub_mesh(1, 10);
    let took = net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all));
    let took = took.expect("no full mesh within 10 s of virtual time");
    assert!(took < Duration::from_secs(3), "full mesh took {took:?}");
    // Every node learned every other node's key from gossip.
    for name in &all[1..] {
        let node = net.node(name);
        assert_eq!(
            node.peers().len(),
            9,
            "{name} knows {:?}",
            node.peers().keys()
        );
    }
}

#[test]
fn when_the_hub_dies_the_others_keep_their_direct_sessions() {
    let (mut net, all) = hub_mesh(2, 10);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    net.kill("hub");
    net.run_for(Duration::from_secs(30));
    let rest: Vec<String> = all[1..].to_vec();
    assert!(
        net.full_mesh(&rest),
        "the nine lost each other without the hub"
    );
    for name in &rest {
        assert!(
            !net.sees(name, "hub"),
            "{name} still thinks the dead hub is alive"
        );
    }
    // And they never flapped while the hub died.
    for sim in net.nodes.iter().filter(|s| s.name != "hub") {
        for (_, e) in &sim.events {
            if let Event::PeerDown { name, .. } = e {
                assert_eq!(name, "hub", "{} saw {name} go down", sim.name);
            }
        }
    }
}

#[test]
fn a_killed_peer_is_declared_dead_within_dead_interval() {
    let (mut net, all) = fast_hub_mesh(3, 4);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    net.run_for(Duration::from_secs(1));
    let killed_at = net.elapsed();
    net.kill("n2");
    net.run_for(Duration::from_secs(2));
    for sim in net.nodes.iter().filter(|s| s.name != "n2") {
        let down = sim
            .events
            .iter()
            .find(|(t, e)| {
                *t >= killed_at && matches!(e, Event::PeerDown { name, .. } if name == "n2")
            })
            .map(|(t, _)| *t - killed_at)
            .unwrap_or_else(|| panic!("{} never saw n2 die", sim.name));
        // The adaptive deadline is at most DeadInterval (300 ms) and on this
        // clean path two heartbeats plus the 60 ms freeze margin (260 ms); the
        // last heartbeat may have been sent up to one HelloInterval before
        // the kill.
        assert!(
            down <= Duration::from_millis(300 + 5),
            "{} took {down:?}",
            sim.name
        );
        assert!(
            down >= Duration::from_millis(155),
            "{} declared death too early: {down:?}",
            sim.name
        );
    }
}

#[test]
fn a_partitioned_node_goes_unreachable_and_comes_back_after_healing() {
    let (mut net, all) = fast_hub_mesh(4, 5);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    net.partition(&["n3"]);
    net.run_for(Duration::from_secs(1));
    for name in all.iter().filter(|n| *n != "n3") {
        assert!(!net.sees(name, "n3"), "{name} still sees n3");
        assert!(!net.sees("n3", name), "n3 still sees {name}");
    }
    let rest: Vec<String> = all.iter().filter(|n| *n != "n3").cloned().collect();
    assert!(net.full_mesh(&rest));
    net.run_for(Duration::from_secs(20));
    net.heal();
    let back = net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all));
    assert!(back.expect("n3 did not come back") <= Duration::from_secs(6));
}

#[test]
fn a_restarted_node_rejoins_with_a_new_session() {
    let (mut net, all) = hub_mesh(5, 5);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    let before = net.node("n1").peers()["n4"].stats.handshakes;
    net.kill("n4");
    net.run_for(Duration::from_secs(2));
    net.restart("n4");
    let back = net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all));
    assert!(back.expect("n4 did not rejoin") < Duration::from_secs(3));
    let after = net.node("n1").peers()["n4"].stats.handshakes;
    assert!(
        after > before,
        "n1 did not handshake again with the restarted n4"
    );
}

#[test]
fn a_node_restarted_after_a_long_death_rejoins_within_a_round_trip_or_two() {
    // The hub sorts first, so on a handshake collision it keeps its own attempt;
    // that attempt went to the dead node, and must not make the restarted one
    // wait out the hub's retry backoff (up to 5 s).
    let (mut net, all) = hub_mesh(15, 4);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    for wait in [2u64, 4, 7, 12] {
        net.kill("n2");
        net.run_for(Duration::from_millis(wait * 1000 + 123));
        net.restart("n2");
        let back = net
            .run_until_cond(Duration::from_secs(10), MS, |n| n.full_mesh(&all))
            .expect("n2 did not rejoin");
        assert!(
            back < Duration::from_millis(600),
            "after {wait} s dead, n2 rejoined in {back:?}"
        );
    }
}

#[test]
fn a_frozen_node_is_dead_while_frozen_and_alive_after() {
    let (mut net, all) = fast_hub_mesh(6, 4);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    net.freeze("n2");
    net.run_for(Duration::from_secs(2));
    assert!(!net.sees("hub", "n2"));
    assert!(!net.sees("n1", "n2"));
    net.thaw("n2");
    let back = net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all));
    assert!(back.expect("n2 did not come back") < Duration::from_secs(2));
}

#[test]
fn graceful_stop_is_seen_at_once() {
    let (mut net, all) = hub_mesh(7, 3);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    let t0 = net.elapsed();
    net.stop("n1");
    net.run_for(Duration::from_millis(50));
    let hub = &net.nodes[net.idx("hub")];
    let (t, _) = hub
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::PeerDown { name, reason: DownReason::Goodbye, .. } if name == "n1"))
        .expect("hub saw no goodbye");
    assert!(*t - t0 < Duration::from_millis(5));
}

#[test]
fn rekey_by_packet_count_never_interrupts_liveness() {
    let all = ["a", "b"];
    let mut net = SimNet::new(8, &all);
    // Heartbeats at HelloInterval (a pair that shares a VIP): the packets
    // that count towards the rekey.
    let mut ca = net.config("a", &["b"]);
    ca.rekey_after_packets = 40;
    ca.idle_hello_interval = ca.hello_interval;
    let mut cb = net.config("b", &[]);
    cb.rekey_after_packets = 40;
    cb.idle_hello_interval = cb.hello_interval;
    net.start(ca, &["b"]);
    net.start(cb, &["a"]);
    let names: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    net.run_until_cond(Duration::from_secs(5), 10 * MS, |n| n.full_mesh(&names))
        .expect("mesh");
    net.loss = 0.02;
    net.run_for(Duration::from_secs(60));
    let hs = net.node("a").peers()["b"].stats.handshakes;
    assert!(
        hs >= 10,
        "only {hs} handshakes in 60 s with rekey every 40 packets"
    );
    for sim in &net.nodes {
        assert!(
            !sim.events
                .iter()
                .any(|(_, e)| matches!(e, Event::PeerDown { .. })),
            "{} saw a peer go down during rekeys: {:?}",
            sim.name,
            sim.events
        );
    }
}

#[test]
fn rekey_by_time_happens() {
    let all = ["a", "b"];
    let mut net = SimNet::new(9, &all);
    let mut ca = net.config("a", &["b"]);
    ca.rekey_after_time = Duration::from_secs(5);
    let mut cb = net.config("b", &[]);
    cb.rekey_after_time = Duration::from_secs(5);
    net.start(ca, &["b"]);
    net.start(cb, &["a"]);
    net.run_for(Duration::from_secs(31));
    let hs = net.node("b").peers()["a"].stats.handshakes;
    assert!(
        (6..=9).contains(&hs),
        "{hs} handshakes in 31 s with a 5 s rekey period"
    );
    assert!(net.sees("a", "b") && net.sees("b", "a"));
}

#[test]
fn replayed_and_tampered_packets_are_dropped_and_the_session_survives() {
    let all = ["a", "b"];
    let mut net = SimNet::new(10, &all);
    let ca = net.config("a", &["b"]);
    let cb = net.config("b", &[]);
    net.start(ca, &["b"]);
    net.start(cb, &["a"]);
    let captured = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let cap = captured.clone();
    net.tap = Some(Box::new(move |from, _to, payload| {
        if from == 0 && payload.len() > 2 && payload[1] == 3 {
            cap.borrow_mut().push(payload.to_vec());
        }
        true
    }));
    net.run_for(Duration::from_secs(2));
    net.tap = None;
    // Let captured packets still in flight arrive first.
    net.run_for(Duration::from_millis(10));
    let packets = captured.borrow().clone();
    assert!(packets.len() > 5);
    let a_addr = net.nodes[0].addr;
    let refused = |net: &SimNet| {
        let d = net.node("b").drops();
        d.bad_data + d.unknown_session
    };
    let before = refused(&net);
    let rx_before = net.node("b").peers()["a"].stats.rx_packets;
    for p in &packets {
        net.inject("b", a_addr, p.clone());
    }
    let replayed = refused(&net) - before;
    assert_eq!(
        replayed,
        packets.len() as u64,
        "a replayed packet was accepted"
    );
    assert_eq!(net.node("b").peers()["a"].stats.rx_packets, rx_before);
    for i in [2usize, 6, 14, 20] {
        let mut t = packets[packets.len() - 1].clone();
        let j = i.min(t.len() - 1);
        t[j] ^= 0x40;
        net.inject("b", a_addr, t);
    }
    // Garbage of every short length, and a wrong version byte.
    for len in 0..64 {
        net.inject("b", a_addr, vec![3u8; len]);
    }
    net.inject("b", a_addr, vec![9, 3, 0, 0, 0, 0]);
    net.run_for(Duration::from_secs(2));
    assert!(
        net.sees("a", "b") && net.sees("b", "a"),
        "hostile packets broke the session"
    );
    let d = net.node("b").drops().clone();
    assert!(d.bad_data + d.unknown_session >= replayed + 4, "{d:?}");
    assert!(d.malformed + d.unknown_session > 60, "{d:?}");
}

#[test]
fn a_handshake_from_an_unknown_key_is_refused() {
    // c pretends to be b: it knows a's host file but a has b's real key pinned.
    let mut net = SimNet::new(11, &["a", "b", "c"]);
    let ca = net.config("a", &[]);
    net.start(ca, &["b"]);
    // c runs under the name "b" but with c's key.
    let mut cc = net.config("c", &["a"]);
    cc.name = meshd::name::NodeName::new("b").unwrap();
    net.start_as("c", cc, &["a"]);
    net.run_for(Duration::from_secs(3));
    assert!(!net.sees("a", "b"), "a accepted an impostor");
    assert!(net.node("a").drops().bad_handshake > 0);
}

#[test]
fn ten_nodes_converge_under_loss_and_jitter() {
    let (mut net, all) = hub_mesh(12, 10);
    net.loss = 0.05;
    net.jitter = Duration::from_millis(5);
    let took = net.run_until_cond(Duration::from_secs(30), 10 * MS, |n| n.full_mesh(&all));
    assert!(took.is_some(), "no full mesh with 5% loss in 30 s");
}

#[test]
fn no_false_death_at_one_percent_loss_for_ten_minutes() {
    let (mut net, all) = hub_mesh(13, 4);
    net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    net.loss = 0.01;
    net.jitter = Duration::from_millis(2);
    net.run_for(Duration::from_secs(600));
    for sim in &net.nodes {
        let downs = sim
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::PeerDown { .. }))
            .count();
        assert_eq!(
            downs, 0,
            "{} declared {downs} false deaths at 1% loss",
            sim.name
        );
    }
    assert!(net.full_mesh(&all));
}

/// A digest too large for one datagram goes in parts, each covering a range
/// of names, and each part is answered: a node that missed a record change
/// while cut off gets it back by anti-entropy alone (the change was flooded
/// while it could not hear), here for a name in the last part of its digest.
#[test]
fn a_digest_in_parts_brings_back_a_record_missed_during_a_partition() {
    // 24 names of 60 bytes: ~1.9 KB of digest entries, two parts of 1200 bytes.
    let all: Vec<String> = (0..24)
        .map(|i| format!("{:_<58}{i:02}", "a_node_with_a_long_name"))
        .collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut net = SimNet::new(21, &refs);
    // Slow liveness: a short cut must not kill a session here.
    let slow = |mut c: meshd::node::NodeConfig| {
        c.hello_interval = Duration::from_secs(1);
        c.dead_interval = Duration::from_secs(10);
        c
    };
    let cfg = slow(net.config(refs[0], &[]));
    net.start(cfg, &refs[1..]);
    for name in &refs[1..] {
        let cfg = slow(net.config(name, &[refs[0]]));
        net.start(cfg, &[refs[0]]);
    }
    net.run_until_cond(Duration::from_secs(30), 50 * MS, |n| n.full_mesh(&all))
        .expect("full mesh");
    // Settled: every record has the version that gives its sessions' RTTs.
    net.run_for(Duration::from_secs(6));
    let (hub, z, w) = (refs[0], refs[5], refs[23]);
    // Short enough that no session dies (so no record changes afterwards and
    // nothing but anti-entropy can bring the change back).
    net.partition(&[z]);
    net.run_for(Duration::from_millis(300));
    let mut cfg = net.node(w).config().clone();
    cfg.subnets
        .push("02:00:00:00:99:99".parse().expect("subnet"));
    net.reload(w, cfg);
    net.run_for(Duration::from_millis(300));
    let version_at =
        |net: &SimNet, at: &str| net.node(at).peers()[w].record.as_ref().map(|r| r.version);
    let current = version_at(&net, hub);
    assert!(
        version_at(&net, z) < current,
        "the cut-off node heard the change"
    );
    net.heal();
    let sessions_kept = refs.iter().filter(|n| **n != z).all(|n| net.sees(z, n));
    assert!(
        sessions_kept,
        "a session died: the test needs them all alive"
    );
    let back = net.run_until_cond(Duration::from_secs(10), 10 * MS, |n| {
        version_at(n, z) == current
    });
    for n in &refs {
        let d = net.node(n).drops();
        if d.bad_message + d.digest_rate_limited > 0 {
            eprintln!("{n}: {d:?}");
        }
    }
    back.expect("the missed record never came back");
}
