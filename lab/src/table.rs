//! The outage table: one row per daemon and fault kind (the fault trials, or
//! the faulted holders' returns), rendered as text, as CSV lines and as the
//! rows of the `--json` document, with meshd's verdict per row.

use serde::Serialize;

use crate::summary::{Ms, Summary};
use crate::trial::{Event, Trial};
use crate::verdict::{verdict, Verdict};

/// The table's name of a fault kind.
pub fn kind_name(kind: &str) -> &str {
    match kind {
        "stop" => "graceful stop",
        "kill" => "SIGKILL",
        "cut" => "link cut",
        "freeze" => "SIGSTOP",
        "health" => "health check fails",
        "ctr-del" => "container deleted",
        "ctr-addr" => "container drops VIP",
        other => other,
    }
}

/// What the table needs to know about the run.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub daemons: Vec<String>,
    pub kinds: Vec<String>,
    pub hello_ms: u64,
    pub dead_ms: u64,
    pub bound_ms: u64,
    /// Seconds probed after a fault: meshd, tinc (what ">S s" says).
    pub after_s: u64,
    pub tinc_timeout_s: u64,
}

/// Whether `daemon`'s trials have fault `kind`: the health check is meshd's
/// (its exec check; the container rows have presence instead), the
/// container faults are the container rows' (`meshd-ctr`); tinc and
/// keepalived have the rest.
pub fn applies(daemon: &str, kind: &str) -> bool {
    match kind {
        "health" => daemon == "meshd",
        "ctr-del" | "ctr-addr" => daemon == "meshd-ctr",
        _ => true,
    }
}

/// meshd's rows (meshd, meshd-ctr): those with a verdict.
pub fn is_meshd(daemon: &str) -> bool {
    daemon == "meshd" || daemon.starts_with("meshd-")
}

impl TableSpec {
    /// The rows in order: each daemon's kinds that apply to it.
    pub fn rows(&self) -> Vec<(&str, &str)> {
        let mut rows = Vec::new();
        for d in &self.daemons {
            for k in &self.kinds {
                if applies(d, k) {
                    rows.push((d.as_str(), k.as_str()));
                }
            }
        }
        rows
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct OutageJson {
    pub min: Option<u64>,
    pub median: Option<u64>,
    pub p95: Option<u64>,
    pub max: Option<u64>,
}

/// A row of the `--json` document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowJson {
    pub event: &'static str,
    pub daemon: String,
    pub fault: String,
    /// "udp" for the request/response flow's row (absent: ping).
    #[serde(skip_serializing_if = "crate::trial::is_ping")]
    pub probe: String,
    pub runs: usize,
    pub not_recovered: usize,
    pub outage_ms: OutageJson,
    pub lost_median: Option<u64>,
    pub duplicates: u64,
    pub verdict: String,
}

/// One table, rendered.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub text: String,
    pub csv: Vec<String>,
    pub json: Vec<RowJson>,
    /// meshd rows whose verdict failed: "meshd KIND: why".
    pub failures: Vec<String>,
    pub any_not_recovered: bool,
    pub any_duplicates: bool,
}

pub const CSV_HEADER: &str = "event,daemon,fault,probe,hello_ms,dead_ms,runs,not_recovered,outage_min_ms,outage_median_ms,outage_p95_ms,outage_max_ms,lost_median,duplicates,outages_ms,lost,moved_back";

/// Column widths of the first two columns, and whether there is a probe column.
#[derive(Debug, Clone, Copy)]
struct Layout {
    daemon: usize,
    fault: usize,
    probe: bool,
}

fn line(l: Layout, probe: &str, cols: [&str; 9]) -> String {
    let probe = if l.probe {
        format!("{probe:<5} ")
    } else {
        String::new()
    };
    format!(
        "{:<dw$} {:<fw$} {probe}{:>4} {:>15} {:>7} {:>6} {:>6}   {:<13} {}\n",
        cols[0],
        cols[1],
        cols[2],
        cols[3],
        cols[4],
        cols[5],
        cols[6],
        cols[7],
        cols[8],
        dw = l.daemon,
        fw = l.fault
    )
}

/// An outage cell: `-` without trials, `>S s` for one that never ended.
fn cell(v: Option<Ms>, cap_s: u64) -> String {
    match v {
        None => "-".into(),
        Some(Ms::Infinite) => format!(">{cap_s} s"),
        Some(Ms::Finite(ms)) => ms.to_string(),
    }
}

fn csv_cell(v: Option<Ms>) -> String {
    v.map_or("-".into(), |m| m.to_string())
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
}

