//! ARP over Ethernet/IPv4: parsing ([`ArpPacket`]), replies and gratuitous
//! announcements built for the TAP, and the in-place sender rewrite.

use std::net::Ipv4Addr;

use super::frame::{be16, EthernetFrame, FrameError, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use super::mac::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = 28;
/// Length of an untagged Ethernet frame carrying one ARP packet (no padding).
pub const ARP_FRAME_LEN: usize = super::frame::ETH_HEADER_LEN + ARP_LEN;

/// An ARP operation.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub enum ArpOp {
    /// 1: who-has.
    Request,
    /// 2: is-at.
    Reply,
    /// Anything else (RARP and friends), kept as is.
    Other(u16),
}

impl ArpOp {
    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
            ArpOp::Other(code) => code,
        }
    }

    /// The operation for a wire value.
    pub fn from_code(code: u16) -> ArpOp {
        match code {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            other => ArpOp::Other(other),
        }
    }
}

/// An Ethernet/IPv4 ARP packet (hardware type 1, protocol 0x0800).
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub struct ArpPacket {
    /// The operation.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address (0.0.0.0 in a DAD probe).
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (usually zero in a request).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// Parses an ARP payload (what follows the Ethernet header). Requires
    /// hardware type 1, protocol type 0x0800, lengths 6 and 4 and at least 28
    /// bytes (trailing padding is ignored), else [`FrameError::MalformedArp`].
    pub fn parse(payload: &[u8]) -> Result<ArpPacket, FrameError> {
        let p = payload.get(..ARP_LEN).ok_or(FrameError::MalformedArp)?;
        if be16(p, 0) != Some(1) || be16(p, 2) != Some(ETHERTYPE_IPV4) || p[4] != 6 || p[5] != 4 {
            return Err(FrameError::MalformedArp);
        }
        let mac = |at: usize| MacAddr::from_slice(&p[at..]).ok_or(FrameError::MalformedArp);
        let ip = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
        Ok(ArpPacket {
            op: ArpOp::from_code(be16(p, 6).ok_or(FrameError::MalformedArp)?),
            sender_mac: mac(8)?,
            sender_ip: ip(14),
            target_mac: mac(18)?,
            target_ip: ip(24),
        })
    }

    /// Parses the ARP packet of `frame`: `None` if its EtherType is not ARP.
    pub fn from_frame(frame: &EthernetFrame<'_>) -> Option<Result<ArpPacket, FrameError>> {
        (frame.ethertype() == ETHERTYPE_ARP).then(|| ArpPacket::parse(frame.payload()))
    }

    /// Whether this is a request probing for an address conflict (RFC 5227
    /// probe: sender IP 0.0.0.0).
    pub fn is_probe(&self) -> bool {
        self.op == ArpOp::Request && self.sender_ip.is_unspecified()
    }

    /// Whether this announces the sender's own binding (gratuitous ARP: sender
    /// IP equal to target IP).
    pub fn is_announcement(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    /// Appends this packet's 28 bytes to `out`.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        out.extend_from_slice(&[6, 4]);
        out.extend_from_slice(&self.op.code().to_be_bytes());
        out.extend_from_slice(&self.sender_mac.0);
        out.extend_from_slice(&self.sender_ip.octets());
        out.extend_from_slice(&self.target_mac.0);
        out.extend_from_slice(&self.target_ip.octets());
    }
}

/// A whole untagged Ethernet frame (42 bytes) carrying `arp`.
fn arp_frame(dst: MacAddr, src: MacAddr, arp: &ArpPacket) -> Vec<u8> {
    let mut f = Vec::with_capacity(ARP_FRAME_LEN);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    arp.write(&mut f);
    f
}

