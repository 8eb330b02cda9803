//! End-to-end shared-VIP failover (needs root; creates its own network
//! namespaces and removes them): the reference scenario with real daemons and
//! real TAPs. node_1 is the hub (10.1.1.1), node_2..node_4 serve the VIP
//! 10.1.1.10 (overlay 10.1.1.102..104, `vip-up`/`vip-down` put the /32 on
//! mesh0), node_5 is the client (10.1.1.2); everyone `ConnectTo = node_1`.
//!
//! The client pings the VIP every 10 ms; a fault is applied to the holder that
//! serves the ping's flow, and the outage is read from the ping's sequence
//! numbers: (largest gap between answered sequence numbers - 1) × 10 ms, and
//! from ping -D's timestamps (ping -i 0.01 really sends every ~16 ms here, so
//! the wall-clock figure is the larger and truer one); both must stay within
//! 500 ms on a hard fault, and a graceful stop must lose nothing.
//!
//! Each test builds its own lab (unique tag), so they may run in parallel.

mod vip_probe;

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::{Duration, Instant};
use vip_probe::ref_lab::*;
use vip_probe::{daemon_alive, finish_probe};

#[test]
fn sigterm_graceful_stop_loses_nothing() {
    require_netns!();
    let t0 = Instant::now();
    let (mut lab, victim, r, _) = failover("vt", Fault::Term);
    assert!(!daemon_alive(&lab, &victim), "{victim}'s daemon still runs");
    assert!(
        log(&lab, &victim).contains(&format!("vip-down {victim} mesh0 {VIP}")),
        "no vip-down on {victim}:\n{}",
        log(&lab, &victim)
    );
    assert_eq!(
        r.lost,
        0,
        "SIGTERM lost {} probes ({r:?}); node_5's log:\n{}\n{victim}'s log:\n{}",
        r.lost,
        vip_log_excerpt(&lab, CLIENT, &victim),
        vip_log_excerpt(&lab, &victim, &victim)
    );
    // The same with `meshd stop` on the holder that serves the flow now.
    let probe = start_probe(&mut lab, "stop", 300);
    std::thread::sleep(Duration::from_millis(1000));
    let second = serving_holder(&lab);
    let t = Instant::now();
    let out = lab.ctl(&second, &["stop"]);
    assert!(
        out.status.success(),
        "meshd stop {second}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = t.elapsed();
    let r2 = finish_probe(&mut lab, &probe);
    let to = traffic_to(&lab, CLIENT);
    eprintln!(
        "meshd stop of the serving holder {second} (returned after {took:?}): outage {} ms by seq \
         ({:.0} ms wall), lost {} ({} of {} answered), {} duplicates; traffic now to {to:?}",
        r2.outage_ms, r2.outage_wall_ms, r2.lost, r2.received, r2.sent, r2.duplicates
    );
    assert!(!daemon_alive(&lab, &second), "{second}'s daemon still runs");
    assert_eq!(
        r2.lost,
        0,
        "meshd stop lost {} probes ({r2:?}); node_5's log:\n{}",
        r2.lost,
        vip_log_excerpt(&lab, CLIENT, &second)
    );
    let last: Vec<&str> = HOLDERS
        .iter()
        .copied()
        .filter(|h| *h != victim && *h != second)
        .collect();
    assert_eq!(to, last, "node_5's `Traffic to:` after two stops");
    assert!(r2.tail_answered(100), "no answers after the stop: {r2:?}");
    eprintln!("sigterm_graceful_stop_loses_nothing: {:?}", t0.elapsed());
}

#[test]
fn sigkill() {
    require_netns!();
    let t0 = Instant::now();
    let (mut lab, victim, r, _) = failover("vk", Fault::Kill);
    hard_fault_bound(Fault::Kill, &victim, &lab, &r);
    // The client's metrics tell the same story: the holder is down, one failover of the
    // VIP, detected after about DeadInterval of silence.
    netns::need_tools(&["python3"]);
    let m = scrape_metrics(&lab);
    let labels = format!("{{node=\"{CLIENT}\",peer=\"{victim}\"}}");
    assert_eq!(
        metric(&m, &format!("meshd_peer_up{labels}")),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, &format!("meshd_peer_deaths_total{labels}")),
        Some(1.0),
        "{m}"
    );
    let vip_labels = format!("{{node=\"{CLIENT}\",vip=\"{VIP}\"}}");
    assert_eq!(
        metric(&m, &format!("meshd_vip_failovers_total{vip_labels}")),
        Some(1.0),
        "{m}"
    );
    let took =
        metric(&m, &format!("meshd_vip_last_failover_seconds{vip_labels}")).expect("last failover");
    assert!((0.1..2.0).contains(&took), "last failover {took} s:\n{m}");
    assert_eq!(
        metric(&m, &format!("meshd_vip_holders_alive{vip_labels}")),
        Some(2.0),
        "{m}"
    );
    eprintln!("sigkill: node_5's metrics: failover after {took:.3} s of silence");
    let v = vip_status(&lab, CLIENT).expect("dump vips");
    let e = holder(&v, &victim);
    assert!(
        e.is_none() || flag(e, "alive") == Some(false),
        "node_5 still thinks the killed {victim} is alive:\n{v:#}"
    );
    // The killed holder is restarted (a new TAP with a new MAC): once out of
    // hold-down it serves again, and a new probe is answered throughout.
    let restarted = Instant::now();
    lab.start(&victim);
    let alive_again = lab.wait(Duration::from_secs(10), |lab| {
        vip_status(lab, CLIENT).is_some_and(|v| flag(holder(&v, &victim), "alive") == Some(true))
    });
    eprintln!("sigkill: restarted {victim} alive on node_5 {alive_again:?} after its start returned ({:?} after the start began)", restarted.elapsed());
    let back = lab.wait(Duration::from_secs(10), |lab| {
        vip_status(lab, CLIENT).is_some_and(|v| {
            let e = holder(&v, &victim);
            flag(e, "eligible") == Some(true)
                && e.and_then(|e| e["hold_down_ms"].as_u64()) == Some(0)
        })
    });
    let probe = start_probe(&mut lab, "restarted", 100);
    let r2 = finish_probe(&mut lab, &probe);
    let v = vip_status(&lab, CLIENT).expect("dump vips");
    eprintln!(
        "sigkill: restarted {victim} eligible on node_5 after {back:?}; a new probe: \
         lost {} of {}, outage {} ms by seq; flows now:{}",
        r2.lost,
        r2.sent,
        r2.outage_ms,
        HOLDERS
            .iter()
            .map(|h| format!(
                " {h}={}",
                holder(&v, h).and_then(|e| e["flows"].as_u64()).unwrap_or(0)
            ))
            .collect::<String>()
    );
    assert!(
        back.is_some(),
        "the restarted {victim} never became eligible:\n{v:#}"
    );
    assert_eq!(
        r2.lost, 0,
        "a probe after {victim}'s return lost answers: {r2:?}"
    );
    eprintln!("sigkill: {:?}", t0.elapsed());
}

