//! Invitations on loopback, without root: `meshd invite` on a running node, `meshd join` in
//! another directory, the joined node starts and meets the inviter; every refusal (used,
//! expired, revoked, forged, malformed) leaves nothing written on the joiner's side.

mod cli_support;

use cli_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// Starts a loopback inviter `node_1` in `dir`; returns its port.
fn inviter(reaper: &mut Reaper, dir: &Path) -> u16 {
    let port = free_port();
    init_node(dir, "node_1", port);
    start_node(reaper, dir, "node_1", port, &[dir])
}

/// `meshd -c DIR invite NODE ARGS...`, returning the URL.
fn invite(dir: &Path, node: &str, extra: &[&str]) -> String {
    let mut args = vec!["invite", node];
    args.extend_from_slice(extra);
    let o = meshd(dir, &args);
    assert_ok(&o);
    let url = stdout(&o).trim().to_string();
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "stdout is exactly the URL: {}",
        show(&o)
    );
    url
}

/// Every entry under `dir` (recursive), for "nothing was written" checks.
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path().display().to_string());
            if e.path().is_dir() {
                out.extend(entries(&e.path()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn invite_join_start_and_meet() {
    let tmp = tempfile::tempdir().unwrap();
    let (n1, n2, n3) = (
        tmp.path().join("n1"),
        tmp.path().join("n2"),
        tmp.path().join("n3"),
    );
    let mut reaper = Reaper::default();
    let port1 = inviter(&mut reaper, &n1);
    // Scripts record what they were given.
    for (script, log) in [
        ("invitation-created", "created.env"),
        ("invitation-accepted", "accepted.env"),
    ] {
        let p = n1.join(script);
        std::fs::write(
            &p,
            format!("#!/bin/sh\nenv | sort > \"$(dirname \"$0\")/{log}\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    append(
        &n1.join("tinc.conf"),
        "HelloInterval = 100ms\nDeadInterval = 400ms\n",
    );

    let url = invite(
        &n1,
        "node_2",
        &["--set", "Subnet=10.1.1.2", "--set", "Ifconfig=10.1.1.2/24"],
    );
    let (authority, secret) = url.rsplit_once('/').unwrap();
    assert_eq!(authority, format!("127.0.0.1:{port1}"));
    assert_eq!(secret.len(), 48);
    let created = read(&n1.join("created.env"));
    assert!(created.contains("NODE=node_2\n"), "{created}");
    assert!(
        created.contains(&format!("INVITATION_URL={url}\n")),
        "{created}"
    );
    assert!(created.contains("INVITATION_FILE="), "{created}");

    // The invitation is stored 0600 in a 0700 dir, named by a hash: the cookie is nowhere.
    let inv_dir = n1.join("invitations");
    assert_eq!(mode_of(&inv_dir), 0o700);
    let listed = meshd(&n1, &["dump", "invitations"]);
    assert_ok(&listed);
    let line = stdout(&listed);
    let (file, who) = line.trim().split_once(' ').unwrap();
    assert_eq!((file.len(), who), (24, "node_2"));
    assert_eq!(mode_of(&inv_dir.join(file)), 0o600);
    let cookie = &secret[24..];
    for e in std::fs::read_dir(&inv_dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(cookie));
        assert!(!std::fs::read_to_string(e.path())
            .unwrap_or_default()
            .contains(cookie));
    }
    let invitation = read(&inv_dir.join(file));
    assert!(
        invitation.starts_with(
            "Name = node_2\nConnectTo = node_1\nMode = switch\nHelloInterval = 100ms\nDeadInterval = 400ms\n"
        ),
        "{invitation}"
    );

    let port2 = free_port();
    let o = meshd(&n2, &["join", &url, "--port", &port2.to_string()]);
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("Connected to 127.0.0.1 port {port1}")),
        "{err}"
    );
    assert!(err.contains("Invitation successfully accepted."), "{err}");
    let conf = read(&n2.join("tinc.conf"));
    assert!(
        conf.contains(
            "Name = node_2\nConnectTo = node_1\nMode = switch\nHelloInterval = 100ms\nDeadInterval = 400ms\n"
        ),
        "{conf}"
    );
    let own = read(&n2.join("hosts/node_2"));
    assert!(
        own.starts_with(&format!(
            "Port = {port2}\nSubnet = 10.1.1.2\nEd25519PublicKey = "
        )),
        "{own}"
    );
    assert!(read(&n2.join("hosts/node_1")).contains(&format!("Port = {port1}")));
    // As tinc: without --force (and no terminal to ask on) the generated script waits for
    // review as tinc-up.invitation, not executable; no tinc-up.
    let pending = n2.join("tinc-up.invitation");
    assert!(read(&pending).contains("ip addr replace 10.1.1.2/24 dev \"$INTERFACE\""));
    assert_eq!(mode_of(&pending), 0o644);
    assert!(!n2.join("tinc-up").exists());
    assert!(err.contains("tinc-up.invitation: review it"), "{err}");
    assert_eq!(mode_of(&n2.join("ed25519_key.priv")), 0o600);
    // The inviter stored exactly the joiner's key.
    let key_line = own
        .lines()
        .find(|l| l.starts_with("Ed25519PublicKey"))
        .unwrap();
    assert_eq!(read(&n1.join("hosts/node_2")).trim(), key_line);
    let accepted_path = n1.join("accepted.env");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&accepted_path).is_ok_and(|t| t.contains("REMOTEADDRESS"))
    }));
    let accepted = read(&n1.join("accepted.env"));
    assert!(
        accepted.contains("NODE=node_2\n") && accepted.contains("REMOTEADDRESS=127.0.0.1\n"),
        "{accepted}"
    );

    // The URL works once.
    let o = meshd(&n3, &["join", &url]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("unknown or was already used"),
        "{}",
        show(&o)
    );
    assert!(stderr(&o).contains("nothing was written"), "{}", show(&o));
    assert!(!n3.exists());
    let o = meshd(&n1, &["dump", "invitations"]);
    assert_ok(&o);
    assert!(stdout(&o).is_empty() && stderr(&o).contains("No outstanding invitations."));
    // No staging directory left anywhere.
    assert!(
        entries(tmp.path()).iter().all(|e| !e.contains(".join-")),
        "{:?}",
        entries(tmp.path())
    );

    // The joined node starts and both see each other.
    append(&n2.join("tinc.conf"), "DeviceType = dummy\n");
    start_node(&mut reaper, &n2, "node_2", port2, &[&n1, &n2]);
    assert!(
        wait_until(Duration::from_secs(10), || sees_reachable(
            &n1, "node_1", "node_2", port2
        ) && sees_reachable(
            &n2, "node_2", "node_1", port1
        )),
        "node_1 and node_2 never met"
    );
    for d in [&n2, &n1] {
        assert_ok(&meshd(d, &["stop"]));
    }
}

