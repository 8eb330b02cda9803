//! The container lab of the netns tests of a VIP owned by a station behind
//! its holder (`netns_vip_owner.rs` for IPv4, `netns_vip_owner_v6.rs` for
//! IPv6): node_1 is the hub; node_2 serves the VIP with weight 5 (active)
//! from a container namespace on bridge br-c, which also holds node_2's TAP,
//! with `HealthCheck = VIP presence`; node_3 serves it with weight 10 on its
//! own TAP (`vip-up`/`vip-down`); the client is a container behind node_4's
//! bridge, no mesh member. The scenarios run for either address family.

use super::{finish_probe, start_probe_in};
use meshd_lab::netns::{self, Lab};
use serde_json::Value;
use std::time::{Duration, Instant};

pub const NODES: [&str; 4] = ["node_1", "node_2", "node_3", "node_4"];
/// A generous bound for CI (presence: two unanswered 100 ms rounds after
/// at most one more, then the record's trip).
pub const MAX_OUTAGE_MS: u64 = 1500;

pub fn overlay_ip(node: &str) -> &'static str {
    match node {
        "node_1" => "10.1.1.1",
        "node_2" => "10.1.1.102",
        "node_3" => "10.1.1.103",
        "node_4" => "10.1.1.4",
        _ => panic!("no lab node {node}"),
    }
}

pub fn mac_of(lab: &Lab, ns: &str, ifname: &str) -> String {
    let out = lab.must_in(ns, &["cat", &format!("/sys/class/net/{ifname}/address")]);
    out.trim().to_string()
}

/// Moves `node`'s overlay address from mesh0 to a new bridge br-c holding
/// mesh0, and puts a station namespace `suffix` on it with `addr`
/// (`ip/24`); returns the station's namespace.
pub fn station_behind(lab: &mut Lab, node: &str, suffix: &str, addr: &str) -> String {
    let ns = lab.node(node).ns.clone();
    let ip = overlay_ip(node);
    lab.must_in(&ns, &["ip", "link", "add", "br-c", "type", "bridge"]);
    lab.must_in(&ns, &["ip", "link", "set", "mesh0", "master", "br-c"]);
    lab.must_in(
        &ns,
        &["ip", "addr", "del", &format!("{ip}/24"), "dev", "mesh0"],
    );
    lab.must_in(
        &ns,
        &["ip", "addr", "add", &format!("{ip}/24"), "dev", "br-c"],
    );
    lab.must_in(&ns, &["ip", "link", "set", "br-c", "up"]);
    let st = lab.add_netns(suffix);
    // MTU 1400, the overlay's: a bridge drops larger frames at the TAP silently.
    lab.must_in(
        &ns,
        &[
            "ip", "link", "add", "vc0", "mtu", "1400", "type", "veth", "peer", "name", "eth0",
            "mtu", "1400", "netns", &st,
        ],
    );
    lab.must_in(&ns, &["ip", "link", "set", "vc0", "master", "br-c", "up"]);
    let mut add = vec!["ip", "addr", "add", addr, "dev", "eth0"];
    if addr.contains(':') {
        // No duplicate address detection: usable at once, as vip-up does.
        add.push("nodad");
    }
    lab.must_in(&st, &add);
    lab.must_in(&st, &["ip", "link", "set", "eth0", "up"]);
    lab.wait(Duration::from_secs(5), |lab| {
        lab.exec_in(&ns, &["bridge", "link", "show", "dev", "vc0"])
            .stdout
            .windows(10)
            .any(|w| w == b"forwarding")
    })
    .unwrap_or_else(|| panic!("vc0 not forwarding on {node}'s br-c"));
    st
}

