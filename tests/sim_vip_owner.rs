//! A VIP owned by a station behind its holder (a container on a bridge with
//! the TAP), in the simulated reference scenario: node_2 (weight 5, the
//! active holder) does not hold 10.1.1.10 on its TAP; a "container" behind
//! its TAP does, answering ARP for it and UDP only when a frame is addressed
//! to its own MAC (a frame for the TAP's MAC would go to node_2's own stack).
//! node_3/node_4 (weight 10) are backups with the VIP on their TAPs.
//! Steered frames reach the container; its own ARP is answered to it; a
//! presence check withdraws the VIP when it stops and offers it again when
//! it returns; a second station answering for the VIP is refused and
//! counted; `VIPOwner` pins the owner. The same for an IPv6 VIP, found by
//! Neighbour Solicitation, in a two-node net, whose station's own
//! solicitations are answered to it. A station leaving the bridge:
//! `sim_vip_owner_vanish.rs`.

mod sim;

use meshd::node::Event;
use meshd::switch::{build_arp_reply, ArpOp, ArpPacket, EthernetFrame, MacAddr, NdMessage};
use meshd::vip::{virtual_mac_for, LocalVip, PresenceSpec};
use sim::ip6::{echo, na, nd_of, ns, parse_echo};
use sim::lab::*;
use sim::owner::*;
use std::cell::Cell;
use std::cell::RefCell;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
use std::time::Duration;

#[test]
fn steered_frames_reach_a_container_that_holds_the_vip_behind_the_tap() {
    let (mut lab, _up) = owner_lab(31, |_| {});
    // Within a discovery period the probe finds the container.
    let found = lab
        .net
        .run_until_cond(Duration::from_secs(2), Duration::from_millis(10), |net| {
            net.node("node_2")
                .vip_engine()
                .owner_mac(&IpAddr::V4(VIP))
                .is_some()
        });
    assert!(found.is_some(), "node_2 never learned the container's MAC");
    assert_eq!(owner_mac(&lab), Some(MacAddr(CTR_MAC)));
    let range = lab.probe_for(Duration::from_millis(500), 5000);
    let by = answered_by(&lab, range.clone());
    assert!(
        by.iter().all(|h| *h == 2),
        "not every probe answered by the container behind node_2: {by:?}"
    );
    let c = lab.net.node("node_2").vip_engine().counters().clone();
    assert!(c.owners_learned >= 1 && c.owner_probes >= 1, "{c:?}");
    let st = lab.net.node("node_2").vip_statuses(lab.net.now);
    let o = st[0].owner.as_ref().expect("node_2 serves the VIP");
    assert_eq!(o.mac.as_deref(), Some("02:c0:00:00:00:02"));
    assert_eq!(o.source, "learned");
}

#[test]
fn the_containers_own_arp_for_the_client_is_answered_to_the_container() {
    let (mut lab, _up) = owner_lab(32, |_| {});
    // The client answers ARP for itself.
    lab.net.nodes[4].host = Some(Box::new(|_, f: &[u8]| {
        let Ok(eth) = EthernetFrame::parse(f) else {
            return vec![];
        };
        match ArpPacket::from_frame(&eth) {
            Some(Ok(req)) if req.op == ArpOp::Request && req.target_ip == CLIENT_IP => {
                vec![build_arp_reply(&req, eth.src(), MacAddr(CLIENT_MAC))]
            }
            _ => vec![],
        }
    }));
    lab.net.run_for(Duration::from_secs(2));
    lab.net.take_tap_rx("node_2");
    // who-has 10.1.1.2 tell 10.1.1.10, from the container.
    let mut req = Vec::new();
    req.extend_from_slice(&[0xff; 6]);
    req.extend_from_slice(&CTR_MAC);
    req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    req.extend_from_slice(&CTR_MAC);
    req.extend_from_slice(&VIP.octets());
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&CLIENT_IP.octets());
    lab.net.tap_send("node_2", &req);
    lab.net.run_for(Duration::from_millis(50));
    let replies: Vec<Vec<u8>> = lab
        .net
        .take_tap_rx("node_2")
        .into_iter()
        .filter(|f| {
            let eth = EthernetFrame::parse(f).expect("frame");
            matches!(ArpPacket::from_frame(&eth), Some(Ok(a))
                if a.op == ArpOp::Reply && a.sender_ip == CLIENT_IP)
        })
        .collect();
    assert!(!replies.is_empty(), "no answer reached the container");
    for r in &replies {
        assert_eq!(
            &r[0..6],
            &CTR_MAC,
            "the answer is not addressed to the container"
        );
        assert_eq!(&r[22..28], &CLIENT_MAC, "the answer names the client's MAC");
    }
}

