//! The items a node record's extension carries: its subnets, its VIPs and the
//! round-trip times of its direct sessions, as a list of type-length-value
//! items (unknown types are skipped, so later versions can add items without
//! breaking v1 readers).

use super::reader::{put_name, Reader};
use super::WireError;
use crate::name::NodeName;

/// Item type of a subnet in tinc's text form (`02:00:00:00:00:0a`, `10.1.1.0/24#5`).
pub const ITEM_SUBNET: u8 = 0x01;
/// Item type of a served VIP (see [`VipItem`]).
pub const ITEM_VIP: u8 = 0x02;
/// Item type of the origin's session round-trip times (see [`NeighbourRtt`], r11).
pub const ITEM_NEIGHBOUR_RTTS: u8 = 0x03;
/// Largest value of one item (its length is a `u16`).
const MAX_ITEM_VALUE: usize = u16::MAX as usize;
/// Most items one record may carry.
pub const MAX_ITEMS: usize = 256;
/// Longest subnet text.
pub const MAX_SUBNET_TEXT: usize = 64;

/// A VIP its origin offers (or withdraws) in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipItem {
    /// The address (4 or 16 bytes on the wire).
    pub address: std::net::IpAddr,
    /// Prefix length of the VIP's subnet (informational).
    pub prefix_len: u8,
    /// Lower weights win; equal weights share.
    pub weight: u32,
    /// The virtual MAC every node answers ARP with.
    pub virtual_mac: [u8; 6],
    /// Bit 0: offered (healthy and serving); clear = withdrawn. Bit 1: the
    /// origin asks senders to steer new flows to the nearest holder. Bit 2:
    /// the origin takes re-steered frames.
    pub flags: u8,
}

impl VipItem {
    /// Flag: the origin serves this VIP now.
    pub const OFFERED: u8 = 0x01;

    /// Flag: the origin's policy for this VIP is `nearest` (`VIPPolicy`).
    pub const NEAREST: u8 = 0x02;

    /// Flag: the origin takes frames another holder re-steers to it at the
    /// VIP's re-steer MAC (PROTOCOL §7.6).
    pub const RESTEER: u8 = 0x04;

    /// True if the origin currently serves it.
    pub fn is_offered(&self) -> bool {
        self.flags & Self::OFFERED != 0
    }

    /// True if the origin takes re-steered frames.
    pub fn takes_resteered(&self) -> bool {
        self.flags & Self::RESTEER != 0
    }

    /// True if the origin asks for nearest-holder steering.
    pub fn is_nearest(&self) -> bool {
        self.flags & Self::NEAREST != 0
    }
}

/// The smoothed round-trip time of one of the origin's direct sessions, as
/// the origin measured it when it signed the record: what a node choosing a
/// relay adds to its own RTT to the relay (PROTOCOL §5.6, §6.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourRtt {
    /// The peer at the other end of the session.
    pub name: NodeName,
    /// The RTT in units of 100 µs, saturating at `u16::MAX` (6.5535 s).
    pub rtt_100us: u16,
}

impl NeighbourRtt {
    /// `rtt` in the item's units, rounded to the nearest 100 µs (at least 1).
    pub fn new(name: NodeName, rtt: std::time::Duration) -> NeighbourRtt {
        let units = (rtt.as_micros() + 50) / 100;
        NeighbourRtt {
            name,
            rtt_100us: u16::try_from(units.max(1)).unwrap_or(u16::MAX),
        }
    }

    /// The RTT.
    pub fn rtt(&self) -> std::time::Duration {
        std::time::Duration::from_micros(u64::from(self.rtt_100us) * 100)
    }
}

/// One item of a record extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionItem {
    /// A static subnet of the origin, in tinc's text form.
    Subnet(String),
    /// A VIP the origin serves or has withdrawn.
    Vip(VipItem),
    /// The RTTs of the origin's direct sessions (one item for all of them).
    NeighbourRtts(Vec<NeighbourRtt>),
}

