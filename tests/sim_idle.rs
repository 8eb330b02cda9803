//! What an idle mesh costs with the adaptive detector: pairs that share no
//! VIP heartbeat every few seconds, a pair speeds up the moment one of them
//! holds a VIP, and a 300-node mesh forms, idles cheaply and declares no
//! false death. All on a virtual clock.

mod sim;

use meshd::node::{DownReason, Event, NodeConfig};
use meshd::switch::MacAddr;
use meshd::vip::LocalVip;
use sim::SimNet;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

type Counts = Rc<RefCell<HashMap<(usize, usize), u64>>>;

/// Counts every datagram the network carries, by unordered node pair.
fn count_pairs(net: &mut SimNet) -> Counts {
    let counts: Counts = Rc::default();
    let c = counts.clone();
    net.tap = Some(Box::new(move |from, to, _| {
        *c.borrow_mut()
            .entry((from.min(to), from.max(to)))
            .or_default() += 1;
        true
    }));
    counts
}

/// Datagrams per second between `a` and `b` (both directions) over the next `d`.
fn pair_rate(net: &mut SimNet, counts: &Counts, a: &str, b: &str, d: Duration) -> f64 {
    let (i, j) = (net.idx(a), net.idx(b));
    let key = (i.min(j), i.max(j));
    let before = counts.borrow().get(&key).copied().unwrap_or(0);
    net.run_for(d);
    let after = counts.borrow().get(&key).copied().unwrap_or(0);
    (after - before) as f64 / d.as_secs_f64()
}

fn timeouts(net: &SimNet) -> usize {
    net.nodes
        .iter()
        .flat_map(|n| n.events.iter())
        .filter(|(_, e)| {
            matches!(
                e,
                Event::PeerDown {
                    reason: DownReason::Timeout,
                    ..
                }
            )
        })
        .count()
}

/// `names[0]` is the hub every other node knows and connects to.
fn hub_mesh(seed: u64, names: &[String], tune: impl Fn(&mut NodeConfig)) -> SimNet {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = SimNet::new(seed, &refs);
    let mut cfg = net.config(refs[0], &[]);
    tune(&mut cfg);
    net.start(cfg, &refs[1..]);
    for n in &refs[1..] {
        let mut cfg = net.config(n, &[refs[0]]);
        tune(&mut cfg);
        net.start(cfg, &[refs[0]]);
    }
    net
}

fn vip() -> LocalVip {
    LocalVip {
        address: std::net::Ipv4Addr::new(10, 1, 1, 10).into(),
        prefix_len: 24,
        weight: 10,
        virtual_mac: MacAddr([0x02, 0x6d, 10, 1, 1, 10]),
        checked: false,
        owner: None,
        presence: None,
        policy: Default::default(),
    }
}

#[test]
fn idle_pairs_heartbeat_every_few_seconds_and_speed_up_with_a_vip() {
    let names: Vec<String> = ["hub", "a", "b", "c"].map(String::from).to_vec();
    // Before: every pair at HelloInterval, as without the detector.
    let mut old = hub_mesh(41, &names, |c| c.idle_hello_interval = c.hello_interval);
    old.run_for(Duration::from_secs(5));
    assert!(old.full_mesh(&names));
    let counts = count_pairs(&mut old);
    let fixed = pair_rate(&mut old, &counts, "a", "b", Duration::from_secs(60));

    let mut net = hub_mesh(41, &names, |_| {});
    net.run_for(Duration::from_secs(5));
    assert!(net.full_mesh(&names));
    let counts = count_pairs(&mut net);
    let idle = pair_rate(&mut net, &counts, "a", "b", Duration::from_secs(60));
    eprintln!("idle pair a-b: {fixed:.1} datagrams/s at a fixed rate, {idle:.2} adaptive");
    assert!(fixed >= 19.0, "{fixed}");
    // One heartbeat each way per 2 s, and in a mesh this small one digest
    // each way per 2 s as well (4 peers get one per round).
    assert!(idle <= 2.1, "{idle}");

    // c starts holding a VIP: c's heartbeats to every peer (which may now
    // steer to it) speed up within a round trip of its record; a's to c stay
    // slow (c does not steer to a), and pairs without c stay slow both ways.
    let mut cfg = net.config("c", &["hub"]);
    cfg.vips = vec![vip()];
    let t0 = net.now;
    net.reload("c", cfg);
    let sped_up = net
        .run_until_cond(Duration::from_secs(2), MS, |n| {
            !n.node("a").peers()["c"].detector.peer_slow()
        })
        .expect("c's heartbeats to a never sped up");
    eprintln!("c -> a at HelloInterval {sped_up:?} after c took a VIP");
    assert!(sped_up <= 10 * MS, "{sped_up:?}");
    net.run_for(Duration::from_secs(1));
    assert!(
        net.node("c").peers()["a"].detector.peer_slow(),
        "a heartbeats c fast though a holds no VIP"
    );
    let related = pair_rate(&mut net, &counts, "a", "c", Duration::from_secs(20));
    let still_idle = pair_rate(&mut net, &counts, "a", "b", Duration::from_secs(60));
    eprintln!("with the VIP: a-c {related:.1}/s, a-b {still_idle:.2}/s");
    // 10/s from c, one per 2 s from a, digests.
    assert!((9.5..=12.0).contains(&related), "{related}");
    assert!(still_idle <= 2.1, "{still_idle}");
    assert_eq!(timeouts(&net), 0);
    let _ = t0;
}

