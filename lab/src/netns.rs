//! Network namespaces for end-to-end tests (need root): a bridge namespace,
//! one namespace per node joined to it by a veth pair, meshd network
//! directories, and cleanup of everything the test made. meshd's netns tests
//! use it as `meshd_lab::netns` (a dev-dependency).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// True if the test can create namespaces (root and `ip` present).
pub fn available() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    root && ip
}

/// True when the environment says a test that cannot run must fail instead of
/// skipping (`.ci/run` sets `MESHD_REQUIRE_NETNS=1`: CI is root, so a skip there
/// is a broken machine, never a pass).
pub fn skipping_forbidden() -> bool {
    std::env::var_os("MESHD_REQUIRE_NETNS").is_some_and(|v| v == "1")
}

/// Skips the calling test (with a message) unless namespaces are available;
/// fails it instead when [`skipping_forbidden`].
#[macro_export]
macro_rules! require_netns {
    () => {
        if !$crate::netns::available() {
            assert!(
                !$crate::netns::skipping_forbidden(),
                "this test needs root and iproute2 (network namespaces), and MESHD_REQUIRE_NETNS=1 forbids skipping it"
            );
            eprintln!("SKIPPED: this test needs root and iproute2 (network namespaces)");
            return;
        }
    };
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    out
}

pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The delayer for netem-like delay, jitter and reordering without sch_netem
/// (python3, plain netlink): `python3 delayer.py DELAY_MS JITTER_MS REORDER`
/// holds each datagram iptables queues to NFQUEUE 0 of its namespace.
/// scripts/bench-faults runs the same file.
pub const DELAYER: &str = include_str!("delayer.py");

/// A lab: namespaces on one bridge, torn down on drop.
pub struct Lab {
    pub prefix: String,
    pub bridge_ns: String,
    pub nodes: Vec<LabNode>,
    pub dir: tempfile::TempDir,
    pub pids: Vec<u32>,
    /// Extra namespaces made with [`Lab::add_netns`], deleted on drop.
    pub extra_ns: Vec<String>,
    /// Processes started with [`Lab::spawn_in`], killed and reaped on drop.
    pub children: Vec<Child>,
}

pub struct LabNode {
    pub name: String,
    pub ns: String,
    pub ip: String,
    pub netdir: PathBuf,
}

/// The meshd binary of the test's build: `target/<profile>/meshd`, next to
/// the `deps/` directory the test binary runs from (cargo builds a package's
/// binaries before its integration tests), or next to the `meshd-lab`
/// binary that runs a benchmark.
pub fn meshd() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe
            .parent()
            .unwrap_or_else(|| panic!("{}: not in target/<profile>", exe.display()));
        let profile = if dir.ends_with("deps") {
            dir.parent()
                .unwrap_or_else(|| panic!("{}: not in target/<profile>/deps", exe.display()))
        } else {
            dir
        };
        let bin = profile.join("meshd");
        assert!(
            bin.is_file(),
            "{} is missing: meshd's binary is built with its tests (cargo test -p meshd)",
            bin.display()
        );
        bin.to_string_lossy().into_owned()
    })
}

impl Lab {
    /// Namespaces `PREFIX1..PREFIXn` with eth0 = 192.0.2.i/24 on a shared bridge.
    pub fn new(tag: &str, names: &[&str]) -> Lab {
        let prefix = format!("md{}{}", tag, std::process::id() % 100000);
        let bridge_ns = format!("{prefix}b");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lab = Lab {
            prefix: prefix.clone(),
            bridge_ns: bridge_ns.clone(),
            nodes: Vec::new(),
            dir,
            pids: Vec::new(),
            extra_ns: Vec::new(),
            children: Vec::new(),
        };
        must("ip", &["netns", "add", &bridge_ns]);
        must(
            "ip",
            &["-n", &bridge_ns, "link", "add", "br0", "type", "bridge"],
        );
        must("ip", &["-n", &bridge_ns, "link", "set", "br0", "up"]);
        for (i, name) in names.iter().enumerate() {
            let ns = format!("{prefix}n{}", i + 1);
            let ip = format!("192.0.2.{}", i + 1);
            must("ip", &["netns", "add", &ns]);
            let host_end = format!("v{}", i + 1);
            must(
                "ip",
                &[
                    "-n", &bridge_ns, "link", "add", &host_end, "type", "veth", "peer", "name",
                    "eth0", "netns", &ns,
                ],
            );
            must(
                "ip",
                &[
                    "-n", &bridge_ns, "link", "set", &host_end, "master", "br0", "up",
                ],
            );
            must(
                "ip",
                &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            );
            must("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            let netdir = lab.dir.path().join(name);
            lab.nodes.push(LabNode {
                name: name.to_string(),
                ns,
                ip,
                netdir,
            });
        }
        lab
    }

    pub fn node(&self, name: &str) -> &LabNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no lab node {name}"))
    }

