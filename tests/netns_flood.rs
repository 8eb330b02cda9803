//! Unauthenticated load (needs root; creates its own network namespaces and
//! removes them): a flood of handshake inits from unknown names (refused
//! before the rate limiter), then of inits claiming a known node's name
//! with a wrong key, then a mix of garbage, inits and data to unknown
//! sessions, at 20 000 packets/s, at the UDP port of the node that serves a shared VIP, from an
//! attacker namespace on the same bridge (the flooder of `examples/flood.rs`,
//! run in a thread that entered that namespace). Meanwhile the client pings
//! the VIP every 10 ms. No session may drop, no failover may happen, the
//! probes keep flowing (longest gap < 1 s, loss < 5 %), and the flooded
//! daemon still answers `meshd dump nodes`.
//!
//! node_1 (192.0.2.1, overlay 10.1.1.101) serves 10.1.1.10 (weight 10),
//! node_2 (10.1.1.102) backs it up (weight 20), node_3 (10.1.1.3) is the
//! client; default timers (HelloInterval 100 ms, DeadInterval 300 ms).

#[allow(dead_code)]
#[path = "../examples/flood.rs"]
mod flood;

use clap::Parser;
use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use serde_json::Value;
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["node_1", "node_2", "node_3"];
const VIP: &str = "10.1.1.10";
const CLIENT: &str = "node_3";
/// The flood phases: kind and seconds.
const PHASES: [(&str, u64); 3] = [("init", 3), ("init-known", 5), ("mixed", 5)];
/// Seconds of the init-known phase.
const PHASE_S: u64 = PHASES[1].1;
/// Flood rate (packets per second): what the daemon must absorb even on a
/// loaded 2-core CI machine (scripts/bench-flood measures as fast as possible).
const RATE: u64 = 20_000;
/// Attacker source addresses: 48 x 50 inits/s per source is above the global limit.
const SOURCES: u32 = 48;

fn overlay_ip(node: &str) -> &'static str {
    match node {
        "node_1" => "10.1.1.101",
        "node_2" => "10.1.1.102",
        _ => "10.1.1.3",
    }
}

fn json(lab: &Lab, node: &str, args: &[&str]) -> Option<Value> {
    let out = lab.ctl(node, args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The sum of the "deaths" counters every node reports for its peers.
fn deaths(lab: &Lab) -> u64 {
    NODES
        .iter()
        .map(|n| {
            let v = json(lab, n, &["dump", "nodes", "--json"])
                .unwrap_or_else(|| panic!("{n} does not answer dump nodes"));
            v.as_array()
                .map(|a| a.iter().filter_map(|p| p["deaths"].as_u64()).sum::<u64>())
                .unwrap_or(0)
        })
        .sum()
}

/// Every numeric leaf of node_1's `dump drops --json`, summed: the packets it refused.
fn refused(lab: &Lab) -> u64 {
    fn sum(v: &Value) -> u64 {
        match v {
            Value::Object(m) => m.values().map(sum).sum(),
            Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        }
    }
    sum(&json(lab, "node_1", &["dump", "drops", "--json"]).expect("node_1 answers dump drops"))
}

/// One counter of node_1's `dump drops --json` (summed wherever it appears).
fn drop_counter(lab: &Lab, name: &str) -> u64 {
    fn find(v: &Value, name: &str) -> u64 {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| {
                    if k == name {
                        x.as_u64().unwrap_or(0)
                    } else {
                        find(x, name)
                    }
                })
                .sum(),
            _ => 0,
        }
    }
    find(
        &json(lab, "node_1", &["dump", "drops", "--json"]).expect("node_1 answers dump drops"),
        name,
    )
}

/// Most handshake inits a phase may put through signature verification:
/// meshd's global limit is 250/s with a burst of 250; twice that, for margin.
const MAX_VERIFIED_PER_PHASE: u64 = 2 * (250 + 250 * PHASE_S);

/// "VIP failover" lines in the client's log (one per lost holder and VIP).
fn failovers(lab: &Lab) -> usize {
    std::fs::read_to_string(lab.node(CLIENT).netdir.join("meshd.log"))
        .unwrap_or_default()
        .matches("VIP failover")
        .count()
}

/// The client sees both holders alive, eligible and out of hold-down.
fn vip_ready(lab: &Lab) -> bool {
    let Some(v) = json(lab, CLIENT, &["dump", "vips", "--json"]) else {
        return false;
    };
    let Some(entry) = v
        .as_array()
        .and_then(|a| a.iter().find(|x| x["vip"] == VIP))
    else {
        return false;
    };
    let holders = entry["holders"].as_array().cloned().unwrap_or_default();
    ["node_1", "node_2"].iter().all(|h| {
        holders.iter().any(|e| {
            e["name"].as_str() == Some(h)
                && e["alive"].as_bool() == Some(true)
                && e["eligible"].as_bool() == Some(true)
                && e["hold_down_ms"].as_u64() == Some(0)
        })
    })
}