/// What forming an `n`-node mesh (all introduced by one hub, then 5 s to
/// settle) and 30 s of idle cost, checked: a full mesh, no false death, each pair at about one
/// heartbeat per 2 s each way (a fixed 100 ms would be 20 datagrams/s).
/// Returns the datagrams the formation took.
fn form_and_idle(n: usize) -> u64 {
    let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    let started = Instant::now();
    let mut net = hub_mesh(42, &names, |_| {});
    let formed = net
        .run_until_cond(Duration::from_secs(60), 100 * MS, |net| {
            net.full_mesh(&names)
        })
        .expect("no full mesh within 60 s");
    // Settling: once every session has an RTT, each node signs one more version
    // of its record that gives them all (relay choice reads them).
    net.run_for(Duration::from_secs(5));
    let formation = net.delivered;
    let counts = count_pairs(&mut net);
    let idle_for = Duration::from_secs(30);
    net.run_for(idle_for);
    let total: u64 = counts.borrow().values().sum();
    let per_node = total as f64 / idle_for.as_secs_f64() / n as f64;
    let pairs = (n * (n - 1) / 2) as f64;
    let per_pair = total as f64 / idle_for.as_secs_f64() / pairs;
    eprintln!(
        "{n} nodes: full mesh after {formed:?} ({formation} datagrams); idle: {per_node:.0} \
         datagrams/s sent per node, {per_pair:.2}/s per pair; {} false deaths; {:?} of real time",
        timeouts(&net),
        started.elapsed()
    );
    assert!(net.full_mesh(&names));
    assert_eq!(timeouts(&net), 0);
    // Heartbeats every 2 s each way, the detector's probes, digests.
    assert!(per_pair <= 1.6, "{per_pair}");
    formation
}

#[test]
fn sixty_nodes_form_a_mesh_with_paced_records_and_idle_cheaply() {
    let formation = form_and_idle(60);
    // Records flooded to everyone on every session change: 1.9 M datagrams
    // at 45 nodes. Paced and forwarded past the origin's neighbours: ~50 k.
    assert!(formation <= 200_000, "{formation} datagrams to form");
}

