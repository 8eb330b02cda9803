//! VIP health checks (`HealthCheck` lines): one tokio task per check, off the packet loop,
//! aggregated per VIP into [`HealthChange`] reports for the daemon.
//!
//! Every check starts unhealthy and probes at once, then every `interval` (a probe that runs
//! long delays the next one; probes of one check never overlap). A failing check becomes
//! healthy after `rise` consecutive successes; a healthy one fails after `fall` consecutive
//! failures. A VIP is healthy while all its checks are. Each VIP's state is reported once when
//! every one of its checks has finished its first probe, and then on every change.
//!
//! Probes:
//! * exec: `/bin/sh -c COMMAND`, run by [`child::run`] (stdin from `/dev/null`, a process
//!   group of its own); exit status 0 is success. At the timeout the whole group is killed;
//!   processes the command leaves behind in its group when it exits are killed too (a probe
//!   runs twice a second, so leftovers would pile up). The first [`OUTPUT_LIMIT`] bytes of
//!   stdout and stderr are kept for the logs.
//! * tcp: a connect within the timeout is success.
//! * udp: from a fresh ephemeral socket, send the probe datagram and wait for any reply within
//!   the timeout (starting with `expect`, if given). An ICMP port unreachable fails it at once.

use super::child;
use crate::config::{format_duration, CheckKind, HealthCheckSpec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How much of an exec check's stdout and of its stderr is kept.
pub const OUTPUT_LIMIT: usize = 512;

/// Longest command text shown in a check's description.
const COMMAND_SHOWN: usize = 60;

/// A VIP's aggregate health changed (or is reported for the first time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// The VIP.
    pub vip: IpAddr,
    /// Whether all of its checks are healthy now.
    pub healthy: bool,
    /// The probe result behind this state, e.g.
    /// `tcp 127.0.0.1:53: connection refused (fall 2/2)`.
    pub detail: String,
}

/// The running health checks. Dropping it aborts every check task (and kills a probe
/// command that is still running).
#[derive(Debug)]
pub struct HealthChecks {
    tasks: Vec<JoinHandle<()>>,
}

impl HealthChecks {
    /// Starts one task per check on the current tokio runtime (panics outside one) and
    /// reports every VIP's state on `tx`: once after the first probe of each of its checks,
    /// then whenever it changes. The tasks stop when this value is dropped or `tx`'s receiver
    /// is gone.
    pub fn spawn(specs: Vec<HealthCheckSpec>, tx: UnboundedSender<HealthChange>) -> HealthChecks {
        let mut groups: Vec<(IpAddr, Vec<HealthCheckSpec>)> = Vec::new();
        for spec in specs {
            match groups.iter_mut().find(|(vip, _)| *vip == spec.vip) {
                Some((_, checks)) => checks.push(spec),
                None => groups.push((spec.vip, vec![spec])),
            }
        }
        let mut tasks = Vec::new();
        for (vip, checks) in groups {
            let state = Arc::new(Mutex::new(VipState {
                vip,
                slots: vec![None; checks.len()],
                reported: None,
            }));
            for (slot, spec) in checks.into_iter().enumerate() {
                tasks.push(tokio::spawn(run_check(
                    spec,
                    slot,
                    state.clone(),
                    tx.clone(),
                )));
            }
        }
        HealthChecks { tasks }
    }

    /// Whether there are no checks at all.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The checks of one VIP, shared by their tasks.
struct VipState {
    vip: IpAddr,
    /// Per check: `(healthy, detail)` after its first probe.
    slots: Vec<Option<(bool, String)>>,
    /// The state last reported, if any.
    reported: Option<bool>,
}

impl VipState {
    /// Records check `slot`'s state; returns the change to report, if any.
    fn update(&mut self, slot: usize, healthy: bool, detail: String) -> Option<HealthChange> {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some((healthy, detail));
        }
        let mut all_healthy = true;
        for s in &self.slots {
            match s {
                None => return None,
                Some((h, _)) => all_healthy &= *h,
            }
        }
        if self.reported == Some(all_healthy) {
            return None;
        }
        // The detail of the check that decided it: this one if it agrees, else the first that does.
        let detail = self
            .slots
            .get(slot)
            .into_iter()
            .chain(self.slots.iter())
            .flatten()
            .find(|(h, _)| *h == all_healthy)
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let vip = self.vip;
        match self.reported {
            None if all_healthy => tracing::info!(vip = %vip, "health check passed: {detail}"),
            None => tracing::info!(
                vip = %vip,
                "health check not passed yet, VIP not offered: {detail}"
            ),
            Some(_) if all_healthy => tracing::info!(vip = %vip, "health check passed: {detail}"),
            Some(_) => tracing::warn!(vip = %vip, "health check failed: {detail}"),
        }
        self.reported = Some(all_healthy);
        Some(HealthChange {
            vip,
            healthy: all_healthy,
            detail,
        })
    }
}

/// Rise/fall counting of one check.
struct Counter {
    rise: u32,
    fall: u32,
    healthy: bool,
    successes: u32,
    failures: u32,
}

impl Counter {
    /// Records a probe result; returns the progress note for the detail (`rise 1/2`), if any.
    fn record(&mut self, ok: bool) -> Option<String> {
        if ok {
            self.failures = 0;
            if self.healthy {
                return None;
            }
            self.successes += 1;
            let note = format!("rise {}/{}", self.successes, self.rise);
            if self.successes >= self.rise {
                self.healthy = true;
                self.successes = 0;
            }
            Some(note)
        } else {
            self.successes = 0;
            if !self.healthy {
                return None;
            }
            self.failures += 1;
            let note = format!("fall {}/{}", self.failures, self.fall);
            if self.failures >= self.fall {
                self.healthy = false;
                self.failures = 0;
            }
            Some(note)
        }
    }
}

