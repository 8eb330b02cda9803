//! The lab's report after the trials: the first line, the outage table(s),
//! the footnotes, the throughput table passed through, the final verdict
//! line, and the `--json` document. `ok` is false when meshd's failover failed.

use serde::Serialize;

use crate::host::Utc;
use crate::table::{table, Table, TableSpec, CSV_HEADER};
use crate::trial::{Event, Trial};

/// Everything the report says that the trial records do not.
#[derive(Debug, Clone)]
pub struct Run {
    pub spec: TableSpec,
    pub runs: u32,
    pub date: Utc,
    pub cpus: usize,
    pub kernel: String,
    pub rev: String,
    pub load_average: f64,
    pub seconds: u64,
    pub full_mesh_ms: Option<u64>,
    pub vip_ready_ms: Option<u64>,
    pub interval: String,
    pub vip: String,
    pub saturate: bool,
    pub restore: bool,
    pub setup_failures: u32,
    pub meshd_setup_failures: u32,
    /// tincd's version, what the watchers announce the VIP with, and why
    /// tinc was skipped (if it was).
    pub tinc_version: String,
    pub garp_note: String,
    pub tinc_note: Option<String>,
    /// keepalived's version (its rows: `keepalived-ADVERT`).
    pub keepalived_version: String,
    /// Where the CSV was written (the report names it).
    pub csv: Option<String>,
    /// scripts/bench-throughput's output and exit status, when it ran.
    pub throughput: Option<(String, i32)>,
    pub notes: Vec<String>,
}

/// The report: the human text, the CSV lines, the JSON document, the verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub text: String,
    pub csv: Vec<String>,
    pub json: String,
    pub ok: bool,
}

#[derive(Serialize)]
struct Saturate {
    iperf3: &'static str,
    gbit_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gbit_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gbit_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trials: Option<usize>,
}

#[derive(Serialize)]
struct LabJson<'a> {
    date: String,
    cpus: usize,
    kernel: &'a str,
    meshd: &'a str,
    runs: u32,
    hello_ms: u64,
    dead_ms: u64,
    bound_ms: u64,
    load_average: f64,
    full_mesh_ms: Option<u64>,
    vip_ready_ms: Option<u64>,
    seconds: u64,
    saturate: Option<Saturate>,
}

#[derive(Serialize)]
struct ThroughputJson<'a> {
    exit: i32,
    lines: Vec<&'a str>,
}

