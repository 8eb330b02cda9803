//! IPv6 shared-VIP failover in the simulated network: the reference scenario
//! of `sim_vip.rs` (node_1 hub, node_2..4 serve fd00:1::10, node_5's host
//! probes it with ICMPv6 echo every 10 ms), with host kernels that resolve
//! each other by Neighbour Discovery. Neighbour Solicitations for the VIP are
//! answered locally with the virtual MAC; a holder's own ND is rewritten;
//! DAD never fails on a holder; kill, freeze, partition or a failing health
//! check cost what they cost for IPv4; a graceful stop loses nothing; the
//! client's neighbour entry for the VIP never changes; a dual-stack VIP fails
//! over on both families at once.

mod sim;

use meshd::switch::{MacAddr, NdMessage};
use meshd::vip::LocalVip;
use sim::ip6::*;
use sim::SimNet;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use std::time::Duration;

const VIP: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x10);
/// `06:6d` ‖ SHA-256(fd00:1::10)[..4] (PROTOCOL §7.1).
const VMAC: [u8; 6] = [0x06, 0x6d, 0x69, 0x9a, 0xb5, 0x47];
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);
const VMAC4: [u8; 6] = [0x02, 0x6d, 10, 1, 1, 10];
const CLIENT_IP: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);
const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 5];
const NAMES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
const PROBE: Duration = Duration::from_millis(10);
/// The IPv4 bound (`tests/sim_vip.rs`): a flow that expects answers detects
/// a dead holder on demand within 100 ms.
const BOUND: Duration = Duration::from_millis(100);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn tap_mac(i: usize) -> [u8; 6] {
    [0x02, 0xaa, 0, 0, 0, i as u8]
}

/// A UDP/IPv4 datagram (the dual-stack test's IPv4 probes).
fn udp4(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, p: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, (28 + p.len()) as u8, 0, 0, 0x40, 0]);
    f.extend_from_slice(&[64, 17, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[0x0f, 0xa0, 0, 53, 0, (8 + p.len()) as u8, 0, 0]);
    f.extend_from_slice(p);
    f
}

/// A holder's kernel: answers echo to the VIP (and UDP to the IPv4 VIP) with
/// its id appended, resolving the client by ND first as a kernel does (a
/// solicitation from the VIP with its own MAC as source link-layer address).
fn server(i: usize) -> sim::HostFn {
    let me = tap_mac(i + 1);
    let mut neighbours: BTreeMap<Ipv6Addr, [u8; 6]> = BTreeMap::new();
    let mut waiting: Vec<(Ipv6Addr, Vec<u8>)> = Vec::new();
    Box::new(move |_, f: &[u8]| {
        let mut out = Vec::new();
        if let Some(NdMessage::Advertisement(adv)) = nd_of(f) {
            if let Some(mac) = adv.target_ll {
                neighbours.insert(adv.target, mac.0);
                let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting)
                    .into_iter()
                    .partition(|(ip, _)| *ip == adv.target);
                waiting = rest;
                for (_, p) in ready {
                    out.push(echo(129, mac.0, me, VIP, adv.target, &p));
                }
            }
            return out;
        }
        if f[0..6] != me {
            return out;
        }
        if f[12..14] == [0x08, 0x00] && f.len() >= 42 && f[30..34] == VIP4.octets() {
            let mut p = f[42..].to_vec();
            p.push((i + 1) as u8);
            let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
            out.push(udp4(f[6..12].try_into().unwrap(), me, VIP4, src, &p));
            return out;
        }
        if let Some((src, dst, 128, payload)) = parse_echo(f) {
            if dst != VIP {
                return out;
            }
            let mut p = payload.to_vec();
            p.push((i + 1) as u8);
            match neighbours.get(&src) {
                Some(mac) => out.push(echo(129, *mac, me, VIP, src, &p)),
                None => {
                    waiting.push((src, p));
                    out.push(ns(me, VIP, src));
                }
            }
        }
        out
    })
}