/// Runs the flooder with `args` in namespace `ns` (on a thread that entered it).
fn flood_in(ns: &str, args: Vec<String>) -> std::thread::JoinHandle<u64> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd changes this thread's network namespace only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let mut argv = vec!["flood".to_string()];
        argv.extend(args);
        let parsed = flood::Args::try_parse_from(&argv).expect("flood arguments");
        let outcome = flood::run(&parsed).expect("flood runs");
        eprintln!(
            "flood {argv:?}: {} packets in {:.1} s",
            outcome.sent,
            outcome.elapsed.as_secs_f64()
        );
        outcome.sent
    })
}

/// The three nodes meshed (node_1 serves the VIP, node_2 backs it up, the
/// client sees both), and an attacker namespace on the bridge with SOURCES
/// addresses (192.0.2.100..) that the lab deletes on drop; returns it too.
fn flood_lab(tag: &str) -> (Lab, String) {
    let mut lab = Lab::new(tag, &NODES);
    lab.init_all();
    for n in NODES {
        lab.conf(n, "Interface = mesh0");
        let ip = overlay_ip(n);
        lab.script(
            n,
            "tinc-up",
            &format!("#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {ip}/24 dev \"$INTERFACE\"\n"),
        );
    }
    for (h, weight) in [("node_1", 10), ("node_2", 20)] {
        let healthy = lab.dir.path().join(format!("{h}.healthy"));
        std::fs::write(&healthy, "").expect("health file");
        netns::append(
            &lab.node(h).netdir.join("hosts").join(h),
            &format!(
                "VirtualIP = {VIP}/24#{weight}\n\
                 HealthCheck = {VIP} exec interval=100ms timeout=100ms rise=2 fall=1 test -f {}\n",
                healthy.display()
            ),
        );
        for (script, op) in [("vip-up", "add"), ("vip-down", "del")] {
            lab.script(
                h,
                script,
                &format!("#!/bin/sh\nip addr {op} \"$VIP/32\" dev \"$INTERFACE\"\n"),
            );
        }
    }
    for a in NODES {
        for b in NODES {
            if a != b {
                lab.give_host(a, b);
            }
        }
    }
    lab.conf("node_2", "ConnectTo = node_1");
    lab.conf("node_3", "ConnectTo = node_1");

    // The attacker: a namespace on the bridge with SOURCES addresses.
    let atk = lab.add_netns("a");
    let br = lab.bridge_ns.clone();
    netns::must(
        "ip",
        &[
            "-n", &br, "link", "add", "va", "type", "veth", "peer", "name", "eth0", "netns", &atk,
        ],
    );
    netns::must(
        "ip",
        &["-n", &br, "link", "set", "va", "master", "br0", "up"],
    );
    netns::must(
        "ip",
        &["-n", &atk, "addr", "add", "192.0.2.200/24", "dev", "eth0"],
    );
    for i in 0..SOURCES {
        let a = format!("192.0.2.{}/32", 100 + i);
        netns::must("ip", &["-n", &atk, "addr", "add", &a, "dev", "eth0"]);
    }
    netns::must("ip", &["-n", &atk, "link", "set", "eth0", "up"]);

    for n in NODES {
        lab.start(n);
    }
    lab.wait(Duration::from_secs(20), vip_ready)
        .expect("the client does not see both holders eligible within 20 s");
    let ready = lab.wait(Duration::from_secs(10), |l| {
        l.exec(CLIENT, &["ping", "-c", "1", "-W", "1", VIP])
            .status
            .success()
    });
    assert!(ready.is_some(), "the client cannot ping {VIP}");
    (lab, atk)
}

