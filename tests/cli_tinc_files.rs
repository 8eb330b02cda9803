//! Issue 21: `init` and `join` write tinc's `tinc.conf` (an older `meshd.conf` is still read
//! and edited), and the words tinc 1.1's integration tests look for in `invite`, `sign`,
//! `export` and `fsck` errors (../shared/tinc11-observed/cli/01.txt, fsck.txt).

mod cli_support;

use cli_support::*;

#[test]
fn init_writes_tinc_conf_and_an_old_meshd_conf_still_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    init_node(&dir, "alpha", free_port());
    assert!(!dir.join("meshd.conf").exists());
    let conf = read(&dir.join("tinc.conf"));
    assert!(conf.lines().any(|l| l == "Name = alpha"), "{conf}");
    assert!(conf.lines().any(|l| l == "Mode = switch"), "{conf}");
    // fsck (tinc's too) is happy with what init made.
    assert_ok(&meshd(&dir, &["fsck"]));
    assert_ok(&meshd(&dir, &["set", "PingTimeout", "7"]));
    assert!(read(&dir.join("tinc.conf")).contains("PingTimeout = 7"));

    // A directory made by an older meshd: meshd.conf is read and edited, tinc.conf untouched.
    std::fs::write(dir.join("meshd.conf"), "Name = beta\nMode = switch\n").unwrap();
    std::fs::write(dir.join("hosts/beta"), "Port = 0\n").unwrap();
    let o = meshd(&dir, &["get", "Name"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "beta\n");
    let before = read(&dir.join("tinc.conf"));
    assert_ok(&meshd(&dir, &["set", "PingTimeout", "9"]));
    assert!(read(&dir.join("meshd.conf")).contains("PingTimeout = 9"));
    assert_eq!(read(&dir.join("tinc.conf")), before);
}

#[test]
fn invite_sign_export_and_fsck_say_what_tinc_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    // Port 0: a dynamic port, so invite needs the running daemon to name it.
    init_node(&dir, "alpha", 0);
    for node in ["alpha", "beta"] {
        if node == "beta" {
            std::fs::write(dir.join("hosts/beta"), "Port = 1\n").unwrap();
        }
        let o = meshd(&dir, &["invite", node]);
        assert_exit1(&o);
        assert!(
            stderr(&o).contains(&format!("A host config file for {node} already exists!")),
            "{}",
            show(&o)
        );
    }
    let o = meshd(&dir, &["invite", "gamma"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("is not running. Please start tincd"),
        "{}",
        show(&o)
    );

    let key = dir.join("ed25519_key.priv");
    std::fs::remove_file(&key).unwrap();
    let o = meshd(&dir, &["sign", "/etc/hostname"]);
    assert_exit1(&o);
    assert_eq!(
        stderr(&o),
        format!(
            "meshd: Could not open {}: No such file or directory\n",
            key.display()
        )
    );

    std::fs::write(dir.join("tinc.conf"), "").unwrap();
    let o = meshd(&dir, &["export"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Could not find Name"), "{}", show(&o));

    std::fs::remove_file(dir.join("tinc.conf")).unwrap();
    let o = meshd(&dir, &["fsck"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("No tinc configuration found."),
        "{}",
        show(&o)
    );
}

#[test]
fn join_verify_network_and_fsck_scripts_say_what_tinc_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    init_node(&dir, "alpha", free_port());
    let d = dir.to_str().unwrap();

    let o = meshd(&dir, &["export"]);
    assert_ok(&o);
    std::fs::remove_file(dir.join("tinc.conf")).unwrap();
    let o = meshd(&dir, &["export"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Could not open"), "{}", show(&o));
    init_node(&tmp.path().join("m"), "beta", free_port());
    let m = tmp.path().join("m");

    // join into a directory that has a network: tinc's "already exists".
    let o = meshd(
        &m,
        &[
            "join",
            "127.0.0.1:1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
    );
    assert_exit1(&o);
    assert!(
        stderr(&o).contains(&format!(
            "Configuration file {}/tinc.conf already exists!",
            m.display()
        )),
        "{}",
        show(&o)
    );

    // join without a URL reads it from stdin, as tinc does.
    let j = tmp.path().join("j");
    let o = meshd_stdin(&["-c", j.to_str().unwrap(), "join"], "");
    assert_exit1(&o);
    assert!(
        stderr(&o).starts_with("Error while reading stdin"),
        "{}",
        show(&o)
    );
    let o = meshd_stdin(&["-c", j.to_str().unwrap(), "join"], "127.0.0.1:1/AAAA\n");
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("Invalid invitation URL"),
        "{}",
        show(&o)
    );
    // A host that does not resolve (RFC 6761: .invalid never does): tinc's words.
    let o = meshd(&j, &["join", &format!("meshd.invalid/{}", "A".repeat(48))]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("Error looking up meshd.invalid port 655"),
        "{}",
        show(&o)
    );
    // An inviter that does not answer: tinc's words.
    let url = format!("127.0.0.1:{}/{}", free_port(), "A".repeat(48));
    let o = meshd(&j, &["join", &url]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("Could not connect to 127.0.0.1 port "),
        "{}",
        show(&o)
    );
    assert!(!j.join("tinc.conf").exists());

    for input in ["", "Signature = foo bar baz"] {
        let o = meshd_stdin(&["-c", m.to_str().unwrap(), "verify", "beta"], input);
        assert_exit1(&o);
        assert!(
            stderr(&o).starts_with("Invalid input"),
            "{input:?}: {}",
            show(&o)
        );
    }

    let o = meshd(&m, &["network", "foo./"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Invalid character in netname!\n");
    let o = meshd_stdin(&["-c", d], "network foo./\n");
    assert!(
        stderr(&o).contains("Invalid character in netname!"),
        "{}",
        show(&o)
    );

    // fsck without the private key: tinc's words.
    let key = m.join("ed25519_key.priv");
    let saved = read(&key);
    std::fs::remove_file(&key).unwrap();
    let o = meshd(&m, &["fsck"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).starts_with("ERROR: No Ed25519 private key found:"),
        "{}",
        show(&o)
    );
    std::fs::write(&key, saved).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    // fsck without the own public key: tinc's warning, exit 0; --force writes it.
    let host = m.join("hosts/beta");
    let with_key = read(&host);
    let without: String = with_key
        .lines()
        .filter(|l| !l.starts_with("Ed25519PublicKey"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&host, &without).unwrap();
    let o = meshd(&m, &["fsck"]);
    assert_ok(&o);
    assert!(
        stderr(&o).starts_with("WARNING: No (usable) public Ed25519 key found for this host"),
        "{}",
        show(&o)
    );
    assert_ok(&meshd(&m, &["--force", "fsck"]));
    assert_eq!(stderr(&meshd(&m, &["fsck"])), "");

    // fsck: a *-up script no event runs.
    assert_ok(&meshd(&m, &["fsck"]));
    std::fs::write(m.join("fake-up"), "").unwrap();
    let o = meshd(&m, &["fsck"]);
    assert_ok(&o);
    assert!(
        stderr(&o).starts_with(&format!(
            "WARNING: Unknown script {}/fake-up found.\n",
            m.display()
        )),
        "{}",
        show(&o)
    );
}
