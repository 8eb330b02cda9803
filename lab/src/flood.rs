//! scripts/bench-flood's measurement: one flood kind's row from the target
//! daemon's counters before and after (drops, CPU, kernel drops, deaths,
//! failovers, log growth, run-queue wait), the flooder's report and the
//! client's probe; and the markdown table of all rows.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::probe::ProbeLog;

/// Every numeric leaf of a JSON document, by dotted path.
pub fn leaves(v: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, i64>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        serde_json::Value::Number(n) => {
            out.insert(prefix.to_string(), n.as_f64().unwrap_or(0.0) as i64);
        }
        _ => {}
    }
}

/// The counters at one moment (the script's snapshot directory).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub drops: BTreeMap<String, i64>,
    /// The sum of every node's peer deaths (None if a dump failed).
    pub deaths: Option<i64>,
    pub cpu_ticks: Option<i64>,
    pub rcvbuf_errors: Option<i64>,
    pub failovers: Option<i64>,
    pub log_bytes: i64,
    pub runq_ns: Option<i64>,
    pub time: f64,
}

impl Snapshot {
    /// DIR/drops.json (dump drops --json), DIR/nodes_N.json (dump nodes
    /// --json), DIR/counters: "CPU_TICKS RCVBUF_ERRORS FAILOVERS LOG_BYTES
    /// RUNQ_NS TIME" ("?" for one unread).
    pub fn read(dir: &Path) -> Result<Snapshot> {
        let counters = std::fs::read_to_string(dir.join("counters"))
            .with_context(|| format!("reading {}/counters", dir.display()))?;
        let c: Vec<&str> = counters.split_whitespace().collect();
        let n = |i: usize| c.get(i).and_then(|v| v.parse::<i64>().ok());
        let mut drops = BTreeMap::new();
        if let Ok(v) = serde_json::from_str(
            &std::fs::read_to_string(dir.join("drops.json")).unwrap_or_default(),
        ) {
            leaves(&v, "", &mut drops);
        }
        let mut deaths = Some(0);
        for i in 1..=3 {
            let text =
                std::fs::read_to_string(dir.join(format!("nodes_{i}.json"))).unwrap_or_default();
            let d = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.as_array().map(|a| {
                        a.iter()
                            .map(|n| n["deaths"].as_i64().unwrap_or(0))
                            .sum::<i64>()
                    })
                });
            deaths = deaths.zip(d).map(|(a, b)| a + b);
        }
        Ok(Snapshot {
            drops,
            deaths,
            cpu_ticks: n(0),
            rcvbuf_errors: n(1),
            failovers: n(2),
            log_bytes: n(3).unwrap_or(0),
            runq_ns: n(4),
            time: c
                .get(5)
                .and_then(|v| v.parse().ok())
                .context("counters: no time")?,
        })
    }
}

/// One row of the table (one element of the JSON's rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub kind: String,
    pub seconds: f64,
    pub offered_pps: i64,
    pub sent: i64,
    pub absorbed_pps: i64,
    pub absorbed: i64,
    pub kernel_drops: Option<i64>,
    pub cpu_pct: Option<f64>,
    pub runq_wait_pct: Option<f64>,
    pub handshakes_refused_per_s: i64,
    pub rate_limited_per_s: i64,
    pub probes_sent: Option<u64>,
    pub probes_lost: Option<u64>,
    pub longest_gap_ms: Option<u64>,
    pub sessions_dropped: Option<i64>,
    pub failovers: Option<i64>,
    pub log_kb: f64,
    pub drops: BTreeMap<String, i64>,
}

/// The packet path's refusals (not frames the switch dropped).
const PACKET: [&str; 6] = [
    "malformed",
    "unknown_session",
    "bad_data",
    "bad_handshake",
    "rate_limited",
    "bad_message",
];

fn diff(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(b? - a?)
}