pub fn vip_status(lab: &Lab, node: &str, vip: &str) -> Option<Value> {
    let out = lab.ctl(node, &["dump", "vips", "--json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find(|x| x["vip"] == vip).cloned()
}

/// Whether `node` sees `holder` offering the VIP, eligible and out of hold-down.
pub fn eligible(lab: &Lab, node: &str, holder: &str, vip: &str) -> bool {
    vip_status(lab, node, vip).is_some_and(|v| {
        v["holders"].as_array().is_some_and(|hs| {
            hs.iter().any(|h| {
                h["name"] == holder
                    && h["eligible"] == true
                    && h["hold_down_ms"].as_u64() == Some(0)
            })
        })
    })
}

pub fn offered(lab: &Lab, node: &str, holder: &str, vip: &str) -> bool {
    vip_status(lab, node, vip).is_some_and(|v| {
        v["holders"].as_array().is_some_and(|hs| {
            hs.iter()
                .any(|h| h["name"] == holder && h["offered"] == true)
        })
    })
}

pub fn text(lab: &Lab, node: &str, args: &[&str]) -> String {
    let out = lab.ctl(node, args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The lab, started, with a full mesh: node_2 serves `vip` (`/24` or `/64`)
/// with weight 5 and a presence check (no station holds it yet), node_3 with
/// weight 10 on its TAP (`vip-up` adds it).
pub fn owner_lab(tag: &str, vip: &str) -> Lab {
    let (len, add) = if vip.contains(':') {
        (64, "ip -6 addr $OP \"$VIP/128\" dev \"$INTERFACE\" nodad")
    } else {
        (24, "ip addr $OP \"$VIP/32\" dev \"$INTERFACE\"")
    };
    let mut lab = Lab::new(tag, &NODES);
    lab.init_all();
    for n in NODES {
        lab.conf(n, "Interface = mesh0");
        let ip = overlay_ip(n);
        lab.script(
            n,
            "tinc-up",
            &format!(
                "#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {ip}/24 dev \"$INTERFACE\"\n"
            ),
        );
    }
    netns::append(
        &lab.node("node_2").netdir.join("hosts").join("node_2"),
        &format!(
            "VirtualIP = {vip}/{len}#5\nHealthCheck = {vip} presence interval=100ms rise=2 fall=2\n"
        ),
    );
    netns::append(
        &lab.node("node_3").netdir.join("hosts").join("node_3"),
        &format!("VirtualIP = {vip}/{len}\n"),
    );
    for (script, op) in [("vip-up", "add"), ("vip-down", "del")] {
        lab.script(
            "node_3",
            script,
            &format!("#!/bin/sh\n{}\n", add.replace("$OP", op)),
        );
    }
    if len == 64 {
        // node_3 answers from a /128 VIP: it needs the /64 on-link to reach clients.
        lab.script(
            "node_3",
            "tinc-up",
            &format!(
                "#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {}/24 dev \"$INTERFACE\"\n\
                 ip -6 addr add fd00:1::103/64 dev \"$INTERFACE\" nodad\n",
                overlay_ip("node_3")
            ),
        );
    }
    for n in ["node_2", "node_3"] {
        // Their counters show how a vanished owner's frames went (metrics).
        lab.conf(n, "MetricsAddress = 127.0.0.1:9655");
    }
    lab.hub("node_1");
    for n in NODES {
        lab.start(n);
    }
    lab.wait(Duration::from_secs(15), |lab| {
        NODES.iter().all(|n| {
            lab.reachable(n)
                .is_some_and(|r| NODES.iter().all(|m| r.iter().any(|x| x == m)))
        })
    })
    .expect("no full mesh within 15 s");
    lab
}

/// The container's address for `vip`: `/24` (IPv4) or `/64` (IPv6).
pub fn station_addr(vip: &str) -> String {
    if vip.contains(':') {
        format!("{vip}/64")
    } else {
        format!("{vip}/24")
    }
}

/// The client container's address, on the VIP's subnet.
pub fn client_addr(vip: &str) -> &'static str {
    if vip.contains(':') {
        "fd00:1::60/64"
    } else {
        "10.1.1.60/24"
    }
}

/// The container on node_2 holds `vip` and answers the client behind node_4
/// (steered to node_2, whose `info` names the container as the present
/// owner); it loses the address: presence withdraws node_2's VIP and the
/// client fails over to node_3 within [`MAX_OUTAGE_MS`]; the address comes
/// back: node_2 offers the VIP again. `tag` names the lab.
pub fn presence_fails_over(tag: &str, vip: &str) {
    let t0 = Instant::now();
    let mut lab = owner_lab(tag, vip);

    // The container on node_2 holds the VIP; the client sits behind node_4.
    let ctr = station_behind(&mut lab, "node_2", "c2", &station_addr(vip));
    let ctr_mac = mac_of(&lab, &ctr, "eth0");
    let cli = station_behind(&mut lab, "node_4", "c4", client_addr(vip));
    let ready = lab.wait(Duration::from_secs(10), |lab| {
        eligible(lab, "node_4", "node_2", vip) && eligible(lab, "node_4", "node_3", vip)
    });
    assert!(
        ready.is_some(),
        "node_4 does not see both holders eligible:\n{}\nnode_2: {}",
        text(&lab, "node_4", &["dump", "vips"]),
        text(&lab, "node_2", &["info", vip])
    );
    let info = text(&lab, "node_2", &["info", vip]);
    eprintln!("node_2's info {vip}:\n{info}");
    assert!(
        info.lines().any(|l| l.starts_with("Owner here:")
            && l.contains(&ctr_mac)
            && l.contains("presence present")),
        "node_2 does not name the container {ctr_mac} as the present owner:\n{info}"
    );

    // The client's pings are answered by the container (steered to node_2).
    let warm = start_probe_in(&mut lab, &cli, "warm", 100, vip);
    let r = finish_probe(&mut lab, &warm);
    eprintln!("before the fault: {} of {} answered", r.received, r.sent);
    assert!(
        r.received * 10 >= r.sent * 9,
        "the container behind node_2 does not answer the client: {r:?}\n{}",
        text(&lab, "node_2", &["info", vip])
    );
    let served = vip_status(&lab, "node_4", vip)
        .and_then(|v| {
            v["holders"]
                .as_array()?
                .iter()
                .find(|h| h["name"] == "node_2")
                .and_then(|h| h["flows"].as_u64())
        })
        .unwrap_or(0);
    assert!(served > 0, "node_4 steers no flow to node_2");

    // The container loses the address: presence withdraws node_2's VIP.
    let probe = start_probe_in(&mut lab, &cli, "presence", 400, vip);
    std::thread::sleep(Duration::from_millis(1000));
    lab.must_in(
        &ctr,
        &["ip", "addr", "del", &station_addr(vip), "dev", "eth0"],
    );
    let gone = lab.wait(Duration::from_secs(3), |lab| {
        !offered(lab, "node_4", "node_2", vip)
    });
    eprintln!("node_4 saw node_2's VIP withdrawn {gone:?} after the address went");
    let r = finish_probe(&mut lab, &probe);
    eprintln!(
        "presence failover: outage {} ms by seq ({:.0} ms wall), lost {} ({} of {} answered)",
        r.outage_ms, r.outage_wall_ms, r.lost, r.received, r.sent
    );
    assert!(
        gone.is_some(),
        "node_2 still offers the VIP:\n{}",
        text(&lab, "node_2", &["info", vip])
    );
    assert_presence_moved_it_to_node_3(&lab, vip, &r);

    // The address comes back: node_2 offers the VIP again.
    lab.must_in(
        &ctr,
        &["ip", "addr", "add", &station_addr(vip), "dev", "eth0"],
    );
    let back = lab.wait(Duration::from_secs(5), |lab| {
        offered(lab, "node_4", "node_2", vip)
    });
    eprintln!("node_2 offered the VIP again {back:?} after the address returned");
    assert!(back.is_some(), "node_2 does not offer the VIP again");
    eprintln!("presence failover of {vip} ({tag}): {:?}", t0.elapsed());
}

/// `meshd_dropped_total{reason="vip_REASON"}` on `node` (its VIP counters).
pub fn vip_counter(lab: &Lab, node: &str, reason: &str) -> u64 {
    let out = lab.exec(
        node,
        &[
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9655/metrics',timeout=5).read().decode())",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let key = format!("reason=\"vip_{reason}\"}}");
    text.lines()
        .find(|l| l.starts_with("meshd_dropped_total{") && l.contains(&key))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Pings the client may lose while the container serving it is deleted: the
/// holder hears of the owner leaving its bridge at once (rtnetlink), holds
/// its frames through a 20 ms confirmation, then sends them on to node_3
/// while the mesh learns of the withdrawal, so none should be lost; one is
/// margin for a ping the kernel answered neither before nor after (the
/// namespace tears down asynchronously). Presence alone lost 14-16.
pub const MAX_NSDEL_LOST: u32 = 1;

/// The container lab of the first test, up to the client's pings answered by
/// the container through node_2: returns (lab, container ns, client ns).
pub fn container_serving(tag: &str, vip: &str) -> (Lab, String, String) {
    let mut lab = owner_lab(tag, vip);
    let ctr = station_behind(&mut lab, "node_2", "c2", &station_addr(vip));
    let cli = station_behind(&mut lab, "node_4", "c4", client_addr(vip));
    let ready = lab.wait(Duration::from_secs(10), |lab| {
        eligible(lab, "node_4", "node_2", vip) && eligible(lab, "node_4", "node_3", vip)
    });
    assert!(
        ready.is_some(),
        "node_4 does not see both holders eligible:\n{}\nnode_2: {}",
        text(&lab, "node_4", &["dump", "vips"]),
        text(&lab, "node_2", &["info", vip])
    );
    // The VIP is on the container only, not on the holder itself.
    let own = lab.must_in(&lab.node("node_2").ns, &["ip", "-o", "addr", "show"]);
    assert!(
        !own.contains(&format!(" {vip}/")),
        "node_2 itself has the VIP:\n{own}"
    );
    let warm = start_probe_in(&mut lab, &cli, "warm", 100, vip);
    let r = finish_probe(&mut lab, &warm);
    assert!(
        r.received * 10 >= r.sent * 9,
        "the container behind node_2 does not answer the client: {r:?}\n{}",
        text(&lab, "node_2", &["info", vip])
    );
    (lab, ctr, cli)
}

/// The outage bound for a SIGKILL of the holder daemon (the IPv4 tests').
pub const MAX_KILL_OUTAGE_MS: u64 = 500;

/// With `vip` on the container only, a SIGKILL of node_2's daemon fails the
/// client over to node_3 within [`MAX_KILL_OUTAGE_MS`].
pub fn container_holder_sigkill(tag: &str, vip: &str) {
    let (mut lab, ctr, cli) = container_serving(tag, vip);
    let probe = start_probe_in(&mut lab, &cli, "kill", 400, vip);
    std::thread::sleep(Duration::from_millis(1000));
    lab.kill("node_2", nix::sys::signal::Signal::SIGKILL);
    let gone = lab.wait(Duration::from_secs(3), |lab| {
        vip_status(lab, "node_4", vip).is_some_and(|v| {
            v["holders"].as_array().is_some_and(|hs| {
                !hs.iter()
                    .any(|h| h["name"] == "node_2" && h["alive"] == true)
            })
        })
    });
    let r = finish_probe(&mut lab, &probe);
    eprintln!(
        "SIGKILL of node_2 (VIP in its container): node_4 saw it dead {gone:?} after the kill; \
         outage {} ms by seq ({:.0} ms wall), lost {} ({} of {} answered)",
        r.outage_ms, r.outage_wall_ms, r.lost, r.received, r.sent
    );
    assert!(
        gone.is_some(),
        "node_4 still sees node_2 alive:\n{}",
        text(&lab, "node_4", &["dump", "vips"])
    );
    assert!(r.lost > 0, "the kill did not touch the flow: {r:?}");
    assert!(
        r.tail_answered(100),
        "the client did not fail over to node_3: {r:?}\n{}",
        text(&lab, "node_4", &["info", vip])
    );
    assert!(
        r.outage_ms <= MAX_KILL_OUTAGE_MS && r.outage_wall_ms <= MAX_KILL_OUTAGE_MS as f64,
        "outage over {MAX_KILL_OUTAGE_MS} ms: {r:?}"
    );
    // node_3 serves now; the container (still holding the address) is cut off.
    let v = vip_status(&lab, "node_4", vip).expect("dump vips");
    let n3 = v["holders"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["name"] == "node_3"))
        .and_then(|h| h["flows"].as_u64())
        .unwrap_or(0);
    assert!(n3 > 0, "node_4 steers no flow to node_3:\n{v:#}");
    let still = lab.must_in(&ctr, &["ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(still.contains(vip), "{still}");
}

/// With `vip` on the container only, `ip netns del` of the container has
/// node_2 withdraw its VIP within a second, with at most
/// [`MAX_NSDEL_LOST`] pings lost and every re-steered frame delivered.
pub fn container_namespace_deleted(tag: &str, vip: &str) {
    let (mut lab, ctr, cli) = container_serving(tag, vip);
    let probe = start_probe_in(&mut lab, &cli, "nsdel", 400, vip);
    std::thread::sleep(Duration::from_millis(1000));
    let t = Instant::now();
    netns::must("ip", &["netns", "del", &ctr]);
    let deleted = t.elapsed();
    let gone = lab.wait(Duration::from_secs(3), |lab| {
        !offered(lab, "node_4", "node_2", vip)
    });
    let since_del = t.elapsed();
    let r = finish_probe(&mut lab, &probe);
    eprintln!(
        "container namespace deleted (ip netns del took {deleted:?}): node_4 saw node_2's VIP \
         withdrawn {gone:?} after the deletion returned; outage {} ms by seq ({:.0} ms wall), \
         lost {} ({} of {} answered)",
        r.outage_ms, r.outage_wall_ms, r.lost, r.received, r.sent
    );
    assert!(
        gone.is_some(),
        "node_2 still offers the VIP 3 s after its container went:\n{}",
        text(&lab, "node_2", &["info", vip])
    );
    assert!(
        since_del <= Duration::from_secs(1) + deleted,
        "withdrawn only {since_del:?} after `ip netns del` began (over 1 s):\n{}",
        text(&lab, "node_2", &["info", vip])
    );
    assert_presence_moved_it_to_node_3(&lab, vip, &r);
    let (reports, held, resteered, dropped, delivered) = (
        vip_counter(&lab, "node_2", "owner_vanish_reports"),
        vip_counter(&lab, "node_2", "vanish_held"),
        vip_counter(&lab, "node_2", "resteered"),
        vip_counter(&lab, "node_2", "resteer_dropped"),
        vip_counter(&lab, "node_3", "resteer_delivered"),
    );
    eprintln!(
        "node_2: vanish reports {reports}, frames held {held}, re-steered {resteered}, \
         dropped {dropped}; node_3 delivered {delivered} re-steered frames"
    );
    assert!(
        reports >= 1,
        "node_2 never heard its owner leave the bridge (rtnetlink):\n{}",
        text(&lab, "node_2", &["info", vip])
    );
    assert!(
        r.lost <= MAX_NSDEL_LOST,
        "the client lost {} pings (over {MAX_NSDEL_LOST}) across the container's deletion: {r:?}",
        r.lost
    );
    assert_eq!(
        delivered, resteered,
        "node_3 did not deliver every re-steered frame"
    );
    // node_2's daemon lives on; the VIP is just withdrawn.
    assert!(super::daemon_alive(&lab, "node_2"), "node_2's daemon died");
}

/// After node_2's container lost the VIP: the client's flow is answered by
/// node_3 within `MAX_OUTAGE_MS`, and node_2's `info` shows presence failing.
fn assert_presence_moved_it_to_node_3(lab: &Lab, vip: &str, r: &super::ProbeResult) {
    assert!(
        r.tail_answered(100),
        "the client did not fail over to node_3: {r:?}\n{}",
        text(lab, "node_4", &["info", vip])
    );
    assert!(
        r.outage_ms <= MAX_OUTAGE_MS,
        "outage {} ms over {MAX_OUTAGE_MS} ms: {r:?}",
        r.outage_ms
    );
    let info = text(lab, "node_2", &["info", vip]);
    assert!(
        info.contains("presence absent"),
        "node_2's info does not show presence failing:\n{info}"
    );
}
