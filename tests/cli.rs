//! CLI integration tests: the `meshd` binary as a user runs it, without root
//! or network namespaces. Daemons listen on 127.0.0.1 / the wildcard with
//! high ports derived from the test process id; every daemon a test starts is
//! stopped, and SIGKILLed by a guard if the test fails first.

mod cli_support;

use cli_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- tests

#[test]
fn init_creates_a_network_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let o = meshd(&dir, &["init", "alpha", "--port", "6551"]);
    assert_ok(&o);

    let conf = read(&dir.join("tinc.conf"));
    assert!(
        conf.lines().any(|l| l.trim() == "Name = alpha"),
        "tinc.conf:\n{conf}"
    );
    let host = read(&dir.join("hosts/alpha"));
    assert!(
        host.lines().any(|l| l.trim() == "Port = 6551"),
        "hosts/alpha:\n{host}"
    );
    let key_line = host
        .lines()
        .find_map(|l| l.strip_prefix("Ed25519PublicKey = "))
        .unwrap_or_else(|| panic!("no Ed25519PublicKey in hosts/alpha:\n{host}"));
    assert_eq!(key_line.len(), 43, "{key_line:?}");
    assert!(key_line
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
    let key = dir.join("ed25519_key.priv");
    assert_eq!(mode_of(&key), 0o600);
    let up = dir.join("tinc-up");
    assert!(up.is_file());
    assert_ne!(mode_of(&up) & 0o100, 0, "tinc-up is not executable");

    // A second init refuses and changes nothing.
    let key_before = read(&key);
    let o = meshd(&dir, &["init", "alpha", "--port", "6551"]);
    assert_exit1(&o);
    let err = stderr(&o);
    assert!(
        err.contains("already initialised") && err.contains("tinc.conf"),
        "{}",
        show(&o)
    );
    assert_eq!(err.lines().count(), 1, "{}", show(&o));
    assert_eq!(read(&key), key_before, "second init replaced the key");
    assert_eq!(read(&dir.join("hosts/alpha")), host);

    // Without --port there is no Port line.
    let dir_b = tmp.path().join("b");
    assert_ok(&meshd(&dir_b, &["init", "beta"]));
    let host_b = read(&dir_b.join("hosts/beta"));
    assert!(!host_b.contains("Port"), "{host_b}");
    assert!(host_b.contains("Ed25519PublicKey = "), "{host_b}");

    // An invalid name is refused before anything is written.
    let bad = tmp.path().join("bad");
    let o = meshd(&bad, &["init", "a-b"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("node name 'a-b' has '-' at byte 1: use letters, digits and _ only"),
        "{}",
        show(&o)
    );
    assert!(!bad.exists(), "invalid init left {}", bad.display());

    // 65 bytes is refused too (a handshake carries at most 64), before anything is written.
    let o = meshd(&bad, &["init", &"a".repeat(65)]);
    assert_exit1(&o);
    assert_eq!(
        stderr(&o).trim_end(),
        "meshd: node name is too long (65 bytes, at most 64)",
        "{}",
        show(&o)
    );
    assert!(!bad.exists(), "invalid init left {}", bad.display());
    // 64 bytes is a name.
    let dir_c = tmp.path().join("c");
    assert_ok(&meshd(&dir_c, &["init", &"c".repeat(64)]));
    assert!(dir_c.join("hosts").join("c".repeat(64)).is_file());
}

#[test]
fn netname_selects_directory_under_base() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();

    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", base)
        .args(["-n", "net1", "init", "alpha"]);
    assert_ok(&run_cmd(cmd));
    assert!(read(&base.join("net1/tinc.conf")).contains("Name = alpha"));
    assert!(base.join("net1/hosts/alpha").is_file());
    assert!(base.join("net1/ed25519_key.priv").is_file());

    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", base)
        .env("NETNAME", "net2")
        .args(["init", "beta"]);
    assert_ok(&run_cmd(cmd));
    assert!(read(&base.join("net2/tinc.conf")).contains("Name = beta"));
    assert!(base.join("net2/hosts/beta").is_file());
    assert!(base.join("net2/ed25519_key.priv").is_file());

    // Other commands resolve the same directory.
    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", base)
        .args(["-n", "net1", "pid"]);
    let o = run_cmd(cmd);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains(&format!("not running in {}", base.join("net1").display())),
        "{}",
        show(&o)
    );
}

