//! Relaying end to end (needs root; creates its own network namespaces and
//! removes them): four real daemons on one bridge; an iptables rule in
//! alpha's namespace drops every datagram between alpha and beta, both of
//! which have live sessions with gamma and delta. The overlay must still
//! carry alpha's pings to beta (through a relay), keep carrying them when
//! that relay is killed (through the other), and move to the direct path
//! when the rule goes.

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use std::time::{Duration, Instant};

const NODES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

fn overlay_ip(node: &str) -> String {
    let i = NODES.iter().position(|n| *n == node).expect("lab node") + 1;
    format!("10.1.4.{i}")
}

fn relay_lab(tag: &str) -> Lab {
    let lab = Lab::new(tag, &NODES);
    lab.init_all();
    // Everyone knows everyone; alpha and beta connect to both relays.
    lab.give_all_hosts();
    for n in ["alpha", "beta"] {
        lab.conf(n, "ConnectTo = gamma");
        lab.conf(n, "ConnectTo = delta");
    }
    lab.conf("alpha", "ConnectTo = beta");
    for node in NODES {
        lab.overlay_up(node, &format!("{}/24", overlay_ip(node)));
    }
    lab
}

/// Drops (`-A`) or stops dropping (`-D`) alpha's datagrams to and from beta.
fn firewall(lab: &Lab, op: &str) {
    let ns = &lab.node("alpha").ns;
    let beta = &lab.node("beta").ip;
    for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
        lab.must_in(ns, &["iptables", op, chain, dir, beta, "-j", "DROP"]);
    }
}

/// alpha's `dump nodes --json` line for beta: (reachable, via, distance).
fn beta_from_alpha(lab: &Lab) -> Option<(bool, String, i64)> {
    let line = lab.node_line("alpha", "beta")?;
    Some((
        line["reachable"].as_bool()?,
        line["via"].as_str()?.to_string(),
        line["distance"].as_i64()?,
    ))
}

fn ping(lab: &Lab, count: &str, interval: &str) -> String {
    let out = lab.exec_in(
        &lab.node("alpha").ns,
        &[
            "ping",
            "-c",
            count,
            "-i",
            interval,
            "-W",
            "1",
            &overlay_ip("beta"),
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn received(ping_output: &str) -> u32 {
    ping_output
        .split(", ")
        .find_map(|p| p.strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_blocked_pair_is_relayed_fails_over_and_goes_direct() {
    require_netns!();
    netns::need_tools(&["iptables", "ping", "nc.openbsd", "ss"]);
    let mut lab = relay_lab("rl");
    firewall(&lab, "-A");
    let t0 = Instant::now();
    for n in NODES {
        lab.start(n);
    }
    let took = lab
        .wait(Duration::from_secs(15), |lab| {
            beta_from_alpha(lab).is_some_and(|(up, via, _)| up && via != "beta")
        })
        .expect("alpha never reached beta through a relay");
    let (_, relay, distance) = beta_from_alpha(&lab).expect("beta listed");
    eprintln!(
        "alpha reaches beta through {relay} {took:?} after the starts ({:?} in all)",
        t0.elapsed()
    );
    assert_eq!(distance, 2);
    let out = ping(&lab, "5", "0.2");
    assert_eq!(received(&out), 5, "ping through the relay:\n{out}");

    // 8 MiB through the relay, intact.
    let alpha_ns = lab.node("alpha").ns.clone();
    let beta_ns = lab.node("beta").ns.clone();
    let target = overlay_ip("beta");
    let mut data = vec![0u8; 8 << 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    let relayed_took = lab.tcp_transfer(
        &alpha_ns,
        &beta_ns,
        &target,
        5001,
        &data,
        Duration::from_secs(30),
    );
    eprintln!(
        "8 MiB alpha -> beta through {relay} intact in {relayed_took:?} ({:.0} Mbit/s)",
        (data.len() * 8) as f64 / relayed_took.as_secs_f64() / 1e6
    );

    // The relay is killed during a ping every 10 ms: the other takes over.
    let pinger = std::thread::spawn({
        let ns = alpha_ns.clone();
        move || {
            let out = std::process::Command::new("ip")
                .args([
                    "netns", "exec", &ns, "ping", "-c", "300", "-i", "0.01", "-W", "1", &target,
                ])
                .output()
                .expect("ping");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    lab.kill(&relay, nix::sys::signal::Signal::SIGKILL);
    let out = pinger.join().expect("pinger");
    let lost = 300 - received(&out);
    eprintln!(
        "relay {relay} killed during a ping every 10 ms: {lost} of 300 lost (~{} ms)",
        lost * 10
    );
    assert!(lost * 10 <= 1000, "{lost} pings lost:\n{out}");
    let (up, via, _) = beta_from_alpha(&lab).expect("beta listed");
    assert!(
        up && via != relay && via != "beta",
        "beta: up {up} via {via}"
    );

    // The rule goes: alpha and beta move to their direct path.
    firewall(&lab, "-D");
    let direct = lab
        .wait(Duration::from_secs(15), |lab| {
            beta_from_alpha(lab).is_some_and(|(up, via, d)| up && via == "beta" && d == 1)
        })
        .expect("still relayed 15 s after the rule went");
    eprintln!("direct again {direct:?} after the rule went");
    let out = ping(&lab, "3", "0.2");
    assert_eq!(received(&out), 3, "ping on the direct path:\n{out}");
}
