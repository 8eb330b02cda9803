//! [`MacAddr`]: a 48-bit Ethernet address with its text form (`02:00:00:00:00:0a`), the one
//! MAC grammar of meshd (config files, the switch, the command line, JSON).

use std::fmt;
use std::str::FromStr;

/// A 48-bit IEEE 802 MAC address.
///
/// Displayed, debugged and serialized as six lowercase hex pairs separated by
/// `:` (`02:00:00:00:00:0a`), as tinc prints them. Parsed with tinc's grammar
/// (its `sscanf("%hx:%hx:%hx:%hx:%hx:%hx")`, less its oddities): six groups
/// of one or two hex digits, either case, separated by `:` — so
/// `2:0:0:0:0:a` is a MAC and `02-00-00-00-00-0a` is not.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Ord, PartialOrd, Default)]
pub struct MacAddr(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MAC address {text:?}: {reason} (a MAC is six groups of 1-2 hex digits \
     separated by ':', e.g. 02:00:00:00:00:0a)"
)]
pub struct MacParseError {
    /// The offending text (at most 64 characters of it).
    pub text: String,
    /// What is wrong with it.
    pub reason: MacParseReason,
}

/// What is wrong with a string that is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MacParseReason {
    /// It uses `-` between the bytes (tinc accepts only `:`).
    #[error("'-' is not a MAC separator (use ':')")]
    DashSeparator,
    /// It does not have six `:`-separated groups.
    #[error("{0} ':'-separated groups, expected 6")]
    GroupCount(usize),
    /// A group is empty, longer than two characters or not hex.
    #[error("group {0} is not 1-2 hex digits")]
    BadGroup(usize),
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

    /// tinc's grammar: `H:H:H:H:H:H`, each `H` one or two hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| MacParseError {
            text: s.chars().take(64).collect(),
            reason,
        };
        let groups = s.split(':').count();
        if groups != 6 {
            // Name the likely mistake: the Windows/IEEE form with dashes.
            return Err(err(if groups == 1 && s.split('-').count() == 6 {
                MacParseReason::DashSeparator
            } else {
                MacParseReason::GroupCount(groups)
            }));
        }
        let mut out = [0u8; 6];
        for (i, (byte, group)) in out.iter_mut().zip(s.split(':')).enumerate() {
            let hex =
                (1..=2).contains(&group.len()) && group.bytes().all(|b| b.is_ascii_hexdigit());
            *byte = hex
                .then(|| u8::from_str_radix(group, 16).ok())
                .flatten()
                .ok_or_else(|| err(MacParseReason::BadGroup(i + 1)))?;
        }
        Ok(MacAddr(out))
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
        assert_eq!("AA:BB:CC:0D:EE:FF".parse::<MacAddr>().unwrap(), want);
        assert_eq!("Aa:bB:cc:0D:ee:Ff".parse::<MacAddr>().unwrap(), want);
        // tinc's %hx takes one digit as well as two.
        assert_eq!("aa:bb:cc:d:ee:ff".parse::<MacAddr>().unwrap(), want);
        assert_eq!(
            "2:0:0:0:0:a".parse::<MacAddr>().unwrap(),
            MacAddr([2, 0, 0, 0, 0, 0x0a])
        );
        use MacParseReason::*;
        for (bad, reason) in [
            ("", GroupCount(1)),
            ("aa:bb:cc:0d:ee", GroupCount(5)),
            ("aa:bb:cc:0d:ee:ff:00", GroupCount(7)),
            ("aa:bb-cc:0d:ee:ff", GroupCount(5)),
            ("aa.bb.cc.0d.ee.ff", GroupCount(1)),
            ("ga:bb:cc:0d:ee:ff", BadGroup(1)),
            ("aabbcc0deeff", GroupCount(1)),
            ("+a:bb:cc:0d:ee:ff", BadGroup(1)),
            ("aa:bb:cc:0d:ee:f\u{e9}", BadGroup(6)),
            ("aa:bb::0d:ee:ff", BadGroup(3)),
            ("aa:bb:cc:0d:ee:0ff", BadGroup(6)),
            ("aa:bb:cc:0d:ee: f", BadGroup(6)),
            ("02-00-00-00-00-0a", DashSeparator),
            ("AA-BB-CC-0D-EE-FF", DashSeparator),
        ] {
            let err = bad.parse::<MacAddr>().unwrap_err();
            assert_eq!(err.reason, reason, "{bad:?}");
            assert!(err.to_string().contains("invalid MAC address"), "{bad}");
        }
        assert_eq!(
            "02-00-00-00-00-0a"
                .parse::<MacAddr>()
                .unwrap_err()
                .to_string(),
            "invalid MAC address \"02-00-00-00-00-0a\": '-' is not a MAC separator (use ':') \
             (a MAC is six groups of 1-2 hex digits separated by ':', e.g. 02:00:00:00:00:0a)"
        );
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
            prop_assert_eq!(mac.to_string().to_uppercase().parse::<MacAddr>().unwrap(), mac);
            // tinc's short form: no leading zeros.
            let short = bytes.iter().map(|b| format!("{b:x}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(short.parse::<MacAddr>().unwrap(), mac);
            prop_assert!(mac.to_string().replace(':', "-").parse::<MacAddr>().is_err());
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