#[test]
fn refused_joins_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let n1 = tmp.path().join("n1");
    let joiner = tmp.path().join("joiner");
    let mut reaper = Reaper::default();
    let port = inviter(&mut reaper, &n1);
    // No invitation key yet: meshd's reason, then tinc's words (cmd_join.py).
    let o = meshd(
        &joiner,
        &["join", &format!("127.0.0.1:{port}/{}", "A".repeat(48))],
    );
    assert_exit1(&o);
    for want in [
        "this node has no outstanding invitations",
        "Timed out waiting for the server",
        "Could not connect to inviter",
        "nothing was written",
    ] {
        assert!(stderr(&o).contains(want), "{want}: {}", show(&o));
    }
    assert!(!joiner.exists());
    let url = invite(&n1, "node_2", &[]);
    let (authority, secret) = url.rsplit_once('/').unwrap();
    let before = entries(tmp.path());
    let refused = |url: &str, why: &str| {
        let o = meshd(&joiner, &["join", url]);
        assert_exit1(&o);
        assert!(
            stderr(&o).contains(why),
            "{url}: wanted '{why}'\n{}",
            show(&o)
        );
        assert_eq!(entries(tmp.path()), before, "{url}: something was written");
    };
    refused(
        &format!("{authority}/{}", &secret[..40]),
        "Invalid invitation URL",
    );
    refused("no-slash-at-all", "Invalid invitation URL");
    // A server whose key does not hash to the URL's fingerprint: a man in the middle.
    let other_hash = if secret.starts_with('A') { "B" } else { "A" };
    let forged = format!("{authority}/{other_hash}{}", &secret[1..]);
    refused(&forged, "does not match the invitation URL");
    refused(&forged, "intercepting");
    refused(&forged, "Peer has an invalid key");
    // A wrong cookie.
    let last = if secret.ends_with('A') { "B" } else { "A" };
    refused(
        &format!("{authority}/{}{last}", &secret[..47]),
        "unknown or was already used",
    );
    refused(
        &format!("{authority}/{}{last}", &secret[..47]),
        "Timed out waiting for the server",
    );
    refused(
        &format!("{authority}/{}{last}", &secret[..47]),
        "Please try again",
    );
    // The inviter logs tinc's words (without the cookie).
    let log = read(&n1.join("meshd.log"));
    assert!(log.contains("we don't have an invitation key"), "{log}");
    assert!(
        log.contains("tried to use non-existing invitation"),
        "{log}"
    );
    // None of that used the invitation up.
    let o = meshd(&n1, &["dump", "invitations"]);
    assert!(stdout(&o).contains(" node_2"), "{}", show(&o));

    // Revoked.
    let url3 = invite(&n1, "node_3", &[]);
    assert_ok(&meshd(&n1, &["revoke-invitation", "node_3"]));
    refused(&url3, "unknown or was already used");
    assert_exit1(&meshd(&n1, &["revoke-invitation", "node_3"]));

    // A directory that already holds a network is never touched.
    let taken = tmp.path().join("taken");
    init_node(&taken, "someone", free_port());
    let taken_before = entries(&taken);
    let o = meshd(&taken, &["join", &url]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("tinc.conf already exists!"),
        "{}",
        show(&o)
    );
    assert_eq!(entries(&taken), taken_before);

    // The invitation still works after all of that.
    assert_ok(&meshd(
        &joiner,
        &["join", &url, "--port", &free_port().to_string()],
    ));

    // Expired (InvitationExpire is read by the daemon at each join).
    append(&n1.join("tinc.conf"), "InvitationExpire = 1\n");
    let url4 = invite(&n1, "node_4", &[]);
    std::thread::sleep(Duration::from_millis(2100));
    let o = meshd(&tmp.path().join("j4"), &["join", &url4]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("expired"), "{}", show(&o));
    assert!(!tmp.path().join("j4").exists());

    // No daemon at the URL's address.
    assert_ok(&meshd(&n1, &["stop"]));
    let url5 = invite(&n1, "node_5", &[]);
    let o = meshd(&tmp.path().join("j5"), &["join", &url5]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("is its daemon running?"),
        "{}",
        show(&o)
    );
    assert!(!tmp.path().join("j5").exists());
}

