//! `start`, `stop`, `reload`, `pid`: running the daemon and talking to it.

use crate::config::NetDir;
use crate::control::client::request;
use crate::control::pidfile::PidFile;
use crate::control::{Request, Response};
use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Options of `start` and `restart`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StartArgs {
    /// Stay in the foreground and log to stderr (do not detach).
    #[arg(short = 'D', long = "no-detach")]
    pub foreground: bool,
    /// Log to FILE; without a value (`--logfile`), to DIR/meshd.log, also with -D (tincd's
    /// default is /var/log/tinc.NET.log; meshd keeps its files in the network directory, the
    /// one place the systemd unit may write). Detached, meshd logs to DIR/meshd.log anyway.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        conflicts_with = "syslog"
    )]
    pub logfile: Option<Option<PathBuf>>,
    /// Log to syslog (/dev/log: the journal on systemd machines) instead of a file or stderr.
    #[arg(short = 's', long)]
    pub syslog: bool,
    /// Log level: 0 warnings, 1 info (default), 2 debug, 3 trace; `-d` without a level is 2
    /// (one above the default, as tincd's -d). Give a level as `-d2`, `-d 2` or `--debug=2`.
    /// MESHD_LOG overrides.
    #[arg(
        short = 'd',
        long = "debug",
        value_name = "LEVEL",
        num_args = 0..=1,
        default_missing_value = "2"
    )]
    pub debug: Option<u8>,
    /// Set a configuration variable for this run, over the files (repeatable), as tincd:
    /// `-o Port=6551`, `-o Subnet=10.1.1.9` (a multi-valued variable is added), or
    /// `-o beta.Address=192.0.2.7` for hosts/beta. Kept across reloads.
    #[arg(short = 'o', long = "option", value_name = "[HOST.]VAR=VALUE")]
    pub options: Vec<String>,
    /// Lock the daemon's memory (mlockall), so keys and frames never reach swap (tincd's -L).
    #[arg(short = 'L', long = "mlock")]
    pub lock_memory: bool,
    /// Run as USER once the TAP device, the sockets and the pidfile are open and tinc-up has
    /// run (tincd's -U). Later scripts run as USER too, without root's privileges; USER must
    /// be able to read the network directory for reloads.
    #[arg(short = 'U', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Chroot into the network directory once the TAP device, the sockets and the pidfile
    /// are open and tinc-up has run (tincd's -R; needs root). Later scripts, exec health
    /// checks and VIPOwner commands then run inside it (with the /bin/sh they need copied
    /// there); reloads and joins keep working; host names in Address lines need the
    /// resolver files inside it too.
    #[arg(short = 'R', long = "chroot")]
    pub chroot: bool,
}

impl StartArgs {
    /// The log file: `--logfile FILE`, or DIR/meshd.log for a bare `--logfile`.
    fn logfile(&self, netdir: &NetDir) -> Option<PathBuf> {
        self.logfile
            .as_ref()
            .map(|f| f.clone().unwrap_or_else(|| netdir.logfile()))
    }
}

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// One request to the running daemon, with the usual timeout.
pub(super) fn ask(netdir: &NetDir, req: &Request) -> Result<Response> {
    request(
        &netdir.pidfile(),
        &netdir.control_socket(),
        req,
        ASK_TIMEOUT,
    )
}

