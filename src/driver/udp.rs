//! The UDP socket: dual-stack binding, v4-mapped address translation, and
//! the batched data path: runs of equal-sized datagrams to one peer leave in
//! one `sendmsg` with UDP GSO (`UDP_SEGMENT`), and arrive coalesced by UDP
//! GRO, so a burst costs one trip through the kernel instead of one per packet
//! (see [`super::udp_batch`]).

use super::setup::Setup;
use crate::config::AddressFamily;
use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::UdpSocket;

/// The daemon's one UDP socket.
pub struct Udp {
    pub(super) socket: UdpSocket,
    pub(super) v6: bool,
    pub(super) port: u16,
    /// Whether the kernel takes `UDP_SEGMENT` sends (cleared on the first refusal).
    pub(super) gso: bool,
}

const SOCKET_BUFFER: usize = 4 << 20;

impl Udp {
    /// Binds according to BindToAddress / AddressFamily / Port.
    pub fn bind(setup: &Setup) -> Result<Udp> {
        let addr = setup.bind_address;
        let domain = if addr.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .context("cannot create UDP socket")?;
        if addr.is_ipv6() {
            let only_v6 = setup.address_family == AddressFamily::Ipv6;
            socket.set_only_v6(only_v6).context("IPV6_V6ONLY")?;
        }
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.set_nonblocking(true).context("O_NONBLOCK")?;
        set_dont_fragment(&socket, addr.is_ipv6());
        socket.bind(&addr.into()).with_context(|| {
            format!(
                "Unable to create any listening socket: Can't bind to {} port {}/udp (is \
                 another daemon using port {}?)",
                addr.ip(),
                addr.port(),
                addr.port()
            )
        })?;
        let std_socket: std::net::UdpSocket = socket.into();
        let port = std_socket
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(addr.port());
        if !super::udp_batch::enable_gro(&std_socket) {
            tracing::debug!("UDP GRO not available: one datagram per read");
        }
        let socket = UdpSocket::from_std(std_socket).context("cannot register UDP socket")?;
        Ok(Udp {
            socket,
            v6: addr.is_ipv6(),
            port,
            gso: true,
        })
    }

    /// The port actually bound.
    pub fn local_port(&self) -> u16 {
        self.port
    }
}

/// Sets the don't-fragment bit on every datagram and has the kernel refuse
/// (`EMSGSIZE`) what exceeds the path MTU it knows: meshd finds each path's
/// MTU itself and cuts frames to fit (core `pmtu`, `pieces`), so a datagram
/// is never fragmented by the kernel or lost to a router that will not.
fn set_dont_fragment(socket: &Socket, v6: bool) {
    let set = |level, name, value| {
        let value: libc::c_int = value;
        // SAFETY: a valid descriptor and a c_int option value that outlives the call.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(socket),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    // On a dual-stack socket the IPv4 option covers v4-mapped peers.
    let v4 = set(
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_DO,
    );
    let v6 = !v6
        || set(
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DO,
        ) == 0;
    if v4 != 0 || !v6 {
        tracing::debug!("cannot set the don't-fragment option: the kernel fragments big datagrams");
    }
}

/// `::ffff:a.b.c.d` becomes `a.b.c.d`, so addresses compare equal across families.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

pub(super) fn mapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

/// The wildcard address for a family.
pub fn wildcard(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_round_trip() {
        let v4: SocketAddr = "192.0.2.1:655".parse().unwrap();
        assert_eq!(canonical(mapped(v4)), v4);
        let v6: SocketAddr = "[2001:db8::1]:655".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
