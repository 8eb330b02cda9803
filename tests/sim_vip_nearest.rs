//! Nearest-holder steering (`VIPPolicy = ADDRESS nearest`) in the simulated
//! reference scenario: node_5, the client, sends each new flow to the holder
//! with the lowest round-trip time; weights still come first; a dead nearest
//! holder's flows move to the next; a clearly nearer holder gets new flows
//! while established ones stay; jitter does not flip the choice; holders that
//! disagree on the policy get hashed flows.

mod sim;

use meshd::vip::SteerPolicy;
use sim::lab::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The lab with every holder asking for `nearest`, one-way delays from the
/// client to node_2, node_3, node_4 as given, and time for the RTTs to settle.
fn nearest_lab(seed: u64, weights: [u32; 3], delays_ms: [u64; 3]) -> Lab {
    let mut lab = lab(seed, weights, |cfg| {
        for v in &mut cfg.vips {
            v.policy = SteerPolicy::Nearest;
        }
    });
    for (k, d) in delays_ms.iter().enumerate() {
        lab.net
            .set_link_delay("node_5", name_of(k as u8 + 2), ms(*d));
    }
    lab.net.run_for(Duration::from_secs(5));
    lab
}

/// Sends one probe on each of `ports` and returns who answered each.
fn holders_of(lab: &mut Lab, ports: std::ops::Range<u16>) -> Vec<u8> {
    for p in ports.clone() {
        lab.probe(p);
        lab.net.run_for(ms(5));
    }
    lab.net.run_for(ms(100));
    ports.map(|p| lab.holder_of_port(p)).collect()
}

fn nearest_now(lab: &Lab) -> Option<String> {
    lab.net
        .node("node_5")
        .vip_statuses(lab.net.now)
        .first()
        .and_then(|v| v.nearest.clone())
}

#[test]
fn nearest_sends_every_new_flow_to_the_holder_with_the_lowest_rtt() {
    let mut lab = nearest_lab(41, [10, 10, 10], [20, 5, 10]);
    let by = holders_of(&mut lab, 1000..1020);
    assert!(by.iter().all(|h| *h == 3), "not all to node_3: {by:?}");
    let st = lab.net.node("node_5").vip_statuses(lab.net.now);
    assert_eq!(st[0].policy, "nearest");
    assert_eq!(st[0].nearest.as_deref(), Some("node_3"));
    let rtt = |n: &str| {
        st[0]
            .holders
            .iter()
            .find(|h| h.name == n)
            .and_then(|h| h.rtt_ms)
            .unwrap_or(f64::NAN)
    };
    // The smoothed RTTs show the delays (twice the one-way delay).
    assert!((rtt("node_3") - 10.0).abs() < 2.0, "{}", rtt("node_3"));
    assert!((rtt("node_2") - 40.0).abs() < 4.0, "{}", rtt("node_2"));
}

#[test]
fn weights_come_before_distance() {
    let mut lab = nearest_lab(42, [5, 10, 10], [20, 5, 10]);
    let by = holders_of(&mut lab, 1000..1010);
    assert!(by.iter().all(|h| *h == 2), "not all to node_2: {by:?}");
}

#[test]
fn the_flows_of_a_dead_nearest_holder_move_to_the_next_nearest() {
    let mut lab = nearest_lab(43, [10, 10, 10], [20, 5, 10]);
    lab.probe_for(ms(200), 2000);
    assert_eq!(lab.holder_of_port(2000), 3);
    lab.net.kill("node_3");
    let range = lab.probe_for(Duration::from_secs(1), 2000);
    let (outage, lost) = lab.outage(range);
    eprintln!("nearest holder killed: outage {outage:?}, {lost} lost");
    assert_eq!(lab.holder_of_port(2000), 4, "the flow went to node_2");
    let by = holders_of(&mut lab, 3000..3010);
    assert!(
        by.iter().all(|h| *h == 4),
        "new flows not to node_4: {by:?}"
    );
}

#[test]
fn a_clearly_nearer_holder_gets_new_flows_and_established_ones_stay() {
    let mut lab = nearest_lab(44, [10, 10, 10], [20, 5, 10]);
    lab.probe_for(ms(200), 2000);
    assert_eq!(lab.holder_of_port(2000), 3);
    // node_4 becomes much nearer (1 ms against 5 ms one way).
    lab.net.set_link_delay("node_5", "node_4", ms(1));
    lab.net.run_for(Duration::from_secs(5));
    let by = holders_of(&mut lab, 4000..4010);
    assert!(
        by.iter().all(|h| *h == 4),
        "new flows not to node_4: {by:?}"
    );
    lab.probe_for(ms(200), 2000);
    assert_eq!(lab.holder_of_port(2000), 3, "the established flow moved");
}

#[test]
fn jitter_does_not_flip_the_nearest_choice() {
    // node_3 and node_4 are both 10 ms away; up to 4 ms of jitter per datagram
    // makes their smoothed RTTs cross again and again.
    let mut lab = nearest_lab(45, [10, 10, 10], [30, 10, 10]);
    lab.net.jitter = ms(4);
    lab.net.run_for(Duration::from_secs(3));
    let mut chosen = BTreeSet::new();
    let mut choices = BTreeSet::new();
    for k in 0..40u16 {
        lab.probe(5000 + k);
        lab.net.run_for(ms(500));
        chosen.insert(lab.holder_of_port(5000 + k));
        choices.extend(nearest_now(&lab));
    }
    assert_eq!(chosen.len(), 1, "new flows went to {chosen:?} over 20 s");
    assert_eq!(choices.len(), 1, "the nearest choice flipped: {choices:?}");
    assert!(!chosen.contains(&2));
}

#[test]
fn holders_that_disagree_on_the_policy_get_hashed_flows() {
    // node_4 does not ask for nearest: the client hashes, as by default.
    let mut lab = lab(46, [10, 10, 10], |cfg| {
        if cfg.name.as_str() != "node_4" {
            for v in &mut cfg.vips {
                v.policy = SteerPolicy::Nearest;
            }
        }
    });
    for (k, d) in [20, 5, 10].iter().enumerate() {
        lab.net
            .set_link_delay("node_5", name_of(k as u8 + 2), ms(*d));
    }
    lab.net.run_for(Duration::from_secs(5));
    let by: BTreeSet<u8> = holders_of(&mut lab, 1000..1040).into_iter().collect();
    assert_eq!(by.len(), 3, "flows not shared by hash: {by:?}");
    let st = lab.net.node("node_5").vip_statuses(lab.net.now);
    assert_eq!(st[0].policy, "hash");
    assert!(st[0].policy_note.is_some(), "{:?}", st[0]);
    assert_eq!(st[0].nearest, None);
}
