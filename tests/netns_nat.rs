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
