//! The probe log: `ping -D -O` output parsed, and what the lab reads from it
//! (a trial's outage and losses, the live status, recovery, the serving holder).
//!
//! Times are seconds since the epoch, as `ping -D` stamps its answers and as
//! bash's `$EPOCHREALTIME` stamps the fault.

use std::collections::{BTreeMap, HashMap};

/// One echo reply: `[TS] 64 bytes from ADDR: icmp_seq=SEQ ttl=TTL time=...`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub ts: f64,
    pub seq: u64,
    pub ttl: u32,
    /// The round trip, seconds (`time=... ms`; 0 when missing).
    pub rtt: f64,
}

/// A probe log: every answer line in file order (duplicates included), the
/// highest icmp_seq any line named (answers and `-O`'s "no answer yet" lines),
/// and ping's own "N packets transmitted" when it printed its statistics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProbeLog {
    pub answers: Vec<Answer>,
    pub highest_seq: u64,
    pub transmitted: Option<u64>,
    /// ping's own count of answers ("M received").
    pub received: Option<u64>,
}

/// The field `NAME=VALUE` of a ping line, as a number.
fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

impl ProbeLog {
    pub fn parse(text: &str) -> ProbeLog {
        let mut log = ProbeLog::default();
        for line in text.lines() {
            // udp_seq: the lab's UDP flow (crate::udp) writes its log in ping's format.
            let seq = field(line, "icmp_seq").or_else(|| field(line, "udp_seq"));
            if let Some(s) = seq {
                log.highest_seq = log.highest_seq.max(s);
            }
            if line.contains("bytes from") {
                let ts = line
                    .split_whitespace()
                    .next()
                    .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
                    .and_then(|w| w.parse::<f64>().ok());
                if let (Some(ts), Some(seq)) = (ts, seq) {
                    let ttl = field(line, "ttl").unwrap_or(0) as u32;
                    let rtt = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("time="))
                        .and_then(|v| v.parse::<f64>().ok())
                        .map_or(0.0, |ms| ms / 1000.0);
                    log.answers.push(Answer { ts, seq, ttl, rtt });
                }
            } else if line.contains("packets transmitted") {
                let w: Vec<&str> = line.split_whitespace().collect();
                log.transmitted = w.first().and_then(|v| v.parse().ok());
                log.received = w
                    .iter()
                    .position(|v| v.starts_with("received"))
                    .and_then(|i| w.get(i.checked_sub(1)?)?.parse().ok());
            }
        }
        log
    }

    /// The probe over a whole run (bench-faults): probes sent (those still in
    /// flight after the last answer not counted), answered, the loss, the
    /// longest time between answers, how often the answering holder changed.
    pub fn summary(&self, ttl_base: u32) -> ProbeSummary {
        let mut rx: BTreeMap<u64, (f64, i64)> = BTreeMap::new();
        for a in &self.answers {
            rx.entry(a.seq)
                .or_insert((a.ts, i64::from(a.ttl) - i64::from(ttl_base)));
        }
        let mut sent = self.highest_seq.max(self.transmitted.unwrap_or(0));
        if let Some(&max) = rx.keys().next_back() {
            sent = sent.min(max);
        }
        let mut times: Vec<f64> = rx.values().map(|v| v.0).collect();
        times.sort_by(f64::total_cmp);
        let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let holders: Vec<i64> = rx.values().map(|v| v.1).collect();
        let mut distinct = holders.clone();
        distinct.sort();
        distinct.dedup();
        let n = rx.len() as u64;
        ProbeSummary {
            sent,
            answered: n,
            loss_pct: (sent > 0)
                .then(|| ((sent - n.min(sent)) as f64 * 10000.0 / sent as f64).round() / 100.0),
            longest_gap_ms: (gap * 1000.0).round() as u64,
            holder_moves: holders.windows(2).filter(|w| w[0] != w[1]).count(),
            holders: distinct,
            spacing_ms: (times.len() > 1).then(|| {
                let s = (times[times.len() - 1] - times[0]) / (times.len() - 1) as f64;
                (s * 10000.0).round() / 10.0
            }),
        }
    }

    /// A trial's result (see [`Outcome`]) for a fault at `fault`.
    pub fn outcome(&self, fault: f64) -> Outcome {
        let mut rx: BTreeMap<u64, f64> = BTreeMap::new();
        let mut dups = 0;
        let mut pre = 0; // the last answered seq before the fault
        for a in self.answers.iter().filter(|a| a.seq > 0) {
            if rx.contains_key(&a.seq) {
                dups += 1;
                continue;
            }
            rx.insert(a.seq, a.ts);
            if a.ts < fault && a.seq > pre {
                pre = a.seq;
            }
        }
        let (minseq, maxseq) = match (rx.keys().next(), rx.keys().next_back()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (0, 0),
        };
        let spacing = if maxseq > minseq {
            (rx[&maxseq] - rx[&minseq]) / (maxseq - minseq) as f64
        } else {
            0.01
        };
        let mut outage: f64 = 0.0;
        let mut prev = pre;
        for (&s, &ts) in rx.range(pre + 1..) {
            if prev > 0 && s - prev > 1 {
                outage = outage.max(ts - rx[&prev] - spacing);
            }
            prev = s;
        }
        let sent = self.transmitted.unwrap_or(0).max(maxseq);
        let recovered = maxseq > pre && sent - maxseq <= 5;
        let answered = rx.len() as u64;
        let lost = if recovered { maxseq } else { sent } - answered;
        Outcome {
            outage_ms: (outage * 1000.0 + 0.5) as u64,
            lost,
            recovered,
            duplicates: dups,
            spacing_ms: (spacing * 10000.0).round() / 10.0,
        }
    }

    /// The live view at `now`; `fault` is `None` before the fault.
    pub fn live(&self, fault: Option<f64>, now: f64) -> Live {
        let mut seen = std::collections::HashSet::new();
        let (mut first, mut last, mut worst, mut ttl) = (0.0, 0.0, 0.0_f64, 0);
        for a in &self.answers {
            if !seen.insert(a.seq) {
                continue;
            }
            ttl = a.ttl;
            if let Some(f) = fault {
                if last > 0.0 && a.ts > f {
                    worst = worst.max(a.ts - last);
                }
            }
            if first == 0.0 {
                first = a.ts;
            }
            last = a.ts;
        }
        let n = seen.len();
        let silent = if last > 0.0 { now - last } else { 0.0 };
        if fault.is_some() && last > 0.0 {
            worst = worst.max(silent);
        }
        if n > 1 && worst > 0.0 {
            worst -= (last - first) / (n - 1) as f64;
        }
        Live {
            sent: self.highest_seq,
            answered: n as u64,
            ttl,
            silent_ms: (silent.max(0.0) * 1000.0) as u64,
            worst_ms: if worst > 0.03 {
                (worst * 1000.0) as u64
            } else {
                0
            },
        }
    }

    /// True once the probe has had `secs` of answers in a row since `fault`.
    pub fn recovered_for(&self, fault: f64, secs: f64) -> bool {
        let (mut first, mut last_seq, mut last_ts) = (0.0, 0, 0.0);
        for a in self.answers.iter().filter(|a| a.ts >= fault) {
            if a.seq != last_seq + 1 {
                first = a.ts;
            }
            last_seq = a.seq;
            last_ts = a.ts;
        }
        last_seq > 0 && last_ts - first >= secs
    }

    /// The holder whose TTL (`ttl_base` + N) most answers since `since` carry,
    /// if at least `min` answers do.
    pub fn serving(&self, since: f64, ttl_base: u32, min: usize) -> Option<u32> {
        let mut count: HashMap<u32, usize> = HashMap::new();
        for a in self.answers.iter().filter(|a| a.ts >= since) {
            if let Some(n) = a.ttl.checked_sub(ttl_base) {
                *count.entry(n).or_default() += 1;
            }
        }
        count
            .into_iter()
            .filter(|&(_, c)| c >= min)
            .max_by_key(|&(n, c)| (c, std::cmp::Reverse(n)))
            .map(|(n, _)| n)
    }
}

