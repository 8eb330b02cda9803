//! Tests of the VIP health checks (`health.rs`).

use super::*;
use std::path::Path;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

fn spec(
    vip: &str,
    kind: CheckKind,
    interval_ms: u64,
    timeout_ms: u64,
    rise: u32,
    fall: u32,
) -> HealthCheckSpec {
    HealthCheckSpec {
        vip: vip.parse().unwrap(),
        kind,
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        rise,
        fall,
        origin: "test:1".into(),
    }
}

async fn next(rx: &mut UnboundedReceiver<HealthChange>) -> HealthChange {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("no health change within 3s")
        .expect("channel closed")
}

/// No change arrives within `d`.
async fn quiet(rx: &mut UnboundedReceiver<HealthChange>, d: Duration) {
    if let Ok(c) = tokio::time::timeout(d, rx.recv()).await {
        panic!("unexpected change {c:?}");
    }
}

fn listen(addr: SocketAddr) -> TcpListener {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_reuseaddr(true).unwrap();
    sock.bind(addr).unwrap();
    sock.listen(64).unwrap()
}

fn serve(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    })
}

fn exec(cmd: impl Into<String>) -> CheckKind {
    CheckKind::Exec(cmd.into())
}

fn test_f(path: &Path) -> CheckKind {
    exec(format!("test -f '{}'", path.display()))
}

#[test]
fn counter_rise_and_fall() {
    let mut c = Counter {
        rise: 2,
        fall: 3,
        healthy: false,
        successes: 0,
        failures: 0,
    };
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(true).as_deref(), Some("rise 1/2"));
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(true).as_deref(), Some("rise 1/2"));
    assert!(!c.healthy);
    assert_eq!(c.record(true).as_deref(), Some("rise 2/2"));
    assert!(c.healthy);
    assert_eq!(c.record(true), None);
    assert_eq!(c.record(false).as_deref(), Some("fall 1/3"));
    assert_eq!(c.record(false).as_deref(), Some("fall 2/3"));
    assert_eq!(c.record(true), None);
    assert_eq!(c.record(false).as_deref(), Some("fall 1/3"));
    assert_eq!(c.record(false).as_deref(), Some("fall 2/3"));
    assert_eq!(c.record(false).as_deref(), Some("fall 3/3"));
    assert!(!c.healthy);
}

#[test]
fn reasons_and_descriptions() {
    let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_eq!(io_reason(&e), "connection refused");
    assert_eq!(
        describe(&CheckKind::Tcp("127.0.0.1:53".parse().unwrap())),
        "tcp 127.0.0.1:53"
    );
    let long = "x".repeat(100);
    assert_eq!(describe(&exec(long)), format!("exec `{}…`", "x".repeat(60)));
    assert_eq!(output_summary(b"out\n", b" \n"), "out");
    assert_eq!(output_summary(b"out", b"e1\n\ne2\n"), "e1 / e2");
}

#[tokio::test]
async fn empty() {
    let (tx, mut rx) = unbounded_channel();
    let hc = HealthChecks::spawn(Vec::new(), tx);
    assert!(hc.is_empty());
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn tcp_fall_and_rise() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let server = serve(listener);
    let (tx, mut rx) = unbounded_channel();
    let hc = HealthChecks::spawn(
        vec![spec("10.1.1.10", CheckKind::Tcp(addr), 50, 200, 2, 2)],
        tx,
    );
    assert!(!hc.is_empty());
    // First verdict: not yet risen.
    let c = next(&mut rx).await;
    assert_eq!(c.vip, "10.1.1.10".parse::<IpAddr>().unwrap());
    assert!(!c.healthy);
    assert_eq!(c.detail, format!("tcp {addr}: connected (rise 1/2)"));
    let c = next(&mut rx).await;
    assert!(c.healthy);
    assert_eq!(c.detail, format!("tcp {addr}: connected (rise 2/2)"));

    server.abort();
    let _ = server.await;
    let t0 = Instant::now();
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    assert_eq!(
        c.detail,
        format!("tcp {addr}: connection refused (fall 2/2)")
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(40),
        "{:?}",
        t0.elapsed()
    );

    let server = serve(listen(addr));
    let t0 = Instant::now();
    let c = next(&mut rx).await;
    assert!(c.healthy);
    assert_eq!(c.detail, format!("tcp {addr}: connected (rise 2/2)"));
    assert!(
        t0.elapsed() >= Duration::from_millis(40),
        "{:?}",
        t0.elapsed()
    );
    drop(hc);
    server.abort();
}