/// The table of `event` over `trials`. Return tables list only rows with
/// trials. When any trial of the table has the UDP flow's probe, a probe
/// column appears and each row with UDP trials gets a second line for them.
pub fn table(spec: &TableSpec, event: Event, trials: &[Trial]) -> Table {
    let mut t = Table::default();
    let last = if event == Event::Fault {
        "verdict"
    } else {
        "flow moved back"
    };
    let rows = spec.rows();
    let layout = Layout {
        daemon: rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6),
        fault: rows
            .iter()
            .map(|r| kind_name(r.1).len())
            .max()
            .unwrap_or(0)
            .max(18),
        probe: trials.iter().any(|x| x.event == event && !x.is_ping()),
    };
    t.text += &line(
        layout,
        "probe",
        [
            "daemon",
            "fault",
            "runs",
            "outage ms: min",
            "median",
            "p95",
            "max",
            "lost (median)",
            last,
        ],
    );
    for (daemon, kind) in rows {
        for probe in ["ping", "udp"] {
            let mine: Vec<&Trial> = trials
                .iter()
                .filter(|x| {
                    x.event == event && x.daemon == daemon && x.fault == kind && x.probe == probe
                })
                .collect();
            if (event == Event::Return || probe == "udp") && mine.is_empty() {
                continue;
            }
            row(&mut t, spec, layout, event, daemon, kind, probe, &mine);
        }
    }
    t
}

