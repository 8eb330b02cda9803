//! scripts/bench-paths: the paths two nodes take through meshd, side by
//! side in one run — a direct session; a firewall between them (iptables
//! drops their datagrams), relayed through a third node; behind two NATs
//! that keep the port (direct after probing through the third node); behind
//! two NATs that pick a new port per destination (relayed). Per path: the
//! time from the daemons' start until alpha reaches beta, the path `dump
//! nodes` reports once settled, the ping RTT and iperf3's TCP throughput.

use crate::nat::NatKind;
use crate::netns::{need_tools, Lab};
use crate::throughput::{ping_median, tcp_gbit};
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::time::Duration;

const NODES: [&str; 3] = ["alpha", "beta", "gamma"];

/// The ways alpha and beta may be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Nothing in the way.
    Direct,
    /// iptables in alpha's namespace drops everything to and from beta.
    Firewalled,
    /// Each behind its own NAT that keeps the port.
    NatKeepsPort,
    /// Each behind its own NAT with `--random-fully`.
    NatRandomPort,
}

impl Setup {
    /// Every setup, in table order.
    pub const ALL: [Setup; 4] = [
        Setup::Direct,
        Setup::Firewalled,
        Setup::NatKeepsPort,
        Setup::NatRandomPort,
    ];

    fn label(self) -> &'static str {
        match self {
            Setup::Direct => "direct",
            Setup::Firewalled => "firewall between them",
            Setup::NatKeepsPort => "NATs keeping the port",
            Setup::NatRandomPort => "NATs --random-fully",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct PathRow {
    pub setup: Setup,
    /// From the daemons' start until alpha's `dump nodes` shows beta reachable.
    pub reach: Option<Duration>,
    /// `dump nodes`' path for beta once settled (direct, punched, relayed) and via.
    pub path: String,
    pub via: String,
    /// Median ping RTT alpha -> beta over the overlay, ms.
    pub rtt_ms: Option<f64>,
    /// iperf3 TCP alpha -> beta, Mbit/s.
    pub tcp_mbit: Option<f64>,
}

fn overlay_ip(node: &str) -> String {
    let i = NODES.iter().position(|n| *n == node).unwrap_or(0) + 1;
    format!("10.1.6.{i}")
}

fn build(setup: Setup, tag: &str) -> Lab {
    let mut lab = Lab::new(tag, &NODES);
    lab.init_all();
    lab.give_all_hosts();
    for n in ["alpha", "beta"] {
        lab.conf(n, "ConnectTo = gamma");
    }
    lab.conf("alpha", "ConnectTo = beta");
    for node in NODES {
        lab.overlay_up(node, &format!("{}/24", overlay_ip(node)));
    }
    match setup {
        Setup::Direct => {}
        Setup::Firewalled => {
            let ns = lab.node("alpha").ns.clone();
            let beta = lab.node("beta").ip.clone();
            for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
                lab.must_in(&ns, &["iptables", "-A", chain, dir, &beta, "-j", "DROP"]);
            }
        }
        Setup::NatKeepsPort | Setup::NatRandomPort => {
            let kind = if setup == Setup::NatKeepsPort {
                NatKind::KeepsPort
            } else {
                NatKind::RandomPort
            };
            lab.put_behind_nat("alpha", 1, kind);
            lab.put_behind_nat("beta", 2, kind);
        }
    }
    lab
}

/// alpha's `dump nodes --json` line for beta: (reachable, path, via).
fn beta_from_alpha(lab: &Lab) -> Option<(bool, String, String)> {
    let line = lab.node_line("alpha", "beta")?;
    Some((
        line["reachable"].as_bool()?,
        line["path"].as_str()?.to_string(),
        line["via"].as_str()?.to_string(),
    ))
}

/// Builds `setup`, starts the three daemons, measures, tears down.
pub fn measure(setup: Setup, seconds: u32) -> Result<PathRow> {
    let mut lab = build(setup, "bp");
    for n in ["gamma", "alpha", "beta"] {
        lab.start(n);
    }
    let reach = lab.wait(Duration::from_secs(30), |lab| {
        beta_from_alpha(lab).is_some_and(|(up, _, _)| up)
    });
    // Settle: a relayed pair behind port-keeping NATs goes direct within
    // one direct try (5 s).
    std::thread::sleep(Duration::from_secs(6));
    let (_, path, via) = beta_from_alpha(&lab).unwrap_or((false, "none".into(), "-".into()));
    let alpha_ns = lab.node("alpha").ns.clone();
    let beta_ns = lab.node("beta").ns.clone();
    let ping = lab.exec_in(
        &alpha_ns,
        &[
            "ping",
            "-c",
            "21",
            "-i",
            "0.05",
            "-W",
            "1",
            &overlay_ip("beta"),
        ],
    );
    let rtt_ms = ping_median(&String::from_utf8_lossy(&ping.stdout)).and_then(|m| m.parse().ok());
    let server = lab.spawn_in(&beta_ns, &["iperf3", "-s", "-1", "-p", "5201"], None, None);
    std::thread::sleep(Duration::from_millis(300));
    let client = lab.exec_in(
        &alpha_ns,
        &[
            "iperf3",
            "-c",
            &overlay_ip("beta"),
            "-p",
            "5201",
            "-t",
            &seconds.to_string(),
            "-J",
        ],
    );
    let tcp_mbit = tcp_gbit(&String::from_utf8_lossy(&client.stdout)).map(|g| g * 1000.0);
    let _ = lab.wait_child(server, Duration::from_secs(5));
    Ok(PathRow {
        setup,
        reach,
        path,
        via,
        rtt_ms,
        tcp_mbit,
    })
}

/// Every setup, one after the other (each in its own namespaces).
pub fn run(seconds: u32) -> Result<Vec<PathRow>> {
    if !crate::netns::available() {
        bail!("bench-paths needs root and iproute2 (it creates network namespaces)");
    }
    need_tools(&["iptables", "ping", "iperf3", "sysctl"]);
    Setup::ALL.iter().map(|s| measure(*s, seconds)).collect()
}

/// The table, with each path's RTT added over the direct one.
pub fn table(rows: &[PathRow]) -> String {
    let direct_rtt = rows
        .iter()
        .find(|r| r.setup == Setup::Direct)
        .and_then(|r| r.rtt_ms);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| path | reachable after | path once settled | ping RTT (ms) | added RTT (ms) | TCP (Mbit/s) |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|---:|");
    for r in rows {
        let reach = r.reach.map_or("never (30 s)".into(), |d| {
            format!("{:.2} s", d.as_secs_f64())
        });
        let settled = if r.path == "relayed" {
            format!("relayed via {}", r.via)
        } else {
            r.path.clone()
        };
        let rtt = r.rtt_ms.map_or("-".into(), |v| format!("{v:.3}"));
        let added = match (r.rtt_ms, direct_rtt) {
            (Some(v), Some(d)) => format!("{:+.3}", v - d),
            _ => "-".into(),
        };
        let tcp = r.tcp_mbit.map_or("-".into(), |v| format!("{v:.0}"));
        let _ = writeln!(
            s,
            "| {} | {reach} | {settled} | {rtt} | {added} | {tcp} |",
            r.setup.label()
        );
    }
    s
}
