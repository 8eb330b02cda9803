//! Issue 21: tinc verbs meshd used to refuse — `disconnect NODE`, `retry`, `purge`, `network`,
//! `fsck` — with tinc's arguments, output and exit codes (../shared/tinc11-observed/cli/20-22,
//! 31, 32 and fsck.txt: silent and 0 on success; `Could not read directory DIR: ...` and 1).

mod cli_support;

use cli_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn port_of(dir: &Path, name: &str) -> u16 {
    read(&dir.join("hosts").join(name))
        .lines()
        .find_map(|l| l.strip_prefix("Port = "))
        .expect("Port line")
        .trim()
        .parse()
        .unwrap()
}

fn copy_host(from: &Path, to: &Path, name: &str) {
    std::fs::copy(from.join("hosts").join(name), to.join("hosts").join(name)).unwrap();
}

fn node_names(dir: &Path) -> Vec<String> {
    dump_nodes(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// alpha <- beta <- gamma on loopback: alpha knows gamma only from gossip.
#[test]
fn disconnect_retry_and_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let g = tmp.path().join("g");
    let dirs = [a.as_path(), b.as_path(), g.as_path()];
    let mut reaper = Reaper::default();
    init_node(&a, "alpha", free_port());
    init_node(&b, "beta", free_port());
    init_node(&g, "gamma", free_port());
    copy_host(&a, &b, "alpha");
    copy_host(&b, &a, "beta");
    copy_host(&b, &g, "beta");
    copy_host(&g, &b, "gamma");
    append(&b.join("tinc.conf"), "ConnectTo = alpha\n");
    append(&g.join("tinc.conf"), "ConnectTo = beta\n");
    let pa = start_node(&mut reaper, &a, "alpha", port_of(&a, "alpha"), &dirs);
    let pb = start_node(&mut reaper, &b, "beta", port_of(&b, "beta"), &dirs);
    let pg = start_node(&mut reaper, &g, "gamma", port_of(&g, "gamma"), &dirs);
    let _ = pa;
    assert!(
        wait_until(Duration::from_secs(15), || sees_reachable(
            &a, "alpha", "beta", pb
        ) && sees_reachable(
            &a, "alpha", "gamma", pg
        )),
        "no mesh:\n{}",
        show(&meshd(&a, &["dump", "nodes"]))
    );

    // tinc: `disconnect beta` prints nothing, rc 0 (cli/20.txt).
    let o = meshd(&a, &["disconnect", "beta"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    assert!(
        peer_unreachable(&a, "beta"),
        "{}",
        show(&meshd(&a, &["dump", "nodes"]))
    );
    // `retry` (cli/21.txt) handshakes at once instead of after the 5 s back-off.
    let o = meshd(&a, &["retry"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    assert!(
        wait_until(Duration::from_secs(3), || sees_reachable(
            &a, "alpha", "beta", pb
        )),
        "retry did not bring beta back at once:\n{}",
        show(&meshd(&a, &["dump", "nodes"]))
    );

    let o = meshd(&a, &["disconnect", "nosuch"]);
    assert_exit1(&o);
    assert_eq!(
        stderr(&o),
        "Could not disconnect nosuch: no session with nosuch.\n"
    );
    // tinc 1.1's connect/disconnect word a missing or extra NODE as `info` does (cli/12.txt).
    let o = meshd(&a, &["disconnect"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Invalid number of arguments.\n");
    let o = meshd(&a, &["retry", "extra"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Too many arguments!\n");

    // gamma leaves: alpha still lists it, unreachable, until `purge` (cli/22.txt). Each node
    // purges for itself (beta too, or its gossip would bring gamma's record back).
    assert_ok(&meshd(&g, &["stop"]));
    assert!(wait_until(Duration::from_secs(10), || {
        peer_unreachable(&a, "gamma") && peer_unreachable(&b, "gamma")
    }));
    assert_ok(&meshd(&b, &["purge"]));
    let o = meshd(&a, &["purge"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    for _ in 0..2 {
        let names = node_names(&a);
        assert!(!names.contains(&"gamma".to_string()), "{names:?}");
        assert!(names.contains(&"beta".to_string()), "{names:?}");
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(sees_reachable(&a, "alpha", "beta", pb));

    // Without a daemon: rc 1, as every command that needs one.
    assert_ok(&meshd(&a, &["stop"]));
    for verb in [&["retry"][..], &["purge"], &["disconnect", "beta"]] {
        let o = meshd(&a, verb);
        assert_exit1(&o);
        assert!(
            stderr(&o).contains("is not running"),
            "{verb:?}: {}",
            show(&o)
        );
    }
}

#[test]
fn network_lists_networks_and_switches_in_command_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("etc");
    let with_base = |args: &[&str]| {
        let mut cmd = meshd_command();
        cmd.env("MESHD_CONFDIR_BASE", &base).args(args);
        run_cmd(cmd)
    };
    // tinc: "Could not read directory /usr/etc/tinc: No such file or directory", rc 1 (cli/32.txt).
    let o = with_base(&["network"]);
    assert_exit1(&o);
    assert_eq!(
        stderr(&o),
        format!(
            "Could not read directory {}: No such file or directory\n",
            base.display()
        )
    );
    assert_ok(&with_base(&["-n", "lab", "init", "one"]));
    assert_ok(&with_base(&["-n", "home", "init", "two"]));
    std::fs::create_dir_all(base.join("not_a_network")).unwrap();
    let o = with_base(&["network"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "home\nlab\n");
    // The base itself with a configuration is `.`, first.
    std::fs::write(base.join("tinc.conf"), "Name = base\n").unwrap();
    assert_eq!(stdout(&with_base(&["network"])), ".\nhome\nlab\n");

    // Command mode: `network NET` switches for the following lines.
    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", &base)
        .args(["-n", "lab"])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"get Name\nnetwork home\nget Name\nnetwork .\nget Name\n")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_ok(&o);
    assert_eq!(stdout(&o), "one\ntwo\nbase\n");
    // Outside command mode, as tinc: the name is checked, nothing switches, exit 0 (meshd
    // says what to use instead); an unsafe character is warned about, an invalid one is exit 1.
    let o = with_base(&["network", "lab"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("use -n lab"), "{}", show(&o));
    let o = with_base(&["network", "foo.<"]);
    assert_ok(&o);
    assert!(
        stderr(&o).starts_with("Warning: unsafe character in netname!\n"),
        "{}",
        show(&o)
    );
    for bad in ["foo./", ".hidden", "a\\b", ".."] {
        let o = with_base(&["network", bad]);
        assert_exit1(&o);
        assert_eq!(stderr(&o), "Invalid character in netname!\n", "{bad}");
    }
    let o = with_base(&["network", "foo", "bar"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("Too many arguments"), "{}", show(&o));
}

#[test]
fn fsck_is_silent_on_a_healthy_directory_and_names_each_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    // tinc fsck.txt: no configuration -> "ERROR: cannot read DIR/tinc.conf: ..." and rc 1.
    let o = meshd(&dir, &["fsck"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).starts_with(&format!(
            "ERROR: cannot read {}/tinc.conf: No such file or directory\nNo tinc configuration found. Create a new one with:\n\nmeshd -c {} init NAME\n",
            dir.display(),
            dir.display()
        )),
        "{}",
        show(&o)
    );
    assert_ok(&meshd(&dir, &["init", "alpha"]));
    // Healthy: nothing at all, rc 0 (cli/31.txt).
    let o = meshd(&dir, &["fsck"]);
    assert_ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));

    let key = dir.join("ed25519_key.priv");
    let up = dir.join("tinc-up");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&up, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = meshd(&dir, &["fsck"]);
    assert_exit1(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("ERROR: {}: permissions 0644", key.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("WARNING: {} is not executable", up.display())),
        "{err}"
    );
    // --force fixes both.
    let o = meshd(&dir, &["--force", "fsck"]);
    assert_ok(&o);
    assert_eq!(mode_of(&key) & 0o777, 0o600);
    assert_eq!(mode_of(&up) & 0o100, 0o100);
    assert_eq!(stderr(&meshd(&dir, &["fsck"])), "");

    // A public key that is not the private key's.
    let host = dir.join("hosts/alpha");
    let text = read(&host);
    let other = "Ed25519PublicKey = 5m+jGK2B855/5xrX1AVZD2wDNXwaGBI+Z3OiQbq9pPA";
    let wrong: String = text
        .lines()
        .map(|l| {
            if l.starts_with("Ed25519PublicKey") {
                other.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&host, wrong + "\n").unwrap();
    let o = meshd(&dir, &["fsck"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("does not match the private key"),
        "{}",
        show(&o)
    );
    // --force comments the wrong key out and appends the right one as tinc does, a PEM block.
    let o = meshd(&dir, &["--force", "fsck"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("Wrote Ed25519 public key"),
        "{}",
        show(&o)
    );
    let fixed = read(&host);
    assert!(fixed.contains(&format!("#{other}\n")), "{fixed}");
    assert!(
        fixed.contains("-----BEGIN ED25519 PUBLIC KEY-----\n"),
        "{fixed}"
    );
    let o = meshd(&dir, &["fsck"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "");

    // An unknown variable is a warning (the daemon ignores it), not a failure.
    append(&dir.join("tinc.conf"), "Foo = bar\n");
    let o = meshd(&dir, &["fsck"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("WARNING: ") && stderr(&o).contains("'Foo'"),
        "{}",
        show(&o)
    );
    // A missing private key.
    std::fs::remove_file(&key).unwrap();
    let o = meshd(&dir, &["fsck"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("No Ed25519 private key found"),
        "{}",
        show(&o)
    );
}

/// What tinc 1.1 printed for `tinc -c alpha sign FILE` with FILE = "hello\n" (cli/36.txt), and
/// alpha's public key from the same run (cli/29.txt).
const TINC_SIGNED: &str = "Signature = alpha 1796319748 g9xpmh3CcW4nKaF7kPpMKmCpBJ8H7UlHTHlxouSD/KhSXTr3Md09qQrQ+xAV5Uc9XI8PrteAr6O3DC18/zj/IA\nhello\n";
const TINC_ALPHA_KEY: &str = "Ed25519PublicKey = FUn5hL4ooW0dBw77BiNwKIdPzEf/n32SRga2yMLwk6I\n";

#[test]
fn sign_and_verify_as_tinc() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    assert_ok(&meshd(&a, &["init", "alpha"]));
    assert_ok(&meshd(&b, &["init", "beta"]));
    let file = tmp.path().join("f");
    std::fs::write(&file, "hello\n").unwrap();
    let o = meshd(&a, &["sign", file.to_str().unwrap()]);
    assert_ok(&o);
    let doc = stdout(&o);
    let (header, body) = doc.split_once('\n').unwrap();
    assert_eq!(body, "hello\n");
    let f: Vec<&str> = header.split(' ').collect();
    assert_eq!(&f[..3], ["Signature", "=", "alpha"], "{header}");
    assert!(f[3].parse::<u64>().unwrap() > 1_700_000_000, "{header}");
    assert_eq!(f[4].len(), 86, "{header}");
    let signed = tmp.path().join("signed");
    std::fs::write(&signed, &doc).unwrap();
    let signed = signed.to_str().unwrap();
    // `.` is this node, `*` whoever signed, NODE must be the signer.
    for who in [".", "*", "alpha"] {
        let o = meshd(&a, &["verify", who, signed]);
        assert_ok(&o);
        assert_eq!(stdout(&o), "hello\n");
    }
    let o = meshd(&a, &["verify", "beta", signed]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Signature is not made by beta.\n");
    // beta does not know alpha yet; then it does (stdin form).
    let o = meshd(&b, &["verify", "*", signed]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("public key is unknown"), "{}", show(&o));
    std::fs::copy(a.join("hosts/alpha"), b.join("hosts/alpha")).unwrap();
    let o = meshd_stdin(&["-c", b.to_str().unwrap(), "verify", "alpha"], &doc);
    assert_ok(&o);
    assert_eq!(stdout(&o), "hello\n");
    // One changed byte.
    let o = meshd_stdin(
        &["-c", b.to_str().unwrap(), "verify", "alpha"],
        &doc.replace("hello", "hellO"),
    );
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Invalid signature.\n");
    let o = meshd(&b, &["verify"]);
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Not enough arguments!\n");

    // A document tinc 1.1 signed verifies with tinc's key for alpha.
    std::fs::write(b.join("hosts/alpha"), TINC_ALPHA_KEY).unwrap();
    let o = meshd_stdin(&["-c", b.to_str().unwrap(), "verify", "alpha"], TINC_SIGNED);
    assert_ok(&o);
    assert_eq!(stdout(&o), "hello\n");
}

#[test]
fn log_level_is_for_that_stream_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    let mut reaper = Reaper::default();
    let port = start_node(&mut reaper, &dir, "alpha", port, &[&dir]);
    let stream = |args: &[&str]| {
        let mut cmd = meshd_command();
        cmd.arg("-c").arg(&dir).args(args);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(run_cmd(cmd)));
        rx
    };
    let debug = stream(&["log", "2"]);
    let plain = stream(&["log"]);
    std::thread::sleep(Duration::from_millis(500));
    // A datagram that is not meshd's: logged at debug level (2).
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"not a meshd packet", ("127.0.0.1", port))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_ok(&meshd(&dir, &["reload"]));
    std::thread::sleep(Duration::from_millis(300));
    assert_ok(&meshd(&dir, &["stop"]));
    let debug = stdout(&debug.recv_timeout(Duration::from_secs(30)).unwrap());
    let plain = stdout(&plain.recv_timeout(Duration::from_secs(30)).unwrap());
    assert!(
        debug.contains("dropping malformed datagram"),
        "log 2:\n{debug}"
    );
    assert!(debug.contains("reload"), "log 2:\n{debug}");
    assert!(plain.contains("reload"), "log:\n{plain}");
    assert!(
        !plain.contains("malformed"),
        "log (daemon level 1):\n{plain}"
    );
    let file = read(&dir.join("meshd.log"));
    assert!(
        !file.contains("malformed"),
        "the daemon's own log kept level 1:\n{file}"
    );
}

#[test]
fn top_redraws_node_counters_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    // tinc's top without a terminal: an error, rc 1 (cli/33.txt: "Error opening terminal").
    let o = meshd(&dir, &["top"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("meshd top needs a terminal"),
        "{}",
        show(&o)
    );
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &dir, "alpha", port, &[&dir]);
    // On a terminal (script(1) gives it one): two screens, `c` toggles cumulative, `q` quits.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "(sleep 1.5; printf c; sleep 1; printf q) | script -qec \"{} -c '{}' top\" /dev/null",
        meshd_bin(),
        dir.display()
    ));
    let o = run_cmd(cmd);
    assert_ok(&o);
    let screen = stdout(&o);
    assert!(screen.contains("\x1b[H\x1b[2J"), "{screen:?}");
    assert!(
        screen.contains("per second") && screen.contains("cumulative"),
        "{screen}"
    );
    assert!(
        screen.lines().any(|l| l.starts_with("alpha ")),
        "no row for alpha:\n{screen}"
    );
    assert_ok(&meshd(&dir, &["stop"]));
}
