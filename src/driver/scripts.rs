//! tinc's scripts (`tinc-up`, `host-up`, `hosts/NODE-up`, `subnet-up`, …), run
//! one at a time by a task of their own so the packet loop never waits for one.
//!
//! tincd runs its scripts synchronously and forwards nothing meanwhile; meshd
//! queues them instead. A single task runs them strictly in submission order,
//! which keeps tinc's order (`tinc-up` first, `host-up` before that host's
//! `subnet-up`s, `tinc-down` last). Each script runs with a deadline and in a
//! process group of its own, so a hung script is killed with everything it
//! started; processes a script leaves running in the background after it
//! exits normally are not touched (as with tinc's `system()`).

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

/// How many requests may wait; beyond that, [`ScriptRunner::submit`] drops
/// them with a warning.
pub const QUEUE_CAPACITY: usize = 65536;

/// How much of a script's stdout and of its stderr is kept.
pub const CAPTURE_LIMIT: usize = 4096;

/// How long to wait for a script's output pipes to close after it exited (a
/// background process it started may hold them open).
const PIPE_GRACE: Duration = Duration::from_millis(100);

/// How long to wait for a killed script to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// The variables every script gets, and how scripts are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEnv {
    /// `NETNAME`: set only when the daemon was started with a network name
    /// (`-n`); otherwise removed from the environment.
    pub netname: Option<String>,
    /// `NAME`: our own node name.
    pub name: String,
    /// `DEVICE`, e.g. `/dev/net/tun` (omitted when empty).
    pub device: String,
    /// `INTERFACE`: the TAP interface's real name (omitted when empty).
    pub interface: String,
    /// `DEBUG`: the current debug level.
    pub debug: u8,
    /// tinc's `ScriptsInterpreter`: when set, scripts run as
    /// `INTERPRETER PATH` and need not be executable. Split on whitespace, so
    /// `/usr/bin/env bash` works (no shell quoting). Not exported.
    pub interpreter: Option<String>,
    /// tinc's `ScriptsExtension`, appended to every script's file name
    /// (e.g. `.sh` runs `tinc-up.sh`). Not exported.
    pub extension: String,
}

impl Default for ScriptEnv {
    fn default() -> Self {
        ScriptEnv {
            netname: None,
            name: String::new(),
            device: "/dev/net/tun".into(),
            interface: String::new(),
            debug: 0,
            interpreter: None,
            extension: String::new(),
        }
    }
}

/// One script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRequest {
    /// The script's path relative to the network directory, without
    /// `ScriptsExtension`: `tinc-up`, `host-up`, `hosts/alpha-up`,
    /// `subnet-up`, `vip-up`…
    pub script: String,
    /// Extra variables: `NODE`, `REMOTEADDRESS`, `REMOTEPORT`, `SUBNET`,
    /// `WEIGHT`, `VIP`… An empty value is exported as an empty variable.
    pub vars: Vec<(String, String)>,
}

impl ScriptRequest {
    /// A request for `script` with no extra variables.
    pub fn new(script: impl Into<String>) -> ScriptRequest {
        ScriptRequest {
            script: script.into(),
            vars: Vec::new(),
        }
    }