#[test]
fn presence_withdraws_the_vip_when_the_container_stops_and_offers_it_when_it_returns() {
    let spec = PresenceSpec {
        interval: Duration::from_millis(100),
        rise: 2,
        fall: 2,
    };
    let (mut lab, up) = owner_lab(33, |v| v.presence = Some(spec));
    let offered_in = |net: &sim::SimNet| {
        net.node("node_5")
            .vip_statuses(net.now)
            .first()
            .and_then(|v| v.holders.iter().find(|h| h.name == "node_2"))
            .is_some_and(|h| h.offered)
    };
    let offered = |lab: &Lab| offered_in(&lab.net);
    assert!(offered(&lab), "presence never offered node_2's VIP");
    let before = lab.probe_for(Duration::from_millis(300), 6000);
    assert!(answered_by(&lab, before).iter().all(|h| *h == 2));

    // The container stops: the VIP is withdrawn and the flow fails over.
    up.set(false);
    let range = lab.probe_for(Duration::from_millis(1500), 6000);
    let (outage, lost) = lab.outage(range.clone());
    let by = answered_by(&lab, range);
    eprintln!("presence withdrawal: outage {outage:?}, {lost} lost");
    assert!(!offered(&lab), "node_2 still offers the VIP");
    // Two unanswered rounds of 100 ms after up to one more, plus the record's trip.
    assert!(
        outage <= Duration::from_millis(400),
        "outage {outage:?} ({lost} lost)"
    );
    assert!(
        by.iter().rev().take(50).all(|h| *h == 3 || *h == 4),
        "the flow did not move to a backup: {by:?}"
    );
    let down = lab.net.nodes[1]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::VipDown { .. }));
    assert!(down, "no vip-down on node_2");
    assert_eq!(
        lab.net
            .node("node_2")
            .vip_engine()
            .local_state(&IpAddr::V4(VIP))
            .map(|s| s.healthy),
        Some(false)
    );

    // It returns: offered again after two answered probes; a new flow goes
    // back to it past the hold-down, the established one stays.
    up.set(true);
    let back = lab.net.run_until_cond(
        Duration::from_secs(1),
        Duration::from_millis(10),
        offered_in,
    );
    eprintln!("presence return: offered again after {back:?}");
    assert!(back.is_some_and(|d| d <= Duration::from_millis(350)));
    lab.net.run_for(Duration::from_millis(1100));
    let fresh = lab.probe_for(Duration::from_millis(200), 6001);
    assert!(answered_by(&lab, fresh).iter().all(|h| *h == 2));
    let old = lab.probe_for(Duration::from_millis(200), 6000);
    assert!(answered_by(&lab, old).iter().all(|h| *h == 3 || *h == 4));
}

#[test]
fn a_second_station_answering_for_the_vip_is_refused_and_counted() {
    let (mut lab, _up) = owner_lab(34, |_| {});
    lab.net.run_for(Duration::from_secs(2));
    assert_eq!(owner_mac(&lab), Some(MacAddr(CTR_MAC)));
    // Another station on the same bridge answers for the VIP too.
    let up = Rc::new(Cell::new(true));
    let mut ctr = station(CTR_MAC, up.clone(), true);
    let mut other = station(OTHER_MAC, up, true);
    lab.net.nodes[1].host = Some(Box::new(move |_, f: &[u8]| {
        let mut out = ctr(f);
        out.extend(other(f));
        out
    }));
    lab.net.run_for(Duration::from_secs(12));
    let c = lab.net.node("node_2").vip_engine().counters().clone();
    assert!(c.owner_conflicts >= 1, "{c:?}");
    assert_eq!(owner_mac(&lab), Some(MacAddr(CTR_MAC)), "the owner changed");
    let range = lab.probe_for(Duration::from_millis(300), 7000);
    assert!(answered_by(&lab, range).iter().all(|h| *h == 2));
    let st = lab.net.node("node_2").vip_statuses(lab.net.now);
    assert!(st[0].owner.as_ref().is_some_and(|o| o.conflicts >= 1));
}

