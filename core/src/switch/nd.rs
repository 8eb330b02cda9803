//! IPv6 Neighbour Discovery (RFC 4861) over Ethernet: parsing solicitations and
//! advertisements ([`parse_nd`]) and building the advertisement that answers a
//! solicitation, with the ICMPv6 checksum.

use std::net::Ipv6Addr;

use super::frame::{be16, ipv6_at, EthernetFrame, ETHERTYPE_IPV6, ETH_HEADER_LEN, IPPROTO_ICMPV6};
use super::mac::MacAddr;

/// ICMPv6 type of a Neighbour Solicitation.
pub const ICMPV6_NEIGHBOUR_SOLICITATION: u8 = 135;
/// ICMPv6 type of a Neighbour Advertisement.
pub const ICMPV6_NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// `ff02::1`, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// `33:33:00:00:00:01`, the Ethernet group address of `ff02::1`.
pub const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
/// Length of the frames [`build_neighbour_advertisement`] returns: Ethernet,
/// IPv6, a 24-byte advertisement and one 8-byte link-layer address option.
pub const NA_FRAME_LEN: usize = ETH_HEADER_LEN + IPV6_HEADER_LEN + NA_LEN;

pub(super) const IPV6_HEADER_LEN: usize = 40;
pub(super) const ND_FIXED_LEN: usize = 24;
const NA_LEN: usize = ND_FIXED_LEN + 8;
pub(super) const OPT_SOURCE_LL: u8 = 1;
pub(super) const OPT_TARGET_LL: u8 = 2;
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// A Neighbour Solicitation and the frame that carried it.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub struct NeighbourSolicitation {
    /// Ethernet source of the frame (where an answer goes).
    pub eth_src: MacAddr,
    /// IPv6 source (`::` for duplicate address detection).
    pub src_ip: Ipv6Addr,
    /// IPv6 destination (usually the target's solicited-node group).
    pub dst_ip: Ipv6Addr,
    /// The address being resolved.
    pub target: Ipv6Addr,
    /// The source link-layer address option, if present.
    pub source_ll: Option<MacAddr>,
}

/// A Neighbour Advertisement.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub struct NeighbourAdvertisement {
    /// IPv6 source.
    pub src_ip: Ipv6Addr,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The target link-layer address option, if present.
    pub target_ll: Option<MacAddr>,
    /// The R flag.
    pub router: bool,
    /// The S flag.
    pub solicited: bool,
    /// The O flag.
    pub override_flag: bool,
}

/// A parsed Neighbour Discovery message.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub enum NdMessage {
    /// ICMPv6 type 135.
    Solicitation(NeighbourSolicitation),
    /// ICMPv6 type 136.
    Advertisement(NeighbourAdvertisement),
}

/// The Neighbour Solicitation or Advertisement `frame` carries, or `None` if it
/// carries neither or one that fails RFC 4861's validity checks: IPv6 with
/// ICMPv6 directly as next header, hop limit 255, a correct ICMPv6 checksum,
/// code 0, at least 24 bytes, a unicast target, options of non-zero length
/// that fit, no source link-layer option in a solicitation from `::` (which
/// must go to a solicited-node group), and no S flag on an advertisement to a
/// multicast group. Trailing Ethernet padding beyond the IPv6 payload length
/// is ignored.
pub fn parse_nd(frame: &EthernetFrame<'_>) -> Option<NdMessage> {
    if frame.ethertype() != ETHERTYPE_IPV6 {
        return None;
    }
    let ip = frame.payload();
    // Cheap rejections first: this runs on every IPv6 frame.
    if ip.len() < IPV6_HEADER_LEN + ND_FIXED_LEN
        || ip[0] >> 4 != 6
        || ip[6] != IPPROTO_ICMPV6
        || !matches!(
            ip[IPV6_HEADER_LEN],
            ICMPV6_NEIGHBOUR_SOLICITATION | ICMPV6_NEIGHBOUR_ADVERTISEMENT
        )
    {
        return None;
    }
    if ip[7] != 255 {
        return None;
    }
    let payload_len = usize::from(be16(ip, 4)?);
    let icmp = ip.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)?;
    if icmp.len() < ND_FIXED_LEN || icmp[1] != 0 {
        return None;
    }
    let src_ip = ipv6_at(ip, 8)?;
    let dst_ip = ipv6_at(ip, 24)?;
    if icmpv6_checksum(&src_ip, &dst_ip, icmp) != 0 {
        return None;
    }
    let target = ipv6_at(icmp, 8)?;
    if target.is_multicast() {
        return None;
    }
    let wanted = if icmp[0] == ICMPV6_NEIGHBOUR_SOLICITATION {
        OPT_SOURCE_LL
    } else {
        OPT_TARGET_LL
    };
    let link_layer = link_layer_option(&icmp[ND_FIXED_LEN..], wanted).ok()?;
    if icmp[0] == ICMPV6_NEIGHBOUR_SOLICITATION {
        if src_ip.is_unspecified() && (link_layer.is_some() || !is_solicited_node(&dst_ip)) {
            return None;
        }
        Some(NdMessage::Solicitation(NeighbourSolicitation {
            eth_src: frame.src(),
            src_ip,
            dst_ip,
            target,
            source_ll: link_layer,
        }))
    } else {
        let flags = icmp[4];
        if dst_ip.is_multicast() && flags & FLAG_SOLICITED != 0 {
            return None;
        }
        Some(NdMessage::Advertisement(NeighbourAdvertisement {
            src_ip,
            target,
            target_ll: link_layer,
            router: flags & FLAG_ROUTER != 0,
            solicited: flags & FLAG_SOLICITED != 0,
            override_flag: flags & FLAG_OVERRIDE != 0,
        }))
    }
}

