//! The body of a `HealthCheck` line (after the address): the check type
//! (`exec`, `tcp`, `udp`, `presence`) and its options (part of
//! [`super::parse_vip_settings`]).

use super::{positive_count, positive_duration, CheckKind};
use std::net::SocketAddr;
use std::time::Duration;

/// Per-check options as written on a `HealthCheck` line (`None` = use the global default).
#[derive(Default)]
pub(super) struct CheckOptions {
    pub(super) interval: Option<Duration>,
    pub(super) timeout: Option<Duration>,
    pub(super) rise: Option<u32>,
    pub(super) fall: Option<u32>,
    pub(super) send: Option<Vec<u8>>,
    pub(super) expect: Option<Vec<u8>>,
}

impl CheckOptions {
    /// Applies `key=value` if `key` is a timing option; `Ok(false)` if it is not one.
    fn timing(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let key = key.to_ascii_lowercase();
        let bad = |r: String| format!("bad {key}: {r}");
        let twice = || format!("{key}= is given twice");
        match key.as_str() {
            "interval" | "timeout" => {
                let slot = if key == "interval" {
                    &mut self.interval
                } else {
                    &mut self.timeout
                };
                if slot.is_some() {
                    return Err(twice());
                }
                *slot = Some(positive_duration(value).map_err(bad)?);
            }
            "rise" | "fall" => {
                let slot = if key == "rise" {
                    &mut self.rise
                } else {
                    &mut self.fall
                };
                if slot.is_some() {
                    return Err(twice());
                }
                *slot = Some(positive_count(value).map_err(bad)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies the udp-only `send=`/`expect=`; `Ok(false)` if `key` is neither.
    fn udp(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "send" => &mut self.send,
            "expect" => &mut self.expect,
            _ => return Ok(false),
        };
        if slot.is_some() {
            return Err(format!("{key}= is given twice"));
        }
        let bytes = hex::decode(value)
            .map_err(|_| format!("bad {key}: '{value}' is not hex bytes (e.g. {key}=0a1b)"))?;
        if key == "expect" && bytes.is_empty() {
            return Err(
                "bad expect: it must not be empty (leave it out to accept any reply)".into(),
            );
        }
        *slot = Some(bytes);
        Ok(true)
    }
}

/// Global health check defaults.
pub(super) struct CheckDefaults {
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) rise: u32,
    pub(super) fall: u32,
}

/// Parses the part of a `HealthCheck` value after the address.
pub(super) fn parse_check_body(
    value: &str,
    toks: &[(usize, &str)],
) -> Result<(CheckKind, CheckOptions), String> {
    let Some(&(_, kind)) = toks.first() else {
        return Err("expected 'ADDRESS exec|tcp|udp|presence ...' after the address".into());
    };
    let rest = &toks[1..];
    let mut opts = CheckOptions::default();
    match kind.to_ascii_lowercase().as_str() {
        "exec" => {
            let mut cmd_start = None;
            for &(off, tok) in rest {
                if let Some((k, v)) = tok.split_once('=') {
                    if opts.timing(k, v)? {
                        continue;
                    }
                }
                cmd_start = Some(off);
                break;
            }
            let command = cmd_start.map(|off| value[off..].trim()).unwrap_or_default();
            if command.is_empty() {
                return Err(
                    "exec needs a command (syntax: exec [interval=..] [timeout=..] [rise=..] [fall=..] COMMAND...)"
                        .into(),
                );
            }
            Ok((CheckKind::Exec(command.to_string()), opts))
        }
        k @ ("tcp" | "udp") => {
            let allowed = if k == "udp" {
                "interval, timeout, rise, fall, send, expect"
            } else {
                "interval, timeout, rise, fall"
            };
            let mut target: Option<SocketAddr> = None;
            for &(_, tok) in rest {
                if let Some((key, v)) = tok.split_once('=') {
                    if opts.timing(key, v)? || (k == "udp" && opts.udp(key, v)?) {
                        continue;
                    }
                    return Err(format!(
                        "unknown option '{tok}' for {k} (options: {allowed})"
                    ));
                }
                if target.is_some() {
                    return Err(format!(
                        "unexpected '{tok}' ({k} takes one address:port and the options {allowed})"
                    ));
                }
                let addr: SocketAddr = tok.parse().map_err(|_| {
                    format!("'{tok}' is not an address:port (e.g. 127.0.0.1:53 or [::1]:53)")
                })?;
                if addr.port() == 0 {
                    return Err(format!("'{tok}': port 0 cannot be probed"));
                }
                target = Some(addr);
            }
            let Some(addr) = target else {
                return Err(format!(
                    "{k} needs an address:port to probe, e.g. {k} 127.0.0.1:53"
                ));
            };
            let kind = if k == "tcp" {
                CheckKind::Tcp(addr)
            } else {
                CheckKind::Udp {
                    addr,
                    send: opts.send.take().unwrap_or_default(),
                    expect: opts.expect.take(),
                }
            };
            Ok((kind, opts))
        }
        "presence" => {
            for &(_, tok) in rest {
                let known = match tok.split_once('=') {
                    Some((k, v)) if !k.eq_ignore_ascii_case("timeout") => opts.timing(k, v)?,
                    _ => false,
                };
                if !known {
                    return Err(format!(
                        "unexpected '{tok}' (presence takes only interval=, rise= and fall=; meshd probes by itself)"
                    ));
                }
            }
            Ok((CheckKind::Presence, opts))
        }
        _ => Err(format!(
            "'{kind}' is not a check type (exec, tcp, udp or presence)"
        )),
    }
}
