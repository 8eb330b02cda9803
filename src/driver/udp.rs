//! The UDP sockets: one per listen address, dual-stack binding, which socket
//! answers which peer, v4-mapped address translation, and the batched data path: runs of equal-sized datagrams to one peer leave in
//! one `sendmsg` with UDP GSO (`UDP_SEGMENT`), and arrive coalesced by UDP
//! GRO, so a burst costs one trip through the kernel instead of one per packet
//! (see [`super::udp_batch`]).

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::UdpSocket;

/// One bound UDP socket (one per listen address, as tincd's).
pub(super) struct Bound {
    pub(super) socket: UdpSocket,
    /// An IPv6 socket (v4 destinations go out v4-mapped if it is dual-stack).
    pub(super) v6: bool,
    /// Whether it can send to IPv4 addresses: an IPv4 socket, or a dual-stack wildcard.
    pub(super) reaches_v4: bool,
    /// Whether it can send to IPv6 addresses.
    pub(super) reaches_v6: bool,
}

/// The daemon's UDP sockets: one per listen address. A peer is answered from the socket
/// its datagrams arrive on, so a node listening on two addresses replies from the one it
/// was reached at; a peer not heard yet is sent to from the first socket of its family.
pub struct Udp {
    pub(super) sockets: Vec<Bound>,
    /// The first socket's port (the node's port: pidfile, `dump nodes`).
    port: u16,
    /// Whether the kernel takes `UDP_SEGMENT` sends (cleared on the first refusal).
    pub(super) gso: bool,
    /// Remote → the socket it was last heard on, only where that is not the first socket
    /// of its family (so empty with one socket per family). Bounded: see [`ROUTES_MAX`].
    routes: HashMap<SocketAddr, usize>,
    /// Where the next read looks first, so that no socket starves the others.
    next_read: usize,
}

const SOCKET_BUFFER: usize = 4 << 20;

/// Most remembered remotes on non-default sockets. Anyone can send a datagram from any
/// (spoofed) source, so the table is cleared when full: a real peer's next datagram puts
/// its entry back, and until then its replies leave from its family's first socket.
const ROUTES_MAX: usize = 4096;

impl Bound {
    /// Binds one UDP socket on `addr`. `dual_stack`: an IPv6 wildcard also takes IPv4
    /// (v4-mapped); `device`: BindToInterface.
    pub(super) fn bind(addr: SocketAddr, dual_stack: bool, device: Option<&str>) -> Result<Bound> {
        let domain = if addr.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .context("cannot create a UDP socket")?;
        let dual = addr.is_ipv6() && dual_stack && addr.ip().is_unspecified();
        if addr.is_ipv6() {
            socket.set_only_v6(!dual).context("IPV6_V6ONLY")?;
        }
        if let Some(dev) = device {
            socket
                .bind_device(Some(dev.as_bytes()))
                .with_context(|| format!("cannot bind to interface {dev} (BindToInterface)"))?;
        }
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.set_nonblocking(true).context("O_NONBLOCK")?;
        set_dont_fragment(&socket, addr.is_ipv6());
        socket.bind(&addr.into())?;
        let std_socket: std::net::UdpSocket = socket.into();
        if !super::udp_batch::enable_gro(&std_socket) {
            tracing::debug!("UDP GRO not available: one datagram per read");
        }
        Ok(Bound {
            socket: UdpSocket::from_std(std_socket).context("cannot register a UDP socket")?,
            v6: addr.is_ipv6(),
            reaches_v4: !addr.is_ipv6() || dual,
            reaches_v6: addr.is_ipv6(),
        })
    }

    /// The address actually bound (the port the kernel chose for port 0).
    pub(super) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl Udp {
    /// The sockets bound by [`super::listen`], the first one's port being the node's.
    pub(super) fn new(sockets: Vec<Bound>) -> Result<Udp> {
        let first = sockets.first().context("no UDP socket")?;
        let port = first
            .local_addr()
            .context("the UDP socket's address")?
            .port();
        Ok(Udp {
            sockets,
            port,
            gso: true,
            routes: HashMap::new(),
            next_read: 0,
        })
    }

    /// The port actually bound (the first socket's).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// The first socket that can send to `dest`'s family.
    fn default_for(&self, dest: &SocketAddr) -> Option<usize> {
        self.sockets.iter().position(|b| {
            if dest.is_ipv4() {
                b.reaches_v4
            } else {
                b.reaches_v6
            }
        })
    }

    /// The socket to send to `dest` from: the one it was last heard on, else the first of
    /// its family; `None` if no socket reaches that family.
    pub(super) fn socket_for(&self, dest: &SocketAddr) -> Option<usize> {
        match self.routes.get(dest) {
            Some(&i) => Some(i),
            None => self.default_for(dest),
        }
    }

    /// Notes that `from` (canonical) was heard on socket `index`.
    pub(super) fn heard_on(&mut self, from: SocketAddr, index: usize) {
        if self.sockets.len() == 1 {
            return;
        }
        if self.default_for(&from) == Some(index) {
            if !self.routes.is_empty() {
                self.routes.remove(&from);
            }
            return;
        }
        if self.routes.len() >= ROUTES_MAX && !self.routes.contains_key(&from) {
            self.routes.clear();
        }
        self.routes.insert(from, index);
    }

    /// The socket the next read looks at first (rotating, so none starves the others).
    pub(super) fn read_start(&mut self) -> usize {
        let start = self.next_read % self.sockets.len().max(1);
        self.next_read = self.next_read.wrapping_add(1);
        start
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
