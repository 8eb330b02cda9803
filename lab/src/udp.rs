//! The lab's request/response UDP flow (scripts/lab, on unless --no-udp):
//! `meshd-lab udp-echo` answers on each holder (or in its container), bound
//! to the VIP itself, and `meshd-lab udp-probe` on the client sends one
//! request every interval from one source port (one flow, one 5-tuple) and
//! writes each answer as a line in `ping -D`'s format, so that the lab reads
//! it as it reads ping's log ([`crate::probe::ProbeLog`]):
//!
//! ```text
//! sent udp_seq=7
//! [1764842400.123456] 23 bytes from 10.1.1.10: udp_seq=7 ttl=42 time=0.41 ms
//! 250 packets transmitted, 236 received
//! ```
//!
//! `ttl=` is the responder's tag (the lab passes 40 + N, the TTL its ping
//! answers carry), so the same "which holder answered" logic applies.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::host::epoch_now;

/// A request: `meshd-lab SEQ`.
pub fn request(seq: u64) -> String {
    format!("meshd-lab {seq}")
}

/// The answer to `req` by the responder tagged `tag`, or None for anything
/// that is not a request.
pub fn answer(req: &[u8], tag: u32) -> Option<String> {
    let seq: u64 = std::str::from_utf8(req)
        .ok()?
        .strip_prefix("meshd-lab ")?
        .trim()
        .parse()
        .ok()?;
    Some(format!("meshd-lab {seq} {tag}"))
}

/// (seq, tag) of an answer.
pub fn parse_answer(a: &[u8]) -> Option<(u64, u32)> {
    let mut w = std::str::from_utf8(a)
        .ok()?
        .strip_prefix("meshd-lab ")?
        .split_whitespace();
    let seq = w.next()?.parse().ok()?;
    let tag = w.next()?.parse().ok()?;
    w.next().is_none().then_some((seq, tag))
}

/// The log line of an answer (ping -D's format, `udp_seq=` for `icmp_seq=`).
pub fn answer_line(ts: f64, len: usize, from: IpAddr, seq: u64, tag: u32, rtt: Duration) -> String {
    format!(
        "[{ts:.6}] {len} bytes from {from}: udp_seq={seq} ttl={tag} time={:.2} ms",
        rtt.as_secs_f64() * 1000.0
    )
}

/// A UDP socket bound to `addr` with IP_FREEBIND: the address need not be
/// local yet (a backup's VIP arrives with the takeover).
fn freebind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket below.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_IP,
            libc::IP_FREEBIND,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Bind through std: a second socket would lose the option, so bind the
    // raw descriptor with the sockaddr std would build.
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of `len` bytes.
    let rc = unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
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
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

