//! Tests of the [`Switch`] answering ARP and Neighbour Solicitations from the
//! TAP, and of the IP-to-MAC bindings it learns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use etherparse::{Icmpv6Slice, PacketBuilder};

use super::nd::{ALL_NODES_MAC, NA_FRAME_LEN};
use super::switch_tests::*;
use super::*;

#[test]
fn arp_answered_for_a_station_behind_a_live_peer() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    assert_eq!(sw.from_peer(t0, "b", &is_at(MB, IP_B)), Delivery::Tap);
    assert_eq!(sw.neighbours().lookup(&IpAddr::V4(IP_B), t0), Some(MB));
    let mut replies = Vec::new();
    let d = sw.from_tap(t0, &who_has(IP_B), all_alive, &mut replies);
    assert_eq!(d, Delivery::Drop, "the request does not cross the mesh");
    assert_eq!(replies.len(), 1);
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        0x02, 0, 0, 0, 0, 0x01,        // to the requester
        0x02, 0, 0, 0, 0, 0x0b,        // from the station asked about
        0x08, 0x06,                    // ARP
        0x00, 0x01,                    // hardware type Ethernet
        0x08, 0x00,                    // protocol IPv4
        6, 4,                          // address lengths
        0x00, 0x02,                    // reply
        0x02, 0, 0, 0, 0, 0x0b,        // sender MAC: the answer
        10, 0, 0, 2,                   // sender IP: the address asked about
        0x02, 0, 0, 0, 0, 0x01,        // target MAC: the requester
        10, 0, 0, 1,                   // target IP: the requester
    ];
    assert_eq!(replies[0], want);
    assert_eq!(sw.counters().arp_answered, 1);
    // The requester's own binding was learned.
    assert_eq!(
        sw.neighbours().lookup(&IpAddr::V4(IP_LOCAL), t0),
        Some(LOCAL)
    );
}

#[test]
fn arp_not_answered_when_it_should_cross() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    sw.from_peer(t0, "b", &is_at(MB, IP_B));
    let mut replies = Vec::new();
    // Peer dead: the request is flooded, so whoever has the address answers.
    let d = sw.from_tap(t0, &who_has(IP_B), |p| p != "b", &mut replies);
    assert_eq!(d, Delivery::Flood);
    // A DAD probe (sender 0.0.0.0).
    let probe = arp(
        1,
        MacAddr::BROADCAST,
        (LOCAL, Ipv4Addr::UNSPECIFIED),
        (MacAddr::ZERO, IP_B),
    );
    assert_eq!(
        sw.from_tap(t0, &probe, all_alive, &mut replies),
        Delivery::Flood
    );
    // A gratuitous announcement of one's own address.
    let announce = arp(1, MacAddr::BROADCAST, (LOCAL, IP_B), (MacAddr::ZERO, IP_B));
    assert_eq!(
        sw.from_tap(t0, &announce, all_alive, &mut replies),
        Delivery::Flood
    );
    assert_eq!(
        sw.counters().neighbour_conflicts,
        1,
        "LOCAL claimed IP_B from MB"
    );
    sw.from_peer(t0, "b", &is_at(MB, IP_B));
    // A unicast request (reachability probe) goes to its destination.
    let unicast = arp(1, MB, (LOCAL, IP_LOCAL), (MB, IP_B));
    assert_eq!(
        sw.from_tap(t0, &unicast, all_alive, &mut replies),
        Delivery::Peer("b".into())
    );
    // An unknown address.
    let unknown = who_has(Ipv4Addr::new(10, 0, 0, 99));
    assert_eq!(
        sw.from_tap(t0, &unknown, all_alive, &mut replies),
        Delivery::Flood
    );
    // An expired binding.
    let later = t0 + Duration::from_secs(300);
    assert_eq!(
        sw.from_tap(later, &who_has(IP_B), all_alive, &mut replies),
        Delivery::Flood
    );
    // Answering turned off.
    sw.from_peer(later, "b", &is_at(MB, IP_B));
    sw.reconfigure(SwitchConfig {
        answer_arp: false,
        ..SwitchConfig::default()
    });
    assert_eq!(
        sw.from_tap(later, &who_has(IP_B), all_alive, &mut replies),
        Delivery::Flood
    );
    assert!(replies.is_empty());
    assert_eq!(sw.counters().arp_answered, 0);
}

#[test]
fn arp_for_a_local_station_is_dropped() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    let ip2 = Ipv4Addr::new(10, 0, 0, 11);
    let g = arp(2, MacAddr::BROADCAST, (LOCAL2, ip2), (MacAddr::ZERO, ip2));
    assert_eq!(tap(&mut sw, t0, &g), Delivery::Flood);
    assert_eq!(tap(&mut sw, t0, &who_has(ip2)), Delivery::Drop);
    assert_eq!(sw.counters().local_target, 1);
}

