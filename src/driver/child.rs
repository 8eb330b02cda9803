//! Running one child process to its end, for tinc's scripts and exec health checks alike:
//! a process group of its own, stdin from `/dev/null`, stdout and stderr captured up to a
//! cap, a deadline after which the whole group is killed, the reap, and an [`Ending`] that
//! says how it ended.
//!
//! The caller builds the [`Command`] (program, arguments, environment, working directory);
//! [`run`] owns everything after that. Nothing here blocks the caller's thread: the pipes
//! are read by tasks of their own, which keep draining them (detached, bounded memory) if a
//! process the child left behind still holds them once [`run`] has returned, so that process
//! never stalls on a full pipe.
//!
//! One grace period, [`GRACE`], bounds everything after the child's end (its exit, or the
//! SIGKILL at the deadline): reaping a killed child and collecting its output. See there why
//! it is 200 ms.

use crate::config::format_duration;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long, after a child's end, [`run`] waits for the rest: for a child killed at its
/// deadline to be reaped, and for its stdout and stderr to close.
///
/// A SIGKILLed process is reaped within milliseconds, even on a loaded machine; one that is
/// not reaped by then is stuck in the kernel (uninterruptible sleep) and may stay so for
/// long, so waiting longer buys nothing: tokio reaps it in the background later. A pipe still
/// open after the grace is held by a process the child left running (a script's daemon, or
/// one that escaped the group with `setsid`); its reader carries on detached. 200 ms keeps a
/// health check that probes twice a second on schedule and the script queue moving (scripts
/// run one at a time), while leaving a loaded machine ample time to deliver a kill.
pub const GRACE: Duration = Duration::from_millis(200);

/// What to do with the processes still in the child's group once the child itself exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// Leave them running, as tinc's `system()` does (a `tinc-up` may start a daemon).
    Leave,
    /// Kill them (a health check runs twice a second: leftovers would pile up).
    Kill,
}

/// How to run a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long the child may run before its whole process group is killed.
    pub timeout: Duration,
    /// How many bytes of stdout, and of stderr, are kept (the rest is read and dropped).
    pub capture: usize,
    /// What becomes of the group's other processes once the child exited.
    pub leftovers: Leftovers,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (one it did not get from us).
    Signaled(i32),
    /// It ran past this timeout; its whole process group was killed.
    TimedOut(Duration),
}

impl Ending {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        *self == Ending::Exited(0)
    }

    fn from_status(status: ExitStatus) -> Ending {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Signaled(signal),
            // `wait` without WUNTRACED reports only exits and deaths by signal; should a
            // platform report something else, its raw status is the best description.
            (None, None) => Ending::Exited(status.into_raw()),
        }
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exited with status {code}"),
            Ending::Signaled(signal) => write!(f, "killed by signal {signal}"),
            Ending::TimedOut(t) => {
                write!(f, "timed out after {}, group killed", format_duration(*t))
            }
        }
    }
}

/// A child that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// The start of its stdout (at most [`Limits::capture`] bytes, lossily decoded).
    pub stdout: String,
    /// The start of its stderr (at most [`Limits::capture`] bytes, lossily decoded).
    pub stderr: String,
}

/// Why a child could not be run to its end.
#[derive(Debug)]
pub enum RunError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// Waiting for it failed (its group was killed).
    Wait(std::io::Error),
}

