//! The PEM-style armour tinc 1.1 puts around keys (part of the keys module):
//! `-----BEGIN LABEL-----`, tinc-base64 lines of 48 bytes (64 chars), `-----END LABEL-----`.

use super::{base64, wipe, KeyError};

/// Bytes per base64 line when writing (tinc's `write_pem`).
const BYTES_PER_LINE: usize = 48;

/// Writes `bytes` as a PEM block exactly like tinc, with a trailing newline.
pub(super) fn write_pem(label: &str, bytes: &[u8]) -> String {
    let mut out = String::with_capacity(
        2 * (label.len() + 16) + base64::encoded_len(bytes.len()) + bytes.len() / 48 + 1,
    );
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in bytes.chunks(BYTES_PER_LINE) {
        out.push_str(&base64::encode(chunk));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn is_marker(line: &[u8], kind: &str, label: &str) -> bool {
    line.strip_prefix(b"-----")
        .and_then(|l| l.strip_prefix(kind.as_bytes()))
        .and_then(|l| l.strip_prefix(b" "))
        .and_then(|l| l.strip_prefix(label.as_bytes()))
        .is_some_and(|l| l == b"-----")
}

/// Finds the first `-----BEGIN label-----` block in `text` and returns its
/// decoded contents. Lines before the block are ignored (like tinc); inside
/// it, lines are concatenated (so any line split is accepted) and blank
/// lines skipped; the block must end with `-----END label-----`.
/// Leading/trailing ASCII whitespace on each line (including `\r`) is ignored.
///
/// The returned bytes may be secret: callers should [`wipe`] them.
pub(super) fn read_pem(text: &[u8], label: &'static str) -> Result<Vec<u8>, KeyError> {
    let mut lines = text.split(|&b| b == b'\n').map(trim_ascii);
    if !lines.by_ref().any(|l| is_marker(l, "BEGIN", label)) {
        return Err(KeyError::MissingPemBegin { label });
    }
    let mut b64 = Vec::with_capacity(text.len());
    let mut ended = false;
    for line in lines {
        if line.starts_with(b"-----") {
            ended = is_marker(line, "END", label);
            break;
        }
        b64.extend_from_slice(line);
    }
    let result = if ended {
        base64::decode_bytes(&b64).map_err(|err| KeyError::Base64 { what: label, err })
    } else {
        Err(KeyError::MissingPemEnd { label })
    };
    wipe(&mut b64);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_splits_48_bytes_per_line() {
        let s = write_pem("X", &[0u8; 100]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "-----BEGIN X-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 6); // 4 bytes -> 6 chars
        assert_eq!(lines[4], "-----END X-----");
        assert!(s.ends_with("-----END X-----\n"));
        assert_eq!(read_pem(s.as_bytes(), "X").unwrap(), vec![0u8; 100]);
    }

    #[test]
    fn any_line_split_and_crlf() {
        let data: Vec<u8> = (0..96u8).collect();
        let enc = base64::encode(&data);
        let text = format!(
            "junk\r\n-----BEGIN X-----\r\n{}\r\n\r\n {} \r\n{}\r\n-----END X-----\r\nmore junk",
            &enc[..5],
            &enc[5..70],
            &enc[70..]
        );
        assert_eq!(read_pem(text.as_bytes(), "X").unwrap(), data);
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(
            read_pem(b"", "X"),
            Err(KeyError::MissingPemBegin { .. })
        ));
        assert!(matches!(
            read_pem(b"-----BEGIN XY-----\nAA\n-----END XY-----\n", "X"),
            Err(KeyError::MissingPemBegin { .. })
        ));
        assert!(matches!(
            read_pem(b"-----BEGIN X-----\nAA\n", "X"),
            Err(KeyError::MissingPemEnd { .. })
        ));
        assert!(matches!(
            read_pem(b"-----BEGIN X-----\nAA\n-----END Y-----\n", "X"),
            Err(KeyError::MissingPemEnd { .. })
        ));
        assert!(matches!(
            read_pem(b"-----BEGIN X-----\nA=A\n-----END X-----\n", "X"),
            Err(KeyError::Base64 { .. })
        ));
    }
}