#[test]
fn invite_refuses_bad_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let n1 = tmp.path().join("n1");
    init_node(&n1, "node_1", free_port());
    for (args, why) in [
        (vec!["invite", "bad-name"], "node name 'bad-name' has '-'"),
        (
            vec!["invite", &"x".repeat(65)],
            "node name is too long (65 bytes, at most 64)",
        ),
        (
            vec!["invite", "node_1"],
            "A host config file for node_1 already exists!",
        ),
        (
            vec!["invite", "x", "--set", "ScriptsInterpreter=/bin/sh"],
            "would refuse it",
        ),
        (
            vec!["invite", "x", "--set", "Nonsense"],
            "expected VAR=VALUE",
        ),
        (
            vec!["invite", "x", "--set", "Ifconfig=10.1.1.2/99"],
            "prefix length",
        ),
    ] {
        let o = meshd(&n1, &args);
        assert_exit1(&o);
        assert!(stderr(&o).contains(why), "{args:?}: {}", show(&o));
    }
    std::fs::write(n1.join("hosts/node_2"), "Ed25519PublicKey = x\n").unwrap();
    let o = meshd(&n1, &["invite", "node_2"]);
    assert!(
        stderr(&o).contains("A host config file for node_2 already exists!"),
        "{}",
        show(&o)
    );
    // Without an Address, a joiner could not find us.
    let lone = tmp.path().join("lone");
    assert_ok(&meshd(&lone, &["init", "lone"]));
    let o = meshd(&lone, &["invite", "x"]);
    assert_exit1(&o);
    assert!(stderr(&o).contains("has no Address line"), "{}", show(&o));
    // Two invitations for one name: refused until revoked.
    let o = meshd(&n1, &["invite", "node_3"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("daemon is not running"), "{}", show(&o));
    let o = meshd(&n1, &["invite", "node_3"]);
    assert!(
        stderr(&o).contains("revoke-invitation node_3"),
        "{}",
        show(&o)
    );
}

