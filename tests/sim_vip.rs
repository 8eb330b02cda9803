//! Shared-VIP failover in a simulated network with a virtual clock: the
//! reference scenario (node_1 hub, node_2..4 serve 10.1.1.10, node_5 is a
//! client probing it every 10 ms). Kill, freeze, partition a holder or fail
//! its health check, and measure the outage the client's flow sees; a
//! graceful stop loses nothing; flows spread; weights give active/backup;
//! flapping is damped; a returning holder takes no established flow.

mod sim;

use sim::lab::*;

use meshd::node::Event;
use sim::SimNet;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// A flow that expects answers detects a dead holder on demand: two probes
/// and a suspicion 75 ms after the first unanswered frame (the detector's
/// floor at LAN RTTs), then the next probe of the flow goes to another
/// holder. The median target (100 ms) with the probe spacing as slack;
/// the old bound was DeadInterval + one HelloInterval (400 ms).
const BOUND: Duration = Duration::from_millis(100);

fn hard_fault(seed: u64, fault: impl Fn(&mut SimNet, &str)) -> (Duration, u32) {
    let mut lab = lab(seed, [10, 10, 10], |_| {});
    lab.probe_for(Duration::from_millis(200), 4000);
    let victim = name_of(lab.holder_of_port(4000));
    fault(&mut lab.net, victim);
    let range = lab.probe_for(Duration::from_secs(2), 4000);
    let (outage, lost) = lab.outage(range);
    assert_ne!(name_of(lab.holder_of_port(4000)), victim);
    (outage, lost)
}

#[test]
fn arp_for_the_vip_is_answered_locally_with_the_virtual_mac() {
    let mut lab = lab(1, [10, 10, 10], |_| {});
    let mut req = Vec::new();
    req.extend_from_slice(&[0xff; 6]);
    req.extend_from_slice(&CLIENT_MAC);
    req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    req.extend_from_slice(&CLIENT_MAC);
    req.extend_from_slice(&CLIENT_IP.octets());
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&VIP.octets());
    for n in NAMES {
        lab.net.take_tap_rx(n);
    }
    lab.net.tap_send("node_5", &req);
    lab.net.run_for(Duration::from_millis(20));
    let got = lab.net.take_tap_rx("node_5");
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][22..28], &VMAC, "answered with the virtual MAC");
    assert_eq!(&got[0][6..12], &VMAC);
    for n in &NAMES[..4] {
        assert!(lab.net.take_tap_rx(n).is_empty(), "the request reached {n}");
    }
}

#[test]
fn a_holders_own_arp_never_teaches_its_real_mac() {
    let mut lab = lab(2, [10, 10, 10], |_| {});
    // node_3's kernel asks "who-has 10.1.1.2 tell 10.1.1.10" from its own MAC.
    let me = tap_mac(3);
    let mut req = Vec::new();
    req.extend_from_slice(&[0xff; 6]);
    req.extend_from_slice(&me);
    req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    req.extend_from_slice(&me);
    req.extend_from_slice(&VIP.octets());
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&CLIENT_IP.octets());
    lab.net.take_tap_rx("node_5");
    lab.net.tap_send("node_3", &req);
    lab.net.run_for(Duration::from_millis(20));
    let got = lab.net.take_tap_rx("node_5");
    assert_eq!(got.len(), 1, "a cache miss floods");
    assert_eq!(&got[0][6..12], &VMAC, "Ethernet source rewritten");
    assert_eq!(&got[0][22..28], &VMAC, "ARP sender rewritten");
    // The client's answer to the virtual MAC reaches node_3's kernel, addressed to its TAP.
    let mut reply = Vec::new();
    reply.extend_from_slice(&VMAC);
    reply.extend_from_slice(&CLIENT_MAC);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    reply.extend_from_slice(&CLIENT_MAC);
    reply.extend_from_slice(&CLIENT_IP.octets());
    reply.extend_from_slice(&VMAC);
    reply.extend_from_slice(&VIP.octets());
    lab.net.take_tap_rx("node_3");
    lab.net.tap_send("node_5", &reply);
    lab.net.run_for(Duration::from_millis(20));
    let got = lab.net.take_tap_rx("node_3");
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][0..6], &me, "delivered to node_3's own MAC");
}

#[test]
fn sigkill_of_the_serving_holder_costs_at_most_dead_interval_plus_a_hello() {
    let (outage, lost) = hard_fault(3, |net, v| net.kill(v));
    eprintln!("kill: outage {outage:?}, {lost} probes lost");
    assert!(outage <= BOUND, "outage {outage:?}");
}