/// `meshd start`.
pub fn start(netdir: &NetDir, args: &StartArgs) -> Result<i32> {
    let privileges = crate::driver::privileges::Privileges {
        lock_memory: args.lock_memory,
        user: args.user.clone(),
        chroot: args.chroot,
    };
    privileges.prepare()?;
    // `-o` mistakes are reported before anything starts, naming the option (`-o:2: ...`).
    let netdir = &netdir
        .clone()
        .with_overrides(crate::config::overrides::parse_overrides(&args.options)?);
    // tinc: "Could not change to configuration directory: No such file or directory", rc 1.
    // Checked first, so the error names the directory rather than a log file inside it.
    match std::fs::metadata(&netdir.root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "cannot use configuration directory {}: it is not a directory",
            netdir.root.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "configuration directory {} does not exist (create it with meshd -c {} init NAME)",
            netdir.root.display(),
            netdir.root.display()
        ),
        Err(e) => bail!(
            "cannot access configuration directory {}: {e}",
            netdir.root.display()
        ),
    }
    if let Ok(Response::Pid { pid }) = ask(netdir, &Request::Pid) {
        eprintln!(
            "A meshd is already running for {} with pid {pid}.",
            netdir.root.display()
        );
        return Ok(0);
    }
    if args.foreground {
        match &args.logfile(netdir) {
            _ if args.syslog => crate::logs::to_syslog(args.debug)?,
            Some(path) => crate::logs::to_file(path, args.debug)?,
            None => crate::logs::to_stderr(args.debug),
        }
        // -R: from here on the daemon names its files relative to the network directory.
        let netdir = if args.chroot {
            crate::driver::privileges::enter_network_directory(netdir)?
        } else {
            netdir.clone()
        };
        // Scripts get tinc's `DEBUG`: the `-d` level, 0 without one (tincd's default).
        crate::driver::run(netdir, args.debug.unwrap_or(0), privileges)?;
        return Ok(0);
    }
    let logfile = args.logfile(netdir).unwrap_or_else(|| netdir.logfile());
    let exe = std::env::current_exe().context("cannot find the meshd executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-c").arg(&netdir.root);
    // The child finds its directory by `-c`; the network name (scripts' `NETNAME`) goes in
    // `$NETNAME`, which it reads as if `-n` had been given.
    match &netdir.netname {
        Some(net) => cmd.env(crate::config::netdir::NETNAME_ENV, net),
        None => cmd.env_remove(crate::config::netdir::NETNAME_ENV),
    };
    if let Some(p) = &netdir.pidfile_override {
        cmd.arg("--pidfile").arg(p);
    }
    cmd.arg("start").arg("-D");
    if args.syslog {
        cmd.arg("--syslog");
    } else {
        let mut arg = std::ffi::OsString::from("--logfile=");
        arg.push(&logfile);
        cmd.arg(arg);
    }
    if let Some(d) = args.debug {
        cmd.arg(format!("--debug={d}"));
    }
    for o in &args.options {
        cmd.arg("-o").arg(o);
    }
    if args.lock_memory {
        cmd.arg("-L");
    }
    if let Some(user) = &args.user {
        cmd.arg("-U").arg(user);
    }
    if args.chroot {
        cmd.arg("-R");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().context("cannot start the daemon process")?;
    // Generous: tinc-up runs before the daemon answers.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        if let Ok(Response::Pid { pid }) = ask(netdir, &Request::Pid) {
            eprintln!(
                "meshd started for {} (pid {pid}, log {}).",
                netdir.root.display(),
                logfile.display()
            );
            return Ok(0);
        }
        if let Some(status) = child.try_wait().context("waiting for the daemon")? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            eprint!("{err}");
            let log = std::fs::read_to_string(&logfile).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            bail!(
                "the daemon exited during startup ({status}); see {}",
                logfile.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon did not answer within 45 s; see {}",
                logfile.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `meshd stop`: ask for a graceful stop, wait until the pidfile is gone.
pub fn stop(netdir: &NetDir) -> Result<i32> {
    let pidfile = netdir.pidfile();
    // A daemon running as another user (-U) cannot remove its files from a root-owned
    // directory: its exit is what counts.
    let running = PidFile::read(&pidfile).ok().map(|p| p.pid);
    let waiting_for = match ask(netdir, &Request::Stop) {
        Ok(_) => running,
        Err(err) => {
            // The socket is dead; fall back to the pid in the pidfile, as tinc does.
            match PidFile::read(&pidfile) {
                Ok(p) if process_alive(p.pid) => {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p.pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    Some(p.pid)
                }
                _ => {
                    eprintln!("{err}");
                    return Ok(1);
                }
            }
        }
    };
    // Generous: tinc-up runs before the daemon answers.
    let deadline = Instant::now() + Duration::from_secs(45);
    while pidfile.exists() && Instant::now() < deadline {
        if waiting_for.is_some_and(|pid| !process_alive(pid)) {
            // It is gone without removing its files (killed, or not allowed to): stale.
            let _ = std::fs::remove_file(netdir.control_socket());
            let _ = std::fs::remove_file(&pidfile);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if pidfile.exists() {
        bail!("the daemon did not stop within 10 s");
    }
    Ok(0)
}

/// Whether `pid` runs. A zombie (dead, not yet reaped by its parent, which for a
/// detached daemon is init) does not count: it will never remove its pidfile.
fn process_alive(pid: u32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    // /proc/PID/stat is "PID (COMM) STATE ...", where COMM may hold spaces and ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => true,
    }
}

/// `meshd reload`.
pub fn reload(netdir: &NetDir) -> Result<i32> {
    match ask(netdir, &Request::Reload) {
        Ok(Response::Reloaded { warnings }) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            Ok(0)
        }
        Ok(Response::Error { message }) => {
            eprintln!("Could not reload configuration: {message}");
            Ok(1)
        }
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(err) => {
            eprintln!("{err}");
            Ok(1)
        }
    }
}

/// `meshd pid`.
pub fn pid(netdir: &NetDir) -> Result<i32> {
    match ask(netdir, &Request::Pid) {
        Ok(Response::Pid { pid }) => {
            println!("{pid}");
            Ok(0)
        }
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(err) => {
            eprintln!("{err}");
            Ok(1)
        }
    }
}

/// `meshd debug N`: prints tinc's "Old level X, new level N.".
pub fn debug(netdir: &NetDir, level: u8) -> Result<i32> {
    match ask(netdir, &Request::Debug { level }) {
        Ok(Response::Debug { previous }) => {
            // On stderr, as tinc.
            eprintln!("Old level {previous}, new level {level}.");
            Ok(0)
        }
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(err) => {
            eprintln!("{err}");
            Ok(1)
        }
    }
}

/// `meshd log [LEVEL]`: copies the daemon's log lines (at LEVEL: for this stream only) to
/// stdout until it stops or we are interrupted.
pub fn log(netdir: &NetDir, level: Option<u8>) -> Result<i32> {
    let mut out = std::io::stdout();
    let result = crate::control::client::stream(
        &netdir.pidfile(),
        &netdir.control_socket(),
        &Request::Log { level },
        |line| {
            use std::io::Write;
            out.write_all(line.as_bytes()).is_ok() && out.flush().is_ok()
        },
    );
    match result {
        Ok(()) => Ok(0),
        Err(err) => {
            eprintln!("{err:#}");
            Ok(1)
        }
    }
}

/// `meshd pcap [SNAPLEN]`: the daemon's frames as a pcap file on stdout (`| tcpdump -r -`),
/// until it stops or the reader goes.
pub fn pcap(netdir: &NetDir, snaplen: Option<u32>) -> Result<i32> {
    let result = crate::control::client::stream_bytes(
        &netdir.pidfile(),
        &netdir.control_socket(),
        &Request::Pcap { snaplen },
        &mut std::io::stdout().lock(),
    );
    match result {
        Ok(()) => Ok(0),
        Err(err) => {
            eprintln!("{err:#}");
            Ok(1)
        }
    }
}