#[test]
fn join_without_a_directory_uses_the_networks_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (base1, base2) = (tmp.path().join("etc1"), tmp.path().join("etc2"));
    let mut reaper = Reaper::default();
    let port = free_port();
    let with_base = |base: &Path, args: &[&str]| {
        let mut cmd = meshd_command();
        cmd.env("MESHD_CONFDIR_BASE", base).args(args);
        run_cmd(cmd)
    };
    assert_ok(&with_base(
        &base1,
        &[
            "-n",
            "lab",
            "init",
            "node_1",
            "--port",
            &port.to_string(),
            "--address",
            "127.0.0.1",
        ],
    ));
    let n1 = base1.join("lab");
    append(&n1.join("tinc.conf"), "DeviceType = dummy\n");
    start_node(&mut reaper, &n1, "node_1", port, &[&n1]);
    let o = with_base(&base1, &["-n", "lab", "invite", "node_2"]);
    assert_ok(&o);
    let url = stdout(&o).trim().to_string();
    assert!(read(&n1.join("hosts/node_1")).contains("Address = 127.0.0.1"));
    let o = with_base(&base2, &["join", &url, "--port", &free_port().to_string()]);
    assert_ok(&o);
    assert!(stderr(&o).contains("meshd -n lab start"), "{}", show(&o));
    assert!(read(&base2.join("lab/tinc.conf")).contains("Name = node_2"));
    assert!(read(&base2.join("lab/invitation-data")).contains("NetName = lab"));
    assert_ok(&meshd(&n1, &["stop"]));
}

/// `join --force` (after the URL, or before the verb as tinc's `tinc --force join`) enables
/// the tinc-up generated from Ifconfig/Route at once; `--batch` alone leaves it for review.
#[test]
fn join_force_enables_the_generated_tinc_up() {
    let tmp = tempfile::tempdir().unwrap();
    let n1 = tmp.path().join("n1");
    let mut reaper = Reaper::default();
    inviter(&mut reaper, &n1);
    let sets = [
        "--set",
        "Ifconfig=10.1.1.7/24",
        "--set",
        "Route=10.2.0.0/16 10.1.1.1",
    ];
    for (i, args) in [
        vec!["join", "URL", "--force"],
        vec!["--force", "join", "URL"],
        vec!["--batch", "join", "URL"],
    ]
    .into_iter()
    .enumerate()
    {
        let url = invite(&n1, &format!("node_{}", i + 2), &sets);
        let dir = tmp.path().join(format!("j{i}"));
        let mut args: Vec<&str> = args
            .into_iter()
            .map(|a| if a == "URL" { url.as_str() } else { a })
            .collect();
        let port = free_port().to_string();
        args.extend(["--port", &port]);
        let o = meshd(&dir, &args);
        assert_ok(&o);
        let (up, pending) = (dir.join("tinc-up"), dir.join("tinc-up.invitation"));
        if args.contains(&"--force") {
            assert!(!pending.exists(), "{args:?}");
            assert_eq!(mode_of(&up), 0o755, "{args:?}");
            let text = read(&up);
            assert!(text.contains("10.1.1.7/24"), "{text}");
            assert!(text.contains("10.2.0.0/16"), "{text}");
            assert!(stderr(&o).contains("tinc-up is enabled"), "{}", show(&o));
        } else {
            assert!(!up.exists(), "{args:?}");
            assert_eq!(mode_of(&pending), 0o644, "{args:?}");
            assert!(read(&pending).contains("10.1.1.7/24"));
            assert!(stderr(&o).contains("--force"), "{}", show(&o));
        }
    }
    assert_ok(&meshd(&n1, &["stop"]));
}
