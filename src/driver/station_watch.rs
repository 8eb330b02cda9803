//! Stations leaving the Linux bridge that holds the TAP (PROTOCOL §7.6): a
//! thread reads rtnetlink's neighbour group and reports the MAC of every
//! bridge forwarding entry deleted on that bridge (`RTM_DELNEIGH`, family
//! `AF_BRIDGE`) — the kernel deletes them when the port a station was behind
//! goes down or away (a container's namespace deleted, a VM stopped), and
//! when an entry ages out. The core confirms with fast probes before it
//! acts (an idle station's entry may just have aged out).
//!
//! The socket only listens: it joins a multicast group any process may join
//! and sends nothing; messages not from the kernel (port 0) are ignored.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tokio::sync::mpsc::UnboundedSender;

/// rtnetlink's neighbour multicast group (`RTNLGRP_NEIGH`).
const RTNLGRP_NEIGH: u32 = 3;

/// Starts the watcher thread for TAP `tap`; it reports on `tx` until the
/// receiver is gone.
pub fn spawn(tap: String, tx: UnboundedSender<[u8; 6]>) -> std::io::Result<()> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind(&SocketAddr::new(0, 0))?;
    sock.add_membership(RTNLGRP_NEIGH)?;
    // Losing a burst of notifications must not end the watch.
    sock.set_no_enobufs(true)?;
    tracing::debug!(%tap, "watching the TAP's bridge for stations that leave");
    std::thread::Builder::new()
        .name("meshd-stations".into())
        .spawn(move || run(&sock, &tap, &tx))?;
    Ok(())
}

fn run(sock: &Socket, tap: &str, tx: &UnboundedSender<[u8; 6]>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let from = match sock.recv_from(&mut buf, 0) {
            Ok((_, from)) => from,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::warn!(%err, "rtnetlink: cannot read; no longer watching for stations that leave the bridge");
                return;
            }
        };
        // Only the kernel speaks for the bridge: any local process may send
        // a unicast message to our port.
        if from.port_number() != 0 {
            tracing::debug!(
                port = from.port_number(),
                "rtnetlink: ignored a message not from the kernel"
            );
            continue;
        }
        let bridge = bridge_of(tap);
        for mac in left_stations(&buf, bridge) {
            if tx.send(mac).is_err() {
                return;
            }
        }
    }
}

/// The interface index of the bridge `tap` is a port of, if it is one.
fn bridge_of(tap: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{tap}/master/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The MACs of bridge forwarding entries deleted on bridge `bridge` (on any
/// bridge if `None`: the TAP is not on one, or sysfs is out of reach) in
/// one read of the socket.
pub fn left_stations(mut buf: &[u8], bridge: Option<u32>) -> Vec<[u8; 6]> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            break;
        }
        if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len]) {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) = msg.payload
            {
                if let Some(mac) = deleted_fdb_entry(&n, bridge) {
                    out.push(mac);
                }
            }
        }
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or_default();
    }
    out
}

fn deleted_fdb_entry(n: &NeighbourMessage, bridge: Option<u32>) -> Option<[u8; 6]> {
    if n.header.family != AddressFamily::Bridge {
        return None;
    }
    let mut mac = None;
    let mut master = None;
    for a in &n.attributes {
        match a {
            NeighbourAttribute::LinkLocalAddress(b) => mac = <[u8; 6]>::try_from(b.as_slice()).ok(),
            NeighbourAttribute::Controller(i) => master = Some(*i),
            _ => {}
        }
    }
    match (bridge, master) {
        (Some(b), Some(m)) if b != m => None,
        _ => mac,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTM_DELNEIGH as the kernel sends when it flushes a port's entries.
    fn delneigh(family: u8, mac: [u8; 6], master: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
        m.extend_from_slice(&29u16.to_ne_bytes()); // RTM_DELNEIGH
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // ndmsg: family, pad x3, ifindex, state, flags, type
        m.extend_from_slice(&[family, 0, 0, 0]);
        m.extend_from_slice(&7i32.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&[2, 0]);
        // NDA_LLADDR (2), 6 bytes + 2 pad
        m.extend_from_slice(&10u16.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&mac);
        m.extend_from_slice(&[0, 0]);
        // NDA_MASTER (9)
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&9u16.to_ne_bytes());
        m.extend_from_slice(&master.to_ne_bytes());
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];

    #[test]
    fn reports_deleted_entries_of_our_bridge_only() {
        let mut two = delneigh(7, MAC, 5);
        two.extend(delneigh(7, [0x02, 0, 0, 0, 0, 0x11], 6));
        assert_eq!(left_stations(&two, Some(5)), vec![MAC]);
        assert_eq!(left_stations(&two, None).len(), 2);
        // An IPv4 neighbour (AF_INET) is no bridge entry.
        assert!(left_stations(&delneigh(2, MAC, 5), Some(5)).is_empty());
        // Garbage is skipped, not a panic.
        assert!(left_stations(&[0xff; 40], Some(5)).is_empty());
        assert!(left_stations(&two[..20], Some(5)).is_empty());
    }
}
