//! Issue 21: tincd's start options `-o [HOST.]VAR=VALUE`, `-d` without a level and `--logfile`
//! without a file, compared with what tinc 1.1 accepted (../shared/tinc11-observed/cli/46.txt,
//! 47.txt: `tinc start -o Port=1 -d5 --logfile=DIR`).

mod cli_support;

use cli_support::*;
use std::time::Duration;

#[test]
fn start_o_sets_variables_for_this_run_over_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    let host_file = read(&dir.join("hosts/alpha"));
    let mut reaper = Reaper::default();
    // A single-valued variable replaces the host file's; a multi-valued one is added.
    let other = free_port();
    let o = meshd(
        &dir,
        &[
            "start",
            "-o",
            &format!("Port={other}"),
            "-o",
            "Subnet=10.9.9.9",
            "-o",
            "alpha.Subnet = 10.9.9.8",
        ],
    );
    assert_ok(&o);
    reaper.track_dir(&dir);
    // tinc: `start -o Port=1 -d5 --logfile=DIR` with a daemon running: "A tincd is already
    // running with pid N.", rc 0 (cli/47.txt); the options are accepted, nothing changes.
    let logfile = format!("--logfile={}", tmp.path().join("other.log").display());
    let o = meshd(&dir, &["start", "-o", "Port=1", "-d5", &logfile]);
    assert_ok(&o);
    assert!(
        stderr(&o).starts_with("A meshd is already running for "),
        "{}",
        show(&o)
    );
    let o = meshd(&dir, &["get", "Port"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), format!("{other}\n"), "the daemon's port");
    let has_subnets = |dir: &std::path::Path| {
        let o = meshd(dir, &["dump", "subnets"]);
        let s = stdout(&o);
        s.contains("10.9.9.9 owner alpha\n") && s.contains("10.9.9.8 owner alpha\n")
    };
    assert!(
        has_subnets(&dir),
        "{}",
        show(&meshd(&dir, &["dump", "subnets"]))
    );
    // Kept across a reload, and never written to the files.
    assert_ok(&meshd(&dir, &["reload"]));
    assert!(has_subnets(&dir));
    assert_eq!(read(&dir.join("hosts/alpha")), host_file);
    assert_ok(&meshd(&dir, &["stop"]));
}

