//! NAT traversal in a simulated network with a virtual clock: a and b each
//! behind a NAT (only replies come in), g public and known to both. Behind
//! NATs that keep the port (endpoint-independent mapping) the pair must end
//! on a direct path through both NATs; behind NATs that pick a new port per
//! remote it must stay reachable through g as a relay.

mod sim;

use meshd::node::is_relay_addr;
use sim::SimNet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn natted(seed: u64, keeps_port: bool) -> SimNet {
    let names = ["a", "b", "g"];
    let mut net = SimNet::new(seed, &names);
    net.delay = Duration::from_millis(5);
    net.behind_nat("a", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), keeps_port);
    net.behind_nat("b", IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)), keeps_port);
    // a and b know g only; they learn each other from g's gossip.
    for (name, knows) in [("a", &["g"][..]), ("b", &["g"][..]), ("g", &["a", "b"][..])] {
        let connect: &[&str] = if name == "g" { &[] } else { &["g"] };
        let cfg = net.config(name, connect);
        net.start(cfg, knows);
    }
    net
}

/// a's view of b: (alive, relayed).
fn a_to_b(net: &SimNet) -> (bool, bool) {
    net.node("a").peers().get("b").map_or((false, false), |p| {
        (p.alive, p.endpoint.is_some_and(is_relay_addr))
    })
}

#[test]
fn behind_port_keeping_nats_the_pair_ends_direct() {
    let mut net = natted(21, true);
    let mut reached = None;
    let mut direct = None;
    for step in 1..=200 {
        net.run_for(Duration::from_millis(100));
        let (alive, relayed) = a_to_b(&net);
        if alive && reached.is_none() {
            reached = Some(step * 100);
        }
        if alive && !relayed && net.sees("b", "a") {
            direct = Some(step * 100);
            break;
        }
    }
    eprintln!("port-keeping NATs: reachable after {reached:?} ms, direct after {direct:?} ms");
    let direct = direct.expect("a and b never went direct through their NATs in 20 s");
    assert!(direct <= 12_000, "{direct} ms");
    // Direct means through b's NAT: a sends to b's public address.
    let endpoint = net.node("a").peers()["b"].endpoint.expect("an endpoint");
    assert_eq!(endpoint.ip(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)));
    // And it stays so.
    net.run_for(Duration::from_secs(10));
    assert_eq!(a_to_b(&net), (true, false));
    // g and b both see a at its NAT's address: a's own record now carries
    // that reflexive address (PROTOCOL §6.1), as b's copy of it shows.
    let a_public: std::net::SocketAddr = "198.51.100.1:655".parse().unwrap();
    let record = net.node("b").peers()["a"]
        .record
        .clone()
        .expect("a's record");
    assert!(
        record.addresses.contains(&a_public),
        "{:?}",
        record.addresses
    );
}

#[test]
fn behind_port_changing_nats_the_pair_stays_relayed() {
    let mut net = natted(22, false);
    net.run_for(Duration::from_secs(3));
    assert_eq!(a_to_b(&net), (true, true), "a should reach b through g");
    // Direct tries every 5 s keep failing: the port b's NAT gives a is not
    // the one g saw. The pair stays up through g.
    net.run_for(Duration::from_secs(20));
    assert_eq!(a_to_b(&net), (true, true));
    assert!(net.sees("b", "a"));
    let c = net.node("g").relay_counters().clone();
    assert!(c.relayed_packets > 10, "{c:?}");
    // Only g sees a's public side (at a port b could not use): one report
    // does not make a reflexive address.
    let record = net.node("b").peers()["a"]
        .record
        .clone()
        .expect("a's record");
    assert_eq!(record.addresses, vec![net.nodes[net.idx("a")].addr]);
}
