//! The reference scenario of the netns VIP tests: node_1 is the hub (10.1.1.1), node_2..node_4
//! serve the VIP 10.1.1.10 (overlay 10.1.1.102..104, `vip-up`/`vip-down` put the /32 on
//! mesh0), node_5 is the client (10.1.1.2); everyone `ConnectTo = node_1`. The lab, its
//! readiness checks and what the tests read from the client (`dump vips`, `info VIP`).

use super::{finish_probe, process_gone, start_probe_to, Probe, ProbeResult, Thaw};
use meshd_lab::netns::{self, Lab};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const NODES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
pub const HOLDERS: [&str; 3] = ["node_2", "node_3", "node_4"];
pub const CLIENT: &str = "node_5";
pub const VIP: &str = "10.1.1.10";
/// The virtual MAC meshd derives from 10.1.1.10.
pub const VMAC: &str = "02:6d:0a:01:01:0a";
/// The outage bound for a hard fault (generous for CI; the design aims at 300 ms median).
pub const MAX_OUTAGE_MS: u64 = 500;

/// The overlay address tinc-up gives `node`.
pub fn overlay_ip(node: &str) -> &'static str {
    match node {
        "node_1" => "10.1.1.1",
        "node_2" => "10.1.1.102",
        "node_3" => "10.1.1.103",
        "node_4" => "10.1.1.104",
        "node_5" => "10.1.1.2",
        _ => panic!("no lab node {node}"),
    }
}

/// The script log of `node`: one line per script run.
pub fn log_path(lab: &Lab, node: &str) -> PathBuf {
    lab.dir.path().join(format!("{node}.log"))
}

pub fn log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(log_path(lab, node)).unwrap_or_default()
}

/// The file whose existence `node`'s health check tests.
pub fn health_file(lab: &Lab, node: &str) -> PathBuf {
    lab.dir.path().join(format!("{node}.healthy"))
}

/// The daemon's debug log.
pub fn daemon_log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(lab.node(node).netdir.join("meshd.log")).unwrap_or_default()
}

/// The reference scenario, not started. With `health`, every holder has
/// `HealthCheck = 10.1.1.10 exec ... test -f LABDIR/NODE.healthy` (the files exist).
pub fn vip_lab(tag: &str, health: bool) -> Lab {
    let lab = Lab::new(tag, &NODES);
    lab.init_all();
    for n in NODES {
        lab.conf(n, "Interface = mesh0");
        let ip = overlay_ip(n);
        let log = log_path(&lab, n);
        let log = log.display();
        lab.script(
            n,
            "tinc-up",
            &format!(
                "#!/bin/sh\n\
                 ip link set \"$INTERFACE\" up\n\
                 ip addr add {ip}/24 dev \"$INTERFACE\"\n\
                 echo \"tinc-up $NAME $INTERFACE\" >> {log}\n"
            ),
        );
    }
    for h in HOLDERS {
        let host = lab.node(h).netdir.join("hosts").join(h);
        netns::append(&host, &format!("VirtualIP = {VIP}/24\n"));
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
        for (script, op) in [("vip-up", "add"), ("vip-down", "del")] {
            lab.script(
                h,
                script,
                &format!(
                    "#!/bin/sh\n\
                     ip addr {op} \"$VIP/32\" dev \"$INTERFACE\"\n\
                     echo \"{script} $NAME $INTERFACE $VIP $VIP_PREFIXLEN $VIP_SUBNET $VIRTUAL_MAC $WEIGHT\" >> {log}\n"
                ),
            );
        }
    }
    // The client serves Prometheus metrics inside its namespace (scraped after a failover).
    lab.conf(CLIENT, "MetricsAddress = 127.0.0.1:9655");
    // Host files are exchanged after the VIP lines went in, as a user would copy them.
    lab.hub("node_1");
    lab
}