/// The 300-node mesh of issue 20: on this machine it takes about 11 minutes
/// of real time and 10 GB (300 nodes, 90,000 sessions, every datagram really
/// sealed and opened), too much for CI, so it runs by hand: `cargo test
/// --release --test sim_idle -- --ignored --nocapture` (`SIM_N=120` for a
/// quicker look). Measured 2026-12-04: full mesh after 5.6 s of virtual
/// time (13.2 M datagrams), idle 171 datagrams/s per node (1.14/s per
/// pair), 0 false deaths; 2026-12-05 (38decbd): 5.6 s (14.1 M), 201/s
/// (1.33/s per pair), 0 false deaths, peak RSS 10.4 GB.
#[test]
#[ignore = "11 minutes and 10 GB; run by hand, see the comment"]
fn three_hundred_nodes_form_a_mesh_idle_cheaply_and_never_die_falsely() {
    let n: usize = std::env::var("SIM_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    form_and_idle(n);
}

/// A VIP holder heartbeats every peer at HelloInterval; those heartbeats
/// leave together, on one grid of instants, so the holder wakes about ten
/// times a second for them, not once per peer and heartbeat. (At idle a
/// daemon's CPU is its wakeups: bench-scale's 30 nodes.)
#[test]
fn a_holders_heartbeats_leave_together() {
    let names: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
    let mut net = hub_mesh(43, &names, |_| {});
    let mut cfg = net.config("n3", &["n0"]);
    cfg.vips = vec![vip()];
    net.reload("n3", cfg);
    net.run_for(Duration::from_secs(5));
    assert!(net.full_mesh(&names));
    let holder = net.idx("n3");
    let sent = Rc::new(RefCell::new(0u64));
    let s = sent.clone();
    net.tap = Some(Box::new(move |from, _, _| {
        if from == holder {
            *s.borrow_mut() += 1;
        }
        true
    }));
    // Each virtual millisecond in which the holder sent anything is one wakeup.
    let (mut slots, mut seen) = (0u64, 0u64);
    let idle_for = Duration::from_secs(10);
    let _ = net.run_until_cond(idle_for, MS, |_| {
        let now = *sent.borrow();
        if now > seen {
            slots += 1;
            seen = now;
        }
        false
    });
    let per_s = |x: u64| x as f64 / idle_for.as_secs_f64();
    eprintln!(
        "holder n3: {:.1} datagrams/s in {:.1} sending instants/s",
        per_s(seen),
        per_s(slots)
    );
    // 7 peers at 10 heartbeats/s, and digests.
    assert!(per_s(seen) >= 68.0, "{}", per_s(seen));
    // One instant per HelloInterval for all 7, a few more for digests and answers.
    assert!(per_s(slots) <= 16.0, "{}", per_s(slots));
    assert_eq!(timeouts(&net), 0);
}

/// A node's timer wakes it only when it has something to do: at idle, a
/// node that holds no VIP in a mesh with three holders wakes for its own
/// heartbeats and digests, not once per heartbeat it receives (each moves
/// that peer's probe time later, and a wakeup at the old time does nothing).
#[test]
fn an_idle_node_wakes_only_to_send() {
    let names: Vec<String> = (0..30).map(|i| format!("n{i:02}")).collect();
    let mut net = hub_mesh(44, &names, |_| {});
    for h in ["n01", "n02", "n03"] {
        let mut cfg = net.config(h, &["n00"]);
        cfg.vips = vec![vip()];
        net.reload(h, cfg);
    }
    net.run_for(Duration::from_secs(20));
    assert!(net.full_mesh(&names));
    let idle_for = Duration::from_secs(20);
    let before: Vec<(u64, u64)> = net
        .nodes
        .iter()
        .map(|n| (n.wakeups, n.idle_wakeups))
        .collect();
    net.run_for(idle_for);
    let per_s = |x: u64| x as f64 / idle_for.as_secs_f64();
    for (i, n) in net.nodes.iter().enumerate() {
        let (w, idle) = (n.wakeups - before[i].0, n.idle_wakeups - before[i].1);
        eprintln!(
            "{}: {:.1} timer wakeups/s, {:.1} sent nothing",
            n.name,
            per_s(w),
            per_s(idle)
        );
        // Holders: one instant per HelloInterval for all their heartbeats.
        // The others: their slow heartbeats (one instant every few seconds)
        // and digests. Before heartbeats retimed their sender: 20 and 12/s.
        let holder = ["n01", "n02", "n03"].contains(&n.name.as_str());
        let most = if holder { 11.0 } else { 2.0 };
        assert!(per_s(w) <= most, "{}: {:.1} wakeups/s", n.name, per_s(w));
        assert!(
            per_s(idle) <= 1.0,
            "{}: {:.1} idle wakeups/s",
            n.name,
            per_s(idle)
        );
    }
    assert_eq!(timeouts(&net), 0);
}