async fn run_check(
    spec: HealthCheckSpec,
    slot: usize,
    state: Arc<Mutex<VipState>>,
    tx: UnboundedSender<HealthChange>,
) {
    let desc = describe(&spec.kind);
    let mut counter = Counter {
        rise: spec.rise.max(1),
        fall: spec.fall.max(1),
        healthy: false,
        successes: 0,
        failures: 0,
    };
    let mut ticker = tokio::time::interval(spec.interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if tx.is_closed() {
            return;
        }
        let result = probe(&spec).await;
        let ok = result.is_ok();
        let what = match result {
            Ok(s) | Err(s) => s,
        };
        let detail = match counter.record(ok) {
            Some(note) => format!("{desc}: {what} ({note})"),
            None => format!("{desc}: {what}"),
        };
        tracing::debug!(
            vip = %spec.vip,
            origin = %spec.origin,
            healthy = counter.healthy,
            "health probe {}: {detail}",
            if ok { "succeeded" } else { "failed" }
        );
        // Sent under the lock so the reports of one VIP's checks stay in order.
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(change) = st.update(slot, counter.healthy, detail) {
            if tx.send(change).is_err() {
                return;
            }
        }
    }
}

/// `exec `cmd``, `tcp ADDR` or `udp ADDR`, for details and logs.
fn describe(kind: &CheckKind) -> String {
    match kind {
        CheckKind::Exec(cmd) => {
            if cmd.chars().count() > COMMAND_SHOWN {
                let short: String = cmd.chars().take(COMMAND_SHOWN).collect();
                format!("exec `{short}…`")
            } else {
                format!("exec `{cmd}`")
            }
        }
        CheckKind::Tcp(addr) => format!("tcp {addr}"),
        CheckKind::Udp { addr, .. } => format!("udp {addr}"),
        CheckKind::Presence => "presence".into(),
    }
}

/// An I/O error as a short reason: `connection refused` rather than
/// `Connection refused (os error 111)`.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error ") {
        Some(i) => &s[..i],
        None => s.as_str(),
    };
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Runs one probe: `Ok(what happened)` on success, `Err(why it failed)`.
async fn probe(spec: &HealthCheckSpec) -> Result<String, String> {
    let t = spec.timeout;
    match &spec.kind {
        CheckKind::Exec(cmd) => probe_exec(cmd, t).await,
        CheckKind::Tcp(addr) => {
            match tokio::time::timeout(t, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_stream)) => Ok("connected".into()),
                Ok(Err(e)) => Err(io_reason(&e)),
                Err(_) => Err(format!("no connection within {}", format_duration(t))),
            }
        }
        CheckKind::Udp { addr, send, expect } => {
            match tokio::time::timeout(t, probe_udp(*addr, send, expect.as_deref())).await {
                Ok(r) => r,
                Err(_) => Err(format!("no reply within {}", format_duration(t))),
            }
        }
        // The core probes for presence; setup never hands one to the driver.
        CheckKind::Presence => Err("presence is checked by the core".into()),
    }
}

async fn probe_udp(addr: SocketAddr, send: &[u8], expect: Option<&[u8]>) -> Result<String, String> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot bind a socket: {}", io_reason(&e)))?;
    // Connected, so that an ICMP port unreachable surfaces as an error on recv.
    sock.connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {}", io_reason(&e)))?;
    sock.send(send)
        .await
        .map_err(|e| format!("cannot send: {}", io_reason(&e)))?;
    let mut buf = vec![0u8; 2048.max(expect.map_or(0, <[u8]>::len))];
    let n = sock.recv(&mut buf).await.map_err(|e| io_reason(&e))?;
    let reply = buf.get(..n).unwrap_or_default();
    match expect {
        Some(exp) if !reply.starts_with(exp) => Err(format!(
            "unexpected reply ({n} bytes: {}{})",
            hex::encode(&reply[..n.min(16)]),
            if n > 16 { "…" } else { "" }
        )),
        _ => Ok(format!("reply of {n} bytes")),
    }
}

/// The captured output for a detail: stderr, or stdout if stderr is empty, on one line.
fn output_summary(stdout: &[u8], stderr: &[u8]) -> String {
    let pick = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    String::from_utf8_lossy(pick)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

async fn probe_exec(cmd: &str, t: Duration) -> Result<String, String> {
    let mut command = tokio::process::Command::new("/bin/sh");
    command.arg("-c").arg(cmd);
    let limits = child::Limits {
        timeout: t,
        capture: OUTPUT_LIMIT,
        leftovers: child::Leftovers::Kill,
    };
    let done = child::run(command, &limits).await.map_err(|e| match e {
        child::RunError::Spawn(e) => format!("cannot run /bin/sh: {}", io_reason(&e)),
        child::RunError::Wait(e) => format!("cannot wait for /bin/sh: {}", io_reason(&e)),
    })?;
    let output = output_summary(done.stdout.as_bytes(), done.stderr.as_bytes());
    if !output.is_empty() {
        tracing::debug!(command = cmd, "health check output: {output}");
    }
    let how = done.ending.to_string();
    if done.ending.success() {
        Ok(how)
    } else if output.is_empty() {
        Err(how)
    } else {
        Err(format!("{how}: {output}"))
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
