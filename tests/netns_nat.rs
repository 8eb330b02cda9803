//! NAT traversal end to end (needs root; creates its own network namespaces
//! and removes them): alpha and beta each sit behind their own NAT router
//! (a namespace doing iptables MASQUERADE, inbound filtered as home routers
//! do: only replies come in), gamma is public. Behind NATs that keep the
//! port (endpoint-independent mapping) alpha and beta must end up on a
//! direct path, found by probing through gamma; behind NATs that pick a new
//! port per destination (`--random-fully`) they must stay reachable through
//! gamma as a relay.

use meshd_lab::nat::NatKind;
use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["alpha", "beta", "gamma"];

fn overlay_ip(node: &str) -> String {
    let i = NODES.iter().position(|n| *n == node).expect("lab node") + 1;
    format!("10.1.5.{i}")
}

fn nat_lab(tag: &str, random: bool) -> Lab {
    let mut lab = Lab::new(tag, &NODES);
    lab.init_all();
    lab.hub("gamma");
    for n in ["alpha", "beta"] {
        // Their host files' Address is their NAT's public address: not
        // reachable from outside (no port forwarding), as at home.
        lab.give_host(if n == "alpha" { "beta" } else { "alpha" }, n);
    }
    for node in NODES {
        lab.overlay_up(node, &format!("{}/24", overlay_ip(node)));
    }
    let kind = if random {
        NatKind::RandomPort
    } else {
        NatKind::KeepsPort
    };
    lab.put_behind_nat("alpha", 1, kind);
    lab.put_behind_nat("beta", 2, kind);
    lab
}

/// alpha's `dump nodes --json` line for beta: (reachable, via).
fn beta_from_alpha(lab: &Lab) -> Option<(bool, String)> {
    let line = lab.node_line("alpha", "beta")?;
    Some((
        line["reachable"].as_bool()?,
        line["via"].as_str()?.to_string(),
    ))
}

fn ping_beta(lab: &Lab) -> bool {
    let out = lab.exec_in(
        &lab.node("alpha").ns,
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &overlay_ip("beta"),
        ],
    );
    out.status.success()
}

fn start(lab: &mut Lab) -> Instant {
    let t0 = Instant::now();
    for n in ["gamma", "alpha", "beta"] {
        lab.start(n);
    }
    t0
}

/// Drops (`-I`) or stops dropping (`-D`) at beta's NAT everything from
/// alpha's NAT: no direct path at all, whatever either side sends.
fn block_alpha_at_beta_nat(lab: &Lab, op: &str) {
    let nat = lab.nat_ns(2);
    let alpha_public = lab.node("alpha").ip.clone();
    lab.must_in(
        &nat,
        &["iptables", op, "FORWARD", "-s", &alpha_public, "-j", "DROP"],
    );
    lab.must_in(
        &nat,
        &["iptables", op, "INPUT", "-s", &alpha_public, "-j", "DROP"],
    );
}