#[test]
fn vip_owner_pins_a_container_that_does_not_answer_arp() {
    let (mut lab, up) = owner_lab(35, |v| v.owner = Some(MacAddr(CTR_MAC)));
    let mut ctr = station(CTR_MAC, up, false);
    lab.net.nodes[1].host = Some(Box::new(move |_, f: &[u8]| ctr(f)));
    let range = lab.probe_for(Duration::from_millis(300), 8000);
    assert!(answered_by(&lab, range).iter().all(|h| *h == 2));
    let st = lab.net.node("node_2").vip_statuses(lab.net.now);
    assert_eq!(
        st[0].owner.as_ref().map(|o| o.source.as_str()),
        Some("VIPOwner")
    );
    // A configured owner without a presence check is never probed for.
    assert_eq!(
        lab.net.node("node_2").vip_engine().counters().owner_probes,
        0
    );
}

#[test]
fn a_vip_on_the_tap_itself_works_as_before() {
    // node_3 and node_4 have no station answering ARP: their TAP's MAC is used.
    let mut lab = lab(36, [10, 5, 10], |_| {});
    let range = lab.probe_for(Duration::from_millis(300), 9000);
    assert!(answered_by(&lab, range).iter().all(|h| *h == 3));
    let st = lab.net.node("node_3").vip_statuses(lab.net.now);
    let o = st[0].owner.as_ref().expect("node_3 serves the VIP");
    assert_eq!(o.source, "tap");
    assert_eq!(o.mac.as_deref(), Some("02:aa:00:00:00:03"));
}

const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x10);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);

/// An IPv6 station holding VIP6 while `up`: answers solicitations for it
/// (to their source link-layer address) and echo requests addressed to its MAC.
fn station6(mac: [u8; 6], up: Rc<Cell<bool>>) -> sim::HostFn {
    Box::new(move |_, f: &[u8]| {
        if !up.get() {
            return vec![];
        }
        if let Some(NdMessage::Solicitation(s)) = nd_of(f) {
            if s.target == VIP6 && !s.src_ip.is_unspecified() {
                let to = s.source_ll.map_or(s.eth_src.0, |m| m.0);
                return vec![na(to, mac, VIP6, s.src_ip)];
            }
            return vec![];
        }
        match parse_echo(f) {
            Some((src, dst, 128, p)) if dst == VIP6 && f[0..6] == mac => {
                let mut p = p.to_vec();
                p.push(2);
                let back: [u8; 6] = f[6..12].try_into().expect("6 bytes");
                vec![echo(129, back, mac, VIP6, src, &p)]
            }
            _ => vec![],
        }
    })
}

/// A two-node net: b serves VIP6 (presence checked) from a station behind
/// its TAP (up while the returned switch is); a is the client's node.
fn owner6_net(seed: u64) -> (sim::SimNet, Rc<Cell<bool>>, MacAddr) {
    let mut net = sim::SimNet::new(seed, &["a", "b"]);
    let vmac = MacAddr(virtual_mac_for(VIP6.into()));
    let mut cfg = net.config("b", &[]);
    cfg.vips = vec![LocalVip {
        address: VIP6.into(),
        prefix_len: 64,
        weight: 10,
        virtual_mac: vmac,
        checked: false,
        owner: None,
        presence: Some(PresenceSpec {
            interval: Duration::from_millis(100),
            rise: 2,
            fall: 2,
        }),
        policy: Default::default(),
    }];
    net.start(cfg, &["a", "b"]);
    let cfg = net.config("a", &["b"]);
    net.start(cfg, &["a", "b"]);
    net.node_mut("a").set_tap_mac(tap_mac(1));
    net.node_mut("b").set_tap_mac(tap_mac(2));
    let up = Rc::new(Cell::new(true));
    net.nodes[1].host = Some(station6(CTR_MAC, up.clone()));
    (net, up, vmac)
}

