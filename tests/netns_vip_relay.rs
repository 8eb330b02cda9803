//! Issue 19: a VIP holder that the client reaches only through a relay fails over within
//! the usual bound (needs root; builds its own namespaces and removes them).
//!
//! The reference scenario (`vip_probe::ref_lab`: hub node_1, holders node_2..node_4, client
//! node_5), with an iptables rule in the client's namespace that drops everything between
//! it and the three holders: the client reaches each holder only through the hub, which has
//! live sessions with both. The client pings the VIP every 10 ms; the serving holder is
//! SIGKILLed. The client must declare it dead end to end (the relay still answers, so the
//! relay is not blamed), steer the flow to a surviving holder — again through the relay —
//! and stay within the hard-fault bound of the direct case (500 ms).

mod vip_probe;

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use vip_probe::ref_lab::*;

/// The client's `dump nodes --json` line for `peer`: (reachable, via, path).
fn seen_from_client(lab: &Lab, peer: &str) -> (bool, String, String) {
    let line = lab
        .node_line(CLIENT, peer)
        .unwrap_or_else(|| panic!("node_5 has no dump nodes line for {peer}"));
    (
        line["reachable"].as_bool().unwrap_or(false),
        line["via"].as_str().unwrap_or("").to_string(),
        line["path"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_holder_reached_only_through_a_relay_fails_over_within_the_usual_bound() {
    require_netns!();
    netns::need_tools(&["iptables"]);
    let (lab, victim, r, _thaw) = failover_in("viprelay", Fault::Kill, |lab| {
        let ns = &lab.node(CLIENT).ns;
        for h in HOLDERS {
            let ip = &lab.node(h).ip;
            for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
                lab.must_in(ns, &["iptables", "-A", chain, dir, ip, "-j", "DROP"]);
            }
        }
        // host-down on the client, to tell whom it took for dead.
        let script_log = log_path(lab, CLIENT);
        lab.script(
            CLIENT,
            "host-down",
            &format!(
                "#!/bin/sh\necho \"host-down $NODE\" >> {}\n",
                script_log.display()
            ),
        );
    });
    hard_fault_bound(Fault::Kill, &victim, &lab, &r);
    // Still relayed after the failover: the surviving holders through node_1, and node_1
    // (the relay, which answered throughout) reachable directly.
    for h in HOLDERS.iter().filter(|h| **h != victim) {
        let (reachable, via, path) = seen_from_client(&lab, h);
        assert!(
            reachable && via == "node_1" && path == "relayed",
            "{h} from node_5: reachable {reachable}, via {via}, path {path}"
        );
    }
    let (reachable, via, path) = seen_from_client(&lab, "node_1");
    assert!(
        reachable && via == "node_1" && path == "direct",
        "node_1 from node_5: reachable {reachable}, via {via}, path {path}"
    );
    assert!(
        !lab.reachable(CLIENT).unwrap_or_default().contains(&victim),
        "node_5 still lists the killed {victim} as reachable"
    );
    // The relay answered throughout: host-down ran for the victim only.
    let downs: Vec<String> = log(&lab, CLIENT)
        .lines()
        .filter_map(|l| l.strip_prefix("host-down "))
        .map(str::to_string)
        .collect();
    assert_eq!(downs, vec![victim.clone()], "host-down on node_5");
}
