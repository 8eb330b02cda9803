//! Issue 21: what running tinc 1.1's own integration tests (test/integration) against meshd
//! found, one regression test each. Outputs are compared with ../shared/tinc11-observed/
//! (cli/16.txt: `Could not open pid file PATH: No such file or directory`, rc 1).

mod cli_support;

use cli_support::*;

#[test]
fn no_daemon_is_tincs_pidfile_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    init_node(&dir, "alpha", free_port());
    for verb in [
        &["pid"][..],
        &["dump", "nodes"],
        &["dump", "foobar"],
        &["stop"],
    ] {
        let o = meshd(&dir, verb);
        assert_exit1(&o);
        let want = format!(
            "Could not open pid file {}: No such file or directory",
            dir.join("meshd.pid").display()
        );
        assert!(stderr(&o).contains(&want), "{verb:?}: {}", show(&o));
    }
    // invite with Port = 0 and no daemon: the pidfile error, then tinc's advice.
    let z = tmp.path().join("z");
    assert_ok(&meshd(&z, &["init", "zed", "--address", "127.0.0.1"]));
    assert_ok(&meshd(&z, &["set", "Port", "0"]));
    let o = meshd(&z, &["invite", "newbie"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("Could not open pid file"),
        "{}",
        show(&o)
    );
    assert!(
        stderr(&o).contains("or set the Port option"),
        "{}",
        show(&o)
    );
    let o = meshd(&z, &["invite", "!@#"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Invalid name for node"), "{}", show(&o));
}

#[test]
fn repeated_options_override_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    init_node(&dir, "alpha", free_port());
    let d = dir.to_str().unwrap();
    let o = meshd(&dir, &["-c", d, "-n", "net", "-n", "net", "get", "Name"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "alpha\n");
    // tincd's `-D -d -d2`: the last one wins (was: "cannot be used multiple times").
    let o = meshd(
        &dir,
        &[
            "start",
            "-d",
            "-d2",
            "--pidfile=/nonexistent/x",
            "--pidfile=/nonexistent/y",
            "-c",
            d,
            "-D",
        ],
    );
    assert!(!stderr(&o).contains("multiple times"), "{}", show(&o));
    // A bad -n is refused before command mode reads anything (tinc: rc 1).
    let o = meshd_stdin(&["-c", d, "-n", "n/e"], "");
    assert_exit1(&o);
}

#[test]
fn command_mode_comments_connect_and_reachable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    init_node(&dir, "alpha", free_port());
    let d = dir.to_str().unwrap();
    // Only a line that starts with `#` is a comment (tinc's cmd_misc).
    assert_ok(&meshd_stdin(&["-c", d], "# a comment\n"));
    let o = meshd_stdin(&["-c", d], " # \n");
    assert_exit1(&o);
    assert!(stderr(&o).contains("Unknown command"), "{}", show(&o));
    for (args, want) in [
        (&["connect"][..], "Invalid number of arguments"),
        (&["connect", "a", "b"], "Invalid number of arguments"),
        (&["connect", "bar@"], "Invalid name for node"),
        (&["disconnect", "bar@"], "Invalid name for node"),
        (&["connect", "bar"], "Could not open pid file"),
        (
            &["dump", "reachable", "edges"],
            "`reachable' only supported for nodes.",
        ),
        (&["sign", "/nonexistent"], "Could not open /nonexistent"),
    ] {
        let o = meshd(&dir, args);
        assert_exit1(&o);
        assert!(stderr(&o).contains(want), "{args:?}: {}", show(&o));
    }
    std::fs::write(dir.join("ed25519_key.priv"), "junk\n").unwrap();
    let o = meshd(&dir, &["sign", "/etc/hostname"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("Could not read private key from"),
        "{}",
        show(&o)
    );
}

#[test]
fn import_takes_only_tincs_name_lines_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    init_node(&dir, "alpha", free_port());
    let d = dir.to_str().unwrap();
    for junk in ["fred", "Name fred", "name = fred", "name=fred"] {
        let o = meshd_stdin(&["-c", d, "import"], junk);
        assert_exit1(&o);
        assert!(
            stderr(&o).contains("Junk at the beginning"),
            "{junk}: {}",
            show(&o)
        );
        assert!(!dir.join("hosts/fred").exists(), "{junk}");
    }
    let o = meshd_stdin(
        &["-c", d, "import"],
        &format!("Name = {}\n", "x".repeat(5000)),
    );
    assert_exit1(&o);
    assert!(stderr(&o).contains("Filename too long"), "{}", show(&o));
    let o = meshd_stdin(&["-c", d, "import"], "Name=fred\nAddress = sun\n");
    assert_ok(&o);
    assert_eq!(read(&dir.join("hosts/fred")), "Address = sun\n");
}
