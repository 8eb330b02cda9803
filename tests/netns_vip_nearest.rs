//! End-to-end nearest-holder steering (needs root; creates its own network
//! namespaces and removes them): the reference scenario of `netns_vip.rs`
//! (node_1 hub, node_2..node_4 hold 10.1.1.10, node_5 the client) with
//! `VIPPolicy = 10.1.1.10 nearest` in every holder's host file and each
//! holder's underlay slowed by the netfilter delayer (lab/src/delayer.py, as
//! in `netns_faults.rs`): node_3's outgoing UDP waits 2 ms, node_4's 10 ms,
//! node_2's 20 ms. Each holder runs a tiny UDP echo on port 7007 that answers
//! with its name, so the test sees which holder serves a flow the way a user
//! would. The client's new flows (one fresh UDP socket each) go to node_3;
//! after a SIGKILL of node_3 they go to node_4, the next nearest, and a ping
//! running across the kill sees an outage within the IPv4 tests' 500 ms.

mod vip_probe;

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;
use vip_probe::{finish_probe, start_probe_to};

const NODES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
const HOLDERS: [&str; 3] = ["node_2", "node_3", "node_4"];
const CLIENT: &str = "node_5";
const VIP: &str = "10.1.1.10";
const MAX_OUTAGE_MS: u64 = 500;
/// The delay the delayer adds to each holder's outgoing underlay UDP, ms.
const DELAYS: [(&str, u32); 3] = [("node_3", 2), ("node_4", 10), ("node_2", 20)];
const ECHO_PORT: &str = "7007";

const ECHO: &str = r#"import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[2])))
while True:
    d, a = s.recvfrom(512)
    s.sendto(sys.argv[1].encode(), a)
"#;

/// One new flow: a fresh socket (new source port) asks VIP:7007 once, 1 s timeout.
const ASK: &str = r#"import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.sendto(b'who', (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recvfrom(512)[0].decode())
except socket.timeout:
    print('timeout')
"#;

fn overlay_ip(node: &str) -> &'static str {
    match node {
        "node_1" => "10.1.1.1",
        "node_2" => "10.1.1.102",
        "node_3" => "10.1.1.103",
        "node_4" => "10.1.1.104",
        "node_5" => "10.1.1.2",
        _ => panic!("no lab node {node}"),
    }
}

