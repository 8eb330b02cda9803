//! `dump vips` and `info VIP|VIRTUAL_MAC`: which nodes serve a shared IP,
//! which of them get traffic, and how this node's flows are spread.

use super::dump::{ask, print_out};
use crate::config::NetDir;
use crate::control::{Request, Response};
use crate::node::vip_status::{HolderStatus, OwnerStatus, VipStatus};
use anyhow::{bail, Result};
use std::fmt::Write as _;

/// Asks the daemon for its VIPs.
pub fn vips(netdir: &NetDir) -> Result<Option<Vec<VipStatus>>> {
    match ask(netdir, &Request::DumpVips)? {
        Some(Response::Vips { vips }) => Ok(Some(vips)),
        Some(other) => bail!("unexpected answer: {other:?}"),
        None => Ok(None),
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn holder_words(h: &HolderStatus) -> String {
    let mut s = format!(
        "weight {} alive {} offered {} holddown {} flows {} share {:.0}%",
        h.weight,
        yes(h.alive),
        yes(h.offered),
        h.hold_down_ms,
        h.flows,
        h.share_percent
    );
    if let Some(ms) = h.rtt_ms {
        let _ = write!(s, " rtt {ms:.2}ms");
    }
    if h.nearest {
        s.push_str(" asks nearest");
    }
    s
}

/// The `Policy:` line of `info VIP`: how new flows pick a holder, and why.
fn policy_words(v: &VipStatus) -> String {
    let mut s = match (v.policy.as_str(), &v.nearest) {
        ("nearest", Some(n)) => format!(
            "nearest: new flows to {n} (lowest RTT; another holder takes over only when {}% and {} µs faster)",
            crate::vip::NEAREST_MARGIN_PERCENT,
            crate::vip::NEAREST_MARGIN_MIN.as_micros()
        ),
        ("nearest", None) => "nearest (no new flow yet)".to_string(),
        ("", _) => "hash".to_string(),
        (p, _) => format!("{p} (rendezvous hashing over the lowest-weight holders)"),
    };
    if let Some(note) = &v.policy_note {
        let _ = write!(s, "; {note}");
    }
    s
}

/// `MAC (source) [seen N ms ago] [presence present|absent|confirming (owner
/// left the bridge, fails in N ms unless it answers)] [conflicts N]`.
fn owner_words(o: &OwnerStatus) -> String {
    let mut s = format!("{} ({})", o.mac.as_deref().unwrap_or("unknown"), o.source);
    if let Some(ms) = o.seen_ms_ago {
        let _ = write!(s, " seen {ms} ms ago");
    }
    // A daemon from before `presence` sent only the verdict.
    let state = o.presence.as_deref().or(match o.present {
        Some(true) => Some("present"),
        Some(false) => Some("absent"),
        None => None,
    });
    if let Some(state) = state {
        let _ = write!(s, " presence {state}");
    }
    if let Some(ms) = o.confirm_ms_left {
        let _ = write!(
            s,
            " (owner left the bridge; fails in {ms} ms unless it answers)"
        );
    }
    if o.conflicts > 0 {
        let _ = write!(s, " conflicts {}", o.conflicts);
    }
    s
}

/// `dump vips` lines: one per VIP and holder; this node's own line ends with
/// `owner MAC (source) ...` when it serves the VIP.
pub fn format_vip_lines(v: &VipStatus) -> String {
    let mut out = String::new();
    if v.holders.is_empty() {
        let _ = writeln!(
            out,
            "{}/{} mac {} holder (none)",
            v.vip, v.prefix_len, v.virtual_mac
        );
    }
    for h in &v.holders {
        let owner = match &v.owner {
            Some(o) if h.name == o.node => format!(" owner {}", owner_words(o)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{}/{} mac {} holder {} {}{owner}",
            v.vip,
            v.prefix_len,
            v.virtual_mac,
            h.name,
            holder_words(h)
        );
    }
    out
}

/// `meshd dump vips [--json]`.
pub fn dump_vips(netdir: &NetDir, json: bool) -> Result<i32> {
    let Some(list) = vips(netdir)? else {
        return Ok(1);
    };
    print_out(json, &list, |out| {
        for v in &list {
            out.push_str(&format_vip_lines(v));
        }
    })
}

/// The `info` block of one VIP.
pub fn format_vip_info(v: &VipStatus) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "VIP:          {}/{}", v.vip, v.prefix_len);
    let _ = writeln!(s, "Virtual MAC:  {}", v.virtual_mac);
    let absent = v.owner.as_ref().and_then(|o| o.present) == Some(false);
    let here = match v.local_healthy {
        Some(true) => "yes (healthy)",
        Some(false) if absent => "yes (presence: no station answers for it: withdrawn)",
        Some(false) => "yes (health check failing: withdrawn)",
        None => "no",
    };
    let _ = writeln!(s, "Served here:  {here}");
    if let Some(o) = &v.owner {
        let _ = writeln!(s, "Owner here:   {}", owner_words(o));
    }
    let eligible: Vec<&str> = v
        .holders
        .iter()
        .filter(|h| h.eligible)
        .map(|h| h.name.as_str())
        .collect();
    let _ = writeln!(
        s,
        "Traffic to:   {}",
        if eligible.is_empty() {
            "(nobody: no live holder)".to_string()
        } else {
            eligible.join(" ")
        }
    );
    let _ = writeln!(s, "Policy:       {}", policy_words(v));
    let _ = writeln!(s, "Flows:        {}", v.flows);
    for h in &v.holders {
        let _ = writeln!(s, "Holder:       {} {}", h.name, holder_words(h));
    }
    s
}

/// `info ARG` for a VIP address or virtual MAC; `None` if ARG is neither.
pub fn info_vip(netdir: &NetDir, arg: &str, json: bool) -> Result<Option<i32>> {
    let Some(list) = vips(netdir)? else {
        return Ok(Some(1));
    };
    let want = arg.to_ascii_lowercase();
    let Some(v) = list
        .into_iter()
        .find(|v| v.vip == want || v.virtual_mac == want)
    else {
        return Ok(None);
    };
    print_out(json, &v, |out| out.push_str(&format_vip_info(&v))).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::vip_status::OwnerStatus;

    fn status() -> VipStatus {
        let holder = |name: &str, rtt: f64| HolderStatus {
            name: name.into(),
            weight: 10,
            alive: true,
            offered: true,
            eligible: true,
            rtt_ms: Some(rtt),
            nearest: true,
            ..HolderStatus::default()
        };
        VipStatus {
            vip: "10.1.1.10".into(),
            prefix_len: 24,
            virtual_mac: "02:6d:0a:01:01:0a".into(),
            local_healthy: Some(false),
            owner: Some(OwnerStatus {
                node: "node_3".into(),
                mac: Some("02:42:ac:11:00:02".into()),
                source: "learned".into(),
                seen_ms_ago: Some(120),
                present: Some(false),
                presence: Some("absent".into()),
                confirm_ms_left: None,
                conflicts: 1,
            }),
            policy: "nearest".into(),
            policy_note: None,
            nearest: Some("node_3".into()),
            flows: 0,
            holders: vec![holder("node_2", 40.0), holder("node_3", 0.0)],
        }
    }

    #[test]
    fn info_explains_owner_presence_policy_and_rtts() {
        let text = format_vip_info(&status());
        for want in [
            "Served here:  yes (presence: no station answers for it: withdrawn)",
            "Owner here:   02:42:ac:11:00:02 (learned) seen 120 ms ago presence absent conflicts 1",
            "Policy:       nearest: new flows to node_3 (lowest RTT; another holder takes over only when 20% and 500 µs faster)",
            "Holder:       node_2 weight 10 alive yes offered yes holddown 0 flows 0 share 0% rtt 40.00ms asks nearest",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn info_and_dump_show_a_vanish_being_confirmed() {
        let mut v = status();
        v.local_healthy = Some(true);
        if let Some(o) = v.owner.as_mut() {
            o.present = Some(true);
            o.presence = Some("confirming".into());
            o.confirm_ms_left = Some(14);
            o.conflicts = 0;
        }
        let want = "02:42:ac:11:00:02 (learned) seen 120 ms ago presence confirming \
                    (owner left the bridge; fails in 14 ms unless it answers)";
        let info = format_vip_info(&v);
        assert!(info.contains(&format!("Owner here:   {want}\n")), "{info}");
        let dump = format_vip_lines(&v);
        assert!(
            dump.lines().nth(1).is_some_and(|l| l.ends_with(want)),
            "{dump}"
        );
        // A daemon that sends only the verdict.
        if let Some(o) = v.owner.as_mut() {
            o.presence = None;
            o.confirm_ms_left = None;
        }
        assert!(format_vip_info(&v).contains("ago presence present\n"));
    }

    #[test]
    fn dump_puts_the_owner_on_this_nodes_own_line() {
        let text = format_vip_lines(&status());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].contains("owner"), "{}", lines[0]);
        assert!(
            lines[1].ends_with(
                "owner 02:42:ac:11:00:02 (learned) seen 120 ms ago presence absent conflicts 1"
            ),
            "{}",
            lines[1]
        );
    }
}