/// The row of `kind` from the snapshots, the flooder's `--json` report
/// (`{"sent": N, "seconds": S}`) and the probe's ping output.
pub fn row(
    kind: &str,
    before: &Snapshot,
    after: &Snapshot,
    flood: &serde_json::Value,
    ping: &ProbeLog,
    ticks_per_s: f64,
) -> Row {
    let secs = after.time - before.time;
    let delta: BTreeMap<String, i64> = after
        .drops
        .iter()
        .filter_map(|(k, &v)| {
            let d = v - before.drops.get(k).copied().unwrap_or(0);
            (d != 0).then(|| (k.clone(), d))
        })
        .collect();
    let leaf = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let by_leaf = |name: &str| {
        delta
            .iter()
            .filter(|(k, _)| leaf(k) == name)
            .map(|(_, v)| v)
            .sum::<i64>()
    };
    let absorbed: i64 = delta
        .iter()
        .filter(|(k, _)| PACKET.contains(&leaf(k).as_str()))
        .map(|(_, v)| v)
        .sum();
    let sent = flood["sent"].as_i64().unwrap_or(0);
    let flood_secs = flood["seconds"].as_f64().unwrap_or(secs).max(1e-9);
    let times: Vec<f64> = ping.answers.iter().map(|a| a.ts).collect();
    let gap = times.windows(2).map(|w| w[1] - w[0]).reduce(f64::max);
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let per_s = |v: i64| (v as f64 / secs).round() as i64;
    Row {
        kind: kind.to_string(),
        seconds: (secs * 100.0).round() / 100.0,
        offered_pps: (sent as f64 / flood_secs).round() as i64,
        sent,
        absorbed_pps: per_s(absorbed),
        absorbed,
        kernel_drops: diff(before.rcvbuf_errors, after.rcvbuf_errors),
        cpu_pct: diff(before.cpu_ticks, after.cpu_ticks)
            .map(|c| round1(100.0 * c as f64 / ticks_per_s / secs)),
        runq_wait_pct: diff(before.runq_ns, after.runq_ns)
            .map(|q| round1(100.0 * q as f64 / 1e9 / secs)),
        handshakes_refused_per_s: per_s(by_leaf("bad_handshake")),
        rate_limited_per_s: per_s(by_leaf("rate_limited")),
        probes_sent: ping.transmitted,
        probes_lost: ping
            .transmitted
            .zip(ping.received)
            .map(|(s, r)| s.saturating_sub(r)),
        longest_gap_ms: gap.map(|g| (g * 1000.0).round() as u64),
        sessions_dropped: diff(before.deaths, after.deaths),
        failovers: diff(before.failovers, after.failovers),
        log_kb: round1((after.log_bytes - before.log_bytes) as f64 / 1024.0),
        drops: delta,
    }
}

fn q<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("?".into(), T::to_string)
}

/// A float as Python prints it (2.0, not 2).
fn qf(v: &Option<f64>) -> String {
    v.map_or("?".into(), |f| format!("{f:?}"))
}