/// Whether `ip` is in `ff02::1:ff00:0/104`.
fn is_solicited_node(ip: &Ipv6Addr) -> bool {
    let o = ip.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// Walks ND options: the Ethernet address of the first option of type
/// `wanted`, or `Err` if an option has length 0 or overruns the message.
fn link_layer_option(mut options: &[u8], wanted: u8) -> Result<Option<MacAddr>, ()> {
    let mut found = None;
    while !options.is_empty() {
        let (kind, units) = match options {
            [kind, units, ..] => (*kind, usize::from(*units)),
            _ => return Err(()),
        };
        let len = units * 8;
        if len == 0 || len > options.len() {
            return Err(());
        }
        if kind == wanted && found.is_none() {
            found = MacAddr::from_slice(&options[2..len]);
        }
        options = &options[len..];
    }
    Ok(found)
}

/// The ICMPv6 checksum of `icmp` (checksum field included as it is) with the
/// IPv6 pseudo-header: 0 when an existing checksum is correct; the value to
/// store when the field holds 0.
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for addr in [src, dst] {
        for word in addr.segments() {
            sum += u64::from(word);
        }
    }
    let len = icmp.len() as u64;
    sum += (len >> 16) + (len & 0xffff) + u64::from(IPPROTO_ICMPV6);
    let mut pairs = icmp.chunks_exact(2);
    for pair in &mut pairs {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The advertisement answering `solicitation` with `answer_mac` as the
/// target's link-layer address: an untagged 86-byte frame from `answer_mac`,
/// IPv6 source the target address, hop limit 255, flags Solicited + Override,
/// a target link-layer address option and a correct checksum; sent to the
/// solicitor's IPv6 and Ethernet addresses, or, if the solicitation came from
/// `::` (duplicate address detection), to `ff02::1` / `33:33:00:00:00:01`
/// with the Solicited flag clear, as RFC 4861 §7.2.4 requires.
pub fn build_neighbour_advertisement(
    solicitation: &NeighbourSolicitation,
    answer_mac: MacAddr,
) -> Vec<u8> {
    let (dst_ip, dst_mac, flags) = if solicitation.src_ip.is_unspecified() {
        (ALL_NODES, ALL_NODES_MAC, FLAG_OVERRIDE)
    } else {
        (
            solicitation.src_ip,
            solicitation.eth_src,
            FLAG_SOLICITED | FLAG_OVERRIDE,
        )
    };
    let src_ip = solicitation.target;
    let mut f = Vec::with_capacity(NA_FRAME_LEN);
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&answer_mac.0);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    // IPv6: version 6, no traffic class or flow label.
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(NA_LEN as u16).to_be_bytes());
    f.extend_from_slice(&[IPPROTO_ICMPV6, 255]);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&dst_ip.octets());
    let icmp_at = f.len();
    f.extend_from_slice(&[ICMPV6_NEIGHBOUR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0]);
    f.extend_from_slice(&solicitation.target.octets());
    f.extend_from_slice(&[OPT_TARGET_LL, 1]);
    f.extend_from_slice(&answer_mac.0);
    let checksum = icmpv6_checksum(&src_ip, &dst_ip, &f[icmp_at..]);
    f[icmp_at + 2..icmp_at + 4].copy_from_slice(&checksum.to_be_bytes());
    f
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::{Icmpv6Slice, PacketBuilder};
    use proptest::prelude::*;

    const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);
    const ANSWER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);

    fn host_ip() -> Ipv6Addr {
        "fd00::c".parse().unwrap()
    }
    fn target_ip() -> Ipv6Addr {
        "fd00::a".parse().unwrap()
    }
    fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
        let o = ip.octets();
        Ipv6Addr::from([
            0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
        ])
    }

    /// A solicitation built by etherparse (an independent checksum).
    pub(crate) fn ns_frame_from(
        eth_src: MacAddr,
        src: Ipv6Addr,
        target: Ipv6Addr,
        sll: Option<MacAddr>,
        hop: u8,
    ) -> Vec<u8> {
        let mut f = ns_frame(src, target, sll, hop);
        f[6..12].copy_from_slice(&eth_src.0);
        f
    }

    /// A solicitation built by etherparse (an independent checksum).
    pub(crate) fn ns_frame(
        src: Ipv6Addr,
        target: Ipv6Addr,
        sll: Option<MacAddr>,
        hop: u8,
    ) -> Vec<u8> {
        let dst = solicited_node(target);
        let o = dst.octets();
        let dst_mac = [0x33, 0x33, o[12], o[13], o[14], o[15]];
        let mut body = target.octets().to_vec();
        if let Some(mac) = sll {
            body.extend_from_slice(&[OPT_SOURCE_LL, 1]);
            body.extend_from_slice(&mac.0);
        }
        let builder = PacketBuilder::ethernet2(HOST.0, dst_mac)
            .ipv6(src.octets(), dst.octets(), hop)
            .icmpv6_raw(ICMPV6_NEIGHBOUR_SOLICITATION, 0, [0; 4]);
        let mut out = Vec::new();
        builder.write(&mut out, &body).unwrap();
        out
    }

    fn parse(frame: &[u8]) -> Option<NdMessage> {
        parse_nd(&EthernetFrame::parse(frame).unwrap())
    }

    #[test]
    fn solicitation_parsed() {
        let f = ns_frame(host_ip(), target_ip(), Some(HOST), 255);
        let want = NeighbourSolicitation {
            eth_src: HOST,
            src_ip: host_ip(),
            dst_ip: solicited_node(target_ip()),
            target: target_ip(),
            source_ll: Some(HOST),
        };
        assert_eq!(parse(&f), Some(NdMessage::Solicitation(want)));
        // Ethernet padding is ignored.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(parse(&padded), Some(NdMessage::Solicitation(want)));
        // Without the option.
        let f = ns_frame(host_ip(), target_ip(), None, 255);
        assert_eq!(
            parse(&f),
            Some(NdMessage::Solicitation(NeighbourSolicitation {
                source_ll: None,
                ..want
            }))
        );
    }

    #[test]
    fn invalid_solicitations_refused() {
        let good = ns_frame(host_ip(), target_ip(), Some(HOST), 255);
        // Hop limit below 255.
        assert_eq!(
            parse(&ns_frame(host_ip(), target_ip(), Some(HOST), 64)),
            None
        );
        // DAD (source ::) with a source link-layer option.
        assert_eq!(
            parse(&ns_frame(
                Ipv6Addr::UNSPECIFIED,
                target_ip(),
                Some(HOST),
                255
            )),
            None
        );
        assert!(parse(&ns_frame(Ipv6Addr::UNSPECIFIED, target_ip(), None, 255)).is_some());
        // Any flipped byte in the ICMPv6 message or the addresses breaks the checksum.
        for at in [22, 30, 54, 56, 70, 80, 85] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            assert_eq!(parse(&bad), None, "byte {at}");
        }
        // An option of length zero, or one running past the end (checksum fixed up).
        for (units, cut) in [(0u8, 0usize), (2, 0)] {
            let mut bad = good.clone();
            bad[14 + 40 + 24 + 1] = units;
            bad.truncate(bad.len() - cut);
            fix_checksum(&mut bad);
            assert_eq!(parse(&bad), None);
        }
        // A multicast target.
        let f = ns_frame(host_ip(), "ff02::1".parse().unwrap(), None, 255);
        assert_eq!(parse(&f), None);
        // Truncated IPv6 payload.
        assert_eq!(parse(&good[..good.len() - 1]), None);
        // Not ICMPv6 / not ND.
        let mut other = good.clone();
        other[14 + 40] = 128;
        fix_checksum(&mut other);
        assert_eq!(parse(&other), None);
    }

    fn fix_checksum(frame: &mut [u8]) {
        let at = 14 + 40;
        let plen = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
        let end = (at + plen).min(frame.len());
        frame[at + 2] = 0;
        frame[at + 3] = 0;
        let src = ipv6_at(frame, 22).unwrap();
        let dst = ipv6_at(frame, 38).unwrap();
        let sum = icmpv6_checksum(&src, &dst, &frame[at..end]);
        frame[at + 2..at + 4].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn advertisement_answers_solicitation() {
        let f = ns_frame(host_ip(), target_ip(), Some(HOST), 255);
        let Some(NdMessage::Solicitation(ns)) = parse(&f) else {
            panic!()
        };
        let na = build_neighbour_advertisement(&ns, ANSWER);
        assert_eq!(na.len(), NA_FRAME_LEN);
        let eth = EthernetFrame::parse(&na).unwrap();
        assert_eq!(
            (eth.dst(), eth.src(), eth.ethertype()),
            (HOST, ANSWER, ETHERTYPE_IPV6)
        );
        let ip = eth.payload();
        assert_eq!(&ip[..8], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(ipv6_at(ip, 8), Some(target_ip()));
        assert_eq!(ipv6_at(ip, 24), Some(host_ip()));
        // etherparse agrees on the checksum.
        let icmp = Icmpv6Slice::from_slice(&ip[40..]).unwrap();
        assert!(icmp.is_checksum_valid(target_ip().octets(), host_ip().octets()));
        assert_eq!(&ip[40..42], &[136, 0]);
        assert_eq!(&ip[44..48], &[0x60, 0, 0, 0]);
        assert_eq!(ipv6_at(ip, 48), Some(target_ip()));
        assert_eq!(&ip[64..66], &[2, 1]);
        assert_eq!(&ip[66..72], &ANSWER.0);
        // And our own parser reads it back.
        assert_eq!(
            parse(&na),
            Some(NdMessage::Advertisement(NeighbourAdvertisement {
                src_ip: target_ip(),
                target: target_ip(),
                target_ll: Some(ANSWER),
                router: false,
                solicited: true,
                override_flag: true,
            }))
        );
    }

    #[test]
    fn advertisement_to_all_nodes_for_dad() {
        let f = ns_frame(Ipv6Addr::UNSPECIFIED, target_ip(), None, 255);
        let Some(NdMessage::Solicitation(ns)) = parse(&f) else {
            panic!()
        };
        let na = build_neighbour_advertisement(&ns, ANSWER);
        let eth = EthernetFrame::parse(&na).unwrap();
        assert_eq!(eth.dst(), ALL_NODES_MAC);
        let ip = eth.payload();
        assert_eq!(ipv6_at(ip, 24), Some(ALL_NODES));
        assert_eq!(ip[44], 0x20, "override only");
        let icmp = Icmpv6Slice::from_slice(&ip[40..]).unwrap();
        assert!(icmp.is_checksum_valid(target_ip().octets(), ALL_NODES.octets()));
        let Some(NdMessage::Advertisement(adv)) = parse(&na) else {
            panic!()
        };
        assert!(!adv.solicited && adv.override_flag);
    }

    #[test]
    fn checksum_odd_length() {
        // RFC 1071 pads an odd byte with zero on the right. Pseudo-header with
        // two :: addresses: length 1 + next header 58; data 0x1200.
        let a = Ipv6Addr::UNSPECIFIED;
        assert_eq!(icmpv6_checksum(&a, &a, &[0x12]), !(0x1200u16 + 1 + 58));
    }

    proptest! {
        #[test]
        fn random_ipv6_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..120), nd in any::<bool>()) {
            let mut f = ns_frame(host_ip(), target_ip(), Some(HOST), 255)[..14].to_vec();
            let mut payload = payload;
            let nd = nd && payload.len() >= 64;
            if nd {
                payload[0] = 0x60;
                payload[6] = 58;
                payload[7] = 255;
                payload[40] = if payload[41] & 1 == 0 { 135 } else { 136 };
                payload[41] = 0;
                let plen = (payload.len() - 40) as u16;
                payload[4..6].copy_from_slice(&plen.to_be_bytes());
            }
            f.extend_from_slice(&payload);
            if nd {
                // A correct checksum, so that the option walk is reached.
                fix_checksum(&mut f);
            }
            let _ = parse(&f);
        }
    }
}