#[test]
fn behind_port_keeping_nats_the_pair_goes_direct() {
    require_netns!();
    netns::need_tools(&["iptables", "ping", "sysctl"]);
    let mut lab = nat_lab("ne", false);
    // First no direct path at all: the pair must be relayed through gamma.
    block_alpha_at_beta_nat(&lab, "-I");
    let t0 = start(&mut lab);
    let reached = lab
        .wait(Duration::from_secs(20), |lab| {
            beta_from_alpha(lab).is_some_and(|(up, via)| up && via == "gamma")
        })
        .expect("alpha never reached beta through gamma");
    eprintln!("endpoint-independent NATs, direct path blocked: beta reachable through gamma after {reached:?}");
    assert!(ping_beta(&lab), "ping through the relay failed");
    // The block goes. Each side's NAT keeps the port; only probing at the
    // same time (DirectTry through gamma) opens both NATs towards the other.
    block_alpha_at_beta_nat(&lab, "-D");
    let t = Instant::now();
    let direct = lab
        .wait(Duration::from_secs(20), |lab| {
            beta_from_alpha(lab).is_some_and(|(up, via)| up && via == "beta")
        })
        .unwrap_or_else(|| {
            for n in ["alpha", "beta"] {
                let log = std::fs::read_to_string(lab.node(n).netdir.join("meshd.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| {
                        l.contains("beta")
                            || l.contains("alpha")
                            || l.contains("direct")
                            || l.contains("handshake")
                    })
                    .collect();
                eprintln!(
                    "==== {n}\n{}",
                    tail[tail.len().saturating_sub(60)..].join("\n")
                );
            }
            panic!("alpha and beta never went direct through their NATs")
        });
    eprintln!(
        "endpoint-independent NATs: direct {direct:?} after the block went ({:?} since the starts)",
        t0.elapsed()
    );
    // The next direct try is at most 5 s away, then a round trip or two.
    assert!(t.elapsed() <= Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(ping_beta(&lab), "ping over the direct path failed");
}

#[test]
fn behind_port_changing_nats_the_pair_stays_relayed() {
    require_netns!();
    netns::need_tools(&["iptables", "ping", "sysctl"]);
    let mut lab = nat_lab("nr", true);
    let t0 = start(&mut lab);
    lab.wait(Duration::from_secs(20), |lab| {
        beta_from_alpha(lab).is_some_and(|(up, _)| up)
    })
    .expect("alpha never reached beta, even through gamma");
    eprintln!(
        "port-changing NATs: beta reachable after {:?}",
        t0.elapsed()
    );
    assert!(ping_beta(&lab), "ping through the relay failed");
    // Two rounds of direct tries later: still relayed, still answering.
    std::thread::sleep(Duration::from_secs(11));
    let (up, via) = beta_from_alpha(&lab).expect("beta listed");
    assert!(up && via == "gamma", "beta: up {up} via {via}");
    assert!(ping_beta(&lab), "ping through the relay failed later");
}

/// NAT rebinding: alpha, behind a port-keeping NAT, gets a new inside address
/// while its sessions run. Its NAT gives the new source a new public port (the
/// old mapping still holds the old one), so every peer now sees alpha's
/// datagrams from another address: the public gamma must follow it (path
/// validation) and keep the session — no host-down, pings answered again
/// within about a second — and beta, behind its own NAT, must reach alpha again.
#[test]
fn a_node_whose_nat_mapping_changes_keeps_its_sessions() {
    require_netns!();
    netns::need_tools(&["iptables", "ping", "sysctl"]);
    let mut lab = nat_lab("nb", false);
    let downs = lab.dir.path().join("gamma-downs");
    lab.script(
        "gamma",
        "host-down",
        &format!("#!/bin/sh\necho \"$NODE\" >> {}\n", downs.display()),
    );
    start(&mut lab);
    let alpha_at_gamma = |lab: &Lab| -> Option<(bool, String)> {
        let line = lab.node_line("gamma", "alpha")?;
        Some((
            line["reachable"].as_bool()?,
            format!("{}:{}", line["address"].as_str()?, line["port"].as_str()?),
        ))
    };
    lab.wait(Duration::from_secs(20), |lab| {
        alpha_at_gamma(lab).is_some_and(|(up, _)| up)
            && beta_from_alpha(lab).is_some_and(|(up, _)| up)
    })
    .expect("the mesh never formed");
    let (_, before) = alpha_at_gamma(&lab).expect("alpha at gamma");
    // alpha's inside address changes (a new DHCP lease, another access point).
    let ns = lab.node("alpha").ns.clone();
    for args in [
        &["addr", "flush", "dev", "eth0"][..],
        &["addr", "add", "10.0.1.3/24", "dev", "eth0"][..],
        &["route", "add", "default", "via", "10.0.1.1"][..],
    ] {
        let mut a = vec!["-n", ns.as_str()];
        a.extend_from_slice(args);
        netns::must("ip", &a);
    }
    let t = Instant::now();
    let moved = lab
        .wait(Duration::from_secs(10), |lab| {
            alpha_at_gamma(lab).is_some_and(|(up, at)| up && at != before)
        })
        .unwrap_or_else(|| {
            panic!(
                "gamma still has alpha at {before}: {:?}",
                alpha_at_gamma(&lab)
            )
        });
    let (_, after) = alpha_at_gamma(&lab).expect("alpha at gamma");
    eprintln!("NAT rebinding: gamma follows alpha from {before} to {after} after {moved:?}");
    let out = lab.exec_in(
        &ns,
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &overlay_ip("gamma"),
        ],
    );
    assert!(
        out.status.success(),
        "alpha cannot ping gamma after the change"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let back = lab
        .wait(Duration::from_secs(20), |lab| {
            beta_from_alpha(lab).is_some_and(|(up, _)| up)
        })
        .expect("alpha never reached beta again");
    eprintln!("NAT rebinding: alpha reaches beta again {back:?} after gamma followed");
    assert!(ping_beta(&lab), "alpha cannot ping beta after the change");
    let downs = std::fs::read_to_string(&downs).unwrap_or_default();
    assert!(
        !downs.lines().any(|l| l == "alpha"),
        "gamma ran host-down for alpha: the session did not survive"
    );
}
