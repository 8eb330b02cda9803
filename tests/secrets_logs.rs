//! No secret in the logs at any level: two loopback daemons (`DeviceType = dummy`, no root)
//! run at the highest debug level (`start -d 5`, then `meshd debug 5`; meshd has no finer level than
//! debug today, so both mean debug), invite and join,
//! handshake, rekey every 2 s (`KeyExpire = 2`), refuse a replayed join; then every line
//! of both logs and every message the CLI printed is searched for the private keys (PEM text,
//! raw bytes as hex and base64), the invitation key, the cookie and the control cookie.

mod cli_support;

use cli_support::*;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// The 96 bytes inside a tinc `ed25519_key.priv` file, and its base64 body lines.
fn private_key_material(path: &Path) -> (Vec<u8>, Vec<String>) {
    let text = read(path);
    let body: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN ED25519 PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(|l| l.trim().to_string())
        .collect();
    let bytes = meshd::keys::base64::decode(&body.concat())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len(), 96, "{}", path.display());
    (bytes, body)
}

/// Standard base64 (RFC 4648, with padding), for needles in the form other tools print.
fn std_base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Substrings whose presence in a log would leak `secret` (raw bytes): hex (both cases) of
/// every 8-byte window, base64 (standard and tinc's, at the three alignments) and Rust's
/// `Debug` form of the first bytes.
fn needles_for_bytes(what: &str, secret: &[u8], out: &mut Vec<(String, String)>) {
    for w in secret.windows(8) {
        out.push((format!("{what} (hex)"), hex::encode(w)));
        out.push((format!("{what} (HEX)"), hex::encode_upper(w)));
    }
    for off in 0..3.min(secret.len()) {
        let tail = &secret[off..];
        let take = (tail.len() / 3 * 3).min(12);
        if take == 0 {
            continue;
        }
        out.push((
            format!("{what} (base64)"),
            std_base64(&tail[..take]).trim_end_matches('=').to_string(),
        ));
        let tinc = meshd::keys::base64::encode(&tail[..take]);
        out.push((format!("{what} (tinc-base64)"), tinc));
        let url = meshd::keys::base64::encode_urlsafe(&tail[..take]);
        out.push((format!("{what} (url-base64)"), url));
    }
    let dbg = format!("{:?}", &secret[..6.min(secret.len())]);
    out.push((
        format!("{what} (Debug)"),
        dbg.trim_end_matches(']').to_string(),
    ));
}

/// Needles for a private key file: every 16-char window of its PEM body and its secret half
/// (scalar and nonce prefix; the last 32 bytes are the public key, which may be logged).
fn needles_for_key(what: &str, path: &Path, out: &mut Vec<(String, String)>) {
    let (bytes, body) = private_key_material(path);
    // The PEM body encodes the secret in its first 64 bytes = the first 85 or so characters;
    // characters past 86 also encode the public key, which is fine to print.
    let pem: String = body.concat();
    for start in 0..(86 - 16) {
        out.push((
            format!("{what} (PEM text)"),
            pem[start..start + 16].to_string(),
        ));
    }
    needles_for_bytes(what, &bytes[..64], out);
}

fn start_debug(reaper: &mut Reaper, dir: &Path) {
    let o = meshd(dir, &["start", "-d", "5"]);
    assert_ok(&o);
    reaper.track_dir(dir);
}