/// The reply to `request`, answering that `request.target_ip` is at
/// `answer_mac`: an untagged 42-byte Ethernet frame from `answer_mac` to
/// `requester_frame_src` (the request's Ethernet source), with sender
/// (`answer_mac`, target IP) and target (the request's sender MAC and IP).
pub fn build_arp_reply(
    request: &ArpPacket,
    requester_frame_src: MacAddr,
    answer_mac: MacAddr,
) -> Vec<u8> {
    let reply = ArpPacket {
        op: ArpOp::Reply,
        sender_mac: answer_mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    arp_frame(requester_frame_src, answer_mac, &reply)
}

/// A gratuitous ARP announcing `ip` at `mac`: a broadcast request from `mac`
/// with sender and target IP both `ip` and a zero target MAC (as Linux sends
/// them); 42 bytes, untagged.
pub fn build_gratuitous_arp(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    let announce = ArpPacket {
        op: ArpOp::Request,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: MacAddr::ZERO,
        target_ip: ip,
    };
    arp_frame(MacAddr::BROADCAST, mac, &announce)
}

/// Rewrites, in place, the Ethernet source and the ARP sender hardware address
/// of an ARP frame (tagged or not) to `new`. Returns false, leaving `frame`
/// untouched, if it is not a well-formed Ethernet/IPv4 ARP frame.
pub fn rewrite_arp_sender_mac(frame: &mut [u8], new: MacAddr) -> bool {
    let sender_at = match EthernetFrame::parse(frame) {
        Ok(eth) if eth.ethertype() == ETHERTYPE_ARP && ArpPacket::parse(eth.payload()).is_ok() => {
            eth.header_len() + 8
        }
        _ => return false,
    };
    match frame.get_mut(sender_at..sender_at + 6) {
        Some(sender) => sender.copy_from_slice(&new.0),
        None => return false,
    }
    super::frame::set_src_mac(frame, new);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLIENT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);
    const VMAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x01]);

    fn request() -> ArpPacket {
        ArpPacket {
            op: ArpOp::Request,
            sender_mac: CLIENT,
            sender_ip: Ipv4Addr::new(10, 0, 0, 3),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(10, 0, 0, 100),
        }
    }

    #[test]
    fn parse_roundtrip_and_errors() {
        let f = arp_frame(MacAddr::BROADCAST, CLIENT, &request());
        let eth = EthernetFrame::parse(&f).unwrap();
        assert_eq!(ArpPacket::from_frame(&eth), Some(Ok(request())));
        // Padding to 60 bytes is fine.
        let mut padded = f.clone();
        padded.resize(60, 0);
        assert_eq!(ArpPacket::parse(&padded[14..]), Ok(request()));
        // Every header field is checked, and the length.
        for (at, value) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut bad = f[14..].to_vec();
            bad[at] = value;
            assert_eq!(
                ArpPacket::parse(&bad),
                Err(FrameError::MalformedArp),
                "byte {at}"
            );
        }
        assert_eq!(ArpPacket::parse(&f[14..41]), Err(FrameError::MalformedArp));
        let mut other = f[14..].to_vec();
        other[7] = 3;
        assert_eq!(ArpPacket::parse(&other).unwrap().op, ArpOp::Other(3));
        assert_eq!(ArpOp::from_code(ArpOp::Other(9).code()), ArpOp::Other(9));
        let ip = EthernetFrame::parse(&[0u8; 20]).unwrap();
        assert_eq!(ArpPacket::from_frame(&ip), None);
    }

    #[test]
    fn reply_bytes() {
        let reply = build_arp_reply(&request(), CLIENT, VMAC);
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0x02, 0, 0, 0, 0, 0x0c,             // eth dst: the requester
            0x02, 0x5e, 0, 0, 0, 0x01,          // eth src: the answer
            0x08, 0x06,                         // ARP
            0, 1, 0x08, 0x00, 6, 4, 0, 2,       // Ethernet/IPv4, reply
            0x02, 0x5e, 0, 0, 0, 0x01, 10, 0, 0, 100, // sender: answer MAC, asked IP
            0x02, 0, 0, 0, 0, 0x0c, 10, 0, 0, 3,      // target: the requester
        ];
        assert_eq!(reply, want);
    }

    #[test]
    fn gratuitous_bytes() {
        let g = build_gratuitous_arp(VMAC, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(g.len(), ARP_FRAME_LEN);
        let eth = EthernetFrame::parse(&g).unwrap();
        assert_eq!((eth.dst(), eth.src()), (MacAddr::BROADCAST, VMAC));
        let arp = ArpPacket::parse(eth.payload()).unwrap();
        assert_eq!(arp.op, ArpOp::Request);
        assert!(arp.is_announcement());
        assert!(!arp.is_probe());
        assert_eq!((arp.sender_mac, arp.target_mac), (VMAC, MacAddr::ZERO));
        assert_eq!(arp.sender_ip, Ipv4Addr::new(10, 0, 0, 100));
    }

    #[test]
    fn rewrite_sender_untagged_and_tagged() {
        let mut f = arp_frame(MacAddr::BROADCAST, CLIENT, &request());
        assert!(rewrite_arp_sender_mac(&mut f, VMAC));
        let eth = EthernetFrame::parse(&f).unwrap();
        assert_eq!(eth.src(), VMAC);
        let arp = ArpPacket::parse(eth.payload()).unwrap();
        assert_eq!(
            arp,
            ArpPacket {
                sender_mac: VMAC,
                ..request()
            }
        );

        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        tagged.extend_from_slice(&f[12..]);
        assert!(rewrite_arp_sender_mac(&mut tagged, CLIENT));
        let eth = EthernetFrame::parse(&tagged).unwrap();
        assert_eq!(eth.src(), CLIENT);
        assert_eq!(ArpPacket::parse(eth.payload()).unwrap(), request());

        // Not ARP, or malformed ARP: untouched.
        let mut not_arp = f.clone();
        not_arp[13] = 0x00;
        let before = not_arp.clone();
        assert!(!rewrite_arp_sender_mac(&mut not_arp, CLIENT));
        assert_eq!(not_arp, before);
        let mut short = f[..40].to_vec();
        assert!(!rewrite_arp_sender_mac(&mut short, CLIENT));
        assert_eq!(short, f[..40]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ArpPacket::parse(&bytes);
            let _ = rewrite_arp_sender_mac(&mut bytes, VMAC);
        }

        #[test]
        fn random_arp_roundtrip(op in any::<u16>(), s in any::<[u8; 6]>(), sip in any::<u32>(), t in any::<[u8; 6]>(), tip in any::<u32>()) {
            let arp = ArpPacket {
                op: ArpOp::from_code(op),
                sender_mac: MacAddr(s),
                sender_ip: sip.into(),
                target_mac: MacAddr(t),
                target_ip: tip.into(),
            };
            let f = arp_frame(MacAddr::BROADCAST, CLIENT, &arp);
            prop_assert_eq!(ArpPacket::parse(&f[14..]), Ok(arp));
        }
    }
}
