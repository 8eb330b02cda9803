//! `dump graph` and `dump digraph`: the mesh as Graphviz, in tinc's shape (node colours by
//! state, one line per edge), with the holders of shared VIPs marked.

use super::dump::ask;
use crate::config::NetDir;
use crate::control::{Request, Response};
use crate::node::status::{status_bits, EdgeStatus, NodeStatus};
use crate::node::vip_status::VipStatus;
use anyhow::{bail, Result};
use std::fmt::Write as _;

/// Graphviz text for the daemon's view. `directed`: `digraph` (every edge, `->`) instead of
/// `graph` (each pair once, `--`).
pub fn render(
    nodes: &[NodeStatus],
    edges: &[EdgeStatus],
    vips: &[VipStatus],
    directed: bool,
) -> String {
    let mut out = String::from(if directed { "digraph {\n" } else { "graph {\n" });
    for n in nodes {
        let colour = if n.is_self || (n.reachable && n.status & status_bits::UDP_CONFIRMED != 0) {
            "green"
        } else if !n.reachable {
            "red"
        } else if n.via != n.name {
            "orange"
        } else {
            "black"
        };
        let served: Vec<&str> = vips
            .iter()
            .filter(|v| v.holders.iter().any(|h| h.name == n.name && h.offered))
            .map(|v| v.vip.as_str())
            .collect();
        let mut label = quote(&n.name);
        label.pop();
        for vip in &served {
            let _ = write!(label, "\\nVIP {vip}");
        }
        label.push('"');
        let _ = write!(
            out,
            " {} [label = {label}, color = \"{colour}\"",
            quote(&n.name)
        );
        if n.is_self {
            out.push_str(", style = \"filled\"");
        }
        if !served.is_empty() {
            out.push_str(", shape = \"box\", peripheries = 2");
        }
        out.push_str("];\n");
    }
    for e in edges {
        if !directed && e.from <= e.to && edges.iter().any(|o| o.from == e.to && o.to == e.from) {
            continue;
        }
        let w = if e.weight <= 0 {
            "inf".to_string()
        } else {
            format!("{:.6}", 1.0 + 65536.0 / f64::from(e.weight))
        };
        let arrow = if directed { "->" } else { "--" };
        let _ = writeln!(
            out,
            " {} {arrow} {} [w = {w}, weight = {w}];",
            quote(&e.from),
            quote(&e.to)
        );
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `meshd dump graph|digraph`.
pub fn dump_graph(netdir: &NetDir, directed: bool) -> Result<i32> {
    let Some(nodes) = ask(netdir, &Request::DumpNodes)? else {
        return Ok(1);
    };
    let Response::Nodes { nodes } = nodes else {
        bail!("unexpected answer to dump nodes");
    };
    let edges = match ask(netdir, &Request::DumpEdges)? {
        Some(Response::Edges { edges }) => edges,
        Some(other) => bail!("unexpected answer: {other:?}"),
        None => return Ok(1),
    };
    let vips = match ask(netdir, &Request::DumpVips)? {
        Some(Response::Vips { vips }) => vips,
        Some(other) => bail!("unexpected answer: {other:?}"),
        None => return Ok(1),
    };
    print!("{}", render(&nodes, &edges, &vips, directed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::vip_status::HolderStatus;

    fn node(name: &str, is_self: bool, reachable: bool, udp: bool) -> NodeStatus {
        let mut status = 0;
        if reachable {
            status |= status_bits::REACHABLE;
        }
        if udp {
            status |= status_bits::UDP_CONFIRMED;
        }
        NodeStatus {
            name: name.into(),
            is_self,
            reachable,
            status,
            via: name.into(),
            ..NodeStatus::default()
        }
    }

    fn edge(from: &str, to: &str) -> EdgeStatus {
        EdgeStatus {
            from: from.into(),
            to: to.into(),
            address: "192.0.2.1".into(),
            port: 655,
            local_address: "unspec".into(),
            local_port: 0,
            weight: 0,
        }
    }

    #[test]
    fn graph_has_tincs_shape_and_marks_vip_holders() {
        let nodes = vec![
            node("alpha", true, true, false),
            node("beta", false, true, true),
            node("gamma", false, false, false),
        ];
        let edges = vec![edge("alpha", "beta"), edge("beta", "alpha")];
        let vips = vec![VipStatus {
            vip: "10.1.1.10".into(),
            holders: vec![HolderStatus {
                name: "beta".into(),
                offered: true,
                ..HolderStatus::default()
            }],
            ..VipStatus::default()
        }];
        let g = render(&nodes, &edges, &vips, false);
        assert_eq!(
            g,
            "graph {\n \"alpha\" [label = \"alpha\", color = \"green\", style = \"filled\"];\n \
             \"beta\" [label = \"beta\\nVIP 10.1.1.10\", color = \"green\", shape = \"box\", peripheries = 2];\n \
             \"gamma\" [label = \"gamma\", color = \"red\"];\n \
             \"beta\" -- \"alpha\" [w = inf, weight = inf];\n}\n"
        );
        let d = render(&nodes, &edges, &vips, true);
        assert!(d.starts_with("digraph {\n"));
        assert!(d.contains(" \"alpha\" -> \"beta\" [w = inf, weight = inf];\n"));
        assert!(d.contains(" \"beta\" -> \"alpha\" [w = inf, weight = inf];\n"));
    }
}