    /// `meshd init` for every node, each with `Address` = its IP, port 655.
    pub fn init_all(&self) {
        for n in &self.nodes {
            let out = meshd_cmd(&n.netdir, &["init", &n.name]);
            assert!(
                out.status.success(),
                "init {}: {}",
                n.name,
                String::from_utf8_lossy(&out.stderr)
            );
            append(
                &n.netdir.join("hosts").join(&n.name),
                &format!("Address = {}\n", n.ip),
            );
        }
    }

    /// Copies `from`'s own host file into `to`'s hosts/.
    pub fn give_host(&self, from: &str, to: &str) {
        let src = self.node(from).netdir.join("hosts").join(from);
        let dst = self.node(to).netdir.join("hosts").join(from);
        std::fs::copy(&src, &dst).expect("copy host file");
    }

    /// Every node gets every other node's host file.
    pub fn give_all_hosts(&self) {
        for a in &self.nodes {
            for b in &self.nodes {
                if a.name != b.name {
                    self.give_host(&a.name, &b.name);
                }
            }
        }
    }

    /// A hub topology: `hub` gets every host file, every other node gets the
    /// hub's and `ConnectTo = HUB` (the rest of the mesh comes from gossip).
    pub fn hub(&self, hub: &str) {
        let others: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| n != hub)
            .collect();
        for n in &others {
            self.give_host(n, hub);
            self.give_host(hub, n);
            self.conf(n, &format!("ConnectTo = {hub}"));
        }
    }

    /// Appends a line to `node`'s tinc.conf.
    pub fn conf(&self, node: &str, line: &str) {
        append(
            &self.node(node).netdir.join("tinc.conf"),
            &format!("{line}\n"),
        );
    }

    /// Starts `node`'s daemon (detached) inside its namespace.
    pub fn start(&mut self, node: &str) {
        self.start_with(node, &[]);
    }

    /// [`Lab::start`] with more `start` options (`-U nobody`, `-R`, ...).
    pub fn start_with(&mut self, node: &str, options: &[&str]) {
        let n = self.node(node);
        let out = Command::new("ip")
            .args(["netns", "exec", &n.ns, meshd(), "-c"])
            .arg(&n.netdir)
            .args(["start", "-d", "2"])
            .args(options)
            .output()
            .expect("start meshd");
        assert!(
            out.status.success(),
            "start {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = self.pid(node).expect("pid after start");
        self.pids.push(pid);
    }

    pub fn pid(&self, node: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.node(node).netdir.join("meshd.pid")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    pub fn kill(&self, node: &str, signal: nix::sys::signal::Signal) {
        let pid = self.pid(node).expect("pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("kill");
    }

    /// `meshd -c DIR ARGS...` for a node (the control socket needs no namespace).
    pub fn ctl(&self, node: &str, args: &[&str]) -> Output {
        meshd_cmd(&self.node(node).netdir, args)
    }

    /// Which nodes `node` reports reachable (via `dump nodes --json`).
    pub fn reachable(&self, node: &str) -> Option<Vec<String>> {
        let out = self.ctl(node, &["dump", "nodes", "--json"]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(
            v.as_array()?
                .iter()
                .filter(|n| n["reachable"].as_bool() == Some(true))
                .filter_map(|n| n["name"].as_str().map(str::to_string))
                .collect(),
        )
    }

    /// Polls `cond` every 10 ms until true or `limit`; returns the time taken.
    pub fn wait(&self, limit: Duration, mut cond: impl FnMut(&Lab) -> bool) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if cond(self) {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Runs a command inside a node's namespace.
    pub fn exec(&self, node: &str, args: &[&str]) -> Output {
        let n = self.node(node);
        let mut a = vec!["netns", "exec", n.ns.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Creates one more namespace, `PREFIX` + `suffix`, with `lo` up and
    /// nothing else; the lab deletes it on drop. Returns its name.
    pub fn add_netns(&mut self, suffix: &str) -> String {
        let ns = format!("{}{suffix}", self.prefix);
        must("ip", &["netns", "add", &ns]);
        self.extra_ns.push(ns.clone());
        must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside any namespace (a node's `ns` or one from [`Lab::add_netns`]).
    pub fn exec_in(&self, ns: &str, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", ns];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Like [`Lab::exec_in`] but panics with the output unless it succeeds; returns stdout.
    pub fn must_in(&self, ns: &str, args: &[&str]) -> String {
        let mut a = vec!["netns", "exec", ns];
        a.extend_from_slice(args);
        must("ip", &a)
    }

    /// Starts a long-running command inside a namespace, with stdin and
    /// stdout from/to the given files (`None`: /dev/null) and stderr to
    /// `PATH.err` next to stdout (or /dev/null). `ip netns exec` execs the
    /// command, so the child's PID is the command's. The lab kills and reaps
    /// it on drop. Returns its PID (for [`Lab::wait_child`]).
    pub fn spawn_in(
        &mut self,
        ns: &str,
        args: &[&str],
        stdin: Option<&Path>,
        stdout: Option<&Path>,
    ) -> u32 {
        let file = |p: &Path, write: bool| {
            let f = if write {
                std::fs::File::create(p)
            } else {
                std::fs::File::open(p)
            };
            Stdio::from(f.unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        cmd.stdin(stdin.map_or_else(Stdio::null, |p| file(p, false)));
        cmd.stdout(stdout.map_or_else(Stdio::null, |p| file(p, true)));
        cmd.stderr(stdout.map_or_else(Stdio::null, |p| {
            let mut e = p.as_os_str().to_owned();
            e.push(".err");
            file(Path::new(&e), true)
        }));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?} in {ns}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Waits up to `limit` for a child from [`Lab::spawn_in`] to exit.
    pub fn wait_child(&mut self, pid: u32, limit: Duration) -> Option<ExitStatus> {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() == pid)
            .unwrap_or_else(|| panic!("no child {pid}"));
        let t0 = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if t0.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes an executable script (mode 0755) at `rel` inside `node`'s
    /// network directory (e.g. `tinc-up`, `hosts/gamma-down`).
    pub fn script(&self, node: &str, rel: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.node(node).netdir.join(rel);
        std::fs::write(&path, body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod script");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.nodes {
            if let Some(pid) = self.pid(&n.name) {
                if self.pids.contains(&pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for pid in &self.pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for ns in &self.extra_ns {
            let _ = run("ip", &["netns", "del", ns]);
        }
        for n in &self.nodes {
            let _ = run("ip", &["netns", "del", &n.ns]);
        }
        let _ = run("ip", &["netns", "del", &self.bridge_ns]);
    }
}

pub fn meshd_cmd(netdir: &Path, args: &[&str]) -> Output {
    Command::new(meshd())
        .arg("-c")
        .arg(netdir)
        .args(args)
        .output()
        .expect("run meshd")
}

/// User and system CPU time a process (all its threads) has used so far, from
/// `/proc/PID/stat`; zero if it is gone.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; after ')' come the state (field 3), so indexes 11 and 12.
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// Panics with an install hint unless every tool is on PATH (CI installs
/// them: .ci/run).
pub fn need_tools(tools: &[&str]) {
    for t in tools {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{t} is missing: apt-get install iputils-ping iperf3 netcat-openbsd python3"
        );
    }
}