/// `meshd-lab udp-echo`: answers every request to `bind` (the VIP, bound
/// with IP_FREEBIND) with its seq and `tag`, from the VIP. Runs until killed.
pub fn echo(bind: SocketAddr, tag: u32) -> io::Result<()> {
    let sock = freebind(bind)?;
    println!("{:.6} answering on {bind} as {tag}", epoch_now());
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        if let Some(a) = answer(&buf[..n], tag) {
            let _ = sock.send_to(a.as_bytes(), from);
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// What `udp-probe` is told.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub to: SocketAddr,
    pub interval: Duration,
    /// Only a source port whose flow this tag answers (the holder the lab
    /// faults; meshd steers each flow by its 5-tuple): tried port by port.
    pub want: Option<u32>,
    pub tries: u32,
}

/// A connected socket whose flow `want` answers (any answer without `want`),
/// and the tag that answered; None after `tries` source ports.
fn find_flow(spec: &ProbeSpec, out: &mut impl Write) -> io::Result<Option<(UdpSocket, u32)>> {
    let any: SocketAddr = if spec.to.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let mut buf = [0u8; 512];
    for _ in 0..spec.tries {
        let sock = UdpSocket::bind(any)?;
        sock.connect(spec.to)?;
        let port = sock.local_addr()?.port();
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        // Seq 0: ProbeLog skips it. Three tries, the flow's first frames may
        // wait for a neighbour entry.
        let mut tag = None;
        for _ in 0..3 {
            sock.send(request(0).as_bytes())?;
            if let Ok(n) = sock.recv(&mut buf) {
                if let Some((0, t)) = parse_answer(&buf[..n]) {
                    tag = Some(t);
                    break;
                }
            }
        }
        writeln!(
            out,
            "flow from port {port}: answered by {}",
            tag.map_or("nobody".into(), |t| t.to_string())
        )?;
        match (tag, spec.want) {
            (Some(t), None) => return Ok(Some((sock, t))),
            (Some(t), Some(w)) if t == w => return Ok(Some((sock, t))),
            _ => {}
        }
    }
    Ok(None)
}

/// `meshd-lab udp-probe`: finds a flow (see [`ProbeSpec::want`]), then sends
/// a request every interval until SIGINT/SIGTERM and writes the log to
/// `out`; false when no flow was found.
pub fn probe(spec: &ProbeSpec, out: &mut impl Write) -> io::Result<bool> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let Some((sock, tag)) = find_flow(spec, out)? else {
        writeln!(out, "no flow answered by {:?}", spec.want)?;
        return Ok(false);
    };
    writeln!(
        out,
        "probing {} every {:?}, answered by {tag}",
        spec.to, spec.interval
    )?;
    let mut sent_at: Vec<Instant> = Vec::new(); // index seq - 1
    let mut received = std::collections::HashSet::new();
    let mut buf = [0u8; 512];
    let start = Instant::now();
    let from = spec.to.ip();
    while !STOP.load(Ordering::Relaxed) {
        let seq = sent_at.len() as u64 + 1;
        sent_at.push(Instant::now());
        // A send may fail while a route or neighbour is missing: a lost request.
        let _ = sock.send(request(seq).as_bytes());
        writeln!(out, "sent udp_seq={seq}")?;
        let next = start + spec.interval * seq as u32;
        loop {
            let now = Instant::now();
            if now >= next || STOP.load(Ordering::Relaxed) {
                break;
            }
            sock.set_read_timeout(Some(next - now))?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let Some((s, t)) = parse_answer(&buf[..n]) else {
                continue;
            };
            let Some(at) = s.checked_sub(1).and_then(|i| sent_at.get(i as usize)) else {
                continue;
            };
            received.insert(s);
            writeln!(
                out,
                "{}",
                answer_line(epoch_now(), n, from, s, t, at.elapsed())
            )?;
        }
    }
    writeln!(
        out,
        "{} packets transmitted, {} received",
        sent_at.len(),
        received.len()
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeLog;

    #[test]
    fn requests_and_answers() {
        assert_eq!(answer(request(7).as_bytes(), 42).unwrap(), "meshd-lab 7 42");
        assert_eq!(parse_answer(b"meshd-lab 7 42"), Some((7, 42)));
        assert_eq!(answer(b"hello", 42), None);
        assert_eq!(answer(b"meshd-lab x", 42), None);
        assert_eq!(parse_answer(b"meshd-lab 7"), None);
        assert_eq!(parse_answer(b"meshd-lab 7 42 1"), None);
    }

    #[test]
    fn the_log_reads_as_a_ping_log() {
        let from: IpAddr = "10.1.1.10".parse().unwrap();
        let text = [
            "flow from port 40000: answered by 42".to_string(),
            "sent udp_seq=1".into(),
            answer_line(100.0, 14, from, 1, 42, Duration::from_micros(410)),
            "sent udp_seq=2".into(),
            "sent udp_seq=3".into(),
            answer_line(100.03, 14, from, 3, 43, Duration::from_micros(300)),
            "3 packets transmitted, 2 received".into(),
        ]
        .join("\n");
        assert!(
            text.contains("[100.000000] 14 bytes from 10.1.1.10: udp_seq=1 ttl=42 time=0.41 ms")
        );
        let log = ProbeLog::parse(&text);
        assert_eq!(log.answers.len(), 2);
        assert_eq!((log.answers[1].seq, log.answers[1].ttl), (3, 43));
        assert_eq!(
            (log.highest_seq, log.transmitted, log.received),
            (3, Some(3), Some(2))
        );
        let o = log.outcome(100.01);
        assert_eq!((o.lost, o.recovered), (1, true));
    }

    #[test]
    fn echo_and_probe_over_loopback() {
        let port = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let s = freebind(addr).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                if let Some(a) = answer(&buf[..n], 42) {
                    let _ = s.send_to(a.as_bytes(), from);
                }
            }
        });
        let spec = ProbeSpec {
            to: addr,
            interval: Duration::from_millis(5),
            want: Some(42),
            tries: 2,
        };
        let mut out = Vec::new();
        let (sock, tag) = find_flow(&spec, &mut out).unwrap().unwrap();
        assert_eq!(tag, 42);
        sock.send(request(1).as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(parse_answer(&buf[..n]), Some((1, 42)));
        let spec = ProbeSpec {
            want: Some(7),
            ..spec
        };
        assert!(find_flow(&spec, &mut Vec::new()).unwrap().is_none());
        // A non-local address binds too (IP_FREEBIND).
        freebind("192.0.2.254:40007".parse().unwrap()).unwrap();
    }
}
