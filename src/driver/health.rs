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
//! * exec: `/bin/sh -c COMMAND` with stdin from `/dev/null`, in a process group of its own;
//!   exit status 0 is success. At the timeout the whole group is killed; processes the command
//!   leaves behind in its group when it exits are killed too (a probe runs twice a second, so
//!   leftovers would pile up). The first [`OUTPUT_LIMIT`] bytes of stdout and stderr are kept
//!   for the logs.
//! * tcp: a connect within the timeout is success.
//! * udp: from a fresh ephemeral socket, send the probe datagram and wait for any reply within
//!   the timeout (starting with `expect`, if given). An ICMP port unreachable fails it at once.

use crate::config::{format_duration, CheckKind, HealthCheckSpec};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How much of an exec check's stdout and of its stderr is kept.
pub const OUTPUT_LIMIT: usize = 512;

/// How long to wait for a killed exec check to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(1);

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

/// Kills a probe's process group when dropped while armed (the probe was aborted).
struct GroupKill {
    pgid: Option<Pid>,
    armed: bool,
}

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is already empty) is the normal case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

/// Reads a pipe to its end, keeping the first [`OUTPUT_LIMIT`] bytes.
async fn drain<R: AsyncRead + Unpin>(pipe: Option<R>, buf: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = [0u8; 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
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
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {}", io_reason(&e)))?;
    // Declared after `child`, so dropped first: the group is killed while the leader is
    // not yet reaped (its pid cannot have been reused).
    let mut group = GroupKill {
        pgid: child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
        armed: true,
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut status = None;
    let _ = tokio::time::timeout(t, async {
        let wait = async {
            let s = child.wait().await;
            // Leftovers in the group would keep the pipes open: kill them now.
            group.kill();
            group.armed = false;
            status = Some(s);
        };
        tokio::join!(wait, drain(stdout, &mut out), drain(stderr, &mut err));
    })
    .await;
    let output = output_summary(&out, &err);
    if !output.is_empty() {
        tracing::debug!(command = cmd, "health check output: {output}");
    }
    let with_output = |what: String| {
        if output.is_empty() {
            what
        } else {
            format!("{what}: {output}")
        }
    };
    match status {
        None => {
            group.kill();
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            group.armed = false;
            Err(with_output(format!(
                "timed out after {}, killed",
                format_duration(t)
            )))
        }
        Some(Err(e)) => Err(format!("cannot wait for /bin/sh: {}", io_reason(&e))),
        Some(Ok(st)) if st.success() => Ok("exit status 0".into()),
        Some(Ok(st)) => {
            use std::os::unix::process::ExitStatusExt;
            let how = match (st.code(), st.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                (None, None) => st.to_string(),
            };
            Err(with_output(how))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tokio::net::{TcpListener, TcpSocket, UdpSocket};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
    use tokio::time::Instant;

    fn spec(
        vip: &str,
        kind: CheckKind,
        interval_ms: u64,
        timeout_ms: u64,
        rise: u32,
        fall: u32,
    ) -> HealthCheckSpec {
        HealthCheckSpec {
            vip: vip.parse().unwrap(),
            kind,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            rise,
            fall,
            origin: "test:1".into(),
        }
    }

    async fn next(rx: &mut UnboundedReceiver<HealthChange>) -> HealthChange {
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("no health change within 3s")
            .expect("channel closed")
    }

    /// No change arrives within `d`.
    async fn quiet(rx: &mut UnboundedReceiver<HealthChange>, d: Duration) {
        if let Ok(c) = tokio::time::timeout(d, rx.recv()).await {
            panic!("unexpected change {c:?}");
        }
    }

    fn listen(addr: SocketAddr) -> TcpListener {
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        sock.bind(addr).unwrap();
        sock.listen(64).unwrap()
    }

    fn serve(listener: TcpListener) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        })
    }

    fn exec(cmd: impl Into<String>) -> CheckKind {
        CheckKind::Exec(cmd.into())
    }

    fn test_f(path: &Path) -> CheckKind {
        exec(format!("test -f '{}'", path.display()))
    }

    #[test]
    fn counter_rise_and_fall() {
        let mut c = Counter {
            rise: 2,
            fall: 3,
            healthy: false,
            successes: 0,
            failures: 0,
        };
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true).as_deref(), Some("rise 1/2"));
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true).as_deref(), Some("rise 1/2"));
        assert!(!c.healthy);
        assert_eq!(c.record(true).as_deref(), Some("rise 2/2"));
        assert!(c.healthy);
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(false).as_deref(), Some("fall 1/3"));
        assert_eq!(c.record(false).as_deref(), Some("fall 2/3"));
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(false).as_deref(), Some("fall 1/3"));
        assert_eq!(c.record(false).as_deref(), Some("fall 2/3"));
        assert_eq!(c.record(false).as_deref(), Some("fall 3/3"));
        assert!(!c.healthy);
    }

    #[test]
    fn reasons_and_descriptions() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&e), "connection refused");
        assert_eq!(
            describe(&CheckKind::Tcp("127.0.0.1:53".parse().unwrap())),
            "tcp 127.0.0.1:53"
        );
        let long = "x".repeat(100);
        assert_eq!(describe(&exec(long)), format!("exec `{}…`", "x".repeat(60)));
        assert_eq!(output_summary(b"out\n", b" \n"), "out");
        assert_eq!(output_summary(b"out", b"e1\n\ne2\n"), "e1 / e2");
    }

    #[tokio::test]
    async fn empty() {
        let (tx, mut rx) = unbounded_channel();
        let hc = HealthChecks::spawn(Vec::new(), tx);
        assert!(hc.is_empty());
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn tcp_fall_and_rise() {
        let listener = listen("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let server = serve(listener);
        let (tx, mut rx) = unbounded_channel();
        let hc = HealthChecks::spawn(
            vec![spec("10.1.1.10", CheckKind::Tcp(addr), 50, 200, 2, 2)],
            tx,
        );
        assert!(!hc.is_empty());
        // First verdict: not yet risen.
        let c = next(&mut rx).await;
        assert_eq!(c.vip, "10.1.1.10".parse::<IpAddr>().unwrap());
        assert!(!c.healthy);
        assert_eq!(c.detail, format!("tcp {addr}: connected (rise 1/2)"));
        let c = next(&mut rx).await;
        assert!(c.healthy);
        assert_eq!(c.detail, format!("tcp {addr}: connected (rise 2/2)"));

        server.abort();
        let _ = server.await;
        let t0 = Instant::now();
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        assert_eq!(
            c.detail,
            format!("tcp {addr}: connection refused (fall 2/2)")
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t0.elapsed()
        );

        let server = serve(listen(addr));
        let t0 = Instant::now();
        let c = next(&mut rx).await;
        assert!(c.healthy);
        assert_eq!(c.detail, format!("tcp {addr}: connected (rise 2/2)"));
        assert!(
            t0.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t0.elapsed()
        );
        drop(hc);
        server.abort();
    }

    #[tokio::test]
    async fn exec_file_toggle() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag");
        let (tx, mut rx) = unbounded_channel();
        let _hc = HealthChecks::spawn(vec![spec("10.1.1.10", test_f(&flag), 30, 1000, 1, 1)], tx);
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        assert!(c.detail.starts_with("exec `test -f"), "{}", c.detail);
        assert!(c.detail.ends_with(": exit status 1"), "{}", c.detail);
        std::fs::write(&flag, b"").unwrap();
        let c = next(&mut rx).await;
        assert!(c.healthy);
        assert!(
            c.detail.ends_with(": exit status 0 (rise 1/1)"),
            "{}",
            c.detail
        );
        std::fs::remove_file(&flag).unwrap();
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        assert!(
            c.detail.ends_with(": exit status 1 (fall 1/1)"),
            "{}",
            c.detail
        );
    }

    #[tokio::test]
    async fn exec_output_in_detail() {
        let (tx, mut rx) = unbounded_channel();
        let big = "y".repeat(2000);
        let _hc = HealthChecks::spawn(
            vec![spec(
                "10.1.1.10",
                exec(format!("echo {big}; echo 'dns down' >&2; exit 3")),
                1000,
                1000,
                1,
                1,
            )],
            tx,
        );
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        assert!(
            c.detail.ends_with(": exit status 3: dns down"),
            "{}",
            c.detail
        );
        assert_eq!(
            output_summary(&[b'y'; OUTPUT_LIMIT], b"").len(),
            OUTPUT_LIMIT
        );
    }

    fn process_gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // A zombie waiting for init to reap it is gone as far as we care.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn exec_timeout_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = format!("sleep 5 & echo $! > '{}'; wait", pidfile.display());
        let (tx, mut rx) = unbounded_channel();
        let t0 = Instant::now();
        let _hc = HealthChecks::spawn(vec![spec("10.1.1.10", exec(cmd), 10_000, 200, 1, 1)], tx);
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        assert!(
            c.detail.ends_with(": timed out after 200ms, killed"),
            "{}",
            c.detail
        );
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !process_gone(pid) {
            assert!(Instant::now() < deadline, "sleep {pid} still running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn udp_checks() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        let responder = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..n], from).await;
            }
        });
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.local_addr().unwrap()
        };
        let udp = |addr, send: &[u8], expect: Option<&[u8]>| CheckKind::Udp {
            addr,
            send: send.to_vec(),
            expect: expect.map(<[u8]>::to_vec),
        };
        let (tx, mut rx) = unbounded_channel();
        let _hc = HealthChecks::spawn(
            vec![
                spec(
                    "10.0.0.1",
                    udp(echo_addr, b"ping", Some(b"pi")),
                    100,
                    300,
                    1,
                    1,
                ),
                spec("10.0.0.2", udp(closed, b"ping", None), 100, 300, 1, 1),
                spec(
                    "10.0.0.3",
                    udp(echo_addr, b"ping", Some(b"zz")),
                    100,
                    300,
                    1,
                    1,
                ),
                spec("10.0.0.4", udp(echo_addr, b"", None), 100, 300, 1, 1),
            ],
            tx,
        );
        let mut got = std::collections::BTreeMap::new();
        while got.len() < 4 {
            let c = next(&mut rx).await;
            got.insert(c.vip.to_string(), (c.healthy, c.detail));
        }
        assert_eq!(
            got["10.0.0.1"],
            (
                true,
                format!("udp {echo_addr}: reply of 4 bytes (rise 1/1)")
            )
        );
        assert_eq!(
            got["10.0.0.2"],
            (false, format!("udp {closed}: connection refused"))
        );
        assert_eq!(
            got["10.0.0.3"],
            (
                false,
                format!("udp {echo_addr}: unexpected reply (4 bytes: 70696e67)")
            )
        );
        assert_eq!(
            got["10.0.0.4"],
            (
                true,
                format!("udp {echo_addr}: reply of 0 bytes (rise 1/1)")
            )
        );
        responder.abort();
    }

    #[tokio::test]
    async fn all_checks_of_a_vip_must_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (tx, mut rx) = unbounded_channel();
        let _hc = HealthChecks::spawn(
            vec![
                spec("10.1.1.10", test_f(&a), 30, 1000, 1, 1),
                spec("10.1.1.10", test_f(&b), 30, 1000, 1, 1),
            ],
            tx,
        );
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        std::fs::write(&a, b"").unwrap();
        quiet(&mut rx, Duration::from_millis(200)).await;
        std::fs::write(&b, b"").unwrap();
        let c = next(&mut rx).await;
        assert!(c.healthy);
        assert!(
            c.detail.contains("/b'`: exit status 0 (rise 1/1)"),
            "{}",
            c.detail
        );
        std::fs::remove_file(&a).unwrap();
        let c = next(&mut rx).await;
        assert!(!c.healthy);
        assert!(
            c.detail.contains("/a'`: exit status 1 (fall 1/1)"),
            "{}",
            c.detail
        );
        quiet(&mut rx, Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn dropping_stops_the_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        // Flips between success and failure on every probe.
        let flip = format!(
            "if [ -f '{0}' ]; then rm '{0}'; exit 1; else touch '{0}'; fi",
            f.display()
        );
        let (tx, mut rx) = unbounded_channel();
        let hc = HealthChecks::spawn(vec![spec("10.1.1.10", exec(flip), 20, 1000, 1, 1)], tx);
        for _ in 0..3 {
            next(&mut rx).await;
        }
        drop(hc);
        // Every sender is gone once the tasks are: the channel closes after at most the
        // changes already queued.
        let mut late = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
                Ok(Some(_)) => late += 1,
                Ok(None) => break,
                Err(_) => panic!("health check tasks still running after drop"),
            }
        }
        assert!(late <= 1, "{late} changes after drop");
    }
}
