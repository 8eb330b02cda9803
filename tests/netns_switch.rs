//! End-to-end switch mode (needs root; creates its own network namespaces and
//! removes them): three real daemons with real TAP devices, `tinc-up`
//! assigning 10.1.1.N/24, beta and gamma knowing only alpha. Ping over the
//! overlay, an 8 MB TCP transfer, tinc's scripts on a kill, a return and a
//! stop, a container bridged behind one node, and junk frames from the TAP.
//!
//! Each test builds its own lab (unique tag), so they may run in parallel.

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["alpha", "beta", "gamma"];

/// The overlay address tinc-up gives `node` (alpha .1, beta .2, gamma .3).
fn overlay_ip(node: &str) -> String {
    let i = NODES.iter().position(|n| *n == node).expect("lab node") + 1;
    format!("10.1.1.{i}")
}

/// The script log of `node`: one line per script run.
fn log_path(lab: &Lab, node: &str) -> PathBuf {
    lab.dir.path().join(format!("{node}.log"))
}

fn log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(log_path(lab, node)).unwrap_or_default()
}

/// Three nodes with `Interface = mesh0`, tinc's scripts logging to
/// `LABDIR/NODE.log`, hosts/gamma-up and hosts/gamma-down on alpha. Not
/// started.
fn switch_lab(tag: &str) -> Lab {
    let lab = Lab::new(tag, &NODES);
    lab.init_all();
    lab.hub("alpha");
    for node in NODES {
        lab.conf(node, "Interface = mesh0");
        let log = log_path(&lab, node);
        let log = log.display();
        let ip = overlay_ip(node);
        lab.script(
            node,
            "tinc-up",
            &format!(
                "#!/bin/sh\n\
                 ip link set \"$INTERFACE\" up\n\
                 ip addr add {ip}/24 dev \"$INTERFACE\"\n\
                 echo \"tinc-up $NAME $INTERFACE $DEVICE\" >> {log}\n"
            ),
        );
        lab.script(
            node,
            "tinc-down",
            &format!("#!/bin/sh\necho \"tinc-down $NAME $INTERFACE\" >> {log}\n"),
        );
        for s in ["host-up", "host-down"] {
            lab.script(
                node,
                s,
                &format!("#!/bin/sh\necho \"{s} $NODE $REMOTEADDRESS $REMOTEPORT\" >> {log}\n"),
            );
        }
        for s in ["subnet-up", "subnet-down"] {
            lab.script(
                node,
                s,
                &format!("#!/bin/sh\necho \"{s} $NODE $REMOTEADDRESS $SUBNET $WEIGHT\" >> {log}\n"),
            );
        }
    }
    let log = log_path(&lab, "alpha");
    for s in ["up", "down"] {
        lab.script(
            "alpha",
            &format!("hosts/gamma-{s}"),
            &format!(
                "#!/bin/sh\necho \"hosts/gamma-{s} $NODE $REMOTEADDRESS $REMOTEPORT\" >> {}\n",
                log.display()
            ),
        );
    }
    lab
}

fn full_mesh(lab: &Lab) -> bool {
    NODES.iter().all(|n| {
        lab.reachable(n)
            .is_some_and(|r| NODES.iter().all(|m| r.iter().any(|x| x == m)))
    })
}

/// Starts all three and waits for the full mesh.
fn start_all(lab: &mut Lab) {
    for n in NODES {
        lab.start(n);
    }
    let took = lab
        .wait(Duration::from_secs(15), full_mesh)
        .expect("no full mesh within 15 s");
    eprintln!("full mesh after {took:?}");
}

