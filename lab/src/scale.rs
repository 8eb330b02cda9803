//! scripts/bench-scale's report: how long the mesh of N nodes took, what the
//! idle heartbeats cost (CPU per daemon and per session), the daemons' memory,
//! and peer deaths at idle; as a table and as JSON.

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// The script's facts, `key=value` words (see [`Facts::get`] for the keys).
#[derive(Debug, Clone, Default)]
pub struct Facts(BTreeMap<String, String>);

impl Facts {
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Facts> {
        let mut m = BTreeMap::new();
        for w in words {
            let (k, v) = w
                .as_ref()
                .split_once('=')
                .with_context(|| format!("{}: not KEY=VALUE", w.as_ref()))?;
            m.insert(k.to_string(), v.to_string());
        }
        Ok(Facts(m))
    }
    /// Built with invite / join (not init and host-file copies).
    pub fn invite(&self) -> bool {
        self.0.get("invite").is_none_or(|v| v == "1")
    }
    fn text(&self, k: &str) -> String {
        self.0.get(k).cloned().unwrap_or_default()
    }
    fn num(&self, k: &str) -> Result<f64> {
        self.0
            .get(k)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{k}: missing or not a number"))
    }
    fn opt(&self, k: &str) -> Option<f64> {
        self.0.get(k).and_then(|v| v.parse().ok())
    }
}

