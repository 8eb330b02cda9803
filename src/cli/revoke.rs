//! `revoke NODE`: removing a node from this node's trust in one step — its host
//! file moves to `revoked/NODE` (a tombstone gossip cannot override) and a
//! running daemon reloads, which cuts the node at once.

use crate::config::{NetDir, NodeName};
use crate::control::client::{request, ConnectError};
use crate::control::{Request, Response};
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// `meshd revoke NODE`.
pub fn revoke(netdir: &NetDir, node: &str) -> Result<i32> {
    let name = NodeName::new(node)?;
    let server = crate::config::load_server_config(netdir)?;
    if name == server.name {
        bail!("{name} is this node's own name: a node cannot revoke itself");
    }
    let host = netdir.host_file(&name);
    let dir = netdir.revoked_dir();
    let tomb = dir.join(name.as_str());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if host.exists() {
        std::fs::rename(&host, &tomb)
            .with_context(|| format!("cannot move {} to {}", host.display(), tomb.display()))?;
        println!("Moved {} to {}.", host.display(), tomb.display());
    } else if tomb.exists() {
        println!("{name} is already revoked ({}).", tomb.display());
    } else {
        std::fs::write(&tomb, b"").with_context(|| format!("cannot write {}", tomb.display()))?;
        println!(
            "No host file for {name}; wrote the tombstone {} (gossip cannot introduce {name}).",
            tomb.display()
        );
    }
    match request(
        &netdir.pidfile(),
        &netdir.control_socket(),
        &Request::Reload,
        Duration::from_secs(5),
    ) {
        Ok(Response::Reloaded { warnings }) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("The running daemon reloaded: its sessions with {name} are gone.");
            Ok(0)
        }
        Ok(Response::Error { message }) => {
            eprintln!("Could not reload configuration: {message}");
            Ok(1)
        }
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(err)
            if matches!(
                err.downcast_ref::<ConnectError>(),
                Some(ConnectError::NotRunning(_) | ConnectError::NoPidfile(..))
            ) =>
        {
            println!("meshd is not running here; the revocation applies at its next start.");
            Ok(0)
        }
        Err(err) => {
            eprintln!("{err}");
            Ok(1)
        }
    }
}
