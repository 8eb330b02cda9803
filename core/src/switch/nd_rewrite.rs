//! Rewriting the link-layer address a Neighbour Discovery message teaches
//! (the source link-layer option of a solicitation, the target link-layer
//! option of an advertisement, and the Ethernet source), with the ICMPv6
//! checksum recomputed: how a holder's own MAC for an IPv6 VIP is kept from
//! every host.

use super::frame::{be16, ipv6_at, set_src_mac, EthernetFrame};
use super::mac::MacAddr;
use super::nd::{
    icmpv6_checksum, parse_nd, NdMessage, IPV6_HEADER_LEN, ND_FIXED_LEN, OPT_SOURCE_LL,
    OPT_TARGET_LL,
};

/// Sets the Ethernet source of the valid Neighbour Solicitation or
/// Advertisement in `frame` (see [`parse_nd`]) and the MAC in every
/// link-layer option it carries for its sender (source link-layer options of
/// a solicitation, target link-layer options of an advertisement) to `new`,
/// and recomputes the ICMPv6 checksum. Returns false, leaving `frame`
/// untouched, if it carries no valid ND message. Options of other types are
/// left alone; a longer link-layer option gets the MAC in its first six
/// bytes (what [`parse_nd`] reads from it).
pub fn rewrite_nd_link_layer(frame: &mut [u8], new: MacAddr) -> bool {
    let (ip_at, wanted) = {
        let Ok(eth) = EthernetFrame::parse(frame) else {
            return false;
        };
        let wanted = match parse_nd(&eth) {
            Some(NdMessage::Solicitation(_)) => OPT_SOURCE_LL,
            Some(NdMessage::Advertisement(_)) => OPT_TARGET_LL,
            None => return false,
        };
        (eth.header_len(), wanted)
    };
    // parse_nd checked every bound below; `get` keeps it so without panics.
    let Some(payload_len) = be16(frame, ip_at + 4) else {
        return false;
    };
    let (Some(src), Some(dst)) = (ipv6_at(frame, ip_at + 8), ipv6_at(frame, ip_at + 24)) else {
        return false;
    };
    let icmp_at = ip_at + IPV6_HEADER_LEN;
    let Some(icmp) = frame.get_mut(icmp_at..icmp_at + usize::from(payload_len)) else {
        return false;
    };
    let mut at = ND_FIXED_LEN;
    while let Some(&[kind, units]) = icmp.get(at..at + 2) {
        let len = usize::from(units) * 8;
        if len == 0 {
            break;
        }
        if kind == wanted {
            if let Some(mac) = icmp.get_mut(at + 2..at + 8) {
                mac.copy_from_slice(&new.0);
            }
        }
        at += len;
    }
    icmp[2] = 0;
    icmp[3] = 0;
    let sum = icmpv6_checksum(&src, &dst, icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    set_src_mac(frame, new);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::nd::tests::{ns_frame, ns_frame_from};
    use crate::switch::nd::ICMPV6_NEIGHBOUR_ADVERTISEMENT;
    use etherparse::{Icmpv6Slice, PacketBuilder};
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    const HOLDER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const VMAC: MacAddr = MacAddr([0x06, 0x6d, 0x69, 0x9a, 0xb5, 0x47]);
    const CLIENT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);

    fn vip() -> Ipv6Addr {
        "fd00:1::10".parse().unwrap()
    }
    fn client() -> Ipv6Addr {
        "fd00:1::c".parse().unwrap()
    }

    /// An advertisement built by etherparse: `flags` (R/S/O), target, options.
    fn na_frame(
        dst_mac: MacAddr,
        dst: Ipv6Addr,
        flags: u8,
        target: Ipv6Addr,
        options: &[u8],
    ) -> Vec<u8> {
        let mut body = target.octets().to_vec();
        body.extend_from_slice(options);
        let builder = PacketBuilder::ethernet2(HOLDER.0, dst_mac.0)
            .ipv6(vip().octets(), dst.octets(), 255)
            .icmpv6_raw(ICMPV6_NEIGHBOUR_ADVERTISEMENT, 0, [flags, 0, 0, 0]);
        let mut out = Vec::new();
        builder.write(&mut out, &body).unwrap();
        out
    }

    fn tll(mac: MacAddr) -> Vec<u8> {
        let mut o = vec![OPT_TARGET_LL, 1];
        o.extend_from_slice(&mac.0);
        o
    }

    /// etherparse's verdict on the ICMPv6 checksum of an untagged frame.
    fn checksum_ok(frame: &[u8]) -> bool {
        let src = ipv6_at(frame, 22).unwrap();
        let dst = ipv6_at(frame, 38).unwrap();
        Icmpv6Slice::from_slice(&frame[54..])
            .unwrap()
            .is_checksum_valid(src.octets(), dst.octets())
    }

    fn parsed(frame: &[u8]) -> NdMessage {
        parse_nd(&EthernetFrame::parse(frame).unwrap()).unwrap()
    }

    #[test]
    fn solicited_advertisement_rewritten() {
        let mut f = na_frame(CLIENT, client(), 0x60, vip(), &tll(HOLDER));
        let before = f.clone();
        assert!(checksum_ok(&f));
        assert!(rewrite_nd_link_layer(&mut f, VMAC));
        assert!(checksum_ok(&f), "etherparse agrees on the new checksum");
        let NdMessage::Advertisement(na) = parsed(&f) else {
            panic!()
        };
        assert_eq!(na.target_ll, Some(VMAC));
        assert!(na.solicited && na.override_flag);
        assert_eq!(&f[6..12], &VMAC.0);
        assert_eq!(&f[..6], &CLIENT.0, "destination untouched");
        // Only the Ethernet source, the option and the checksum changed.
        let changed: Vec<usize> = (0..f.len()).filter(|&i| f[i] != before[i]).collect();
        assert!(changed
            .iter()
            .all(|&i| (6..12).contains(&i) || (56..58).contains(&i) || (80..86).contains(&i)));
    }

    #[test]
    fn unsolicited_advertisement_rewritten() {
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut f = na_frame(
            MacAddr([0x33, 0x33, 0, 0, 0, 1]),
            all_nodes,
            0x20,
            vip(),
            &tll(HOLDER),
        );
        assert!(rewrite_nd_link_layer(&mut f, VMAC));
        assert!(checksum_ok(&f));
        let NdMessage::Advertisement(na) = parsed(&f) else {
            panic!()
        };
        assert_eq!(na.target_ll, Some(VMAC));
        assert!(!na.solicited);
    }

    #[test]
    fn advertisement_without_option_gets_the_source_only() {
        let mut f = na_frame(CLIENT, client(), 0x40, vip(), &[]);
        assert!(rewrite_nd_link_layer(&mut f, VMAC));
        assert!(checksum_ok(&f));
        assert_eq!(&f[6..12], &VMAC.0);
        // Other options (here an MTU option, type 5) are left as they are.
        let mut opts = vec![5, 1, 0, 0, 0, 0, 5, 0xdc];
        opts.extend(tll(HOLDER));
        let mut f = na_frame(CLIENT, client(), 0x40, vip(), &opts);
        assert!(rewrite_nd_link_layer(&mut f, VMAC));
        assert!(checksum_ok(&f));
        assert_eq!(&f[78..86], &[5, 1, 0, 0, 0, 0, 5, 0xdc]);
        assert_eq!(&f[88..94], &VMAC.0);
    }

    #[test]
    fn solicitation_source_option_rewritten() {
        // A holder's kernel resolving a client from the VIP.
        let mut f = ns_frame_from(HOLDER, vip(), client(), Some(HOLDER), 255);
        assert!(checksum_ok(&f));
        assert!(rewrite_nd_link_layer(&mut f, VMAC));
        assert!(checksum_ok(&f));
        let NdMessage::Solicitation(ns) = parsed(&f) else {
            panic!()
        };
        assert_eq!((ns.eth_src, ns.source_ll), (VMAC, Some(VMAC)));
        assert_eq!((ns.src_ip, ns.target), (vip(), client()));
    }

    #[test]
    fn invalid_messages_left_alone() {
        // A broken checksum.
        let mut f = na_frame(CLIENT, client(), 0x60, vip(), &tll(HOLDER));
        f[60] ^= 1;
        let before = f.clone();
        assert!(!rewrite_nd_link_layer(&mut f, VMAC));
        assert_eq!(f, before);
        // Hop limit below 255, not ND, not IPv6, a runt.
        let mut f = ns_frame(client(), vip(), Some(CLIENT), 64);
        assert!(!rewrite_nd_link_layer(&mut f, VMAC));
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[8, 6]);
        assert!(!rewrite_nd_link_layer(&mut arp, VMAC));
        assert!(!rewrite_nd_link_layer(&mut [0u8; 10], VMAC));
    }

    proptest! {
        #[test]
        fn rewriting_keeps_messages_valid(
            extra in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..90,
            flip in any::<(usize, u8)>(),
        ) {
            // An advertisement with arbitrary trailing options (often invalid).
            let mut opts = tll(HOLDER);
            opts.extend_from_slice(&extra);
            let mut f = na_frame(CLIENT, client(), 0x60, vip(), &opts);
            let at = flip.0 % f.len();
            f[at] ^= flip.1;
            f.truncate(f.len().saturating_sub(cut));
            let valid = EthernetFrame::parse(&f).ok().and_then(|e| parse_nd(&e)).is_some();
            let before = f.clone();
            let done = rewrite_nd_link_layer(&mut f, VMAC);
            prop_assert_eq!(done, valid);
            if done {
                let after = EthernetFrame::parse(&f).ok().and_then(|e| parse_nd(&e));
                prop_assert!(after.is_some(), "still valid after the rewrite");
            } else {
                prop_assert_eq!(f, before);
            }
        }
    }
}
