//! Shared-VIP failover in a simulated network with a virtual clock: the
//! reference scenario (node_1 hub, node_2..4 serve 10.1.1.10, node_5 is a
//! client probing it every 10 ms). Kill, freeze, partition a holder or fail
//! its health check, and measure the outage the client's flow sees; a
//! graceful stop loses nothing; flows spread; weights give active/backup;
//! flapping is damped; a returning holder takes no established flow.

mod sim;

use meshd::node::Event;
use meshd::switch::MacAddr;
use meshd::vip::LocalVip;
use sim::SimNet;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);
const VMAC: [u8; 6] = [0x02, 0x6d, 10, 1, 1, 10];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 2);
const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 5];
const NAMES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
const PROBE: Duration = Duration::from_millis(10);

fn tap_mac(i: usize) -> [u8; 6] {
    [0x02, 0xaa, 0, 0, 0, i as u8]
}

/// A UDP datagram in an Ethernet frame: `payload` = [probe seq (4 bytes), holder id].
fn udp(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn parse_udp(f: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u16, u16, &[u8])> {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
        return None;
    }
    let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let sport = u16::from_be_bytes([f[34], f[35]]);
    let dport = u16::from_be_bytes([f[36], f[37]]);
    Some((src, dst, sport, dport, &f[42..]))
}

/// (time, seq, holder index, client port) of every answer the client got.
type Answers = Rc<RefCell<Vec<(Duration, u32, u8, u16)>>>;

struct Lab {
    net: SimNet,
    answers: Answers,
    next_seq: u32,
}

/// The reference scenario; `weights[k]` is node_(k+2)'s weight.
fn lab(seed: u64, weights: [u32; 3], tune: impl Fn(&mut meshd::node::NodeConfig)) -> Lab {
    let mut net = SimNet::new(seed, &NAMES);
    for (i, name) in NAMES.iter().enumerate() {
        let mut cfg = if i == 0 {
            net.config(name, &[])
        } else {
            net.config(name, &["node_1"])
        };
        if (1..=3).contains(&i) {
            cfg.vips = vec![LocalVip {
                address: VIP.into(),
                prefix_len: 24,
                weight: weights[i - 1],
                virtual_mac: MacAddr(VMAC),
                checked: false,
            }];
        }
        tune(&mut cfg);
        net.start(cfg, &NAMES);
        net.node_mut(name).set_tap_mac(tap_mac(i + 1));
    }
    // Servers behind node_2..4 answer UDP to the VIP, saying who they are.
    for i in 1..=3usize {
        let me = tap_mac(i + 1);
        net.nodes[i].host = Some(Box::new(move |_, f: &[u8]| {
            if f[0..6] != me {
                return vec![];
            }
            match parse_udp(f) {
                Some((src, dst, sport, dport, payload)) if dst == VIP => {
                    let mut p = payload.to_vec();
                    p.push((i + 1) as u8);
                    vec![udp(
                        f[6..12].try_into().unwrap(),
                        me,
                        VIP,
                        src,
                        dport,
                        sport,
                        &p,
                    )]
                }
                _ => vec![],
            }
        }));
    }
    let answers: Answers = Rc::new(RefCell::new(Vec::new()));
    let log = answers.clone();
    net.nodes[4].host = Some(Box::new(move |t, f: &[u8]| {
        if let Some((src, dst, _, dport, p)) = parse_udp(f) {
            if src == VIP && dst == CLIENT_IP && p.len() == 5 {
                let seq = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                log.borrow_mut().push((t, seq, p[4], dport));
            }
        }
        vec![]
    }));
    net.run_for(Duration::from_secs(3));
    let all: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&all), "mesh did not form");
    Lab {
        net,
        answers,
        next_seq: 0,
    }
}

impl Lab {
    fn probe(&mut self, port: u16) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let f = udp(
            VMAC,
            CLIENT_MAC,
            CLIENT_IP,
            VIP,
            port,
            53,
            &seq.to_be_bytes(),
        );
        self.net.tap_send("node_5", &f);
    }

    /// Probes every 10 ms from one flow for `d`; returns the probes sent.
    fn probe_for(&mut self, d: Duration, port: u16) -> std::ops::Range<u32> {
        let first = self.next_seq;
        let mut t = Duration::ZERO;
        while t < d {
            self.probe(port);
            self.net.run_for(PROBE);
            t += PROBE;
        }
        first..self.next_seq
    }

    fn holder_of_port(&self, port: u16) -> u8 {
        self.answers
            .borrow()
            .iter()
            .rev()
            .find(|a| a.3 == port)
            .map(|a| a.2)
            .expect("no answer yet")
    }

    /// Longest run of unanswered probes in `range`, as time.
    fn outage(&self, range: std::ops::Range<u32>) -> (Duration, u32) {
        let answered: std::collections::HashSet<u32> =
            self.answers.borrow().iter().map(|a| a.1).collect();
        let (mut run, mut worst, mut lost) = (0u32, 0u32, 0u32);
        for s in range {
            if answered.contains(&s) {
                run = 0;
            } else {
                run += 1;
                lost += 1;
                worst = worst.max(run);
            }
        }
        (PROBE * worst, lost)
    }
}

fn name_of(holder: u8) -> &'static str {
    NAMES[holder as usize - 1]
}

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
