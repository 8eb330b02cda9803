//! tinc 1.1's command mode, `get`/`set`/`add`/`del` (and `config ...`), `-b`/`--force` and
//! tinc's usage errors, compared with what a real tinc 1.1 printed
//! (../shared/tinc11-observed/cli/NN.txt: output shape and exit code).

mod cli_support;

use cli_support::*;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

/// A node `foo` made the way tinc's integration tests make one: commands piped to command mode.
fn tinc_test_node(root: &Path) -> std::path::PathBuf {
    let dir = root.join("foo");
    let o = meshd_stdin(
        &["-c", dir.to_str().unwrap()],
        "init foo\nset Port 0\nset Address localhost\nset DeviceType dummy\n",
    );
    assert_ok(&o);
    dir
}

#[test]
fn command_mode_runs_tincs_integration_test_setup() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    let host = read(&dir.join("hosts/foo"));
    assert!(host.contains("\nPort = 0\n"), "{host}");
    assert!(host.contains("\nAddress = localhost\n"), "{host}");
    assert!(host.contains("Ed25519PublicKey = "), "{host}");
    let conf = read(&dir.join("tinc.conf"));
    assert!(conf.contains("\nName = foo\n"), "{conf}");
    assert!(conf.contains("\nDeviceType = dummy\n"), "{conf}");
    let o = meshd(&dir, &["get", "Port"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "0\n");
}

#[test]
fn command_mode_skips_comments_and_fails_if_a_command_failed() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    let d = dir.to_str().unwrap();
    let o = meshd_stdin(
        &["-c", d],
        "# a comment\n\nget Port\nget Nonexistent\nfrobnicate\nget Address\n",
    );
    assert_exit1(&o);
    assert_eq!(stdout(&o), "0\nlocalhost\n");
    assert!(stderr(&o).contains("No matching configuration variables found."));
    assert!(stderr(&o).contains("Unknown command `frobnicate'."));
    let o = meshd_stdin(&["-c", d], "get Port\nexit\nget Nonexistent\n");
    assert_ok(&o);
    assert_eq!(stdout(&o), "0\n");
}