/// (time, seq, holder index, family 6 or 4) of every answer the client got.
type Answers = Rc<RefCell<Vec<(Duration, u32, u8, u8)>>>;

struct Lab {
    net: SimNet,
    answers: Answers,
    /// Every link-layer address the client was ever told for the VIP.
    vip_macs: Rc<RefCell<HashSet<[u8; 6]>>>,
    next_seq: u32,
}

/// The reference scenario; node_2..4 serve the VIP (and the IPv4 VIP if `dual`).
fn lab(seed: u64, dual: bool) -> Lab {
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
                prefix_len: 64,
                weight: 10,
                virtual_mac: MacAddr(VMAC),
                checked: false,
                owner: None,
                presence: None,
                policy: Default::default(),
            }];
            if dual {
                cfg.vips.push(LocalVip {
                    address: VIP4.into(),
                    prefix_len: 24,
                    weight: 10,
                    virtual_mac: MacAddr(VMAC4),
                    checked: false,
                    owner: None,
                    presence: None,
                    policy: Default::default(),
                });
            }
        }
        net.start(cfg, &NAMES);
        net.node_mut(name).set_tap_mac(tap_mac(i + 1));
    }
    for i in 1..=3usize {
        net.nodes[i].host = Some(server(i));
    }
    let answers: Answers = Rc::new(RefCell::new(Vec::new()));
    let vip_macs = Rc::new(RefCell::new(HashSet::new()));
    let (log, macs) = (answers.clone(), vip_macs.clone());
    // The client's kernel: answers solicitations for its address, remembers
    // every MAC it is told for the VIP, logs echo replies and UDP answers.
    net.nodes[4].host = Some(Box::new(move |t, f: &[u8]| {
        match nd_of(f) {
            Some(NdMessage::Solicitation(s)) if s.target == CLIENT_IP => {
                if let Some(mac) = s.source_ll {
                    if s.src_ip == VIP {
                        macs.borrow_mut().insert(mac.0);
                    }
                }
                let to = s.source_ll.map_or(s.eth_src.0, |m| m.0);
                return vec![na(to, CLIENT_MAC, CLIENT_IP, s.src_ip)];
            }
            Some(NdMessage::Advertisement(a)) if a.target == VIP => {
                macs.borrow_mut().extend(a.target_ll.map(|m| m.0));
                macs.borrow_mut().insert(f[6..12].try_into().unwrap());
            }
            _ => {}
        }
        if let Some((src, _, 129, p)) = parse_echo(f) {
            if src == VIP && p.len() == 5 {
                let seq = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                log.borrow_mut().push((t, seq, p[4], 6));
            }
        }
        if f.len() == 47 && f[12..14] == [0x08, 0x00] && f[26..30] == VIP4.octets() {
            let seq = u32::from_be_bytes([f[42], f[43], f[44], f[45]]);
            log.borrow_mut().push((t, seq, f[46], 4));
        }
        vec![]
    }));
    net.run_for(Duration::from_secs(3));
    let all: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&all), "mesh did not form");
    // The client resolves the VIP as a kernel does.
    net.tap_send("node_5", &ns(CLIENT_MAC, CLIENT_IP, VIP));
    net.run_for(Duration::from_millis(20));
    Lab {
        net,
        answers,
        vip_macs,
        next_seq: 0,
    }
}

impl Lab {
    fn probe(&mut self, v4: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let f = echo(128, VMAC, CLIENT_MAC, CLIENT_IP, VIP, &seq.to_be_bytes());
        self.net.tap_send("node_5", &f);
        if v4 {
            let client4 = Ipv4Addr::new(10, 1, 1, 2);
            let f = udp4(VMAC4, CLIENT_MAC, client4, VIP4, &seq.to_be_bytes());
            self.net.tap_send("node_5", &f);
        }
    }

    fn probe_for(&mut self, d: Duration, v4: bool) -> std::ops::Range<u32> {
        let first = self.next_seq;
        let mut t = Duration::ZERO;
        while t < d {
            self.probe(v4);
            self.net.run_for(PROBE);
            t += PROBE;
        }
        first..self.next_seq
    }

