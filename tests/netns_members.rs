//! What a member may do, with real daemons in network namespaces (needs root):
//! revocation by reload (`meshd revoke`) cuts a node within a second and a
//! restart of the revoked node does not bring it back; with
//! `StrictSubnets = yes`, a member that announces a VIP its host files do not
//! give it gets no traffic from that node.

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Every node gets `Interface = mesh0` and a tinc-up that puts 10.1.1.N/24 on it.
fn overlay(lab: &Lab) {
    for (i, n) in lab.nodes.iter().enumerate() {
        lab.conf(&n.name, "Interface = mesh0");
        lab.script(
            &n.name,
            "tinc-up",
            &format!(
                "#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add 10.1.1.{}/24 dev \"$INTERFACE\"\n",
                i + 1
            ),
        );
    }
}

fn sees(lab: &Lab, node: &str, other: &str) -> bool {
    lab.reachable(node)
        .is_some_and(|r| r.iter().any(|x| x == other))
}

/// Echo replies of `count` pings from `node` to `ip`, 50 ms apart, 300 ms wait each.
fn pings_answered(lab: &Lab, node: &str, ip: &str, count: u32) -> u32 {
    let out = lab.exec(
        node,
        &[
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            "0.3",
            ip,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|p| p.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ping summary: {text}"))
}

#[test]
fn revocation_by_reload_cuts_the_node_and_a_restart_does_not_bring_it_back() {
    require_netns!();
    netns::need_tools(&["ping"]);
    let names = ["alpha", "beta", "gamma"];
    let mut lab = Lab::new("rv", &names);
    lab.init_all();
    overlay(&lab);
    lab.hub("alpha");
    for n in names {
        lab.start(n);
    }
    let mesh = |lab: &Lab| names.iter().all(|a| names.iter().all(|b| sees(lab, a, b)));
    lab.wait(Duration::from_secs(15), mesh)
        .expect("no full mesh within 15 s");
    assert_eq!(
        pings_answered(&lab, "gamma", "10.1.1.1", 3),
        3,
        "gamma reaches alpha first"
    );

    // alpha's operator revokes gamma: the host file moves to revoked/, the daemon reloads.
    let t0 = Instant::now();
    let out = lab.ctl("alpha", &["revoke", "gamma"]);
    assert!(
        out.status.success(),
        "revoke: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("revoked/gamma"), "{text}");
    let netdir = &lab.node("alpha").netdir;
    assert!(!netdir.join("hosts/gamma").exists());
    assert!(netdir.join("revoked/gamma").exists());
    lab.wait(Duration::from_secs(1), |lab| !sees(lab, "alpha", "gamma"))
        .expect("alpha still sees gamma a second after the revocation");
    eprintln!(
        "revoked node cut {:?} after `meshd revoke` started",
        t0.elapsed()
    );
    // No frame either way from one second after the reload, while gossip from beta
    // still names gamma (beta did not revoke it).
    std::thread::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed()));
    assert_eq!(
        pings_answered(&lab, "gamma", "10.1.1.1", 10),
        0,
        "gamma still reaches alpha"
    );
    assert_eq!(
        pings_answered(&lab, "alpha", "10.1.1.3", 5),
        0,
        "alpha still reaches gamma"
    );
    assert_eq!(
        pings_answered(&lab, "beta", "10.1.1.1", 3),
        3,
        "beta lost alpha"
    );
    assert_eq!(
        pings_answered(&lab, "beta", "10.1.1.3", 3),
        3,
        "beta lost gamma"
    );

    // gamma restarts (new generation, new sessions): still out.
    let pid = lab.pid("gamma").expect("gamma's pid");
    lab.kill("gamma", Signal::SIGKILL);
    lab.wait(Duration::from_secs(5), |_| {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
    .expect("gamma did not die");
    lab.start("gamma");
    lab.wait(Duration::from_secs(15), |lab| sees(lab, "beta", "gamma"))
        .expect("gamma did not come back to beta");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !sees(&lab, "alpha", "gamma"),
        "the restart brought gamma back to alpha"
    );
    assert_eq!(pings_answered(&lab, "gamma", "10.1.1.1", 10), 0);
    let drops = String::from_utf8_lossy(&lab.ctl("alpha", &["dump", "drops"]).stdout).into_owned();
    eprintln!("{drops}");
}

/// `node`'s holders of 10.1.1.10 in `dump vips --json`.
fn holders(lab: &Lab, node: &str) -> Vec<String> {
    let out = lab.ctl(node, &["dump", "vips", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .and_then(|a| a.iter().find(|x| x["vip"] == "10.1.1.10"))
        .and_then(|x| x["holders"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|h| h["name"].as_str().map(str::to_string))
        .collect()
}

/// Frames received on mesh0 in `node`'s namespace.
fn tap_rx_packets(lab: &Lab, node: &str) -> u64 {
    let out = lab.exec(node, &["cat", "/sys/class/net/mesh0/statistics/tx_packets"]);
    // The TAP's tx counter counts what meshd wrote into it (frames for this host).
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_strict_node_sends_nothing_to_a_member_claiming_a_vip_it_was_not_given() {
    require_netns!();
    netns::need_tools(&["ping"]);
    // alpha: hub; beta: the VIP's holder by the operator's host files; mallory:
    // a member that adds the VIP to its own host file afterwards, at a better
    // weight; client: StrictSubnets = yes.
    let names = ["alpha", "beta", "mallory", "client"];
    let mut lab = Lab::new("ss", &names);
    lab.init_all();
    overlay(&lab);
    for h in ["beta", "mallory"] {
        lab.script(
            h,
            "vip-up",
            "#!/bin/sh\nip addr add \"$VIP/32\" dev \"$INTERFACE\"\n",
        );
        lab.script(
            h,
            "vip-down",
            "#!/bin/sh\nip addr del \"$VIP/32\" dev \"$INTERFACE\"\n",
        );
    }
    netns::append(
        &lab.node("beta").netdir.join("hosts/beta"),
        "VirtualIP = 10.1.1.10/24#10\n",
    );
    lab.hub("alpha");
    // The client holds every host file, as the operator distributed them.
    for n in ["beta", "mallory"] {
        lab.give_host(n, "client");
    }
    lab.conf("client", "StrictSubnets = yes");
    // Now mallory claims the VIP in its own files only.
    netns::append(
        &lab.node("mallory").netdir.join("hosts/mallory"),
        "VirtualIP = 10.1.1.10/24#1\n",
    );
    for n in names {
        lab.start(n);
    }
    let both_at_alpha = |lab: &Lab| {
        let h = holders(lab, "alpha");
        h.contains(&"beta".to_string()) && h.contains(&"mallory".to_string())
    };
    lab.wait(Duration::from_secs(15), both_at_alpha)
        .expect("alpha (not strict) never saw both claims");
    lab.wait(Duration::from_secs(15), |lab| {
        holders(lab, "client") == ["beta"]
    })
    .unwrap_or_else(|| panic!("client's holders: {:?}", holders(&lab, "client")));
    // Past VIPHoldDown, so a claim the client took would steer new flows.
    std::thread::sleep(Duration::from_millis(1500));
    let before = tap_rx_packets(&lab, "mallory");
    assert_eq!(
        pings_answered(&lab, "client", "10.1.1.10", 40),
        40,
        "the VIP did not answer"
    );
    let got = tap_rx_packets(&lab, "mallory") - before;
    assert!(
        got < 5,
        "mallory's TAP got {got} frames during 40 pings to the VIP"
    );
    assert_eq!(holders(&lab, "client"), ["beta"]);
    let drops = String::from_utf8_lossy(&lab.ctl("client", &["dump", "drops"]).stdout).into_owned();
    assert!(
        drops.contains("strict"),
        "dump drops does not show the refusals:\n{drops}"
    );
}