/// Mean, min and max of `v` (None when empty).
fn mean_min_max(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, min, max))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn report(run: &Run, trials: &[Trial]) -> Report {
    let spec = &run.spec;
    let faults: Vec<&Trial> = trials.iter().filter(|t| t.event == Event::Fault).collect();
    let mut text = format!(
        "lab: {}, {} CPUs (load average {:.2} at the start), kernel {}, meshd {}, trials per row: {}, {} s; \
         full mesh from init/invite/join {} ms after the last start, VIP ready after {} ms\n",
        run.date.minutes(),
        run.cpus,
        run.load_average,
        run.kernel,
        run.rev,
        run.runs,
        run.seconds,
        run.full_mesh_ms.map_or(String::new(), |v| v.to_string()),
        run.vip_ready_ms.map_or(String::new(), |v| v.to_string()),
    );
    // The ping's records: each trial once (its UDP record has no iperf3 figure).
    let pings: Vec<&Trial> = faults.iter().copied().filter(|t| t.is_ping()).collect();
    let rates: Vec<f64> = pings.iter().filter_map(|t| t.iperf3_gbit).collect();
    let sat = mean_min_max(&rates);
    if run.saturate {
        text +=
            "under load: iperf3 TCP node_5 -> node_1 (10.1.1.1), one stream through every trial";
        match sat {
            Some((mean, min, max)) => {
                text += &format!(
                    " (before the probe until after it), {mean:.2} Gbit/s measured (mean of the {} trials' averages, min-max {min:.2}-{max:.2})\n",
                    rates.len()
                )
            }
            None => text += ": no throughput measured\n",
        }
        let failed = pings.len() - rates.len();
        if failed != 0 {
            text += &format!(
                "  ({failed} trial(s) had no iperf3 result: their stream may have died before the fault)\n"
            );
        }
    }
    let fault_table = table(spec, Event::Fault, trials);
    text += &fault_table.text;
    let mut tables: Vec<&Table> = vec![&fault_table];
    let return_table = table(spec, Event::Return, trials);
    if run.restore {
        text += "\nWhen the faulted holder returns (--restore; a new probe, the holder restored 1 s into it; \"flow moved back\":\n\
                 trials whose probe flow ended on the returned holder instead of staying where it was):\n";
        text += &return_table.text;
        tables.push(&return_table);
    }
    let mut failures = fault_table.failures.clone();
    if run.meshd_setup_failures != 0 {
        failures.push(format!(
            "meshd: {} trial(s) failed to set up (the VIP never answered)",
            run.meshd_setup_failures
        ));
    }
    let spacings: Vec<f64> = pings.iter().map(|t| t.spacing_ms).collect();
    let spacing = mean_min_max(&spacings).map_or("-".into(), |(m, lo, hi)| {
        format!("{m:.1} ms ({lo:.1}-{hi:.1})")
    });
    text += &format!(
        "\nProbe: node_5 runs ping -D -i {} {} (mean spacing of the answers: {spacing}); outage = the longest time\n\
         without answers around the fault, minus one spacing. meshd: HelloInterval {}ms, DeadInterval {}ms,\n\
         3 equal-weight holders, {} s probed after the fault; verdict: kill/cut/freeze within {} ms, stop/health lossless.\n",
        run.interval, run.vip, spec.hello_ms, spec.dead_ms, spec.after_s, spec.bound_ms
    );
    if spec.daemons.iter().any(|d| d == "tinc") {
        text += &format!(
            "tinc 1.0 ({}, Mode = switch, default timers): node_2 holds the VIP; a keepalived-like watcher on node_3 adds it \
             after 1 s without answers from node_2 and {} (node_4 backs up node_3); the outage includes that 1 s; trials capped at {} s.\n",
            run.tinc_version, run.garp_note, spec.tinc_timeout_s
        );
    }
    if let Some(n) = &run.tinc_note {
        text += &format!("{n}\n");
    }
    text += &footnotes(run, trials);
    if tables.iter().any(|t| t.any_not_recovered) {
        text += "\">S s\": the probes were still unanswered when the trial ended, S s after the fault.\n";
    }
    if tables.iter().any(|t| t.any_duplicates) {
        text += "Some trials had duplicate answers (see the CSV's duplicates column).\n";
    }
    if run.setup_failures != 0 {
        text += &format!(
            "{} trials failed to set up and are not counted (rerun with --keep for their logs).\n",
            run.setup_failures
        );
    }
    if let Some(csv) = &run.csv {
        text += &format!("CSV: {csv}\n");
    }
    if let Some((out, rc)) = &run.throughput {
        let out = out.trim_end_matches('\n');
        if out.is_empty() {
            text +=
                &format!("\nthroughput: scripts/bench-throughput printed nothing (exit {rc})\n");
        } else {
            text += &format!("\n{out}\n");
        }
    }
    for n in &run.notes {
        text += &format!("{n}\n");
    }
    let ok = failures.is_empty();
    text += "\n";
    if ok {
        text += &format!(
            "meshd: failover OK (every trial recovered; kill/cut/freeze within {} ms; stop/health lost nothing)\n",
            spec.bound_ms
        );
    } else {
        text += "meshd: FAILOVER FAILED:\n";
        for f in &failures {
            text += &format!("  {f}\n");
        }
    }

    let mut csv = vec![CSV_HEADER.to_string()];
    let mut rows = Vec::new();
    for t in &tables {
        csv.extend(t.csv.iter().cloned());
        rows.extend(t.json.iter());
    }
    let lab = LabJson {
        date: run.date.rfc3339(),
        cpus: run.cpus,
        kernel: &run.kernel,
        meshd: &run.rev,
        runs: run.runs,
        hello_ms: spec.hello_ms,
        dead_ms: spec.dead_ms,
        bound_ms: spec.bound_ms,
        load_average: run.load_average,
        full_mesh_ms: run.full_mesh_ms,
        vip_ready_ms: run.vip_ready_ms,
        seconds: run.seconds,
        saturate: run.saturate.then(|| Saturate {
            iperf3: "node_5 -> node_1",
            gbit_mean: sat.map(|s| round2(s.0)),
            gbit_min: sat.map(|s| round2(s.1)),
            gbit_max: sat.map(|s| round2(s.2)),
            trials: sat.map(|_| rates.len()),
        }),
    };
    let js = |v: &dyn erased::Json| v.json();
    let list = |items: Vec<String>| items.join(",\n  ");
    let throughput = run.throughput.as_ref().map(|(out, rc)| ThroughputJson {
        exit: *rc,
        lines: out.lines().filter(|l| !l.is_empty()).collect(),
    });
    let json = format!(
        "{{\"lab\":{},\n \"ok\":{ok},\n \"failures\":{},\n \"rows\":[\n  {}],\n \"trials\":[\n  {}],\n \"throughput\":{}}}\n",
        js(&lab),
        js(&failures),
        list(rows.iter().map(|r| js(*r)).collect()),
        list(faults.iter().map(|t| js(*t)).collect()),
        js(&throughput),
    );
    Report {
        text,
        csv,
        json,
        ok,
    }
}

