//! End-to-end IPv6 shared-VIP failover (needs root; creates its own network
//! namespaces and removes them): the reference scenario of `netns_vip.rs`
//! with an IPv6 VIP. node_1 is the hub, node_2..node_4 serve fd00:1::10
//! (overlay fd00:1::102..104 and 10.1.1.102..104; `vip-up` adds the VIP as
//! /128 `nodad`, as hosts.example's does), node_5 is the client (fd00:1::2).
//!
//! The client pings the VIP (`ping -6`) every 10 ms; a fault (SIGKILL,
//! underlay link cut, SIGSTOP, SIGTERM, a failing health check) is applied to
//! the holder serving the ping's flow, and the outage is read as in
//! `netns_vip.rs`: hard faults within 500 ms, a graceful stop loses nothing.
//! The client's neighbour entry for the VIP is only ever the virtual MAC, no
//! holder's VIP is ever "dadfailed", and a dual-stack service (10.1.1.10 and
//! fd00:1::10 on the same holders) fails over on both families at once: with
//! equal weights the two flows may hash to different holders, so a second
//! test gives node_3 the lowest weight on both VIPs and SIGKILLs it while it
//! serves both.
//!
//! Each test builds its own lab (unique tag), so they may run in parallel.

mod vip_probe;

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vip_probe::{
    daemon_alive, finish_probe, process_gone, start_probe_to, Probe, ProbeResult, Thaw,
};

const NODES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
const HOLDERS: [&str; 3] = ["node_2", "node_3", "node_4"];
const CLIENT: &str = "node_5";
const VIP: &str = "fd00:1::10";
/// The virtual MAC meshd derives from fd00:1::10 (PROTOCOL §7.1).
const VMAC: &str = "06:6d:69:9a:b5:47";
/// The IPv4 half of the dual-stack service.
const VIP4: &str = "10.1.1.10";
const VMAC4: &str = "02:6d:0a:01:01:0a";
/// The outage bound for a hard fault (the IPv4 tests').
const MAX_OUTAGE_MS: u64 = 500;

/// The overlay addresses tinc-up gives `node`: (IPv4, IPv6).
fn overlay_ip(node: &str) -> (&'static str, &'static str) {
    match node {
        "node_1" => ("10.1.1.1", "fd00:1::1"),
        "node_2" => ("10.1.1.102", "fd00:1::102"),
        "node_3" => ("10.1.1.103", "fd00:1::103"),
        "node_4" => ("10.1.1.104", "fd00:1::104"),
        "node_5" => ("10.1.1.2", "fd00:1::2"),
        _ => panic!("no lab node {node}"),
    }
}

fn log_path(lab: &Lab, node: &str) -> PathBuf {
    lab.dir.path().join(format!("{node}.log"))
}

fn log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(log_path(lab, node)).unwrap_or_default()
}

fn health_file(lab: &Lab, node: &str) -> PathBuf {
    lab.dir.path().join(format!("{node}.healthy"))
}

fn daemon_log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(lab.node(node).netdir.join("meshd.log")).unwrap_or_default()
}

/// The scenario, not started. With `health`, every holder has `HealthCheck =
/// fd00:1::10 exec ... test -f LABDIR/NODE.healthy`; with `dual`, the holders
/// serve 10.1.1.10 too.
fn vip_lab(tag: &str, health: bool, dual: bool) -> Lab {
    let lab = Lab::new(tag, &NODES);
    lab.init_all();
    for n in NODES {
        lab.conf(n, "Interface = mesh0");
        let (ip4, ip6) = overlay_ip(n);
        let log = log_path(&lab, n);
        let log = log.display();
        lab.script(
            n,
            "tinc-up",
            &format!(
                "#!/bin/sh\n\
                 ip link set \"$INTERFACE\" up\n\
                 ip addr add {ip4}/24 dev \"$INTERFACE\"\n\
                 ip -6 addr add {ip6}/64 dev \"$INTERFACE\" nodad\n\
                 echo \"tinc-up $NAME $INTERFACE\" >> {log}\n"
            ),
        );
    }
    for h in HOLDERS {
        let host = lab.node(h).netdir.join("hosts").join(h);
        netns::append(&host, &format!("VirtualIP = {VIP}/64\n"));
        if dual {
            netns::append(&host, &format!("VirtualIP = {VIP4}/24\n"));
        }
        if health {
            let file = health_file(&lab, h);
            std::fs::write(&file, "").expect("health file");
            netns::append(
                &host,
                &format!(
                    "HealthCheck = {VIP} exec interval=100ms timeout=100ms rise=2 fall=1 test -f {}\n",
                    file.display()
                ),
            );
        }
        let log = log_path(&lab, h);
        let log = log.display();
        // hosts.example's vip-up/vip-down: IPv6 as /128 nodad, IPv4 as /32.
        for script in ["vip-up", "vip-down"] {
            let example = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("hosts.example/node_2")
                    .join(script),
            )
            .expect("hosts.example script");
            lab.script(
                h,
                script,
                &format!(
                    "{example}\
                     echo \"{script} $NAME $INTERFACE $VIP $VIP_PREFIXLEN $VIRTUAL_MAC\" >> {log}\n"
                ),
            );
        }
    }
    lab.hub("node_1");
    lab
}