/// `ping -c COUNT -i 0.2 -W 2 TARGET` from `node`'s namespace.
fn ping(lab: &Lab, ns: &str, target: &str, count: u32) -> bool {
    let out = lab.exec_in(
        ns,
        &[
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "2",
            target,
        ],
    );
    if !out.status.success() {
        eprintln!(
            "ping {target} from {ns} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// An interface's MAC address inside a namespace.
fn mac_of(lab: &Lab, ns: &str, ifname: &str) -> String {
    lab.must_in(ns, &["cat", &format!("/sys/class/net/{ifname}/address")])
        .trim()
        .to_string()
}

fn ctl_text(lab: &Lab, node: &str, args: &[&str]) -> String {
    let out = lab.ctl(node, args);
    assert!(
        out.status.success(),
        "{node} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dump subnets --json` of `node`: (subnet, owner, origin) triples.
fn subnets(lab: &Lab, node: &str) -> Vec<(String, String, String)> {
    let text = ctl_text(lab, node, &["dump", "subnets", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("dump subnets --json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (f("subnet"), f("owner"), f("origin"))
        })
        .collect()
}

fn has_subnet(lab: &Lab, node: &str, subnet: &str, owner: &str) -> bool {
    subnets(lab, node)
        .iter()
        .any(|(s, o, _)| s.eq_ignore_ascii_case(subnet) && o == owner)
}

/// The `rx P B tx P B` counters of `peer` in `node`'s `dump nodes`.
fn counters(lab: &Lab, node: &str, peer: &str) -> [u64; 4] {
    let text = ctl_text(lab, node, &["dump", "nodes"]);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{peer} ")))
        .unwrap_or_else(|| panic!("{peer} not in dump nodes of {node}:\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = |key: &str| {
        let i = words
            .iter()
            .position(|w| *w == key)
            .unwrap_or_else(|| panic!("no {key} in {line}"));
        [
            words[i + 1].parse::<u64>().expect("packets"),
            words[i + 2].parse::<u64>().expect("bytes"),
        ]
    };
    let (rx, tx) = (at("rx"), at("tx"));
    [rx[0], rx[1], tx[0], tx[1]]
}

fn alive(lab: &Lab, node: &str) -> bool {
    lab.pid(node).is_some_and(|pid| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
    })
}

#[test]
fn ping_between_every_pair_over_the_overlay() {
    require_netns!();
    let t0 = Instant::now();
    netns::need_tools(&["ping"]);
    let mut lab = switch_lab("sp");
    start_all(&mut lab);
    for from in NODES {
        for to in NODES {
            if from != to {
                let ns = lab.node(from).ns.clone();
                assert!(
                    ping(&lab, &ns, &overlay_ip(to), 3),
                    "{from} cannot ping {to}"
                );
            }
        }
    }
    let text = ctl_text(&lab, "alpha", &["dump", "subnets"]);
    eprintln!("alpha's dump subnets:\n{text}");
    for peer in ["beta", "gamma"] {
        let mac = mac_of(&lab, &lab.node(peer).ns, "mesh0");
        assert!(
            has_subnet(&lab, "alpha", &mac, peer),
            "alpha does not list {peer}'s TAP MAC {mac}:\n{text}"
        );
        let ip = overlay_ip(peer);
        assert!(
            has_subnet(&lab, "alpha", &ip, peer),
            "alpha does not list {ip} owner {peer}:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.trim() == format!("{} owner {peer}", mac.to_lowercase())),
            "no text line `{mac} owner {peer}`:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.trim() == format!("{ip} owner {peer}")),
            "no text line `{ip} owner {peer}`:\n{text}"
        );
    }
    // alpha's own TAP MAC is not attributed to a peer.
    let own = mac_of(&lab, &lab.node("alpha").ns, "mesh0");
    assert!(
        !subnets(&lab, "alpha")
            .iter()
            .any(|(s, o, _)| s.eq_ignore_ascii_case(&own) && (o == "beta" || o == "gamma")),
        "alpha's own MAC attributed to a peer:\n{text}"
    );
    let info = ctl_text(&lab, "alpha", &["info", "10.1.1.3"]);
    eprintln!("alpha's info 10.1.1.3:\n{info}");
    assert!(
        info.lines()
            .any(|l| l.starts_with("Owner:") && l.split_whitespace().nth(1) == Some("gamma")),
        "info 10.1.1.3 does not name gamma:\n{info}"
    );
    let gamma_mac = mac_of(&lab, &lab.node("gamma").ns, "mesh0");
    assert!(
        info.to_lowercase().contains(&gamma_mac.to_lowercase()),
        "info 10.1.1.3 does not show gamma's MAC {gamma_mac}:\n{info}"
    );
    let c = counters(&lab, "alpha", "beta");
    eprintln!(
        "alpha's counters for beta: rx {} {} tx {} {}",
        c[0], c[1], c[2], c[3]
    );
    assert!(
        c.iter().all(|x| *x > 0),
        "rx/tx for beta not all nonzero: {c:?}"
    );
    // 3 echo requests + 3 replies each way between alpha and beta at least.
    assert!(c[0] >= 6 && c[2] >= 6, "too few frames counted: {c:?}");
    eprintln!(
        "ping_between_every_pair_over_the_overlay: {:?}",
        t0.elapsed()
    );
}

fn listening(lab: &Lab, ns: &str, port: u16) -> bool {
    let out = lab.exec_in(ns, &["ss", "-Hltn", &format!("sport = :{port}")]);
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn tcp_transfer_is_intact() {
    require_netns!();
    let t0 = Instant::now();
    netns::need_tools(&["nc.openbsd", "iperf3", "ss"]);
    let mut lab = switch_lab("st");
    start_all(&mut lab);
    let gamma_ns = lab.node("gamma").ns.clone();
    let beta_ns = lab.node("beta").ns.clone();

    let mut data = vec![0u8; 8 << 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    let took = lab.tcp_transfer(
        &beta_ns,
        &gamma_ns,
        &overlay_ip("gamma"),
        5001,
        &data,
        Duration::from_secs(20),
    );
    eprintln!(
        "8 MiB beta -> gamma intact in {took:?} ({:.1} Mbit/s)",
        (data.len() * 8) as f64 / took.as_secs_f64() / 1e6
    );

    // iperf3 for 2 s, gamma server, beta client.
    let srv = lab.spawn_in(
        &gamma_ns,
        &["iperf3", "-s", "-1", "-p", "5201"],
        None,
        Some(&lab.dir.path().join("iperf3-server.txt")),
    );
    lab.wait(Duration::from_secs(5), |lab| {
        listening(lab, &gamma_ns, 5201)
    })
    .expect("iperf3 server not listening");
    let out = lab.exec_in(
        &beta_ns,
        &[
            "iperf3",
            "-c",
            &overlay_ip("gamma"),
            "-p",
            "5201",
            "-t",
            "2",
            "-J",
        ],
    );
    assert!(
        out.status.success(),
        "iperf3 client: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 -J");
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("sum_received.bits_per_second");
    let retr = v["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    eprintln!(
        "iperf3 beta -> gamma over meshd: {:.1} Mbit/s, {retr} retransmits",
        bps / 1e6
    );
    assert!(bps > 0.0, "iperf3 reported no throughput");
    let _ = lab.wait_child(srv, Duration::from_secs(5));
    assert!(NODES.iter().all(|n| alive(&lab, n)), "a daemon died");
    eprintln!("tcp_transfer_is_intact: {:?}", t0.elapsed());
}

fn lines_with(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn host_scripts_follow_a_kill_and_a_return() {
    require_netns!();
    let t0 = Instant::now();
    let mut lab = switch_lab("sh");
    for n in NODES {
        lab.start(n);
        // tinc-up ran before `start` returned: the address is there already.
        let ns = lab.node(n).ns.clone();
        let addr = lab.must_in(&ns, &["ip", "-o", "addr", "show", "dev", "mesh0"]);
        let ip = overlay_ip(n);
        assert!(
            addr.contains(&format!("{ip}/24")),
            "{n}: mesh0 has no {ip} when start returned: {addr}"
        );
        let link = lab.must_in(&ns, &["ip", "-o", "link", "show", "dev", "mesh0"]);
        assert!(link.contains("mtu 1400"), "{n}: {link}");
        assert!(
            log(&lab, n).contains(&format!("tinc-up {n} mesh0 /dev/net/tun")),
            "{n}: tinc-up did not log NAME INTERFACE DEVICE: {}",
            log(&lab, n)
        );
    }
    lab.wait(Duration::from_secs(15), full_mesh)
        .expect("no full mesh within 15 s");
    lab.wait(Duration::from_secs(5), |lab| {
        log(lab, "alpha").contains("host-up gamma 192.0.2.3 655")
            && log(lab, "alpha").contains("hosts/gamma-up gamma 192.0.2.3 655")
    })
    .unwrap_or_else(|| panic!("no host-up for gamma on alpha:\n{}", log(&lab, "alpha")));
    let first = log(&lab, "alpha");
    assert!(first.starts_with("tinc-up "), "tinc-up not first:\n{first}");
    let up_at = first.find("host-up gamma").expect("host-up gamma");
    let hosts_up_at = first.find("hosts/gamma-up gamma").expect("hosts/gamma-up");
    assert!(
        up_at < hosts_up_at,
        "hosts/gamma-up before host-up:\n{first}"
    );

    // alpha learns gamma's IP binding (ARP through the mesh) before the kill.
    let alpha_ns = lab.node("alpha").ns.clone();
    assert!(
        ping(&lab, &alpha_ns, "10.1.1.3", 1),
        "alpha cannot ping gamma"
    );

    // SIGKILL gamma: host-down then hosts/gamma-down on alpha, with gamma's
    // last address. No VIP here: alpha-gamma is an idle pair, whose
    // detection deadline is 4.3-8.3 s (PROTOCOL §5.1).
    let killed = Instant::now();
    lab.kill("gamma", nix::sys::signal::Signal::SIGKILL);
    let took = lab
        .wait(Duration::from_secs(12), |lab| {
            log(lab, "alpha").contains("hosts/gamma-down gamma 192.0.2.3 655")
        })
        .unwrap_or_else(|| {
            panic!(
                "no hosts/gamma-down on alpha 12 s after SIGKILL:\n{}",
                log(&lab, "alpha")
            )
        });
    eprintln!("host-down for gamma logged on alpha {took:?} after SIGKILL");
    let text = log(&lab, "alpha");
    let down_at = text
        .find("host-down gamma 192.0.2.3 655")
        .expect("host-down");
    assert!(
        down_at < text.find("hosts/gamma-down").expect("hosts/gamma-down"),
        "hosts/gamma-down before host-down:\n{text}"
    );
    // beta also saw gamma go. beta never sent to gamma, so its own idle
    // deadline applies (4.3-8.3 s after the kill, PROTOCOL §5.1), whatever
    // alpha found: wait out the same 12 s from the kill.
    let left = Duration::from_secs(12).saturating_sub(killed.elapsed());
    lab.wait(left.max(Duration::from_secs(1)), |lab| {
        log(lab, "beta").contains("host-down gamma 192.0.2.3 655")
    })
    .unwrap_or_else(|| panic!("no host-down for gamma on beta:\n{}", log(&lab, "beta")));
    eprintln!(
        "host-down for gamma logged on beta {:?} after SIGKILL",
        killed.elapsed()
    );
    // The TAP of the killed daemon is gone (the kernel removes it with the last fd).
    let gamma_ns = lab.node("gamma").ns.clone();
    lab.wait(Duration::from_secs(2), |lab| {
        !lab.exec_in(&gamma_ns, &["ip", "link", "show", "mesh0"])
            .status
            .success()
    })
    .expect("gamma's TAP survived SIGKILL");
    eprintln!("kill handled in {:?}", killed.elapsed());
    // With gamma dead, nobody answers ARP for 10.1.1.3: alpha's meshd knows
    // the binding but must not answer for a dead owner.
    lab.must_in(&alpha_ns, &["ip", "neigh", "flush", "dev", "mesh0"]);
    let out = lab.exec_in(&alpha_ns, &["ping", "-c", "1", "-W", "1", "10.1.1.3"]);
    assert!(!out.status.success(), "10.1.1.3 answered with gamma dead");
    let neigh = lab.must_in(
        &alpha_ns,
        &["ip", "neigh", "show", "10.1.1.3", "dev", "mesh0"],
    );
    assert!(
        !neigh.contains("lladdr"),
        "alpha's kernel got a MAC for dead gamma's 10.1.1.3: {neigh}"
    );

    // gamma returns: host-up gamma again on alpha (a second one).
    lab.start("gamma");
    lab.wait(Duration::from_secs(10), |lab| {
        let t = log(lab, "alpha");
        lines_with(&t, "host-up gamma 192.0.2.3 655") == 2
            && lines_with(&t, "hosts/gamma-up gamma 192.0.2.3 655") == 2
    })
    .unwrap_or_else(|| {
        panic!(
            "no second host-up for gamma on alpha:\n{}",
            log(&lab, "alpha")
        )
    });
    lab.wait(Duration::from_secs(10), full_mesh)
        .expect("no full mesh after gamma's return");
    // The returned gamma has a new TAP (a new MAC): alpha reaches it again.
    let t = Instant::now();
    lab.wait(Duration::from_secs(10), |lab| {
        lab.exec_in(&alpha_ns, &["ping", "-c", "1", "-W", "1", "10.1.1.3"])
            .status
            .success()
    })
    .expect("alpha cannot ping gamma after its return");
    eprintln!("alpha pings the returned gamma after {:?}", t.elapsed());
    eprintln!("alpha's script log:\n{}", log(&lab, "alpha"));

    // A graceful stop of beta: its tinc-down runs (last), the TAP is gone,
    // and the others run host-down for beta.
    let beta_ns = lab.node("beta").ns.clone();
    let out = lab.ctl("beta", &["stop"]);
    assert!(
        out.status.success(),
        "stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = log(&lab, "beta");
    eprintln!("beta's script log:\n{text}");
    assert_eq!(
        text.lines().last(),
        Some("tinc-down beta mesh0"),
        "tinc-down did not run last at stop:\n{text}"
    );
    assert!(
        text.contains("host-down alpha 192.0.2.1 655")
            && text.contains("host-down gamma 192.0.2.3 655"),
        "beta ran no host-down for its peers at stop:\n{text}"
    );
    assert!(
        !lab.exec_in(&beta_ns, &["ip", "link", "show", "mesh0"])
            .status
            .success(),
        "beta's TAP still exists after stop returned"
    );
    lab.wait(Duration::from_secs(5), |lab| {
        log(lab, "alpha").contains("host-down beta 192.0.2.2 655")
    })
    .unwrap_or_else(|| panic!("no host-down for beta on alpha:\n{}", log(&lab, "alpha")));
    eprintln!(
        "host_scripts_follow_a_kill_and_a_return: {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_container_behind_a_bridge_on_one_node_is_reachable() {
    require_netns!();
    let t0 = Instant::now();
    netns::need_tools(&["ping", "bridge"]);
    let mut lab = switch_lab("sc");
    start_all(&mut lab);
    let g = lab.node("gamma").ns.clone();
    // gamma's TAP becomes a port of bridge br-c; gamma's overlay address moves to the bridge.
    lab.must_in(&g, &["ip", "link", "add", "br-c", "type", "bridge"]);
    lab.must_in(&g, &["ip", "link", "set", "mesh0", "master", "br-c"]);
    lab.must_in(&g, &["ip", "addr", "del", "10.1.1.3/24", "dev", "mesh0"]);
    lab.must_in(&g, &["ip", "addr", "add", "10.1.1.3/24", "dev", "br-c"]);
    lab.must_in(&g, &["ip", "link", "set", "br-c", "up"]);
    // The "container": a namespace on br-c through a veth pair. Both ends get
    // MTU 1400, the overlay's (the TAP's InterfaceMTU): a bridge drops frames
    // larger than the egress port's MTU silently (no ICMP "fragmentation
    // needed", it is layer 2), so a container at 1500 would have its full-size
    // TCP segments vanish at the TAP — a path-MTU black hole.
    let c = lab.add_netns("ctr");
    lab.must_in(
        &g,
        &[
            "ip", "link", "add", "vc0", "mtu", "1400", "type", "veth", "peer", "name", "eth0",
            "mtu", "1400", "netns", &c,
        ],
    );
    lab.must_in(&g, &["ip", "link", "set", "vc0", "master", "br-c", "up"]);
    lab.must_in(&c, &["ip", "addr", "add", "10.1.1.50/24", "dev", "eth0"]);
    lab.must_in(&c, &["ip", "link", "set", "eth0", "up"]);
    let ctr_mac = mac_of(&lab, &c, "eth0");
    // Wait until the bridge port forwards (no STP, but the port starts in
    // "disabled" until carrier).
    lab.wait(Duration::from_secs(5), |lab| {
        lab.exec_in(&g, &["bridge", "link", "show", "dev", "vc0"])
            .stdout
            .windows(10)
            .any(|w| w == b"forwarding")
    })
    .expect("vc0 not forwarding on br-c");
    for from in ["alpha", "beta"] {
        let ns = lab.node(from).ns.clone();
        assert!(
            ping(&lab, &ns, "10.1.1.50", 3),
            "{from} cannot ping the container"
        );
    }
    // The container reaches the mesh too, and gamma itself still works through br-c.
    assert!(ping(&lab, &c, "10.1.1.1", 3), "container cannot ping alpha");
    let a = lab.node("alpha").ns.clone();
    assert!(
        ping(&lab, &a, "10.1.1.3", 3),
        "alpha cannot ping gamma on br-c"
    );
    // A full-size (1400-byte MTU) packet from alpha to the container, DF set.
    let out = lab.exec_in(
        &a,
        &[
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1372",
            "10.1.1.50",
        ],
    );
    assert!(
        out.status.success(),
        "1400-byte ping to the container failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = ctl_text(&lab, "alpha", &["dump", "subnets"]);
    eprintln!("alpha's dump subnets:\n{text}");
    assert!(
        has_subnet(&lab, "alpha", &ctr_mac, "gamma"),
        "alpha does not list the container's MAC {ctr_mac} owned by gamma:\n{text}"
    );
    assert!(
        has_subnet(&lab, "alpha", "10.1.1.50", "gamma"),
        "alpha does not bind 10.1.1.50 to gamma:\n{text}"
    );
    let info = ctl_text(&lab, "beta", &["info", "10.1.1.50"]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Owner:") && l.split_whitespace().nth(1) == Some("gamma")),
        "beta's info 10.1.1.50 does not name gamma:\n{info}"
    );
    eprintln!(
        "a_container_behind_a_bridge_on_one_node_is_reachable: {:?}",
        t0.elapsed()
    );
}

/// Writes raw frames to `mesh0` in `ns` with an AF_PACKET socket (they reach
/// the daemon as frames read from its TAP). `frames` are hex strings; all
/// must be accepted by the kernel (which refuses frames shorter than the
/// 14-byte Ethernet header and longer than MTU + 14).
fn inject(lab: &Lab, ns: &str, frames: &[String]) {
    let list = frames
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>()
        .join(",");
    let code = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('mesh0', 0))\n\
         for f in [{list}]:\n\
         \x20   s.send(bytes.fromhex(f))\n"
    );
    let out = lab.exec_in(ns, &["python3", "-c", &code]);
    assert!(
        out.status.success(),
        "python3 inject: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Python: prints "ready", then for SECONDS the source MAC (hex) of every
/// frame that arrives on IFACE (argv: IFACE SECONDS).
const SNIFFER: &str = "import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(0.1)
print('ready')
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        f, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING:
        print(f[6:12].hex())
";

#[test]
fn bad_frames_from_the_tap_do_not_hurt() {
    require_netns!();
    let t0 = Instant::now();
    netns::need_tools(&["ping", "python3"]);
    let mut lab = switch_lab("sb");
    start_all(&mut lab);
    let beta_ns = lab.node("beta").ns.clone();
    let alpha_ns = lab.node("alpha").ns.clone();
    assert!(
        ping(&lab, &beta_ns, "10.1.1.3", 2),
        "no ping before the junk"
    );
    let alpha_mac = mac_of(&lab, &lab.node("alpha").ns, "mesh0").replace(':', "");
    let gamma_mac = mac_of(&lab, &lab.node("gamma").ns, "mesh0").replace(':', "");
    let bcast = "ffffffffffff";
    let payload = "00".repeat(46);
    let frames = vec![
        // runts: a bare 14-byte header, one byte more, 20 bytes (the kernel
        // refuses to send anything shorter than the header on Ethernet)
        format!("{bcast}0200000000010800"),
        format!("{bcast}020000000001080045"),
        format!("{gamma_mac}02000000000108004500000000ff"),
        // multicast source MAC
        format!("{bcast}01005e0000010800{payload}"),
        // broadcast source MAC
        format!("{gamma_mac}{bcast}0800{payload}"),
        // all-zero source MAC
        format!("{bcast}0000000000000800{payload}"),
        // a source claiming alpha's MAC (a MAC move to beta) unicast to gamma
        format!("{gamma_mac}{alpha_mac}88b5{payload}"),
        // a truncated ARP packet and a truncated 802.1Q tag
        format!("{bcast}0200000000020806000108000604"),
        format!("{bcast}0200000000038100"),
        // a full-size frame (MTU 1400 + header) with garbage IPv4 inside
        format!("{bcast}0200000000040800{}", "ff".repeat(1400)),
        // an IPv6 ND neighbour advertisement cut short, and an 802.3 length frame
        format!("333300000001020000000005{}", "86dd6000000000203aff"),
        format!("{bcast}0200000000060026{}", "aa".repeat(38)),
    ];
    // A sniffer on alpha's TAP records the source MAC of every frame meshd
    // writes there while the junk goes in at beta.
    let seen_path = lab.dir.path().join("alpha-sources.txt");
    let sniffer = lab.spawn_in(
        &alpha_ns,
        &["python3", "-u", "-c", SNIFFER, "mesh0", "4"],
        None,
        Some(&seen_path),
    );
    lab.wait(Duration::from_secs(5), |lab| {
        std::fs::read_to_string(lab.dir.path().join("alpha-sources.txt"))
            .is_ok_and(|t| t.starts_with("ready"))
    })
    .expect("sniffer on alpha not ready");
    // The frames, several times over.
    for _ in 0..5 {
        inject(&lab, &beta_ns, &frames);
    }
    let st = lab
        .wait_child(sniffer, Duration::from_secs(10))
        .expect("sniffer did not end");
    assert!(st.success(), "sniffer: {st}");
    let seen = std::fs::read_to_string(&seen_path).expect("sniffer output");
    let sources: Vec<&str> = seen.lines().skip(1).collect();
    for bad in ["01005e000001", "000000000000", "ffffffffffff"] {
        assert!(
            !sources.contains(&bad),
            "a frame with the invalid source MAC {bad} reached alpha's TAP"
        );
    }
    // Positive controls: well-formed broadcasts from beta's TAP were flooded to alpha.
    for good in ["020000000004", "020000000006"] {
        assert!(
            sources.contains(&good),
            "the valid broadcast from {good} did not reach alpha's TAP: {sources:?}"
        );
    }
    for n in NODES {
        assert!(alive(&lab, n), "{n}'s daemon died after junk frames");
    }
    for n in NODES {
        let text = ctl_text(&lab, n, &["dump", "subnets"]);
        for bad in ["01:00:5e:00:00:01", "00:00:00:00:00:00"] {
            assert!(
                !text.lines().any(|l| l.starts_with(bad)),
                "{n} learned the invalid source MAC {bad}:\n{text}"
            );
        }
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("ff:ff:ff:ff:ff:ff") && !l.contains("(broadcast)")),
            "{n} learned the broadcast MAC as a node's:\n{text}"
        );
    }
    // The spoofed alpha MAC may have moved to beta for a moment; alpha's next
    // frame moves it back. Pings among all pairs still work.
    let a = lab.node("alpha").ns.clone();
    let g = lab.node("gamma").ns.clone();
    assert!(ping(&lab, &a, "10.1.1.2", 3), "alpha -> beta after junk");
    assert!(ping(&lab, &a, "10.1.1.3", 3), "alpha -> gamma after junk");
    assert!(ping(&lab, &g, "10.1.1.1", 3), "gamma -> alpha after junk");
    assert!(
        ping(&lab, &beta_ns, "10.1.1.3", 3),
        "beta -> gamma after junk"
    );
    assert!(lab.reachable("alpha").is_some(), "alpha's control socket");
    eprintln!("bad_frames_from_the_tap_do_not_hurt: {:?}", t0.elapsed());
}
