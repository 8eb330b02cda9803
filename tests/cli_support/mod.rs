//! Helpers shared by the CLI integration tests (`tests/cli.rs`, `tests/cli_invite.rs`): run the
//! `meshd` binary with a clean environment, pick free loopback ports, start daemons and
//! SIGKILL them on drop.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Longest any single CLI invocation may take before the test gives up on it.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

pub fn meshd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_meshd")
}

/// `meshd` with a clean environment for the variables meshd reads.
pub fn meshd_command() -> Command {
    let mut cmd = Command::new(meshd_bin());
    cmd.env_remove("MESHD_LOG")
        .env_remove("NETNAME")
        .env_remove("MESHD_CONFDIR_BASE")
        .env_remove("MESHD_TINC_CONFDIR_BASE")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion (killing it after [`CMD_TIMEOUT`]) and collects its output.
pub fn run_cmd(mut cmd: Command) -> Output {
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
pub fn meshd(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = meshd_command();
    cmd.arg("-c").arg(dir).args(args);
    run_cmd(cmd)
}

/// `meshd ARGS...` with `input` on stdin (written from a thread, so a large input never
/// deadlocks against meshd's output).
pub fn meshd_stdin(args: &[&str], input: &str) -> Output {
    let mut cmd = meshd_command();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn meshd");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait meshd");
    writer.join().expect("writer");
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
}

#[track_caller]
pub fn assert_exit1(o: &Output) {
    assert_eq!(o.status.code(), Some(1), "{}", show(o));
}

pub fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("append");
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
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
pub fn free_port() -> u16 {
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

pub fn ipv6_available() -> bool {
    std::net::UdpSocket::bind(("::1", 0)).is_ok()
}

// ---------------------------------------------------------------- daemons

/// Every daemon pid a test started, SIGKILLed on drop if still ours and alive.
#[derive(Default)]
pub struct Reaper {
    /// (pid, network directory it serves).
    pub pids: Vec<(u32, PathBuf)>,
    /// Foreground daemons started as our own children.
    pub children: Vec<Child>,
}

impl Reaper {
    pub fn track(&mut self, pid: u32, dir: &Path) {
        if !self.pids.iter().any(|(p, _)| *p == pid) {
            self.pids.push((pid, dir.to_path_buf()));
        }
    }

    /// Records the pid in DIR's pidfile (after a successful `start`).
    pub fn track_dir(&mut self, dir: &Path) -> u32 {
        let pid = pidfile_pid(dir).unwrap_or_else(|| panic!("no pidfile in {}", dir.display()));
        self.track(pid, dir);
        pid
    }
}

/// Whether `pid` is still a meshd serving `dir` (guards against pid reuse).
pub fn is_our_daemon(pid: u32, dir: &Path) -> bool {
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

pub fn pidfile_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("meshd.pid"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `meshd init NAME --port PORT` in `dir`, then `Address = 127.0.0.1` in its own host file.
/// These loopback daemons have no TAP (`DeviceType = dummy`), so they need no root.
pub fn init_node(dir: &Path, name: &str, port: u16) {
    let o = meshd(dir, &["init", name, "--port", &port.to_string()]);
    assert_ok(&o);
    append(&dir.join("hosts").join(name), "Address = 127.0.0.1\n");
    append(&dir.join("tinc.conf"), "DeviceType = dummy\n");
}

/// Rewrites the `Port` line of `hosts/NAME` in every directory given.
pub fn set_port(dirs: &[&Path], name: &str, port: u16) {
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
pub fn start_node(
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
pub fn dump_nodes(dir: &Path) -> Option<Vec<(String, String)>> {
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
pub fn status_of(line: &str) -> u32 {
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "status" {
            return u32::from_str_radix(it.next().expect("status value"), 16).expect("hex status");
        }
    }
    panic!("no status in {line}");
}

pub const REACHABLE: u32 = 0x10;

/// Whether `dir`'s daemon shows `peer` reachable at 127.0.0.1 port `peer_port`, and itself.
pub fn sees_reachable(dir: &Path, me: &str, peer: &str, peer_port: u16) -> bool {
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

pub fn peer_unreachable(dir: &Path, peer: &str) -> bool {
    dump_nodes(dir).is_some_and(|nodes| {
        nodes
            .iter()
            .any(|(n, l)| n == peer && status_of(l) & REACHABLE == 0)
    })
}
