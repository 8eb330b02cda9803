//! [`MacAddr`]: a 48-bit Ethernet address with its text form (`02:00:00:00:00:0a`).

use std::fmt;
use std::str::FromStr;

/// A 48-bit IEEE 802 MAC address.
///
/// Displayed, debugged and serialized as six lowercase hex pairs separated by
/// `:` (`02:00:00:00:00:0a`); parsed from `:` or `-` separated pairs in either
/// case.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Ord, PartialOrd, Default)]
pub struct MacAddr(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {text:?}: expected six hex pairs separated by ':' or '-'")]
pub struct MacParseError {
    /// The offending text (at most 64 characters of it).
    pub text: String,
}

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Whether this is a group address (bit 0 of the first byte); broadcast counts as multicast.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// Whether this is `00:00:00:00:00:00`.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Whether this is a locally administered address (bit 1 of the first byte).
    #[inline]
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// An ordinary station address: neither multicast nor all-zero (what a frame's
    /// source may be and what the switch learns).
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The first six bytes of `bytes`, or `None` if it is shorter than six.
    #[inline]
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        let six: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(MacAddr(six))
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError {
            text: s.chars().take(64).collect(),
        };
        let bytes = s.as_bytes();
        // "xx:xx:xx:xx:xx:xx": 17 bytes, one separator kind throughout.
        if bytes.len() != 17 {
            return Err(err());
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(err());
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && bytes[at - 1] != sep {
                return Err(err());
            }
            let hi = hex_value(bytes[at]).ok_or_else(err)?;
            let lo = hex_value(bytes[at + 1]).ok_or_else(err)?;
            *byte = hi << 4 | lo;
        }
        Ok(MacAddr(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_debug_and_serde() {
        let mac = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
        assert_eq!(mac.to_string(), "02:00:00:00:00:0a");
        assert_eq!(format!("{mac:?}"), "02:00:00:00:00:0a");
        assert_eq!(
            serde_json::to_string(&mac).unwrap(),
            "\"02:00:00:00:00:0a\""
        );
        let back: MacAddr = serde_json::from_str("\"02:00:00:00:00:0A\"").unwrap();
        assert_eq!(back, mac);
    }

    #[test]
    fn parse_forms() {
        let want = MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]);
        assert_eq!("aa:bb:cc:0d:ee:ff".parse::<MacAddr>().unwrap(), want);
        assert_eq!("AA-BB-CC-0D-EE-FF".parse::<MacAddr>().unwrap(), want);
        assert_eq!("Aa:bB:cc:0D:ee:Ff".parse::<MacAddr>().unwrap(), want);
        for bad in [
            "",
            "aa:bb:cc:0d:ee",
            "aa:bb:cc:0d:ee:ff:00",
            "aa:bb-cc:0d:ee:ff",
            "aa.bb.cc.0d.ee.ff",
            "ga:bb:cc:0d:ee:ff",
            "aabbcc0deeff",
            "+a:bb:cc:0d:ee:ff",
            "aa:bb:cc:0d:ee:f\u{e9}",
        ] {
            let err = bad.parse::<MacAddr>().unwrap_err();
            assert!(err.to_string().contains("invalid MAC address"), "{bad}");
        }
    }

    #[test]
    fn classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x33, 0x33, 0, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_local());
        assert!(MacAddr::ZERO.is_zero());
        assert!(!MacAddr::ZERO.is_unicast());
        assert!(MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]).is_unicast());
        assert_eq!(MacAddr::from_slice(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            MacAddr::from_slice(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(bytes in any::<[u8; 6]>()) {
            let mac = MacAddr(bytes);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
            prop_assert_eq!(mac.to_string().replace(':', "-").to_uppercase().parse::<MacAddr>().unwrap(), mac);
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
