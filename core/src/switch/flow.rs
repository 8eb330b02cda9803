//! Per-flow keys ([`FlowKey`]) for steering: the IP 5-tuple of a frame, or its
//! source MAC.

use std::net::{IpAddr, Ipv4Addr};

use super::frame::{
    be16, ipv6_at, EthernetFrame, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_ICMPV6, IPPROTO_SCTP,
    IPPROTO_TCP, IPPROTO_UDP,
};
use super::mac::MacAddr;

/// Length of [`FlowKey::canonical_bytes`]' output for an IP flow (the longest).
pub const FLOW_KEY_BYTES: usize = 38;

/// What identifies a flow for per-flow steering (see [`flow_key`]).
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub enum FlowKey {
    /// An IPv4 or IPv6 packet: addresses, protocol and (for TCP, UDP and SCTP) ports.
    Ip {
        /// Source address.
        src: IpAddr,
        /// Destination address.
        dst: IpAddr,
        /// IPv4 protocol or IPv6 next header.
        proto: u8,
        /// Source port, 0 when there is none (or the packet is a fragment).
        src_port: u16,
        /// Destination port, 0 when there is none (or the packet is a fragment).
        dst_port: u16,
    },
    /// Anything else: the source MAC.
    Mac {
        /// Source MAC of the frame.
        src: MacAddr,
    },
}

impl FlowKey {
    /// The key of the opposite direction of the same flow (addresses and ports
    /// swapped). A [`FlowKey::Mac`] has no direction and is returned unchanged.
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        match *self {
            FlowKey::Ip {
                src,
                dst,
                proto,
                src_port,
                dst_port,
            } => FlowKey::Ip {
                src: dst,
                dst: src,
                proto,
                src_port: dst_port,
                dst_port: src_port,
            },
            mac @ FlowKey::Mac { .. } => mac,
        }
    }

    /// The key as bytes whose layout is fixed (PROTOCOL §7.2), for hashes that
    /// must not change with the compiler: an IP flow is `0x01`, source and
    /// destination address as 16 bytes each (IPv4 as IPv4-mapped IPv6), the
    /// protocol, source and destination port (big-endian); a MAC flow is
    /// `0x02` and the 6 MAC bytes. Returns the buffer and the length used.
    pub fn canonical_bytes(&self) -> ([u8; FLOW_KEY_BYTES], usize) {
        let mut out = [0u8; FLOW_KEY_BYTES];
        let v6 = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        match *self {
            FlowKey::Ip {
                src,
                dst,
                proto,
                src_port,
                dst_port,
            } => {
                out[0] = 0x01;
                out[1..17].copy_from_slice(&v6(src));
                out[17..33].copy_from_slice(&v6(dst));
                out[33] = proto;
                out[34..36].copy_from_slice(&src_port.to_be_bytes());
                out[36..38].copy_from_slice(&dst_port.to_be_bytes());
                (out, FLOW_KEY_BYTES)
            }
            FlowKey::Mac { src } => {
                out[0] = 0x02;
                out[1..7].copy_from_slice(&src.0);
                (out, 7)
            }
        }
    }
}

/// Whether the protocol carries 16-bit source and destination ports first.
#[inline]
fn has_ports(proto: u8) -> bool {
    matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
}

/// The ports at the start of `l4`, or (0, 0) if it is too short.
#[inline]
fn ports(l4: &[u8]) -> (u16, u16) {
    match (be16(l4, 0), be16(l4, 2)) {
        (Some(s), Some(d)) => (s, d),
        _ => (0, 0),
    }
}

/// The flow `frame` belongs to.
///
/// IPv4 (header length from IHL) and IPv6 (fixed header; ports only when the
/// next header is directly TCP, UDP or SCTP; an ICMPv6 echo's identifier as
/// the requester's port) give [`FlowKey::Ip`]. Ports are
/// taken only from unfragmented IPv4 packets: every fragment of a datagram,
/// the first included, gets ports 0, so that all fragments of one datagram
/// map to the same key and reach the same host (IPv6 fragments already do, as
/// their next header is the fragment header). A truncated transport header
/// gives ports 0. Anything else, or a truncated or malformed IP header, gives
/// [`FlowKey::Mac`] with the source MAC.
pub fn flow_key(frame: &EthernetFrame<'_>) -> FlowKey {
    let ip = match frame.ethertype() {
        ETHERTYPE_IPV4 => ipv4_flow(frame.payload()),
        ETHERTYPE_IPV6 => ipv6_flow(frame.payload()),
        _ => None,
    };
    ip.unwrap_or(FlowKey::Mac { src: frame.src() })
}