/// A trial's result. `outage_ms`: of the gaps in the answered icmp_seq numbers
/// from the last answer before the fault on, the longest in time (the answer
/// after it minus the answer before it, minus the mean spacing); 0 when no
/// probe was lost. `recovered` is false when the probe never answered after the
/// fault or more than 5 probes at the end went unanswered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub outage_ms: u64,
    pub lost: u64,
    pub recovered: bool,
    pub duplicates: u64,
    /// The mean time between answers, in ms, to one decimal.
    pub spacing_ms: f64,
}

/// The probe over a whole run (see [`ProbeLog::summary`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeSummary {
    pub sent: u64,
    pub answered: u64,
    pub loss_pct: Option<f64>,
    pub longest_gap_ms: u64,
    pub holder_moves: usize,
    pub holders: Vec<i64>,
    pub spacing_ms: Option<f64>,
}

/// The probe so far, for the status line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Live {
    pub sent: u64,
    pub answered: u64,
    /// The TTL of the last answer (0: none yet).
    pub ttl: u32,
    /// Time since the last answer.
    pub silent_ms: u64,
    /// After the fault: the longest time without answers minus one spacing
    /// (0 when under 30 ms).
    pub worst_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log with one answer per seq in `seqs`, `gap` s apart from t0 = 100.
    fn log(seqs: &[u64], ttl: u32) -> String {
        seqs.iter()
            .map(|&s| {
                format!(
                    "[{:.6}] 64 bytes from 10.1.1.10: icmp_seq={s} ttl={ttl} time=0.3 ms\n",
                    100.0 + s as f64 * 0.01
                )
            })
            .collect()
    }

    #[test]
    fn parses_answers_no_answer_lines_and_statistics() {
        let text = "PING 10.1.1.10 (10.1.1.10) 56(84) bytes of data.\n\
            [100.010000] 64 bytes from 10.1.1.10: icmp_seq=1 ttl=42 time=0.3 ms\n\
            no answer yet for icmp_seq=2\n\
            [100.030000] 64 bytes from 10.1.1.10: icmp_seq=3 ttl=43 time=0.3 ms (DUP!)\n\
            --- 10.1.1.10 ping statistics ---\n\
            4 packets transmitted, 2 received, 50% packet loss, time 30ms\n";
        let p = ProbeLog::parse(text);
        assert_eq!(p.answers.len(), 2);
        assert_eq!(
            p.answers[1],
            Answer {
                ts: 100.03,
                seq: 3,
                ttl: 43,
                rtt: 0.0003
            }
        );
        assert_eq!(p.highest_seq, 3);
        assert_eq!((p.transmitted, p.received), (Some(4), Some(2)));
    }

    #[test]
    fn outage_is_the_longest_gap_after_the_fault_minus_one_spacing() {
        // Seqs 1..=10 and 31..=50 answered, fault at seq 10's time: 20 lost.
        let seqs: Vec<u64> = (1..=10).chain(31..=50).collect();
        let mut text = log(&seqs, 42);
        text.push_str("50 packets transmitted, 30 received\n");
        let o = ProbeLog::parse(&text).outcome(100.105);
        assert_eq!(o.lost, 20);
        assert!(o.recovered);
        assert_eq!(o.spacing_ms, 10.0);
        // 31 - 10 = 21 spacings of 10 ms, minus one spacing.
        assert_eq!(o.outage_ms, 200);
        assert_eq!(o.duplicates, 0);
    }

    #[test]
    fn gaps_before_the_fault_do_not_count() {
        let seqs: Vec<u64> = (1..=5).chain(20..=40).collect();
        let o = ProbeLog::parse(&log(&seqs, 42)).outcome(100.35);
        assert_eq!(o.outage_ms, 0);
        assert_eq!(o.lost, 14);
    }

    #[test]
    fn no_answer_at_the_end_is_not_recovered() {
        let mut text = log(&(1..=10).collect::<Vec<_>>(), 42);
        text.push_str("300 packets transmitted, 10 received\n");
        let o = ProbeLog::parse(&text).outcome(100.105);
        assert!(!o.recovered);
        assert_eq!(o.lost, 290);
        // A few unanswered probes at the very end are the SIGINT, not a failure.
        let mut text = log(&(1..=10).collect::<Vec<_>>(), 42);
        text.push_str("15 packets transmitted, 10 received\n");
        assert!(ProbeLog::parse(&text).outcome(100.05).recovered);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut text = log(&[1, 2, 3], 42);
        text.push_str(&log(&[2], 43));
        let o = ProbeLog::parse(&text).outcome(100.0);
        assert_eq!(o.duplicates, 1);
        assert_eq!(o.lost, 0);
    }

    #[test]
    fn live_shows_the_silence_after_the_fault() {
        let p = ProbeLog::parse(&log(&(1..=10).collect::<Vec<_>>(), 43));
        let l = p.live(Some(100.1), 100.4005);
        assert_eq!((l.sent, l.answered, l.ttl), (10, 10, 43));
        assert_eq!(l.silent_ms, 300);
        assert_eq!(l.worst_ms, 290);
        assert_eq!(p.live(None, 100.4005).worst_ms, 0);
    }

    #[test]
    fn recovery_needs_a_second_of_consecutive_answers() {
        let seqs: Vec<u64> = (1..=10).chain(20..=130).collect();
        let p = ProbeLog::parse(&log(&seqs, 42));
        assert!(p.recovered_for(100.15, 1.0));
        let seqs: Vec<u64> = (1..=10).chain(20..=90).collect();
        assert!(!ProbeLog::parse(&log(&seqs, 42)).recovered_for(100.15, 1.0));
    }

    #[test]
    fn summary_counts_loss_gaps_and_holder_moves() {
        let seqs: Vec<u64> = (1..=4).chain(8..=10).collect();
        let mut text = log(&seqs[..4], 42);
        text.push_str(&log(&seqs[4..], 43));
        text.push_str("no answer yet for icmp_seq=11\n14 packets transmitted, 7 received\n");
        let s = ProbeLog::parse(&text).summary(40);
        // Probes after the last answer were in flight: not lost.
        assert_eq!((s.sent, s.answered), (10, 7));
        assert_eq!(s.loss_pct, Some(30.0));
        assert_eq!(s.longest_gap_ms, 40);
        assert_eq!((s.holder_moves, s.holders.clone()), (1, vec![2, 3]));
        assert_eq!(s.spacing_ms, Some(15.0));
        assert_eq!(ProbeLog::parse("").summary(40).loss_pct, None);
    }

    #[test]
    fn serving_is_the_most_frequent_recent_ttl() {
        let mut text = log(&(1..=20).collect::<Vec<_>>(), 42);
        text.push_str(&log(&(21..=50).collect::<Vec<_>>(), 43));
        let p = ProbeLog::parse(&text);
        assert_eq!(p.serving(100.0, 40, 10), Some(3));
        assert_eq!(p.serving(100.45, 40, 10), None);
    }
}
