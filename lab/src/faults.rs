//! scripts/bench-faults' measurement and verdict: one fault profile's result
//! from its counter snapshots, daemon logs and probe log; the markdown table
//! over all profiles; the pass/fail rule.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::host::epoch_of_log_time;
use crate::probe::{ProbeLog, ProbeSummary};

/// A profile run's settings (what bench-faults passes).
#[derive(Debug, Clone)]
pub struct ProfileSpec {
    pub name: String,
    /// The fault in tc netem's words ("" for none).
    pub netem: String,
    pub key_expire_s: u64,
    pub ttl_base: u32,
    pub both_ends: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Death {
    pub at: Option<f64>,
    pub node: String,
    pub peer: String,
    pub stall_within_1s: bool,
    pub load: Option<f64>,
    pub since_start_s: Option<f64>,
}

/// One profile's result (one row of the table, one element of the JSON's rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileResult {
    pub profile: String,
    pub netem: Option<String>,
    pub faults_on: String,
    pub seconds: f64,
    pub key_expire_s: u64,
    pub false_failovers: i64,
    pub false_failovers_client: i64,
    pub peer_deaths: Option<i64>,
    pub peer_down_log_lines: usize,
    pub rekeys: Option<i64>,
    pub rekeys_expected: i64,
    pub sessions_alive_end: Option<i64>,
    pub sessions_total: i64,
    pub probe: ProbeSummary,
    pub load_start: Vec<String>,
    pub load_end: Vec<String>,
    pub load_max: Option<f64>,
    pub runqueue_wait_ms: Option<i64>,
    pub stalls: usize,
    pub health_check_failures: usize,
    pub deaths: Vec<Death>,
    pub false_failovers_per_hour: Option<f64>,
    pub peer_deaths_per_hour: Option<f64>,
}

/// Five nodes: ten pairs, twenty directed sessions.
const PAIRS: i64 = 10;
const SESSIONS: i64 = 20;

/// (handshakes, deaths, live directed sessions) over the five nodes'
/// `dump nodes --json`; None if one is unreadable.
pub fn nodes_counters(snap: &Path) -> Option<(i64, i64, i64)> {
    let (mut hs, mut deaths, mut alive) = (0, 0, 0);
    for i in 1..=5 {
        let text = std::fs::read_to_string(snap.join(format!("node_{i}.nodes.json"))).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        for n in v.as_array()? {
            if n["name"] == format!("node_{i}").as_str() {
                continue;
            }
            hs += n["handshakes"].as_i64().unwrap_or(0);
            deaths += n["deaths"].as_i64().unwrap_or(0);
            alive += i64::from(n["reachable"].as_bool().unwrap_or(false));
        }
    }
    Some((hs, deaths, alive))
}

/// meshd_vip_failovers_total of all nodes and of the client node_5.
pub fn failovers(snap: &Path) -> (i64, i64) {
    let (mut total, mut client) = (0.0, 0.0);
    for i in 1..=5 {
        let Ok(text) = std::fs::read_to_string(snap.join(format!("node_{i}.metrics"))) else {
            continue;
        };
        for line in text
            .lines()
            .filter(|l| l.starts_with("meshd_vip_failovers_total"))
        {
            let v: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            total += v;
            if i == 5 {
                client += v;
            }
        }
    }
    (total as i64, client as i64)
}