#[test]
fn config_errors_name_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();

    // Mode = router in tinc.conf.
    let dir = tmp.path().join("router");
    assert_ok(&meshd(
        &dir,
        &["init", "alpha", "--port", &free_port().to_string()],
    ));
    let conf = dir.join("tinc.conf");
    append(&conf, "Mode = router\n");
    let line = read(&conf).lines().count();
    let o = meshd(&dir, &["start", "-D"]);
    assert_exit1(&o);
    let want = format!("{}:{line}:", conf.display());
    let err = stderr(&o);
    assert!(
        err.contains(&want) && err.contains("not supported"),
        "want {want:?} and 'not supported'\n{}",
        show(&o)
    );
    assert!(!dir.join("meshd.pid").exists());

    // Port = abc in hosts/NAME.
    let dir = tmp.path().join("port");
    assert_ok(&meshd(&dir, &["init", "alpha"]));
    let host = dir.join("hosts/alpha");
    append(&host, "Port = abc\n");
    let line = read(&host).lines().count();
    let o = meshd(&dir, &["start", "-D"]);
    assert_exit1(&o);
    let want = format!("{}:{line}:", host.display());
    let err = stderr(&o);
    assert!(
        err.contains(&want) && err.contains("abc"),
        "want {want:?}\n{}",
        show(&o)
    );
    // Detached start reports the same error.
    let o = meshd(&dir, &["start"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains(&want), "{}", show(&o));

    // A private key readable by others.
    let dir = tmp.path().join("key");
    assert_ok(&meshd(
        &dir,
        &["init", "alpha", "--port", &free_port().to_string()],
    ));
    let key = dir.join("ed25519_key.priv");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = meshd(&dir, &["start", "-D"]);
    assert_exit1(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&key.display().to_string()) && err.contains("chmod 600"),
        "{}",
        show(&o)
    );
    assert!(!dir.join("meshd.pid").exists());
    assert!(!dir.join("meshd.socket").exists());
}