#[tokio::test]
async fn exec_file_toggle() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let (tx, mut rx) = unbounded_channel();
    let _hc = HealthChecks::spawn(vec![spec("10.1.1.10", test_f(&flag), 30, 1000, 1, 1)], tx);
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    assert!(c.detail.starts_with("exec `test -f"), "{}", c.detail);
    assert!(c.detail.ends_with(": exited with status 1"), "{}", c.detail);
    std::fs::write(&flag, b"").unwrap();
    let c = next(&mut rx).await;
    assert!(c.healthy);
    assert!(
        c.detail.ends_with(": exited with status 0 (rise 1/1)"),
        "{}",
        c.detail
    );
    std::fs::remove_file(&flag).unwrap();
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    assert!(
        c.detail.ends_with(": exited with status 1 (fall 1/1)"),
        "{}",
        c.detail
    );
}

#[tokio::test]
async fn exec_output_in_detail() {
    let (tx, mut rx) = unbounded_channel();
    let big = "y".repeat(2000);
    let _hc = HealthChecks::spawn(
        vec![spec(
            "10.1.1.10",
            exec(format!("echo {big}; echo 'dns down' >&2; exit 3")),
            1000,
            1000,
            1,
            1,
        )],
        tx,
    );
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    assert!(
        c.detail.ends_with(": exited with status 3: dns down"),
        "{}",
        c.detail
    );
    assert_eq!(
        output_summary(&[b'y'; OUTPUT_LIMIT], b"").len(),
        OUTPUT_LIMIT
    );
}

fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for init to reap it is gone as far as we care.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn exec_timeout_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let cmd = format!("sleep 5 & echo $! > '{}'; wait", pidfile.display());
    let (tx, mut rx) = unbounded_channel();
    let t0 = Instant::now();
    let _hc = HealthChecks::spawn(vec![spec("10.1.1.10", exec(cmd), 10_000, 200, 1, 1)], tx);
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    assert!(
        c.detail.ends_with(": timed out after 200ms, group killed"),
        "{}",
        c.detail
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "sleep {pid} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn udp_checks() {
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let udp = |addr, send: &[u8], expect: Option<&[u8]>| CheckKind::Udp {
        addr,
        send: send.to_vec(),
        expect: expect.map(<[u8]>::to_vec),
    };
    let (tx, mut rx) = unbounded_channel();
    let _hc = HealthChecks::spawn(
        vec![
            spec(
                "10.0.0.1",
                udp(echo_addr, b"ping", Some(b"pi")),
                100,
                300,
                1,
                1,
            ),
            spec("10.0.0.2", udp(closed, b"ping", None), 100, 300, 1, 1),
            spec(
                "10.0.0.3",
                udp(echo_addr, b"ping", Some(b"zz")),
                100,
                300,
                1,
                1,
            ),
            spec("10.0.0.4", udp(echo_addr, b"", None), 100, 300, 1, 1),
        ],
        tx,
    );
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 4 {
        let c = next(&mut rx).await;
        got.insert(c.vip.to_string(), (c.healthy, c.detail));
    }
    assert_eq!(
        got["10.0.0.1"],
        (
            true,
            format!("udp {echo_addr}: reply of 4 bytes (rise 1/1)")
        )
    );
    assert_eq!(
        got["10.0.0.2"],
        (false, format!("udp {closed}: connection refused"))
    );
    assert_eq!(
        got["10.0.0.3"],
        (
            false,
            format!("udp {echo_addr}: unexpected reply (4 bytes: 70696e67)")
        )
    );
    assert_eq!(
        got["10.0.0.4"],
        (
            true,
            format!("udp {echo_addr}: reply of 0 bytes (rise 1/1)")
        )
    );
    responder.abort();
}

