//! `meshd dump limits` from a running daemon (loopback, `DeviceType = dummy`: no
//! root and no namespace needed): every bounded table with numbers, `--json`, and
//! the control socket's own bound: idle connections beyond
//! `MAX_CONTROL_CONNECTIONS` are closed and counted, and the daemon answers
//! again once they time out.

mod cli_support;

use cli_support::*;
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[test]
fn dump_limits_shows_every_table_and_the_control_socket_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mlm_a");
    let port = free_port();
    init_node(&dir, "mlm_a", port);
    let metrics_port = free_port();
    append(
        &dir.join("tinc.conf"),
        &format!("MetricsAddress = 127.0.0.1:{metrics_port}\n"),
    );
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &dir, "mlm_a", port, &[&dir]);

    let o = meshd(&dir, &["dump", "limits"]);
    assert_ok(&o);
    let text = stdout(&o);
    for table in [
        "peers",
        "sessions_per_peer",
        "handshakes_in_flight",
        "handshake_sources",
        "mac_table",
        "mac_table_per_node",
        "ip_bindings",
        "vip_flows",
        "send_queue",
        "tap_queue",
        "spare_buffers",
        "script_queue",
        "control_connections",
        "log_streams",
        "join_connections",
        "control_line_bytes",
        "metrics_connections",
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no {table} line in:\n{text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 11, "{line}");
        assert_eq!(
            (words[1], words[3], words[5], words[7], words[9]),
            ("in_use", "cap", "refused", "evicted", "at_cap"),
            "{line}"
        );
        let cap: u64 = words[4].parse().expect("cap is a number");
        assert!(cap > 0, "{line}");
    }
    assert!(text.contains("peers in_use 0 cap 4096 refused 0"), "{text}");
    assert!(
        text.contains("mac_table in_use 0 cap 65536 refused 0"),
        "{text}"
    );
    // The dump's own connection is the one in use.
    assert!(
        text.contains("control_connections in_use 1 cap 32 refused 0"),
        "{text}"
    );

    let o = meshd(&dir, &["dump", "limits", "--json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let list = v.as_array().expect("a list");
    assert!(list.len() >= 14);
    assert!(list
        .iter()
        .all(|l| l["cap"].as_u64().is_some_and(|c| c > 0)));

    // 40 connections that never say anything: 32 hold a slot until the 5 s
    // greeting timeout, 8 are closed at once.
    let socket = dir.join("meshd.socket");
    let idle: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&socket).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let o = meshd(&dir, &["dump", "limits"]);
    assert!(
        !o.status.success(),
        "a 41st connection was served: {}",
        show(&o)
    );
    // Once the idle ones time out, the daemon answers again and has counted.
    let mut last = String::new();
    let answered = wait_until(Duration::from_secs(15), || {
        let o = meshd(&dir, &["dump", "limits"]);
        last = stdout(&o);
        o.status.success()
    });
    drop(idle);
    assert!(answered, "the control socket never recovered");
    let line = last
        .lines()
        .find(|l| l.starts_with("control_connections "))
        .expect("control_connections line");
    let refused: u64 = line.split_whitespace().nth(6).unwrap().parse().unwrap();
    assert!(refused >= 9, "{line}");

    // A line longer than the bound is not read to its end: the connection
    // closes before any cookie check, and the refusal is counted.
    {
        use std::io::{Read, Write};
        let mut s = UnixStream::connect(&socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let junk = vec![b'x'; 1 << 20];
        let _ = s.write_all(&junk); // the daemon may close while we write
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(answer.is_empty(), "answered a 1 MiB line");
    }
    let o = meshd(&dir, &["dump", "limits"]);
    assert_ok(&o);
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.starts_with("control_line_bytes "))
        .expect("control_line_bytes line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((words[4], words[6]), ("65536", "1"), "{line}");

    // Metrics connections that never send a request: 16 are held, the rest
    // closed at once and counted; closing them frees the slots.
    let idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", metrics_port)).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let text = stdout(&meshd(&dir, &["dump", "limits"]));
    let line = text
        .lines()
        .find(|l| l.starts_with("metrics_connections "))
        .expect("metrics_connections line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((words[2], words[4], words[6]), ("16", "16", "4"), "{line}");
    drop(idle);
    let scraped = wait_until(Duration::from_secs(5), || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", metrics_port)) else {
            return false;
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("200 OK")
    });
    assert!(scraped, "metrics never answered again");
    assert_ok(&meshd(&dir, &["stop"]));
}
