//! tinc's scripts (`tinc-up`, `host-up`, `hosts/NODE-up`, `subnet-up`, …), run
//! one at a time by a task of their own so the packet loop never waits for one.
//!
//! tincd runs its scripts synchronously and forwards nothing meanwhile; meshd
//! queues them instead. A single task runs them strictly in submission order,
//! which keeps tinc's order (`tinc-up` first, `host-up` before that host's
//! `subnet-up`s, `tinc-down` last). Each script runs through [`child::run`]: with
//! a deadline and in a process group of its own, so a hung script is killed with
//! everything it started; processes a script leaves running in the background
//! after it exits normally are not touched (as with tinc's `system()`).

use super::child::{self, Ending};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

/// How many requests may wait; beyond that, [`ScriptRunner::submit`] drops
/// them with a warning.
pub const QUEUE_CAPACITY: usize = 65536;

/// How much of a script's stdout and of its stderr is kept.
pub const CAPTURE_LIMIT: usize = 4096;

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
    /// `DEBUG`: the daemon's debug level; `None` (not exported) for the scripts the CLI runs
    /// (`invitation-created`), as tinc.
    pub debug: Option<u8>,
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
            debug: Some(0),
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
    /// It exited with a non-zero status, was killed by a signal, or ran past the
    /// runner's timeout (its process group was then killed).
    Failed {
        /// How it ended.
        ending: Ending,
        /// The start of its stderr (at most [`CAPTURE_LIMIT`] bytes).
        stderr: String,
    },
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
        // Relative program paths with a different cwd are ambiguous: make it absolute. But
        // `.` (under -R) is the daemon's working directory for good, before and after the
        // chroot, where an absolute path would no longer name it.
        let confdir = if confdir == std::path::Path::new(".") {
            confdir
        } else {
            std::path::absolute(&confdir).unwrap_or(confdir)
        };
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
                let mut cmd = Command::new(parts[0]);
                cmd.args(&parts[1..]).arg(&path);
                cmd
            }
            None => Command::new(&path),
        };
        self.set_env(&mut cmd, req);
        cmd.current_dir(&self.confdir);
        let limits = child::Limits {
            timeout: self.timeout,
            capture: CAPTURE_LIMIT,
            leftovers: child::Leftovers::Leave,
        };
        let done = match child::run(cmd, &limits).await {
            Ok(done) => done,
            Err(err) => {
                let msg = match (&err, &interpreter) {
                    (child::RunError::Spawn(e), Some(parts)) => format!(
                        "cannot run script {} with interpreter {}: {e}",
                        path.display(),
                        parts.join(" ")
                    ),
                    (child::RunError::Spawn(e), None) => {
                        // Under -R the script's `#!` interpreter must be inside the directory.
                        let hint = if self.confdir == std::path::Path::new(".")
                            && e.kind() == std::io::ErrorKind::NotFound
                        {
                            " (chrooted by -R: its interpreter, e.g. /bin/sh, and what it runs \
                             must be inside the network directory)"
                        } else {
                            ""
                        };
                        format!("cannot run script {}: {e}{hint}", path.display())
                    }
                    (child::RunError::Wait(e), _) => {
                        format!("cannot wait for script {}: {e}", path.display())
                    }
                };
                tracing::warn!(
                    node = req.get("NODE"),
                    subnet = req.get("SUBNET"),
                    script,
                    "{msg}"
                );
                return ScriptOutcome::SpawnError(msg);
            }
        };
        log_output(script, &done.stdout, &done.stderr);
        if done.ending.success() {
            return ScriptOutcome::Ok;
        }
        let how = done.ending;
        let trimmed = done.stderr.trim();
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
            ending: done.ending,
            stderr: done.stderr,
        }
    }

    fn set_env(&self, cmd: &mut Command, req: &ScriptRequest) {
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
        if let Some(level) = env.debug {
            cmd.env("DEBUG", level.to_string());
        }
        for (key, value) in &req.vars {
            cmd.env(key, value);
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

/// The path a request resolves to (for diagnostics, e.g. `fsck`).
pub fn script_path(confdir: &Path, env: &ScriptEnv, script: &str) -> PathBuf {
    confdir.join(format!("{script}{}", env.extension))
}

#[cfg(test)]
#[path = "scripts_tests.rs"]
mod tests;