    fn holder(&self, family: u8) -> u8 {
        self.answers
            .borrow()
            .iter()
            .rev()
            .find(|a| a.3 == family)
            .map(|a| a.2)
            .expect("no answer yet")
    }

    /// Longest run of unanswered probes of `family` in `range`, as time.
    fn outage(&self, range: std::ops::Range<u32>, family: u8) -> (Duration, u32) {
        let answered: HashSet<u32> = self
            .answers
            .borrow()
            .iter()
            .filter(|a| a.3 == family)
            .map(|a| a.1)
            .collect();
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

    fn assert_client_only_learned_the_virtual_mac(&self) {
        let macs = self.vip_macs.borrow();
        assert_eq!(
            *macs,
            HashSet::from([VMAC]),
            "the client was taught another MAC for the VIP"
        );
    }
}

fn name_of(holder: u8) -> &'static str {
    NAMES[holder as usize - 1]
}

fn hard_fault(seed: u64, fault: impl Fn(&mut SimNet, &str)) -> (Duration, u32) {
    let mut lab = lab(seed, false);
    lab.probe_for(Duration::from_millis(200), false);
    let victim = name_of(lab.holder(6));
    fault(&mut lab.net, victim);
    let range = lab.probe_for(Duration::from_secs(2), false);
    let (outage, lost) = lab.outage(range, 6);
    assert_ne!(name_of(lab.holder(6)), victim);
    lab.assert_client_only_learned_the_virtual_mac();
    (outage, lost)
}

#[test]
fn a_solicitation_for_the_vip_is_answered_locally_with_the_virtual_mac() {
    let mut lab = lab(11, false);
    for n in NAMES {
        lab.net.take_tap_rx(n);
    }
    lab.net.tap_send("node_5", &ns(CLIENT_MAC, CLIENT_IP, VIP));
    lab.net.run_for(Duration::from_millis(20));
    let got = lab.net.take_tap_rx("node_5");
    assert_eq!(got.len(), 1);
    // parse_nd checks the checksum, hop limit and flags.
    let Some(NdMessage::Advertisement(a)) = nd_of(&got[0]) else {
        panic!("not a valid advertisement")
    };
    assert_eq!((a.target, a.target_ll), (VIP, Some(MacAddr(VMAC))));
    assert!(a.solicited && a.override_flag);
    assert_eq!(
        (&got[0][0..6], &got[0][6..12]),
        (&CLIENT_MAC[..], &VMAC[..])
    );
    for n in &NAMES[..4] {
        assert!(
            lab.net.take_tap_rx(n).is_empty(),
            "the solicitation reached {n}"
        );
    }
    let answered: u64 = (0..5)
        .map(|i| lab.net.node(NAMES[i]).vip_engine().counters().nd_answered)
        .sum();
    assert_eq!(answered, 2, "the lab's first resolution and this one");
}