#[allow(clippy::too_many_arguments)]
fn row(
    t: &mut Table,
    spec: &TableSpec,
    layout: Layout,
    event: Event,
    daemon: &str,
    kind: &str,
    probe: &str,
    mine: &[&Trial],
) {
    let s = Summary::of(mine);
    let cap = if is_meshd(daemon) {
        spec.after_s
    } else {
        spec.tinc_timeout_s
    };
    t.any_not_recovered |= s.not_recovered != 0;
    t.any_duplicates |= s.duplicates != 0;
    let v = match event {
        Event::Fault if is_meshd(daemon) => {
            let v = verdict(kind, &s, spec.bound_ms);
            if let Verdict::Fail(why) = &v {
                let p = if probe == "ping" { "" } else { " (udp)" };
                t.failures.push(format!("{daemon} {kind}{p}: {why}"));
            }
            v.to_string()
        }
        Event::Fault => "-".into(),
        Event::Return => format!("{} of {}", s.moved_back, s.runs),
    };
    let o = s.outage;
    let lm = s.lost_median.map_or("-".into(), |l| l.to_string());
    t.text += &line(
        layout,
        probe,
        [
            daemon,
            kind_name(kind),
            &s.runs.to_string(),
            &cell(o.map(|o| o.min), cap),
            &cell(o.map(|o| o.median), cap),
            &cell(o.map(|o| o.p95), cap),
            &cell(o.map(|o| o.max), cap),
            &lm,
            &v,
        ],
    );
    let (hm, dm) = if is_meshd(daemon) {
        (spec.hello_ms.to_string(), spec.dead_ms.to_string())
    } else {
        (String::new(), String::new())
    };
    let moved = if event == Event::Return {
        s.moved_back.to_string()
    } else {
        String::new()
    };
    t.csv.push(
        [
            event.name().to_string(),
            daemon.into(),
            kind.into(),
            probe.into(),
            hm,
            dm,
            s.runs.to_string(),
            s.not_recovered.to_string(),
            csv_cell(o.map(|o| o.min)),
            csv_cell(o.map(|o| o.median)),
            csv_cell(o.map(|o| o.p95)),
            csv_cell(o.map(|o| o.max)),
            lm,
            s.duplicates.to_string(),
            join(&s.outages),
            join(&s.losts),
            moved,
        ]
        .join(","),
    );
    let fin = |f: fn(&crate::summary::Outages) -> Ms| o.as_ref().and_then(|o| f(o).finite());
    t.json.push(RowJson {
        event: event.name(),
        daemon: daemon.into(),
        fault: kind.into(),
        probe: probe.into(),
        runs: s.runs,
        not_recovered: s.not_recovered,
        outage_ms: OutageJson {
            min: fin(|o| o.min),
            median: fin(|o| o.median),
            p95: fin(|o| o.p95),
            max: fin(|o| o.max),
        },
        lost_median: s.lost_median,
        duplicates: s.duplicates,
        verdict: v,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Outcome;

    fn spec(daemons: &[&str]) -> TableSpec {
        TableSpec {
            daemons: daemons.iter().map(|s| s.to_string()).collect(),
            kinds: ["stop", "kill", "health"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            hello_ms: 100,
            dead_ms: 300,
            bound_ms: 1000,
            after_s: 3,
            tinc_timeout_s: 60,
        }
    }

    fn trial(
        ev: Event,
        daemon: &str,
        kind: &str,
        out: u64,
        lost: u64,
        rec: bool,
        after: &str,
    ) -> Trial {
        let o = Outcome {
            outage_ms: out,
            lost,
            recovered: rec,
            duplicates: 0,
            spacing_ms: 16.0,
        };
        Trial::new(ev, daemon, kind, 1, None, "node_4", after, &o)
    }

    #[test]
    fn the_table_looks_like_the_readmes() {
        let trials = vec![
            trial(Event::Fault, "meshd", "stop", 0, 0, true, "node_2"),
            trial(Event::Fault, "meshd", "kill", 292, 18, true, "node_2"),
            trial(Event::Fault, "meshd", "health", 0, 0, true, "node_2"),
            trial(Event::Fault, "tinc", "stop", 993, 61, true, "node_3"),
        ];
        let t = table(&spec(&["meshd", "tinc"]), Event::Fault, &trials);
        let want = "\
daemon fault              runs  outage ms: min  median    p95    max   lost (median) verdict
meshd  graceful stop         1               0       0      0      0   0             ok
meshd  SIGKILL               1             292     292    292    292   18            ok
meshd  health check fails    1               0       0      0      0   0             ok
tinc   graceful stop         1             993     993    993    993   61            -
tinc   SIGKILL               0               -       -      -      -   -             -
";
        assert_eq!(t.text, want);
        assert!(t.failures.is_empty());
        assert_eq!(
            t.csv[1],
            "fault,meshd,kill,ping,100,300,1,0,292,292,292,292,18,0,292,18,"
        );
        assert_eq!(t.csv[4], "fault,tinc,kill,ping,,,0,0,-,-,-,-,-,0,,,");
        assert_eq!(
            serde_json::to_string(&t.json[1]).unwrap(),
            r#"{"event":"fault","daemon":"meshd","fault":"kill","runs":1,"not_recovered":0,"outage_ms":{"min":292,"median":292,"p95":292,"max":292},"lost_median":18,"duplicates":0,"verdict":"ok"}"#
        );
    }

    #[test]
    fn failed_rows_are_named_and_marked() {
        let trials = vec![
            trial(Event::Fault, "meshd", "stop", 40, 3, true, "node_2"),
            trial(Event::Fault, "meshd", "kill", 0, 500, false, "nobody"),
        ];
        let t = table(&spec(&["meshd"]), Event::Fault, &trials);
        assert_eq!(
            t.failures,
            vec![
                "meshd stop: lost probes (announced fault)",
                "meshd kill: 1 trial(s) never answered again",
                "meshd health: no trial ran",
            ]
        );
        assert!(t.text.contains("meshd  SIGKILL               1            >3 s    >3 s   >3 s   >3 s   500           FAIL: 1 trial(s) never answered again\n"), "{}", t.text);
        assert!(t.any_not_recovered);
        assert_eq!(t.json[1].outage_ms.max, None);
        assert_eq!(t.csv[1].split(',').nth(14), Some("inf"));
    }

    #[test]
    fn each_daemon_gets_the_kinds_that_apply() {
        let mut sp = spec(&["meshd", "meshd-ctr", "tinc", "keepalived-0.1"]);
        sp.kinds = ["kill", "health", "ctr-del"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            sp.rows(),
            vec![
                ("meshd", "kill"),
                ("meshd", "health"),
                ("meshd-ctr", "kill"),
                ("meshd-ctr", "ctr-del"),
                ("tinc", "kill"),
                ("keepalived-0.1", "kill"),
            ]
        );
        assert!(is_meshd("meshd-ctr") && !is_meshd("keepalived-0.1"));
        // A UDP line under its ping line, a probe column, wider columns.
        let trials = vec![
            trial(
                Event::Fault,
                "meshd-ctr",
                "ctr-del",
                220,
                14,
                true,
                "node_2",
            ),
            trial(
                Event::Fault,
                "meshd-ctr",
                "ctr-del",
                250,
                25,
                true,
                "node_2",
            )
            .with_probe("udp"),
        ];
        let mut sp = spec(&["meshd-ctr"]);
        sp.kinds = vec!["ctr-del".into()];
        let t = table(&sp, Event::Fault, &trials);
        assert_eq!(
            t.text,
            "\
daemon    fault              probe runs  outage ms: min  median    p95    max   lost (median) verdict
meshd-ctr container deleted  ping     1             220     220    220    220   14            ok
meshd-ctr container deleted  udp      1             250     250    250    250   25            ok
"
        );
        assert_eq!(t.csv[1].split(',').nth(3), Some("udp"));
        assert_eq!(t.json[1].probe, "udp");
    }

    #[test]
    fn the_return_table_counts_flows_moved_back() {
        let trials = vec![
            trial(Event::Return, "meshd", "kill", 0, 0, true, "node_4"),
            trial(Event::Return, "meshd", "kill", 0, 0, true, "node_2"),
        ];
        let t = table(&spec(&["meshd"]), Event::Return, &trials);
        assert_eq!(
            t.text.lines().count(),
            2,
            "only rows with trials: {}",
            t.text
        );
        assert!(t.text.ends_with("1 of 2\n"));
        assert!(t.text.starts_with("daemon fault              runs  outage ms: min  median    p95    max   lost (median) flow moved back\n"));
        assert_eq!(t.csv[0].rsplit(',').next(), Some("1"));
    }
}