fn ipv4_flow(p: &[u8]) -> Option<FlowKey> {
    let first = *p.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || p.len() < ihl {
        return None;
    }
    let flags_frag = be16(p, 6)?;
    let fragment = flags_frag & 0x3fff != 0; // MF set or a non-zero offset
    let proto = p[9];
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let (src_port, dst_port) = if !fragment && has_ports(proto) {
        ports(&p[ihl..])
    } else {
        (0, 0)
    };
    Some(FlowKey::Ip {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        proto,
        src_port,
        dst_port,
    })
}

/// ICMPv6 echo as a flow (PROTOCOL §7.2): a request's identifier is its
/// source port, a reply's its destination port, so that a request and its
/// reply are the two directions of one flow; other messages get (0, 0).
#[inline]
fn icmpv6_echo_ports(icmp: &[u8]) -> (u16, u16) {
    match (icmp.first(), be16(icmp, 4)) {
        (Some(&ICMPV6_ECHO_REQUEST), Some(id)) => (id, 0),
        (Some(&ICMPV6_ECHO_REPLY), Some(id)) => (0, id),
        _ => (0, 0),
    }
}

/// ICMPv6 Echo Request.
const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 Echo Reply.
const ICMPV6_ECHO_REPLY: u8 = 129;

fn ipv6_flow(p: &[u8]) -> Option<FlowKey> {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return None;
    }
    let proto = p[6];
    let src = ipv6_at(p, 8)?;
    let dst = ipv6_at(p, 24)?;
    let (src_port, dst_port) = if has_ports(proto) {
        ports(&p[40..])
    } else if proto == IPPROTO_ICMPV6 {
        icmpv6_echo_ports(&p[40..])
    } else {
        (0, 0)
    };
    Some(FlowKey::Ip {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        proto,
        src_port,
        dst_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::frame::tests::eth;
    use crate::switch::frame::ETHERTYPE_ARP;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);

    fn ipv4(proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0];
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(l4);
        p
    }

    #[test]
    fn flow_keys_ipv4() {
        let tcp = eth(
            B,
            A,
            None,
            ETHERTYPE_IPV4,
            &ipv4(6, 0x4000, &[0x30, 0x39, 0, 80]),
        );
        let key = flow_key(&EthernetFrame::parse(&tcp).unwrap());
        let want = FlowKey::Ip {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            proto: 6,
            src_port: 12345,
            dst_port: 80,
        };
        assert_eq!(key, want);
        assert_eq!(
            key.reversed(),
            FlowKey::Ip {
                src: "10.0.0.2".parse().unwrap(),
                dst: "10.0.0.1".parse().unwrap(),
                proto: 6,
                src_port: 80,
                dst_port: 12345,
            }
        );
        assert_eq!(key.reversed().reversed(), key);

        // Tagged frames give the same key.
        let tagged = eth(
            B,
            A,
            Some(7),
            ETHERTYPE_IPV4,
            &ipv4(6, 0, &[0x30, 0x39, 0, 80]),
        );
        assert_eq!(flow_key(&EthernetFrame::parse(&tagged).unwrap()), want);

        // Fragments (first: MF set; later: offset) and ICMP have no ports.
        for (proto, frag) in [(17, 0x2000), (17, 0x0010), (1, 0)] {
            let f = eth(
                B,
                A,
                None,
                ETHERTYPE_IPV4,
                &ipv4(proto, frag, &[0x30, 0x39, 0, 80]),
            );
            match flow_key(&EthernetFrame::parse(&f).unwrap()) {
                FlowKey::Ip {
                    src_port: 0,
                    dst_port: 0,
                    proto: p,
                    ..
                } => assert_eq!(p, proto),
                other => panic!("{other:?}"),
            }
        }
        // Truncated ports: IP key with ports 0.
        let f = eth(B, A, None, ETHERTYPE_IPV4, &ipv4(6, 0, &[0x30]));
        assert!(matches!(
            flow_key(&EthernetFrame::parse(&f).unwrap()),
            FlowKey::Ip {
                src_port: 0,
                dst_port: 0,
                ..
            }
        ));
        // IHL of 6 words: ports after the option.
        let mut p = ipv4(17, 0, &[0, 0, 0, 0, 0x00, 0x35, 0x04, 0x00]);
        p[0] = 0x46;
        let f = eth(B, A, None, ETHERTYPE_IPV4, &p);
        assert!(matches!(
            flow_key(&EthernetFrame::parse(&f).unwrap()),
            FlowKey::Ip {
                src_port: 53,
                dst_port: 1024,
                ..
            }
        ));
        // Truncated header, bad IHL, wrong version: MAC key.
        for bad in [&ipv4(6, 0, &[])[..19], &[0x44; 20][..], &[0x65; 20][..]] {
            let f = eth(B, A, None, ETHERTYPE_IPV4, bad);
            assert_eq!(
                flow_key(&EthernetFrame::parse(&f).unwrap()),
                FlowKey::Mac { src: A }
            );
        }
    }

    #[test]
    fn flow_keys_ipv6_and_other() {
        let src: Ipv6Addr = "fd00::1".parse().unwrap();
        let dst: Ipv6Addr = "fd00::2".parse().unwrap();
        let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[0x00, 0x35, 0x04, 0x00, 0, 8, 0, 0]);
        let f = eth(B, A, None, ETHERTYPE_IPV6, &p);
        assert_eq!(
            flow_key(&EthernetFrame::parse(&f).unwrap()),
            FlowKey::Ip {
                src: src.into(),
                dst: dst.into(),
                proto: 17,
                src_port: 53,
                dst_port: 1024
            }
        );
        p[6] = 44; // fragment header: no ports
        let f = eth(B, A, None, ETHERTYPE_IPV6, &p);
        assert!(matches!(
            flow_key(&EthernetFrame::parse(&f).unwrap()),
            FlowKey::Ip {
                proto: 44,
                src_port: 0,
                dst_port: 0,
                ..
            }
        ));
        let f = eth(B, A, None, ETHERTYPE_IPV6, &p[..39]);
        assert_eq!(
            flow_key(&EthernetFrame::parse(&f).unwrap()),
            FlowKey::Mac { src: A }
        );
        let f = eth(B, A, None, ETHERTYPE_ARP, &p);
        let key = flow_key(&EthernetFrame::parse(&f).unwrap());
        assert_eq!(key, FlowKey::Mac { src: A });
        assert_eq!(key.reversed(), key);
    }

    fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> FlowKey {
        let mut p = vec![0x60, 0, 0, 0, 0, icmp.len() as u8, 58, 64];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(icmp);
        flow_key(&EthernetFrame::parse(&eth(B, A, None, ETHERTYPE_IPV6, &p)).unwrap())
    }

    #[test]
    fn icmpv6_echo_is_a_flow() {
        let client: Ipv6Addr = "fd00:1::c".parse().unwrap();
        let vip: Ipv6Addr = "fd00:1::10".parse().unwrap();
        // Echo request, identifier 0x1234, sequence 7.
        let req = icmpv6(client, vip, &[128, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(
            req,
            FlowKey::Ip {
                src: client.into(),
                dst: vip.into(),
                proto: 58,
                src_port: 0x1234,
                dst_port: 0
            }
        );
        // Its reply is the reversed key; other sequence numbers, the same flow.
        let reply = icmpv6(vip, client, &[129, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(reply, req.reversed());
        assert_eq!(icmpv6(client, vip, &[128, 0, 9, 9, 0x12, 0x34, 1, 0]), req);
        // Another identifier is another flow.
        assert_ne!(icmpv6(client, vip, &[128, 0, 0, 0, 0x12, 0x35, 0, 7]), req);
        // Other ICMPv6 messages and truncated echoes get no ports.
        for icmp in [&[135u8, 0, 0, 0, 0, 0, 0, 0][..], &[128, 0, 0, 0, 0x12]] {
            assert!(matches!(
                icmpv6(client, vip, icmp),
                FlowKey::Ip {
                    proto: 58,
                    src_port: 0,
                    dst_port: 0,
                    ..
                }
            ));
        }
    }

    proptest! {
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(v) = EthernetFrame::parse(&bytes) {
                let _ = flow_key(&v).reversed();
            }
        }

        #[test]
        fn random_ip_payloads_never_panic(
            ethertype in prop_oneof![Just(ETHERTYPE_IPV4), Just(ETHERTYPE_IPV6)],
            payload in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let f = eth(B, A, None, ethertype, &payload);
            let _ = flow_key(&EthernetFrame::parse(&f).unwrap());
        }
    }
}
