//! tincd's `-L` (lock the daemon's memory), `-R` (chroot into the network directory) and
//! `-U USER` (drop root), applied once the daemon holds what needs root: the TAP device, its
//! sockets, the control socket and the pidfile, after `tinc-up`. As with tincd, scripts that
//! run later (host-up, subnet-up, tinc-down, ...) run as USER, without root's privileges,
//! and inside the chroot (where they need their own `/bin/sh`).

use crate::config::NetDir;
use anyhow::{bail, Context, Result};
use nix::unistd::{Uid, User};
use std::path::{Path, PathBuf};

/// What `start -L` / `-R` / `-U USER` asked for.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    /// `-L`: mlockall (keys and frames never reach swap).
    pub lock_memory: bool,
    /// `-U USER`: the user to become.
    pub user: Option<String>,
    /// `-R`: chroot into the network directory (the working directory by then: see
    /// [`enter_network_directory`]).
    pub chroot: bool,
}

/// For `-R`: makes the network directory the working directory and returns `netdir` with
/// paths relative to it (`.`), which name the same files before and after the chroot into
/// it. A `--pidfile` inside the directory becomes relative too; one outside it stays
/// absolute: written before the chroot, and (as tincd's) left for `stop` to clean up.
pub fn enter_network_directory(netdir: &NetDir) -> Result<NetDir> {
    let root = netdir.root.clone();
    let pidfile = std::path::absolute(netdir.pidfile())
        .with_context(|| format!("cannot resolve the pidfile {}", netdir.pidfile().display()))?;
    std::env::set_current_dir(&root).with_context(|| {
        format!(
            "Could not change to configuration directory {} (-R)",
            root.display()
        )
    })?;
    let inside = pidfile
        .strip_prefix(&root)
        .ok()
        .map(|rel| Path::new(".").join(rel));
    let mut chrooted = netdir.clone();
    chrooted.root = PathBuf::from(".");
    chrooted.pidfile_override = Some(inside.unwrap_or(pidfile));
    Ok(chrooted)
}

/// The account `name`, or an error that names it.
pub fn lookup_user(name: &str) -> Result<User> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => bail!("unknown user '{name}' (-U USER)"),
        Err(e) => bail!("cannot look up user '{name}': {e}"),
    }
}

impl Privileges {
    /// Checks, before anything starts, that the privileges can be applied: the user exists;
    /// with `-L` and `-U`, the memory-lock limit is lifted (for USER every later allocation is
    /// locked and counted against it; root's CAP_IPC_LOCK is not). The limit is inherited by
    /// the detached daemon.
    pub fn prepare(&self) -> Result<()> {
        if self.chroot && !nix::unistd::geteuid().is_root() {
            bail!("-R (chroot) needs root: start the daemon as root, with -U USER to run as USER");
        }
        let Some(user) = &self.user else {
            return Ok(());
        };
        lookup_user(user)?;
        if !self.lock_memory {
            return Ok(());
        }
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: `unlimited` is a valid rlimit for the call's duration.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
            bail!(
                "-L with -U {user} needs an unlimited memory-lock limit, and it cannot be lifted \
                 here ({}): raise it first (ulimit -l unlimited; systemd: LimitMEMLOCK=infinity) \
                 or drop -L",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Locks memory, chroots and drops to the user, in that order (locking needs root's
    /// limits; the user's groups are read from /etc/group before the chroot).
    pub fn apply(&self) -> Result<()> {
        if self.lock_memory {
            // SAFETY: mlockall takes only flags and touches no Rust-visible memory.
            if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
                bail!(
                    "cannot lock the daemon's memory (-L): {}",
                    std::io::Error::last_os_error()
                );
            }
            tracing::info!("memory locked (-L)");
        }
        let user = match &self.user {
            Some(name) => {
                let user = lookup_user(name)?;
                let cname = std::ffi::CString::new(name.as_str()).context("user name")?;
                nix::unistd::initgroups(&cname, user.gid)
                    .with_context(|| format!("cannot set the groups of {name}"))?;
                Some((name, user))
            }
            None => None,
        };
        if self.chroot {
            super::child::keep_dev_null();
            let dir = std::env::current_dir().context("the network directory (-R)")?;
            // The working directory is the network directory: it becomes `/`, and stays
            // the working directory, so the daemon's `./` paths still name its files.
            nix::unistd::chroot(".")
                .with_context(|| format!("cannot chroot to {} (-R)", dir.display()))?;
            nix::unistd::chdir("/").context("chdir / in the chroot (-R)")?;
            tracing::info!("chrooted to {} (-R)", dir.display());
        }
        if let Some((name, user)) = user {
            // Keep the permitted capabilities across setuid, to keep KEPT_CAPS below.
            caps::securebits::set_keepcaps(true).context("PR_SET_KEEPCAPS")?;
            nix::unistd::setgid(user.gid).with_context(|| format!("cannot setgid to {name}"))?;
            nix::unistd::setuid(user.uid).with_context(|| format!("cannot setuid to {name}"))?;
            let _ = caps::securebits::set_keepcaps(false);
            keep_only(KEPT_CAPS)?;
            if user.uid != Uid::from_raw(0) && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
                bail!("still able to become root after dropping to {name}");
            }
            tracing::info!(
                user = %name, uid = %user.uid, gid = %user.gid,
                "running as {name} (-U), keeping CAP_NET_ADMIN and CAP_NET_RAW for the interface and its scripts"
            );
        }
        Ok(())
    }
}

/// What the daemon still needs as USER (`-U`): its scripts (`vip-up` and
/// `vip-down` put the VIP on the TAP, `subnet-up`, `tinc-down`, ...) and a
/// reload (the TAP's MTU) configure the interface (CAP_NET_ADMIN); arping and
/// ping from scripts and health checks need raw sockets (CAP_NET_RAW).
/// Nothing else: no CAP_SETUID, no CAP_SYS_ADMIN, no file access beyond USER's.
pub const KEPT_CAPS: &[caps::Capability] = &[
    caps::Capability::CAP_NET_ADMIN,
    caps::Capability::CAP_NET_RAW,
];

/// Leaves exactly `kept` in the permitted, effective and inheritable sets, and
/// raises them in the ambient set so that scripts (exec'd as USER) get them too.
fn keep_only(kept: &[caps::Capability]) -> Result<()> {
    use caps::CapSet;
    let set: caps::CapsHashSet = kept.iter().copied().collect();
    for which in [CapSet::Permitted, CapSet::Effective, CapSet::Inheritable] {
        caps::set(None, which, &set)
            .with_context(|| format!("cannot set the {which:?} capabilities (-U)"))?;
    }
    for cap in kept {
        caps::raise(None, CapSet::Ambient, *cap)
            .with_context(|| format!("cannot pass {cap} on to scripts (-U)"))?;
    }
    Ok(())
}
