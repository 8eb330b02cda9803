//! Node records: what a node says about itself (key, addresses, live neighbours),
//! signed by its own identity key so that relays cannot alter it.

use super::reader::{put_name, put_socket_addr, Reader};
use super::WireError;
use crate::name::NodeName;
use std::net::SocketAddr;

/// Domain-separation prefix of the record signature.
pub const SIGNATURE_CONTEXT: &[u8] = b"meshd-v1 node record";
/// Most addresses a record may advertise.
pub const MAX_ADDRESSES: usize = 16;
/// Most neighbours a record may list.
pub const MAX_NEIGHBOURS: usize = 1024;

/// A live direct session of the record's origin, with the address it sees the peer at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The peer's name.
    pub name: NodeName,
    /// The UDP address the origin currently reaches that peer at.
    pub endpoint: SocketAddr,
}

/// A node's signed self-description, flooded through the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The origin's name.
    pub name: NodeName,
    /// The origin's Ed25519 public key.
    pub public_key: [u8; 32],
    /// Changes every time the origin starts (its start time in ns since the epoch).
    pub generation: u64,
    /// Incremented on every change within a generation.
    pub version: u64,
    /// Addresses the origin can be reached at (its `Address` lines).
    pub addresses: Vec<SocketAddr>,
    /// The origin's live direct sessions.
    pub neighbours: Vec<Neighbour>,
    /// Extension bytes for later versions (VIPs, subnets); opaque here.
    pub extension: Vec<u8>,
    /// Ed25519 signature by `public_key` over [`NodeRecord::signed_bytes`].
    pub signature: [u8; 64],
}

impl NodeRecord {
    /// The bytes the signature covers: the context string then every field but the signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = SIGNATURE_CONTEXT.to_vec();
        self.write_unsigned(&mut out);
        out
    }

    /// True if `(generation, version)` is newer than the other's.
    pub fn is_newer_than(&self, generation: u64, version: u64) -> bool {
        (self.generation, self.version) > (generation, version)
    }

    fn write_unsigned(&self, out: &mut Vec<u8>) {
        put_name(out, &self.name);
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        let addrs = &self.addresses[..self.addresses.len().min(MAX_ADDRESSES)];
        out.push(addrs.len() as u8);
        for a in addrs {
            put_socket_addr(out, a);
        }
        let neigh = &self.neighbours[..self.neighbours.len().min(MAX_NEIGHBOURS)];
        out.extend_from_slice(&(neigh.len() as u16).to_be_bytes());
        for n in neigh {
            put_name(out, &n.name);
            put_socket_addr(out, &n.endpoint);
        }
        let ext = &self.extension[..self.extension.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        out.extend_from_slice(ext);
    }

    /// Appends the encoded record (signature last).
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_unsigned(out);
        out.extend_from_slice(&self.signature);
    }

    /// Reads one record from a message body.
    pub fn read(r: &mut Reader<'_>) -> Result<NodeRecord, WireError> {
        let name = r.name("record name")?;
        let public_key = r.array::<32>("record public key")?;
        let generation = r.u64("record generation")?;
        let version = r.u64("record version")?;
        let naddr = r.u8("address count")? as usize;
        if naddr > MAX_ADDRESSES {
            return Err(WireError::Invalid {
                field: "address count",
                reason: "more than 16",
            });
        }
        let mut addresses = Vec::with_capacity(naddr);
        for _ in 0..naddr {
            addresses.push(r.socket_addr("record address")?);
        }
        let nneigh = r.u16("neighbour count")? as usize;
        if nneigh > MAX_NEIGHBOURS {
            return Err(WireError::Invalid {
                field: "neighbour count",
                reason: "more than 1024",
            });
        }
        let mut neighbours = Vec::with_capacity(nneigh.min(64));
        for _ in 0..nneigh {
            neighbours.push(Neighbour {
                name: r.name("neighbour name")?,
                endpoint: r.socket_addr("neighbour endpoint")?,
            });
        }
        let ext_len = r.u16("extension length")? as usize;
        let extension = r.bytes(ext_len, "extension")?.to_vec();
        let signature = r.array::<64>("record signature")?;
        Ok(NodeRecord {
            name,
            public_key,
            generation,
            version,
            addresses,
            neighbours,
            extension,
            signature,
        })
    }

    /// Decodes exactly one record.
    pub fn parse(buf: &[u8]) -> Result<NodeRecord, WireError> {
        let mut r = Reader::new(buf);
        let rec = NodeRecord::read(&mut r)?;
        r.finish()?;
        Ok(rec)
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        let mut v = Vec::new();
        self.write(&mut v);
        v.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeRecord {
        NodeRecord {
            name: NodeName::new("hub").unwrap(),
            public_key: [7; 32],
            generation: 1,
            version: 2,
            addresses: vec!["192.0.2.1:655".parse().unwrap()],
            neighbours: vec![Neighbour {
                name: NodeName::new("n2").unwrap(),
                endpoint: "[2001:db8::2]:655".parse().unwrap(),
            }],
            extension: vec![1, 2, 3],
            signature: [9; 64],
        }
    }

    #[test]
    fn a_record_with_a_too_long_name_is_refused_at_decode() {
        let mut buf = Vec::new();
        sample().write(&mut buf);
        // Swap the 3-byte origin name for 65 bytes: a valid length byte, an invalid name.
        let mut long = vec![65];
        long.extend_from_slice(&[b'a'; 65]);
        long.extend_from_slice(&buf[4..]);
        assert_eq!(
            NodeRecord::parse(&long),
            Err(WireError::BadName {
                field: "record name",
                error: crate::name::NameError::TooLong { len: 65 },
            })
        );
        // The same for a neighbour name.
        let at = buf.len() - 64 - 2 - 3 - 19 - 3;
        assert_eq!(&buf[at..at + 3], b"\x02n2");
        let mut bad = buf[..at].to_vec();
        bad.push(65);
        bad.extend_from_slice(&[b'b'; 65]);
        bad.extend_from_slice(&buf[at + 3..]);
        assert!(matches!(
            NodeRecord::parse(&bad),
            Err(WireError::BadName {
                field: "neighbour name",
                ..
            })
        ));
    }

    #[test]
    fn record_round_trips() {
        let rec = sample();
        let mut buf = Vec::new();
        rec.write(&mut buf);
        assert_eq!(NodeRecord::parse(&buf).unwrap(), rec);
        assert_eq!(rec.encoded_len(), buf.len());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        sample().write(&mut buf);
        for len in 0..buf.len() {
            assert!(NodeRecord::parse(&buf[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn signed_bytes_cover_every_field_but_the_signature() {
        let a = sample();
        let mut b = sample();
        b.signature = [0; 64];
        assert_eq!(a.signed_bytes(), b.signed_bytes());
        b.version = 3;
        assert_ne!(a.signed_bytes(), b.signed_bytes());
        assert!(a.signed_bytes().starts_with(SIGNATURE_CONTEXT));
    }
}
