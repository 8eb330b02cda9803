//! A bounds-checked cursor over a byte slice and the matching writer helpers.

use super::WireError;
use crate::name::NodeName;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Reads big-endian fields from a byte slice; every read is bounds-checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated(what));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a node name: a length byte then a [`NodeName`] (1..=64 bytes of
    /// `[A-Za-z0-9_]`); anything else is refused here, at decode.
    pub fn name(&mut self, what: &'static str) -> Result<NodeName, WireError> {
        let len = self.u8(what)? as usize;
        let raw = self.bytes(len, what)?;
        NodeName::from_bytes(raw).map_err(|error| WireError::BadName { field: what, error })
    }

    /// Reads a name that may be absent (length 0).
    pub fn optional_name(&mut self, what: &'static str) -> Result<Option<NodeName>, WireError> {
        let len = self.u8(what)? as usize;
        if len == 0 {
            return Ok(None);
        }
        let raw = self.bytes(len, what)?;
        NodeName::from_bytes(raw)
            .map(Some)
            .map_err(|error| WireError::BadName { field: what, error })
    }

    /// Reads a socket address: family byte (4 or 6), address, port.
    pub fn socket_addr(&mut self, what: &'static str) -> Result<SocketAddr, WireError> {
        let ip = match self.u8(what)? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>(what)?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>(what)?)),
            _ => {
                return Err(WireError::Invalid {
                    field: what,
                    reason: "address family must be 4 or 6",
                })
            }
        };
        let port = self.u16(what)?;
        Ok(SocketAddr::new(ip, port))
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

/// Appends a node name (length byte + bytes); a [`NodeName`] always fits.
pub fn put_name(out: &mut Vec<u8>, name: &NodeName) {
    let bytes = name.as_bytes();
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// Appends a name [`Reader::optional_name`] reads (length 0 when absent).
pub fn put_optional_name(out: &mut Vec<u8>, name: Option<&NodeName>) {
    match name {
        Some(n) => put_name(out, n),
        None => out.push(0),
    }
}

/// Appends a socket address in the family/address/port form [`Reader::socket_addr`] reads.
pub fn put_socket_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addr_round_trips_both_families() {
        for addr in ["192.0.2.1:655", "[2001:db8::1]:6551"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut out = Vec::new();
            put_socket_addr(&mut out, &addr);
            let mut r = Reader::new(&out);
            assert_eq!(r.socket_addr("a").unwrap(), addr);
            r.finish().unwrap();
        }
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32("x"), Err(WireError::Truncated("x")));
        let mut r = Reader::new(&[5, b'a']);
        assert!(r.name("n").is_err());
        let mut r = Reader::new(&[7, 1, 2, 3, 4, 0, 1]);
        assert!(r.socket_addr("a").is_err());
    }

    #[test]
    fn names_are_checked_at_decode() {
        let name = NodeName::new("node_1").unwrap();
        let mut out = Vec::new();
        put_name(&mut out, &name);
        assert_eq!(Reader::new(&out).name("n").unwrap(), name);
        for bad in [&b""[..], b"a-b", &[b'a'; 65], &[b'a'; 255]] {
            let mut buf = vec![bad.len() as u8];
            buf.extend_from_slice(bad);
            let err = Reader::new(&buf).name("record name").unwrap_err();
            assert!(
                matches!(
                    err,
                    WireError::BadName {
                        field: "record name",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let mut buf = vec![65];
        buf.extend_from_slice(&[b'a'; 65]);
        assert_eq!(
            Reader::new(&buf)
                .name("record name")
                .unwrap_err()
                .to_string(),
            "invalid record name: node name is too long (65 bytes, at most 64)"
        );
    }
}
