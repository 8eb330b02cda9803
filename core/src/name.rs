//! Node names: the one type ([`NodeName`]) that config, wire and crypto share.
//!
//! The rule is tinc 1.1's (`check_id`: one or more ASCII letters, digits or
//! `_`, case sensitive) plus meshd's wire limit: a name travels behind a
//! one-byte length in handshakes and node records, and both refuse more than
//! [`NodeName::MAX_LEN`] (64) bytes, so a longer name is refused wherever it
//! comes in (`meshd init`, `Name`, `ConnectTo`, host files, invitations, the
//! wire) instead of being accepted by the config and then refused by every
//! handshake.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// A valid node name: 1 to [`NodeName::MAX_LEN`] bytes of `[A-Za-z0-9_]`.
///
/// Only [`NodeName::new`] (or [`FromStr`], or deserializing) makes one, so a
/// `NodeName` in hand is always valid. It derefs to `str` and borrows as
/// `str`, so maps keyed by it are looked up with a `&str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

/// Why a string is not a node name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("a node name cannot be empty (use letters, digits and _)")]
    Empty,
    /// The name is longer than [`NodeName::MAX_LEN`] bytes.
    #[error("node name is too long ({len} bytes, at most {max})", max = NodeName::MAX_LEN)]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a character other than an ASCII letter, digit or `_`.
    #[error(
        "node name '{name}' has {ch:?} at byte {at}: use letters, digits and _ only",
        name = .name.escape_debug()
    )]
    BadChar {
        /// The refused name (at most 80 characters of it).
        name: String,
        /// The first offending character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

impl NodeName {
    /// Longest name in bytes: what the one-byte length of the handshake and
    /// node-record encodings is allowed to carry (PROTOCOL.md).
    pub const MAX_LEN: usize = 64;

    /// Checks `name` against the rule and wraps it.
    pub fn new(name: impl Into<String>) -> Result<NodeName, NameError> {
        let name = name.into();
        check(&name)?;
        Ok(NodeName(name))
    }

    /// Decodes a name from raw wire bytes (no length prefix).
    pub fn from_bytes(raw: &[u8]) -> Result<NodeName, NameError> {
        match std::str::from_utf8(raw) {
            Ok(s) => NodeName::new(s),
            Err(e) => {
                // Report the first byte that is not ASCII, as for a string.
                let at = e.valid_up_to();
                if raw.len() > Self::MAX_LEN {
                    return Err(NameError::TooLong { len: raw.len() });
                }
                Err(NameError::BadChar {
                    name: String::from_utf8_lossy(raw).chars().take(80).collect(),
                    ch: char::REPLACEMENT_CHARACTER,
                    at,
                })
            }
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks the rule: non-empty, at most [`NodeName::MAX_LEN`] bytes, ASCII
/// letters, digits and `_` only.
fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NodeName::MAX_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    match name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
    {
        Some((at, ch)) => Err(NameError::BadChar {
            name: name.chars().take(80).collect(),
            ch,
            at,
        }),
        None => Ok(()),
    }
}

impl FromStr for NodeName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<NodeName, NameError> {
        NodeName::new(s)
    }
}

impl TryFrom<String> for NodeName {
    type Error = NameError;

    fn try_from(s: String) -> Result<NodeName, NameError> {
        NodeName::new(s)
    }
}

impl TryFrom<&str> for NodeName {
    type Error = NameError;

    fn try_from(s: &str) -> Result<NodeName, NameError> {
        NodeName::new(s)
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> String {
        n.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Deref for NodeName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for NodeName {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl AsRef<std::path::Path> for NodeName {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for NodeName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<NodeName> for str {
    fn eq(&self, other: &NodeName) -> bool {
        self == other.0
    }
}

impl PartialEq<NodeName> for &str {
    fn eq(&self, other: &NodeName) -> bool {
        *self == other.0
    }
}

impl PartialEq<NodeName> for String {
    fn eq(&self, other: &NodeName) -> bool {
        *self == other.0
    }
}

impl serde::Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for NodeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NodeName, D::Error> {
        let s = String::deserialize(d)?;
        NodeName::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn tinc_names_are_accepted() {
        for good in ["a", "A", "node_01", "_", "alpha_1", &"Z".repeat(64)] {
            let n = NodeName::new(good).unwrap();
            assert_eq!(n.as_str(), good);
            assert_eq!(n.to_string(), good);
            assert_eq!(good.parse::<NodeName>().unwrap(), n);
        }
    }

    #[test]
    fn empty_is_refused() {
        assert_eq!(NodeName::new(""), Err(NameError::Empty));
        assert!(NameError::Empty.to_string().contains("empty"));
    }

    #[test]
    fn sixty_five_bytes_is_refused_with_the_limit() {
        let err = NodeName::new("a".repeat(65)).unwrap_err();
        assert_eq!(err, NameError::TooLong { len: 65 });
        assert_eq!(
            err.to_string(),
            "node name is too long (65 bytes, at most 64)"
        );
        // The limit is in bytes: 33 two-byte characters are 66 bytes.
        assert_eq!(
            NodeName::new("é".repeat(33)),
            Err(NameError::TooLong { len: 66 })
        );
    }

    #[test]
    fn bad_characters_are_named() {
        for (bad, ch, at) in [
            ("a-up", '-', 1),
            (".hidden", '.', 0),
            ("a b", ' ', 1),
            ("ä", 'ä', 0),
            ("node/x", '/', 4),
            ("x\n", '\n', 1),
        ] {
            match NodeName::new(bad) {
                Err(NameError::BadChar { ch: c, at: a, .. }) => {
                    assert_eq!((c, a), (ch, at), "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let msg = NodeName::new("a-up").unwrap_err().to_string();
        assert!(msg.contains("'a-up'") && msg.contains("'-'"), "{msg}");
    }

    #[test]
    fn wire_bytes_follow_the_same_rule() {
        assert_eq!(NodeName::from_bytes(b"node_1").unwrap(), "node_1");
        assert_eq!(NodeName::from_bytes(b""), Err(NameError::Empty));
        assert_eq!(
            NodeName::from_bytes(&[b'a'; 65]),
            Err(NameError::TooLong { len: 65 })
        );
        assert!(matches!(
            NodeName::from_bytes(&[b'a', 0xff]),
            Err(NameError::BadChar { at: 1, .. })
        ));
        assert!(matches!(
            NodeName::from_bytes(b"a-b"),
            Err(NameError::BadChar { ch: '-', .. })
        ));
    }

    #[test]
    fn maps_keyed_by_names_are_looked_up_by_str() {
        let mut m = BTreeMap::new();
        m.insert(NodeName::new("beta").unwrap(), 2);
        m.insert(NodeName::new("alpha").unwrap(), 1);
        assert_eq!(m.get("alpha"), Some(&1));
        assert_eq!(
            m.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["alpha", "beta"]
        );
        let n = NodeName::new("gamma").unwrap();
        assert_eq!(n, "gamma");
        assert_eq!("gamma", n);
        assert_eq!(String::from("gamma"), n);
        assert!(n.starts_with('g'));
    }

    #[test]
    fn serde_is_a_checked_string() {
        let n = NodeName::new("alpha").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"alpha\"");
        let back: NodeName = serde_json::from_str("\"alpha\"").unwrap();
        assert_eq!(back, n);
        let err = serde_json::from_str::<NodeName>("\"a-b\"").unwrap_err();
        assert!(err.to_string().contains("letters, digits and _"), "{err}");
        assert!(serde_json::from_str::<NodeName>(&format!("\"{}\"", "a".repeat(65))).is_err());
    }
}
