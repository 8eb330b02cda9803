//! `dump` and `info`: ask the daemon and print tinc-shaped lines or JSON.

use crate::config::NetDir;
use crate::control::client::request;
use crate::control::{Request, Response};
use crate::node::status::{
    status_bits, ConnectionStatus, EdgeStatus, NodeStatus, CONNECTION_CONTROL,
};
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::time::Duration;

pub(super) fn ask(netdir: &NetDir, req: &Request) -> Result<Option<Response>> {
    match request(
        &netdir.pidfile(),
        &netdir.control_socket(),
        req,
        Duration::from_secs(5),
    ) {
        Ok(Response::Error { message }) => bail!("{message}"),
        Ok(r) => Ok(Some(r)),
        Err(err) => {
            eprintln!("{err}");
            Ok(None)
        }
    }
}

fn nodes(netdir: &NetDir) -> Result<Option<Vec<NodeStatus>>> {
    match ask(netdir, &Request::DumpNodes)? {
        Some(Response::Nodes { nodes }) => Ok(Some(nodes)),
        Some(other) => bail!("unexpected answer: {other:?}"),
        None => Ok(None),
    }
}

/// `meshd dump WHAT [--json]`.
pub fn dump(netdir: &NetDir, what: &[String], json: bool) -> Result<i32> {
    let words: Vec<String> = what.iter().map(|w| w.to_ascii_lowercase()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["nodes"] | ["reachable", "nodes"] => {
            let Some(mut list) = nodes(netdir)? else {
                return Ok(1);
            };
            if words[0] == "reachable" {
                list.retain(|n| n.reachable);
            }
            print_out(json, &list, |out| {
                for n in &list {
                    out.push_str(&format_node(n));
                    out.push('\n');
                }
            })
        }
        ["edges"] => match ask(netdir, &Request::DumpEdges)? {
            Some(Response::Edges { edges }) => print_out(json, &edges, |out| {
                for e in &edges {
                    out.push_str(&format_edge(e));
                    out.push('\n');
                }
            }),
            Some(other) => bail!("unexpected answer: {other:?}"),
            None => Ok(1),
        },
        ["connections"] => match ask(netdir, &Request::DumpConnections)? {
            Some(Response::Connections { connections }) => print_out(json, &connections, |out| {
                for c in &connections {
                    out.push_str(&format_connection(c));
                    out.push('\n');
                }
            }),
            Some(other) => bail!("unexpected answer: {other:?}"),
            None => Ok(1),
        },
        ["subnets"] => super::subnets::dump_subnets(netdir, json),
        ["vips"] => super::vips::dump_vips(netdir, json),
        ["drops"] => match ask(netdir, &Request::Drops)? {
            Some(Response::Drops { drops }) => print_out(json, &drops, |out| {
                let mut leaves = Vec::new();
                crate::control::json_leaves("", ".", &drops, &mut leaves);
                for (name, value) in leaves {
                    let _ = writeln!(out, "{name} {value}");
                }
            }),
            Some(other) => bail!("unexpected answer: {other:?}"),
            None => Ok(1),
        },
        ["limits"] => match ask(netdir, &Request::Limits)? {
            Some(Response::Limits { limits }) => print_out(json, &limits, |out| {
                for l in &limits {
                    out.push_str(&format_limit(l));
                    out.push('\n');
                }
            }),
            Some(other) => bail!("unexpected answer: {other:?}"),
            None => Ok(1),
        },
        ["graph"] => super::graph::dump_graph(netdir, false),
        ["digraph"] => super::graph::dump_graph(netdir, true),
        ["reachable", _] => {
            // tinc's words (cmd_dump).
            eprintln!(
                "`reachable' only supported for nodes.\n{}",
                super::usage::TRY_HELP
            );
            Ok(1)
        }
        _ => {
            // As tinc, the daemon is asked for first: without one, that is the error.
            if ask(netdir, &Request::Pid)?.is_none() {
                return Ok(1);
            }
            // tinc's words and exit status for a usage error (cli/10.txt), then meshd's list.
            eprintln!(
                "Unknown dump type '{}'.\nDump types: nodes, reachable nodes, edges, connections, \
                 subnets, vips, drops, limits, graph, digraph, invitations.\n{}",
                what.join(" "),
                super::usage::TRY_HELP
            );
            Ok(1)
        }
    }
}

pub(super) fn print_out<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce(&mut String),
) -> Result<i32> {
    let mut out = String::new();
    if json {
        out = serde_json::to_string_pretty(value)?;
        out.push('\n');
    } else {
        text(&mut out);
    }
    print!("{out}");
    Ok(0)
}

/// One `dump limits` line: `peers in_use 5 cap 4096 refused 0 evicted 0 at_cap refuse`.
pub fn format_limit(l: &crate::node::Limit) -> String {
    let at_cap = match l.at_cap {
        crate::node::AtCap::Refuse => "refuse",
        crate::node::AtCap::Evict => "evict",
    };
    format!(
        "{} in_use {} cap {} refused {} evicted {} at_cap {at_cap}",
        l.name, l.in_use, l.cap, l.refused, l.evicted
    )
}

