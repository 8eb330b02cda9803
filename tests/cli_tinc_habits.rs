//! Issue 21 ("A tinc 1.1 user's habits"): behaviour a tinc user relies on, checked against
//! what a real tinc 1.1 did (../shared/tinc11-observed).

mod cli_support;

use cli_support::*;
use std::path::Path;
use std::time::Duration;

/// The variables of an `env` dump, as `KEY=VALUE` lines.
fn env_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn var<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
    vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A tinc-up that writes its environment to `out`.
fn env_script(path: &Path, out: &Path) {
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\nenv > '{}.tmp' && mv '{0}.tmp' '{0}'\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `meshd [-n NET | -c DIR] start` (detached) of node alpha with `DeviceType = dummy` and a
/// tinc-up that dumps its environment; returns that environment. `net` selects `-n NET`
/// (under a `MESHD_CONFDIR_BASE`), else `-c DIR`.
fn tinc_up_env(net: Option<&str>) -> Vec<(String, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    std::fs::create_dir(&base).unwrap();
    let dir = base.join(net.unwrap_or("plain"));
    let port = free_port();
    let run = |args: &[&str]| {
        let mut cmd = meshd_command();
        cmd.env("MESHD_CONFDIR_BASE", &base);
        match net {
            Some(n) => cmd.arg("-n").arg(n),
            None => cmd.arg("-c").arg(&dir),
        };
        cmd.args(args);
        run_cmd(cmd)
    };
    assert_ok(&run(&["init", "alpha", "--port", &port.to_string()]));
    append(&dir.join("tinc.conf"), "DeviceType = dummy\n");
    let out = tmp.path().join("tinc-up.env");
    env_script(&dir.join("tinc-up"), &out);
    let mut reaper = Reaper::default();
    assert_ok(&run(&["start"]));
    reaper.track_dir(&dir);
    assert!(
        wait_until(Duration::from_secs(20), || out.exists()),
        "tinc-up did not run"
    );
    let vars = env_vars(&read(&out));
    assert_ok(&run(&["stop"]));
    vars
}

/// Bug 4: with `DeviceType = dummy` and no `-d`, tinc gave tinc-up `DEBUG=0`, `DEVICE=dummy`,
/// `INTERFACE=dummy`, `NAME=alpha` and no `NETNAME` (script-env/tinc-alpha-tinc-up.env).
#[test]
fn scripts_get_tincs_device_interface_and_debug() {
    let vars = tinc_up_env(None);
    assert_eq!(var(&vars, "NAME"), Some("alpha"), "{vars:?}");
    assert_eq!(var(&vars, "DEVICE"), Some("dummy"), "{vars:?}");
    assert_eq!(var(&vars, "INTERFACE"), Some("dummy"), "{vars:?}");
    assert_eq!(var(&vars, "DEBUG"), Some("0"), "{vars:?}");
    assert_eq!(var(&vars, "NETNAME"), None, "{vars:?}");
}

/// Bug 1: `meshd -n neta start` (detached: the child is re-run with `-c DIR`) still gives the
/// scripts `NETNAME=neta`, as tinc did (script-env/tincN-alpha-tinc-up.env).
#[test]
fn detached_start_with_netname_gives_scripts_netname() {
    let vars = tinc_up_env(Some("neta"));
    assert_eq!(var(&vars, "NETNAME"), Some("neta"), "{vars:?}");
    assert_eq!(var(&vars, "NAME"), Some("alpha"), "{vars:?}");
}

/// Bug 5: tinc (cli/17.txt) fails with "Could not change to configuration directory: No
/// such file or directory", rc 1; meshd names the missing directory and no log file.
#[test]
fn start_in_a_missing_directory_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nonexistent");
    let o = meshd(&dir, &["start"]);
    assert!(!o.status.success(), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!err.to_lowercase().contains("log"), "{err}");
    assert!(!dir.exists(), "start created {}", dir.display());
}

