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
    /// Log to this file (default when detached: DIR/meshd.log).
    #[arg(long, value_name = "FILE", conflicts_with = "syslog")]
    pub logfile: Option<PathBuf>,
    /// Log to syslog (/dev/log: the journal on systemd machines) instead of a file or stderr.
    #[arg(short = 's', long)]
    pub syslog: bool,
    /// Log level: 0 warnings, 1 info (default), 2 debug, 3 trace. MESHD_LOG overrides.
    #[arg(short = 'd', long = "debug", value_name = "LEVEL")]
    pub debug: Option<u8>,
}

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

fn ask(netdir: &NetDir, req: &Request) -> Result<Response> {
    request(
        &netdir.pidfile(),
        &netdir.control_socket(),
        req,
        ASK_TIMEOUT,
    )
}

/// `meshd start`.
pub fn start(netdir: &NetDir, args: &StartArgs) -> Result<i32> {
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
        match &args.logfile {
            _ if args.syslog => crate::logs::to_syslog(args.debug)?,
            Some(path) => crate::logs::to_file(path, args.debug)?,
            None => crate::logs::to_stderr(args.debug),
        }
        // Scripts get tinc's `DEBUG`: the `-d` level, 0 without one (tincd's default).
        crate::driver::run(netdir.clone(), args.debug.unwrap_or(0))?;
        return Ok(0);
    }
    let logfile = args.logfile.clone().unwrap_or_else(|| netdir.logfile());
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
        cmd.arg("--logfile").arg(&logfile);
    }
    if let Some(d) = args.debug {
        cmd.arg("-d").arg(d.to_string());
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
    let mut signalled = None;
    match ask(netdir, &Request::Stop) {
        Ok(_) => {}
        Err(err) => {
            // The socket is dead; fall back to the pid in the pidfile, as tinc does.
            match PidFile::read(&pidfile) {
                Ok(p) if process_alive(p.pid) => {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p.pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    signalled = Some(p.pid);
                }
                _ => {
                    eprintln!("{err}");
                    return Ok(1);
                }
            }
        }
    }
    // Generous: tinc-up runs before the daemon answers.
    let deadline = Instant::now() + Duration::from_secs(45);
    while pidfile.exists() && Instant::now() < deadline {
        if signalled.is_some_and(|pid| !process_alive(pid)) {
            // It died without cleaning up: the files are stale.
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
            println!("Old level {previous}, new level {level}.");
            Ok(0)
        }
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(err) => {
            eprintln!("{err}");
            Ok(1)
        }
    }
}

/// `meshd log`: copies the daemon's log lines to stdout until it stops or we are interrupted.
pub fn log(netdir: &NetDir) -> Result<i32> {
    let mut out = std::io::stdout();
    let result = crate::control::client::stream(
        &netdir.pidfile(),
        &netdir.control_socket(),
        &Request::Log,
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