/// The footnotes of the UDP flow, the container rows and the keepalived rows
/// (each only when the table has them).
fn footnotes(run: &Run, trials: &[Trial]) -> String {
    let mut text = String::new();
    let daemons = &run.spec.daemons;
    if trials.iter().any(|t| !t.is_ping()) {
        text += &format!(
            "udp: the request/response flow: node_5 sends a UDP request to {} every {} s from one source port (one flow; the\n\
             port is chosen so that the holder serving the ping serves the flow too) and each holder's responder answers from the VIP\n\
             (meshd-lab udp-probe / udp-echo); outage and lost as for ping.\n",
            if run.vip.contains(':') {
                format!("[{}]:7007", run.vip)
            } else {
                format!("{}:7007", run.vip)
            },
            run.interval
        );
    }
    if daemons.iter().any(|d| d == "meshd-ctr") {
        text += "meshd-ctr: the VIP is not on the holders: each holds it in a container namespace on a bridge with its TAP\n\
                 (HealthCheck = VIP presence interval=100ms rise=2 fall=2, the owner learned from its ARP); \"container deleted\":\n\
                 its process killed and ip netns del; \"container drops VIP\": ip addr del in the container.\n";
    }
    let adverts: Vec<&str> = daemons
        .iter()
        .filter_map(|d| crate::keepalived::advert_of(d))
        .collect();
    if !adverts.is_empty() {
        text += &format!(
            "keepalived-S: Debian's keepalived {} (keepalived -n -P in each holder's namespace), VRRPv3 multicast on the underlay\n\
             eth0, advert_int S s ({}), priorities 200/150/100 on node_2/3/4, the VIP /32 on eth0 and gratuitous ARP on\n\
             takeover; node_5 reaches the VIP on the underlay (no mesh daemon runs). SIGKILL / SIGSTOP: of the VRRP process and\n\
             its parent, which hits only the control plane: the VIP stays on the old master's eth0, whose kernel answers until\n\
             the new master's gratuitous ARP moves the client (0 lost is expected; link cut is the row of a holder's death).\n\
             Graceful stop: SIGTERM (the VIP removed, a priority 0 advert). Trials capped at {} s.\n",
            run.keepalived_version,
            adverts.join(", "),
            run.spec.tinc_timeout_s
        );
    }
    text
}

