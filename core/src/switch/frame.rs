//! Zero-copy Ethernet frame view ([`EthernetFrame`]), EtherType constants and
//! in-place MAC rewrites.

use std::net::Ipv6Addr;

use super::mac::MacAddr;

/// Length of an untagged Ethernet header (destination, source, EtherType).
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one 802.1Q / 802.1ad tag.
pub const VLAN_TAG_LEN: usize = 4;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Why a frame (or the packet it carries) cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than an Ethernet header (or than its VLAN tag).
    #[error("runt frame")]
    Runt,
    /// EtherType ARP, but not an Ethernet/IPv4 ARP packet of at least 28 bytes.
    #[error("malformed ARP packet")]
    MalformedArp,
}

/// A borrowed, validated view of one Ethernet frame (no FCS).
///
/// At most one 802.1Q / 802.1ad tag is looked through: [`ethertype`](Self::ethertype)
/// and [`payload`](Self::payload) are those after the tag.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<'a> {
    bytes: &'a [u8],
    header_len: usize,
    ethertype: u16,
}

impl<'a> EthernetFrame<'a> {
    /// Views `bytes` as an Ethernet frame; [`FrameError::Runt`] if it is shorter
    /// than 14 bytes, or than 18 when it carries a VLAN tag.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let outer = be16(bytes, 12).ok_or(FrameError::Runt)?;
        if outer == ETHERTYPE_VLAN || outer == ETHERTYPE_QINQ {
            let inner = be16(bytes, 16).ok_or(FrameError::Runt)?;
            Ok(EthernetFrame {
                bytes,
                header_len: ETH_HEADER_LEN + VLAN_TAG_LEN,
                ethertype: inner,
            })
        } else {
            Ok(EthernetFrame {
                bytes,
                header_len: ETH_HEADER_LEN,
                ethertype: outer,
            })
        }
    }

    /// The destination MAC address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        mac_at(self.bytes, 0)
    }

    /// The source MAC address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        mac_at(self.bytes, 6)
    }

    /// The EtherType after at most one VLAN tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// The tag control information (PCP, DEI, VLAN id) of the VLAN tag, if any.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.header_len > ETH_HEADER_LEN {
            be16(self.bytes, 14)
        } else {
            None
        }
    }

    /// Length of the Ethernet header including the VLAN tag (14 or 18).
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Everything after the header (and the tag).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(self.header_len..).unwrap_or(&[])
    }

    /// The whole frame.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Big-endian u16 at `at`, if present.
#[inline]
pub(crate) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let two = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([two[0], two[1]]))
}

/// The MAC at `at`; callers guarantee `at + 6 <= bytes.len()`, else zero.
#[inline]
fn mac_at(bytes: &[u8], at: usize) -> MacAddr {
    bytes
        .get(at..)
        .and_then(MacAddr::from_slice)
        .unwrap_or(MacAddr::ZERO)
}

/// Overwrites the destination MAC of `frame`; does nothing if it is shorter than 6 bytes.
#[inline]
pub fn set_dst_mac(frame: &mut [u8], mac: MacAddr) {
    if let Some(dst) = frame.get_mut(0..6) {
        dst.copy_from_slice(&mac.0);
    }
}

/// Overwrites the source MAC of `frame`; does nothing if it is shorter than 12 bytes.
#[inline]
pub fn set_src_mac(frame: &mut [u8], mac: MacAddr) {
    if let Some(src) = frame.get_mut(6..12) {
        src.copy_from_slice(&mac.0);
    }
}

/// The IPv6 address at `at`, if present.
#[inline]
pub(crate) fn ipv6_at(bytes: &[u8], at: usize) -> Option<Ipv6Addr> {
    let sixteen: [u8; 16] = bytes.get(at..at.checked_add(16)?)?.try_into().ok()?;
    Some(Ipv6Addr::from(sixteen))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);

    /// A frame from `src` to `dst`, tagged with `vlan` if given.
    pub(crate) fn eth(
        dst: MacAddr,
        src: MacAddr,
        vlan: Option<u16>,
        ethertype: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        if let Some(tci) = vlan {
            f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn parse_untagged_and_tagged() {
        assert_eq!(
            EthernetFrame::parse(&[0; 13]).unwrap_err(),
            FrameError::Runt
        );
        let f = eth(B, A, None, ETHERTYPE_IPV4, &[1, 2, 3]);
        let v = EthernetFrame::parse(&f).unwrap();
        assert_eq!((v.dst(), v.src(), v.ethertype()), (B, A, ETHERTYPE_IPV4));
        assert_eq!(v.payload(), &[1, 2, 3]);
        assert_eq!(v.vlan_tci(), None);
        assert_eq!(v.header_len(), 14);

        let f = eth(B, A, Some(0x2005), ETHERTYPE_ARP, &[9]);
        let v = EthernetFrame::parse(&f).unwrap();
        assert_eq!((v.dst(), v.src(), v.ethertype()), (B, A, ETHERTYPE_ARP));
        assert_eq!(v.payload(), &[9]);
        assert_eq!(v.vlan_tci(), Some(0x2005));
        assert_eq!(v.header_len(), 18);
        // A tag cut short is a runt.
        assert_eq!(
            EthernetFrame::parse(&f[..17]).unwrap_err(),
            FrameError::Runt
        );
        // Only one tag is looked through.
        let f = eth(B, A, Some(1), ETHERTYPE_VLAN, &[0, 2, 8, 0]);
        assert_eq!(
            EthernetFrame::parse(&f).unwrap().ethertype(),
            ETHERTYPE_VLAN
        );
    }

    #[test]
    fn set_macs() {
        let mut f = eth(B, A, None, ETHERTYPE_IPV4, &[]);
        set_dst_mac(&mut f, A);
        set_src_mac(&mut f, B);
        let v = EthernetFrame::parse(&f).unwrap();
        assert_eq!((v.dst(), v.src()), (A, B));
        let mut short = [0u8; 5];
        set_dst_mac(&mut short, A);
        set_src_mac(&mut short, A);
        assert_eq!(short, [0; 5]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(v) = EthernetFrame::parse(&bytes) {
                let _ = (v.dst(), v.src(), v.ethertype(), v.payload(), v.vlan_tci());
            }
        }
    }
}
