//! Simulated-network tests of when `host-up` runs: as in tinc, both
//! directions of the new edge are known by then (`dump edges` lists both),
//! without waiting for a gossip round.

mod sim;

use meshd::node::Event;
use sim::SimNet;
use std::time::Duration;

/// `others` each ConnectTo `hub`; the hub knows them all.
fn star(seed: u64, hub: &str, others: &[&str]) -> SimNet {
    let mut all = vec![hub];
    all.extend_from_slice(others);
    let mut net = SimNet::new(seed, &all);
    net.record_edges_at_up = true;
    let cfg = net.config(hub, &[]);
    net.start(cfg, others);
    for name in others {
        let cfg = net.config(name, &[hub]);
        net.start(cfg, &[hub]);
    }
    net
}

/// The edges `node` listed when its `host-up` for `peer` ran.
fn edges_at_up(net: &SimNet, node: &str, peer: &str) -> Vec<(String, String)> {
    let sim = &net.nodes[net.idx(node)];
    let (_, edges) = sim
        .edges_at_up
        .iter()
        .find(|(name, _)| name == peer)
        .unwrap_or_else(|| panic!("{node} never ran host-up for {peer}"));
    edges.clone()
}

fn edge(from: &str, to: &str) -> (String, String) {
    (from.to_string(), to.to_string())
}

#[test]
fn host_up_runs_when_both_directions_of_the_edge_are_known() {
    for seed in 1..=5 {
        let mut net = star(seed, "foo", &["bar"]);
        net.run_for(Duration::from_secs(3));
        for (node, peer) in [("foo", "bar"), ("bar", "foo")] {
            let edges = edges_at_up(&net, node, peer);
            assert!(
                edges.contains(&edge(node, peer)) && edges.contains(&edge(peer, node)),
                "seed {seed}: at {node}'s host-up for {peer}, dump edges listed {edges:?}"
            );
        }
    }
}

#[test]
fn host_up_does_not_wait_for_the_paced_record_flood() {
    let mut net = star(7, "foo", &["bar"]);
    net.run_for(Duration::from_secs(3));
    for (node, peer) in [("foo", "bar"), ("bar", "foo")] {
        let at = net.nodes[net.idx(node)]
            .events
            .iter()
            .find_map(|(t, e)| match e {
                Event::PeerUp { name, .. } if name == peer => Some(*t),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{node} never ran host-up for {peer}"));
        // The handshake and one record take a few round trips of 0.2 ms; the
        // neighbour list alone is flooded to the mesh at most once a second.
        assert!(
            at < Duration::from_millis(100),
            "{node}: host-up {peer} at {at:?}"
        );
    }
}

#[test]
fn at_the_hubs_host_up_every_edge_it_lists_is_mutual() {
    let mut net = star(3, "foo", &["bar", "baz"]);
    net.run_for(Duration::from_secs(3));
    for peer in ["bar", "baz"] {
        let edges = edges_at_up(&net, "foo", peer);
        for (from, to) in &edges {
            assert!(
                edges.contains(&edge(to, from)),
                "at foo's host-up for {peer}: {from} to {to} without its reverse in {edges:?}"
            );
        }
        assert!(edges.contains(&edge(peer, "foo")), "{edges:?}");
    }
}

#[test]
fn every_host_down_follows_a_host_up() {
    let mut net = star(4, "foo", &["bar"]);
    net.run_for(Duration::from_secs(3));
    net.kill("bar");
    net.run_for(Duration::from_secs(60));
    net.restart("bar");
    net.run_for(Duration::from_secs(5));
    let mut up = false;
    for (t, e) in &net.nodes[net.idx("foo")].events {
        match e {
            Event::PeerUp { name, .. } if name == "bar" => {
                assert!(!up, "two host-ups for bar without a host-down (at {t:?})");
                up = true;
            }
            Event::PeerDown { name, .. } if name == "bar" => {
                assert!(up, "host-down for bar without a host-up (at {t:?})");
                up = false;
            }
            _ => {}
        }
    }
    assert!(up, "bar is up again after its restart");
}