#[derive(Debug, Serialize)]
pub struct RssMib {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// The JSON document (and what the table shows).
#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub cpus: usize,
    pub meshd: String,
    pub nodes: u64,
    pub hello_ms: u64,
    pub built_with: String,
    pub join_ms: u64,
    pub start_ms: Option<u64>,
    pub since: String,
    pub full_mesh_ms: u64,
    pub full_mesh_from_first_ms: u64,
    pub sessions: u64,
    pub ping: String,
    pub idle_s: f64,
    pub idle_cpu_s: f64,
    pub idle_cpu_pct_one_core: f64,
    pub cpu_ms_per_daemon_per_s: f64,
    pub cpu_us_per_session_per_s: u64,
    pub hub_rss_kib: u64,
    pub rss_mib: RssMib,
    pub peak_rss_kib: u64,
    pub deaths_idle: i64,
    /// Peer deaths since the start (the table's note).
    #[serde(skip)]
    pub deaths_total: i64,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The report from the facts and each daemon's "VmRSS VmHWM" (kB), the hub first.
pub fn report(f: &Facts, rss: &[(u64, u64)], date: String, cpus: usize) -> Result<Report> {
    let nodes = f.num("nodes")? as u64;
    let wall_s = f.num("wall_ms")? / 1000.0;
    let cpu_s = f.num("ticks")? / f.num("hz")?;
    let sessions = nodes * nodes.saturating_sub(1) / 2;
    let mut others: Vec<u64> = rss.iter().skip(1).map(|r| r.0).collect();
    others.sort();
    let mib = |kb: u64| round(kb as f64 / 1024.0, 1);
    let pick = |i: usize| others.get(i).copied().map_or(0.0, mib);
    Ok(Report {
        date,
        cpus,
        meshd: f.text("rev"),
        nodes,
        hello_ms: f.opt("hello_ms").unwrap_or(100.0) as u64,
        built_with: f.text("how"),
        join_ms: f.num("join_ms")? as u64,
        start_ms: f.opt("start_ms").map(|v| v as u64),
        since: f.text("since"),
        full_mesh_ms: f.num("mesh_ms")? as u64,
        full_mesh_from_first_ms: f.opt("mesh_first_ms").unwrap_or(0.0) as u64,
        sessions,
        ping: f.text("ping"),
        idle_s: round(wall_s, 2),
        idle_cpu_s: round(cpu_s, 2),
        idle_cpu_pct_one_core: round(cpu_s / wall_s * 100.0, 1),
        cpu_ms_per_daemon_per_s: round(cpu_s / wall_s / nodes as f64 * 1000.0, 2),
        cpu_us_per_session_per_s: (cpu_s / wall_s / sessions.max(1) as f64 * 1e6).round() as u64,
        hub_rss_kib: rss.first().map_or(0, |r| r.0),
        rss_mib: RssMib {
            min: pick(0),
            median: pick(others.len().saturating_sub(1) / 2),
            max: pick(others.len().saturating_sub(1)),
        },
        peak_rss_kib: rss.iter().map(|r| r.1).max().unwrap_or(0),
        deaths_idle: (f.num("d1")? - f.num("d0")?) as i64,
        deaths_total: f.num("d1")? as i64,
    })
}

/// The table under the first line; `load0`: the load average at the start.
pub fn table(r: &Report, invite: bool, load0: &str, kernel: &str, when: &str) -> String {
    let n = r.nodes;
    let s2 = |ms: u64| format!("{:.2}", ms as f64 / 1000.0);
    let mut rows: Vec<(String, String)> = Vec::new();
    if invite {
        let per = r.join_ms / n.saturating_sub(1).max(1);
        rows.push((
            format!(
                "invite + join --start of {} nodes, one after the other",
                n - 1
            ),
            format!("{} s ({per} ms per node)", s2(r.join_ms)),
        ));
    } else {
        rows.push((
            format!("init + host-file copies of {} nodes", n - 1),
            format!("{} s", s2(r.join_ms)),
        ));
    }
    let mesh = format!(
        "full mesh: each node has direct sessions to the {} others",
        n - 1
    );
    match r.start_ms {
        Some(st) => {
            rows.push((
                format!("meshd start of all {n} daemons, one after the other"),
                format!("{} s", s2(st)),
            ));
            rows.push((
                mesh,
                format!(
                    "{} s after the last start ({} s after the first)",
                    s2(r.full_mesh_ms),
                    s2(r.full_mesh_from_first_ms)
                ),
            ));
        }
        None => rows.push((
            mesh,
            format!("{} s after the last join", s2(r.full_mesh_ms)),
        )),
    }
    let m = &r.rss_mib;
    rows.extend([
        ("direct sessions".into(), r.sessions.to_string()),
        (
            format!("ping over the overlay, node_{n} -> node_2"),
            r.ping.clone(),
        ),
        (
            format!("idle CPU of all {n} daemons over {:.2} s", r.idle_s),
            format!(
                "{:.2} s = {:.1} % of one core",
                r.idle_cpu_s, r.idle_cpu_pct_one_core
            ),
        ),
        (
            "idle CPU per daemon / per session (heartbeats both ways)".into(),
            format!(
                "{:.2} ms/s / {} us/s",
                r.cpu_ms_per_daemon_per_s, r.cpu_us_per_session_per_s
            ),
        ),
        (
            "RSS (VmRSS) of the hub, node_1".into(),
            format!("{:.1} MiB", r.hub_rss_kib as f64 / 1024.0),
        ),
        (
            format!("RSS of the other {} daemons: min / median / max", n - 1),
            format!("{:.1} / {:.1} / {:.1} MiB", m.min, m.median, m.max),
        ),
        (
            "largest peak RSS (VmHWM)".into(),
            format!("{:.1} MiB", r.peak_rss_kib as f64 / 1024.0),
        ),
        (
            "peer deaths (all nodes) during the idle period".into(),
            format!("{} ({} since start)", r.deaths_idle, r.deaths_total),
        ),
    ]);
    let mut out = format!(
        "bench-scale: {when}, {} CPUs, kernel {kernel}, meshd {}, {n} nodes, HelloInterval {}ms, DeadInterval {}ms, load average {load0} at the start\n",
        r.cpus,
        r.meshd,
        r.hello_ms,
        r.hello_ms * 3
    );
    out += &format!("{:<62} {}\n", "what", "figure");
    for (what, fig) in rows {
        out += &format!("{what:<62} {fig}\n");
    }
    out + &format!(
        "Network built with {}; every node knows only node_1; CPU from /proc/PID/stat utime+stime (all threads).\n",
        r.built_with
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(extra: &[&str]) -> Facts {
        let mut w = vec![
            "rev=abc",
            "nodes=30",
            "how=invite / join --start",
            "join_ms=9590",
            "since=the last join",
            "mesh_ms=400",
            "ping=yes",
            "wall_ms=20260",
            "ticks=1001",
            "hz=100",
            "d0=0",
            "d1=2",
        ];
        w.extend_from_slice(extra);
        Facts::parse(&w).unwrap()
    }

    #[test]
    fn the_readmes_figures() {
        let rss: Vec<(u64, u64)> = [(9318, 9318), (8704, 8800), (8806, 8900), (9011, 9100)].into();
        let r = report(&facts(&[]), &rss, "d".into(), 2).unwrap();
        assert_eq!(
            (r.sessions, r.idle_cpu_s, r.idle_cpu_pct_one_core),
            (435, 10.01, 49.4)
        );
        assert_eq!(
            (r.cpu_ms_per_daemon_per_s, r.cpu_us_per_session_per_s),
            (16.47, 1136)
        );
        assert_eq!(
            (r.rss_mib.min, r.rss_mib.median, r.rss_mib.max),
            (8.5, 8.6, 8.8)
        );
        assert_eq!((r.peak_rss_kib, r.deaths_idle, r.hello_ms), (9318, 2, 100));
        let t = table(&r, true, "31.29", "6.18", "2026-11-22 08:13 UTC");
        assert!(t.contains("invite + join --start of 29 nodes, one after the other         9.59 s (330 ms per node)\n"), "{t}");
        assert!(t.contains("full mesh: each node has direct sessions to the 29 others      0.40 s after the last join\n"), "{t}");
        assert!(t.contains("peer deaths (all nodes) during the idle period                 2 (2 since start)\n"), "{t}");
        assert!(t.contains("idle CPU of all 30 daemons over 20.26 s                        10.01 s = 49.4 % of one core\n"), "{t}");
        assert!(t.contains("idle CPU per daemon / per session (heartbeats both ways)       16.47 ms/s / 1136 us/s\n"), "{t}");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["rss_mib"]["median"], 8.6);
        assert_eq!(j["start_ms"], serde_json::Value::Null);
    }

    #[test]
    fn cold_start_and_bad_facts() {
        let r = report(
            &facts(&["start_ms=2000", "mesh_first_ms=2400"]),
            &[(1, 1)],
            "d".into(),
            2,
        )
        .unwrap();
        let t = table(&r, false, "1", "k", "w");
        assert!(
            t.contains("meshd start of all 30 daemons, one after the other")
                && t.contains("(2.40 s after the first)"),
            "{t}"
        );
        assert!(Facts::parse(&["novalue"]).is_err());
        assert!(report(&Facts::parse(&["nodes=3"]).unwrap(), &[], "d".into(), 1).is_err());
    }
}