impl RunError {
    /// The I/O error behind it.
    pub fn io(&self) -> &std::io::Error {
        match self {
            RunError::Spawn(e) | RunError::Wait(e) => e,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start it: {e}"),
            RunError::Wait(e) => write!(f, "cannot wait for it: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `cmd` to its end within `limits`. Its stdin, stdout, stderr and process group are
/// set here. If the returned future is dropped before the end (an aborted task), the
/// child's whole group is killed.
pub async fn run(mut cmd: Command, limits: &Limits) -> Result<Finished, RunError> {
    cmd.stdin(null_stdin())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = spawn_retrying(&mut cmd).await.map_err(RunError::Spawn)?;
    // Declared after `child`, so dropped first: an aborted run kills the group while its
    // leader is not yet reaped (so its pid, the group's id, cannot have been reused).
    let mut group = GroupKill::of(&child);
    let stdout = Capture::start(child.stdout.take(), limits.capture);
    let stderr = Capture::start(child.stderr.take(), limits.capture);

    let waited = tokio::time::timeout(limits.timeout, child.wait()).await;
    let grace_end = Instant::now() + GRACE;
    let ending = match waited {
        Ok(Ok(status)) => {
            if limits.leftovers == Leftovers::Kill {
                // Leftovers would also keep the pipes open.
                group.kill();
            }
            group.disarm();
            Ending::from_status(status)
        }
        Ok(Err(err)) => {
            group.kill();
            reap(&mut child, grace_end).await;
            group.disarm();
            return Err(RunError::Wait(err));
        }
        Err(_elapsed) => {
            group.kill();
            reap(&mut child, grace_end).await;
            group.disarm();
            Ending::TimedOut(limits.timeout)
        }
    };
    Ok(Finished {
        ending,
        stdout: stdout.finish(grace_end).await,
        stderr: stderr.finish(grace_end).await,
    })
}

/// `/dev/null`, opened once and kept: children still get it as stdin after a chroot (-R)
/// has hidden `/dev`.
static DEV_NULL: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();

/// Opens `/dev/null` for every later child (call before a chroot).
pub fn keep_dev_null() {
    DEV_NULL.get_or_init(|| std::fs::File::open("/dev/null").ok());
}

/// A child's stdin: the kept `/dev/null`, else a fresh one.
fn null_stdin() -> Stdio {
    keep_dev_null();
    match DEV_NULL.get().and_then(|f| f.as_ref()?.try_clone().ok()) {
        Some(file) => file.into(),
        None => Stdio::null(),
    }
}

/// Waits for a killed child until `until`; after that tokio reaps it in the background.
async fn reap(child: &mut Child, until: Instant) {
    if tokio::time::timeout_at(until, child.wait()).await.is_err() {
        tracing::debug!(
            pid = child.id(),
            "killed child not reaped within {GRACE:?}, left to the background reaper"
        );
    }
}

/// Spawns, retrying briefly on ETXTBSY: a script that was just written may
/// still be open for writing in a process forked meanwhile (until it execs).
async fn spawn_retrying(cmd: &mut Command) -> std::io::Result<Child> {
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

/// Kills a child's process group when dropped while armed.
struct GroupKill {
    pgid: Option<Pid>,
    armed: bool,
}

impl GroupKill {
    fn of(child: &Child) -> GroupKill {
        GroupKill {
            pgid: child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .map(Pid::from_raw),
            armed: true,
        }
    }

    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is already empty) is the normal case.
            if let Err(err) = killpg(pgid, Signal::SIGKILL) {
                if err != nix::errno::Errno::ESRCH {
                    tracing::debug!(pgid = pgid.as_raw(), %err, "cannot kill a child's group");
                }
            }
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

/// Reads a pipe to its end, keeping the first `cap` bytes.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Capture {
    fn start<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>, cap: usize) -> Capture {
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
                            let room = cap.saturating_sub(b.len());
                            b.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
            })
        });
        Capture { buf, task }
    }

    /// What was captured once the pipe closed, or at `until` if a process still holds it
    /// (the reader then keeps draining it, detached).
    async fn finish(self, until: Instant) -> String {
        if let Some(task) = self.task {
            let _ = tokio::time::timeout_at(until, task).await;
        }
        let b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    fn limits(timeout_ms: u64, leftovers: Leftovers) -> Limits {
        Limits {
            timeout: Duration::from_millis(timeout_ms),
            capture: 1000,
            leftovers,
        }
    }

    /// Whether `pid` runs (a zombie waiting for its reaper does not).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    async fn gone_soon(pid: i32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while alive(pid) {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    fn read_pid(path: &Path) -> i32 {
        let text = std::fs::read_to_string(path).expect("pid file");
        text.trim().parse().expect("a pid")
    }

    #[tokio::test]
    async fn describes_exit_status_and_signal() {
        let done = run(
            sh("echo out; echo err >&2; exit 3"),
            &limits(5000, Leftovers::Leave),
        )
        .await
        .expect("run");
        assert_eq!(done.ending, Ending::Exited(3));
        assert!(!done.ending.success());
        assert_eq!(done.ending.to_string(), "exited with status 3");
        assert_eq!(
            (done.stdout.as_str(), done.stderr.as_str()),
            ("out\n", "err\n")
        );

        let done = run(sh("exit 0"), &limits(5000, Leftovers::Leave))
            .await
            .expect("run");
        assert!(done.ending.success());
        assert_eq!(done.ending.to_string(), "exited with status 0");

        let done = run(sh("kill -9 $$"), &limits(5000, Leftovers::Leave))
            .await
            .expect("run");
        assert_eq!(done.ending, Ending::Signaled(9));
        assert_eq!(done.ending.to_string(), "killed by signal 9");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = format!(
            "sleep 60 & echo $! > '{0}/bg.pid'; echo $$ > '{0}/sh.pid'; echo started; wait",
            dir.path().display()
        );
        let started = Instant::now();
        let done = run(sh(&script), &limits(300, Leftovers::Leave))
            .await
            .expect("run");
        let took = started.elapsed();
        assert_eq!(done.ending, Ending::TimedOut(Duration::from_millis(300)));
        assert_eq!(
            done.ending.to_string(),
            "timed out after 300ms, group killed"
        );
        assert_eq!(done.stdout, "started\n");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(300) + GRACE * 5, "{took:?}");
        for file in ["bg.pid", "sh.pid"] {
            let pid = read_pid(&dir.path().join(file));
            assert!(gone_soon(pid).await, "{file}: {pid} survived the timeout");
        }
    }

    #[tokio::test]
    async fn output_is_capped_and_never_blocks_the_child() {
        let script =
            "head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero | tr '\\0' e >&2";
        let started = Instant::now();
        let done = run(sh(script), &limits(10_000, Leftovers::Leave))
            .await
            .expect("run");
        assert_eq!(done.ending, Ending::Exited(0));
        assert_eq!(done.stdout, "o".repeat(1000));
        assert_eq!(done.stderr, "e".repeat(1000));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn leftovers_left_or_killed_and_never_waited_for() {
        for leftovers in [Leftovers::Leave, Leftovers::Kill] {
            let dir = tempfile::tempdir().expect("tempdir");
            let pidfile = dir.path().join("bg.pid");
            // The background sleep holds stdout open: the run must not wait for it.
            let script = format!("sleep 30 & echo $! > '{}'; echo done", pidfile.display());
            let started = Instant::now();
            let done = run(sh(&script), &limits(10_000, leftovers))
                .await
                .expect("run");
            let took = started.elapsed();
            assert_eq!(done.ending, Ending::Exited(0), "{leftovers:?}");
            assert_eq!(done.stdout, "done\n", "{leftovers:?}");
            assert!(took < GRACE * 5, "{leftovers:?}: {took:?}");
            let pid = read_pid(&pidfile);
            match leftovers {
                Leftovers::Leave => {
                    assert!(alive(pid), "the background process was killed");
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                Leftovers::Kill => assert!(gone_soon(pid).await, "{pid} survived"),
            }
        }
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("bg.pid");
        let script = format!("sleep 60 & echo $! > '{}'; wait", pidfile.display());
        let task = tokio::spawn(async move {
            let _ = run(sh(&script), &limits(60_000, Leftovers::Leave)).await;
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&pidfile).map_or(true, |s| !s.ends_with('\n')) {
            assert!(Instant::now() < deadline, "the child did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        let _ = task.await;
        let pid = read_pid(&pidfile);
        assert!(gone_soon(pid).await, "{pid} survived the abort");
    }

    #[tokio::test]
    async fn spawn_error_is_reported() {
        let err = run(
            Command::new("/nonexistent/program"),
            &limits(1000, Leftovers::Kill),
        )
        .await
        .expect_err("spawned a missing program");
        assert!(matches!(err, RunError::Spawn(_)), "{err:?}");
        assert_eq!(err.io().kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().starts_with("cannot start it: "), "{err}");
    }
}