/// The client's metrics, fetched inside its namespace.
pub fn scrape_metrics(lab: &Lab) -> String {
    let out = lab.exec(
        CLIENT,
        &[
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9655/metrics',timeout=5).read().decode())",
        ],
    );
    assert!(
        out.status.success(),
        "scrape: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of one sample line `NAME{LABELS} VALUE`.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

pub fn full_mesh(lab: &Lab) -> bool {
    NODES.iter().all(|n| {
        lab.reachable(n)
            .is_some_and(|r| NODES.iter().all(|m| r.iter().any(|x| x == m)))
    })
}

pub fn ctl_text(lab: &Lab, node: &str, args: &[&str]) -> String {
    let out = lab.ctl(node, args);
    assert!(
        out.status.success(),
        "{node} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `node`'s `dump vips --json` entry for 10.1.1.10, if the daemon answers and knows it.
pub fn vip_status(lab: &Lab, node: &str) -> Option<Value> {
    let out = lab.ctl(node, &["dump", "vips", "--json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find(|x| x["vip"] == VIP).cloned()
}

/// One holder's entry in a [`vip_status`].
pub fn holder<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["holders"]
        .as_array()?
        .iter()
        .find(|h| h["name"].as_str() == Some(name))
}

pub fn flag(h: Option<&Value>, key: &str) -> Option<bool> {
    h.and_then(|h| h[key].as_bool())
}

/// The names on `info 10.1.1.10`'s "Traffic to:" line on `node`.
pub fn traffic_to(lab: &Lab, node: &str) -> Vec<String> {
    let info = ctl_text(lab, node, &["info", VIP]);
    info.lines()
        .find_map(|l| l.strip_prefix("Traffic to:"))
        .unwrap_or_else(|| panic!("no `Traffic to:` in info {VIP} of {node}:\n{info}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn has_vip_address(lab: &Lab, node: &str) -> bool {
    let out = lab.exec(node, &["ip", "-o", "addr", "show", "dev", "mesh0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {VIP}/32"))
}

/// True once the client sees all three holders alive, offered, eligible and
/// out of hold-down, and every holder has the VIP on mesh0.
pub fn vip_ready(lab: &Lab) -> bool {
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

/// Starts all five (hub first), waits for the full mesh and for the client
/// to see three eligible holders.
pub fn start_all(lab: &mut Lab) {
    let t0 = Instant::now();
    for n in NODES {
        lab.start(n);
    }
    let mesh = lab
        .wait(Duration::from_secs(15), full_mesh)
        .expect("no full mesh within 15 s");
    lab.wait(Duration::from_secs(10), vip_ready)
        .unwrap_or_else(|| {
            panic!(
                "node_5 does not see 3 eligible holders within 10 s:\n{}",
                lab.ctl(CLIENT, &["dump", "vips"])
                    .stdout
                    .iter()
                    .map(|b| *b as char)
                    .collect::<String>()
            )
        });
    eprintln!(
        "full mesh {mesh:?} after the starts, VIP ready {:?} after the first start",
        t0.elapsed()
    );
}

/// `ping -n -D -i 0.01 -W 1 -c COUNT 10.1.1.10` in node_5's namespace.
pub fn start_probe(lab: &mut Lab, name: &str, count: u32) -> Probe {
    start_probe_to(lab, name, count, VIP)
}

/// The holder that serves the client's flows: the one with flows in node_5's `dump vips`.
pub fn serving_holder(lab: &Lab) -> String {
    let mut last = Value::Null;
    let found = lab.wait(Duration::from_secs(3), |lab| {
        let Some(v) = vip_status(lab, CLIENT) else {
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
        "not exactly one holder with flows on node_5:\n{last:#}"
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
pub fn vip_log_excerpt(lab: &Lab, node: &str, victim: &str) -> String {
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
pub enum Fault {
    Term,
    Kill,
    LinkCut,
    Freeze,
    HealthFail,
}

/// Builds the lab, pings the VIP from node_5, applies `fault` to the serving
/// holder 1 s in, and checks the failover. Returns the lab, the victim, the
/// probe's result (the probe is over) and, for a freeze, what thaws the victim.
pub fn failover(tag: &str, fault: Fault) -> (Lab, String, ProbeResult, Thaw) {
    failover_in(tag, fault, |_| {})
}

/// [`failover`] with `prepare` applied to the lab before the daemons start.
pub fn failover_in(
    tag: &str,
    fault: Fault,
    prepare: impl FnOnce(&Lab),
) -> (Lab, String, ProbeResult, Thaw) {
    netns::need_tools(&["ping"]);
    let mut lab = vip_lab(tag, fault == Fault::HealthFail);
    prepare(&lab);
    start_all(&mut lab);
    let probe = start_probe(&mut lab, &format!("{fault:?}"), 400);
    std::thread::sleep(Duration::from_millis(1000));
    let victim = serving_holder(&lab);
    let others: Vec<&str> = HOLDERS.iter().copied().filter(|h| *h != victim).collect();
    eprintln!("{fault:?}: the client's flow is served by {victim}");
    let mut thaw = Thaw(None);
    match fault {
        Fault::Term => {
            let pid = lab.pid(&victim).expect("pid");
            lab.kill(&victim, Signal::SIGTERM);
            let gone = lab.wait(Duration::from_secs(3), |_| process_gone(pid));
            eprintln!("{victim} exited {gone:?} after SIGTERM");
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
    // The client stops sending traffic to the victim.
    let seen = lab.wait(Duration::from_secs(3), |lab| {
        !traffic_to(lab, CLIENT).contains(&victim)
    });
    match seen {
        Some(d) => eprintln!("{fault:?}: node_5 dropped {victim} from `Traffic to:` after {d:?}"),
        None => eprintln!(
            "{fault:?}: node_5 still lists {victim} 3 s after the fault; its log:\n{}",
            vip_log_excerpt(&lab, CLIENT, &victim)
        ),
    }
    let r = finish_probe(&mut lab, &probe);
    eprintln!(
        "{fault:?} of the serving holder {victim}: outage {} ms by seq ({:.0} ms wall), \
         lost {} ({} of {} answered), {} duplicates",
        r.outage_ms, r.outage_wall_ms, r.lost, r.received, r.sent, r.duplicates
    );
    let info = ctl_text(&lab, CLIENT, &["info", VIP]);
    eprintln!("node_5's info {VIP} after the fault:\n{info}");
    assert!(seen.is_some(), "node_5 still steers to {victim}:\n{info}");
    let to = traffic_to(&lab, CLIENT);
    assert!(
        others.iter().all(|o| to.iter().any(|n| n == o)),
        "the surviving holders {others:?} are not all in `Traffic to:`:\n{info}"
    );
    assert!(
        r.tail_answered(100),
        "the probe did not keep getting answers after the failover: {r:?}"
    );
    assert_eq!(r.duplicates, 0, "duplicate answers: {r:?}");
    // The flow moved to a surviving holder.
    let v = vip_status(&lab, CLIENT).expect("dump vips on node_5");
    let flows_on = |h: &str| holder(&v, h).and_then(|e| e["flows"].as_u64()).unwrap_or(0);
    assert!(
        others.iter().any(|o| flows_on(o) > 0),
        "no surviving holder carries the client's flow:\n{v:#}"
    );
    (lab, victim, r, thaw)
}

pub fn hard_fault_bound(fault: Fault, victim: &str, lab: &Lab, r: &ProbeResult) {
    assert!(
        r.outage_ms <= MAX_OUTAGE_MS && r.outage_wall_ms <= MAX_OUTAGE_MS as f64,
        "{fault:?}: outage {} ms by seq, {:.0} ms wall: over {MAX_OUTAGE_MS} ms ({r:?}); \
         node_5's log:\n{}",
        r.outage_ms,
        r.outage_wall_ms,
        vip_log_excerpt(lab, CLIENT, victim)
    );
}