#[test]
fn an_ipv6_vip_behind_the_holder_is_found_by_solicitation_and_watched_by_presence() {
    let (mut net, up, vmac) = owner6_net(37);
    let answers: Rc<RefCell<Vec<u32>>> = Rc::new(RefCell::new(Vec::new()));
    let log = answers.clone();
    net.nodes[0].host = Some(Box::new(move |_, f: &[u8]| {
        if let Some((src, _, 129, p)) = parse_echo(f) {
            if src == VIP6 && p.len() == 5 && p[4] == 2 {
                log.borrow_mut()
                    .push(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
            }
        }
        vec![]
    }));
    net.run_for(Duration::from_secs(3));
    assert_eq!(
        net.node("b").vip_engine().owner_mac(&IpAddr::V6(VIP6)),
        Some(MacAddr(CTR_MAC))
    );
    let offered = |net: &sim::SimNet| {
        net.node("a")
            .vip_statuses(net.now)
            .first()
            .and_then(|v| v.holders.iter().find(|h| h.name == "b"))
            .is_some_and(|h| h.offered)
    };
    assert!(offered(&net));
    for seq in 0..50u32 {
        let f = echo(128, vmac.0, CLIENT_MAC, CLIENT6, VIP6, &seq.to_be_bytes());
        net.tap_send("a", &f);
        net.run_for(PROBE);
    }
    assert_eq!(
        answers.borrow().len(),
        50,
        "the station did not answer every echo"
    );
    up.set(false);
    let gone = net.run_until_cond(Duration::from_secs(1), Duration::from_millis(10), |n| {
        !offered(n)
    });
    assert!(
        gone.is_some_and(|d| d <= Duration::from_millis(400)),
        "{gone:?}"
    );
    up.set(true);
    let back = net.run_until_cond(Duration::from_secs(1), Duration::from_millis(10), offered);
    assert!(
        back.is_some_and(|d| d <= Duration::from_millis(400)),
        "{back:?}"
    );
}

#[test]
fn a_frame_for_a_vip_with_no_known_owner_hurries_the_probe() {
    // The container appears right after a discovery probe went unanswered: the
    // next one is a second away, but the first steered frame asks for one now.
    let mut lab = lab(38, [5, 10, 10], |_| {});
    let up = Rc::new(Cell::new(true));
    let mut ctr = station(CTR_MAC, up, true);
    lab.net.nodes[1].host = Some(Box::new(move |_, f: &[u8]| ctr(f)));
    lab.net.run_for(ms(50));
    assert_eq!(owner_mac(&lab), None);
    let t0 = lab.net.elapsed();
    let range = lab.probe_for(ms(500), 9100);
    let first = lab
        .answers
        .borrow()
        .iter()
        .filter(|a| range.contains(&a.1) && a.2 == 2)
        .map(|a| a.0 - t0)
        .min();
    eprintln!("first answer from the container after {first:?}");
    assert!(
        first.is_some_and(|d| d <= ms(150)),
        "the container answered only after {first:?}"
    );
}

/// The station's own solicitation for a client (from the VIP) reaches the
/// client's node; the client's advertisement comes back addressed to the
/// station's MAC, not to b's TAP (which a bridge would hand to b's own stack).
#[test]
fn the_stations_own_solicitation_for_a_client_is_answered_to_the_station() {
    let (mut net, _up, _) = owner6_net(39);
    // The client answers solicitations for itself, to their link-layer address.
    net.nodes[0].host = Some(Box::new(|_, f: &[u8]| match nd_of(f) {
        Some(NdMessage::Solicitation(s)) if s.target == CLIENT6 && !s.src_ip.is_unspecified() => {
            let to = s.source_ll.map_or(s.eth_src.0, |m| m.0);
            vec![na(to, CLIENT_MAC, CLIENT6, s.src_ip)]
        }
        _ => vec![],
    }));
    net.run_for(Duration::from_secs(3));
    net.take_tap_rx("b");
    net.tap_send("b", &ns(CTR_MAC, VIP6, CLIENT6));
    net.run_for(Duration::from_millis(50));
    let answers: Vec<Vec<u8>> = net
        .take_tap_rx("b")
        .into_iter()
        .filter(|f| matches!(nd_of(f), Some(NdMessage::Advertisement(a)) if a.target == CLIENT6))
        .collect();
    assert!(!answers.is_empty(), "no advertisement reached the station");
    for f in &answers {
        assert_eq!(
            &f[0..6],
            &CTR_MAC,
            "the answer is not addressed to the station"
        );
        let Some(NdMessage::Advertisement(a)) = nd_of(f) else {
            unreachable!()
        };
        assert_eq!(
            a.target_ll,
            Some(MacAddr(CLIENT_MAC)),
            "the answer names the client's MAC"
        );
    }
}