#[test]
fn flood_of_unauthenticated_packets_does_not_disturb_sessions_or_vip() {
    require_netns!();
    netns::need_tools(&["ping"]);
    let (mut lab, atk) = flood_lab("fl");

    let deaths_before = deaths(&lab);
    let failovers_before = failovers(&lab);
    let refused_before = refused(&lab);
    let ping_out = lab.dir.path().join("probe.ping");
    let client_ns = lab.node(CLIENT).ns.clone();
    let deadline = (PHASES.iter().map(|p| p.1).sum::<u64>() + 2).to_string();
    let ping = lab.spawn_in(
        &client_ns,
        &[
            "ping", "-n", "-D", "-i", "0.01", "-W", "1", "-w", &deadline, VIP,
        ],
        None,
        Some(&ping_out),
    );
    std::thread::sleep(Duration::from_millis(500));
    let common = |kind: &str, seconds: u64| -> Vec<String> {
        [
            "--to",
            "192.0.2.1:655",
            "--kind",
            kind,
            "--seconds",
            &seconds.to_string(),
            "--responder",
            "node_1",
            "--impersonate",
            "node_2",
            "--from",
            "192.0.2.100",
            "--sources",
            &SOURCES.to_string(),
            "--rate",
            &RATE.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut sent = 0;
    let mut answered_during_flood = 0;
    let mut verified_in_init_phase = 0;
    let mut limited_in_unknown_phase = 0;
    for (kind, seconds) in PHASES {
        let t0 = Instant::now();
        let verified_before = drop_counter(&lab, "bad_handshake");
        let limited_before = drop_counter(&lab, "rate_limited");
        let flooder = flood_in(&atk, common(kind, seconds));
        // The flooded daemon must keep answering its control socket.
        while t0.elapsed() < Duration::from_secs(seconds - 1) {
            std::thread::sleep(Duration::from_millis(1500));
            if json(&lab, "node_1", &["dump", "nodes", "--json"]).is_some() {
                answered_during_flood += 1;
            }
        }
        sent += flooder.join().expect("flood thread");
        match kind {
            "init-known" => {
                verified_in_init_phase = drop_counter(&lab, "bad_handshake") - verified_before;
            }
            "init" => {
                limited_in_unknown_phase = drop_counter(&lab, "rate_limited") - limited_before;
            }
            _ => {}
        }
    }
    let status = lab.wait_child(ping, Duration::from_secs(10));
    assert!(status.is_some(), "ping did not end");

    let refused_during = refused(&lab) - refused_before;
    let deaths_during = deaths(&lab) - deaths_before;
    let failovers_during = failovers(&lab) - failovers_before;
    let text = std::fs::read_to_string(&ping_out).unwrap_or_default();
    let times: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let gap_ms = times
        .windows(2)
        .map(|w| (w[1] - w[0]) * 1000.0)
        .fold(0.0, f64::max);
    let (tx, rx) = text
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            let tx: u64 = w.next()?.parse().ok()?;
            let rest: Vec<&str> = w.collect();
            let rx: u64 = rest.get(2)?.parse().ok()?;
            l.contains("packets transmitted").then_some((tx, rx))
        })
        .unwrap_or_else(|| panic!("no ping summary:\n{text}"));
    let loss = 100.0 * (tx - rx) as f64 / tx.max(1) as f64;
    eprintln!(
        "flooded node_1 with {sent} packets, it refused {refused_during}; probes {rx}/{tx} \
         answered ({loss:.1} % lost), longest gap {gap_ms:.0} ms; deaths {deaths_during}, \
         failovers {failovers_during}; dump nodes answered {answered_during_flood} times during the flood; \
         {verified_in_init_phase} forged inits verified in {PHASE_S} s"
    );
    assert!(
        refused_during > 10_000,
        "the flood did not reach node_1 ({refused_during} packets refused of {sent} sent)"
    );
    assert_eq!(
        limited_in_unknown_phase, 0,
        "inits from unknown names spent the handshake rate limiter's tokens \
         (they must be refused by the cheap checks before it)"
    );
    assert!(
        verified_in_init_phase <= MAX_VERIFIED_PER_PHASE,
        "{verified_in_init_phase} forged inits reached signature verification in {PHASE_S} s \
         (the handshake rate limit allows about {})",
        MAX_VERIFIED_PER_PHASE / 2
    );
    assert_eq!(deaths_during, 0, "a session died during the flood");
    assert_eq!(
        failovers_during, 0,
        "the client failed over during the flood"
    );
    assert!(loss < 5.0, "{loss:.1} % of the probes to the VIP were lost");
    assert!(
        gap_ms < 1000.0,
        "the probes to the VIP stopped for {gap_ms:.0} ms"
    );
    assert!(
        answered_during_flood > 0,
        "node_1 never answered dump nodes during the flood"
    );
    assert!(
        json(&lab, "node_1", &["dump", "nodes", "--json"]).is_some(),
        "node_1 does not answer dump nodes after the flood"
    );
}

/// Connections the join flooder made, and how many got an inviter's answer
/// (each answer cost node_1 an X25519 exchange and a signature).
struct JoinFlood {
    connections: u64,
    answered: u64,
}