/// The daemons' run-queue wait in ns, summed ("N WAIT" lines).
fn schedstat(snap: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(snap.join("schedstat")).ok()?;
    let waits: Vec<i64> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    (!waits.is_empty()).then(|| waits.iter().sum())
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Deaths ("peer is down"), stalls and health-check failures in the daemons'
/// logs between t0 and t1 (+1 s); each death with the stall and load near it.
pub fn deaths_and_stalls(
    logs: &[(String, String)],
    t0: f64,
    t1: f64,
    loadavg: &[(f64, f64)],
) -> (Vec<Death>, usize, usize) {
    let (mut deaths, mut stalls, mut health) = (Vec::new(), Vec::new(), 0);
    for (node, text) in logs {
        for line in text.lines() {
            let t = line.split_whitespace().next().and_then(epoch_of_log_time);
            if t.is_some_and(|t| !(t0..=t1 + 1.0).contains(&t)) {
                continue;
            }
            if line.contains("peer is down") {
                let peer = field(line, "peer").unwrap_or("?").to_string();
                deaths.push(Death {
                    at: t,
                    node: node.clone(),
                    peer,
                    stall_within_1s: false,
                    load: None,
                    since_start_s: None,
                });
            } else if line.contains("health check failed") {
                health += 1;
            } else if line.contains("event loop stalled") {
                stalls.push((t, node.clone()));
            }
        }
    }
    for d in &mut deaths {
        let Some(at) = d.at else { continue };
        d.stall_within_1s = stalls
            .iter()
            .any(|(s, n)| *n == d.node && s.is_some_and(|s| (s - at).abs() <= 1.0));
        d.load = loadavg
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .map(|&(_, l)| l);
        d.since_start_s = Some(((at - t0) * 10.0).round() / 10.0);
    }
    (deaths, stalls.len(), health)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_time(path: &Path) -> Result<f64> {
    let t = read(path)?;
    t.trim()
        .parse()
        .with_context(|| format!("{}: not a time", path.display()))
}

/// One profile's result from its run directory: before/ and after/ snapshots
/// (time, node_N.nodes.json, node_N.metrics, schedstat), loadavg, load0,
/// load1, ping.txt and node_N/meshd.log.
pub fn profile(run: &Path, spec: &ProfileSpec) -> Result<ProfileResult> {
    let (before, after) = (run.join("before"), run.join("after"));
    let (t0, t1) = (
        read_time(&before.join("time"))?,
        read_time(&after.join("time"))?,
    );
    let hours = (t1 - t0) / 3600.0;
    let (nb, na) = (nodes_counters(&before), nodes_counters(&after));
    let (fb, fa) = (failovers(&before), failovers(&after));
    let loadavg: Vec<(f64, f64)> = read(&run.join("loadavg"))?
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect();
    let logs: Vec<(String, String)> = (1..=5)
        .filter_map(|i| {
            let text = std::fs::read_to_string(run.join(format!("node_{i}/meshd.log"))).ok()?;
            Some((format!("node_{i}"), text))
        })
        .collect();
    let (deaths, stalls, health) = deaths_and_stalls(&logs, t0, t1, &loadavg);
    let words = |f: &str| -> Result<Vec<String>> {
        Ok(read(&run.join(f))?
            .split_whitespace()
            .map(String::from)
            .collect())
    };
    let per_h = |v: Option<i64>| {
        v.filter(|_| hours > 0.0)
            .map(|v| (v as f64 / hours * 10.0).round() / 10.0)
    };
    let both = "both ends of every path (sender OUTPUT, receiver INPUT; duplicates at the sender)";
    let mut r = ProfileResult {
        profile: spec.name.clone(),
        netem: (!spec.netem.is_empty()).then(|| spec.netem.clone()),
        faults_on: if spec.both_ends {
            both
        } else {
            "the sender only"
        }
        .into(),
        seconds: ((t1 - t0) * 10.0).round() / 10.0,
        key_expire_s: spec.key_expire_s,
        false_failovers: fa.0 - fb.0,
        false_failovers_client: fa.1 - fb.1,
        peer_deaths: nb.zip(na).map(|(b, a)| a.1 - b.1),
        peer_down_log_lines: deaths.len(),
        rekeys: nb
            .zip(na)
            .map(|(b, a)| ((a.0 - b.0) as f64 / 2.0).round() as i64),
        rekeys_expected: (PAIRS as f64 * (t1 - t0) / spec.key_expire_s as f64) as i64,
        sessions_alive_end: na.map(|a| a.2),
        sessions_total: SESSIONS,
        probe: ProbeLog::parse(&read(&run.join("ping.txt"))?).summary(spec.ttl_base),
        load_start: words("load0")?,
        load_end: words("load1")?,
        load_max: loadavg.iter().map(|&(_, l)| l).reduce(f64::max),
        runqueue_wait_ms: schedstat(&after)
            .zip(schedstat(&before))
            .map(|(a, b)| ((a - b) as f64 / 1e6).round() as i64),
        stalls,
        health_check_failures: health,
        deaths,
        false_failovers_per_hour: None,
        peer_deaths_per_hour: None,
    };
    r.false_failovers_per_hour = per_h(Some(r.false_failovers));
    r.peer_deaths_per_hour = per_h(r.peer_deaths);
    Ok(r)
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".into(), T::to_string)
}

/// A float as Python prints it (10.0, not 10), or "-".
fn optf(v: &Option<f64>) -> String {
    v.map_or("-".into(), |f| format!("{f:?}"))
}

/// The line bench-faults prints when a profile ends.
pub fn line(r: &ProfileResult) -> String {
    format!(
        "  {}: false failovers {}, peer deaths {}, rekeys {}/{}, sessions {}/{}, probe loss {} %, longest gap {} ms",
        r.profile,
        r.false_failovers,
        opt(&r.peer_deaths),
        opt(&r.rekeys),
        r.rekeys_expected,
        opt(&r.sessions_alive_end),
        r.sessions_total,
        optf(&r.probe.loss_pct),
        r.probe.longest_gap_ms
    )
}

/// The markdown table, then up to 20 deaths per profile.
pub fn table(rows: &[ProfileResult]) -> String {
    let mut out = String::from(
        "| profile | fault (netem terms) | min | false failovers (client; moves) | per h | peer deaths | per h \
         | rekeys / expected | sessions at end | probe loss | longest gap | load start → end (max) | rq wait | stalls | health fails |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let p = &r.probe;
        let first = |v: &[String]| v.first().cloned().unwrap_or_default();
        out += &format!(
            "| {} | {} | {:.1} | {} ({}; {}) | {} | {} | {} | {} / {} | {}/{} | {} % of {} | {} ms | {} → {} ({}) | {} ms | {} | {} |\n",
            r.profile,
            r.netem.as_deref().unwrap_or("-"),
            r.seconds / 60.0,
            r.false_failovers,
            r.false_failovers_client,
            p.holder_moves,
            optf(&r.false_failovers_per_hour),
            opt(&r.peer_deaths),
            optf(&r.peer_deaths_per_hour),
            opt(&r.rekeys),
            r.rekeys_expected,
            opt(&r.sessions_alive_end),
            r.sessions_total,
            optf(&p.loss_pct),
            p.sent,
            p.longest_gap_ms,
            first(&r.load_start),
            first(&r.load_end),
            optf(&r.load_max),
            opt(&r.runqueue_wait_ms),
            r.stalls,
            r.health_check_failures
        );
    }
    for r in rows {
        for d in r.deaths.iter().take(20) {
            let stall = if d.stall_within_1s {
                "a stall logged"
            } else {
                "no stall logged"
            };
            out += &format!(
                "  {}: +{} s {} declared {} dead (load {}, {stall} within 1 s)\n",
                r.profile,
                optf(&d.since_start_s),
                d.node,
                d.peer,
                optf(&d.load)
            );
        }
        if r.deaths.len() > 20 {
            out += &format!(
                "  {}: ... {} more PeerDown lines\n",
                r.profile,
                r.deaths.len() - 20
            );
        }
    }
    out
}

/// bench-faults' `--json` document.
#[derive(Debug, Serialize)]
pub struct Doc<'a> {
    pub date: String,
    pub meshd: &'a str,
    pub uptime: &'a str,
    pub cpus: usize,
    pub rows: &'a [ProfileResult],
}

/// The profiles that must show no false failover at all.
const STRICT: [&str; 6] = ["none", "loss1", "jitter", "rtt200", "reorder", "dup"];

/// Pass: every session alive at the end, and no false failover under the mild profiles.
pub fn passed(r: &ProfileResult) -> bool {
    r.sessions_alive_end == Some(r.sessions_total)
        && !(STRICT.contains(&r.profile.as_str()) && r.false_failovers > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn nodes_json(i: u32, handshakes: i64, deaths: i64, alive: bool) -> String {
        let peers: Vec<String> = (1..=5)
            .map(|j| {
                let me = i == j;
                format!(
                    r#"{{"name":"node_{j}","handshakes":{},"deaths":{},"reachable":{}}}"#,
                    if me { 99 } else { handshakes },
                    if me { 99 } else { deaths },
                    me || alive
                )
            })
            .collect();
        format!("[{}]", peers.join(","))
    }

    /// A run directory: 1 h between snapshots, 2 failovers on node_5, one death.
    fn run_dir(both_alive: bool) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for (snap, t, hs, deaths, fo) in [
            ("before", 1_764_790_000.0, 10, 0, 1),
            ("after", 1_764_793_600.0, 30, 1, 3),
        ] {
            write(r, &format!("{snap}/time"), &format!("{t}\n"));
            for i in 1..=5 {
                write(
                    r,
                    &format!("{snap}/node_{i}.nodes.json"),
                    &nodes_json(i, hs, deaths, both_alive || snap == "before"),
                );
                let f = if i == 5 { fo } else { 0 };
                write(
                    r,
                    &format!("{snap}/node_{i}.metrics"),
                    &format!("# HELP x\nmeshd_vip_failovers_total {f}\n"),
                );
            }
            write(
                r,
                &format!("{snap}/schedstat"),
                &format!("1 {}\n2 {}\n", hs * 1_000_000, hs * 1_000_000),
            );
        }
        write(r, "loadavg", "1764790000.0 1.5\n1764790100.0 3.25\n");
        write(r, "load0", "1.50 1.00 0.50\n");
        write(r, "load1", "2.00 1.50 1.00\n");
        let ping: String = (1..=10)
            .filter(|s| *s != 5)
            .map(|s| {
                format!(
                    "[{}.000000] 64 bytes from 10.1.1.10: icmp_seq={s} ttl={} time=0.3 ms\n",
                    1_764_790_000 + s,
                    if s < 5 { 42 } else { 43 }
                )
            })
            .collect();
        write(
            r,
            "ping.txt",
            &(ping + "12 packets transmitted, 9 received\n"),
        );
        write(
            r,
            "node_2/meshd.log",
            "2025-12-03T19:28:20.500000Z  WARN meshd: event loop stalled; extending liveness grace gap_ms=400\n\
             2025-12-03T19:28:21.000000Z  WARN meshd: peer is down (silent for DeadInterval) peer=node_3\n\
             2025-12-03T19:28:22.000000Z  WARN meshd: health check failed: exit 1 vip=10.1.1.10\n\
             2020-01-01T00:00:00Z  WARN meshd: peer is down (silent for DeadInterval) peer=node_4\n",
        );
        d
    }

    fn spec(name: &str) -> ProfileSpec {
        ProfileSpec {
            name: name.into(),
            netem: "loss 1%".into(),
            key_expire_s: 10,
            ttl_base: 40,
            both_ends: true,
        }
    }

    #[test]
    fn a_profile_from_its_run_directory() {
        let d = run_dir(true);
        let r = profile(d.path(), &spec("loss1")).unwrap();
        assert_eq!(r.seconds, 3600.0);
        assert_eq!((r.false_failovers, r.false_failovers_client), (2, 2));
        assert_eq!(r.false_failovers_per_hour, Some(2.0));
        // 4 peers x 5 nodes, 20 more handshakes each: 400 / 2.
        assert_eq!(r.rekeys, Some(200));
        assert_eq!(r.rekeys_expected, 3600);
        assert_eq!(r.peer_deaths, Some(20));
        assert_eq!(r.sessions_alive_end, Some(20));
        assert_eq!(r.runqueue_wait_ms, Some(40));
        assert_eq!(r.load_max, Some(3.25));
        assert_eq!(
            (r.stalls, r.health_check_failures, r.peer_down_log_lines),
            (1, 1, 1)
        );
        let death = &r.deaths[0];
        assert_eq!(
            (death.node.as_str(), death.peer.as_str()),
            ("node_2", "node_3")
        );
        assert!(death.stall_within_1s);
        assert_eq!(death.load, Some(3.25));
        assert_eq!(r.probe.sent, 10);
        assert_eq!(r.probe.holder_moves, 1);
        assert!(!passed(&r), "false failovers under loss1");
        assert!(line(&r).starts_with("  loss1: false failovers 2, peer deaths 20, rekeys 200/3600, sessions 20/20, probe loss 10.0 %"));
        let t = table(std::slice::from_ref(&r));
        assert!(
            t.contains("| loss1 | loss 1% | 60.0 | 2 (2; 1) | 2.0 | 20 |"),
            "{t}"
        );
        assert!(t.contains("  loss1: +101.0 s node_2 declared node_3 dead (load 3.25, a stall logged within 1 s)\n"), "{t}");
        let back: ProfileResult =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn lost_sessions_fail_every_profile() {
        let d = run_dir(false);
        let r = profile(d.path(), &spec("all")).unwrap();
        assert_eq!(r.sessions_alive_end, Some(0));
        assert!(!passed(&r));
        let mut ok = r.clone();
        ok.sessions_alive_end = Some(20);
        assert!(passed(&ok), "loss5/all may fail over");
    }

    #[test]
    fn a_missing_snapshot_is_an_error_with_its_path() {
        let d = tempfile::tempdir().unwrap();
        let e = profile(d.path(), &spec("none")).unwrap_err();
        assert!(format!("{e:#}").contains("before/time"), "{e:#}");
    }
}