/// serde_json::to_string through a trait object (the values are plain data:
/// it cannot fail).
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("plain data serializes")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Outcome;

    fn run() -> Run {
        Run {
            spec: TableSpec {
                daemons: vec!["meshd".into()],
                kinds: vec!["kill".into()],
                hello_ms: 100,
                dead_ms: 300,
                bound_ms: 1000,
                after_s: 3,
                tinc_timeout_s: 60,
            },
            runs: 1,
            date: Utc::from_epoch(1_763_797_863),
            cpus: 2,
            kernel: "6.18.44".into(),
            rev: "a85f5b9".into(),
            load_average: 2.01,
            seconds: 36,
            full_mesh_ms: Some(38),
            vip_ready_ms: Some(1022),
            interval: "0.01".into(),
            vip: "10.1.1.10".into(),
            saturate: false,
            restore: false,
            setup_failures: 0,
            meshd_setup_failures: 0,
            tinc_version: String::new(),
            garp_note: String::new(),
            tinc_note: None,
            keepalived_version: String::new(),
            csv: None,
            throughput: None,
            notes: vec![],
        }
    }

    fn kill(out: u64, rec: bool) -> Trial {
        let o = Outcome {
            outage_ms: out,
            lost: 18,
            recovered: rec,
            duplicates: 0,
            spacing_ms: 16.1,
        };
        Trial::new(
            Event::Fault,
            "meshd",
            "kill",
            1,
            None,
            "node_4",
            "node_2",
            &o,
        )
    }

    #[test]
    fn a_passing_run() {
        let r = report(&run(), &[kill(292, true)]);
        assert!(r.ok);
        assert!(r.text.starts_with(
            "lab: 2025-11-22 07:51 UTC, 2 CPUs (load average 2.01 at the start), kernel 6.18.44, meshd a85f5b9, trials per row: 1, 36 s; \
             full mesh from init/invite/join 38 ms after the last start, VIP ready after 1022 ms\n"
        ));
        assert!(r
            .text
            .contains("(mean spacing of the answers: 16.1 ms (16.1-16.1))"));
        assert!(r.text.ends_with(
            "\nmeshd: failover OK (every trial recovered; kill/cut/freeze within 1000 ms; stop/health lost nothing)\n"
        ));
        let v: serde_json::Value = serde_json::from_str(&r.json).expect("the JSON parses");
        assert_eq!(v["ok"], true);
        assert_eq!(v["lab"]["date"], "2025-11-22T07:51:03Z");
        assert_eq!(v["lab"]["saturate"], serde_json::Value::Null);
        assert_eq!(v["rows"][0]["outage_ms"]["median"], 292);
        assert_eq!(v["trials"][0]["after"], "node_2");
        assert_eq!(v["throughput"], serde_json::Value::Null);
        assert_eq!(r.csv.len(), 2);
    }

    #[test]
    fn a_failed_run_says_why_and_passes_throughput_through() {
        let mut rn = run();
        rn.meshd_setup_failures = 1;
        rn.setup_failures = 1;
        rn.throughput = Some(("bench-throughput: x\npath  a\n\n".into(), 0));
        let r = report(&rn, &[kill(0, false)]);
        assert!(!r.ok);
        assert!(r.text.contains(
            "meshd: FAILOVER FAILED:\n  meshd kill: 1 trial(s) never answered again\n  meshd: 1 trial(s) failed to set up (the VIP never answered)\n"
        ));
        assert!(r
            .text
            .contains("\">S s\": the probes were still unanswered"));
        assert!(r.text.contains("1 trials failed to set up"));
        assert!(r
            .text
            .contains("\nbench-throughput: x\npath  a\n\nmeshd: FAILOVER FAILED"));
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["failures"].as_array().unwrap().len(), 2);
        assert_eq!(v["trials"][0]["outage_ms"], serde_json::Value::Null);
        assert_eq!(v["throughput"]["lines"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn udp_container_and_keepalived_rows_have_footnotes() {
        let mut rn = run();
        rn.spec.daemons = vec!["meshd".into(), "meshd-ctr".into(), "keepalived-0.1".into()];
        rn.spec.kinds = vec!["kill".into(), "ctr-del".into()];
        rn.keepalived_version = "v2.2.7".into();
        let mut ctr = kill(320, true);
        ctr.daemon = "meshd-ctr".into();
        ctr.fault = "ctr-del".into();
        let mut ka = kill(350, true);
        ka.daemon = "keepalived-0.1".into();
        let mut ctr_kill = kill(300, true);
        ctr_kill.daemon = "meshd-ctr".into();
        let trials = [
            kill(80, true),
            kill(85, true).with_probe("udp"),
            ctr,
            ctr_kill,
            ka,
        ];
        let r = report(&rn, &trials);
        assert!(r.ok, "{}", r.text);
        assert!(
            r.text.contains("udp: the request/response flow"),
            "{}",
            r.text
        );
        assert!(r.text.contains("meshd-ctr: the VIP is not on the holders"));
        assert!(r.text.contains("keepalived v2.2.7 (keepalived -n -P"));
        assert!(r.text.contains("advert_int S s (0.1)"));
        assert!(
            r.text
                .contains("daemon         fault              probe runs  outage ms: min"),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("meshd          SIGKILL            udp      1              85"),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("meshd-ctr      container deleted  ping     1             320"),
            "{}",
            r.text
        );
        assert!(r.text.contains("keepalived-0.1 SIGKILL            ping     1             350     350    350    350   18            -\n"), "{}", r.text);
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["rows"][1]["probe"], "udp");
        assert_eq!(v["rows"][0].get("probe"), None);
        // A meshd-ctr row is judged like meshd's; the UDP row too.
        let mut bad = kill(0, false).with_probe("udp");
        bad.daemon = "meshd-ctr".into();
        let r = report(&rn, &[bad]);
        assert!(
            r.text
                .contains("meshd-ctr kill (udp): 1 trial(s) never answered again"),
            "{}",
            r.text
        );
    }

    #[test]
    fn saturate_reports_the_streams() {
        let mut rn = run();
        rn.saturate = true;
        let mut a = kill(290, true);
        a.iperf3_gbit = Some(1.2);
        let mut b = kill(300, true);
        b.iperf3_gbit = Some(1.3);
        // A UDP record has no iperf3 figure and is not a trial of its own.
        let mut u = b.clone().with_probe("udp");
        u.iperf3_gbit = None;
        let r = report(&rn, &[a, b, kill(310, true), u]);
        assert!(r
            .text
            .contains("1.25 Gbit/s measured (mean of the 2 trials' averages, min-max 1.20-1.30)"));
        assert!(r.text.contains("  (1 trial(s) had no iperf3 result"));
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["lab"]["saturate"]["gbit_mean"], 1.25);
        assert_eq!(v["lab"]["saturate"]["trials"], 2);
    }
}
