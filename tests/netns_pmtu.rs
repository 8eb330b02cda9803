//! Path MTU end to end (needs root; creates its own network namespaces and
//! removes them): beta's underlay link has MTU 1300 (its eth0 and the
//! bridge's port towards it), alpha's 1500; the TAPs keep meshd's MTU 1400.
//! A full-size frame must cross (`ping -M do -s 1372`: a 1400-byte packet
//! that may not be fragmented), 8 MiB must arrive intact over TCP, and
//! `dump nodes` must show the path's MTU. Both ways the path is small for a
//! different reason: alpha's datagrams vanish at the bridge (a black hole:
//! only probes find it), beta's are refused by its own kernel (`EMSGSIZE`).

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use std::time::Duration;

const NODES: [&str; 2] = ["alpha", "beta"];

fn overlay_ip(node: &str) -> &'static str {
    if node == "alpha" {
        "10.1.3.1"
    } else {
        "10.1.3.2"
    }
}

fn small_link_lab(tag: &str) -> Lab {
    let lab = Lab::new(tag, &NODES);
    lab.init_all();
    lab.hub("alpha");
    for node in NODES {
        lab.overlay_up(node, &format!("{}/24", overlay_ip(node)));
    }
    // beta's side of the underlay: MTU 1300 on both ends of its link.
    netns::must(
        "ip",
        &[
            "-n",
            &lab.node("beta").ns,
            "link",
            "set",
            "eth0",
            "mtu",
            "1300",
        ],
    );
    netns::must(
        "ip",
        &["-n", &lab.bridge_ns, "link", "set", "v2", "mtu", "1300"],
    );
    lab
}

/// `dump nodes --json` of `node`: the line of `peer` (pmtu, min_mtu, max_mtu).
fn pmtu_of(lab: &Lab, node: &str, peer: &str) -> Option<(u64, u64, u64)> {
    let line = lab.node_line(node, peer)?;
    Some((
        line["pmtu"].as_u64()?,
        line["min_mtu"].as_u64()?,
        line["max_mtu"].as_u64()?,
    ))
}

#[test]
fn full_size_frames_cross_a_1300_byte_underlay() {
    require_netns!();
    netns::need_tools(&["ping", "nc.openbsd", "ss"]);
    let mut lab = small_link_lab("pm");
    for n in NODES {
        lab.start(n);
    }
    lab.wait(Duration::from_secs(15), |lab| {
        lab.reachable("alpha")
            .is_some_and(|r| r.iter().any(|n| n == "beta"))
    })
    .expect("alpha never reached beta");

    // Both ends find the path: 1300 − 20 (IPv4) − 8 (UDP) − 31 = 1241-byte frames.
    let found = lab.wait(Duration::from_secs(10), |lab| {
        pmtu_of(lab, "alpha", "beta") == Some((1241, 1241, 1241))
            && pmtu_of(lab, "beta", "alpha") == Some((1241, 1241, 1241))
    });
    assert!(
        found.is_some(),
        "path MTU not found within 10 s: alpha sees beta {:?}, beta sees alpha {:?}",
        pmtu_of(&lab, "alpha", "beta"),
        pmtu_of(&lab, "beta", "alpha")
    );
    eprintln!("path MTU found within {found:?}");
    let text = lab.ctl("alpha", &["dump", "nodes"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("beta ") && l.contains("pmtu 1241 (min 1241 max 1241)")),
        "dump nodes:\n{text}"
    );

    // A 1400-byte packet with DF set, both ways.
    let alpha_ns = lab.node("alpha").ns.clone();
    let beta_ns = lab.node("beta").ns.clone();
    for (ns, target) in [
        (&alpha_ns, overlay_ip("beta")),
        (&beta_ns, overlay_ip("alpha")),
    ] {
        let out = lab.exec_in(
            ns,
            &[
                "ping", "-M", "do", "-s", "1372", "-c", "3", "-i", "0.2", "-W", "2", target,
            ],
        );
        assert!(
            out.status.success(),
            "ping -M do -s 1372 {target}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("3 received"), "{stdout}");
    }

    // 8 MiB over TCP, alpha -> beta (full-size segments), intact.
    let mut data = vec![0u8; 8 << 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    let took = lab.tcp_transfer(
        &alpha_ns,
        &beta_ns,
        overlay_ip("beta"),
        5001,
        &data,
        Duration::from_secs(30),
    );
    eprintln!(
        "8 MiB alpha -> beta over a 1300-byte underlay intact in {took:?} ({:.1} Mbit/s)",
        (data.len() * 8) as f64 / took.as_secs_f64() / 1e6
    );
}
