//! IPv6 frames for simulated hosts: Neighbour Solicitations and
//! Advertisements, ICMPv6 echo, with correct checksums.

use meshd::switch::nd::icmpv6_checksum;
use meshd::switch::{parse_nd, EthernetFrame, NdMessage};
use std::net::Ipv6Addr;

/// The identifier of every echo the simulated clients send.
pub const ECHO_ID: u16 = 0x4d53;

pub fn solicited_node(ip: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let o = ip.octets();
    let group = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ]);
    (group, [0x33, 0x33, 0xff, o[13], o[14], o[15]])
}

/// An IPv6 frame carrying ICMPv6 `icmp` (checksum filled in), hop limit `hop`.
pub fn icmp6(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop: u8,
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    icmp[2] = 0;
    icmp[3] = 0;
    let sum = icmpv6_checksum(&src, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hop]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// A Neighbour Solicitation for `target` from `src` (`::` for DAD, then no option).
pub fn ns(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let (group, group_mac) = solicited_node(target);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    if !src.is_unspecified() {
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&src_mac);
    }
    icmp6(group_mac, src_mac, src, group, 255, icmp)
}

/// A Neighbour Advertisement of `target` at `mac` (S set when `to` is unicast).
pub fn na(dst_mac: [u8; 6], mac: [u8; 6], target: Ipv6Addr, to: Ipv6Addr) -> Vec<u8> {
    let flags = if to.is_multicast() { 0x20 } else { 0x60 };
    let mut icmp = vec![136, 0, 0, 0, flags, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    icmp6(dst_mac, mac, target, to, 255, icmp)
}

/// An echo request (128) or reply (129) with `payload`.
pub fn echo(
    kind: u8,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![kind, 0, 0, 0];
    icmp.extend_from_slice(&ECHO_ID.to_be_bytes());
    icmp.extend_from_slice(&[0, 0]);
    icmp.extend_from_slice(payload);
    icmp6(dst_mac, src_mac, src, dst, 64, icmp)
}

/// (src, dst, type, payload after id and sequence) of an ICMPv6 echo.
pub fn parse_echo(f: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, u8, &[u8])> {
    if f.len() < 62 || f[12..14] != [0x86, 0xdd] || f[20] != 58 || !matches!(f[54], 128 | 129) {
        return None;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).ok()?);
    Some((src, dst, f[54], &f[62..]))
}

pub fn nd_of(f: &[u8]) -> Option<NdMessage> {
    parse_nd(&EthernetFrame::parse(f).ok()?)
}
