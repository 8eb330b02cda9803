//! Shared by the netns VIP tests: a `ping` from the client run in the
//! background and its outcome read from the output (answered sequence
//! numbers, outage by sequence and by wall clock), and process helpers;
//! [`owner_lab`]: the lab of a VIP held by a container behind its holder; [`ref_lab`]: the
//! reference scenario (a hub, three holders, a client).
// Each test file uses some of these.
#![allow(dead_code)]

pub mod owner_lab;
pub mod ref_lab;

use meshd_lab::netns::Lab;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::time::Duration;

/// The client node of the reference scenario.
const CLIENT: &str = "node_5";
/// The probe interval (ping -i 0.01).
const PROBE_MS: u64 = 10;

/// A ping from the client running in the background.
pub struct Probe {
    pid: u32,
    out: PathBuf,
    count: u32,
}

/// `ping -n -D -i 0.01 -W 1 -c COUNT TARGET` in node_5's namespace.
pub fn start_probe_to(lab: &mut Lab, name: &str, count: u32, target: &str) -> Probe {
    let ns = lab.node(CLIENT).ns.clone();
    start_probe_in(lab, &ns, name, count, target)
}

/// The same ping in any namespace (a node's, or a station's behind one).
pub fn start_probe_in(lab: &mut Lab, ns: &str, name: &str, count: u32, target: &str) -> Probe {
    let out = lab.dir.path().join(format!("{name}.ping"));
    let pid = lab.spawn_in(
        ns,
        &[
            "ping",
            "-n",
            "-D",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
            target,
        ],
        None,
        Some(&out),
    );
    Probe { pid, out, count }
}

#[derive(Debug)]
pub struct ProbeResult {
    pub sent: u32,
    pub received: u32,
    pub duplicates: u32,
    /// Answered sequence numbers, ascending, without duplicates.
    pub seqs: Vec<u32>,
    /// (largest gap between answered seqs, counting both ends - 1) × 10 ms.
    pub outage_ms: u64,
    /// The largest gap between two answers in wall-clock time (ping -D) less
    /// the median gap between answers, ms.
    pub outage_wall_ms: f64,
    pub lost: u32,
}

impl ProbeResult {
    /// True if every one of the last `n` probes was answered.
    pub fn tail_answered(&self, n: u32) -> bool {
        let from = self.sent.saturating_sub(n) + 1;
        (from..=self.sent).all(|s| self.seqs.binary_search(&s).is_ok())
    }
}

/// Waits for the probe to end and reads its outcome. The wait is a hang guard,
/// not a timing assertion: on a loaded machine `ping -i 0.01` paces far slower
/// than 10 ms (it sleeps in scheduler ticks, and failed sends back off), so a
/// probe still running after the generous limit is interrupted (SIGINT makes
/// ping print its summary) and judged on what it sent.
pub fn finish_probe(lab: &mut Lab, p: &Probe) -> ProbeResult {
    let limit = Duration::from_millis(u64::from(p.count) * PROBE_MS * 6 + 15_000);
    let st = match lab.wait_child(p.pid, limit) {
        Some(st) => st,
        None => {
            eprintln!(
                "ping ({} probes) still runs after {limit:?}: interrupting it; output so far:\n{}",
                p.count,
                std::fs::read_to_string(&p.out).unwrap_or_default()
            );
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), Signal::SIGINT);
            lab.wait_child(p.pid, Duration::from_secs(5))
                .unwrap_or_else(|| panic!("ping ignored SIGINT after running {limit:?}"))
        }
    };
    let text = std::fs::read_to_string(&p.out).expect("ping output");
    let err = std::fs::read_to_string(format!("{}.err", p.out.display())).unwrap_or_default();
    let mut answers: Vec<(u32, f64)> = Vec::new();
    let mut duplicates = 0;
    let (mut sent, mut received) = (None, None);
    for line in text.lines() {
        if line.contains(" bytes from ") {
            let seq = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or_else(|| panic!("no icmp_seq in {line}"));
            if line.contains("DUP!") {
                duplicates += 1;
                continue;
            }
            let ts = line
                .strip_prefix('[')
                .and_then(|l| l.split(']').next())
                .and_then(|t| t.parse::<f64>().ok())
                .unwrap_or(0.0);
            answers.push((seq, ts));
        }
        if line.contains("packets transmitted") {
            let nums: Vec<u32> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            sent = nums.first().copied();
            received = nums.get(1).copied();
        }
    }
    let (Some(sent), Some(received)) = (sent, received) else {
        panic!("no ping summary ({st}):\n{text}\n{err}");
    };
    answers.sort_by_key(|a| a.0);
    answers.dedup_by_key(|a| a.0);
    let seqs: Vec<u32> = answers.iter().map(|a| a.0).collect();
    // Gaps, with virtual answers at seq 0 and seq sent+1 so that a lost head
    // or a lost tail counts too.
    let mut bounds = vec![0];
    bounds.extend(&seqs);
    bounds.push(sent + 1);
    let gap = bounds
        .windows(2)
        .map(|w| w[1] - w[0] - 1)
        .max()
        .unwrap_or(0);
    // ping -i 0.01 really paces at ~16 ms here (timer granularity), so the
    // seq-based figure understates the time; this one uses ping -D's receive
    // timestamps: the largest gap between two answers less the median gap.
    let mut gaps: Vec<f64> = answers
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) * 1000.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let outage_wall_ms = match (gaps.get(gaps.len() / 2), gaps.last()) {
        (Some(median), Some(max)) => (max - median).max(0.0),
        _ => 0.0,
    };
    ProbeResult {
        sent,
        received,
        duplicates,
        seqs,
        outage_ms: u64::from(gap) * PROBE_MS,
        outage_wall_ms,
        lost: sent - received,
    }
}

/// True once `pid` has exited (no such process, or a zombie nobody reaped).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

pub fn daemon_alive(lab: &Lab, node: &str) -> bool {
    lab.pid(node).is_some_and(|pid| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
    })
}

/// Sends SIGCONT to a frozen daemon when dropped (or at [`Thaw::now`]), so
/// that a failing assertion never leaves a stopped process behind.
pub struct Thaw(pub Option<u32>);

impl Thaw {
    pub fn now(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGCONT);
        }
    }
}

impl Drop for Thaw {
    fn drop(&mut self) {
        self.now();
    }
}
