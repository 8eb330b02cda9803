//! The invitation URL, tinc 1.1's shape: `HOST[:PORT]/KKKKKKKKKKKKKKKKKKKKKKKKCCCCCCCCCCCCCCCCCCCCCCCC`
//! — 24 characters of invitation-key hash, then 24 characters of cookie (URL-safe tinc-base64).

use crate::keys::base64;
use std::fmt;

/// Raw cookie length: 18 random bytes, 24 characters in the URL.
pub const COOKIE_LEN: usize = 18;
/// Characters of the key hash and of the cookie in the URL.
pub const PART_CHARS: usize = 24;
/// The port a URL without `:PORT` means (tinc's default).
pub const DEFAULT_PORT: u16 = 655;

/// A parsed invitation URL.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationUrl {
    /// Host name or address of the inviter (IPv6 without brackets).
    pub host: String,
    /// Port of the inviter's daemon, if the URL names one.
    pub port: Option<u16>,
    /// The 24-character hash of the inviter's invitation public key.
    pub key_hash: String,
    /// The secret: 18 raw bytes.
    pub cookie: [u8; COOKIE_LEN],
}

/// Why a URL could not be parsed; the text says what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid invitation URL: {0}")]
pub struct UrlError(String);

impl InvitationUrl {
    /// The port to connect to (the URL's, else 655).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// Parses `HOST[:PORT]/KEYHASHCOOKIE`. A leading `meshd://` or `tinc://` is tolerated.
    pub fn parse(text: &str) -> Result<InvitationUrl, UrlError> {
        let err = |m: &str| UrlError(m.to_string());
        let text = text.trim();
        let text = text
            .strip_prefix("meshd://")
            .or_else(|| text.strip_prefix("tinc://"))
            .unwrap_or(text);
        let (authority, secret) = text
            .rsplit_once('/')
            .ok_or_else(|| err("expected HOST[:PORT]/ followed by 48 characters, found no '/'"))?;
        if !secret.is_ascii() {
            return Err(err("the part after '/' must be base64 characters"));
        }
        if secret.len() != 2 * PART_CHARS {
            return Err(UrlError(format!(
                "expected 48 characters after the '/', found {}",
                secret.len()
            )));
        }
        let (key_hash, cookie_text) = secret.split_at(PART_CHARS);
        let hash_ok = base64::decode(key_hash).map(|b| b.len() == COOKIE_LEN);
        if hash_ok != Ok(true) {
            return Err(err(
                "the key hash (first 24 characters after '/') is not base64",
            ));
        }
        let cookie_bytes = base64::decode(cookie_text)
            .map_err(|_| err("the cookie (last 24 characters) is not base64"))?;
        let cookie: [u8; COOKIE_LEN] = cookie_bytes
            .as_slice()
            .try_into()
            .map_err(|_| err("the cookie does not decode to 18 bytes"))?;
        let (host, port) = split_host_port(authority)?;
        Ok(InvitationUrl {
            host,
            port,
            key_hash: key_hash.to_string(),
            cookie,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (several colons).
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let err = |m: String| UrlError(m);
    if authority.is_empty() {
        return Err(err("no host before the '/'".into()));
    }
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| err(format!("'{p}' is not a port number (1-65535)")))
    };
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| err("'[' without a closing ']'".into()))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(err(format!(
                "'{host}' between '[' and ']' is not an IPv6 address"
            )));
        }
        return match after {
            "" => Ok((host.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), Some(parse_port(p)?))),
                None => Err(err(format!("unexpected '{after}' after ']'"))),
            },
        };
    }
    if authority.matches(':').count() > 1 {
        // A bare IPv6 address: no port possible.
        return match authority.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok((authority.to_string(), None)),
            Err(_) => Err(err(format!("'{authority}' is not an IPv6 address"))),
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(parse_port(p)?)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(err("no host before the ':'".into()));
    }
    let hostname_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !host.chars().all(hostname_char) || host.starts_with(['-', '.']) {
        return Err(err(format!("'{host}' is not a host name or IP address")));
    }
    Ok((host.to_string(), port))
}

impl fmt::Display for InvitationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(
            f,
            "/{}{}",
            self.key_hash,
            base64::encode_urlsafe(&self.cookie)
        )
    }
}

/// Never prints the cookie.
impl fmt::Debug for InvitationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvitationUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("key_hash", &self.key_hash)
            .field("cookie", &"<secret>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINC_URL: &str = "192.0.2.1:655/iBgz8E-EGz1I-uu9ODR3RZZpvnjJRXW7mdouiPax8eAhwSXD";

    #[test]
    fn tinc_url_round_trips() {
        let url = InvitationUrl::parse(TINC_URL).unwrap();
        assert_eq!(url.host, "192.0.2.1");
        assert_eq!(url.port, Some(655));
        assert_eq!(url.key_hash, "iBgz8E-EGz1I-uu9ODR3RZZp");
        assert_eq!(url.to_string(), TINC_URL);
        assert!(
            !format!("{url:?}").contains("vnjJ"),
            "Debug must hide the cookie"
        );
    }

    #[test]
    fn hosts_and_ports() {
        let tail = "/iBgz8E-EGz1I-uu9ODR3RZZpvnjJRXW7mdouiPax8eAhwSXD";
        for (authority, host, port) in [
            ("example.org", "example.org", None),
            ("example.org:1655", "example.org", Some(1655)),
            ("[2001:db8::1]:655", "2001:db8::1", Some(655)),
            ("[2001:db8::1]", "2001:db8::1", None),
            ("2001:db8::1", "2001:db8::1", None),
        ] {
            let url = InvitationUrl::parse(&format!("{authority}{tail}")).unwrap();
            assert_eq!((url.host.as_str(), url.port), (host, port), "{authority}");
            let again = InvitationUrl::parse(&url.to_string()).unwrap();
            assert_eq!(again, url);
        }
        let url = InvitationUrl::parse(&format!("example.org{tail}")).unwrap();
        assert_eq!(url.port_or_default(), 655);
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason() {
        let good = "iBgz8E-EGz1I-uu9ODR3RZZpvnjJRXW7mdouiPax8eAhwSXD";
        for (text, why) in [
            ("192.0.2.1:655", "no '/'"),
            ("192.0.2.1:655/abc", "48 characters"),
            (&format!("192.0.2.1:655/{good}x"), "48 characters"),
            (&format!("/{good}"), "no host"),
            (&format!(":655/{good}"), "no host"),
            (&format!("h:0/{good}"), "not a port"),
            (&format!("h:99999/{good}"), "not a port"),
            (&format!("h:x/{good}"), "not a port"),
            (&format!("[::1/{good}"), "closing"),
            (&format!("[]:655/{good}"), "not an IPv6 address"),
            (
                &format!("\u{ec}2001:db8::1]:1655/{good}"),
                "not an IPv6 address",
            ),
            (&format!("bad host:655/{good}"), "not a host name"),
            (&format!("-x/{good}"), "not a host name"),
            (&format!("[::1]x/{good}"), "after ']'"),
            (&format!("h/{}", good.replace('E', "=")), "not base64"),
            (&format!("h/{}é", &good[..47]), "base64"),
        ] {
            let e = InvitationUrl::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.starts_with("Invalid invitation URL"), "{e}");
        }
    }
}