#[test]
fn underlay_link_cut() {
    require_netns!();
    let t0 = Instant::now();
    let (lab, victim, r, _) = failover("vl", Fault::LinkCut);
    hard_fault_bound(Fault::LinkCut, &victim, &lab, &r);
    assert!(daemon_alive(&lab, &victim), "{victim}'s daemon died");
    let v = vip_status(&lab, CLIENT).expect("dump vips");
    assert_eq!(
        flag(holder(&v, &victim), "alive"),
        Some(false),
        "node_5 still thinks the cut-off {victim} is alive:\n{v:#}"
    );
    eprintln!("underlay_link_cut: {:?}", t0.elapsed());
}

#[test]
fn freeze() {
    require_netns!();
    let t0 = Instant::now();
    let (mut lab, victim, r, mut thaw) = failover("vf", Fault::Freeze);
    hard_fault_bound(Fault::Freeze, &victim, &lab, &r);
    // The frozen holder returns while the client keeps probing: its
    // established flow stays where it is (no second outage).
    let probe = start_probe(&mut lab, "thaw", 300);
    std::thread::sleep(Duration::from_millis(500));
    thaw.now();
    let back = lab.wait(Duration::from_secs(3), |lab| {
        vip_status(lab, CLIENT).is_some_and(|v| flag(holder(&v, &victim), "alive") == Some(true))
    });
    let r2 = finish_probe(&mut lab, &probe);
    eprintln!(
        "freeze: {victim} alive again on node_5 {back:?} after SIGCONT; probe across the return: \
         outage {} ms by seq ({:.0} ms wall), lost {} of {}, {} duplicates",
        r2.outage_ms, r2.outage_wall_ms, r2.lost, r2.sent, r2.duplicates
    );
    assert!(
        back.is_some(),
        "node_5 never saw {victim} alive after SIGCONT"
    );
    assert!(
        daemon_alive(&lab, &victim),
        "{victim}'s daemon died after SIGCONT"
    );
    assert_eq!(
        r2.lost, 0,
        "the returning holder disturbed the established flow: {r2:?}"
    );
    eprintln!("freeze: {:?}", t0.elapsed());
}

