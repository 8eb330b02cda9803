//! CLI integration tests: the `meshd` binary as a user runs it, without root
//! or network namespaces. Daemons listen on 127.0.0.1 / the wildcard with
//! high ports derived from the test process id; every daemon a test starts is
//! stopped, and SIGKILLed by a guard if the test fails first.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Longest any single CLI invocation may take before the test gives up on it.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

fn meshd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_meshd")
}

/// `meshd` with a clean environment for the variables meshd reads.
fn meshd_command() -> Command {
    let mut cmd = Command::new(meshd_bin());
    cmd.env_remove("MESHD_LOG")
        .env_remove("NETNAME")
        .env_remove("MESHD_CONFDIR_BASE")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion (killing it after [`CMD_TIMEOUT`]) and collects its output.
fn run_cmd(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{desc}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if t0.elapsed() > CMD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc} did not finish within {CMD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// `meshd -c DIR ARGS...`.
fn meshd(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = meshd_command();
    cmd.arg("-c").arg(dir).args(args);
    run_cmd(cmd)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
}

#[track_caller]
fn assert_exit1(o: &Output) {
    assert_eq!(o.status.code(), Some(1), "{}", show(o));
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("append");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- ports

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A UDP port nobody uses right now, from a range derived from the test
/// process id (so parallel test runs rarely meet), distinct within this process.
fn free_port() -> u16 {
    let base = 20000 + (std::process::id() % 20000) as u16;
    loop {
        let off = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        assert!(off < 2000, "no free UDP port found");
        let port = base + off;
        // The daemon binds [::] dual-stack (or 0.0.0.0 without IPv6): both must be free.
        // One at a time: a dual-stack [::] bind collides with our own 0.0.0.0 one.
        let v4 = std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok();
        let v6 = std::net::UdpSocket::bind(("::", port)).is_ok();
        if v4 && (v6 || !ipv6_available()) {
            return port;
        }
    }
}

fn ipv6_available() -> bool {
    std::net::UdpSocket::bind(("::1", 0)).is_ok()
}

// ---------------------------------------------------------------- daemons

/// Every daemon pid a test started, SIGKILLed on drop if still ours and alive.
#[derive(Default)]
struct Reaper {
    /// (pid, network directory it serves).
    pids: Vec<(u32, PathBuf)>,
    /// Foreground daemons started as our own children.
    children: Vec<Child>,
}

impl Reaper {
    fn track(&mut self, pid: u32, dir: &Path) {
        if !self.pids.iter().any(|(p, _)| *p == pid) {
            self.pids.push((pid, dir.to_path_buf()));
        }
    }

    /// Records the pid in DIR's pidfile (after a successful `start`).
    fn track_dir(&mut self, dir: &Path) -> u32 {
        let pid = pidfile_pid(dir).unwrap_or_else(|| panic!("no pidfile in {}", dir.display()));
        self.track(pid, dir);
        pid
    }
}

/// Whether `pid` is still a meshd serving `dir` (guards against pid reuse).
fn is_our_daemon(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    args.first().is_some_and(|a| a.ends_with(b"meshd")) && args.contains(&dir)
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, dir) in &self.pids {
            if is_our_daemon(*pid, dir) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pidfile_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("meshd.pid"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `meshd init NAME --port PORT` in `dir`, then `Address = 127.0.0.1` in its own host file.
/// These loopback daemons have no TAP (`DeviceType = dummy`), so they need no root.
fn init_node(dir: &Path, name: &str, port: u16) {
    let o = meshd(dir, &["init", name, "--port", &port.to_string()]);
    assert_ok(&o);
    append(&dir.join("hosts").join(name), "Address = 127.0.0.1\n");
    append(&dir.join("meshd.conf"), "DeviceType = dummy\n");
}

/// Rewrites the `Port` line of `hosts/NAME` in every directory given.
fn set_port(dirs: &[&Path], name: &str, port: u16) {
    for d in dirs {
        let p = d.join("hosts").join(name);
        if !p.exists() {
            continue;
        }
        let text: Vec<String> = read(&p)
            .lines()
            .map(|l| {
                if l.trim_start().to_ascii_lowercase().starts_with("port") {
                    format!("Port = {port}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&p, text.join("\n") + "\n").unwrap();
    }
}

/// `meshd start` (detached) for node `name` in `dir`; if its port was taken in the
/// meantime, moves it to another free port (in every copy of its host file) and retries.
/// Returns the port it listens on.
fn start_node(
    reaper: &mut Reaper,
    dir: &Path,
    name: &str,
    mut port: u16,
    all_dirs: &[&Path],
) -> u16 {
    for _ in 0..5 {
        let o = meshd(dir, &["start"]);
        if o.status.success() {
            reaper.track_dir(dir);
            return port;
        }
        if !stderr(&o).contains("Address already in use") {
            panic!("start {name}: {}", show(&o));
        }
        port = free_port();
        set_port(all_dirs, name, port);
    }
    panic!("start {name}: no usable port");
}

/// `dump nodes` lines as (name, whole line).
fn dump_nodes(dir: &Path) -> Option<Vec<(String, String)>> {
    let o = meshd(dir, &["dump", "nodes"]);
    if !o.status.success() {
        return None;
    }
    Some(
        stdout(&o)
            .lines()
            .map(|l| (l.split(' ').next().unwrap_or("").to_string(), l.to_string()))
            .collect(),
    )
}

/// The `status XXXX` field of a `dump nodes` line.
fn status_of(line: &str) -> u32 {
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "status" {
            return u32::from_str_radix(it.next().expect("status value"), 16).expect("hex status");
        }
    }
    panic!("no status in {line}");
}

const REACHABLE: u32 = 0x10;

/// Whether `dir`'s daemon shows `peer` reachable at 127.0.0.1 port `peer_port`, and itself.
fn sees_reachable(dir: &Path, me: &str, peer: &str, peer_port: u16) -> bool {
    let Some(nodes) = dump_nodes(dir) else {
        return false;
    };
    let me_ok = nodes
        .iter()
        .any(|(n, l)| n == me && status_of(l) & REACHABLE != 0);
    let peer_ok = nodes.iter().any(|(n, l)| {
        n == peer
            && l.contains(&format!(" at 127.0.0.1 port {peer_port} "))
            && status_of(l) & REACHABLE != 0
    });
    me_ok && peer_ok
}

fn peer_unreachable(dir: &Path, peer: &str) -> bool {
    dump_nodes(dir).is_some_and(|nodes| {
        nodes
            .iter()
            .any(|(n, l)| n == peer && status_of(l) & REACHABLE == 0)
    })
}

// ---------------------------------------------------------------- tests

#[test]
fn init_creates_a_network_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let o = meshd(&dir, &["init", "alpha", "--port", "6551"]);
    assert_ok(&o);

    let conf = read(&dir.join("meshd.conf"));
    assert!(
        conf.lines().any(|l| l.trim() == "Name = alpha"),
        "meshd.conf:\n{conf}"
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
        err.contains("already initialised") && err.contains("meshd.conf"),
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
        stderr(&o).contains("'a-b' is not a valid node name"),
        "{}",
        show(&o)
    );
    assert!(!bad.exists(), "invalid init left {}", bad.display());
}

#[test]
fn netname_selects_directory_under_base() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();

    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", base)
        .args(["-n", "net1", "init", "alpha"]);
    assert_ok(&run_cmd(cmd));
    assert!(read(&base.join("net1/meshd.conf")).contains("Name = alpha"));
    assert!(base.join("net1/hosts/alpha").is_file());
    assert!(base.join("net1/ed25519_key.priv").is_file());

    let mut cmd = meshd_command();
    cmd.env("MESHD_CONFDIR_BASE", base)
        .env("NETNAME", "net2")
        .args(["init", "beta"]);
    assert_ok(&run_cmd(cmd));
    assert!(read(&base.join("net2/meshd.conf")).contains("Name = beta"));
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

    // Mode = router in meshd.conf.
    let dir = tmp.path().join("router");
    assert_ok(&meshd(
        &dir,
        &["init", "alpha", "--port", &free_port().to_string()],
    ));
    let conf = dir.join("meshd.conf");
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
    append(&b.join("meshd.conf"), "ConnectTo = alpha\n");
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
    append(&dir.join("meshd.conf"), "Bogus = 1\n");
    append(&dir.join("hosts/alpha"), &format!("Port = {port}\n"));
    let bogus_line = read(&dir.join("meshd.conf")).lines().count();
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
        dir.join("meshd.conf").display()
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
    for word in ["init", "start", "dump", "info"] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let mut cmd = meshd_command();
    cmd.args(["start", "--help"]);
    let o = run_cmd(cmd);
    assert_ok(&o);
    assert!(stdout(&o).contains("-D"), "{}", show(&o));
}
