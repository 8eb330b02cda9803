//! One table row's statistics over its trials: outage min / median / p95 /
//! max (a trial that never recovered counts as an infinite outage), the
//! median and largest loss, duplicates, and returns that moved the flow back.

use crate::trial::Trial;
use std::fmt;

/// An outage in ms, or infinite (the probe never answered again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ms {
    Finite(u64),
    Infinite,
}

impl Ms {
    pub fn finite(self) -> Option<u64> {
        match self {
            Ms::Finite(v) => Some(v),
            Ms::Infinite => None,
        }
    }
}

impl fmt::Display for Ms {
    /// `inf` for an infinite outage (the CSV's lists).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ms::Finite(v) => write!(f, "{v}"),
            Ms::Infinite => f.write_str("inf"),
        }
    }
}

/// Outage statistics of a row with at least one trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outages {
    pub min: Ms,
    pub median: Ms,
    pub p95: Ms,
    pub max: Ms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub runs: usize,
    pub not_recovered: usize,
    /// None when no trial ran.
    pub outage: Option<Outages>,
    pub lost_median: Option<u64>,
    pub lost_max: u64,
    pub duplicates: u64,
    /// Every trial's outage and loss, in trial order.
    pub outages: Vec<Ms>,
    pub losts: Vec<u64>,
    /// Returns whose flow ended on the returned holder.
    pub moved_back: usize,
}

/// The median of sorted values: the middle one, or the mean of the middle
/// two rounded down (infinite if either is).
fn median_ms(sorted: &[Ms]) -> Ms {
    let n = sorted.len();
    if n % 2 == 1 {
        return sorted[n / 2];
    }
    match (sorted[n / 2 - 1], sorted[n / 2]) {
        (Ms::Finite(a), Ms::Finite(b)) => Ms::Finite((a + b) / 2),
        _ => Ms::Infinite,
    }
}

/// The nearest-rank percentile `p` (0..=100) of sorted values.
pub fn percentile<T: Copy>(sorted: &[T], p: u32) -> T {
    let n = sorted.len();
    let rank = (n * p as usize).div_ceil(100).max(1);
    sorted[rank - 1]
}

impl Summary {
    /// The row's summary over `trials` (all of one daemon, fault and event).
    pub fn of(trials: &[&Trial]) -> Summary {
        let outages: Vec<Ms> = trials
            .iter()
            .map(|t| match (t.recovered, t.outage_ms) {
                (true, Some(o)) => Ms::Finite(o),
                _ => Ms::Infinite,
            })
            .collect();
        let losts: Vec<u64> = trials.iter().map(|t| t.lost).collect();
        let mut o = outages.clone();
        o.sort();
        let mut l = losts.clone();
        l.sort();
        let outage = (!o.is_empty()).then(|| Outages {
            min: o[0],
            median: median_ms(&o),
            p95: percentile(&o, 95),
            max: o[o.len() - 1],
        });
        let lost_median = (!l.is_empty()).then(|| {
            let n = l.len();
            if n % 2 == 1 {
                l[n / 2]
            } else {
                (l[n / 2 - 1] + l[n / 2]) / 2
            }
        });
        Summary {
            runs: trials.len(),
            not_recovered: trials.iter().filter(|t| !t.recovered).count(),
            outage,
            lost_median,
            lost_max: l.last().copied().unwrap_or(0),
            duplicates: trials.iter().map(|t| t.duplicates).sum(),
            outages,
            losts,
            moved_back: trials.iter().filter(|t| t.moved_back()).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Outcome;
    use crate::trial::Event;

    fn trial(outage: u64, lost: u64, recovered: bool) -> Trial {
        let o = Outcome {
            outage_ms: outage,
            lost,
            recovered,
            duplicates: 1,
            spacing_ms: 10.0,
        };
        Trial::new(
            Event::Fault,
            "meshd",
            "kill",
            1,
            None,
            "node_2",
            "node_3",
            &o,
        )
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=20).collect();
        assert_eq!(percentile(&v, 95), 19);
        assert_eq!(percentile(&v, 50), 10);
        assert_eq!(percentile(&v[..5], 95), 5);
        assert_eq!(percentile(&v[..1], 95), 1);
        assert_eq!(percentile(&v, 100), 20);
    }

    #[test]
    fn odd_and_even_medians() {
        let t: Vec<Trial> = [300, 290, 310]
            .iter()
            .map(|&o| trial(o, o / 10, true))
            .collect();
        let s = Summary::of(&t.iter().collect::<Vec<_>>());
        let o = s.outage.unwrap();
        assert_eq!(
            (o.min, o.median, o.p95, o.max),
            (
                Ms::Finite(290),
                Ms::Finite(300),
                Ms::Finite(310),
                Ms::Finite(310)
            )
        );
        assert_eq!(s.lost_median, Some(30));
        assert_eq!(s.duplicates, 3);
        assert_eq!(
            s.outages,
            vec![Ms::Finite(300), Ms::Finite(290), Ms::Finite(310)]
        );
        let t: Vec<Trial> = [295, 290].iter().map(|&o| trial(o, 19, true)).collect();
        let s = Summary::of(&t.iter().collect::<Vec<_>>());
        assert_eq!(s.outage.unwrap().median, Ms::Finite(292));
    }

    #[test]
    fn a_trial_that_never_recovered_is_an_infinite_outage() {
        let t = [trial(300, 19, true), trial(0, 300, false)];
        let s = Summary::of(&t.iter().collect::<Vec<_>>());
        assert_eq!(s.not_recovered, 1);
        let o = s.outage.unwrap();
        assert_eq!(
            (o.min, o.median, o.max),
            (Ms::Finite(300), Ms::Infinite, Ms::Infinite)
        );
        assert_eq!(s.lost_max, 300);
        assert_eq!(s.outages[1].to_string(), "inf");
    }

    #[test]
    fn an_empty_row_has_no_statistics() {
        let s = Summary::of(&[]);
        assert_eq!((s.runs, s.outage, s.lost_median), (0, None, None));
    }
}