    /// Adds the variable `key=value`.
    pub fn var(mut self, key: impl Into<String>, value: impl Into<String>) -> ScriptRequest {
        self.vars.push((key.into(), value.into()));
        self
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What became of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// It ran and exited with status 0.
    Ok,
    /// There is no such file: nothing to do (the normal case).
    Missing,
    /// The file exists but is not executable and no `ScriptsInterpreter` is set.
    NotExecutable,
    /// It exited with a non-zero status or was killed by a signal.
    Failed {
        /// The exit code, if it exited.
        code: Option<i32>,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
        /// The start of its stderr (at most [`CAPTURE_LIMIT`] bytes).
        stderr: String,
    },
    /// It ran past the runner's timeout; its process group was killed.
    TimedOut,
    /// It could not be started (or the runner is gone); the reason.
    SpawnError(String),
}

enum Job {
    Run {
        req: ScriptRequest,
        done: Option<oneshot::Sender<ScriptOutcome>>,
    },
    Barrier(oneshot::Sender<()>),
    SetEnv(Box<ScriptEnv>),
}

/// A handle to the task that runs scripts one after another. Cheap to clone;
/// when every handle is dropped the task runs what is queued and ends.
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    tx: mpsc::Sender<Job>,
    full_warned: Arc<AtomicBool>,
    /// Requests dropped because the queue was full.
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl ScriptRunner {
    /// Starts the runner task on the current tokio runtime (panics outside
    /// one). Scripts live under `confdir` and run there; each gets `timeout`
    /// before its process group is killed.
    pub fn spawn(confdir: PathBuf, env: ScriptEnv, timeout: Duration) -> ScriptRunner {
        Self::spawn_bounded(confdir, env, timeout, QUEUE_CAPACITY)
    }

    /// [`ScriptRunner::spawn`] with a queue of `capacity` requests.
    fn spawn_bounded(
        confdir: PathBuf,
        env: ScriptEnv,
        timeout: Duration,
        capacity: usize,
    ) -> ScriptRunner {
        // Relative program paths with a different cwd are ambiguous: make it absolute.
        let confdir = std::path::absolute(&confdir).unwrap_or(confdir);
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let worker = Worker {
            confdir,
            env,
            timeout,
            warned_not_executable: HashSet::new(),
        };
        tokio::spawn(worker.run(rx));
        ScriptRunner {
            tx,
            full_warned: Arc::new(AtomicBool::new(false)),
            dropped: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Queues a script. Never blocks; if the queue is full the request is
    /// dropped with a warning.
    pub fn submit(&self, req: ScriptRequest) {
        self.enqueue(Job::Run { req, done: None });
    }

    /// Queues new variables/interpreter settings for the scripts submitted
    /// after this call (e.g. after a reload or a debug level change).
    pub fn set_env(&self, env: ScriptEnv) {
        self.enqueue(Job::SetEnv(Box::new(env)));
    }

    fn enqueue(&self, job: Job) {
        match self.tx.try_send(job) {
            Ok(()) => self.full_warned.store(false, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(job)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.full_warned.swap(true, Ordering::Relaxed) {
                    let what = match &job {
                        Job::Run { req, .. } => req.script.clone(),
                        Job::SetEnv(_) => "(script settings)".into(),
                        Job::Barrier(_) => "(barrier)".into(),
                    };
                    tracing::warn!(
                        "script queue full ({QUEUE_CAPACITY} waiting), dropping {what} and further requests until it drains"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("script runner has stopped, request dropped");
            }
        }
    }

    /// The queue's bound for `dump limits`: requests waiting (the one running
    /// excluded), the capacity ([`QUEUE_CAPACITY`]), and requests dropped because it was full.
    pub fn queue_limit(&self) -> crate::node::Limit {
        crate::node::Limit::refusing(
            "script_queue",
            self.tx.max_capacity().saturating_sub(self.tx.capacity()),
            self.tx.max_capacity(),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Runs a script after everything queued before it and waits for it
    /// (for `tinc-up` at startup and `tinc-down` at shutdown).
    pub async fn run_now(&self, req: ScriptRequest) -> ScriptOutcome {
        let (done, rx) = oneshot::channel();
        let script = req.script.clone();
        if self
            .tx
            .send(Job::Run {
                req,
                done: Some(done),
            })
            .await
            .is_err()
        {
            return ScriptOutcome::SpawnError(format!(
                "cannot run {script}: the script runner has stopped"
            ));
        }
        rx.await.unwrap_or_else(|_| {
            ScriptOutcome::SpawnError(format!("{script}: the script runner has stopped"))
        })
    }

    /// Waits until everything queued so far has run, for at most `deadline`.
    /// Returns whether the queue drained in time.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let (done, rx) = oneshot::channel();
        tokio::time::timeout(deadline, async {
            if self.tx.send(Job::Barrier(done)).await.is_err() {
                return true; // no runner: nothing left to run
            }
            rx.await.is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

struct Worker {
    confdir: PathBuf,
    env: ScriptEnv,
    timeout: Duration,
    /// Scripts already reported as not executable (warned once per daemon run).
    warned_not_executable: HashSet<PathBuf>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            match job {
                Job::Run { req, done } => {
                    let outcome = self.run_one(&req).await;
                    if let Some(done) = done {
                        let _ = done.send(outcome);
                    }
                }
                Job::Barrier(done) => {
                    let _ = done.send(());
                }
                Job::SetEnv(env) => self.env = *env,
            }
        }
    }

    async fn run_one(&mut self, req: &ScriptRequest) -> ScriptOutcome {
        let script = req.script.as_str();
        let path = script_path(&self.confdir, &self.env, script);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(script, path = %path.display(), "no such script, skipped");
                return ScriptOutcome::Missing;
            }
            Err(err) => {
                let msg = format!("cannot access script {}: {err}", path.display());
                tracing::warn!("{msg}");
                return ScriptOutcome::SpawnError(msg);
            }
        };
        let interpreter = self
            .env
            .interpreter
            .as_deref()
            .map(|i| i.split_whitespace().collect::<Vec<_>>())
            .filter(|parts| !parts.is_empty());
        if interpreter.is_none() && meta.permissions().mode() & 0o111 == 0 {
            if self.warned_not_executable.insert(path.clone()) {
                tracing::warn!(
                    "Script {} exists but is not executable (chmod +x), not run",
                    path.display()
                );
            } else {
                tracing::debug!(script, "script is not executable, not run");
            }
            return ScriptOutcome::NotExecutable;
        }
        self.warned_not_executable.remove(&path);

        tracing::info!(
            node = req.get("NODE"),
            subnet = req.get("SUBNET"),
            "Executing script {script}"
        );
        let mut cmd = match &interpreter {
            Some(parts) => {
                let mut cmd = tokio::process::Command::new(parts[0]);
                cmd.args(&parts[1..]).arg(&path);
                cmd
            }
            None => tokio::process::Command::new(&path),
        };
        self.set_env(&mut cmd, req);
        cmd.current_dir(&self.confdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = match spawn_retrying(&mut cmd).await {
            Ok(child) => child,
            Err(err) => {
                let msg = match &interpreter {
                    Some(parts) => format!(
                        "cannot run script {} with interpreter {}: {err}",
                        path.display(),
                        parts.join(" ")
                    ),
                    None => format!("cannot run script {}: {err}", path.display()),
                };
                tracing::warn!("{msg}");
                return ScriptOutcome::SpawnError(msg);
            }
        };
        let pid = child.id();
        let stdout = Capture::start(child.stdout.take());
        let stderr = Capture::start(child.stderr.take());

        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(err)) => Err(Some(err)),
            Err(_elapsed) => Err(None),
        };
        let status = match status {
            Ok(status) => status,
            Err(err) => {
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    if let Err(e) = killpg(Pid::from_raw(pid), Signal::SIGKILL) {
                        tracing::debug!(script, %e, "killpg");
                    }
                }
                let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
                let out = stdout.finish().await;
                let err_out = stderr.finish().await;
                log_output(script, &out, &err_out);
                return match err {
                    None => {
                        tracing::warn!(
                            node = req.get("NODE"),
                            subnet = req.get("SUBNET"),
                            "Script {script} did not finish, killed after {:?}",
                            self.timeout
                        );
                        ScriptOutcome::TimedOut
                    }
                    Some(err) => {
                        let msg = format!("cannot wait for script {}: {err}", path.display());
                        tracing::warn!("{msg}");
                        ScriptOutcome::SpawnError(msg)
                    }
                };
            }
        };
        let out = stdout.finish().await;
        let err_out = stderr.finish().await;
        log_output(script, &out, &err_out);
        if status.success() {
            return ScriptOutcome::Ok;
        }
        let code = status.code();
        let signal = status.signal();
        let how = match (code, signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => format!("ended with {status}"),
        };
        let trimmed = err_out.trim();
        if trimmed.is_empty() {
            tracing::warn!(
                node = req.get("NODE"),
                subnet = req.get("SUBNET"),
                "Script {script} {how}"
            );
        } else {
            tracing::warn!(
                node = req.get("NODE"),
                subnet = req.get("SUBNET"),
                "Script {script} {how}: {trimmed}"
            );
        }
        ScriptOutcome::Failed {
            code,
            signal,
            stderr: err_out,
        }
    }

    fn set_env(&self, cmd: &mut tokio::process::Command, req: &ScriptRequest) {
        let env = &self.env;
        match &env.netname {
            Some(net) => cmd.env("NETNAME", net),
            None => cmd.env_remove("NETNAME"),
        };
        cmd.env("NAME", &env.name);
        if !env.device.is_empty() {
            cmd.env("DEVICE", &env.device);
        }
        if !env.interface.is_empty() {
            cmd.env("INTERFACE", &env.interface);
        }
        cmd.env("DEBUG", env.debug.to_string());
        for (key, value) in &req.vars {
            cmd.env(key, value);
        }
    }
}

/// Spawns, retrying briefly on ETXTBSY: a script that was just written may
/// still be open for writing in a process forked meanwhile (until it execs).
async fn spawn_retrying(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) && tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

fn log_output(script: &str, stdout: &str, stderr: &str) {
    let out = stdout.trim();
    if !out.is_empty() {
        tracing::debug!(script, "stdout: {out}");
    }
    let err = stderr.trim();
    if !err.is_empty() {
        tracing::debug!(script, "stderr: {err}");
    }
}

/// Reads a pipe to its end, keeping the first [`CAPTURE_LIMIT`] bytes.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Capture {
    fn start<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let task = pipe.map(|mut pipe| {
            let buf = buf.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                loop {
                    match pipe.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                            let room = CAPTURE_LIMIT.saturating_sub(b.len());
                            b.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
            })
        });
        Capture { buf, task }
    }

    /// What was captured once the pipe closed, or after a short grace if a
    /// background process still holds it (the reader then keeps draining it,
    /// detached, so that process never blocks on a full pipe).
    async fn finish(self) -> String {
        if let Some(task) = self.task {
            let _ = tokio::time::timeout(PIPE_GRACE, task).await;
        }
        let b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// The path a request resolves to (for diagnostics, e.g. `fsck`).
pub fn script_path(confdir: &Path, env: &ScriptEnv, script: &str) -> PathBuf {
    confdir.join(format!("{script}{}", env.extension))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn write_script(dir: &Path, rel: &str, body: &str, mode: u32) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, body).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn env() -> ScriptEnv {
        ScriptEnv {
            netname: None,
            name: "gamma".into(),
            device: "/dev/net/tun".into(),
            interface: "tinc0".into(),
            debug: 3,
            interpreter: None,
            extension: String::new(),
        }
    }

    fn runner(dir: &Path, timeout: Duration) -> ScriptRunner {
        ScriptRunner::spawn(dir.to_path_buf(), env(), timeout)
    }

    fn alive(pid: i32) -> bool {
        if nix::sys::signal::kill(Pid::from_raw(pid), None).is_err() {
            return false;
        }
        // A zombie waiting for a reaper is dead too.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    fn read_pid(path: &Path) -> i32 {
        std::fs::read_to_string(path)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    #[tokio::test]
    async fn exports_exactly_the_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "subnet-up",
            "#!/bin/sh\nenv > env.out\npwd > pwd.out\n",
            0o755,
        );
        let r = runner(dir.path(), Duration::from_secs(10));
        let req = ScriptRequest::new("subnet-up")
            .var("NODE", "alpha")
            .var("REMOTEADDRESS", "192.0.2.1")
            .var("REMOTEPORT", "655")
            .var("SUBNET", "10.99.0.100")
            .var("WEIGHT", "");
        assert_eq!(r.run_now(req.clone()).await, ScriptOutcome::Ok);
        let out = std::fs::read_to_string(dir.path().join("env.out")).expect("env.out");
        let lines: Vec<&str> = out.lines().collect();
        for want in [
            "NAME=gamma",
            "DEVICE=/dev/net/tun",
            "INTERFACE=tinc0",
            "DEBUG=3",
            "NODE=alpha",
            "REMOTEADDRESS=192.0.2.1",
            "REMOTEPORT=655",
            "SUBNET=10.99.0.100",
            "WEIGHT=",
        ] {
            assert!(lines.contains(&want), "{want} missing in {out}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("NETNAME=")), "{out}");
        let pwd = std::fs::read_to_string(dir.path().join("pwd.out")).expect("pwd.out");
        assert_eq!(
            std::fs::canonicalize(pwd.trim()).expect("canon"),
            std::fs::canonicalize(dir.path()).expect("canon")
        );

        r.set_env(ScriptEnv {
            netname: Some("vpn".into()),
            ..env()
        });
        assert_eq!(r.run_now(req).await, ScriptOutcome::Ok);
        let out = std::fs::read_to_string(dir.path().join("env.out")).expect("env.out");
        assert!(out.lines().any(|l| l == "NETNAME=vpn"), "{out}");
    }

    #[tokio::test]
    async fn full_queue_refuses_counts_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "host-up",
            "#!/bin/sh\necho \"$SEQ\" >> order.out\n",
            0o755,
        );
        let r = ScriptRunner::spawn_bounded(
            dir.path().to_path_buf(),
            env(),
            Duration::from_secs(10),
            8,
        );
        // The runner task gets no turn before the first await: 8 fit, 5 are refused.
        for i in 0..13 {
            r.submit(ScriptRequest::new("host-up").var("SEQ", i.to_string()));
        }
        let l = r.queue_limit();
        assert_eq!(
            (l.name.as_str(), l.in_use, l.cap, l.refused),
            ("script_queue", 8, 8, 5)
        );
        assert!(r.drain(Duration::from_secs(20)).await);
        // Drained, it takes requests again.
        r.submit(ScriptRequest::new("host-up").var("SEQ", "99"));
        assert!(r.drain(Duration::from_secs(20)).await);
        let out = std::fs::read_to_string(dir.path().join("order.out")).expect("order.out");
        let want: Vec<String> = (0..8)
            .map(|i| i.to_string())
            .chain(["99".to_string()])
            .collect();
        assert_eq!(out.lines().collect::<Vec<_>>(), want);
        assert_eq!(r.queue_limit().in_use, 0);
        assert_eq!(r.queue_limit().refused, 5);
    }

    #[tokio::test]
    async fn runs_in_submission_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "host-up",
            "#!/bin/sh\necho \"$SEQ\" >> order.out\n",
            0o755,
        );
        let r = runner(dir.path(), Duration::from_secs(10));
        for i in 0..20 {
            r.submit(ScriptRequest::new("host-up").var("SEQ", i.to_string()));
        }
        assert!(r.drain(Duration::from_secs(20)).await);
        let out = std::fs::read_to_string(dir.path().join("order.out")).expect("order.out");
        let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(out.lines().collect::<Vec<_>>(), want);
    }

    #[tokio::test]
    async fn hung_script_is_killed_with_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "host-up",
            "#!/bin/sh\nsleep 60 &\necho $! > sleep.pid\necho $$ > sh.pid\nwait\n",
            0o755,
        );
        write_script(
            dir.path(),
            "host-down",
            "#!/bin/sh\ntouch next.out\n",
            0o755,
        );
        let r = runner(dir.path(), Duration::from_millis(300));
        let started = Instant::now();
        r.submit(ScriptRequest::new("host-up"));
        let next = r.run_now(ScriptRequest::new("host-down")).await;
        assert_eq!(next, ScriptOutcome::Ok);
        assert!(dir.path().join("next.out").exists());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            r.run_now(ScriptRequest::new("host-up")).await,
            ScriptOutcome::TimedOut
        );
        for file in ["sleep.pid", "sh.pid"] {
            let pid = read_pid(&dir.path().join(file));
            let deadline = Instant::now() + Duration::from_secs(2);
            while alive(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(!alive(pid), "{file}: {pid} survived the timeout");
        }
    }

    #[tokio::test]
    async fn background_process_of_a_finished_script_survives() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "tinc-up",
            "#!/bin/sh\nsleep 30 &\necho $! > bg.pid\n",
            0o755,
        );
        let r = runner(dir.path(), Duration::from_secs(5));
        let started = Instant::now();
        assert_eq!(
            r.run_now(ScriptRequest::new("tinc-up")).await,
            ScriptOutcome::Ok
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let pid = read_pid(&dir.path().join("bg.pid"));
        assert!(alive(pid), "the background process was killed");
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }

    #[tokio::test]
    async fn missing_not_executable_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = runner(dir.path(), Duration::from_secs(10));
        assert_eq!(
            r.run_now(ScriptRequest::new("tinc-up")).await,
            ScriptOutcome::Missing
        );
        assert_eq!(
            r.run_now(ScriptRequest::new("hosts/alpha-up")).await,
            ScriptOutcome::Missing
        );
        write_script(dir.path(), "tinc-down", "#!/bin/sh\ntouch ran\n", 0o644);
        for _ in 0..2 {
            assert_eq!(
                r.run_now(ScriptRequest::new("tinc-down")).await,
                ScriptOutcome::NotExecutable
            );
        }
        assert!(!dir.path().join("ran").exists());
        write_script(
            dir.path(),
            "hosts/alpha-down",
            "#!/bin/sh\necho boom >&2\nexit 3\n",
            0o755,
        );
        match r.run_now(ScriptRequest::new("hosts/alpha-down")).await {
            ScriptOutcome::Failed {
                code,
                signal,
                stderr,
            } => {
                assert_eq!(code, Some(3));
                assert_eq!(signal, None);
                assert!(stderr.contains("boom"), "{stderr:?}");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        write_script(dir.path(), "vip-up", "#!/bin/sh\nkill -9 $$\n", 0o755);
        match r.run_now(ScriptRequest::new("vip-up")).await {
            ScriptOutcome::Failed { code, signal, .. } => {
                assert_eq!(code, None);
                assert_eq!(signal, Some(9));
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn output_is_capped_and_never_blocks_the_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "subnet-up",
            "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' o\nhead -c 200000 /dev/zero | tr '\\0' e >&2\nexit 1\n",
            0o755,
        );
        let r = runner(dir.path(), Duration::from_secs(10));
        match r.run_now(ScriptRequest::new("subnet-up")).await {
            ScriptOutcome::Failed { code, stderr, .. } => {
                assert_eq!(code, Some(1));
                assert_eq!(stderr.len(), CAPTURE_LIMIT);
                assert!(stderr.bytes().all(|b| b == b'e'));
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn run_now_waits_for_earlier_scripts() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "host-up",
            "#!/bin/sh\nsleep 0.1\necho x >> done.out\n",
            0o755,
        );
        write_script(dir.path(), "tinc-down", "#!/bin/sh\nexit 0\n", 0o755);
        let r = runner(dir.path(), Duration::from_secs(10));
        for _ in 0..3 {
            r.submit(ScriptRequest::new("host-up"));
        }
        assert_eq!(
            r.run_now(ScriptRequest::new("tinc-down")).await,
            ScriptOutcome::Ok
        );
        let out = std::fs::read_to_string(dir.path().join("done.out")).expect("done.out");
        assert_eq!(out.lines().count(), 3);
    }

    #[tokio::test]
    async fn interpreter_and_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(
            dir.path(),
            "tinc-up.sh",
            "echo \"$NAME $INTERFACE\" > interp.out\n",
            0o644,
        );
        let r = ScriptRunner::spawn(
            dir.path().to_path_buf(),
            ScriptEnv {
                interpreter: Some("/bin/sh".into()),
                extension: ".sh".into(),
                ..env()
            },
            Duration::from_secs(10),
        );
        assert_eq!(
            r.run_now(ScriptRequest::new("tinc-up")).await,
            ScriptOutcome::Ok
        );
        let out = std::fs::read_to_string(dir.path().join("interp.out")).expect("interp.out");
        assert_eq!(out.trim(), "gamma tinc0");
        assert_eq!(
            r.run_now(ScriptRequest::new("tinc-down")).await,
            ScriptOutcome::Missing
        );
        r.set_env(ScriptEnv {
            interpreter: Some("/nonexistent/interpreter".into()),
            extension: ".sh".into(),
            ..env()
        });
        assert!(matches!(
            r.run_now(ScriptRequest::new("tinc-up")).await,
            ScriptOutcome::SpawnError(_)
        ));
    }

    #[tokio::test]
    async fn submit_never_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(dir.path(), "tinc-up", "#!/bin/sh\nsleep 1\n", 0o755);
        let r = runner(dir.path(), Duration::from_secs(10));
        r.submit(ScriptRequest::new("tinc-up"));
        // Let the runner start the sleeping script.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        for i in 0..1000 {
            r.submit(ScriptRequest::new(format!("hosts/n{i}-up")).var("NODE", format!("n{i}")));
        }
        let took = started.elapsed();
        assert!(took < Duration::from_millis(200), "submit took {took:?}");
        assert!(r.drain(Duration::from_secs(20)).await);
    }

    #[tokio::test]
    async fn drain_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_script(dir.path(), "tinc-up", "#!/bin/sh\nsleep 2\n", 0o755);
        let r = runner(dir.path(), Duration::from_secs(10));
        r.submit(ScriptRequest::new("tinc-up"));
        let started = Instant::now();
        assert!(!r.drain(Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