#[tokio::test]
async fn all_checks_of_a_vip_must_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (tx, mut rx) = unbounded_channel();
    let _hc = HealthChecks::spawn(
        vec![
            spec("10.1.1.10", test_f(&a), 30, 1000, 1, 1),
            spec("10.1.1.10", test_f(&b), 30, 1000, 1, 1),
        ],
        tx,
    );
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    std::fs::write(&a, b"").unwrap();
    quiet(&mut rx, Duration::from_millis(200)).await;
    std::fs::write(&b, b"").unwrap();
    let c = next(&mut rx).await;
    assert!(c.healthy);
    assert!(
        c.detail.contains("/b'`: exited with status 0 (rise 1/1)"),
        "{}",
        c.detail
    );
    std::fs::remove_file(&a).unwrap();
    let c = next(&mut rx).await;
    assert!(!c.healthy);
    assert!(
        c.detail.contains("/a'`: exited with status 1 (fall 1/1)"),
        "{}",
        c.detail
    );
    quiet(&mut rx, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn dropping_stops_the_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    // Flips between success and failure on every probe.
    let flip = format!(
        "if [ -f '{0}' ]; then rm '{0}'; exit 1; else touch '{0}'; fi",
        f.display()
    );
    let (tx, mut rx) = unbounded_channel();
    let hc = HealthChecks::spawn(vec![spec("10.1.1.10", exec(flip), 20, 1000, 1, 1)], tx);
    for _ in 0..3 {
        next(&mut rx).await;
    }
    drop(hc);
    // Every sender is gone once the tasks are: the channel closes after at most the
    // changes already queued.
    let mut late = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Some(_)) => late += 1,
            Ok(None) => break,
            Err(_) => panic!("health check tasks still running after drop"),
        }
    }
    assert!(late <= 1, "{late} changes after drop");
}

/// An IPv6 VIP guarded by TCP and UDP checks to IPv6 addresses (`[::1]:PORT`).
#[tokio::test]
async fn ipv6_vip_with_ipv6_checks() {
    let tcp = TcpListener::bind("[::1]:0").await.unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let server = serve(tcp);
    let echo = UdpSocket::bind("[::1]:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let closed = {
        let s = UdpSocket::bind("[::1]:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let udp = |addr| CheckKind::Udp {
        addr,
        send: b"ping".to_vec(),
        expect: Some(b"ping".to_vec()),
    };
    let (tx, mut rx) = unbounded_channel();
    let _hc = HealthChecks::spawn(
        vec![
            spec("fd00:1::10", CheckKind::Tcp(tcp_addr), 100, 300, 1, 1),
            spec("fd00:1::11", udp(echo_addr), 100, 300, 1, 1),
            spec("fd00:1::12", udp(closed), 100, 300, 1, 1),
        ],
        tx,
    );
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 3 {
        let c = next(&mut rx).await;
        got.insert(c.vip.to_string(), c.healthy);
    }
    assert!(got["fd00:1::10"], "tcp [::1]");
    assert!(got["fd00:1::11"], "udp [::1]");
    assert!(!got["fd00:1::12"], "udp [::1], nobody listening");
    // The TCP server goes away: the IPv6 VIP becomes unhealthy.
    server.abort();
    let _ = server.await;
    let c = next(&mut rx).await;
    assert_eq!((c.vip.to_string(), c.healthy), ("fd00:1::10".into(), false));
    responder.abort();
}
