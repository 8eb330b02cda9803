//! Tests of the script runner (`scripts.rs`).

use super::*;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt;
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
        debug: Some(3),
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

/// The CLI's `invitation-created` gets only NETNAME/NAME of the common variables (tinc's
/// script-env/tinc-alpha-invitation-created.env has no DEBUG, DEVICE or INTERFACE).
#[tokio::test]
async fn invitation_created_has_no_daemon_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_script(
        dir.path(),
        "invitation-created",
        "#!/bin/sh\nenv > env.out\n",
        0o755,
    );
    let r = ScriptRunner::spawn(
        dir.path().to_path_buf(),
        ScriptEnv {
            device: String::new(),
            interface: String::new(),
            debug: None,
            ..env()
        },
        Duration::from_secs(10),
    );
    let req = ScriptRequest::new("invitation-created").var("NODE", "beta");
    assert_eq!(r.run_now(req).await, ScriptOutcome::Ok);
    let out = std::fs::read_to_string(dir.path().join("env.out")).expect("env.out");
    assert!(out.lines().any(|l| l == "NAME=gamma"), "{out}");
    assert!(out.lines().any(|l| l == "NODE=beta"), "{out}");
    for var in ["DEBUG=", "DEVICE=", "INTERFACE="] {
        assert!(!out.lines().any(|l| l.starts_with(var)), "{var} in {out}");
    }
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
    let r =
        ScriptRunner::spawn_bounded(dir.path().to_path_buf(), env(), Duration::from_secs(10), 8);
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
        ScriptOutcome::Failed {
            ending: Ending::TimedOut(Duration::from_millis(300)),
            stderr: String::new(),
        }
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
        ScriptOutcome::Failed { ending, stderr } => {
            assert_eq!(ending, Ending::Exited(3));
            assert!(stderr.contains("boom"), "{stderr:?}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    write_script(dir.path(), "vip-up", "#!/bin/sh\nkill -9 $$\n", 0o755);
    match r.run_now(ScriptRequest::new("vip-up")).await {
        ScriptOutcome::Failed { ending, .. } => {
            assert_eq!(ending, Ending::Signaled(9));
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
        ScriptOutcome::Failed { ending, stderr } => {
            assert_eq!(ending, Ending::Exited(1));
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