#[test]
fn a_holders_own_nd_never_teaches_its_real_mac() {
    let mut lab = lab(12, false);
    let me = tap_mac(3);
    for n in NAMES {
        lab.net.take_tap_rx(n);
    }
    // node_3's kernel resolves the client from the VIP, with its own MAC.
    lab.net.tap_send("node_3", &ns(me, VIP, CLIENT_IP));
    lab.net.run_for(Duration::from_millis(20));
    let got: Vec<Vec<u8>> = lab
        .net
        .take_tap_rx("node_5")
        .into_iter()
        .filter(|f| matches!(nd_of(f), Some(NdMessage::Solicitation(_))))
        .collect();
    assert_eq!(got.len(), 1, "a cache miss floods");
    let Some(NdMessage::Solicitation(s)) = nd_of(&got[0]) else {
        unreachable!()
    };
    assert_eq!(
        (s.eth_src, s.source_ll),
        (MacAddr(VMAC), Some(MacAddr(VMAC)))
    );
    // The client's answer went to the virtual MAC: every holder's kernel got it,
    // addressed to its own TAP MAC, node_3's included.
    let got = lab.net.take_tap_rx("node_3");
    let answers: Vec<&Vec<u8>> = got
        .iter()
        .filter(|f| matches!(nd_of(f), Some(NdMessage::Advertisement(a)) if a.target == CLIENT_IP))
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(&answers[0][0..6], &me, "delivered to node_3's own MAC");
    // An unsolicited advertisement of the VIP by node_3's kernel: rewritten for
    // the client; no other holder's kernel hears its address advertised.
    lab.net.take_tap_rx("node_2");
    lab.net.take_tap_rx("node_4");
    lab.net
        .tap_send("node_3", &na([0x33, 0x33, 0, 0, 0, 1], me, VIP, ALL_NODES));
    lab.net.run_for(Duration::from_millis(20));
    let got = lab.net.take_tap_rx("node_5");
    assert_eq!(got.len(), 1);
    let Some(NdMessage::Advertisement(a)) = nd_of(&got[0]) else {
        panic!("the rewritten advertisement is invalid (checksum?)")
    };
    assert_eq!(a.target_ll, Some(MacAddr(VMAC)));
    assert_eq!(&got[0][6..12], &VMAC);
    for n in ["node_2", "node_4"] {
        assert!(
            lab.net.take_tap_rx(n).is_empty(),
            "{n} heard its VIP advertised"
        );
    }
    lab.assert_client_only_learned_the_virtual_mac();
    let rewritten = lab.net.node("node_3").vip_engine().counters().nd_rewritten;
    assert_eq!(rewritten, 2);
}

#[test]
fn duplicate_address_detection_never_fails_on_a_holder() {
    let mut lab = lab(13, false);
    for n in NAMES {
        lab.net.take_tap_rx(n);
    }
    // node_2's kernel probes the VIP it is adding: nobody hears it, nobody answers.
    lab.net
        .tap_send("node_2", &ns(tap_mac(2), Ipv6Addr::UNSPECIFIED, VIP));
    lab.net.run_for(Duration::from_millis(50));
    for n in NAMES {
        assert!(lab.net.take_tap_rx(n).is_empty(), "{n} got a frame");
    }
    assert_eq!(
        lab.net
            .node("node_2")
            .vip_engine()
            .counters()
            .nd_dad_dropped,
        1
    );
    // A host that is no holder probing the VIP learns it is taken.
    lab.net
        .tap_send("node_5", &ns(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP));
    lab.net.run_for(Duration::from_millis(20));
    let got = lab.net.take_tap_rx("node_5");
    assert_eq!(got.len(), 1);
    let Some(NdMessage::Advertisement(a)) = nd_of(&got[0]) else {
        panic!()
    };
    assert_eq!(a.target_ll, Some(MacAddr(VMAC)));
    assert!(!a.solicited, "to all nodes");
    assert_eq!(&got[0][38..54], &ALL_NODES.octets());
    for n in &NAMES[1..4] {
        assert!(lab.net.take_tap_rx(n).is_empty(), "the probe reached {n}");
    }
}

#[test]
fn sigkill_of_the_serving_holder_costs_at_most_dead_interval_plus_a_hello() {
    let (outage, lost) = hard_fault(3, |net, v| net.kill(v));
    eprintln!("ipv6 kill: outage {outage:?}, {lost} probes lost");
    assert!(outage <= BOUND, "outage {outage:?}");
}

#[test]
fn a_frozen_holder_is_failed_over_as_fast() {
    let (outage, lost) = hard_fault(4, |net, v| net.freeze(v));
    eprintln!("ipv6 freeze: outage {outage:?}, {lost} probes lost");
    assert!(outage <= BOUND, "outage {outage:?}");
}

#[test]
fn a_partitioned_holder_is_failed_over_as_fast() {
    let (outage, lost) = hard_fault(5, |net, v| net.partition(&[v]));
    eprintln!("ipv6 partition: outage {outage:?}, {lost} probes lost");
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
    eprintln!("ipv6 health: outage {outage:?}, {lost} probes lost");
    assert_eq!(
        lost, 0,
        "the withdrawn holder still answers what is in flight"
    );
}

