//! Batched UDP I/O for the data path.
//!
//! Sending: consecutive datagrams to the same address whose lengths are equal
//! (the last of a run may be shorter) leave in one `sendmsg` carrying a
//! `UDP_SEGMENT` control message: the kernel routes and queues the run once
//! and splits it as late as it can (on a veth or a NIC with UDP segmentation
//! offload, not at all before the peer). On the wire they are the same
//! datagrams as with one `sendto` each. If the kernel refuses (no checksum
//! offload on the route, an old kernel), the run is resent one datagram at a
//! time, and for good when the refusal says GSO is not available.
//!
//! Receiving: with `UDP_GRO` set, one `recvmsg` may return a train of
//! datagrams from one sender, all of the size the control message gives but
//! the last; the caller splits it.

use super::udp::{canonical, mapped, Udp};
use crate::node::Transmit;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::task::Poll;
use tokio::io::Interest;

/// `UDP_SEGMENT` (linux/udp.h): the segment size of a GSO send.
const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (linux/udp.h): deliver coalesced datagrams with their segment size.
const UDP_GRO: libc::c_int = 104;
/// Most datagrams in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
pub const MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO send (one IP packet's worth).
const MAX_GSO_BYTES: usize = 65_000;

/// Asks the kernel to coalesce received datagrams; false if it cannot.
pub(super) fn enable_gro(sock: &std::net::UdpSocket) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: a valid descriptor and a c_int option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            UDP_GRO,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// How many datagrams from the start of `items` may go in one GSO send: same
/// destination, each as long as the first except a shorter last one, within
/// the kernel's bounds.
pub fn gso_run(items: &[Transmit]) -> usize {
    let Some(first) = items.first() else {
        return 0;
    };
    let seg = first.payload.len();
    let mut total = seg;
    let mut n = 1;
    for t in &items[1..] {
        let len = t.payload.len();
        if n >= MAX_SEGMENTS
            || t.destination != first.destination
            || len > seg
            || len == 0
            || total + len > MAX_GSO_BYTES
        {
            break;
        }
        total += len;
        n += 1;
        if len < seg {
            break;
        }
    }
    n
}

impl Udp {
    /// Sends `items` in order, runs of them with UDP GSO (see the module doc).
    /// Waits while the socket buffer is full; errors are logged and the
    /// datagrams concerned dropped, as for one `sendto` each. Returns the
    /// datagrams the kernel refused as larger than the path allows
    /// (`EMSGSIZE`: destination, length), for the core's path MTU.
    pub async fn send_batch(&mut self, items: &[Transmit]) -> Vec<(SocketAddr, usize)> {
        let mut too_big = Vec::new();
        let mut i = 0;
        while i < items.len() {
            let n = if self.gso { gso_run(&items[i..]) } else { 1 };
            let run = &items[i..i + n];
            let dest = run[0].destination;
            let Some(index) = self.socket_for(&dest) else {
                tracing::debug!(to = %dest, "no UDP socket of that address family");
                i += n;
                continue;
            };
            let bound = &self.sockets[index];
            let to = if bound.v6 { mapped(dest) } else { dest };
            let seg = if n > 1 {
                u16::try_from(run[0].payload.len()).ok()
            } else {
                None
            };
            let fd = bound.socket.as_raw_fd();
            let res = bound
                .socket
                .async_io(Interest::WRITABLE, || send_raw(fd, to, run, seg))
                .await;
            match res {
                Ok(_) => i += n,
                Err(err) if n > 1 => {
                    // Resend this run one datagram at a time; stop using GSO
                    // when the error says the route or kernel cannot do it.
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                    ) {
                        tracing::info!(%err, "UDP GSO refused; sending datagrams one at a time");
                        self.gso = false;
                    }
                    for t in run {
                        let one = std::slice::from_ref(t);
                        let res = bound
                            .socket
                            .async_io(Interest::WRITABLE, || send_raw(fd, to, one, None))
                            .await;
                        if let Err(err) = res {
                            note_failure(&mut too_big, dest, t.payload.len(), &err);
                        }
                    }
                    i += n;
                }
                Err(err) => {
                    note_failure(&mut too_big, dest, run[0].payload.len(), &err);
                    i += n;
                }
            }
        }
        too_big
    }

    /// Waits for a datagram, or a coalesced train of them, on any socket: returns the bytes
    /// read, the sender and the size of each datagram in `buf[..len]` (all but the last,
    /// which may be shorter). `buf` should hold 64 KiB. The sender's socket is remembered
    /// for replies.
    pub async fn recv_train(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, usize)> {
        let (start, n) = (self.read_start(), self.sockets.len());
        let (index, got) = std::future::poll_fn(|cx| {
            for i in (0..n).map(|k| (start + k) % n) {
                let socket = &self.sockets[i].socket;
                loop {
                    match socket.poll_recv_ready(cx) {
                        Poll::Ready(Ok(())) => {
                            let fd = socket.as_raw_fd();
                            match socket.try_io(Interest::READABLE, || recv_raw(fd, buf)) {
                                // Readiness was cleared: poll again, which registers the waker.
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                                r => return Poll::Ready((i, r)),
                            }
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready((i, Err(e))),
                        Poll::Pending => break,
                    }
                }
            }
            Poll::Pending
        })
        .await;
        let got = got?;
        self.heard_on(got.1, index);
        Ok(got)
    }

    /// Like [`Udp::recv_train`] if something is queued on a socket; `None` otherwise.
    pub fn try_recv_train(
        &mut self,
        buf: &mut [u8],
    ) -> io::Result<Option<(usize, SocketAddr, usize)>> {
        let (start, n) = (self.read_start(), self.sockets.len());
        for i in (0..n).map(|k| (start + k) % n) {
            let socket = &self.sockets[i].socket;
            let fd = socket.as_raw_fd();
            match socket.try_io(Interest::READABLE, || recv_raw(fd, buf)) {
                Ok(r) => {
                    self.heard_on(r.1, i);
                    return Ok(Some(r));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// Logs a failed send; one refused as too big is kept for the core.
fn note_failure(
    too_big: &mut Vec<(SocketAddr, usize)>,
    dest: SocketAddr,
    len: usize,
    err: &io::Error,
) {
    if err.raw_os_error() == Some(libc::EMSGSIZE) {
        tracing::debug!(to = %dest, len, "datagram larger than the path allows");
        too_big.push((dest, len));
    } else {
        tracing::debug!(to = %dest, %err, "UDP send failed");
    }
}

/// Control-message space for one `c_int` or `u16` value, 8-byte aligned.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

fn socket_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((storage as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((storage as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// One `sendmsg` of the payloads of `run` to `to`, as one datagram each of
/// `seg` bytes (GSO) when `seg` is given, else as one datagram.
fn send_raw(fd: RawFd, to: SocketAddr, run: &[Transmit], seg: Option<u16>) -> io::Result<usize> {
    let (mut addr, addr_len) = socket_addr(to);
    let mut iov: [libc::iovec; MAX_SEGMENTS] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_SEGMENTS];
    let n = run.len().min(MAX_SEGMENTS);
    for (v, t) in iov.iter_mut().zip(&run[..n]) {
        v.iov_base = t.payload.as_ptr() as *mut libc::c_void;
        v.iov_len = t.payload.len();
    }
    let mut cmsg = CmsgBuf([0; 64]);
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = addr_len;
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    if let Some(seg) = seg {
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as _;
        // SAFETY: the control buffer is aligned, zeroed and large enough for
        // one header with a u16, so CMSG_FIRSTHDR is non-null and in bounds.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
        }
    }
    // SAFETY: every pointer in `msg` refers to live buffers for the call.
    let rc = unsafe { libc::sendmsg(fd, &msg, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// One `recvmsg` into `buf`: (bytes, sender, segment size).
fn recv_raw(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, usize)> {
    // SAFETY: plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = CmsgBuf([0; 64]);
    // SAFETY: plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.0.len() as _;
    // SAFETY: every pointer in `msg` refers to live buffers for the call.
    let rc = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = rc as usize;
    let mut seg = n;
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG macros
    // walk within them, and each data read is of the size the type promises.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                if v > 0 {
                    seg = v as usize;
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let from = from_storage(&addr).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "datagram from an unknown family",
        )
    })?;
    Ok((n, canonical(from), seg.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::udp::Bound;

    fn t(dest: &str, len: usize) -> Transmit {
        Transmit {
            destination: dest.parse().unwrap(),
            payload: vec![0; len],
        }
    }

    #[test]
    fn runs_group_equal_sizes_to_one_destination() {
        let a = "192.0.2.1:655";
        let b = "192.0.2.2:655";
        assert_eq!(gso_run(&[]), 0);
        assert_eq!(gso_run(&[t(a, 100)]), 1);
        // Equal sizes, then a shorter last one ends the run.
        let v = [t(a, 100), t(a, 100), t(a, 60), t(a, 100)];
        assert_eq!(gso_run(&v), 3);
        // A longer one or another destination ends it before.
        assert_eq!(gso_run(&[t(a, 100), t(a, 101)]), 1);
        assert_eq!(gso_run(&[t(a, 100), t(a, 100), t(b, 100)]), 2);
        // Bounded in count and bytes.
        let many: Vec<Transmit> = (0..100).map(|_| t(a, 10)).collect();
        assert_eq!(gso_run(&many), MAX_SEGMENTS);
        let big: Vec<Transmit> = (0..60).map(|_| t(a, 1500)).collect();
        assert_eq!(gso_run(&big), MAX_GSO_BYTES / 1500);
    }

    #[test]
    fn gso_train_arrives_as_the_same_datagrams() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let mut rx = Udp::new(vec![Bound::bind(any, false, None).unwrap()]).unwrap();
            let to = SocketAddr::new(any.ip(), rx.local_port());
            let mut udp = Udp::new(vec![Bound::bind(any, false, None).unwrap()]).unwrap();
            let items: Vec<Transmit> = (0..10u8)
                .map(|i| Transmit {
                    destination: to,
                    payload: vec![i; if i == 9 { 77 } else { 300 }],
                })
                .collect();
            udp.send_batch(&items).await;
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            while got.len() < 10 {
                let (n, _from, seg) = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    rx.recv_train(&mut buf),
                )
                .await
                .expect("datagrams within 5 s")
                .unwrap();
                for chunk in buf[..n].chunks(seg) {
                    got.push(chunk.to_vec());
                }
            }
            let want: Vec<Vec<u8>> = items.into_iter().map(|t| t.payload).collect();
            assert_eq!(got, want);
        });
    }

    /// Two listening sockets: a peer is answered from the one it sent to.
    #[test]
    fn replies_leave_from_the_socket_the_peer_reached() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let first: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let a = Bound::bind(first, false, None).unwrap();
            let port = a.local_addr().unwrap().port();
            let second: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
            let b = Bound::bind(second, false, None).unwrap();
            let mut udp = Udp::new(vec![a, b]).unwrap();
            let mut buf = vec![0u8; 65536];
            for reached in [second, SocketAddr::new(first.ip(), port)] {
                let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                peer.send_to(b"hello", reached).unwrap();
                let (n, from, _) = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    udp.recv_train(&mut buf),
                )
                .await
                .expect("a datagram within 5 s")
                .unwrap();
                assert_eq!(
                    (&buf[..n], from),
                    (&b"hello"[..], peer.local_addr().unwrap())
                );
                udp.send_batch(&[Transmit {
                    destination: from,
                    payload: b"answer".to_vec(),
                }])
                .await;
                let mut got = [0u8; 16];
                let (n, source) = peer.recv_from(&mut got).unwrap();
                assert_eq!((&got[..n], source), (&b"answer"[..], reached));
            }
        });
    }
}
