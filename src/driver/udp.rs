//! The UDP socket: dual-stack binding, v4-mapped address translation.

use super::setup::Setup;
use crate::config::AddressFamily;
use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::UdpSocket;

/// The daemon's one UDP socket.
pub struct Udp {
    socket: UdpSocket,
    v6: bool,
    port: u16,
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
        socket.bind(&addr.into()).with_context(|| {
            format!(
                "cannot bind UDP {addr} (is another daemon using port {}?)",
                addr.port()
            )
        })?;
        let std_socket: std::net::UdpSocket = socket.into();
        let port = std_socket
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(addr.port());
        let socket = UdpSocket::from_std(std_socket).context("cannot register UDP socket")?;
        Ok(Udp {
            socket,
            v6: addr.is_ipv6(),
            port,
        })
    }

    /// The port actually bound.
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// Waits for a datagram.
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        let (n, from) = self.socket.recv_from(buf).await?;
        Ok((n, canonical(from)))
    }

    /// Takes a datagram if one is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<Option<(usize, SocketAddr)>> {
        match self.socket.try_recv_from(buf) {
            Ok((n, from)) => Ok(Some((n, canonical(from)))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one datagram.
    pub async fn send(&self, payload: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        let to = if self.v6 { mapped(to) } else { to };
        if !self.v6 && to.is_ipv6() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "IPv6 destination on an IPv4 socket",
            ));
        }
        self.socket.send_to(payload, to).await
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

fn mapped(addr: SocketAddr) -> SocketAddr {
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