#[test]
fn a_graceful_stop_loses_no_probe() {
    let mut lab = lab(7, false);
    lab.probe_for(Duration::from_millis(200), false);
    let victim = name_of(lab.holder(6));
    let now = lab.net.now;
    lab.net.node_mut(victim).begin_leave(now);
    let i = lab.net.idx(victim);
    lab.net.pump(i);
    let first = lab.next_seq;
    let mut waited = Duration::ZERO;
    let ready = |net: &SimNet| {
        net.nodes[i].events.iter().any(|(_, e)| {
            matches!(e, meshd::node::Event::ReadyToLeave { unacknowledged } if unacknowledged.is_empty())
        })
    };
    while !ready(&lab.net) {
        lab.probe(false);
        lab.net.run_for(Duration::from_millis(1));
        waited += Duration::from_millis(1);
        assert!(waited < Duration::from_secs(1), "leave never became ready");
    }
    lab.net.stop(victim);
    let range = lab.probe_for(Duration::from_secs(1), false);
    let (_, lost) = lab.outage(first..range.end, 6);
    eprintln!("ipv6 graceful stop: {lost} probes lost (leave ready after {waited:?})");
    assert_eq!(lost, 0, "a graceful stop lost probes");
    assert_ne!(name_of(lab.holder(6)), victim);
    lab.assert_client_only_learned_the_virtual_mac();
}

#[test]
fn echo_sessions_spread_over_equal_holders() {
    let mut lab = lab(8, false);
    let mut holders = BTreeMap::new();
    // Each echo identifier is a flow of its own.
    for id in 0..60u16 {
        let mut icmp = vec![128, 0, 0, 0];
        icmp.extend_from_slice(&id.to_be_bytes());
        icmp.extend_from_slice(&[0, 0, 0xff, 0xff, 0xff, 0xff]);
        let f = icmp6(VMAC, CLIENT_MAC, CLIENT_IP, VIP, 64, icmp);
        lab.net.take_tap_rx("node_5");
        lab.net.tap_send("node_5", &f);
        lab.net.run_for(Duration::from_millis(20));
        let got = lab.net.take_tap_rx("node_5");
        let holder = got
            .iter()
            .find_map(|f| parse_echo(f).filter(|e| e.2 == 129).map(|e| e.3[4]))
            .expect("no echo reply");
        *holders.entry(holder).or_insert(0) += 1;
    }
    assert_eq!(holders.len(), 3, "{holders:?}");
    assert!(holders.values().all(|&n| n >= 8), "{holders:?}");
}

#[test]
fn a_dual_stack_vip_fails_over_on_both_families() {
    let mut lab = lab(9, true);
    lab.probe_for(Duration::from_millis(300), true);
    let victim6 = name_of(lab.holder(6));
    assert!(lab.net.node("node_5").vip_engine().vips().len() == 2);
    let macs: Vec<_> = lab
        .net
        .node("node_5")
        .vip_engine()
        .vips()
        .values()
        .map(|v| v.virtual_mac)
        .collect();
    assert_ne!(macs[0], macs[1]);
    lab.net.kill(victim6);
    let range = lab.probe_for(Duration::from_secs(2), true);
    let (out6, lost6) = lab.outage(range.clone(), 6);
    let (out4, lost4) = lab.outage(range, 4);
    eprintln!("dual stack kill of {victim6}: IPv6 outage {out6:?} ({lost6} lost), IPv4 outage {out4:?} ({lost4} lost)");
    assert!(out6 <= BOUND && out4 <= BOUND, "{out6:?} {out4:?}");
    assert_ne!(name_of(lab.holder(6)), victim6);
    assert_ne!(name_of(lab.holder(4)), victim6);
    let both: Vec<IpAddr> = lab
        .net
        .node("node_5")
        .vip_engine()
        .vips()
        .keys()
        .copied()
        .collect();
    assert_eq!(both, vec![IpAddr::V4(VIP4), IpAddr::V6(VIP)]);
    lab.assert_client_only_learned_the_virtual_mac();
}