#[test]
fn a_frozen_holder_is_failed_over_as_fast() {
    let (outage, lost) = hard_fault(4, |net, v| net.freeze(v));
    eprintln!("freeze: outage {outage:?}, {lost} probes lost");
    assert!(outage <= BOUND, "outage {outage:?}");
}

#[test]
fn a_partitioned_holder_is_failed_over_as_fast() {
    let (outage, lost) = hard_fault(5, |net, v| net.partition(&[v]));
    eprintln!("partition: outage {outage:?}, {lost} probes lost");
    assert!(outage <= BOUND, "outage {outage:?}");
}

#[test]
fn a_failing_health_check_withdraws_the_vip_at_once() {
    let (outage, lost) = hard_fault(6, |net, v| {
        let now = net.now;
        net.node_mut(v).set_vip_health(now, VIP.into(), false);
        let i = net.idx(v);
        net.pump(i);
    });
    eprintln!("health: outage {outage:?}, {lost} probes lost");
    assert_eq!(
        lost, 0,
        "the withdrawn holder still delivers what is in flight"
    );
}

#[test]
fn a_graceful_stop_loses_no_probe() {
    let mut lab = lab(7, [10, 10, 10], |_| {});
    lab.probe_for(Duration::from_millis(200), 4000);
    let victim = name_of(lab.holder_of_port(4000));
    let now = lab.net.now;
    lab.net.node_mut(victim).begin_leave(now);
    let i = lab.net.idx(victim);
    lab.net.pump(i);
    let first = lab.next_seq;
    let mut waited = Duration::ZERO;
    let ready = |net: &SimNet| {
        net.nodes[i]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ReadyToLeave { unacknowledged } if unacknowledged.is_empty()))
    };
    while !ready(&lab.net) {
        lab.probe(4000);
        lab.net.run_for(Duration::from_millis(1));
        waited += Duration::from_millis(1);
        assert!(waited < Duration::from_secs(1), "leave never became ready");
    }
    eprintln!("leave ready after {waited:?}");
    lab.net.stop(victim);
    let range = lab.probe_for(Duration::from_secs(1), 4000);
    let (_, lost) = lab.outage(first..range.end);
    assert_eq!(lost, 0, "a graceful stop lost probes");
    assert_ne!(name_of(lab.holder_of_port(4000)), victim);
}

#[test]
fn a_withdrawal_ack_leaves_after_the_frames_queued_before_it() {
    // On a saturated link the client's daemon holds frames for the holder in
    // its send queue when the holder's withdrawal arrives. The holder stops
    // 20 ms after the last acknowledgement: the ack must not overtake those
    // frames (PROTOCOL §7.3), or they reach a node that is gone.
    let mut lab = lab(12, [10, 10, 10], |_| {});
    lab.probe_for(Duration::from_millis(200), 4000);
    let victim = name_of(lab.holder_of_port(4000));
    let (client, holder) = (lab.net.idx("node_5"), lab.net.idx(victim));
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let seen = sizes.clone();
    lab.net.tap = Some(Box::new(move |from, to, payload: &[u8]| {
        if from == client && to == holder {
            seen.borrow_mut().push(payload.len());
        }
        true
    }));
    let now = lab.net.now;
    lab.net.node_mut(victim).begin_leave(now);
    lab.net.pump(holder);
    // Before the withdrawal reaches the client: 50 large frames for the
    // holder, queued but not yet sent (the driver has not had its turn).
    let padding = [0u8; 1000];
    for k in 0..50u32 {
        let mut payload = (lab.next_seq + k).to_be_bytes().to_vec();
        payload.extend_from_slice(&padding);
        let f = udp(VMAC, CLIENT_MAC, CLIENT_IP, VIP, 4000, 53, &payload);
        let now = lab.net.now;
        lab.net.node_mut("node_5").handle_frame(now, &f);
    }
    lab.next_seq += 50;
    sizes.borrow_mut().clear();
    // The withdrawal arrives; the client sends what it queued, and its ack.
    lab.net.run_for(Duration::from_millis(5));
    let sent = sizes.borrow().clone();
    let large: Vec<usize> = sent
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 1000)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(large.len(), 50, "the queued frames: {sent:?}");
    let small_before: Vec<usize> = sent[..large[49]]
        .iter()
        .copied()
        .filter(|&n| n < 200)
        .collect();
    assert!(
        small_before.is_empty(),
        "a control message (the acknowledgement) overtook queued frames: {sent:?}"
    );
    assert!(
        sent[large[49] + 1..].iter().any(|&n| n < 200),
        "no acknowledgement after the frames: {sent:?}"
    );
}