/// One `dump nodes` line in tinc 1.1's shape.
pub fn format_node(n: &NodeStatus) -> String {
    let (min, max) = if n.is_self {
        (0, n.pmtu)
    } else {
        (n.min_mtu, n.max_mtu)
    };
    let mut s = format!(
        "{} id {} at {} port {} cipher 0 digest 0 maclength 0 compression 0 options 0 status {:04x} nexthop {} via {} distance {} pmtu {} (min {} max {}) rx {} {} tx {} {}",
        n.name, n.id, n.address, n.port, n.status, n.nexthop, n.via, n.distance, n.pmtu, min, max,
        n.rx_packets, n.rx_bytes, n.tx_packets, n.tx_bytes
    );
    if let Some(rtt) = n.rtt_us {
        let _ = write!(s, " rtt {}.{:03}", rtt / 1000, rtt % 1000);
    }
    // meshd's detector, after tinc's fields (milliseconds).
    if let (Some(srtt), Some(var)) = (n.srtt_us, n.rttvar_us) {
        let _ = write!(s, " srtt {} rttvar {}", ms(srtt), ms(var));
    }
    if let Some(d) = n.deadline_us {
        let _ = write!(s, " deadline {}", ms(d));
    }
    if n.suspected {
        s.push_str(" suspected");
    }
    s
}

/// Microseconds as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// One `dump edges` line.
pub fn format_edge(e: &EdgeStatus) -> String {
    format!(
        "{} to {} at {} port {} local {} port {} options 0 weight {}",
        e.from, e.to, e.address, e.port, e.local_address, e.local_port, e.weight
    )
}

/// One `dump connections` line (a session where tinc shows a socket).
/// A control connection's port is `unix`, as tinc prints it.
pub fn format_connection(c: &ConnectionStatus) -> String {
    let port = if c.status & CONNECTION_CONTROL != 0 {
        "unix".to_string()
    } else {
        c.port.to_string()
    };
    format!(
        "{} at {} port {port} options 0 socket {} status {:x}",
        c.name, c.address, c.session, c.status
    )
}

fn local_time(unix: u64) -> String {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed tm we own; both pointers are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return unix.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The `info NODE` text, as tinc prints it.
pub fn format_info(n: &NodeStatus) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Node:         {}", n.name);
    let _ = writeln!(s, "Node ID:      {}", n.id);
    let _ = writeln!(s, "Address:      {} port {}", n.address, n.port);
    let when = n.last_state_change.map_or("never".to_string(), local_time);
    if n.reachable {
        let _ = writeln!(s, "Online since: {when}");
    } else {
        let _ = writeln!(s, "Last seen:    {when}");
    }
    let mut status = String::from("Status:      ");
    for (bit, word) in [
        (status_bits::VALIDKEY, "validkey"),
        (status_bits::VISITED, "visited"),
        (status_bits::REACHABLE, "reachable"),
        (status_bits::SPTPS, "sptps"),
        (status_bits::UDP_CONFIRMED, "udp_confirmed"),
    ] {
        if n.status & bit != 0 {
            status.push(' ');
            status.push_str(word);
        }
    }
    let _ = writeln!(s, "{status}");
    let _ = writeln!(s, "Options:     ");
    let _ = writeln!(s, "Protocol:     meshd/1");
    let reach = if n.is_self {
        "can reach itself".to_string()
    } else if n.reachable && n.path == "relayed" {
        format!("indirectly via {}", n.via)
    } else if n.reachable {
        "directly with UDP".to_string()
    } else if n.key_source == "none" {
        "unknown".to_string()
    } else {
        "unreachable".to_string()
    };
    let _ = writeln!(s, "Reachability: {reach}");
    if n.reachable && !n.is_self {
        let path = match n.path.as_str() {
            "relayed" => format!("relayed via {}", n.via),
            "punched" => "direct (found through NATs after a relayed start)".into(),
            other => other.to_string(),
        };
        let _ = writeln!(s, "Path:         {path}");
        let _ = writeln!(s, "PMTU:         {}", n.pmtu);
        if let Some(rtt) = n.rtt_us {
            let _ = writeln!(s, "RTT:          {}.{:03}", rtt / 1000, rtt % 1000);
        }
        if let (Some(srtt), Some(var)) = (n.srtt_us, n.rttvar_us) {
            let _ = writeln!(
                s,
                "Smoothed RTT: {} ms (variation {} ms)",
                ms(srtt),
                ms(var)
            );
        }
        if let Some(d) = n.deadline_us {
            let suspected = if n.suspected { " (suspected)" } else { "" };
            let _ = writeln!(s, "Deadline:     {} ms{suspected}", ms(d));
        }
    }
    let _ = writeln!(
        s,
        "RX:           {} packets  {} bytes",
        n.rx_packets, n.rx_bytes
    );
    let _ = writeln!(
        s,
        "TX:           {} packets  {} bytes",
        n.tx_packets, n.tx_bytes
    );
    let mut edges = String::from("Edges:       ");
    for e in &n.edges {
        edges.push(' ');
        edges.push_str(e);
    }
    let _ = writeln!(s, "{edges}");
    let mut subnets = String::from("Subnets:     ");
    for sub in &n.subnets {
        subnets.push(' ');
        subnets.push_str(sub);
    }
    let _ = writeln!(s, "{subnets}");
    let _ = writeln!(s, "Key:          {}", n.key_source);
    s
}

/// `meshd info NODE|ADDRESS [--json]`.
pub fn info(netdir: &NetDir, node: &str, json: bool) -> Result<i32> {
    if crate::config::NodeName::new(node).is_err() {
        if node.contains(['.', ':']) {
            if !node.contains(['/', '#']) {
                if let Some(code) = super::vips::info_vip(netdir, node, json)? {
                    return Ok(code);
                }
            }
            return super::subnets::info_address(netdir, node, json);
        }
        eprintln!("Argument is not a node name, subnet or address.");
        return Ok(1);
    }
    let Some(list) = nodes(netdir)? else {
        return Ok(1);
    };
    let Some(n) = list.into_iter().find(|n| n.name == node) else {
        eprintln!("Unknown node {node}.");
        return Ok(1);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&n)?);
    } else {
        print!("{}", format_info(&n));
    }
    Ok(0)
}