fn full_mesh(lab: &Lab) -> bool {
    NODES.iter().all(|n| {
        lab.reachable(n)
            .is_some_and(|r| NODES.iter().all(|m| r.iter().any(|x| x == m)))
    })
}

fn ctl_text(lab: &Lab, node: &str, args: &[&str]) -> String {
    let out = lab.ctl(node, args);
    assert!(
        out.status.success(),
        "{node} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `node`'s `dump vips --json` entry for `vip`, if the daemon answers and knows it.
fn vip_status_of(lab: &Lab, node: &str, vip: &str) -> Option<Value> {
    let out = lab.ctl(node, &["dump", "vips", "--json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find(|x| x["vip"] == vip).cloned()
}

fn vip_status(lab: &Lab, node: &str) -> Option<Value> {
    vip_status_of(lab, node, VIP)
}

fn holder<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["holders"]
        .as_array()?
        .iter()
        .find(|h| h["name"].as_str() == Some(name))
}

fn flag(h: Option<&Value>, key: &str) -> Option<bool> {
    h.and_then(|h| h[key].as_bool())
}

/// The names on `info VIP`'s "Traffic to:" line on `node`.
fn traffic_to(lab: &Lab, node: &str, vip: &str) -> Vec<String> {
    let info = ctl_text(lab, node, &["info", vip]);
    info.lines()
        .find_map(|l| l.strip_prefix("Traffic to:"))
        .unwrap_or_else(|| panic!("no `Traffic to:` in info {vip} of {node}:\n{info}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `ip -6 addr show dev mesh0` in `node`'s namespace.
fn addrs6(lab: &Lab, node: &str) -> String {
    let out = lab.exec(node, &["ip", "-6", "-o", "addr", "show", "dev", "mesh0"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The holder has the VIP on mesh0, usable (not tentative, not dadfailed).
fn has_vip_address(lab: &Lab, node: &str) -> bool {
    addrs6(lab, node).lines().any(|l| {
        l.contains(&format!("inet6 {VIP}/128"))
            && !l.contains("tentative")
            && !l.contains("dadfailed")
    })
}

fn vip_ready(lab: &Lab) -> bool {
    let Some(v) = vip_status(lab, CLIENT) else {
        return false;
    };
    HOLDERS.iter().all(|h| {
        let e = holder(&v, h);
        flag(e, "alive") == Some(true)
            && flag(e, "eligible") == Some(true)
            && e.and_then(|e| e["hold_down_ms"].as_u64()) == Some(0)
    }) && HOLDERS.iter().all(|h| has_vip_address(lab, h))
}

fn start_all(lab: &mut Lab) {
    let t0 = Instant::now();
    for n in NODES {
        lab.start(n);
    }
    let mesh = lab
        .wait(Duration::from_secs(15), full_mesh)
        .expect("no full mesh within 15 s");
    lab.wait(Duration::from_secs(10), vip_ready)
        .unwrap_or_else(|| {
            let addrs: String = HOLDERS
                .iter()
                .map(|h| format!("{h}: {}\n", addrs6(lab, h)))
                .collect();
            panic!(
                "node_5 does not see 3 eligible holders with the VIP within 10 s:\n{}\n{addrs}",
                String::from_utf8_lossy(&lab.ctl(CLIENT, &["dump", "vips"]).stdout)
            )
        });
    eprintln!(
        "full mesh {mesh:?} after the starts, VIP ready {:?} after the first start",
        t0.elapsed()
    );
}

fn start_probe(lab: &mut Lab, name: &str, count: u32) -> Probe {
    start_probe_to(lab, name, count, VIP)
}

/// The holder that serves the client's flows to `vip`.
fn serving_holder(lab: &Lab, vip: &str) -> String {
    let mut last = Value::Null;
    let found = lab.wait(Duration::from_secs(3), |lab| {
        let Some(v) = vip_status_of(lab, CLIENT, vip) else {
            return false;
        };
        let with_flows = HOLDERS
            .iter()
            .filter(|h| holder(&v, h).and_then(|e| e["flows"].as_u64()).unwrap_or(0) > 0)
            .count();
        last = v;
        with_flows == 1
    });
    assert!(
        found.is_some(),
        "not exactly one holder with flows to {vip} on node_5:\n{last:#}"
    );
    HOLDERS
        .iter()
        .find(|h| {
            holder(&last, h)
                .and_then(|e| e["flows"].as_u64())
                .unwrap_or(0)
                > 0
        })
        .expect("holder with flows")
        .to_string()
}

/// The lines of `node`'s daemon log that mention VIPs, holders or the victim (for reports).
fn vip_log_excerpt(lab: &Lab, node: &str, victim: &str) -> String {
    daemon_log(lab, node)
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("vip") || l.contains("holder") || l.contains(&victim.to_lowercase())
        })
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Term,
    Kill,
    LinkCut,
    Freeze,
    HealthFail,
}

/// `ip -6 neigh show VIP` in node_5's namespace, trimmed.
fn neigh(lab: &Lab) -> String {
    let out = lab.exec(CLIENT, &["ip", "-6", "neigh", "show", VIP]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn tap_mac(lab: &Lab, node: &str) -> String {
    lab.must_in(&lab.node(node).ns, &["cat", "/sys/class/net/mesh0/address"])
        .trim()
        .to_string()
}

/// Builds the lab, pings the VIP from node_5, applies `fault` to the serving
/// holder 1 s in, samples the client's neighbour entry for the VIP all along,
/// and checks the failover.
fn failover(tag: &str, fault: Fault) -> (Lab, String, ProbeResult, Thaw) {
    netns::need_tools(&["ping"]);
    let mut lab = vip_lab(tag, fault == Fault::HealthFail, false);
    start_all(&mut lab);
    let holder_macs: Vec<(String, String)> = HOLDERS
        .iter()
        .map(|h| (h.to_string(), tap_mac(&lab, h)))
        .collect();
    let probe = start_probe(&mut lab, &format!("{fault:?}"), 400);
    let mut samples: Vec<String> = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1000) {
        samples.push(neigh(&lab));
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = serving_holder(&lab, VIP);
    let others: Vec<&str> = HOLDERS.iter().copied().filter(|h| *h != victim).collect();
    eprintln!("{fault:?}: the client's flow is served by {victim}");
    let mut thaw = Thaw(None);
    match fault {
        Fault::Term => {
            let pid = lab.pid(&victim).expect("pid");
            lab.kill(&victim, Signal::SIGTERM);
            let gone = lab.wait(Duration::from_secs(3), |_| process_gone(pid));
            assert!(gone.is_some(), "{victim} still runs 3 s after SIGTERM");
        }
        Fault::Kill => lab.kill(&victim, Signal::SIGKILL),
        Fault::LinkCut => {
            netns::must(
                "ip",
                &["-n", &lab.node(&victim).ns, "link", "set", "eth0", "down"],
            );
        }
        Fault::Freeze => {
            thaw = Thaw(lab.pid(&victim));
            lab.kill(&victim, Signal::SIGSTOP);
        }
        Fault::HealthFail => {
            std::fs::remove_file(health_file(&lab, &victim)).expect("remove health file");
        }
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1200) {
        samples.push(neigh(&lab));
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = lab.wait(Duration::from_secs(3), |lab| {
        !traffic_to(lab, CLIENT, VIP).contains(&victim)
    });
    let r = finish_probe(&mut lab, &probe);
    samples.push(neigh(&lab));
    eprintln!(
        "IPv6 {fault:?} of the serving holder {victim}: outage {} ms by seq ({:.0} ms wall), \
         lost {} ({} of {} answered), {} duplicates",
        r.outage_ms, r.outage_wall_ms, r.lost, r.received, r.sent, r.duplicates
    );
    let info = ctl_text(&lab, CLIENT, &["info", VIP]);
    assert!(seen.is_some(), "node_5 still steers to {victim}:\n{info}");
    let to = traffic_to(&lab, CLIENT, VIP);
    assert!(
        others.iter().all(|o| to.iter().any(|n| n == o)),
        "the surviving holders {others:?} are not all in `Traffic to:`:\n{info}"
    );
    assert!(
        r.tail_answered(100),
        "the probe did not keep getting answers after the failover: {r:?}"
    );
    assert_eq!(r.duplicates, 0, "duplicate answers: {r:?}");
    // The client's neighbour entry for the VIP: from its first resolution on,
    // always the virtual MAC, never a holder's.
    let resolved_from = samples
        .iter()
        .position(|s| s.contains("lladdr"))
        .expect("the client never resolved the VIP");
    for s in &samples[resolved_from..] {
        let lower = s.to_lowercase();
        for (h, mac) in &holder_macs {
            assert!(
                !lower.contains(&mac.to_lowercase()),
                "the client learned {h}'s TAP MAC for the VIP: {s}"
            );
        }
        assert!(
            lower.contains(&format!("lladdr {VMAC}")),
            "the VIP's neighbour entry is not the virtual MAC: {s}"
        );
    }
    // No surviving holder's VIP is tentative or dadfailed.
    for o in &others {
        let a = addrs6(&lab, o);
        assert!(
            !a.contains("dadfailed") && !a.contains("tentative"),
            "{o}'s addresses: {a}"
        );
    }
    (lab, victim, r, thaw)
}

fn hard_fault_bound(fault: Fault, victim: &str, lab: &Lab, r: &ProbeResult) {
    assert!(
        r.outage_ms <= MAX_OUTAGE_MS && r.outage_wall_ms <= MAX_OUTAGE_MS as f64,
        "{fault:?}: outage {} ms by seq, {:.0} ms wall: over {MAX_OUTAGE_MS} ms ({r:?}); \
         node_5's log:\n{}",
        r.outage_ms,
        r.outage_wall_ms,
        vip_log_excerpt(lab, CLIENT, victim)
    );
}

#[test]
fn ipv6_sigkill() {
    require_netns!();
    let (lab, victim, r, _) = failover("v6k", Fault::Kill);
    hard_fault_bound(Fault::Kill, &victim, &lab, &r);
    let v = vip_status(&lab, CLIENT).expect("dump vips");
    assert!(
        holder(&v, &victim).is_none() || flag(holder(&v, &victim), "alive") == Some(false),
        "node_5 still thinks the killed {victim} is alive:\n{v:#}"
    );
}

#[test]
fn ipv6_underlay_link_cut() {
    require_netns!();
    let (lab, victim, r, _) = failover("v6l", Fault::LinkCut);
    hard_fault_bound(Fault::LinkCut, &victim, &lab, &r);
    assert!(daemon_alive(&lab, &victim), "{victim}'s daemon died");
}

#[test]
fn ipv6_freeze() {
    require_netns!();
    let (mut lab, victim, r, mut thaw) = failover("v6f", Fault::Freeze);
    hard_fault_bound(Fault::Freeze, &victim, &lab, &r);
    // The frozen holder returns: the established flow stays where it is.
    let probe = start_probe(&mut lab, "thaw", 300);
    std::thread::sleep(Duration::from_millis(500));
    thaw.now();
    let back = lab.wait(Duration::from_secs(3), |lab| {
        vip_status(lab, CLIENT).is_some_and(|v| flag(holder(&v, &victim), "alive") == Some(true))
    });
    let r2 = finish_probe(&mut lab, &probe);
    eprintln!(
        "IPv6 freeze: {victim} alive again {back:?} after SIGCONT; probe across the return: lost {} of {}",
        r2.lost, r2.sent
    );
    assert!(
        back.is_some(),
        "node_5 never saw {victim} alive after SIGCONT"
    );
    assert_eq!(
        r2.lost, 0,
        "the returning holder disturbed the flow: {r2:?}"
    );
}

#[test]
fn ipv6_graceful_stop_loses_nothing() {
    require_netns!();
    let (lab, victim, r, _) = failover("v6t", Fault::Term);
    assert!(!daemon_alive(&lab, &victim), "{victim}'s daemon still runs");
    assert!(
        log(&lab, &victim).contains(&format!("vip-down {victim} mesh0 {VIP}")),
        "no vip-down on {victim}:\n{}",
        log(&lab, &victim)
    );
    assert_eq!(
        r.lost,
        0,
        "SIGTERM lost {} probes ({r:?}); node_5's log:\n{}",
        r.lost,
        vip_log_excerpt(&lab, CLIENT, &victim)
    );
}

#[test]
fn ipv6_health_check_failing() {
    require_netns!();
    let (mut lab, victim, r, _) = failover("v6h", Fault::HealthFail);
    hard_fault_bound(Fault::HealthFail, &victim, &lab, &r);
    assert!(daemon_alive(&lab, &victim), "{victim}'s daemon died");
    let v = vip_status(&lab, CLIENT).expect("dump vips");
    let e = holder(&v, &victim);
    assert_eq!(
        (flag(e, "alive"), flag(e, "offered")),
        (Some(true), Some(false)),
        "node_5's view of {victim} with a failing check:\n{v:#}"
    );
    lab.wait(Duration::from_secs(2), |lab| {
        log(lab, &victim).contains(&format!("vip-down {victim} mesh0 {VIP}"))
            && !addrs6(lab, &victim).contains(&format!("inet6 {VIP}/128"))
    })
    .unwrap_or_else(|| panic!("no vip-down on {victim}:\n{}", log(&lab, &victim)));
    // The check passes again: vip-up re-adds the VIP (nodad: usable at once)
    // and the established flow does not move back.
    let probe = start_probe(&mut lab, "healthy-again", 300);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(health_file(&lab, &victim), "").expect("health file");
    let back = lab.wait(Duration::from_secs(4), |lab| {
        vip_status(lab, CLIENT).is_some_and(|v| flag(holder(&v, &victim), "eligible") == Some(true))
    });
    let r2 = finish_probe(&mut lab, &probe);
    assert!(back.is_some(), "{victim} never offered the VIP again");
    assert!(
        has_vip_address(&lab, &victim),
        "vip-up did not re-add a usable VIP"
    );
    assert_eq!(
        r2.lost, 0,
        "the returning holder disturbed the flow: {r2:?}"
    );
}

#[test]
fn dual_stack_vip_fails_over_on_both_families() {
    require_netns!();
    netns::need_tools(&["ping"]);
    let mut lab = vip_lab("v6d", false, true);
    start_all(&mut lab);
    let v4 = vip_status_of(&lab, CLIENT, VIP4).expect("node_5 knows the IPv4 VIP");
    assert_eq!(v4["virtual_mac"].as_str(), Some(VMAC4), "{v4:#}");
    let v6 = vip_status(&lab, CLIENT).expect("node_5 knows the IPv6 VIP");
    assert_eq!(v6["virtual_mac"].as_str(), Some(VMAC), "{v6:#}");
    let p6 = start_probe_to(&mut lab, "dual6", 400, VIP);
    let p4 = start_probe_to(&mut lab, "dual4", 400, VIP4);
    std::thread::sleep(Duration::from_millis(1000));
    let victim = serving_holder(&lab, VIP);
    lab.kill(&victim, Signal::SIGKILL);
    let r6 = finish_probe(&mut lab, &p6);
    let r4 = finish_probe(&mut lab, &p4);
    eprintln!(
        "dual stack, SIGKILL of {victim}: IPv6 outage {} ms by seq ({:.0} ms wall), lost {}; \
         IPv4 outage {} ms by seq ({:.0} ms wall), lost {}",
        r6.outage_ms, r6.outage_wall_ms, r6.lost, r4.outage_ms, r4.outage_wall_ms, r4.lost
    );
    hard_fault_bound(Fault::Kill, &victim, &lab, &r6);
    hard_fault_bound(Fault::Kill, &victim, &lab, &r4);
    assert!(
        r6.tail_answered(100) && r4.tail_answered(100),
        "{r6:?} {r4:?}"
    );
    let n6 = neigh(&lab);
    let out = lab.exec(CLIENT, &["ip", "neigh", "show", VIP4]);
    let n4 = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(n6.to_lowercase().contains(VMAC), "{n6}");
    assert!(n4.contains(VMAC4), "{n4}");
}

/// The dual-stack service with node_3 at weight 5 on both VIPs (the others
/// 10): node_3 serves both families, so its SIGKILL must fail over both at
/// once (with equal weights the two flows may hash to different holders).
#[test]
fn dual_stack_vip_sigkill_of_the_holder_serving_both_fails_both_over() {
    require_netns!();
    netns::need_tools(&["ping"]);
    let mut lab = vip_lab("v6w", false, true);
    // Every copy of node_3's host file (its own and the ones the hub handed out).
    for n in NODES {
        let path = lab.node(n).netdir.join("hosts").join("node_3");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let text = text
                .replace(
                    &format!("VirtualIP = {VIP}/64\n"),
                    &format!("VirtualIP = {VIP}/64#5\n"),
                )
                .replace(
                    &format!("VirtualIP = {VIP4}/24\n"),
                    &format!("VirtualIP = {VIP4}/24#5\n"),
                );
            std::fs::write(&path, text).expect("host file");
        }
    }
    start_all(&mut lab);
    let p6 = start_probe_to(&mut lab, "both6", 400, VIP);
    let p4 = start_probe_to(&mut lab, "both4", 400, VIP4);
    std::thread::sleep(Duration::from_millis(1000));
    let s6 = serving_holder(&lab, VIP);
    let s4 = serving_holder(&lab, VIP4);
    assert_eq!(
        (s6.as_str(), s4.as_str()),
        ("node_3", "node_3"),
        "the weight-5 holder does not serve both families:\n{}",
        String::from_utf8_lossy(&lab.ctl(CLIENT, &["dump", "vips"]).stdout)
    );
    lab.kill("node_3", Signal::SIGKILL);
    let moved = lab.wait(Duration::from_secs(3), |lab| {
        !traffic_to(lab, CLIENT, VIP).iter().any(|n| n == "node_3")
            && !traffic_to(lab, CLIENT, VIP4).iter().any(|n| n == "node_3")
    });
    let r6 = finish_probe(&mut lab, &p6);
    let r4 = finish_probe(&mut lab, &p4);
    eprintln!(
        "dual stack, SIGKILL of node_3 serving both: IPv6 outage {} ms by seq ({:.0} ms wall), lost {}; \
         IPv4 outage {} ms by seq ({:.0} ms wall), lost {}; node_5 stopped steering to node_3 {moved:?} after the kill",
        r6.outage_ms, r6.outage_wall_ms, r6.lost, r4.outage_ms, r4.outage_wall_ms, r4.lost
    );
    assert!(moved.is_some(), "node_5 still steers a family to node_3");
    // Both probes really lost the holder (the fault hit both flows) ...
    assert!(r6.lost > 0 && r4.lost > 0, "{r6:?} {r4:?}");
    // ... and both came back within the IPv4 tests' bound.
    hard_fault_bound(Fault::Kill, "node_3", &lab, &r6);
    hard_fault_bound(Fault::Kill, "node_3", &lab, &r4);
    assert!(
        r6.tail_answered(100) && r4.tail_answered(100),
        "{r6:?} {r4:?}"
    );
    let v6 = serving_holder(&lab, VIP);
    let v4 = serving_holder(&lab, VIP4);
    assert!(v6 != "node_3" && v4 != "node_3", "{v6} {v4}");
    eprintln!("after the kill: IPv6 served by {v6}, IPv4 by {v4}");
}
