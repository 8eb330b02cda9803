//! Simulated-network tests of revocation (a host file removed, then a reload)
//! and of a node whose clock was ahead at an earlier start: on a virtual clock.

mod sim;

use meshd::node::{DownReason, Event};
use sim::SimNet;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// hub, n1, n2: every node has every other node's host file.
fn trio(seed: u64) -> SimNet {
    let mut net = SimNet::new(seed, &["hub", "n1", "n2"]);
    for (name, others) in [
        ("hub", ["n1", "n2"]),
        ("n1", ["hub", "n2"]),
        ("n2", ["hub", "n1"]),
    ] {
        let cfg = net.config(name, &["hub"]);
        net.start(cfg, &others);
    }
    let all: Vec<String> = ["hub", "n1", "n2"].iter().map(|s| s.to_string()).collect();
    net.run_until_cond(10 * S, 10 * MS, |n| n.full_mesh(&all))
        .expect("no full mesh within 10 s");
    net
}

/// A broadcast frame from the host behind `from` (source MAC 02:00:00:00:00:NN).
fn broadcast(tag: u8) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, tag]);
    f.extend_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f.extend_from_slice(&[tag; 46]);
    f
}

fn got_frame_from(net: &mut SimNet, at: &str, tag: u8) -> bool {
    net.take_tap_rx(at)
        .iter()
        .any(|f| f.len() > 12 && f[6..12] == [0x02, 0, 0, 0, 0, tag])
}

#[test]
fn revocation_by_reload_cuts_the_node_and_gossip_cannot_bring_it_back() {
    let mut net = trio(11);
    // Before: frames from n2's side reach n1.
    net.tap_send("n2", &broadcast(0x22));
    net.run_for(50 * MS);
    assert!(
        got_frame_from(&mut net, "n1", 0x22),
        "n1 did not get n2's frame before"
    );

    // The operator removes hosts/n2 on n1 and reloads.
    net.set_knows("n1", &["hub"]);
    let cfg = net.node("n1").config().clone();
    let t0 = net.elapsed();
    net.reload("n1", cfg);
    let n1 = net.node("n1");
    assert!(n1.is_revoked("n2"), "n2 is not revoked after the reload");
    assert!(!n1.is_alive("n2"), "n1 still has a live session with n2");
    assert!(
        !n1.peers().contains_key("n2"),
        "n1 still holds a peer entry (key, record) for n2"
    );
    let down = net.nodes[net.idx("n1")].events.iter().any(|(t, e)| {
        *t >= t0
            && matches!(e, Event::PeerDown { name, reason: DownReason::Revoked, .. } if name == "n2")
    });
    assert!(
        down,
        "no PeerDown(Revoked) event for n2 (host-down scripts)"
    );

    // n2 goes on sending; nothing reaches n1, for a minute of gossip and retries.
    let _ = net.take_tap_rx("n1");
    for _ in 0..60 {
        net.tap_send("n2", &broadcast(0x22));
        net.run_for(S);
        assert!(
            !got_frame_from(&mut net, "n1", 0x22),
            "a frame of n2 reached n1 after revocation"
        );
        assert!(!net.sees("n1", "n2"), "n2 is alive at n1 again");
    }
    // The hub still trusts n2 (it did not revoke it) and gossips n2's record to
    // n1, which ignores it.
    assert!(net.sees("hub", "n2"));
    assert!(
        net.node("n1").drops().revoked_record > 0,
        "n1 never saw n2's record refused"
    );
    assert!(!net.node("n1").peers().contains_key("n2"));

    // A restart of the revoked node does not bring it back either.
    net.kill("n2");
    net.run_for(S);
    net.restart("n2");
    net.run_for(20 * S);
    assert!(net.sees("hub", "n2"), "n2 did not come back at the hub");
    assert!(!net.sees("n1", "n2"), "the restarted n2 is alive at n1");
    assert!(!net.node("n1").peers().contains_key("n2"));

    // The host file back: n2 is trusted again.
    net.set_knows("n1", &["hub", "n2"]);
    let cfg = net.node("n1").config().clone();
    net.reload("n1", cfg);
    assert!(!net.node("n1").is_revoked("n2"));
    net.run_until_cond(20 * S, 10 * MS, |n| {
        n.sees("n1", "n2") && n.sees("n2", "n1")
    })
    .expect("n2 did not come back at n1 after its host file was restored");
}

#[test]
fn a_revoked_name_in_the_config_is_never_learned_from_gossip() {
    // n1 knows only the hub (no host file of n2) and lists n2 as revoked.
    let mut net = SimNet::new(12, &["hub", "n1", "n2"]);
    let hub = net.config("hub", &[]);
    net.start(hub, &["n1", "n2"]);
    let mut c1 = net.config("n1", &["hub"]);
    c1.revoked = vec![meshd::name::NodeName::new("n2").unwrap()];
    net.start(c1, &["hub"]);
    let c2 = net.config("n2", &["hub"]);
    net.start(c2, &["hub"]);
    net.run_for(10 * S);
    assert!(net.sees("hub", "n1") && net.sees("hub", "n2"));
    assert!(!net.sees("n1", "n2") && !net.sees("n2", "n1"));
    assert!(!net.node("n1").peers().contains_key("n2"));
    assert!(net.node("n1").drops().revoked_record > 0);
}

#[test]
fn a_node_whose_clock_was_ahead_takes_its_generation_back_and_its_changes_count() {
    let mut net = SimNet::new(13, &["hub", "n1"]);
    let hub = net.config("hub", &[]);
    net.start(hub, &["n1"]);
    // n1's first start: its clock is a day ahead.
    net.set_clock_offset("n1", Duration::from_secs(86_400), true);
    let c1 = net.config("n1", &["hub"]);
    net.start(c1.clone(), &["hub"]);
    net.run_until_cond(10 * S, 10 * MS, |n| n.sees("hub", "n1"))
        .expect("no session");
    net.run_for(S);
    let future_gen = net.node("hub").peers()["n1"]
        .record
        .as_ref()
        .expect("the hub holds n1's record")
        .generation;

    // Killed, its clock fixed, started again: its new record is "older" than
    // the one the hub holds.
    net.kill("n1");
    net.set_clock_offset("n1", Duration::ZERO, true);
    net.run_for(S);
    net.restart("n1");
    net.run_until_cond(10 * S, 10 * MS, |n| {
        n.sees("hub", "n1") && n.sees("n1", "hub")
    })
    .expect("n1 did not come back");
    // A change after the restart: a new static subnet. The hub must see it.
    let mut c1b = c1.clone();
    c1b.subnets = vec!["02:00:00:00:00:aa".parse().unwrap()];
    net.reload("n1", c1b);
    let seen = net.run_until_cond(20 * S, 10 * MS, |n| {
        n.node("hub").peers()["n1"]
            .subnets
            .iter()
            .any(|s| s.to_string() == "02:00:00:00:00:aa")
    });
    let rec = net.node("hub").peers()["n1"]
        .record
        .clone()
        .expect("record");
    assert!(
        seen.is_some(),
        "the hub still holds n1's future-dated record (generation {} vs {future_gen}) and ignores its changes",
        rec.generation
    );
    assert!(
        rec.generation >= future_gen,
        "n1 did not move its generation past the old one"
    );
}
