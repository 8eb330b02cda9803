//! The keepalived-like VIP manager of the lab's tinc trials (tinc has no
//! VIPs): pings the holder(s) it backs up and, after LIMIT ms without an
//! answer, adds the VIP to its interface and announces it with gratuitous ARP.
//! Its children die with it (SIGTERM at the trial's end).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::epoch_now;

/// The watcher's decision after one round of pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Take the VIP: no answer for this long (ms).
    Take(u64),
}

/// Counts the silence of the peers.
#[derive(Debug, Clone)]
pub struct Silence {
    last_answer_ms: u64,
    limit_ms: u64,
}

impl Silence {
    pub fn new(now_ms: u64, limit_ms: u64) -> Silence {
        Silence {
            last_answer_ms: now_ms,
            limit_ms,
        }
    }

    /// `up`: a peer answered in this round.
    pub fn step(&mut self, now_ms: u64, up: bool) -> Step {
        if up {
            self.last_answer_ms = now_ms;
            return Step::Wait;
        }
        let silent = now_ms.saturating_sub(self.last_answer_ms);
        if silent >= self.limit_ms {
            Step::Take(silent)
        } else {
            Step::Wait
        }
    }
}

/// A command whose process gets SIGTERM when the watcher dies.
fn child(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
    c
}

fn answers(peer: &str) -> bool {
    child("ping", &["-c", "1", "-W", "0.2", "-q", peer])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the watcher: `vip` added as /32 to `dev` after `limit_ms` without
/// answers from any of `peers`, then `arping -U` (unless `arping` is "-").
/// Progress lines start with the time, seconds since the epoch.
pub fn run(
    vip: &str,
    dev: &str,
    limit_ms: u64,
    arping: &str,
    peers: &[String],
) -> std::io::Result<()> {
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let mut silence = Silence::new(ms(), limit_ms);
    println!("{:.6} watching {}", epoch_now(), peers.join(" "));
    loop {
        let up = peers.iter().any(|p| answers(p));
        if let Step::Take(silent) = silence.step(ms(), up) {
            println!(
                "{:.6} no answer from {} for {silent} ms: adding {vip}/32 to {dev}",
                epoch_now(),
                peers.join(" ")
            );
            child("ip", &["addr", "add", &format!("{vip}/32"), "dev", dev]).status()?;
            if arping != "-" {
                println!(
                    "{:.6} gratuitous ARP: {arping} -U -c 3 -I {dev} -s {vip} {vip}",
                    epoch_now()
                );
                let st = child(arping, &["-U", "-c", "3", "-I", dev, "-s", vip, vip]).status()?;
                println!(
                    "{:.6} arping exit status {}",
                    epoch_now(),
                    st.code().unwrap_or(-1)
                );
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_vip_after_the_limit_of_silence() {
        let mut s = Silence::new(0, 1000);
        assert_eq!(s.step(300, true), Step::Wait);
        assert_eq!(s.step(900, false), Step::Wait);
        assert_eq!(s.step(1299, false), Step::Wait);
        assert_eq!(s.step(1300, false), Step::Take(1000));
        // An answer restarts the count.
        assert_eq!(s.step(1400, true), Step::Wait);
        assert_eq!(s.step(2300, false), Step::Wait);
    }

    #[test]
    fn children_run() {
        assert!(child("true", &[]).status().unwrap().success());
        assert!(!child("false", &[]).status().unwrap().success());
    }
}