#[test]
fn get_set_add_del_as_tinc_prints_them() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    // cli/26.txt: `set Mode switch` prints nothing, rc 0; cli/25.txt: `get Mode` prints it.
    let o = meshd(&dir, &["set", "Mode", "switch"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    let o = meshd(&dir, &["get", "Mode"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "switch\n");
    // cli/27.txt, cli/28.txt: add and del of a Subnet print nothing, rc 0.
    let o = meshd(&dir, &["add", "Subnet", "02:00:00:00:00:0e"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    assert!(read(&dir.join("hosts/foo")).contains("\nSubnet = 02:00:00:00:00:0e\n"));
    let o = meshd(&dir, &["del", "Subnet", "02:00:00:00:00:0E"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    assert!(!read(&dir.join("hosts/foo")).contains("Subnet"));
    // Nothing left to remove, nothing to get: rc 1 and tinc's message.
    let o = meshd(&dir, &["del", "Subnet"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "No matching configuration variables found.\n");
    let o = meshd(&dir, &["get", "Subnet"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "No matching configuration variables found.\n");
    // `VAR=VALUE` and `VAR = VALUE` are read like a config line.
    assert_ok(&meshd(&dir, &["set", "Port=1655"]));
    assert_ok(&meshd(&dir, &["set", "Port", "=", "1656"]));
    assert_eq!(stdout(&meshd(&dir, &["get", "port"])), "1656\n");
    assert_eq!(read(&dir.join("hosts/foo")).matches("Port").count(), 1);
}

#[test]
fn set_on_multi_valued_warns_add_dedups_del_all() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    assert_ok(&meshd(&dir, &["add", "Subnet", "10.9.0.1/32"]));
    assert_ok(&meshd(&dir, &["add", "Subnet", "10.9.0.2/32"]));
    // Adding a value that is there changes nothing.
    assert_ok(&meshd(&dir, &["add", "Subnet", "10.9.0.2/32"]));
    let o = meshd(&dir, &["get", "Subnet"]);
    assert_eq!(stdout(&o), "10.9.0.1/32\n10.9.0.2/32\n");
    let o = meshd(&dir, &["set", "Subnet", "10.9.0.3/32"]);
    assert_ok(&o);
    assert_eq!(
        stderr(&o),
        "Warning: removing Subnet = 10.9.0.1/32\nWarning: removing Subnet = 10.9.0.2/32\n"
    );
    assert_eq!(stdout(&meshd(&dir, &["get", "Subnet"])), "10.9.0.3/32\n");
    assert_ok(&meshd(&dir, &["add", "Subnet", "10.9.0.4/32"]));
    assert_ok(&meshd(&dir, &["del", "Subnet"]));
    assert_exit1(&meshd(&dir, &["get", "Subnet"]));
    // add on a single-valued variable replaces it, without a warning.
    let o = meshd(&dir, &["add", "Port", "7"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "");
    assert_eq!(stdout(&meshd(&dir, &["get", "Port"])), "7\n");
}

#[test]
fn values_are_checked_as_start_would_and_refusals_leave_files_alone() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    let host_before = read(&dir.join("hosts/foo"));
    let conf_before = read(&dir.join("tinc.conf"));
    for args in [
        &["set", "Port", "abc"][..],
        &["add", "Subnet", "10.9.0.300"],
        &["set", "Mode", "router"],
        &["set", "HelloInterval", "5s"],
        &["add", "VirtualIP", "not-an-ip"],
    ] {
        let o = meshd(&dir, args);
        assert_exit1(&o);
        assert!(
            stderr(&o).contains("Nothing changed"),
            "{args:?}: {}",
            show(&o)
        );
    }
    let o = meshd(&dir, &["set", "Port", "abc"]);
    assert!(stderr(&o).contains("hosts/foo:"), "{}", show(&o));
    assert!(stderr(&o).contains("bad value for Port"), "{}", show(&o));
    assert_eq!(read(&dir.join("hosts/foo")), host_before);
    assert_eq!(read(&dir.join("tinc.conf")), conf_before);
    // Missing values and variables.
    let o = meshd(&dir, &["set", "Port"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "No value for variable given.\n");
    let o = meshd(&dir, &["get"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Invalid number of arguments.\n");
}

#[test]
fn unknown_and_server_variables_need_force() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    std::fs::write(dir.join("hosts/bar"), "Address = 192.0.2.2\n").unwrap();
    let o = meshd(&dir, &["set", "Frobnication", "yes"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Frobnication: is not a known configuration variable! Use --force"));
    let o = meshd(&dir, &["set", "bar.Mode", "switch"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Mode is not a host configuration variable! Use --force"));
    assert!(!read(&dir.join("hosts/bar")).contains("Mode"));
    // --force writes them, with a warning.
    let o = meshd(&dir, &["--force", "set", "Frobnication", "yes"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("Warning: Frobnication is not a known configuration variable!"));
    assert_eq!(stdout(&meshd(&dir, &["get", "Frobnication"])), "yes\n");
    let o = meshd(&dir, &["--force", "set", "bar.Mode", "switch"]);
    assert_ok(&o);
    assert!(read(&dir.join("hosts/bar")).contains("\nMode = switch\n"));
    // tinc's obsolete variables (variables.py): refused without --force, a warning with it.
    let o = meshd(&dir, &["set", "PrivateKey", "12345"]);
    assert_exit1(&o);
    assert_eq!(
        stderr(&o),
        "PrivateKey is an obsolete variable! Use --force to use it anyway.\n"
    );
    assert!(!read(&dir.join("tinc.conf")).contains("PrivateKey"));
    let o = meshd(&dir, &["--force", "set", "PrivateKey", "67890"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("Warning: PrivateKey is an obsolete variable!"));
    assert_eq!(stdout(&meshd(&dir, &["get", "PrivateKey"])), "67890\n");
    assert_ok(&meshd(&dir, &["del", "PrivateKey"]));
    assert_exit1(&meshd(&dir, &["get", "PrivateKey"]));
    // --force also writes a value that would not load, saying so.
    let o = meshd(&dir, &["--force", "set", "Port", "abc"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("written anyway"), "{}", show(&o));
    assert_eq!(stdout(&meshd(&dir, &["get", "Port"])), "abc\n");
}

#[test]
fn node_prefix_reads_and_writes_that_nodes_host_file() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    std::fs::write(dir.join("hosts/bar"), "# bar\nAddress = 192.0.2.2\n").unwrap();
    assert_ok(&meshd(&dir, &["add", "bar.Address", "192.0.2.3", "1655"]));
    let o = meshd(&dir, &["get", "bar.Address"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "192.0.2.2\n192.0.2.3 1655\n");
    assert_ok(&meshd(&dir, &["set", "bar.Port", "1656"]));
    assert_eq!(
        read(&dir.join("hosts/bar")),
        "# bar\nAddress = 192.0.2.2\nAddress = 192.0.2.3 1655\nPort = 1656\n"
    );
    // `get bar.Port` reads the file, not the running daemon's port.
    assert_eq!(stdout(&meshd(&dir, &["get", "bar.Port"])), "1656\n");
    let o = meshd(&dir, &["set", "ba-r.Port", "1"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Invalid name for node.\n");
    let o = meshd(&dir, &["set", "nobody.Port", "1"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).starts_with("Could not open configuration file"),
        "{}",
        show(&o)
    );
}

#[test]
fn config_synonyms() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    assert_ok(&meshd(&dir, &["config", "replace", "Mode", "switch"]));
    assert_eq!(stdout(&meshd(&dir, &["config", "Mode"])), "switch\n");
    assert_ok(&meshd(&dir, &["config", "change", "Port", "5"]));
    assert_eq!(stdout(&meshd(&dir, &["config", "get", "Port"])), "5\n");
    assert_ok(&meshd(&dir, &["config", "add", "Subnet", "10.9.0.1"]));
    assert_ok(&meshd(&dir, &["config", "Subnet", "10.9.0.2"]));
    assert_eq!(stdout(&meshd(&dir, &["config", "Subnet"])), "10.9.0.2\n");
    assert_ok(&meshd(&dir, &["config", "del", "Subnet"]));
    assert_ok(&meshd(&dir, &["config", "set", "Port", "6"]));
    assert_eq!(stdout(&meshd(&dir, &["get", "Port"])), "6\n");
}

#[test]
fn running_daemon_port_and_reload_after_a_change() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    let mut daemons = Reaper::default();
    let o = meshd(&dir, &["start"]);
    assert_ok(&o);
    daemons.track_dir(&dir);
    // cli/24.txt: `get Port` prints the port the daemon listens on (Port = 0: a random one).
    let o = meshd(&dir, &["get", "Port"]);
    assert_ok(&o);
    let port: u16 = stdout(&o).trim().parse().expect("a port number");
    assert_ne!(port, 0);
    // cli/44.txt, cli/45.txt: -b and --force change nothing for other commands.
    let pid = stdout(&meshd(&dir, &["pid"]));
    assert_eq!(stdout(&meshd(&dir, &["-b", "pid"])), pid);
    assert_eq!(stdout(&meshd(&dir, &["--force", "pid"])), pid);
    // After a change the daemon reloads: the new Subnet is its own.
    assert_ok(&meshd(&dir, &["add", "Subnet", "02:00:00:00:00:0e"]));
    let ok = wait_until(std::time::Duration::from_secs(10), || {
        stdout(&meshd(&dir, &["dump", "subnets"])).contains("02:00:00:00:00:0e owner foo")
    });
    assert!(ok, "{}", read(&dir.join("meshd.log")));
    assert_ok(&meshd(&dir, &["stop"]));
}

#[test]
fn usage_errors_exit_1_with_tincs_messages() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    let cases: &[(&[&str], &str)] = &[
        // cli/41.txt, cli/46.txt
        (&["stop", "extra"], "Too many arguments!\n"),
        (&["pid", "-o", "Foo=bar"], "Too many arguments!\n"),
        // cli/03.txt
        (&["invite"], "Not enough arguments!\n"),
        // cli/11.txt
        (
            &["frobnicate"],
            "Unknown command `frobnicate'.\nTry `meshd --help' for more information.\n",
        ),
        // cli/12.txt
        (&["info"], "Invalid number of arguments.\n"),
        // cli/10.txt
        (
            &["dump", "nodes", "extra"],
            "Invalid number of arguments.\nTry `meshd --help' for more information.\n",
        ),
        // tinc's cmd_misc.py: `debug` takes one level; a stray word after `restart` is
        // tincd's getopt complaint.
        (&["debug"], "Invalid number of arguments.\n"),
        (&["debug", "1", "2"], "Invalid number of arguments.\n"),
        (
            &["restart", "bad-incorrect-argument"],
            "meshd: unrecognized argument 'bad-incorrect-argument'\nTry `meshd --help' for more information.\n",
        ),
    ];
    for (args, message) in cases {
        let o = meshd(&dir, args);
        assert_exit1(&o);
        assert_eq!(stderr(&o), *message, "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    // Commands are case-insensitive words; `list` is `dump`; `version` is --version.
    assert_eq!(stdout(&meshd(&dir, &["GET", "Port"])), "0\n");
    assert_eq!(
        stderr(&meshd(&dir, &["LIST", "nodes", "extra"])),
        "Invalid number of arguments.\nTry `meshd --help' for more information.\n"
    );
    let o = meshd(&dir, &["version"]);
    assert_ok(&o);
    assert!(stdout(&o).starts_with("meshd "), "{}", show(&o));
    // Help stays helpful and succeeds.
    let o = meshd(&dir, &["--help"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("get"), "{}", show(&o));
    let o = meshd(&dir, &["set", "--help"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("VALUE"), "{}", show(&o));
}

#[test]
fn unknown_option_before_the_command_is_clap_s_message_exit_1() {
    let t = tempfile::tempdir().unwrap();
    let o = meshd(t.path(), &["--frob", "pid"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("'--frob'"), "{}", show(&o));
}

/// A network directory as tinc 1.1 writes it (cli/29.txt): tinc.conf, an RSA block.
fn tinc_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("alpha");
    std::fs::create_dir_all(dir.join("hosts")).unwrap();
    std::fs::write(
        dir.join("tinc.conf"),
        "Name = alpha\nDeviceType = dummy\nMode = switch\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hosts/alpha"),
        "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA2r6AnL4BBlBNdbMur6ipz0lLYXZILP3F6ANoeN5ir3a5ZYNR\n-----END RSA PUBLIC KEY-----\n\
         Ed25519PublicKey = FUn5hL4ooW0dBw77BiNwKIdPzEf/n32SRga2yMLwk6I\nAddress = 127.0.0.1\nPort = 16551\n",
    )
    .unwrap();
    dir
}

#[test]
fn verbs_work_on_a_tinc_directory() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_dir(t.path());
    assert_eq!(stdout(&meshd(&dir, &["get", "Port"])), "16551\n");
    assert_eq!(stdout(&meshd(&dir, &["get", "Mode"])), "switch\n");
    assert_ok(&meshd(&dir, &["add", "ConnectTo", "beta"]));
    assert_eq!(
        read(&dir.join("tinc.conf")),
        "Name = alpha\nDeviceType = dummy\nMode = switch\nConnectTo = beta\n"
    );
    assert!(!dir.join("meshd.conf").exists());
    assert_ok(&meshd(&dir, &["add", "Subnet", "02:00:00:00:00:0a"]));
    let host = read(&dir.join("hosts/alpha"));
    assert!(
        host.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"),
        "{host}"
    );
    assert!(
        host.ends_with("Port = 16551\nSubnet = 02:00:00:00:00:0a\n"),
        "{host}"
    );
    let o = meshd(&dir, &["export"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), format!("Name = alpha\n{host}"));
}

#[test]
fn set_says_when_another_file_s_value_wins() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    append(&dir.join("tinc.conf"), "Port = 5\n");
    let o = meshd(&dir, &["set", "Port", "7"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("Port is given more than once; using the value from"),
        "{}",
        show(&o)
    );
    assert!(stderr(&o).contains("tinc.conf:"), "{}", show(&o));
}

/// Runs `meshd ARGS...` with stdin and stdout on a new terminal, types `typed` and then an
/// end-of-file (^D); returns what the terminal showed.
fn meshd_on_terminal(args: &[&str], typed: &str) -> (Option<i32>, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master_fd, mut slave_fd) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the pointed-to ints; the other pointers may
    // be null (no name, default terminal settings and size).
    let rc = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
    let (master, slave) = unsafe {
        (
            OwnedFd::from_raw_fd(master_fd),
            OwnedFd::from_raw_fd(slave_fd),
        )
    };
    let mut cmd = meshd_command();
    cmd.args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave))
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn meshd");
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let mut reader = master.try_clone().unwrap();
    let shown = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        // The terminal reports EIO once the last process holding it is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&v).into_owned()
    });
    master.write_all(typed.as_bytes()).unwrap();
    master.write_all(b"\x04").unwrap();
    let status = child.wait().expect("wait meshd");
    (status.code(), shown.join().unwrap())
}

#[test]
fn command_mode_prompts_on_a_terminal_unless_batch() {
    let t = tempfile::tempdir().unwrap();
    let dir = tinc_test_node(t.path());
    let d = dir.to_str().unwrap();
    let (code, shown) = meshd_on_terminal(&["-c", d], "get Port\n");
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("meshd> ").count(), 2, "{shown}");
    assert!(shown.contains("0\r\n"), "{shown}");
    let (code, shown) = meshd_on_terminal(&["-c", d, "-n", "lab"], "get Port\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("meshd.lab> "), "{shown}");
    let (code, shown) = meshd_on_terminal(&["-b", "-c", d], "get Port\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains("meshd> "), "{shown}");
    assert!(shown.contains("0\r\n"), "{shown}");
}
