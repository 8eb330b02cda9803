//! Simulated-network tests of tinc's operator commands in the core (`Node::disconnect`,
//! `Node::retry`, `Node::purge`; `meshd disconnect/retry/purge` call them), on a virtual clock.

mod sim;

use meshd::node::{DownReason, Event};
use sim::SimNet;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// hub, n1, n2: n1 and n2 know only the hub's host file and learn each other by gossip.
fn trio(seed: u64) -> SimNet {
    let mut net = SimNet::new(seed, &["hub", "n1", "n2"]);
    let cfg = net.config("hub", &[]);
    net.start(cfg, &["n1", "n2"]);
    for name in ["n1", "n2"] {
        let cfg = net.config(name, &["hub"]);
        net.start(cfg, &["hub"]);
    }
    let all: Vec<String> = ["hub", "n1", "n2"].iter().map(|s| s.to_string()).collect();
    net.run_until_cond(10 * S, 10 * MS, |n| n.full_mesh(&all))
        .expect("no full mesh within 10 s");
    net
}

#[test]
fn disconnect_drops_the_sessions_and_retry_brings_them_back_at_once() {
    let mut net = trio(21);
    let now = net.now;
    assert!(!net.node_mut("n1").disconnect(now, "nosuch"));
    let t0 = net.elapsed();
    assert!(net.node_mut("n1").disconnect(now, "hub"));
    assert!(!net.node("n1").is_alive("hub"));
    let i = net.idx("n1");
    net.pump(i); // the harness collects the events
    let down = net.nodes[net.idx("n1")].events.iter().any(|(t, e)| {
        *t >= t0
            && matches!(e, Event::PeerDown { name, reason: DownReason::Disconnected, .. } if name == "hub")
    });
    assert!(down, "no PeerDown(Disconnected): host-down would not run");
    // A second disconnect finds nothing to drop.
    assert!(!net.node_mut("n1").disconnect(now, "hub"));
    // Nothing is retried before the back-off...
    net.run_for(100 * MS);
    assert!(
        !net.node("n1").is_alive("hub"),
        "reconnected before the back-off"
    );
    // ...unless the operator says retry.
    let now = net.now;
    assert!(net.node_mut("n1").retry(now) >= 1);
    net.run_until_cond(net.elapsed() + S, MS, |n| n.node("n1").is_alive("hub"))
        .expect("retry did not bring the session back within 1 s");
}

#[test]
fn purge_forgets_unreachable_gossip_nodes_and_keeps_host_file_nodes() {
    let mut net = trio(22);
    assert!(
        net.node("n1").peers().contains_key("n2"),
        "n1 learned n2 by gossip"
    );
    net.kill("n2");
    net.kill("hub");
    net.run_until_cond(net.elapsed() + 20 * S, 10 * MS, |n| {
        !n.node("n1").is_alive("n2") && !n.node("n1").is_alive("hub")
    })
    .expect("n1 did not find n2 and the hub dead");
    let now = net.now;
    let purged = net.node_mut("n1").purge(now);
    let names: Vec<&str> = purged.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["hub", "n2"]);
    let peers = net.node("n1").peers();
    assert!(!peers.contains_key("n2"), "n2 (gossip only) is still known");
    let hub = peers.get("hub").expect("the hub (host file) is kept");
    assert!(hub.record.is_none() && hub.subnets.is_empty());
    // `dump nodes` no longer lists it, as tinc deletes a purged node (tinc's cmd_net test:
    // one line after `purge`)...
    let listed = |net: &SimNet| -> Vec<String> {
        let now = net.now;
        net.node("n1")
            .node_statuses(now, 655)
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(listed(&net), ["n1"], "dump nodes lists a purged node");
    // ...until it is reachable again (its host file keeps it tried).
    net.restart("hub");
    net.run_until_cond(net.elapsed() + 20 * S, 10 * MS, |n| {
        n.node("n1").is_alive("hub")
    })
    .expect("the hub did not come back");
    assert!(
        listed(&net).contains(&"hub".to_string()),
        "{:?}",
        listed(&net)
    );
    // A live peer is never purged.
    let mut net = trio(23);
    let now = net.now;
    assert!(net.node_mut("n1").purge(now).is_empty());
    assert_eq!(net.node("n1").peers().len(), 2);
}