#[test]
fn start_o_mistakes_name_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init_node(&dir, "alpha", free_port());
    let o = meshd(&dir, &["start", "-o", "Port"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("-o:1: no value for variable 'Port'"),
        "{}",
        show(&o)
    );
    let o = meshd(&dir, &["start", "-D", "-o", "Mode=switch", "-o", "Port=x"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("-o:2: bad value for Port: 'x' is not a port"),
        "{}",
        show(&o)
    );
    let o = meshd(&dir, &["start", "-o", "bad-name.Port=1"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("not a node name"), "{}", show(&o));
    // tinc: `tinc -c alpha pid -o Foo=bar` -> "Too many arguments!", rc 1 (cli/46.txt).
    let o = meshd(&dir, &["pid", "-o", "Foo=bar"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Too many arguments!\n");
}

#[test]
fn bare_d_is_one_level_above_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init_node(&dir, "alpha", free_port());
    let mut reaper = Reaper::default();
    assert_ok(&meshd(&dir, &["start", "-d"]));
    reaper.track_dir(&dir);
    let o = meshd(&dir, &["debug", "1"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "Old level 2, new level 1.\n");
    assert_ok(&meshd(&dir, &["stop"]));
    // tinc's attached form, as in cli/47.txt (`-d5`).
    assert_ok(&meshd(&dir, &["start", "-d3"]));
    reaper.track_dir(&dir);
    let o = meshd(&dir, &["debug", "1"]);
    assert_eq!(stderr(&o), "Old level 3, new level 1.\n", "{}", show(&o));
    assert_ok(&meshd(&dir, &["stop"]));
}

#[test]
fn bare_logfile_logs_to_the_network_directory_even_in_the_foreground() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init_node(&dir, "alpha", free_port());
    let log = dir.join("meshd.log");
    assert!(!log.exists());
    let mut reaper = Reaper::default();
    let mut cmd = meshd_command();
    cmd.arg("-c")
        .arg(&dir)
        .args(["start", "-D", "--logfile"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    reaper.children.push(child);
    assert!(
        wait_until(Duration::from_secs(20), || meshd(&dir, &["pid"])
            .status
            .success()),
        "the daemon did not come up"
    );
    assert_ok(&meshd(&dir, &["stop"]));
    let mut child = reaper.children.pop().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let text = read(&log);
    assert!(text.contains("Executing script tinc-up"), "log:\n{text}");
    assert!(
        !err.contains("Executing script"),
        "stderr has log lines:\n{err}"
    );
}

/// The daemon's log file after a detached start and stop with `extra` config lines.
fn start_log(dir: &std::path::Path) -> String {
    let mut reaper = Reaper::default();
    let _ = std::fs::remove_file(dir.join("meshd.log"));
    assert_ok(&meshd(dir, &["start"]));
    reaper.track_dir(dir);
    assert_ok(&meshd(dir, &["stop"]));
    read(&dir.join("meshd.log"))
}

#[test]
fn no_mode_line_says_switch_mode_and_warns_in_a_tinc_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init_node(&dir, "alpha", free_port());
    // init writes Mode = switch into tinc.conf, so tincd reading the directory agrees.
    let conf = read(&dir.join("tinc.conf"));
    assert!(conf.lines().any(|l| l == "Mode = switch"), "{conf}");
    let log = start_log(&dir);
    assert!(!log.contains("Mode line"), "{log}");
    // meshd.conf (older meshd versions) without Mode: switch mode, said at info level.
    let without_mode: String = conf
        .lines()
        .filter(|l| !l.starts_with("Mode"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::remove_file(dir.join("tinc.conf")).unwrap();
    std::fs::write(dir.join("meshd.conf"), &without_mode).unwrap();
    let log = start_log(&dir);
    assert!(
        log.contains("no Mode line in") && log.contains("switch mode (meshd's only mode)"),
        "{log}"
    );
    // A tinc directory without Mode ran tinc in router mode: a warning.
    std::fs::rename(dir.join("meshd.conf"), dir.join("tinc.conf")).unwrap();
    let log = start_log(&dir);
    let line = log
        .lines()
        .find(|l| l.contains("has no Mode line"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("WARN") && line.contains("tinc would run router mode"),
        "{line}"
    );
    append(&dir.join("tinc.conf"), "Mode = switch\n");
    let log = start_log(&dir);
    assert!(!log.contains("Mode line"), "{log}");
}

/// Local UDP and TCP addresses listening on `port` (from `ss`).
fn listening(port: u16) -> String {
    let out = std::process::Command::new("ss")
        .args(["-Hlnut", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn listen_address_is_where_the_daemon_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    append(&dir.join("tinc.conf"), "ListenAddress = 127.0.0.2\n");
    let mut reaper = Reaper::default();
    assert_ok(&meshd(&dir, &["start"]));
    reaper.track_dir(&dir);
    let ss = listening(port);
    let mut local: Vec<(&str, &str)> = ss
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, *f.get(4)?))
        })
        .collect();
    local.sort();
    let addr = format!("127.0.0.2:{port}");
    assert_eq!(
        local,
        vec![("tcp", addr.as_str()), ("udp", addr.as_str())],
        "UDP and TCP on {addr} only:\n{ss}"
    );
    assert_ok(&meshd(&dir, &["stop"]));
    // A second address: as tincd, a UDP socket (the mesh) and a join listener (TCP) on
    // each, and tinc's `Listening on ADDR port N` for both.
    append(&dir.join("tinc.conf"), "BindToAddress = 127.0.0.1\n");
    assert_ok(&meshd(&dir, &["start"]));
    reaper.track_dir(&dir);
    let ss = listening(port);
    let mut local: Vec<(&str, &str)> = ss
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, *f.get(4)?))
        })
        .collect();
    local.sort();
    let (one, two) = (format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}"));
    assert_eq!(
        local,
        vec![
            ("tcp", one.as_str()),
            ("tcp", two.as_str()),
            ("udp", one.as_str()),
            ("udp", two.as_str())
        ],
        "{ss}"
    );
    assert_ok(&meshd(&dir, &["stop"]));
    let log = read(&dir.join("meshd.log"));
    for want in [
        format!("Listening on 127.0.0.1 port {port}"),
        format!("Listening on 127.0.0.2 port {port}"),
    ] {
        assert!(log.contains(&want), "{want}:\n{log}");
    }
}

/// A node listening on two addresses answers a peer from the one the peer reached it at:
/// beta knows alpha only as 127.0.0.2, alpha listens on 127.0.0.1 first; the session comes
/// up and stays on 127.0.0.2 (replies from 127.0.0.1 would not be alpha's for beta).
#[test]
fn each_listen_address_carries_the_mesh() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (pa, pb) = (free_port(), free_port());
    init_node(&a, "alpha", pa);
    init_node(&b, "beta", pb);
    append(
        &a.join("tinc.conf"),
        "ListenAddress = 127.0.0.1\nListenAddress = 127.0.0.2\n",
    );
    for d in [&a, &b] {
        append(
            &d.join("tinc.conf"),
            "HelloInterval = 100ms\nDeadInterval = 400ms\n",
        );
    }
    std::fs::copy(b.join("hosts/beta"), a.join("hosts/beta")).unwrap();
    let alpha_host =
        read(&a.join("hosts/alpha")).replace("Address = 127.0.0.1", "Address = 127.0.0.2");
    std::fs::write(b.join("hosts/alpha"), alpha_host).unwrap();
    append(&b.join("tinc.conf"), "ConnectTo = alpha\n");
    let mut reaper = Reaper::default();
    assert_ok(&meshd(&a, &["start"]));
    reaper.track_dir(&a);
    assert_ok(&meshd(&b, &["start"]));
    reaper.track_dir(&b);
    let alpha_at_two = || {
        dump_nodes(&b).is_some_and(|nodes| {
            nodes.iter().any(|(n, l)| {
                n == "alpha"
                    && l.contains(&format!(" at 127.0.0.2 port {pa} "))
                    && status_of(l) & REACHABLE != 0
            })
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), alpha_at_two),
        "beta never reached alpha at 127.0.0.2: {:?}",
        dump_nodes(&b)
    );
    assert!(
        wait_until(Duration::from_secs(5), || sees_reachable(
            &a, "alpha", "beta", pb
        )),
        "alpha does not see beta: {:?}",
        dump_nodes(&a)
    );
    // Heartbeats both ways for a while: still there, never moved to 127.0.0.1.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(alpha_at_two(), "{:?}", dump_nodes(&b));
    for d in [&b, &a] {
        assert_ok(&meshd(d, &["stop"]));
    }
}