/// Bug 3: `generate-ed25519-keys` comments the old key out in place (tinc's "old key(s)
/// found and disabled", cli/37.txt), no `.priv.old`; the file stays 0600 and loads.
#[test]
fn generate_keys_comments_the_old_key_out_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    let key = dir.join("ed25519_key.priv");
    let host = dir.join("hosts").join("alpha");
    let old_key = read(&key);
    let old_pub = read(&host)
        .lines()
        .find(|l| l.starts_with("Ed25519PublicKey"))
        .unwrap()
        .to_string();
    assert_ok(&meshd(&dir, &["generate-ed25519-keys"]));
    assert!(!dir.join("ed25519_key.priv.old").exists());
    assert_eq!(mode_of(&key), 0o600);
    let text = read(&key);
    let commented: String = old_key.lines().map(|l| format!("#{l}\n")).collect();
    assert!(text.starts_with(&commented), "{text}");
    let rest = &text[commented.len()..];
    assert_eq!(
        rest.matches("-----BEGIN ED25519 PRIVATE KEY-----").count(),
        1,
        "{text}"
    );
    assert!(!rest.contains('#'), "{text}");
    let host_text = read(&host);
    assert!(host_text.contains(&format!("#{old_pub}\n")), "{host_text}");
    let new_pub: Vec<&str> = host_text
        .lines()
        .filter(|l| l.starts_with("Ed25519PublicKey"))
        .collect();
    assert_eq!(new_pub.len(), 1, "{host_text}");
    assert_ne!(new_pub[0], old_pub);
    // A second rotation reads the file with the disabled block; the daemon loads the result.
    assert_ok(&meshd(&dir, &["generate-ed25519-keys"]));
    let text2 = read(&key);
    assert_eq!(
        text2
            .matches("#-----BEGIN ED25519 PRIVATE KEY-----")
            .count(),
        2,
        "{text2}"
    );
    assert_eq!(mode_of(&key), 0o600);
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &dir, "alpha", port, &[&dir]);
    assert_ok(&meshd(&dir, &["stop"]));
}

/// Issue 21, places: a tinc user's `/etc/tinc/NET` (here `TINCBASE/vpn`, holding `tinc.conf`) is
/// found by `-n vpn` with no flag while `/etc/meshd/vpn` does not exist; `init -n vpn` still
/// makes meshd's own directory, which then wins.
#[test]
fn dash_n_finds_a_tinc_network_until_meshd_has_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (meshd_base, tinc_base) = (tmp.path().join("meshd"), tmp.path().join("tinc"));
    let tinc_dir = tinc_base.join("vpn");
    let run = |args: &[&str]| {
        let mut cmd = meshd_command();
        cmd.env("MESHD_CONFDIR_BASE", &meshd_base)
            .env("MESHD_TINC_CONFDIR_BASE", &tinc_base)
            .args(args);
        run_cmd(cmd)
    };
    // A tinc-made directory (init writes tinc.conf, as tinc's init does).
    let c = tinc_dir.to_str().unwrap();
    assert_ok(&run(&["-c", c, "init", "alpha", "--port", "0"]));

    let out = run(&["-n", "vpn", "get", "Name"]);
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "alpha", "-n vpn did not read {c}");
    // `network` lists it, as one `-n` reaches.
    let out = run(&["network"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "vpn\n");

    // init -n makes MESHD_CONFDIR_BASE/vpn, not a second tinc.conf in tinc's directory.
    assert_ok(&run(&["-n", "vpn", "init", "beta", "--port", "0"]));
    assert!(meshd_base.join("vpn/tinc.conf").is_file());
    assert!(read(&tinc_dir.join("tinc.conf")).contains("Name = alpha"));
    let out = run(&["-n", "vpn", "get", "Name"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&out).trim(),
        "beta",
        "meshd's own directory must win"
    );
    // Listed once: `-n vpn` reaches only meshd's now.
    assert_eq!(stdout(&run(&["network"])), "vpn\n");
}