#[test]
fn neighbour_conflict_event() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    sw.from_peer(t0, "b", &is_at(MB, IP_B));
    sw.from_peer(t0, "b", &is_at(MB, IP_B));
    sw.from_peer(t0, "c", &is_at(MC, IP_B));
    let ev = events(&mut sw);
    assert_eq!(
        ev.last(),
        Some(&SwitchEvent::NeighbourConflict {
            ip: IpAddr::V4(IP_B),
            old: MB,
            new: MC
        })
    );
    assert_eq!(sw.counters().neighbour_conflicts, 1);
    assert_eq!(sw.neighbours().lookup(&IpAddr::V4(IP_B), t0), Some(MC));
}

fn solicited_node(ip: Ipv6Addr) -> (Ipv6Addr, MacAddr) {
    let o = ip.octets();
    (
        Ipv6Addr::from([
            0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
        ]),
        MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]),
    )
}

/// An ND message built by etherparse: `icmp_type` with `body` after the first 8 bytes.
fn nd_frame(
    eth: (MacAddr, MacAddr),
    ip: (Ipv6Addr, Ipv6Addr),
    icmp_type: u8,
    flags: u8,
    body: &[u8],
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(eth.1 .0, eth.0 .0)
        .ipv6(ip.1.octets(), ip.0.octets(), 255)
        .icmpv6_raw(icmp_type, 0, [flags, 0, 0, 0]);
    let mut out = Vec::new();
    builder.write(&mut out, body).unwrap();
    out
}

fn ll_option(kind: u8, mac: MacAddr) -> Vec<u8> {
    let mut o = vec![kind, 1];
    o.extend_from_slice(&mac.0);
    o
}

#[test]
fn ns_answered_with_a_valid_checksum() {
    let t0 = crate::test_clock::start();
    let mut sw = Switch::new(SwitchConfig::default());
    let ip_b: Ipv6Addr = "fd00::b".parse().unwrap();
    let ip_local: Ipv6Addr = "fd00::1".parse().unwrap();
    // Peer b's station advertises itself (unsolicited, to all nodes).
    let mut body = ip_b.octets().to_vec();
    body.extend(ll_option(2, MB));
    let na = nd_frame(
        (ALL_NODES_MAC, MB),
        ("ff02::1".parse().unwrap(), ip_b),
        136,
        0x20,
        &body,
    );
    assert_eq!(sw.from_peer(t0, "b", &na), Delivery::Tap);
    assert_eq!(sw.neighbours().lookup(&IpAddr::V6(ip_b), t0), Some(MB));

    // The local host solicits it.
    let (group, group_mac) = solicited_node(ip_b);
    let mut body = ip_b.octets().to_vec();
    body.extend(ll_option(1, LOCAL));
    let ns = nd_frame((group_mac, LOCAL), (group, ip_local), 135, 0, &body);
    let mut replies = Vec::new();
    assert_eq!(
        sw.from_tap(t0, &ns, all_alive, &mut replies),
        Delivery::Drop
    );
    assert_eq!(sw.counters().nd_answered, 1);
    assert_eq!(
        sw.neighbours().lookup(&IpAddr::V6(ip_local), t0),
        Some(LOCAL)
    );
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply.len(), NA_FRAME_LEN);
    let eth = EthernetFrame::parse(reply).unwrap();
    assert_eq!(
        (eth.dst(), eth.src(), eth.ethertype()),
        (LOCAL, MB, ETHERTYPE_IPV6)
    );
    let ip = eth.payload();
    assert_eq!(&ip[..8], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
    assert_eq!(&ip[8..24], &ip_b.octets());
    assert_eq!(&ip[24..40], &ip_local.octets());
    let icmp = Icmpv6Slice::from_slice(&ip[40..]).unwrap();
    assert!(icmp.is_checksum_valid(ip_b.octets(), ip_local.octets()));
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (136, 0));
    assert_eq!(&ip[44..48], &[0x60, 0, 0, 0], "solicited + override");
    assert_eq!(&ip[48..64], &ip_b.octets());
    assert_eq!(&ip[64..72], &ll_option(2, MB)[..]);

    // Not answered: dead peer, DAD (source ::), or unicast NUD probes.
    let d = sw.from_tap(t0, &ns, |_| false, &mut replies);
    assert_eq!(d, Delivery::Flood);
    let dad = nd_frame(
        (group_mac, LOCAL),
        (group, Ipv6Addr::UNSPECIFIED),
        135,
        0,
        &ip_b.octets(),
    );
    assert_eq!(
        sw.from_tap(t0, &dad, all_alive, &mut replies),
        Delivery::Flood
    );
    let nud = nd_frame((MB, LOCAL), (ip_b, ip_local), 135, 0, &body);
    assert_eq!(
        sw.from_tap(t0, &nud, all_alive, &mut replies),
        Delivery::Peer("b".into())
    );
    assert_eq!(replies.len(), 1);
    // A solicitation with a bad checksum is not ND at all: just flooded.
    let mut bad = ns.clone();
    bad[14 + 40 + 2] ^= 0xff;
    assert_eq!(
        sw.from_tap(t0, &bad, all_alive, &mut replies),
        Delivery::Flood
    );
    assert_eq!(sw.counters().nd_answered, 1);
}
