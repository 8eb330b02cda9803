//! End-to-end network faults (needs root; SKIPPED otherwise): the five-node
//! VIP network in namespaces with a bad underlay made with netfilter (this
//! project's kernel has no sch_netem): loss with the statistic match, duplicates
//! with TEE, reordering with NFQUEUE and a small delayer. Default liveness
//! timers (HelloInterval 100 ms, DeadInterval 300 ms), KeyExpire 5 s, so that
//! every pair rekeys several times under the fault.
//!
//! Phase 1, 30 s at 1 % loss at both ends of every path + 25 % of datagrams
//! overtaking the rest (10 ms) + 5 % duplicates: no false failover, no peer
//! death, every directed pair still has its session, every pair rekeyed, the
//! client's probes of the VIP flow. Phase 2, 15 s at 5 % loss: sessions
//! survive, rekeys still complete, the deaths stay few (see `MAX_DEATHS_5`).
//!
//! The expectation. A node declares a peer dead after DeadInterval (300 ms)
//! without an authenticated packet from it. In that window the peer sends
//! heartbeats at +100, +200 (+300) ms and the node sends two reply-requested
//! probes (+150, +225 ms). With the fault at both ends a one-way datagram is
//! lost with q = 1 - (1 - p)^2 and a probe's round trip with r = 1 - (1 - q)^2;
//! a death needs 2-3 heartbeats and both round trips lost:
//! P ~ q^2..q^3 x r^2 per window, one window per heartbeat received, 10/s for
//! each of the 20 directed pairs.
//! - p = 1 %: q = 0.0199, r = 0.039: P = 1.2e-8..6.1e-7; 6000 windows in 30 s:
//!   expected deaths 7e-5..4e-3. Any death is a bug (or a starved daemon).
//! - p = 5 %: q = 0.0975, r = 0.185: P = 3.2e-5..3.3e-4; 3000 windows in 15 s:
//!   expected deaths 0.1..1 (measured: 2-4 on a loaded 2-core VM, where late
//!   timers make the third heartbeat miss the window: q^2 r^2), so the test
//!   bounds them (a death storm would be tens) instead of asking for none.
//!
//! `scripts/bench-faults` measures the same over minutes per profile.

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NODES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
const HOLDERS: [&str; 3] = ["node_2", "node_3", "node_4"];
const CLIENT: &str = "node_5";
const VIP: &str = "10.1.1.10";
const KEY_EXPIRE_S: u64 = 5;
const PHASE1_S: u64 = 30;
const PHASE2_S: u64 = 15;
/// Deaths allowed in phase 2 (expected 0.1..1, measured 2-4; a storm is tens).
const MAX_DEATHS_5: u64 = 15;

fn overlay_ip(node: &str) -> &'static str {
    match node {
        "node_1" => "10.1.1.1",
        "node_2" => "10.1.1.102",
        "node_3" => "10.1.1.103",
        "node_4" => "10.1.1.104",
        _ => "10.1.1.2",
    }
}

/// The reference network (hub node_1, three VIP holders, client node_5),
/// KeyExpire 5 s, metrics in every namespace.
fn fault_lab() -> Lab {
    let lab = Lab::new("ft", &NODES);
    lab.init_all();
    for n in NODES {
        lab.conf(n, "Interface = mesh0");
        lab.conf(n, &format!("KeyExpire = {KEY_EXPIRE_S}"));
        lab.conf(n, "MetricsAddress = 127.0.0.1:9655");
        let ip = overlay_ip(n);
        lab.script(
            n,
            "tinc-up",
            &format!("#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {ip}/24 dev \"$INTERFACE\"\n"),
        );
    }
    for h in HOLDERS {
        let host = lab.node(h).netdir.join("hosts").join(h);
        netns::append(&host, &format!("VirtualIP = {VIP}/24\n"));
        for (script, op) in [("vip-up", "add"), ("vip-down", "del")] {
            lab.script(
                h,
                script,
                &format!("#!/bin/sh\nip addr {op} \"$VIP/32\" dev \"$INTERFACE\"\n"),
            );
        }
    }
    lab.hub("node_1");
    lab
}