/// Only `MESHD_CONFDIR_BASE` set: that base is the only place `-n` looks (no /etc/tinc), and
/// the error names the directory meshd picked.
#[test]
fn a_chosen_base_turns_the_tinc_fallback_off() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", tmp.path())
        .args(["-n", "nosuchnet", "pid"]);
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(1));
    let want = tmp.path().join("nosuchnet");
    assert!(
        stderr(&out).contains(want.to_str().unwrap()),
        "error should name {}: {}",
        want.display(),
        stderr(&out)
    );
}

/// An "editor" script: appends `line` to the file it is given.
fn appending_editor(dir: &Path, line: &str) -> std::path::PathBuf {
    let path = dir.join(format!("editor-{}", line.len()));
    std::fs::write(&path, format!("#!/bin/sh\necho '{line}' >> \"$1\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn meshd_edit(dir: &Path, editor: &Path, file: &str) -> std::process::Output {
    let mut cmd = meshd_command();
    cmd.env_remove("VISUAL")
        .env("EDITOR", editor)
        .arg("-c")
        .arg(dir)
        .args(["edit", file]);
    run_cmd(cmd)
}

/// Issue 21, `edit`: tinc runs $VISUAL/$EDITOR/vi on tinc.conf, a script, `NODE`/`hosts/NODE`
/// or `NODE-up` and then reloads the daemon (cli/35.txt). meshd checks the result first: a
/// broken file is reported with its line and not reloaded; a good one is live at once.
#[test]
fn edit_opens_the_editor_checks_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("alpha");
    let port = free_port();
    init_node(&dir, "alpha", port);
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &dir, "alpha", port, &[&dir]);

    // tinc.conf names the server file; a broken line: exit 1.
    let o = meshd_edit(
        &dir,
        &appending_editor(tmp.path(), "Mode = router"),
        "tinc.conf",
    );
    assert_exit1(&o);
    let conf = dir.join("tinc.conf");
    let lines = read(&conf).lines().count();
    assert!(
        stderr(&o).contains(&format!("{}:{lines}", conf.display())),
        "the error must name file and line: {}",
        show(&o)
    );
    assert!(stderr(&o).contains("not reloaded"), "{}", show(&o));
    let fixed: String = read(&conf)
        .lines()
        .filter(|l| *l != "Mode = router")
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&conf, fixed).unwrap();

    // A subnet added to the own host file is live after the edit (the daemon reloaded).
    let o = meshd_edit(
        &dir,
        &appending_editor(tmp.path(), "Subnet = 02:00:00:00:00:0a"),
        "hosts/alpha",
    );
    assert_ok(&o);
    assert!(
        wait_until(Duration::from_secs(10), || {
            stdout(&meshd(&dir, &["dump", "subnets"])).contains("02:00:00:00:00:0a owner alpha")
        }),
        "the daemon did not reload after edit"
    );

    // A new script is created executable; a host script by NODE-up.
    let o = meshd_edit(&dir, &appending_editor(tmp.path(), "true"), "alpha-up");
    assert_ok(&o);
    assert_eq!(mode_of(&dir.join("hosts/alpha-up")) & 0o111, 0o111);

    // Not a file edit knows: exit 1, nothing run.
    let o = meshd_edit(&dir, &appending_editor(tmp.path(), "x"), "../passwd");
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("Invalid configuration filename"),
        "{}",
        show(&o)
    );
    assert_ok(&meshd(&dir, &["stop"]));
}

