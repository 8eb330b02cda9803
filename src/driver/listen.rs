//! tincd's listen sockets: for each `BindToAddress`, then each `ListenAddress` (the wildcard
//! without either), a UDP socket for the mesh and a TCP listener for joins on the same address
//! and port. `Listening on ADDR port N` is logged for each, `Can't bind to ADDR port N/udp`
//! (or `/tcp`) for each that fails, and none at all stops the daemon (`Unable to create any
//! listening socket`), as tincd.

use super::setup::Setup;
use super::{join_server, udp};
use crate::config::AddressFamily;
use anyhow::Result;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The sockets opened: `udp[i]` and `tcp[i]` share an address and port.
pub struct Listeners {
    /// The mesh's UDP sockets, the node's own port first.
    pub udp: Vec<udp::Bound>,
    /// The join listeners.
    pub tcp: Vec<TcpListener>,
}

/// `a.b.c.d port N`, as tinc names a socket address in its log.
pub fn tinc_addr(a: SocketAddr) -> String {
    format!("{} port {}", a.ip(), a.port())
}

/// Opens a UDP socket and a TCP listener on each of `setup.listen_addresses` (port 0 after
/// the first: the first one's port). An address where either cannot be bound is logged and
/// skipped (its other half closed), as tincd does.
pub fn open(setup: &Setup) -> Result<Listeners> {
    // An IPv6 wildcard takes IPv4 too (v4-mapped), unless IPv4 has sockets of its own or
    // AddressFamily = ipv6.
    let dual_stack = setup.address_family != AddressFamily::Ipv6
        && !setup.listen_addresses.iter().any(|a| a.is_ipv4());
    let device = setup.bind_interface.as_deref();
    let mut out = Listeners {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    let mut first_port: Option<u16> = None;
    let mut last_error = String::new();
    for &wanted in &setup.listen_addresses {
        let addr = match (wanted.port(), first_port) {
            (0, Some(port)) => SocketAddr::new(wanted.ip(), port),
            _ => wanted,
        };
        let udp = match udp::Bound::bind(addr, dual_stack, device) {
            Ok(u) => u,
            Err(err) => {
                last_error = format!(
                    "Can't bind to {}/udp: {err:#}{}",
                    tinc_addr(addr),
                    hint(&err, addr)
                );
                tracing::error!("{last_error}");
                continue;
            }
        };
        let addr = match udp.local_addr() {
            Ok(bound) => SocketAddr::new(addr.ip(), bound.port()),
            Err(_) => addr,
        };
        let tcp = match join_server::bind(addr, dual_stack, device) {
            Ok(l) => l,
            Err(err) => {
                last_error = format!(
                    "Can't bind to {}/tcp: {err:#}{}",
                    tinc_addr(addr),
                    hint(&err, addr)
                );
                tracing::error!("{last_error}");
                continue;
            }
        };
        match device {
            Some(dev) => tracing::info!("Listening on {} (interface {dev})", tinc_addr(addr)),
            None => tracing::info!("Listening on {}", tinc_addr(addr)),
        }
        first_port.get_or_insert(addr.port());
        out.udp.push(udp);
        out.tcp.push(tcp);
    }
    if out.udp.is_empty() {
        tracing::error!("Unable to create any listening socket");
        anyhow::bail!("Unable to create any listening socket: {last_error}");
    }
    Ok(out)
}

/// What to check when the port is taken.
fn hint(err: &anyhow::Error, addr: SocketAddr) -> String {
    let in_use = err
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::AddrInUse);
    if in_use {
        format!(" (is another daemon using port {}?)", addr.port())
    } else {
        String::new()
    }
}