/// `BindToInterface = lo`: every listening socket is bound to the device (tinc's
/// bind_address.py looks for `%lo:PORT` in `ss`); a name no interface can have is refused
/// at start, naming the line.
#[test]
fn bind_to_interface_binds_every_socket_to_the_device() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    append(&dir.join("tinc.conf"), "BindToInterface = lo\n");
    let mut reaper = Reaper::default();
    assert_ok(&meshd(&dir, &["start"]));
    reaper.track_dir(&dir);
    let ss = listening(port);
    let kinds: Vec<(&str, bool)> = ss
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, f.get(4)?.ends_with(&format!("%lo:{port}"))))
        })
        .collect();
    assert_eq!(kinds.len(), 2, "{ss}");
    assert!(kinds.iter().all(|(_, on_lo)| *on_lo), "{ss}");
    assert_ok(&meshd(&dir, &["dump", "nodes"]));
    assert_ok(&meshd(&dir, &["stop"]));
    let log = read(&dir.join("meshd.log"));
    assert!(
        !log.contains("BindToInterface"),
        "no warning about it any more:\n{log}"
    );

    let conf = dir.join("tinc.conf");
    std::fs::write(
        &conf,
        read(&conf).replace(
            "BindToInterface = lo",
            "BindToInterface = a_name_far_too_long",
        ),
    )
    .unwrap();
    let o = meshd(&dir, &["start"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("tinc.conf:")
            && stderr(&o).contains("bad value for BindToInterface: 'a_name_far_too_long'"),
        "{}",
        show(&o)
    );
}