#[test]
fn equal_holders_share_flows() {
    let mut lab = lab(8, [10, 10, 10], |_| {});
    for port in 0..300u16 {
        lab.probe(10_000 + port);
    }
    lab.net.run_for(Duration::from_millis(50));
    let mut per: BTreeMap<u8, usize> = BTreeMap::new();
    for a in lab.answers.borrow().iter() {
        *per.entry(a.2).or_insert(0) += 1;
    }
    eprintln!("flows per holder: {per:?}");
    assert_eq!(per.len(), 3);
    for (h, n) in per {
        assert!(
            (60..=140).contains(&n),
            "{} got {n} of 300 flows",
            name_of(h)
        );
    }
}

#[test]
fn weights_make_an_active_holder_and_backups() {
    let mut lab = lab(9, [5, 10, 10], |_| {});
    for port in 0..50u16 {
        lab.probe(10_000 + port);
    }
    lab.net.run_for(Duration::from_millis(50));
    assert!(
        lab.answers.borrow().iter().all(|a| a.2 == 2),
        "all to node_2"
    );
    lab.net.kill("node_2");
    lab.net.run_for(Duration::from_millis(500));
    lab.answers.borrow_mut().clear();
    for port in 0..50u16 {
        lab.probe(10_000 + port);
    }
    lab.net.run_for(Duration::from_millis(50));
    let a = lab.answers.borrow();
    assert_eq!(a.len(), 50);
    assert!(a.iter().all(|a| a.2 == 3 || a.2 == 4));
}

#[test]
fn a_returning_holder_takes_no_established_flow_and_flapping_is_damped() {
    let mut lab = lab(10, [10, 10, 10], |_| {});
    let ports: Vec<u16> = (0..60).map(|p| 20_000 + p).collect();
    for &p in &ports {
        lab.probe(p);
    }
    lab.net.run_for(Duration::from_millis(50));
    let victim = lab.holder_of_port(ports[0]);
    // The victim flaps: dies and returns three times.
    for _ in 0..3 {
        lab.net.kill(name_of(victim));
        lab.net.run_for(Duration::from_millis(600));
        lab.net.restart(name_of(victim));
        let i = lab.net.idx(name_of(victim));
        lab.net
            .node_mut(name_of(victim))
            .set_tap_mac(tap_mac(i + 1));
        lab.net.run_for(Duration::from_millis(300));
        for &p in &ports {
            lab.probe(p);
        }
        lab.net.run_for(Duration::from_millis(50));
    }
    let before: BTreeMap<u16, u8> = ports.iter().map(|&p| (p, lab.holder_of_port(p))).collect();
    assert!(
        before.values().all(|&h| h != victim),
        "an established flow went back"
    );
    // New flows within the hold-down avoid it too.
    for p in 0..100u16 {
        lab.probe(30_000 + p);
    }
    lab.net.run_for(Duration::from_millis(50));
    assert!(lab
        .answers
        .borrow()
        .iter()
        .filter(|a| a.3 >= 30_000)
        .all(|a| a.2 != victim));
    // Once stable past the hold-down, it gets new flows again; old ones stay put.
    lab.net.run_for(Duration::from_secs(2));
    for &p in &ports {
        lab.probe(p);
    }
    for p in 0..100u16 {
        lab.probe(40_000 + p);
    }
    lab.net.run_for(Duration::from_millis(50));
    for &p in &ports {
        assert_eq!(lab.holder_of_port(p), before[&p]);
    }
    assert!(lab
        .answers
        .borrow()
        .iter()
        .any(|a| a.3 >= 40_000 && a.2 == victim));
}

#[test]
fn fast_hellos_fail_over_within_sixty_milliseconds() {
    let mut lab = lab(11, [10, 10, 10], |cfg| {
        cfg.hello_interval = Duration::from_millis(10);
        cfg.dead_interval = Duration::from_millis(30);
    });
    lab.probe_for(Duration::from_millis(200), 4000);
    let victim = name_of(lab.holder_of_port(4000));
    lab.net.kill(victim);
    let range = lab.probe_for(Duration::from_secs(1), 4000);
    let (outage, lost) = lab.outage(range);
    eprintln!("kill at HelloInterval 10ms: outage {outage:?}, {lost} lost");
    assert!(outage <= Duration::from_millis(60), "outage {outage:?}");
}