#[test]
fn health_check_failing() {
    require_netns!();
    let t0 = Instant::now();
    let (mut lab, victim, r, _) = failover("vh", Fault::HealthFail);
    hard_fault_bound(Fault::HealthFail, &victim, &lab, &r);
    // The node stays up: its daemon runs, the client sees it alive but not offering.
    assert!(daemon_alive(&lab, &victim), "{victim}'s daemon died");
    let v = vip_status(&lab, CLIENT).expect("dump vips");
    let e = holder(&v, &victim);
    assert_eq!(
        (flag(e, "alive"), flag(e, "offered"), flag(e, "eligible")),
        (Some(true), Some(false), Some(false)),
        "node_5's view of {victim} with a failing check:\n{v:#}"
    );
    let own = ctl_text(&lab, &victim, &["info", VIP]);
    assert!(
        own.contains("Served here:  yes (health check failing: withdrawn)"),
        "{victim}'s own info:\n{own}"
    );
    lab.wait(Duration::from_secs(2), |lab| {
        log(lab, &victim).contains(&format!("vip-down {victim} mesh0 {VIP}"))
            && !has_vip_address(lab, &victim)
    })
    .unwrap_or_else(|| panic!("no vip-down on {victim}:\n{}", log(&lab, &victim)));
    // The check passes again: the holder comes back (after its hold-down),
    // and the established flow does not move back.
    let probe = start_probe(&mut lab, "healthy-again", 300);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(health_file(&lab, &victim), "").expect("health file");
    let back = lab.wait(Duration::from_secs(4), |lab| {
        vip_status(lab, CLIENT).is_some_and(|v| {
            let e = holder(&v, &victim);
            flag(e, "eligible") == Some(true)
        })
    });
    let r2 = finish_probe(&mut lab, &probe);
    eprintln!(
        "health_check_failing: {victim} eligible again {back:?} after the file returned; \
         probe across the return: outage {} ms by seq ({:.0} ms wall), lost {} of {}",
        r2.outage_ms, r2.outage_wall_ms, r2.lost, r2.sent
    );
    assert!(back.is_some(), "{victim} never offered the VIP again");
    assert!(has_vip_address(&lab, &victim), "vip-up did not run again");
    assert_eq!(
        r2.lost, 0,
        "the returning holder disturbed the flow: {r2:?}"
    );
    eprintln!("health_check_failing: {:?}", t0.elapsed());
}