/// Encodes items as the extension bytes of a record.
pub fn encode_extension(items: &[ExtensionItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items.iter().take(MAX_ITEMS) {
        let mut value = Vec::new();
        let ty = match item {
            ExtensionItem::Subnet(text) => {
                let bytes = text.as_bytes();
                value.extend_from_slice(&bytes[..bytes.len().min(MAX_SUBNET_TEXT)]);
                ITEM_SUBNET
            }
            ExtensionItem::Vip(vip) => {
                match vip.address {
                    std::net::IpAddr::V4(a) => value.extend_from_slice(&a.octets()),
                    std::net::IpAddr::V6(a) => value.extend_from_slice(&a.octets()),
                }
                value.push(vip.prefix_len);
                value.extend_from_slice(&vip.weight.to_be_bytes());
                value.extend_from_slice(&vip.virtual_mac);
                value.push(vip.flags);
                ITEM_VIP
            }
            ExtensionItem::NeighbourRtts(rtts) => {
                for n in rtts {
                    // Whole entries only, within one item's length.
                    if value.len() + 1 + n.name.len() + 2 > MAX_ITEM_VALUE {
                        break;
                    }
                    put_name(&mut value, &n.name);
                    value.extend_from_slice(&n.rtt_100us.to_be_bytes());
                }
                ITEM_NEIGHBOUR_RTTS
            }
        };
        out.push(ty);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(&value);
    }
    out
}

/// Decodes extension bytes; unknown item types are skipped.
pub fn decode_extension(bytes: &[u8]) -> Result<Vec<ExtensionItem>, WireError> {
    let mut r = Reader::new(bytes);
    let mut items = Vec::new();
    while r.remaining() > 0 {
        let ty = r.u8("extension item type")?;
        let len = r.u16("extension item length")? as usize;
        let value = r.bytes(len, "extension item value")?;
        if items.len() >= MAX_ITEMS {
            return Err(WireError::Invalid {
                field: "extension",
                reason: "more than 256 items",
            });
        }
        match ty {
            ITEM_SUBNET => {
                if value.is_empty() || value.len() > MAX_SUBNET_TEXT {
                    return Err(WireError::Invalid {
                        field: "subnet item",
                        reason: "empty or longer than 64 bytes",
                    });
                }
                let text = std::str::from_utf8(value).map_err(|_| WireError::Invalid {
                    field: "subnet item",
                    reason: "not UTF-8",
                })?;
                items.push(ExtensionItem::Subnet(text.to_string()));
            }
            ITEM_VIP => items.push(ExtensionItem::Vip(decode_vip(value)?)),
            // Advice only: a malformed list is skipped, not the whole extension.
            ITEM_NEIGHBOUR_RTTS => {
                if let Ok(rtts) = decode_rtts(value) {
                    items.push(ExtensionItem::NeighbourRtts(rtts));
                }
            }
            _ => {}
        }
    }
    Ok(items)
}

/// The extension bytes without RTT items: what says whether a record's subnets
/// and VIPs changed (RTTs change with every version). Malformed bytes are
/// returned whole.
pub fn without_neighbour_rtts(extension: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut found = false;
    while at < extension.len() {
        let Some(header) = extension.get(at..at + 3) else {
            return extension.into();
        };
        let end = at + 3 + usize::from(u16::from_be_bytes([header[1], header[2]]));
        let Some(item) = extension.get(at..end) else {
            return extension.into();
        };
        if header[0] == ITEM_NEIGHBOUR_RTTS {
            found = true;
        } else {
            out.extend_from_slice(item);
        }
        at = end;
    }
    if found {
        out.into()
    } else {
        extension.into()
    }
}

fn decode_rtts(value: &[u8]) -> Result<Vec<NeighbourRtt>, WireError> {
    let mut r = Reader::new(value);
    let mut rtts = Vec::new();
    while r.remaining() > 0 {
        let name = r.name("neighbour RTT name")?;
        let rtt_100us = r.u16("neighbour RTT")?;
        rtts.push(NeighbourRtt { name, rtt_100us });
    }
    Ok(rtts)
}

fn decode_vip(value: &[u8]) -> Result<VipItem, WireError> {
    let mut r = Reader::new(value);
    let address = match value.len() {
        16 => {
            let a = r.array::<4>("VIP address")?;
            std::net::IpAddr::from(a)
        }
        28 => {
            let a = r.array::<16>("VIP address")?;
            std::net::IpAddr::from(a)
        }
        _ => {
            return Err(WireError::Invalid {
                field: "VIP item",
                reason: "length is neither 16 (IPv4) nor 28 (IPv6)",
            })
        }
    };
    let prefix_len = r.u8("VIP prefix length")?;
    let max_prefix = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max_prefix {
        return Err(WireError::Invalid {
            field: "VIP prefix length",
            reason: "longer than the address",
        });
    }
    let weight = r.u32("VIP weight")?;
    let virtual_mac = r.array::<6>("VIP virtual MAC")?;
    if virtual_mac[0] & 1 != 0 {
        return Err(WireError::Invalid {
            field: "VIP virtual MAC",
            reason: "multicast",
        });
    }
    let flags = r.u8("VIP flags")?;
    r.finish()?;
    Ok(VipItem {
        address,
        prefix_len,
        weight,
        virtual_mac,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ExtensionItem> {
        vec![
            ExtensionItem::Subnet("02:00:00:00:00:0a".into()),
            ExtensionItem::Subnet("10.1.1.0/24#5".into()),
            ExtensionItem::Vip(VipItem {
                address: "10.1.1.10".parse().unwrap(),
                prefix_len: 24,
                weight: 10,
                virtual_mac: [0x02, 0x6d, 0x65, 0x0a, 0x01, 0x01],
                flags: VipItem::OFFERED,
            }),
            ExtensionItem::Vip(VipItem {
                address: "2001:db8::10".parse().unwrap(),
                prefix_len: 64,
                weight: 0,
                virtual_mac: [0x02, 0x6d, 0x65, 0, 0, 0x10],
                flags: 0,
            }),
        ]
    }

    #[test]
    fn items_round_trip() {
        let bytes = encode_extension(&sample());
        assert_eq!(decode_extension(&bytes).unwrap(), sample());
        assert_eq!(decode_extension(&[]).unwrap(), vec![]);
    }

    #[test]
    fn neighbour_rtts_round_trip_and_a_bad_list_is_skipped_alone() {
        let name = |s: &str| NodeName::new(s).unwrap();
        let rtts = ExtensionItem::NeighbourRtts(vec![
            NeighbourRtt::new(name("beta"), std::time::Duration::from_micros(480)),
            NeighbourRtt::new(name("gamma"), std::time::Duration::from_secs(10)),
            NeighbourRtt::new(name("delta"), std::time::Duration::ZERO),
        ]);
        let ExtensionItem::NeighbourRtts(list) = &rtts else {
            unreachable!()
        };
        assert_eq!(
            list.iter().map(|n| n.rtt_100us).collect::<Vec<_>>(),
            vec![5, u16::MAX, 1]
        );
        assert_eq!(list[0].rtt(), std::time::Duration::from_micros(500));
        let mut items = sample();
        items.push(rtts);
        let bytes = encode_extension(&items);
        assert_eq!(decode_extension(&bytes).unwrap(), items);
        // A truncated list: the subnets and VIPs still count, the list does not.
        let mut bad = encode_extension(&sample());
        bad.extend_from_slice(&[ITEM_NEIGHBOUR_RTTS, 0, 3, 4, b'b', b'e']);
        assert_eq!(decode_extension(&bad).unwrap(), sample());
    }

    #[test]
    fn without_neighbour_rtts_keeps_the_other_items() {
        let rtts = ExtensionItem::NeighbourRtts(vec![NeighbourRtt {
            name: NodeName::new("beta").unwrap(),
            rtt_100us: 3,
        }]);
        let base = encode_extension(&sample());
        let mut items = vec![rtts.clone()];
        items.extend(sample());
        items.push(rtts);
        assert_eq!(
            &*without_neighbour_rtts(&encode_extension(&items)),
            &base[..]
        );
        assert_eq!(&*without_neighbour_rtts(&base), &base[..]);
        assert_eq!(&*without_neighbour_rtts(&[3, 0]), &[3, 0][..]);
    }

    #[test]
    fn a_long_rtt_list_keeps_whole_entries_within_one_item() {
        let rtts: Vec<NeighbourRtt> = (0..5000)
            .map(|i| NeighbourRtt {
                name: NodeName::new(format!("node_{i:010}")).unwrap(),
                rtt_100us: 7,
            })
            .collect();
        let bytes = encode_extension(&[ExtensionItem::NeighbourRtts(rtts.clone())]);
        let decoded = decode_extension(&bytes).unwrap();
        let [ExtensionItem::NeighbourRtts(got)] = decoded.as_slice() else {
            panic!("{decoded:?}")
        };
        assert!(got.len() > 3000 && got.len() < 5000, "{}", got.len());
        assert_eq!(got[..], rtts[..got.len()]);
    }

    #[test]
    fn unknown_items_are_skipped() {
        let mut bytes = vec![0x7f, 0, 3, 1, 2, 3];
        bytes.extend(encode_extension(&sample()[..1]));
        assert_eq!(decode_extension(&bytes).unwrap(), sample()[..1].to_vec());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode_extension(&sample());
        let mut boundaries = vec![];
        let mut at = 0;
        while at < bytes.len() {
            boundaries.push(at);
            at += 3 + u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]) as usize;
        }
        for len in 0..bytes.len() {
            if boundaries.contains(&len) {
                continue;
            }
            assert!(decode_extension(&bytes[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn bad_vips_are_refused() {
        let mut vip = encode_extension(&sample()[2..3]);
        vip[3 + 4] = 33; // prefix longer than an IPv4 address
        assert!(decode_extension(&vip).is_err());
        let mut vip = encode_extension(&sample()[2..3]);
        vip[3 + 4 + 1 + 4] = 0x01; // multicast virtual MAC
        assert!(decode_extension(&vip).is_err());
        assert!(decode_extension(&[ITEM_VIP, 0, 2, 1, 2]).is_err());
        assert!(decode_extension(&[ITEM_SUBNET, 0, 0]).is_err());
        assert!(decode_extension(&[ITEM_SUBNET, 0, 2, 0xff, 0xfe]).is_err());
    }
}