/// tinc's bind_port.py: a join port that cannot be bound is logged as tinc does (`Can't bind
/// to ADDR port N/tcp`); when no listener at all can be made the daemon stops with
/// `Unable to create any listening socket`, else it runs on the others.
#[test]
fn a_port_that_cannot_be_bound_is_tincs_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init_node(&dir, "alpha", 0);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    append(
        &dir.join("tinc.conf"),
        &format!("BindToAddress = 127.0.0.1 {busy}\n"),
    );
    let _ = std::fs::remove_file(dir.join("meshd.log"));
    let o = meshd(&dir, &["start"]);
    assert_exit1(&o);
    let log = read(&dir.join("meshd.log"));
    assert!(
        log.contains(&format!("Can't bind to 127.0.0.1 port {busy}/tcp")),
        "{log}"
    );
    assert!(
        log.contains("Unable to create any listening socket"),
        "{log}"
    );
    assert!(
        stderr(&o).contains("Unable to create any listening socket"),
        "{}",
        show(&o)
    );
    // A free address first: the daemon runs, and says which one it could not bind.
    let free = free_port();
    std::fs::write(
        dir.join("tinc.conf"),
        read(&dir.join("tinc.conf")).replace(
            "BindToAddress",
            &format!("BindToAddress = 127.0.0.1 {free}\nBindToAddress"),
        ),
    )
    .unwrap();
    let log = start_log(&dir);
    assert!(
        log.contains(&format!("Listening on 127.0.0.1 port {free}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("Can't bind to 127.0.0.1 port {busy}/tcp")),
        "{log}"
    );
    drop(held);
}

/// `Name:\tvalue...` from /proc/PID/status.
fn proc_status(pid: u32, field: &str) -> String {
    read(std::path::Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn user_lock_and_chroot_options() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init_node(&dir, "alpha", free_port());
    let mut reaper = Reaper::default();

    // -U: the daemon runs as the user once its sockets and files are open.
    let o = meshd(&dir, &["start", "-U", "nobody"]);
    assert_ok(&o);
    let pid = reaper.track_dir(&dir);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let uid = proc_status(pid, "Uid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        vec![nobody.uid.to_string(); 4],
        "real, effective, saved, fs uid"
    );
    // Only CAP_NET_ADMIN (12) and CAP_NET_RAW (13) are kept, and passed on to scripts.
    for set in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
        let bits = u64::from_str_radix(&proc_status(pid, set), 16).unwrap();
        assert_eq!(bits, (1 << 12) | (1 << 13), "{set} {bits:#x}");
    }
    assert_ok(&meshd(&dir, &["dump", "nodes"]));
    // USER cannot read the root-only directory: a reload says so, the daemon goes on.
    let o = meshd(&dir, &["reload"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Permission denied"), "{}", show(&o));
    // It cannot remove its pidfile from that directory either: stop still ends cleanly.
    let o = meshd(&dir, &["stop"]);
    assert_ok(&o);
    assert!(!dir.join("meshd.pid").exists());
    let o = meshd(&dir, &["start", "-U", "no_such_user_here"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("unknown user 'no_such_user_here' (-U USER)"),
        "{}",
        show(&o)
    );

    // -L: the daemon's memory is locked.
    assert_ok(&meshd(&dir, &["start", "-L"]));
    let pid = reaper.track_dir(&dir);
    let locked: u64 = proc_status(pid, "VmLck")
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(locked > 0, "VmLck {locked} kB");
    assert_ok(&meshd(&dir, &["stop"]));

    // -L with -U: every later allocation counts against USER's lock limit, so it must be
    // lifted first; where it cannot be (no CAP_SYS_RESOURCE), start refuses and says why.
    let o = meshd(&dir, &["start", "-L", "-U", "nobody"]);
    if o.status.success() {
        let pid = reaper.track_dir(&dir);
        assert_ne!(proc_status(pid, "VmLck"), "0 kB");
        assert_ok(&meshd(&dir, &["stop"]));
    } else {
        assert_exit1(&o);
        assert!(
            stderr(&o).contains("needs an unlimited memory-lock limit"),
            "{}",
            show(&o)
        );
        assert!(
            !dir.join("meshd.pid").exists(),
            "refused before anything started"
        );
    }

    // -R: the daemon chroots into the network directory once tinc-up has run (tincd's -R):
    // its root is the directory; control, reload and stop work; a later script runs inside
    // (here with a /bin/sh copied in), one whose interpreter is missing is logged.
    std::fs::write(dir.join("tinc-up"), "#!/bin/sh\necho \"$NAME\" > up-ran\n").unwrap();
    std::fs::write(
        dir.join("tinc-down"),
        "#!/bin/sh\necho \"$NAME\" > /down-ran\n",
    )
    .unwrap();
    for s in ["tinc-up", "tinc-down"] {
        std::fs::set_permissions(
            dir.join(s),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    assert_ok(&meshd(&dir, &["start", "-R"]));
    let pid = reaper.track_dir(&dir);
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        root,
        dir.canonicalize().unwrap(),
        "the daemon's root directory"
    );
    assert_eq!(
        read(&dir.join("up-ran")),
        "alpha\n",
        "tinc-up ran before the chroot"
    );
    assert!(stdout(&meshd(&dir, &["dump", "nodes"])).starts_with("alpha "));
    assert_ok(&meshd(&dir, &["reload"]));
    assert_ok(&meshd(&dir, &["stop"]));
    assert!(!dir.join("meshd.pid").exists() && !dir.join("meshd.socket").exists());
    let log = read(&dir.join("meshd.log"));
    assert!(
        log.contains(&format!("chrooted to {} (-R)", dir.display())),
        "{log}"
    );
    assert!(
        log.contains("cannot run script ./tinc-down")
            && log.contains("must be inside the network directory"),
        "no /bin/sh in the chroot:\n{log}"
    );
    copy_with_libraries(std::path::Path::new("/bin/sh"), &dir);
    assert_ok(&meshd(&dir, &["start", "-R"]));
    reaper.track_dir(&dir);
    assert_ok(&meshd(&dir, &["stop"]));
    assert_eq!(
        read(&dir.join("down-ran")),
        "alpha\n",
        "tinc-down ran inside the chroot"
    );
    // With -U too: chrooted and running as nobody.
    let o = meshd(&dir, &["start", "-R", "-U", "nobody"]);
    assert_ok(&o);
    let pid = reaper.track_dir(&dir);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        dir.canonicalize().unwrap()
    );
    assert_eq!(
        proc_status(pid, "Uid").split_whitespace().next(),
        Some(nobody.uid.to_string().as_str())
    );
    assert_ok(&meshd(&dir, &["stop"]));
    assert_eq!(
        read(&dir.join("down-ran")),
        "alpha\n",
        "tinc-down ran inside the chroot"
    );
}

/// Copies `bin` and the shared libraries it loads (from `ldd`) under `root`, at their paths.
fn copy_with_libraries(bin: &std::path::Path, root: &std::path::Path) {
    let ldd = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .expect("ldd");
    let mut files = vec![bin.to_path_buf()];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(std::path::PathBuf::from(path));
        }
    }
    for f in files {
        let to = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f.canonicalize().unwrap(), &to).unwrap();
    }
}
