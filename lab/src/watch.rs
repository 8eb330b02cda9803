//! The live status line of a running trial: who serves, probes sent and
//! unanswered, the current outage; redrawn every 0.1 s on a terminal while
//! the trial waits (a fixed time, or until the probe has recovered).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::host::epoch_now;
use crate::probe::{Live, ProbeLog};

/// The status line for `live`: `PREFIX | serving: node_N | probes S sent, U
/// unanswered`, and after the fault the outage so far and the time since it.
pub fn status_line(
    prefix: &str,
    live: &Live,
    ttl_base: u32,
    fault: Option<f64>,
    now: f64,
) -> String {
    let holder = match live.ttl.checked_sub(ttl_base) {
        Some(n) if n > 0 => format!("node_{n}"),
        _ => "-".into(),
    };
    let mut line = format!(
        "{prefix} | serving: {holder} | probes {} sent, {} unanswered",
        live.sent,
        live.sent.saturating_sub(live.answered)
    );
    if let Some(f) = fault {
        if live.silent_ms >= 40 {
            line += &format!(" | NO ANSWER for {} ms", live.silent_ms);
        } else if live.worst_ms > 0 {
            line += &format!(" | outage was {} ms", live.worst_ms);
        } else {
            line += " | no outage";
        }
        line += &format!(" | +{:.1} s", now - f);
    }
    line
}

/// `line` cut to fit a terminal `cols` wide (one column left for the cursor).
pub fn fit(line: &str, cols: usize) -> &str {
    match line.char_indices().nth(cols.saturating_sub(1)) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// One wait of a trial, watched.
#[derive(Debug, Clone)]
pub struct Watch {
    pub ping: PathBuf,
    pub fault: Option<f64>,
    pub limit: Duration,
    pub prefix: String,
    /// Stop early once the probe has had 1 s of answers in a row since the fault.
    pub until_recovered: bool,
    pub cols: usize,
    pub ttl_base: u32,
}

impl Watch {
    /// Waits; draws the status line when stderr is a terminal. Returns whether
    /// it drew anything (the caller then owns a line to clear).
    pub fn run(&self) -> bool {
        let tty = std::io::stderr().is_terminal();
        let start = Instant::now();
        let mut drew = false;
        while start.elapsed() < self.limit {
            let need_log = tty || self.until_recovered;
            let log = if need_log {
                ProbeLog::parse(&std::fs::read_to_string(&self.ping).unwrap_or_default())
            } else {
                ProbeLog::default()
            };
            if let (true, Some(f)) = (self.until_recovered, self.fault) {
                if log.recovered_for(f, 1.0) {
                    break;
                }
            }
            if tty {
                let now = epoch_now();
                let line = status_line(
                    &self.prefix,
                    &log.live(self.fault, now),
                    self.ttl_base,
                    self.fault,
                    now,
                );
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[K{}", fit(&line, self.cols));
                let _ = err.flush();
                drew = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drew
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(silent_ms: u64, worst_ms: u64) -> Live {
        Live {
            sent: 120,
            answered: 100,
            ttl: 44,
            silent_ms,
            worst_ms,
        }
    }

    #[test]
    fn before_the_fault() {
        let l = status_line(
            "meshd kill 1/1 | probing 10.1.1.10",
            &live(3, 0),
            40,
            None,
            0.0,
        );
        assert_eq!(
            l,
            "meshd kill 1/1 | probing 10.1.1.10 | serving: node_4 | probes 120 sent, 20 unanswered"
        );
        let none = Live {
            ttl: 0,
            ..live(0, 0)
        };
        assert!(status_line("p", &none, 40, None, 0.0).contains("serving: -"));
    }

    #[test]
    fn after_the_fault() {
        let l = status_line("x", &live(250, 0), 40, Some(100.0), 100.25);
        assert!(
            l.ends_with(" | NO ANSWER for 250 ms | +0.2 s")
                || l.ends_with(" | NO ANSWER for 250 ms | +0.3 s"),
            "{l}"
        );
        let l = status_line("x", &live(10, 290), 40, Some(100.0), 102.0);
        assert!(l.ends_with(" | outage was 290 ms | +2.0 s"), "{l}");
        let l = status_line("x", &live(10, 0), 40, Some(100.0), 101.0);
        assert!(l.ends_with(" | no outage | +1.0 s"), "{l}");
    }

    #[test]
    fn fits_the_terminal() {
        assert_eq!(fit("abcdef", 4), "abc");
        assert_eq!(fit("abc", 80), "abc");
        assert_eq!(fit("é→xyz", 3), "é→");
    }

    #[test]
    fn stops_when_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let ping = dir.path().join("ping.txt");
        let text: String = (1..=150)
            .map(|s| {
                format!(
                    "[{:.6}] 64 bytes from 10.1.1.10: icmp_seq={s} ttl=42 time=0.3 ms\n",
                    100.0 + s as f64 * 0.01
                )
            })
            .collect();
        std::fs::write(&ping, text).unwrap();
        let w = Watch {
            ping,
            fault: Some(100.0),
            limit: Duration::from_secs(5),
            prefix: "t".into(),
            until_recovered: true,
            cols: 80,
            ttl_base: 40,
        };
        let t0 = Instant::now();
        w.run();
        assert!(t0.elapsed() < Duration::from_secs(2));
        let w = Watch {
            until_recovered: false,
            limit: Duration::from_millis(300),
            ..w
        };
        let t0 = Instant::now();
        w.run();
        assert!(t0.elapsed() >= Duration::from_millis(300));
    }
}
