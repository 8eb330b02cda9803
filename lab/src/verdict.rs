//! meshd's pass/fail verdict on a row of the outage table: every trial
//! recovered; kill / cut / freeze within the bound; stop / health (announced
//! faults) lost no probe at all.

use crate::summary::{Ms, Summary};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Fail(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok => f.write_str("ok"),
            Verdict::Fail(why) => write!(f, "FAIL: {why}"),
        }
    }
}

/// True for the faults meshd is told about beforehand: they must lose nothing.
pub fn announced(fault: &str) -> bool {
    matches!(fault, "stop" | "health")
}

/// The verdict on meshd's row for `fault`, with `bound_ms` the largest outage
/// accepted for an unannounced fault.
pub fn verdict(fault: &str, s: &Summary, bound_ms: u64) -> Verdict {
    if s.runs == 0 {
        return Verdict::Fail("no trial ran".into());
    }
    if s.not_recovered != 0 {
        return Verdict::Fail(format!("{} trial(s) never answered again", s.not_recovered));
    }
    if announced(fault) {
        return if s.lost_max > 0 {
            Verdict::Fail("lost probes (announced fault)".into())
        } else {
            Verdict::Ok
        };
    }
    match s.outage.map(|o| o.max) {
        Some(Ms::Finite(max)) if max <= bound_ms => Verdict::Ok,
        _ => Verdict::Fail(format!("outage above {bound_ms} ms")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Outcome;
    use crate::trial::{Event, Trial};

    fn row(fault: &str, results: &[(u64, u64, bool)]) -> Summary {
        let t: Vec<Trial> = results
            .iter()
            .map(|&(outage_ms, lost, recovered)| {
                let o = Outcome {
                    outage_ms,
                    lost,
                    recovered,
                    duplicates: 0,
                    spacing_ms: 10.0,
                };
                Trial::new(
                    Event::Fault,
                    "meshd",
                    fault,
                    1,
                    None,
                    "node_2",
                    "node_3",
                    &o,
                )
            })
            .collect();
        Summary::of(&t.iter().collect::<Vec<_>>())
    }

    #[test]
    fn kill_within_the_bound_passes_and_above_fails() {
        assert_eq!(
            verdict(
                "kill",
                &row("kill", &[(296, 18, true), (1000, 60, true)]),
                1000
            ),
            Verdict::Ok
        );
        let v = verdict(
            "cut",
            &row("cut", &[(296, 18, true), (1001, 60, true)]),
            1000,
        );
        assert_eq!(v.to_string(), "FAIL: outage above 1000 ms");
    }

    #[test]
    fn announced_faults_must_lose_nothing() {
        assert_eq!(
            verdict("stop", &row("stop", &[(0, 0, true)]), 1000),
            Verdict::Ok
        );
        let v = verdict(
            "health",
            &row("health", &[(0, 0, true), (12, 1, true)]),
            1000,
        );
        assert_eq!(v.to_string(), "FAIL: lost probes (announced fault)");
    }

    #[test]
    fn a_vip_that_never_answered_again_fails() {
        let v = verdict(
            "freeze",
            &row("freeze", &[(0, 300, false), (290, 18, true)]),
            1000,
        );
        assert_eq!(v.to_string(), "FAIL: 1 trial(s) never answered again");
        let v = verdict("stop", &row("stop", &[(0, 0, false)]), 1000);
        assert_eq!(v.to_string(), "FAIL: 1 trial(s) never answered again");
    }

    #[test]
    fn a_row_without_trials_fails() {
        assert_eq!(
            verdict("kill", &row("kill", &[]), 1000).to_string(),
            "FAIL: no trial ran"
        );
    }
}
