//! Running meshd as a service, without systemd and without root. The notify protocol: a daemon run as a
//! `Type=notify` unit would be (`start -D` with `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`) tells
//! the socket READY=1 (at once for a node with no ConnectTo, after its first session
//! otherwise), WATCHDOG=1 from its packet loop, RELOADING=1 / READY=1 around a reload and
//! STOPPING=1 at stop. The unit file passes `systemd-analyze verify` where systemd is
//! installed. `meshd debug N` changes the level at run time; `meshd log` streams the log.

mod cli_support;

use cli_support::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Messages received on `sock` within `limit`, stopping early once `until` matches one.
fn collect(sock: &UnixDatagram, limit: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < limit {
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = until(&m);
            out.push(m);
            if done {
                break;
            }
        }
    }
    out
}

/// `meshd -c DIR start -D` under a fake systemd: NOTIFY_SOCKET and WATCHDOG_USEC set.
fn start_notify(reaper: &mut Reaper, dir: &Path, socket: &Path, watchdog_usec: u64) {
    let mut cmd = meshd_command();
    cmd.arg("-c")
        .arg(dir)
        .args(["start", "-D"])
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", watchdog_usec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    reaper
        .children
        .push(cmd.spawn().expect("spawn meshd start -D"));
}

#[test]
fn notify_ready_watchdog_reload_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (port_a, port_b) = (free_port(), free_port());
    init_node(&a, "alpha", port_a);
    init_node(&b, "beta", port_b);
    std::fs::copy(a.join("hosts/alpha"), b.join("hosts/alpha")).unwrap();
    std::fs::copy(b.join("hosts/beta"), a.join("hosts/beta")).unwrap();
    append(&b.join("tinc.conf"), "ConnectTo = alpha\n");
    let (sock_a_path, sock_b_path) = (tmp.path().join("notify-a"), tmp.path().join("notify-b"));
    let sock_a = UnixDatagram::bind(&sock_a_path).unwrap();
    let sock_b = UnixDatagram::bind(&sock_b_path).unwrap();
    let mut reaper = Reaper::default();

    // beta connects to alpha, which is down: not ready yet.
    start_notify(&mut reaper, &b, &sock_b_path, 200_000);
    let early = collect(&sock_b, Duration::from_millis(1500), |m| {
        m.contains("READY=1")
    });
    assert!(
        !early.iter().any(|m| m.contains("READY=1")),
        "beta said READY before any session: {early:?}"
    );
    assert!(
        early.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3,
        "WATCHDOG=1 every 100 ms expected: {early:?}"
    );

    // alpha connects to no one: ready at once.
    start_notify(&mut reaper, &a, &sock_a_path, 0);
    let msgs = collect(&sock_a, Duration::from_secs(20), |m| m.contains("READY=1"));
    let ready = msgs.iter().find(|m| m.contains("READY=1"));
    assert!(
        ready.is_some_and(|m| m.contains("STATUS=")),
        "alpha: {msgs:?}"
    );
    assert!(
        !msgs.iter().any(|m| m.contains("WATCHDOG")),
        "no watchdog asked: {msgs:?}"
    );

    // beta becomes ready with its first session.
    let msgs = collect(&sock_b, Duration::from_secs(20), |m| m.contains("READY=1"));
    let ready = msgs.iter().find(|m| m.contains("READY=1"));
    assert!(
        ready.is_some_and(|m| m.contains("first session up")),
        "beta: {msgs:?}"
    );

    assert_ok(&meshd(&b, &["reload"]));
    let msgs = collect(&sock_b, Duration::from_secs(10), |m| m.contains("READY=1"));
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC=")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("READY=1")), "{msgs:?}");

    assert_ok(&meshd(&b, &["stop"]));
    let msgs = collect(&sock_b, Duration::from_secs(5), |m| m == "STOPPING=1");
    assert!(msgs.iter().any(|m| m == "STOPPING=1"), "{msgs:?}");
    assert_ok(&meshd(&a, &["stop"]));
}

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/meshd@.service");
    let text = read(&unit);
    for line in [
        "Type=notify",
        "ExecStart=/usr/sbin/meshd -n %i start -D",
        "ExecReload=/usr/sbin/meshd -n %i reload",
        "WatchdogSec=",
        "DeviceAllow=/dev/net/tun rw",
    ] {
        assert!(text.contains(line), "meshd@.service lacks {line}");
    }
    let have = std::process::Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have,
        "systemd-analyze is missing (apt-get install systemd): the unit file cannot be verified"
    );
    // verify wants an instance and an existing binary: point the copy at the one just built.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("meshd@lab.service");
    std::fs::write(&copy, text.replace("/usr/sbin/meshd", meshd_bin())).unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/meshd.target");
    std::fs::copy(&target, tmp.path().join("meshd.target")).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .arg(tmp.path().join("meshd.target"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("run systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("meshd")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{err}"
    );
}

#[test]
fn debug_level_changes_and_log_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &dir, "alpha", port, &[&dir]);
    // A `meshd log` client, reading until the daemon stops.
    let mut cmd = meshd_command();
    cmd.arg("-c").arg(&dir).arg("log");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(run_cmd(cmd)));
    std::thread::sleep(Duration::from_millis(300));
    let o = meshd(&dir, &["debug", "2"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "Old level 1, new level 2.\n");
    assert_ok(&meshd(&dir, &["reload"]));
    let o = meshd(&dir, &["debug", "0"]);
    assert_eq!(stderr(&o), "Old level 2, new level 0.\n");
    // At level 0 (warnings) the reload's info line is not logged, nor streamed.
    assert_ok(&meshd(&dir, &["reload"]));
    assert_ok(&meshd(&dir, &["stop"]));
    let o = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("meshd log ended");
    assert_ok(&o);
    let streamed = stdout(&o);
    assert!(
        streamed.contains("log level changed from 1 to 2"),
        "{streamed}"
    );
    assert_eq!(
        streamed.matches("configuration reloaded").count(),
        1,
        "{streamed}"
    );
    assert!(
        streamed.contains("log level changed from 2 to 0"),
        "{streamed}"
    );
    // No daemon: one clear line.
    let o = meshd(&dir, &["debug", "1"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("not running"), "{}", show(&o));
}

#[test]
fn syslog_gets_one_message_per_line_with_priority() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    append(&dir.join("tinc.conf"), "Bogus = 1\n");
    let sock_path = tmp.path().join("syslog");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut reaper = Reaper::default();
    let mut cmd = meshd_command();
    cmd.arg("-c")
        .arg(&dir)
        .args(["start", "-D", "--syslog"])
        .env("MESHD_SYSLOG_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    reaper
        .children
        .push(cmd.spawn().expect("spawn meshd start -D --syslog"));
    let msgs = collect(&sock, Duration::from_secs(20), |m| m.contains("started"));
    let pid = reaper.children[0].id();
    // daemon facility (3): warning = <28>, info = <30>; no timestamp of our own.
    let warn = msgs.iter().find(|m| m.contains("Bogus"));
    assert!(
        warn.is_some_and(|m| m.starts_with(&format!("<28>meshd[{pid}]: "))),
        "{msgs:?}"
    );
    let started = msgs.iter().find(|m| m.contains("started"));
    assert!(
        started.is_some_and(|m| m.starts_with(&format!("<30>meshd[{pid}]: ")) && !m.contains("Z ")),
        "{msgs:?}"
    );
    assert_ok(&meshd(&dir, &["stop"]));
    // Without a syslog socket, a clear error.
    let mut cmd = meshd_command();
    cmd.arg("-c")
        .arg(&dir)
        .args(["start", "-D", "--syslog"])
        .env("MESHD_SYSLOG_SOCKET", tmp.path().join("nothing"));
    let o = run_cmd(cmd);
    assert_exit1(&o);
    assert!(stderr(&o).contains("cannot reach syslog"), "{}", show(&o));
}
