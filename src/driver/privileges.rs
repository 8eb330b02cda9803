//! tincd's `-L` (lock the daemon's memory) and `-U USER` (drop root), applied once the
//! daemon holds what needs root: the TAP device, its sockets, the control socket and the
//! pidfile, after `tinc-up`. As with tincd, scripts that run later (host-up, subnet-up,
//! tinc-down, ...) run as USER, without root's privileges.

use anyhow::{bail, Context, Result};
use nix::unistd::{Uid, User};

/// What `start -L` / `-U USER` asked for.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    /// `-L`: mlockall (keys and frames never reach swap).
    pub lock_memory: bool,
    /// `-U USER`: the user to become.
    pub user: Option<String>,
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

    /// Locks memory and drops to the user, in that order (locking needs root's limits).
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
        if let Some(name) = &self.user {
            let user = lookup_user(name)?;
            let cname = std::ffi::CString::new(name.as_str()).context("user name")?;
            nix::unistd::initgroups(&cname, user.gid)
                .with_context(|| format!("cannot set the groups of {name}"))?;
            nix::unistd::setgid(user.gid).with_context(|| format!("cannot setgid to {name}"))?;
            nix::unistd::setuid(user.uid).with_context(|| format!("cannot setuid to {name}"))?;
            if user.uid != Uid::from_raw(0) && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
                bail!("still able to become root after dropping to {name}");
            }
            tracing::info!(user = %name, uid = %user.uid, gid = %user.gid, "running as {name} (-U)");
        }
        Ok(())
    }
}