#[test]
fn no_secret_in_any_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (n1, n2, n3) = (
        tmp.path().join("n1"),
        tmp.path().join("n2"),
        tmp.path().join("n3"),
    );
    let mut reaper = Reaper::default();
    let mut cli: Vec<(String, Output)> = Vec::new();

    let port1 = free_port();
    init_node(&n1, "node_1", port1);
    // Handed to the joiner by the invitation: both rekey every 2 s.
    append(
        &n1.join("tinc.conf"),
        "KeyExpire = 2\nHelloInterval = 100ms\nDeadInterval = 1s\n",
    );
    start_debug(&mut reaper, &n1);
    let o = meshd(&n1, &["debug", "5"]);
    assert_ok(&o);
    cli.push(("debug 5".into(), o));

    let o = meshd(&n1, &["invite", "node_2"]);
    assert_ok(&o);
    let url = stdout(&o).trim().to_string();
    // stdout is the URL, on purpose; stderr must not repeat it.
    cli.push((
        "invite (stderr only)".into(),
        Output {
            stdout: Vec::new(),
            ..o
        },
    ));
    let invitation_key = n1.join("invitations/ed25519_key.priv");
    let mut needles = Vec::new();
    needles_for_key("invitation key", &invitation_key, &mut needles);

    let port2 = free_port();
    let o = meshd(&n2, &["join", &url, "--port", &port2.to_string()]);
    assert_ok(&o);
    cli.push(("join".into(), o));
    assert_eq!(mode_of(&n2), 0o700);
    assert_eq!(mode_of(&n2.join("ed25519_key.priv")), 0o600);
    append(&n2.join("tinc.conf"), "DeviceType = dummy\n");
    // A replayed URL is refused; the refusal is logged, the cookie is not.
    let o = meshd(&n3, &["join", &url]);
    assert_exit1(&o);
    cli.push(("replayed join".into(), o));

    start_debug(&mut reaper, &n2);
    assert!(
        wait_until(Duration::from_secs(15), || sees_reachable(
            &n1, "node_1", "node_2", port2
        ) && sees_reachable(
            &n2, "node_2", "node_1", port1
        )),
        "node_1 and node_2 never met"
    );
    // Several rekeys (KeyExpire = 2 s).
    std::thread::sleep(Duration::from_secs(7));
    for d in [&n2, &n1] {
        let o = meshd(d, &["dump", "nodes"]);
        assert_ok(&o);
        cli.push(("dump nodes".into(), o));
    }
    let control_cookies: Vec<String> = [&n1, &n2]
        .iter()
        .map(|d| {
            read(&d.join("meshd.pid"))
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        })
        .collect();
    for d in [&n2, &n1] {
        let o = meshd(d, &["stop"]);
        assert_ok(&o);
        cli.push(("stop".into(), o));
    }

    needles_for_key("node_1's key", &n1.join("ed25519_key.priv"), &mut needles);
    needles_for_key("node_2's key", &n2.join("ed25519_key.priv"), &mut needles);
    let (_, secret) = url.rsplit_once('/').unwrap();
    let cookie_text = &secret[24..];
    assert_eq!(cookie_text.len(), 24);
    needles.push(("invitation URL".into(), url.clone()));
    needles.push(("cookie".into(), cookie_text.to_string()));
    for start in 0..=(24 - 12) {
        needles.push((
            "cookie (part)".into(),
            cookie_text[start..start + 12].into(),
        ));
    }
    let cookie = meshd::invite::InvitationUrl::parse(&url).unwrap().cookie;
    needles_for_bytes("cookie bytes", &cookie, &mut needles);
    for c in &control_cookies {
        needles.push(("control cookie".into(), c[..16].to_string()));
        needles.push(("control cookie".into(), c[32..48].to_ascii_lowercase()));
    }

    let logs = [
        ("node_1's log", read(&n1.join("meshd.log"))),
        ("node_2's log", read(&n2.join("meshd.log"))),
    ];
    // The logs are really at the highest level, and cover what the test did.
    let all: String = logs.iter().map(|(_, t)| t.as_str()).collect();
    for expect in [
        "DEBUG",
        "answered handshake",
        "rekeying",
        "invitation accepted: node_2 joined",
        "join failed",
    ] {
        assert!(all.contains(expect), "no {expect:?} in the logs:\n{all}");
    }
    // The needles do find the secrets where they are (so a clean result means something).
    let (bytes, _) = private_key_material(&n1.join("ed25519_key.priv"));
    for planted in [
        read(&n1.join("ed25519_key.priv")),
        format!("key={}", hex::encode(&bytes[16..48])),
        format!("key={:?}", &bytes[..64]),
        format!("key={}", std_base64(&bytes[1..40])),
        format!("join {url}"),
        format!("cookie {}", hex::encode_upper(cookie)),
    ] {
        assert!(
            needles.iter().any(|(_, n)| planted.contains(n.as_str())),
            "no needle matches {planted}"
        );
    }
    let mut leaks = Vec::new();
    let sources = logs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .chain(cli.iter().map(|(n, o)| {
            (
                format!("meshd {n} output"),
                format!("{}{}", stdout(o), stderr(o)),
            )
        }));
    for (source, text) in sources {
        for (no, line) in text.lines().enumerate() {
            for (what, needle) in &needles {
                if line.contains(needle.as_str()) {
                    leaks.push(format!(
                        "{source} line {}: {what} ({needle}): {line}",
                        no + 1
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
    eprintln!(
        "searched {} log lines and {} CLI outputs for {} needles: clean",
        all.lines().count(),
        cli.len(),
        needles.len()
    );
}
