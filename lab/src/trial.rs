//! One trial's record: what was faulted, who answered after, and the probe's
//! outcome; one JSON line per trial in the run's record file, and the line
//! the lab prints when the trial ends.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

use crate::probe::Outcome;

/// A trial of the fault itself, or of the faulted holder's return (`--restore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    #[default]
    Fault,
    Return,
}

impl Event {
    pub fn is_fault(&self) -> bool {
        *self == Event::Fault
    }
    pub fn name(self) -> &'static str {
        match self {
            Event::Fault => "fault",
            Event::Return => "return",
        }
    }
}

/// The probe a record measured: "ping" (ICMP echo, the default, not
/// written) or "udp" (the request/response flow, crate::udp).
pub fn is_ping(probe: &String) -> bool {
    probe == "ping"
}

fn ping() -> String {
    "ping".into()
}

/// The record; its JSON (without `event` and `moved_back`) is one element of
/// the lab's `--json` "trials".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    #[serde(default, skip_serializing_if = "Event::is_fault")]
    pub event: Event,
    pub daemon: String,
    pub fault: String,
    #[serde(default = "ping", skip_serializing_if = "is_ping")]
    pub probe: String,
    pub trial: u32,
    pub iperf3_gbit: Option<f64>,
    /// The holder faulted, `node_N`.
    pub faulted: String,
    /// The holder answering at the end, `node_N` or `nobody`.
    pub after: String,
    /// None when the probe did not recover from the fault (a return keeps it).
    pub outage_ms: Option<u64>,
    pub lost: u64,
    pub recovered: bool,
    pub duplicates: u64,
    pub spacing_ms: f64,
}

impl Trial {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        event: Event,
        daemon: &str,
        fault: &str,
        trial: u32,
        iperf3_gbit: Option<f64>,
        faulted: &str,
        after: &str,
        o: &Outcome,
    ) -> Trial {
        Trial {
            event,
            daemon: daemon.to_string(),
            fault: fault.to_string(),
            probe: ping(),
            trial,
            iperf3_gbit,
            faulted: faulted.to_string(),
            after: after.to_string(),
            outage_ms: (o.recovered || event == Event::Return).then_some(o.outage_ms),
            lost: o.lost,
            recovered: o.recovered,
            duplicates: o.duplicates,
            spacing_ms: o.spacing_ms,
        }
    }

    /// The same record for the probe `probe` ("ping", "udp").
    pub fn with_probe(mut self, probe: &str) -> Trial {
        self.probe = probe.to_string();
        self
    }

    pub fn is_ping(&self) -> bool {
        is_ping(&self.probe)
    }

    /// For a return: the probe's flow ended on the holder that came back.
    pub fn moved_back(&self) -> bool {
        self.event == Event::Return && self.after == self.faulted
    }

    /// What the lab prints after the trial's tag, e.g. `node_4 -> node_2,
    /// outage 292 ms, lost 18`. `saturate`: the trial ran under iperf3 load.
    pub fn line(&self, saturate: bool) -> String {
        let mut s = match (self.event, self.outage_ms) {
            (Event::Fault, Some(o)) => format!(
                "{} -> {}, outage {o} ms, lost {}",
                self.faulted, self.after, self.lost
            ),
            (Event::Fault, None) => format!(
                "{} -> {}, NOT recovered, lost {}",
                self.faulted, self.after, self.lost
            ),
            (Event::Return, o) => format!(
                "{} back, probes now to {}, outage {} ms, lost {}",
                self.faulted,
                self.after,
                o.unwrap_or(0),
                self.lost
            ),
        };
        if self.duplicates != 0 {
            s += &format!(", duplicate answers {}", self.duplicates);
        }
        if self.event == Event::Return && !self.recovered {
            s += ", NOT recovered";
        }
        if saturate && self.event == Event::Fault {
            match self.iperf3_gbit {
                Some(g) => s += &format!(", iperf3 {g:.2} Gbit/s"),
                None => s += ", iperf3 gave no result",
            }
        }
        s
    }

    /// Appends the record to `path` as one JSON line.
    pub fn append_to(&self, path: &Path) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening the trial record {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(self)?)
            .with_context(|| format!("writing the trial record {}", path.display()))
    }

    /// Every record in `path` (one JSON object a line); none if it is missing.
    pub fn read_all(path: &Path) -> Result<Vec<Trial>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).with_context(|| {
                    format!("{} line {}: not a trial record", path.display(), i + 1)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(recovered: bool) -> Outcome {
        Outcome {
            outage_ms: 292,
            lost: 18,
            recovered,
            duplicates: 0,
            spacing_ms: 16.1,
        }
    }

    #[test]
    fn line_says_what_happened() {
        let t = Trial::new(
            Event::Fault,
            "meshd",
            "kill",
            1,
            None,
            "node_4",
            "node_2",
            &outcome(true),
        );
        assert_eq!(t.line(false), "node_4 -> node_2, outage 292 ms, lost 18");
        assert_eq!(
            t.line(true),
            "node_4 -> node_2, outage 292 ms, lost 18, iperf3 gave no result"
        );
        let t = Trial::new(
            Event::Fault,
            "meshd",
            "kill",
            1,
            Some(1.2),
            "node_4",
            "nobody",
            &outcome(false),
        );
        assert_eq!(t.outage_ms, None);
        assert_eq!(
            t.line(true),
            "node_4 -> nobody, NOT recovered, lost 18, iperf3 1.20 Gbit/s"
        );
        let t = Trial::new(
            Event::Return,
            "meshd",
            "kill",
            1,
            None,
            "node_4",
            "node_4",
            &outcome(false),
        );
        assert!(t.moved_back());
        assert_eq!(
            t.line(false),
            "node_4 back, probes now to node_4, outage 292 ms, lost 18, NOT recovered"
        );
    }

    #[test]
    fn json_has_the_labs_trial_fields_and_round_trips() {
        let t = Trial::new(
            Event::Fault,
            "meshd",
            "cut",
            2,
            None,
            "node_3",
            "node_2",
            &outcome(true),
        );
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(
            j,
            r#"{"daemon":"meshd","fault":"cut","trial":2,"iperf3_gbit":null,"faulted":"node_3","after":"node_2","outage_ms":292,"lost":18,"recovered":true,"duplicates":0,"spacing_ms":16.1}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        assert!(Trial::read_all(&path).unwrap().is_empty());
        t.append_to(&path).unwrap();
        let r = Trial::new(
            Event::Return,
            "meshd",
            "cut",
            2,
            None,
            "node_3",
            "node_3",
            &outcome(true),
        );
        r.append_to(&path).unwrap();
        let u = t.clone().with_probe("udp");
        assert!(serde_json::to_string(&u)
            .unwrap()
            .contains(r#""fault":"cut","probe":"udp","trial":2"#));
        u.append_to(&path).unwrap();
        assert_eq!(Trial::read_all(&path).unwrap(), vec![t, r, u]);
        std::fs::write(&path, "{not json}\n").unwrap();
        let e = Trial::read_all(&path).unwrap_err();
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
    }
}