/// Issue 21, output shapes: alpha (02:00:00:00:00:0a, 10.9.0.1) and beta (02:00:00:00:00:0b)
/// on loopback, as in ../shared/tinc11-observed/dump-and-info/alpha.*.
#[test]
fn dump_shapes_as_tinc_prints_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let dirs = [a.as_path(), b.as_path()];
    let (pa, pb) = (free_port(), free_port());
    init_node(&a, "alpha", pa);
    init_node(&b, "beta", pb);
    append(
        &a.join("hosts/alpha"),
        "Subnet = 02:00:00:00:00:0a\nSubnet = 10.9.0.1\n",
    );
    append(&b.join("hosts/beta"), "Subnet = 02:00:00:00:00:0b\n");
    std::fs::copy(a.join("hosts/alpha"), b.join("hosts/alpha")).unwrap();
    std::fs::copy(b.join("hosts/beta"), a.join("hosts/beta")).unwrap();
    append(&b.join("tinc.conf"), "ConnectTo = alpha\n");
    let mut reaper = Reaper::default();
    let pa = start_node(&mut reaper, &a, "alpha", pa, &dirs);
    let pb = start_node(&mut reaper, &b, "beta", pb, &dirs);
    assert!(
        wait_until(Duration::from_secs(10), || {
            sees_reachable(&a, "alpha", "beta", pb) && sees_reachable(&b, "beta", "alpha", pa)
        }),
        "no mesh: {}",
        show(&meshd(&a, &["dump", "nodes"]))
    );
    // The peer's subnets arrive with its record; wait for them.
    assert!(
        wait_until(Duration::from_secs(10), || {
            stdout(&meshd(&a, &["dump", "subnets"])).contains("02:00:00:00:00:0b owner beta")
        }),
        "beta's subnet never arrived"
    );

    // alpha.dump_subnets.txt, line for line: MAC < IPv4 < IPv6, longer prefixes first.
    let o = meshd(&a, &["dump", "subnets"]);
    assert_ok(&o);
    assert_eq!(
        stdout(&o),
        "02:00:00:00:00:0a owner alpha\n\
         02:00:00:00:00:0b owner beta\n\
         ff:ff:ff:ff:ff:ff owner (broadcast)\n\
         10.9.0.1 owner alpha\n\
         255.255.255.255 owner (broadcast)\n\
         224.0.0.0/4 owner (broadcast)\n\
         ff00::/8 owner (broadcast)\n"
    );

    // alpha.dump_nodes.txt: itself with an Address is `status 0858`.
    let nodes = dump_nodes(&a).expect("dump nodes");
    let (_, me) = nodes.iter().find(|(n, _)| n == "alpha").expect("alpha");
    assert!(
        me.starts_with(&format!(
            "alpha id ba3ce58667ca at MYSELF port {pa} cipher 0 digest 0 maclength 0 compression 0 "
        )),
        "{me}"
    );
    assert_eq!(status_of(me), 0x858, "{me}");

    // alpha.dump_connections.txt: the peer (status 100: carries broadcasts), then the
    // control connection that asks: `<control> at localhost port unix options 0 socket N status 200`.
    let o = meshd(&a, &["dump", "connections"]);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("beta at 127.0.0.1 port {pb} options 0 socket ")),
        "{out}"
    );
    assert!(lines[0].ends_with(" status 100"), "{out}");
    let control = lines[1]
        .strip_prefix("<control> at localhost port unix options 0 socket ")
        .and_then(|rest| rest.strip_suffix(" status 200"))
        .unwrap_or_else(|| panic!("no <control> line: {out}"));
    assert!(control.parse::<u32>().is_ok(), "{out}");

    // cli/10.txt: an unknown dump type is a usage error, exit 1.
    let o = meshd(&a, &["dump", "foo"]);
    assert_exit1(&o);
    let err = stderr(&o);
    assert_eq!(
        err.lines().next(),
        Some("Unknown dump type 'foo'."),
        "{err}"
    );
    assert_eq!(
        err.lines().last(),
        Some("Try `meshd --help' for more information."),
        "{err}"
    );

    // beta stops: like tinc's unreachable node (TINC-COMPAT 1.5), `info beta` lists no edges
    // and no `beta to alpha` edge is left (the link is known to be gone).
    assert_ok(&meshd(&b, &["stop"]));
    assert!(
        wait_until(Duration::from_secs(20), || peer_unreachable(&a, "beta")),
        "beta still reachable: {}",
        show(&meshd(&a, &["dump", "nodes"]))
    );
    let o = meshd(&a, &["info", "beta"]);
    assert_ok(&o);
    let info = stdout(&o);
    assert!(info.contains("Reachability: unreachable\n"), "{info}");
    assert!(info.lines().any(|l| l.trim_end() == "Edges:"), "{info}");
    let o = meshd(&a, &["dump", "edges"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "", "{}", show(&o));
    assert_ok(&meshd(&a, &["stop"]));
}