#[test]
fn commands_without_a_daemon_say_not_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    assert_ok(&meshd(&dir, &["init", "alpha"]));
    for args in [
        &["dump", "nodes"][..],
        &["info", "x"],
        &["reload"],
        &["stop"],
        &["pid"],
    ] {
        let o = meshd(&dir, args);
        assert_exit1(&o);
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {}", show(&o));
        assert!(err.contains("not running"), "{args:?}: {}", show(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: {}", show(&o));
    }
}

#[test]
fn two_daemons_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let dirs = [a.as_path(), b.as_path()];
    let mut reaper = Reaper::default();

    init_node(&a, "alpha", free_port());
    init_node(&b, "beta", free_port());
    std::fs::copy(a.join("hosts/alpha"), b.join("hosts/alpha")).unwrap();
    std::fs::copy(b.join("hosts/beta"), a.join("hosts/beta")).unwrap();
    append(&b.join("tinc.conf"), "ConnectTo = alpha\n");
    let port_of = |dir: &Path, name: &str| -> u16 {
        read(&dir.join("hosts").join(name))
            .lines()
            .find_map(|l| l.strip_prefix("Port = "))
            .expect("Port line")
            .trim()
            .parse()
            .unwrap()
    };

    let pa = start_node(&mut reaper, &a, "alpha", port_of(&a, "alpha"), &dirs);
    let pb = start_node(&mut reaper, &b, "beta", port_of(&b, "beta"), &dirs);
    for d in dirs {
        let pidfile = d.join("meshd.pid");
        assert!(pidfile.is_file(), "{}", pidfile.display());
        assert!(d.join("meshd.socket").exists());
        assert_eq!(mode_of(&pidfile), 0o600);
    }

    // Both see both within 10 s.
    let ok = wait_until(Duration::from_secs(10), || {
        sees_reachable(&a, "alpha", "beta", pb) && sees_reachable(&b, "beta", "alpha", pa)
    });
    assert!(
        ok,
        "no mesh within 10 s\nalpha:\n{}\nbeta:\n{}",
        show(&meshd(&a, &["dump", "nodes"])),
        show(&meshd(&b, &["dump", "nodes"]))
    );

    // JSON.
    for d in dirs {
        let o = meshd(d, &["dump", "nodes", "--json"]);
        assert_ok(&o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let list = v.as_array().expect("a JSON array");
        assert_eq!(list.len(), 2, "{v}");
        for name in ["alpha", "beta"] {
            let n = list
                .iter()
                .find(|n| n["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {v}"));
            assert_eq!(n["reachable"], serde_json::Value::Bool(true), "{n}");
        }
    }

    // The other dumps.
    let o = meshd(&a, &["dump", "reachable", "nodes"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().any(|l| l.starts_with("alpha ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("beta ")), "{out}");

    let o = meshd(&a, &["dump", "edges"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("alpha to beta"), "{}", show(&o));

    let o = meshd(&b, &["dump", "connections"]);
    assert_ok(&o);
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with(&format!("alpha at 127.0.0.1 port {pa} "))),
        "{}",
        show(&o)
    );

    let o = meshd(&a, &["info", "beta"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("Node:         beta"), "{out}");
    assert!(out.contains("Reachability: directly with UDP"), "{out}");

    let o = meshd(&a, &["info", "nosuch"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Unknown node"), "{}", show(&o));

    // pid, start again, reload.
    let o = meshd(&a, &["pid"]);
    assert_ok(&o);
    let pid_a = pidfile_pid(&a).expect("alpha pidfile");
    assert_eq!(stdout(&o).trim(), pid_a.to_string());

    let o = meshd(&a, &["start"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("already running"), "{}", show(&o));
    assert_eq!(pidfile_pid(&a), Some(pid_a));

    let o = meshd(&a, &["reload"]);
    assert_ok(&o);

    // restart: a new process, and the mesh comes back.
    let pid_b = pidfile_pid(&b).expect("beta pidfile");
    let o = meshd(&b, &["restart"]);
    assert_ok(&o);
    let pid_b2 = reaper.track_dir(&b);
    assert_ne!(pid_b2, pid_b, "restart kept the old process");
    assert!(
        wait_until(Duration::from_secs(10), || {
            sees_reachable(&a, "alpha", "beta", pb) && sees_reachable(&b, "beta", "alpha", pa)
        }),
        "no mesh within 10 s after restart\nalpha:\n{}\nbeta:\n{}",
        show(&meshd(&a, &["dump", "nodes"])),
        show(&meshd(&b, &["dump", "nodes"]))
    );

    // stop alpha: pidfile and socket go; beta hears the goodbye at once.
    let o = meshd(&a, &["stop"]);
    assert_ok(&o);
    assert!(!a.join("meshd.pid").exists());
    assert!(!a.join("meshd.socket").exists());
    assert!(
        wait_until(Duration::from_secs(2), || peer_unreachable(&b, "alpha")),
        "beta still shows alpha reachable 2 s after alpha stopped\n{}",
        show(&meshd(&b, &["dump", "nodes"]))
    );

    let o = meshd(&b, &["stop"]);
    assert_ok(&o);
    assert!(!b.join("meshd.pid").exists());
    assert!(!b.join("meshd.socket").exists());
}

#[test]
fn tinc11_directory_works_as_is() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/vectors/tinc11");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tinc");
    std::fs::create_dir_all(dir.join("hosts")).unwrap();
    std::fs::write(dir.join("tinc.conf"), "Name = alpha\nMode = switch\n").unwrap();
    let key_line = read(&vectors.join("alpha.host"));
    let key_line = key_line
        .lines()
        .find(|l| l.starts_with("Ed25519PublicKey"))
        .expect("key line");
    let mut reaper = Reaper::default();
    let mut port = free_port();
    let write_host = |port: u16| {
        std::fs::write(
            dir.join("hosts/alpha"),
            format!("Port = {port}\n{key_line}\n"),
        )
        .unwrap();
    };
    write_host(port);
    let key = dir.join("ed25519_key.priv");
    std::fs::copy(vectors.join("alpha.ed25519_key.priv"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut started = false;
    for _ in 0..5 {
        let o = meshd(&dir, &["start"]);
        if o.status.success() {
            started = true;
            break;
        }
        assert!(
            stderr(&o).contains("Address already in use"),
            "{}",
            show(&o)
        );
        port = free_port();
        write_host(port);
    }
    assert!(started, "could not start on a free port");
    reaper.track_dir(&dir);

    let o = meshd(&dir, &["dump", "nodes"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("alpha ") && l.contains(&format!("at MYSELF port {port} "))),
        "{out}"
    );
    let o = meshd(&dir, &["dump", "nodes", "--json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v[0]["name"], "alpha", "{v}");
    assert_eq!(v[0]["key_source"], "self", "{v}");

    assert_ok(&meshd(&dir, &["stop"]));
    assert!(!dir.join("meshd.pid").exists());
    assert!(
        !dir.join("meshd.conf").exists(),
        "meshd wrote a meshd.conf into a tinc directory"
    );
    assert_eq!(
        read(&dir.join("ed25519_key.priv")),
        read(&vectors.join("alpha.ed25519_key.priv"))
    );
}

#[test]
fn foreground_daemon_logs_to_stderr_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    assert_ok(&meshd(
        &dir,
        &["init", "alpha", "--port", &port.to_string()],
    ));
    // Two things to warn about, each once, with file and line.
    append(&dir.join("tinc.conf"), "Bogus = 1\n");
    append(&dir.join("hosts/alpha"), &format!("Port = {port}\n"));
    let bogus_line = read(&dir.join("tinc.conf")).lines().count();
    let port_line = read(&dir.join("hosts/alpha")).lines().count();
    let log = tmp.path().join("stderr.log");
    let mut reaper = Reaper::default();

    // The port may be taken between picking and binding: retry with another.
    let mut pid = None;
    for _ in 0..5 {
        let mut cmd = meshd_command();
        cmd.arg("-c")
            .arg(&dir)
            .args(["start", "-D"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("spawn meshd start -D");
        let child_pid = child.id();
        reaper.children.push(child);
        let child = reaper.children.last_mut().unwrap();
        let answered = wait_until(Duration::from_secs(20), || {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            let o = meshd(&dir, &["pid"]);
            o.status.success() && stdout(&o).trim() == child_pid.to_string()
        });
        assert!(answered, "start -D did not answer `pid` within 20 s");
        if let Some(status) = child.try_wait().unwrap() {
            let text = read(&log);
            assert!(
                text.contains("Address already in use"),
                "start -D exited with {status}:\n{text}"
            );
            set_port(&[&dir], "alpha", free_port());
            continue;
        }
        pid = Some(child_pid);
        break;
    }
    let pid = pid.expect("could not start on a free port");
    assert!(dir.join("meshd.pid").is_file());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let child = reaper.children.last_mut().unwrap();
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "start -D did not exit within 20 s of SIGTERM"
    );
    assert_eq!(status.unwrap().code(), Some(0), "{}", read(&log));
    assert!(!dir.join("meshd.pid").exists());
    assert!(!dir.join("meshd.socket").exists());
    let text = read(&log);
    assert!(text.contains("started"), "stderr:\n{text}");
    assert!(text.contains("SIGTERM"), "stderr:\n{text}");
    let bogus = format!(
        "{}:{bogus_line}: unknown variable 'Bogus'",
        dir.join("tinc.conf").display()
    );
    assert_eq!(text.matches(&bogus).count(), 1, "{bogus:?} in\n{text}");
    let twice = format!(
        "{}:{port_line}: Port is given more than once",
        dir.join("hosts/alpha").display()
    );
    assert_eq!(text.matches(&twice).count(), 1, "{twice:?} in\n{text}");
}

/// Whether `pid` is gone or a zombie (dead, waiting for init to reap it).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

#[test]
fn a_crashed_daemon_leaves_nothing_in_the_way() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let dirs = [dir.as_path()];
    let mut reaper = Reaper::default();
    init_node(&dir, "alpha", free_port());
    let port = read(&dir.join("hosts/alpha"))
        .lines()
        .find_map(|l| l.strip_prefix("Port = ").map(|p| p.trim().parse().unwrap()))
        .unwrap();
    let port = start_node(&mut reaper, &dir, "alpha", port, &dirs);
    let pid = pidfile_pid(&dir).unwrap();
    assert!(is_our_daemon(pid, &dir));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || dead(pid)),
        "SIGKILLed daemon {pid} still runs"
    );
    // The pidfile and socket are stale now.
    assert!(dir.join("meshd.pid").exists());
    let o = meshd(&dir, &["pid"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("not running"), "{}", show(&o));
    let t0 = Instant::now();
    let o = meshd(&dir, &["stop"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("not running"), "{}", show(&o));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop of a dead daemon took {:?}",
        t0.elapsed()
    );

    // start works over the stale files, on the same port.
    start_node(&mut reaper, &dir, "alpha", port, &dirs);
    let pid2 = pidfile_pid(&dir).unwrap();
    assert_ne!(pid2, pid);
    let o = meshd(&dir, &["pid"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), pid2.to_string());
    assert_ok(&meshd(&dir, &["stop"]));
    assert!(!dir.join("meshd.pid").exists());
    assert!(!dir.join("meshd.socket").exists());
}

#[test]
fn help_lists_the_commands() {
    let mut cmd = meshd_command();
    cmd.arg("--help");
    let o = run_cmd(cmd);
    assert_ok(&o);
    let out = stdout(&o);
    for word in [
        "init",
        "start",
        "dump",
        "info",
        "invite",
        "join",
        "completions",
        "man",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    // Completions and the manual page come from the same definition.
    for (args, wanted) in [
        (
            vec!["completions", "bash"],
            vec!["_meshd()", "invite", "revoke-invitation"],
        ),
        (vec!["completions", "zsh"], vec!["#compdef meshd", "join"]),
        (
            vec!["completions", "fish"],
            vec!["complete -c meshd", "dump"],
        ),
        (vec!["man"], vec![".TH meshd 8", "invite", "join"]),
    ] {
        let mut cmd = meshd_command();
        cmd.args(&args);
        let o = run_cmd(cmd);
        assert_ok(&o);
        for w in wanted {
            assert!(stdout(&o).contains(w), "{args:?} lacks {w}");
        }
    }
    let mut cmd = meshd_command();
    cmd.args(["start", "--help"]);
    let o = run_cmd(cmd);
    assert_ok(&o);
    assert!(stdout(&o).contains("-D"), "{}", show(&o));
}

#[test]
fn revoke_moves_the_host_file_to_a_tombstone() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert_ok(&meshd(&a, &["init", "alpha"]));
    assert_ok(&meshd(&b, &["init", "beta"]));
    std::fs::copy(b.join("hosts/beta"), a.join("hosts/beta")).unwrap();

    let o = meshd(&a, &["revoke", "beta"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("revoked/beta"), "{}", show(&o));
    assert!(out.contains("not running"), "{}", show(&o));
    assert!(!a.join("hosts/beta").exists());
    assert!(read(&a.join("revoked/beta")).contains("Ed25519PublicKey"));

    let o = meshd(&a, &["revoke", "beta"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("already revoked"), "{}", show(&o));

    // A name with no host file gets an empty tombstone: gossip cannot introduce it.
    let o = meshd(&a, &["revoke", "gamma"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("tombstone"), "{}", show(&o));
    assert_eq!(read(&a.join("revoked/gamma")), "");

    let o = meshd(&a, &["revoke", "alpha"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("own name"), "{}", show(&o));
    let o = meshd(&a, &["revoke", "no/such"]);
    assert!(!o.status.success(), "{}", show(&o));
}
