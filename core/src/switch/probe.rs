//! Probes a node sends on its own side of the TAP to find the station that
//! holds an address: an RFC 5227 ARP probe (IPv4) and a Neighbour
//! Solicitation (IPv6), both from a given MAC so the answer comes back to it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::arp::{ArpOp, ArpPacket, ARP_FRAME_LEN};
use super::frame::{ETHERTYPE_ARP, ETHERTYPE_IPV6, IPPROTO_ICMPV6};
use super::mac::MacAddr;
use super::nd::{icmpv6_checksum, ICMPV6_NEIGHBOUR_SOLICITATION, OPT_SOURCE_LL};

/// An ARP probe for `target` from `src`: a broadcast who-has with sender IP
/// 0.0.0.0 (RFC 5227), so the station that holds `target` answers (Linux
/// does, for any address it has) without adding anything to its neighbour
/// table; the answer is a unicast reply to `src` whose target IP is 0.0.0.0.
pub fn build_arp_probe(src: MacAddr, target: Ipv4Addr) -> Vec<u8> {
    let probe = ArpPacket {
        op: ArpOp::Request,
        sender_mac: src,
        sender_ip: Ipv4Addr::UNSPECIFIED,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    let mut f = Vec::with_capacity(ARP_FRAME_LEN);
    f.extend_from_slice(&MacAddr::BROADCAST.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    probe.write(&mut f);
    f
}

/// The link-local address (`fe80::/64` with the modified EUI-64 of `mac`)
/// that [`build_neighbour_probe`] solicits from: the answer comes back
/// addressed to it.
pub fn probe_source_ip(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

/// The solicited-node multicast group of `ip` and its Ethernet group.
fn solicited_node(ip: Ipv6Addr) -> (Ipv6Addr, MacAddr) {
    let o = ip.octets();
    let group = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ]);
    (group, MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]))
}

/// A Neighbour Solicitation for `target` from `src`: to the target's
/// solicited-node group, from [`probe_source_ip`]`(src)` with a source
/// link-layer option `src`, hop limit 255. Not from `::`: a solicitation from
/// `::` is duplicate address detection, and would make a station whose
/// address is still tentative give it up. The answer is a unicast
/// advertisement to `src`.
pub fn build_neighbour_probe(src: MacAddr, target: Ipv6Addr) -> Vec<u8> {
    const ICMP_LEN: usize = 24 + 8;
    let src_ip = probe_source_ip(src);
    let (dst_ip, dst_mac) = solicited_node(target);
    let mut f = Vec::with_capacity(14 + 40 + ICMP_LEN);
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(ICMP_LEN as u16).to_be_bytes());
    f.extend_from_slice(&[IPPROTO_ICMPV6, 255]);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&dst_ip.octets());
    let icmp_at = f.len();
    f.extend_from_slice(&[ICMPV6_NEIGHBOUR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&[OPT_SOURCE_LL, 1]);
    f.extend_from_slice(&src.0);
    let checksum = icmpv6_checksum(&src_ip, &dst_ip, &f[icmp_at..]);
    f[icmp_at + 2..icmp_at + 4].copy_from_slice(&checksum.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::{parse_nd, EthernetFrame, NdMessage};

    const SRC: MacAddr = MacAddr([0x02, 0x6d, 10, 1, 1, 10]);

    #[test]
    fn arp_probe_is_an_rfc5227_probe_from_src() {
        let f = build_arp_probe(SRC, Ipv4Addr::new(10, 1, 1, 10));
        let eth = EthernetFrame::parse(&f).unwrap();
        assert_eq!(eth.dst(), MacAddr::BROADCAST);
        assert_eq!(eth.src(), SRC);
        let arp = ArpPacket::from_frame(&eth).unwrap().unwrap();
        assert!(arp.is_probe());
        assert_eq!(arp.sender_mac, SRC);
        assert_eq!(arp.target_ip, Ipv4Addr::new(10, 1, 1, 10));
    }

    #[test]
    fn neighbour_probe_passes_rfc4861_checks() {
        let target: Ipv6Addr = "fd00:1::10".parse().unwrap();
        let f = build_neighbour_probe(SRC, target);
        let eth = EthernetFrame::parse(&f).unwrap();
        assert_eq!(eth.src(), SRC);
        assert_eq!(eth.dst(), MacAddr([0x33, 0x33, 0xff, 0, 0, 0x10]));
        let Some(NdMessage::Solicitation(ns)) = parse_nd(&eth) else {
            panic!("not a valid solicitation");
        };
        assert_eq!(ns.target, target);
        assert_eq!(ns.source_ll, Some(SRC));
        assert_eq!(
            ns.src_ip,
            "fe80::6d:aff:fe01:10a".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ns.src_ip, probe_source_ip(SRC));
    }
}