/// From namespace `ns`: for `seconds`, TCP connections to `to` from SOURCES
/// addresses in turn, each sending a well-formed joiner hello and waiting
/// briefly for the answer.
fn join_flood_in(
    ns: &str,
    to: std::net::SocketAddr,
    seconds: u64,
) -> std::thread::JoinHandle<JoinFlood> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd changes this thread's network namespace only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let mut hello = Vec::new();
        let body_len = meshd_core::join::JOINER_HELLO_LEN as u16;
        hello.extend_from_slice(&body_len.to_be_bytes());
        hello.extend_from_slice(meshd_core::join::MAGIC);
        hello.push(meshd_core::join::VERSION);
        hello.extend_from_slice(&[0x42; 32]);
        let t0 = Instant::now();
        let mut out = JoinFlood {
            connections: 0,
            answered: 0,
        };
        let mut i = 0u32;
        while t0.elapsed() < Duration::from_secs(seconds) {
            let src: std::net::SocketAddr = format!("192.0.2.{}:0", 100 + i % SOURCES)
                .parse()
                .expect("source");
            i += 1;
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            if sock.bind(&src.into()).is_err() {
                continue;
            }
            if sock
                .connect_timeout(&to.into(), Duration::from_millis(200))
                .is_err()
            {
                continue;
            }
            out.connections += 1;
            let mut s: std::net::TcpStream = sock.into();
            let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = s.write_all(&hello);
            // A length, then the inviter's hello (a key exchange was done) or
            // a refusal (the rate limit said no, for a few bytes).
            let mut len = [0u8; 2];
            let mut first = [0u8; 1];
            if s.read_exact(&mut len).is_ok()
                && s.read_exact(&mut first).is_ok()
                && first[0] != meshd_core::join::REFUSAL
            {
                out.answered += 1;
            }
        }
        out
    })
}

#[test]
fn a_join_port_flood_is_rate_limited_and_costs_no_probe() {
    require_netns!();
    netns::need_tools(&["ping"]);
    let (mut lab, atk) = flood_lab("jf");
    // An outstanding invitation: every well-formed hello would cost node_1 the
    // inviter's key exchange and signature.
    let out = lab.ctl("node_1", &["invite", "newcomer"]);
    assert!(
        out.status.success(),
        "invite: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seconds = 6;
    let ping_out = lab.dir.path().join("probe.ping");
    let client_ns = lab.node(CLIENT).ns.clone();
    let deadline = (seconds + 2).to_string();
    let ping = lab.spawn_in(
        &client_ns,
        &[
            "ping", "-n", "-D", "-i", "0.01", "-W", "1", "-w", &deadline, VIP,
        ],
        None,
        Some(&ping_out),
    );
    std::thread::sleep(Duration::from_millis(500));
    let pid = lab.pid("node_1").expect("node_1's pid");
    let cpu0 = netns::cpu_time(pid);
    let t0 = Instant::now();
    let flood = join_flood_in(&atk, "192.0.2.1:655".parse().unwrap(), seconds)
        .join()
        .expect("join flood thread");
    let wall = t0.elapsed();
    let cpu = netns::cpu_time(pid) - cpu0;
    assert!(
        lab.wait_child(ping, Duration::from_secs(15)).is_some(),
        "ping did not end"
    );
    let text = std::fs::read_to_string(&ping_out).unwrap_or_default();
    let (tx, rx) = text
        .lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            l.contains("packets transmitted")
                .then(|| {
                    Some((
                        w.first()?.parse::<u64>().ok()?,
                        w.get(3)?.parse::<u64>().ok()?,
                    ))
                })
                .flatten()
        })
        .unwrap_or_else(|| panic!("no ping summary:\n{text}"));
    let limits = json(&lab, "node_1", &["dump", "limits", "--json"]).expect("dump limits");
    let refused_by_rate = limits
        .as_array()
        .and_then(|a| a.iter().find(|l| l["name"] == "join_rate"))
        .and_then(|l| l["refused"].as_u64())
        .expect("join_rate in dump limits");
    eprintln!(
        "join flood: {} connections in {:.1} s ({:.0}/s), {} answered with a key exchange, \
         {refused_by_rate} refused by the rate limit; node_1 used {:.0} ms CPU ({:.1} % of a core); \
         probes {rx}/{tx}",
        flood.connections,
        wall.as_secs_f64(),
        flood.connections as f64 / wall.as_secs_f64(),
        flood.answered,
        cpu.as_secs_f64() * 1000.0,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
    assert!(
        flood.connections >= 500,
        "the flood made only {} connections",
        flood.connections
    );
    // 50/s for everyone with a burst of 50; a margin for the timing of the first second.
    let most = 50 * (seconds + 2);
    assert!(
        flood.answered <= most,
        "{} hellos answered (at most {most})",
        flood.answered
    );
    assert!(refused_by_rate > 0);
    assert_eq!(tx, rx, "probes lost during the join flood:\n{text}");
    assert!(json(&lab, "node_1", &["dump", "nodes", "--json"]).is_some());
}
