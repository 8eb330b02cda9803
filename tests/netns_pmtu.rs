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
use std::time::{Duration, Instant};

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
        let ip = overlay_ip(node);
        lab.script(
            node,
            "tinc-up",
            &format!(
                "#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {ip}/24 dev \"$INTERFACE\"\n"
            ),
        );
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
    let out = lab.ctl(node, &["dump", "nodes", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let line = v.as_array()?.iter().find(|n| n["name"] == peer)?;
    Some((
        line["pmtu"].as_u64()?,
        line["min_mtu"].as_u64()?,
        line["max_mtu"].as_u64()?,
    ))
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
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
    let sent = lab.dir.path().join("sent.bin");
    let received = lab.dir.path().join("received.bin");
    let mut data = vec![0u8; 8 << 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    std::fs::write(&sent, &data).expect("write sent.bin");
    let listener = lab.spawn_in(
        &beta_ns,
        &["nc.openbsd", "-l", "5001"],
        None,
        Some(&received),
    );
    lab.wait(Duration::from_secs(5), |lab| {
        let out = lab.exec_in(&beta_ns, &["ss", "-Hltn", "sport = :5001"]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    })
    .expect("nc not listening in beta");
    let t = Instant::now();
    let sender = lab.spawn_in(
        &alpha_ns,
        &["nc.openbsd", "-N", "-w", "10", overlay_ip("beta"), "5001"],
        Some(&sent),
        None,
    );
    let st = lab
        .wait_child(sender, Duration::from_secs(30))
        .expect("sender did not finish within 30 s");
    assert!(st.success(), "nc sender: {st}");
    let st = lab
        .wait_child(listener, Duration::from_secs(5))
        .expect("listener did not finish within 5 s of the sender");
    assert!(st.success(), "nc listener: {st}");
    let took = t.elapsed();
    let got = std::fs::read(&received).expect("received.bin");
    assert_eq!(got.len(), data.len(), "received {} bytes", got.len());
    assert_eq!(sha256(&got), sha256(&data), "data differs");
    eprintln!(
        "8 MiB alpha -> beta over a 1300-byte underlay intact in {took:?} ({:.1} Mbit/s)",
        (data.len() * 8) as f64 / took.as_secs_f64() / 1e6
    );
}