/// `ip neigh show 10.1.1.10` in node_5's namespace, trimmed.
fn neigh(lab: &Lab) -> String {
    let out = lab.exec(CLIENT, &["ip", "neigh", "show", VIP]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn tap_mac(lab: &Lab, node: &str) -> String {
    lab.must_in(&lab.node(node).ns, &["cat", "/sys/class/net/mesh0/address"])
        .trim()
        .to_string()
}

#[test]
fn client_neighbour_entry_is_always_the_virtual_mac() {
    require_netns!();
    let t0 = Instant::now();
    netns::need_tools(&["ping"]);
    let mut lab = vip_lab("vn", false);
    start_all(&mut lab);
    let holder_macs: Vec<(String, String)> = HOLDERS
        .iter()
        .map(|h| (h.to_string(), tap_mac(&lab, h)))
        .collect();
    eprintln!("holders' TAP MACs: {holder_macs:?}");
    let mut samples: Vec<(&str, String)> = vec![("before", neigh(&lab))];
    let probe = start_probe(&mut lab, "neigh", 300);
    for _ in 0..20 {
        samples.push(("probing", neigh(&lab)));
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = serving_holder(&lab);
    lab.kill(&victim, Signal::SIGKILL);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1200) {
        samples.push(("failover", neigh(&lab)));
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = finish_probe(&mut lab, &probe);
    samples.push(("after", neigh(&lab)));
    // Force a fresh resolution now that one holder is gone: the answer is the virtual MAC again.
    lab.exec(CLIENT, &["ip", "neigh", "flush", "to", VIP]);
    let ok = lab.exec(CLIENT, &["ping", "-c", "3", "-i", "0.2", "-W", "1", VIP]);
    samples.push(("re-resolved", neigh(&lab)));
    eprintln!(
        "neighbour samples: {} ({} during the failover); probe: outage {} ms by seq ({:.0} ms wall), lost {}",
        samples.len(),
        samples.iter().filter(|s| s.0 == "failover").count(),
        r.outage_ms,
        r.outage_wall_ms,
        r.lost
    );
    let mut distinct: Vec<&String> = samples.iter().map(|s| &s.1).collect();
    distinct.sort();
    distinct.dedup();
    eprintln!("distinct neighbour entries seen: {distinct:#?}");
    // Until the client first resolves the VIP, its entry may be absent or
    // INCOMPLETE for the instant the first ARP request is in flight (longer on a
    // loaded machine); from the first answer on it must always be the virtual MAC.
    let resolved_from = samples
        .iter()
        .position(|s| s.1.contains("lladdr"))
        .expect("the client never resolved the VIP");
    for (when, s) in &samples[resolved_from..] {
        let lower = s.to_lowercase();
        assert!(
            !lower.contains("incomplete") && !lower.contains("failed"),
            "{when}: unresolved neighbour entry for the VIP: {s}"
        );
        for (h, mac) in &holder_macs {
            assert!(
                !lower.contains(&mac.to_lowercase()),
                "{when}: the client learned {h}'s TAP MAC for the VIP: {s}"
            );
        }
        assert!(
            lower.contains(&format!("lladdr {VMAC}")),
            "{when}: the VIP's neighbour entry is not the virtual MAC: {s}"
        );
    }
    // Once the first probe resolved it, the entry stays (it never needs to change).
    assert!(
        samples[resolved_from..].iter().all(|s| !s.1.is_empty()),
        "the entry vanished while probing: {samples:?}"
    );
    assert!(ok.status.success(), "no ping after re-resolution");
    eprintln!(
        "client_neighbour_entry_is_always_the_virtual_mac: {:?}",
        t0.elapsed()
    );
}

/// A threaded line echo server on 0.0.0.0:5001 that logs each connection's peer.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001))
s.listen(16)
def serve(c, a):
    log.write("conn %s:%d\n" % a)
    try:
        for line in c.makefile("rb"):
            c.sendall(line)
    except OSError as e:
        log.write("error %s:%d %s\n" % (a[0], a[1], e))
    log.write("closed %s:%d\n" % a)
    c.close()
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"#;

/// Connects to the VIP, prints its local port, then sends a line every 100 ms
/// and reads the echo (1 s timeout), N times; exits 1 on any error.
const ECHO_CLIENT: &str = r#"
import socket, sys, time
n = int(sys.argv[1])
c = socket.create_connection(("10.1.1.10", 5001), timeout=2)
c.settimeout(1.0)
print("local %d" % c.getsockname()[1], flush=True)
f = c.makefile("rb")
worst = 0.0
for i in range(n):
    t = time.monotonic()
    msg = ("line %d\n" % i).encode()
    try:
        c.sendall(msg)
        got = f.readline()
    except OSError as e:
        print("error at line %d: %s" % (i, e), flush=True)
        sys.exit(1)
    if got != msg:
        print("bad echo at line %d: %r" % (i, got), flush=True)
        sys.exit(1)
    dt = time.monotonic() - t
    worst = max(worst, dt)
    print("ok %d %.1f ms at %.3f" % (i, dt * 1000, time.time()), flush=True)
    time.sleep(0.1)
print("done worst %.1f ms" % (worst * 1000), flush=True)
"#;

#[test]
fn tcp_to_a_surviving_holder_survives_another_holders_death() {
    require_netns!();
    let t0 = Instant::now();
    netns::need_tools(&["python3", "ss"]);
    let mut lab = vip_lab("vc", false);
    start_all(&mut lab);
    for h in HOLDERS {
        let ns = lab.node(h).ns.clone();
        let echo_log = lab.dir.path().join(format!("{h}.echo"));
        lab.spawn_in(
            &ns,
            &[
                "python3",
                "-c",
                ECHO_SERVER,
                &echo_log.display().to_string(),
            ],
            None,
            None,
        );
    }
    lab.wait(Duration::from_secs(5), |lab| {
        HOLDERS.iter().all(|h| {
            let out = lab.exec(h, &["ss", "-Hltn", "sport = :5001"]);
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        })
    })
    .expect("echo servers not listening");
    let client_out = lab.dir.path().join("client.txt");
    let ns = lab.node(CLIENT).ns.clone();
    let lines = 40;
    let client = lab.spawn_in(
        &ns,
        &["python3", "-c", ECHO_CLIENT, &lines.to_string()],
        None,
        Some(&client_out),
    );
    // Which holder got the connection?
    let mut port = String::new();
    let mut server = String::new();
    lab.wait(Duration::from_secs(5), |lab| {
        let text = std::fs::read_to_string(&client_out).unwrap_or_default();
        let Some(p) = text
            .lines()
            .find_map(|l| l.strip_prefix("local "))
            .map(str::to_string)
        else {
            return false;
        };
        port = p;
        let peer = format!("conn {}:{port}", overlay_ip(CLIENT));
        if let Some(h) = HOLDERS.iter().find(|h| {
            std::fs::read_to_string(lab.dir.path().join(format!("{h}.echo")))
                .unwrap_or_default()
                .contains(&peer)
        }) {
            server = h.to_string();
            true
        } else {
            false
        }
    })
    .unwrap_or_else(|| {
        panic!(
            "no echo server saw the connection; client:\n{}",
            std::fs::read_to_string(&client_out).unwrap_or_default()
        )
    });
    let established = lab.exec(
        &server,
        &["ss", "-Htn", "state", "established", "sport = :5001"],
    );
    let est = String::from_utf8_lossy(&established.stdout).to_string();
    assert!(
        est.contains(&format!("{VIP}:5001")) && est.contains(&format!(":{port}")),
        "{server} has no established connection from port {port}: {est}"
    );
    let victim = HOLDERS
        .iter()
        .find(|h| **h != server)
        .expect("another holder")
        .to_string();
    std::thread::sleep(Duration::from_millis(800));
    let killed_at = Instant::now();
    lab.kill(&victim, Signal::SIGKILL);
    eprintln!("connection on {server} (client port {port}); SIGKILLed {victim}");
    let st = lab
        .wait_child(client, Duration::from_secs(15))
        .expect("the client did not finish within 15 s");
    let ran = killed_at.elapsed();
    let text = std::fs::read_to_string(&client_out).unwrap_or_default();
    let err = std::fs::read_to_string(format!("{}.err", client_out.display())).unwrap_or_default();
    eprintln!(
        "client after the kill ran {ran:?}; its last lines:\n{}",
        text.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );
    assert!(
        st.success(),
        "the TCP connection to {server} broke when {victim} died ({st}):\n{text}\n{err}\n{server}'s echo log:\n{}",
        std::fs::read_to_string(lab.dir.path().join(format!("{server}.echo"))).unwrap_or_default()
    );
    assert!(
        ran >= Duration::from_secs(2),
        "the client finished only {ran:?} after the kill"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        lines,
        "not every line echoed:\n{text}"
    );
    assert!(
        !traffic_to(&lab, CLIENT).contains(&victim),
        "node_5 still steers to the killed {victim}"
    );
    eprintln!(
        "tcp_to_a_surviving_holder_survives_another_holders_death: {:?}",
        t0.elapsed()
    );
}

#[test]
fn info_and_dump_vips_explain_the_vip() {
    require_netns!();
    let t0 = Instant::now();
    let mut lab = vip_lab("vi", false);
    start_all(&mut lab);
    for arg in [VIP, VMAC] {
        let info = ctl_text(&lab, CLIENT, &["info", arg]);
        eprintln!("node_5's info {arg}:\n{info}");
        assert!(
            info.lines()
                .any(|l| l.starts_with("VIP:") && l.contains(&format!("{VIP}/24"))),
            "info {arg}: no VIP line:\n{info}"
        );
        assert!(
            info.lines()
                .any(|l| l.starts_with("Virtual MAC:") && l.contains(VMAC)),
            "info {arg}: no virtual MAC:\n{info}"
        );
        assert!(
            info.lines()
                .any(|l| l.starts_with("Served here:") && l.contains("no")),
            "info {arg}: node_5 serves the VIP?\n{info}"
        );
        let mut to = traffic_to(&lab, CLIENT);
        to.sort();
        assert_eq!(to, HOLDERS, "info {arg}: `Traffic to:`\n{info}");
        for h in HOLDERS {
            assert!(
                info.lines().any(|l| l.starts_with("Holder:")
                    && l.split_whitespace().nth(1) == Some(h)
                    && l.contains("alive yes")
                    && l.contains("offered yes")),
                "info {arg}: no live offering `Holder: {h}` line:\n{info}"
            );
        }
    }
    for h in HOLDERS {
        let info = ctl_text(&lab, h, &["info", VIP]);
        assert!(
            info.contains("Served here:  yes (healthy)"),
            "{h}'s info {VIP}:\n{info}"
        );
        let l = log(&lab, h);
        assert!(
            l.contains(&format!("vip-up {h} mesh0 {VIP} 24 {VIP}/24 {VMAC} 10")),
            "{h}'s vip-up environment:\n{l}"
        );
    }
    let text = ctl_text(&lab, CLIENT, &["dump", "vips"]);
    eprintln!("node_5's dump vips:\n{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 3, "dump vips: one line per holder:\n{text}");
    for h in HOLDERS {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{VIP}/24 mac {VMAC} holder {h} "))),
            "dump vips: no line for {h}:\n{text}"
        );
    }
    let json = ctl_text(&lab, CLIENT, &["dump", "vips", "--json"]);
    let v: Value = serde_json::from_str(&json).expect("dump vips --json parses");
    let list = v.as_array().expect("a list");
    assert_eq!(list.len(), 1, "one VIP:\n{json}");
    let e = &list[0];
    assert_eq!(e["vip"], VIP);
    assert_eq!(e["prefix_len"], 24);
    assert_eq!(e["virtual_mac"], VMAC);
    assert_eq!(e["local_healthy"], Value::Null, "{json}");
    let names: Vec<&str> = e["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, HOLDERS, "{json}");
    for h in e["holders"].as_array().expect("holders") {
        for key in ["weight", "hold_down_ms", "flows", "share_percent"] {
            assert!(h[key].is_number(), "{key} in {h}");
        }
        for key in ["alive", "offered", "eligible"] {
            assert_eq!(h[key], true, "{key} in {h}");
        }
    }
    // The hub (not a holder, not probing) agrees.
    let hub = vip_status(&lab, "node_1").expect("node_1's dump vips");
    assert_eq!(hub["holders"].as_array().map(Vec::len), Some(3), "{hub:#}");
    eprintln!("info_and_dump_vips_explain_the_vip: {:?}", t0.elapsed());
}