fn nearest_lab(tag: &str) -> Lab {
    let lab = Lab::new(tag, &NODES);
    lab.init_all();
    for n in NODES {
        lab.conf(n, "Interface = mesh0");
        let ip = overlay_ip(n);
        lab.script(
            n,
            "tinc-up",
            &format!(
                "#!/bin/sh\n\
                 ip link set \"$INTERFACE\" up\n\
                 ip addr add {ip}/24 dev \"$INTERFACE\"\n"
            ),
        );
    }
    for h in HOLDERS {
        let host = lab.node(h).netdir.join("hosts").join(h);
        netns::append(
            &host,
            &format!("VirtualIP = {VIP}/24\nVIPPolicy = {VIP} nearest\n"),
        );
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

/// Each holder's outgoing underlay UDP through NFQUEUE 0 and a delayer
/// holding it DELAY ms (no jitter, no reordering): its RTT from anyone grows
/// by DELAY.
fn slow_holders(lab: &mut Lab) {
    let script = lab.dir.path().join("delayer.py");
    std::fs::write(&script, netns::DELAYER).expect("write the delayer");
    let script = script.display().to_string();
    for (h, ms) in DELAYS {
        let ns = lab.node(h).ns.clone();
        let log = lab.dir.path().join(format!("delayer-{h}.log"));
        lab.spawn_in(
            &ns,
            &["python3", &script, &ms.to_string(), "0", "0"],
            None,
            Some(&log),
        );
        // The delayer binds its queue before traffic is queued to it
        // (--queue-bypass passes packets while nobody listens).
        lab.wait(Duration::from_secs(10), |_| {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("bound"))
        })
        .unwrap_or_else(|| panic!("the delayer in {h} did not bind"));
        iptables(
            lab,
            h,
            &[
                "-A",
                "OUTPUT",
                "-o",
                "eth0",
                "-p",
                "udp",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
                "--queue-bypass",
            ],
        );
    }
}

fn full_mesh(lab: &Lab) -> bool {
    NODES.iter().all(|n| {
        lab.reachable(n)
            .is_some_and(|r| NODES.iter().all(|m| r.iter().any(|x| x == m)))
    })
}

fn vip_status(lab: &Lab) -> Option<Value> {
    let out = lab.ctl(CLIENT, &["dump", "vips", "--json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find(|x| x["vip"] == VIP).cloned()
}

fn holder<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["holders"]
        .as_array()?
        .iter()
        .find(|h| h["name"].as_str() == Some(name))
}

fn rtt_ms(v: &Value, name: &str) -> Option<f64> {
    holder(v, name).and_then(|h| h["rtt_ms"].as_f64())
}

fn info(lab: &Lab) -> String {
    let out = lab.ctl(CLIENT, &["info", VIP]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn traffic_to(lab: &Lab) -> Vec<String> {
    info(lab)
        .lines()
        .find_map(|l| l.strip_prefix("Traffic to:"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `n` new flows from the client to VIP:7007; the names that answered.
fn ask(lab: &Lab, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = lab.exec(CLIENT, &["python3", "-c", ASK, VIP, ECHO_PORT]);
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

#[test]
fn nearest_holder_serves_new_flows_and_the_next_nearest_after_sigkill() {
    require_netns!();
    netns::need_tools(&["ping", "python3", "iptables"]);
    let mut lab = nearest_lab("vnr");
    slow_holders(&mut lab);
    for h in HOLDERS {
        let ns = lab.node(h).ns.clone();
        lab.spawn_in(&ns, &["python3", "-c", ECHO, h, ECHO_PORT], None, None);
    }
    for n in NODES {
        lab.start(n);
    }
    lab.wait(Duration::from_secs(20), full_mesh)
        .expect("no full mesh within 20 s");
    // The client has an RTT for every holder, in the order of the delays, and
    // its policy is nearest with node_3 as the choice (after a first flow).
    let mut last = Value::Null;
    let ready = lab.wait(Duration::from_secs(20), |lab| {
        let Some(v) = vip_status(lab) else {
            return false;
        };
        let ok = HOLDERS.iter().all(|h| {
            holder(&v, h).is_some_and(|e| {
                e["alive"] == true && e["eligible"] == true && e["hold_down_ms"] == 0
            }) && rtt_ms(&v, h).is_some()
        }) && rtt_ms(&v, "node_3") < rtt_ms(&v, "node_4")
            && rtt_ms(&v, "node_4") < rtt_ms(&v, "node_2");
        last = v;
        ok
    });
    assert!(
        ready.is_some(),
        "node_5 does not see 3 eligible holders with RTTs in the delays' order within 20 s:\n{last:#}"
    );
    assert_eq!(last["policy"], "nearest", "{last:#}");
    eprintln!(
        "client RTTs: node_3 {:?} ms, node_4 {:?} ms, node_2 {:?} ms",
        rtt_ms(&last, "node_3"),
        rtt_ms(&last, "node_4"),
        rtt_ms(&last, "node_2")
    );

    // New flows: every one answered by node_3.
    let answers = ask(&lab, 8);
    eprintln!("8 new flows before the kill answered by {answers:?}");
    assert!(
        answers.iter().all(|a| a == "node_3"),
        "new flows not all served by the nearest holder node_3: {answers:?}\n{}",
        info(&lab)
    );
    let i = info(&lab);
    assert!(
        i.contains("nearest: new flows to node_3"),
        "info {VIP} on node_5 does not name node_3 as the nearest:\n{i}"
    );

    // A ping across the SIGKILL of node_3.
    let probe = start_probe_to(&mut lab, "nearest-kill", 400, VIP);
    std::thread::sleep(Duration::from_millis(1000));
    lab.kill("node_3", Signal::SIGKILL);
    let dropped = lab.wait(Duration::from_secs(5), |lab| {
        !traffic_to(lab).iter().any(|n| n == "node_3")
    });
    let r = finish_probe(&mut lab, &probe);
    eprintln!(
        "SIGKILL of node_3: node_5 stopped steering to it {dropped:?} after the kill; \
         ping outage {} ms by seq ({:.0} ms wall), lost {} of {}",
        r.outage_ms, r.outage_wall_ms, r.lost, r.sent
    );
    assert!(
        dropped.is_some(),
        "node_5 still steers to node_3:\n{}",
        info(&lab)
    );
    assert!(
        r.outage_ms <= MAX_OUTAGE_MS && r.outage_wall_ms <= MAX_OUTAGE_MS as f64,
        "outage over {MAX_OUTAGE_MS} ms: {r:?}"
    );
    assert!(r.tail_answered(100), "{r:?}");

    // New flows now go to node_4 (10 ms), not node_2 (20 ms).
    let answers = ask(&lab, 8);
    eprintln!("8 new flows after the kill answered by {answers:?}");
    assert!(
        answers.iter().all(|a| a == "node_4"),
        "new flows not all served by the next nearest holder node_4: {answers:?}\n{}",
        info(&lab)
    );
    let i = info(&lab);
    assert!(
        i.contains("nearest: new flows to node_4"),
        "info {VIP} on node_5 does not name node_4 as the nearest:\n{i}"
    );
    // The ping's flow, re-steered when node_3 died, went to node_4 too.
    let v = vip_status(&lab).expect("dump vips");
    let flows = |h: &str| holder(&v, h).and_then(|e| e["flows"].as_u64()).unwrap_or(0);
    assert_eq!(flows("node_2"), 0, "node_2 got flows:\n{v:#}");
}