/// Per directed pair (node, peer): handshakes, deaths, reachable.
type Counters = BTreeMap<(String, String), (u64, u64, bool)>;

fn counters(lab: &Lab) -> Counters {
    let mut out = Counters::new();
    for n in NODES {
        let o = lab.ctl(n, &["dump", "nodes", "--json"]);
        assert!(
            o.status.success(),
            "{n} dump nodes: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).expect("dump nodes --json");
        for p in v.as_array().expect("an array") {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            if name == n {
                continue;
            }
            out.insert(
                (n.to_string(), name),
                (
                    p["handshakes"].as_u64().unwrap_or(0),
                    p["deaths"].as_u64().unwrap_or(0),
                    p["reachable"].as_bool() == Some(true),
                ),
            );
        }
    }
    out
}

/// meshd_vip_failovers_total summed over the five nodes.
fn failovers(lab: &Lab) -> f64 {
    NODES
        .iter()
        .map(|n| {
            let out = lab.exec(
                n,
                &[
                    "python3",
                    "-c",
                    "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9655/metrics',timeout=5).read().decode())",
                ],
            );
            assert!(out.status.success(), "scrape {n}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("meshd_vip_failovers_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum()
}

fn alive_pairs(c: &Counters) -> usize {
    c.values().filter(|v| v.2).count()
}

fn deaths(before: &Counters, after: &Counters) -> u64 {
    after.values().map(|v| v.1).sum::<u64>() - before.values().map(|v| v.1).sum::<u64>()
}

/// Handshakes completed per directed pair during a phase, fewest first.
fn new_handshakes(before: &Counters, after: &Counters) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = after
        .iter()
        .map(|(k, a)| {
            let b = before.get(k).map_or(0, |b| b.0);
            (a.0 - b, format!("{}->{}", k.0, k.1))
        })
        .collect();
    v.sort();
    v
}

fn iptables(lab: &Lab, node: &str, args: &[&str]) {
    let mut a = vec!["iptables"];
    a.extend_from_slice(args);
    let out = lab.exec(node, &a);
    assert!(
        out.status.success(),
        "{node}: iptables {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Loss `p` on every node's underlay UDP, at both ends of every path.
fn loss(lab: &Lab, p: &str) {
    for n in NODES {
        for (chain, dir) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
            let rule = [
                "-A",
                chain,
                dir,
                "eth0",
                "-p",
                "udp",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                p,
                "-j",
                "DROP",
            ];
            iptables(lab, n, &rule);
        }
    }
}

/// Duplicates: a share `p` of each node's outgoing underlay UDP is sent twice.
fn duplicate(lab: &Lab, p: &str) {
    for (i, n) in NODES.iter().enumerate() {
        for (j, _) in NODES.iter().enumerate().filter(|(j, _)| *j != i) {
            let dst = format!("192.0.2.{}", j + 1);
            let rule = [
                "-t",
                "mangle",
                "-A",
                "POSTROUTING",
                "-o",
                "eth0",
                "-p",
                "udp",
                "-d",
                &dst,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                p,
                "-j",
                "TEE",
                "--gateway",
                &dst,
            ];
            iptables(lab, n, &rule);
        }
    }
}

/// Reordering: 75 % of the underlay UDP waits 10 ms at each end, 25 % passes.
fn reorder(lab: &mut Lab) -> Vec<u32> {
    let script = lab.dir.path().join("delayer.py");
    std::fs::write(&script, netns::DELAYER).expect("write the delayer");
    let script = script.display().to_string();
    let mut pids = Vec::new();
    for n in NODES {
        let ns = lab.node(n).ns.clone();
        let log = lab.dir.path().join(format!("delayer-{n}.log"));
        pids.push(lab.spawn_in(
            &ns,
            &["python3", &script, "10", "0", "0.25"],
            None,
            Some(&log),
        ));
        for (chain, dir) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
            let rule = [
                "-A",
                chain,
                dir,
                "eth0",
                "-p",
                "udp",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
                "--queue-bypass",
            ];
            iptables(lab, n, &rule);
        }
    }
    pids
}

fn clear_faults(lab: &mut Lab, delayers: &[u32]) {
    for n in NODES {
        iptables(lab, n, &["-F"]);
        iptables(lab, n, &["-t", "mangle", "-F"]);
    }
    for pid in delayers {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        lab.wait_child(*pid, Duration::from_secs(5));
    }
}

struct Probe {
    sent: u64,
    answered: u64,
    longest_gap_ms: f64,
}

/// `ping -D -i 0.01 -w SECS` from the client to the VIP; waits for its end.
fn probe(lab: &mut Lab, name: &str, secs: u64) -> Probe {
    let ns = lab.node(CLIENT).ns.clone();
    let out = lab.dir.path().join(format!("{name}.ping"));
    let w = secs.to_string();
    let pid = lab.spawn_in(
        &ns,
        &["ping", "-n", "-D", "-i", "0.01", "-W", "1", "-w", &w, VIP],
        None,
        Some(&out),
    );
    lab.wait_child(pid, Duration::from_secs(secs + 10))
        .unwrap_or_else(|| panic!("ping -w {secs} did not end"));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    let mut times = Vec::new();
    let mut sent = 0;
    for line in text.lines() {
        if line.contains(" bytes from ") && !line.contains("DUP!") {
            let seq = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(seq) = seq {
                if seen.insert(seq) {
                    let ts = line
                        .strip_prefix('[')
                        .and_then(|l| l.split(']').next())
                        .and_then(|t| t.parse::<f64>().ok());
                    times.extend(ts);
                }
            }
        }
        if line.contains("packets transmitted") {
            sent = line
                .split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or(0);
        }
    }
    times.sort_by(f64::total_cmp);
    let longest_gap_ms = times
        .windows(2)
        .map(|w| (w[1] - w[0]) * 1000.0)
        .fold(0.0, f64::max);
    Probe {
        sent,
        answered: seen.len() as u64,
        longest_gap_ms,
    }
}

fn daemon_logs(lab: &Lab, pattern: &str) -> String {
    NODES
        .iter()
        .flat_map(|n| {
            std::fs::read_to_string(lab.node(n).netdir.join("meshd.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(pattern))
                .map(|l| format!("{n}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn wait_all_alive(lab: &Lab, limit: Duration) -> bool {
    lab.wait(limit, |l| alive_pairs(&counters(l)) == 20)
        .is_some()
}

#[test]
fn lossy_reordering_duplicating_underlay() {
    require_netns!();
    netns::need_tools(&["ping", "python3", "iptables"]);
    let mut lab = fault_lab();
    for n in NODES {
        lab.start(n);
    }
    assert!(
        wait_all_alive(&lab, Duration::from_secs(20)),
        "no full mesh within 20 s"
    );
    assert!(
        lab.wait(Duration::from_secs(10), |l| l
            .exec(CLIENT, &["ping", "-c", "1", "-W", "1", VIP])
            .status
            .success())
            .is_some(),
        "the client does not reach the VIP"
    );
    // Every pair has its session: a first rekey must not be the initial handshake.
    std::thread::sleep(Duration::from_secs(1));

    // Phase 1: 1 % loss at both ends, reordering, 5 % duplicates.
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let c0 = counters(&lab);
    let f0 = failovers(&lab);
    loss(&lab, "0.01");
    duplicate(&lab, "0.05");
    let delayers = reorder(&mut lab);
    let t0 = Instant::now();
    let p1 = probe(&mut lab, "phase1", PHASE1_S);
    let c1 = counters(&lab);
    let f1 = failovers(&lab);
    let secs = t0.elapsed().as_secs_f64();
    let hs1 = new_handshakes(&c0, &c1);
    let rekeys1: u64 = hs1.iter().map(|h| h.0).sum::<u64>() / 2;
    eprintln!(
        "phase 1 ({secs:.0} s, 1 % loss x2 + reorder 25 % + dup 5 %; load {}): failovers {}, deaths {}, \
         rekeys {rekeys1} (expected ~{}), pairs alive {}/20, probes {}/{} answered, longest gap {:.0} ms; \
         fewest handshakes {:?}",
        load0.trim(),
        f1 - f0,
        deaths(&c0, &c1),
        10 * PHASE1_S / KEY_EXPIRE_S,
        alive_pairs(&c1),
        p1.answered,
        p1.sent,
        p1.longest_gap_ms,
        hs1.first()
    );
    let downs = daemon_logs(&lab, "peer is down");
    let stalls = daemon_logs(&lab, "event loop stalled");
    assert_eq!(
        deaths(&c0, &c1),
        0,
        "a peer was declared dead at 1 % loss (expected < 0.004 in 30 s; stalls logged: [{stalls}]):\n{downs}"
    );
    assert_eq!(f1 - f0, 0.0, "a false VIP failover at 1 % loss:\n{downs}");
    assert_eq!(alive_pairs(&c1), 20, "a pair lost its session: {c1:?}");
    // Every pair rekeyed about every 5 s: 6 handshakes expected per directed pair.
    assert!(
        hs1.first().is_some_and(|h| h.0 >= 2),
        "a pair hardly rekeyed in {PHASE1_S} s (KeyExpire {KEY_EXPIRE_S} s): {hs1:?}"
    );
    assert!(
        rekeys1 >= 10 * PHASE1_S / KEY_EXPIRE_S / 2,
        "{rekeys1} rekeys, ~{} expected",
        10 * PHASE1_S / KEY_EXPIRE_S
    );
    // ~4 % of round trips lost (two drop points each way), duplicates ignored.
    assert!(p1.sent >= 500, "the probe sent only {}", p1.sent);
    assert!(
        p1.answered * 100 >= p1.sent * 80,
        "probes: {}/{} answered",
        p1.answered,
        p1.sent
    );
    assert!(
        p1.longest_gap_ms < 1000.0,
        "the VIP did not answer for {:.0} ms",
        p1.longest_gap_ms
    );
    clear_faults(&mut lab, &delayers);

    // Phase 2: 5 % loss at both ends.
    let c0 = counters(&lab);
    loss(&lab, "0.05");
    let p2 = probe(&mut lab, "phase2", PHASE2_S);
    let all_alive = wait_all_alive(&lab, Duration::from_secs(5));
    let c2 = counters(&lab);
    let hs2 = new_handshakes(&c0, &c2);
    let rekeys2: u64 = hs2.iter().map(|h| h.0).sum::<u64>() / 2;
    let d2 = deaths(&c0, &c2);
    eprintln!(
        "phase 2 ({PHASE2_S} s, 5 % loss x2): deaths {d2} (expected 0.1..1), rekeys {rekeys2} (expected ~{}), \
         pairs alive {}/20, probes {}/{} answered, longest gap {:.0} ms",
        10 * PHASE2_S / KEY_EXPIRE_S,
        alive_pairs(&c2),
        p2.answered,
        p2.sent,
        p2.longest_gap_ms
    );
    assert!(
        all_alive,
        "sessions did not survive 5 % loss: {c2:?}\n{}",
        daemon_logs(&lab, "peer is down")
    );
    assert!(
        hs2.first().is_some_and(|h| h.0 >= 1),
        "a pair did not rekey in {PHASE2_S} s at 5 % loss (KeyExpire {KEY_EXPIRE_S} s): {hs2:?}"
    );
    assert!(
        d2 <= MAX_DEATHS_5,
        "{d2} deaths in {PHASE2_S} s at 5 % loss (expected 0.1..1):\n{}",
        daemon_logs(&lab, "peer is down")
    );
    // ~18.5 % of round trips lost.
    assert!(
        p2.answered * 100 >= p2.sent * 60,
        "probes: {}/{} answered",
        p2.answered,
        p2.sent
    );
    clear_faults(&mut lab, &[]);
}