/// The table: HEADER, the rows, the line on whether the target still answers.
pub fn table(header: &str, rows: &[Row], answers: &str) -> String {
    let mut out = format!(
        "{header}\n\n| kind | offered pps | absorbed pps | kernel drops | daemon CPU % | runq wait % | hs refused/s | limited/s \
         | probes lost | longest gap ms | sessions dropped | failovers | log KB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {} | {:?} |\n",
            if r.kind == "none" {
                "(no flood)"
            } else {
                &r.kind
            },
            r.offered_pps,
            r.absorbed_pps,
            q(&r.kernel_drops),
            qf(&r.cpu_pct),
            qf(&r.runq_wait_pct),
            r.handshakes_refused_per_s,
            r.rate_limited_per_s,
            q(&r.probes_lost),
            q(&r.probes_sent),
            q(&r.longest_gap_ms),
            q(&r.sessions_dropped),
            q(&r.failovers),
            r.log_kb
        );
    }
    out + &format!("\ntarget: node_1 (serves the VIP); probes: node_3 pings the VIP every 10 ms; node_1 still answers dump nodes: {answers}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(dir: &Path, counters: &str, drops: &str, deaths: i64) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("counters"), counters).unwrap();
        std::fs::write(dir.join("drops.json"), drops).unwrap();
        for i in 1..=3 {
            std::fs::write(
                dir.join(format!("nodes_{i}.json")),
                format!(r#"[{{"name":"a","deaths":{deaths}}},{{"name":"b"}}]"#),
            )
            .unwrap();
        }
    }

    #[test]
    fn a_flood_row() {
        let d = tempfile::tempdir().unwrap();
        snap(
            &d.path().join("b"),
            "100 5 0 2048 1000000000 1000.0\n",
            r#"{"udp":{"malformed":10,"bad_handshake":0},"switch":{"no_route":4}}"#,
            0,
        );
        snap(
            &d.path().join("a"),
            "300 9 1 4096 1500000000 1010.0\n",
            r#"{"udp":{"malformed":50010,"bad_handshake":2000,"flag":true},"switch":{"no_route":4}}"#,
            1,
        );
        let (b, a) = (
            Snapshot::read(&d.path().join("b")).unwrap(),
            Snapshot::read(&d.path().join("a")).unwrap(),
        );
        assert_eq!((b.deaths, a.deaths), (Some(0), Some(3)));
        let ping = ProbeLog::parse(
            "[1.000000] 64 bytes from x: icmp_seq=1 ttl=41 time=1 ms\n[1.250000] 64 bytes from x: icmp_seq=3 ttl=41 time=1 ms\n\
             3 packets transmitted, 2 received, 33% packet loss\n",
        );
        let flood = serde_json::json!({"sent": 700000, "seconds": 10.0});
        let r = row("garbage", &b, &a, &flood, &ping, 100.0);
        assert_eq!(
            (r.offered_pps, r.absorbed, r.absorbed_pps),
            (70000, 52000, 5200)
        );
        assert_eq!(
            r.drops.len(),
            2,
            "unchanged and non-numeric leaves are left out: {:?}",
            r.drops
        );
        assert_eq!(
            (r.kernel_drops, r.cpu_pct, r.runq_wait_pct),
            (Some(4), Some(20.0), Some(5.0))
        );
        assert_eq!((r.handshakes_refused_per_s, r.rate_limited_per_s), (200, 0));
        assert_eq!(
            (r.probes_sent, r.probes_lost, r.longest_gap_ms),
            (Some(3), Some(1), Some(250))
        );
        assert_eq!(
            (r.sessions_dropped, r.failovers, r.log_kb),
            (Some(3), Some(1), 2.0)
        );
        let t = table("bench-flood: x", &[r], "yes");
        assert!(
            t.contains(
                "| garbage | 70000 | 5200 | 4 | 20.0 | 5.0 | 200 | 0 | 1/3 | 250 | 3 | 1 | 2.0 |\n"
            ),
            "{t}"
        );
        assert!(t.ends_with("node_1 still answers dump nodes: yes\n"));
    }

    #[test]
    fn unread_counters_are_question_marks() {
        let d = tempfile::tempdir().unwrap();
        snap(d.path(), "? ? ? 0 ? 5.0", "not json", 0);
        std::fs::write(d.path().join("nodes_2.json"), "").unwrap();
        let s = Snapshot::read(d.path()).unwrap();
        assert_eq!((s.cpu_ticks, s.deaths, s.drops.len()), (None, None, 0));
        let r = row(
            "none",
            &s,
            &s,
            &serde_json::json!({}),
            &ProbeLog::default(),
            100.0,
        );
        assert!(table("h", &[r], "no")
            .contains("| (no flood) | 0 | 0 | ? | ? | ? | 0 | 0 | ?/? | ? | ? | ? | 0.0 |"));
    }
}
