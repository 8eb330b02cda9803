//! `StrictSubnets` in the simulated network: a member announcing a VIP its
//! host files do not give it, or a better weight than its host file says, or
//! another node's MAC, gets nothing from a node with `StrictSubnets = yes`;
//! without it, the same member takes the VIP's new flows (the finding the
//! setting closes).

mod sim;

use meshd::switch::{MacAddr, Port};
use meshd::vip::LocalVip;
use sim::lab::*;
use std::time::Duration;

fn strict_client(cfg: &mut meshd::node::NodeConfig) {
    if cfg.name.as_str() == "node_5" {
        cfg.strict_subnets = true;
        cfg.switch.macs.sticky = true;
    }
}

fn claim_vip(lab: &mut Lab, name: &str, weight: u32) {
    let mut cfg = lab.net.nodes[lab.net.idx(name)]
        .config
        .clone()
        .expect("running");
    cfg.vips = vec![LocalVip {
        address: VIP.into(),
        prefix_len: 24,
        weight,
        virtual_mac: MacAddr(VMAC),
        checked: false,
        owner: None,
        presence: None,
        policy: Default::default(),
    }];
    lab.net.reload(name, cfg);
    // Past VIPHoldDown (1 s): a new holder is eligible.
    lab.net.run_for(Duration::from_millis(1500));
}

/// The holders node_5 sees for the VIP, with their weights.
fn holders_at_client(lab: &Lab) -> Vec<(String, u32)> {
    let now = lab.net.now;
    let vips = lab.net.node("node_5").vip_statuses(now);
    vips.iter()
        .flat_map(|v| v.holders.iter().map(|h| (h.name.clone(), h.weight)))
        .collect()
}

/// Fresh flows (one port each) probed once; which holders answered them.
fn answering_holders(lab: &mut Lab, ports: std::ops::Range<u16>) -> Vec<u8> {
    let mut got = Vec::new();
    for port in ports {
        let sent = lab.probe_for(Duration::from_millis(30), port);
        let answered = lab.answers.borrow().iter().any(|a| sent.contains(&a.1));
        got.push(if answered {
            lab.holder_of_port(port)
        } else {
            0
        });
    }
    got
}

#[test]
fn without_strict_subnets_a_member_takes_a_vip_it_was_never_given() {
    let mut lab = lab(11, [10, 10, 10], |_| {});
    claim_vip(&mut lab, "node_1", 1);
    assert!(holders_at_client(&lab).iter().any(|(n, _)| n == "node_1"));
    // node_1 has no server behind its TAP: every new flow it takes is lost.
    let got = answering_holders(&mut lab, 5000..5010);
    assert!(got.iter().all(|h| *h == 0), "answered by {got:?}");
}

#[test]
fn a_strict_node_ignores_a_gossiped_vip_claim_its_host_files_do_not_give() {
    let mut lab = lab(12, [10, 10, 10], strict_client);
    claim_vip(&mut lab, "node_1", 1);
    let holders = holders_at_client(&lab);
    assert!(!holders.iter().any(|(n, _)| n == "node_1"), "{holders:?}");
    assert_eq!(holders.len(), 3);
    assert!(lab.net.node("node_5").drops().strict_refused >= 1);
    let got = answering_holders(&mut lab, 5000..5010);
    assert!(
        got.iter().all(|h| (2..=4).contains(h)),
        "answered by {got:?}"
    );
    // A non-strict node in the same mesh does take the claim.
    let now = lab.net.now;
    let at_hub = lab.net.node("node_2").vip_statuses(now);
    assert!(at_hub[0].holders.iter().any(|h| h.name == "node_1"));
}

#[test]
fn a_strict_node_keeps_the_host_files_weight_of_a_holder() {
    let mut lab = lab(13, [10, 10, 10], strict_client);
    // node_2 may hold the VIP, at weight 10: it announces weight 1 to take every flow.
    claim_vip(&mut lab, "node_2", 1);
    let holders = holders_at_client(&lab);
    assert!(holders.contains(&("node_2".to_string(), 10)), "{holders:?}");
    let got = answering_holders(&mut lab, 6000..6030);
    let spread: std::collections::BTreeSet<u8> = got.iter().copied().collect();
    assert!(spread.len() >= 2, "every flow went to {spread:?}");
    assert!(!spread.contains(&0), "a flow was lost: {got:?}");
}

#[test]
fn a_strict_node_lets_no_member_take_over_another_nodes_mac() {
    let mut lab = lab(14, [10, 10, 10], strict_client);
    let victim = MacAddr(tap_mac(3));
    // node_3's TAP speaks: every node learns its MAC behind node_3.
    let mut hello = vec![0xff; 6];
    hello.extend_from_slice(&victim.0);
    hello.extend_from_slice(&[0x88, 0xb5, 0, 0]);
    hello.resize(60, 0);
    lab.net.tap_send("node_3", &hello);
    lab.net.run_for(Duration::from_millis(50));
    let port_of = |lab: &Lab, at: &str| {
        lab.net
            .node(at)
            .switch()
            .macs()
            .get(&victim)
            .map(|e| e.port.clone())
    };
    assert_eq!(port_of(&lab, "node_5"), Some(Port::peer("node_3")));
    // node_1 sends from node_3's MAC.
    lab.net.tap_send("node_1", &hello);
    lab.net.run_for(Duration::from_millis(50));
    assert_eq!(
        port_of(&lab, "node_5"),
        Some(Port::peer("node_3")),
        "strict node moved it"
    );
    assert_eq!(
        port_of(&lab, "node_4"),
        Some(Port::peer("node_1")),
        "a loose node moves it"
    );
}
