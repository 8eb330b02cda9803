//! The latency floor of a user-space relay on this machine: a UDP echo
//! server that does nothing but `recv_from` + `send_to`, and a client that
//! measures round trips through it at a chosen spacing. The round trip costs
//! two process wake-ups (server, client) and no work; an overlay ping costs
//! three daemon wake-ups (`scripts/bench-throughput --latency` runs both and
//! sets them side by side).
//!
//! ```text
//! cargo build --release --example udp_echo
//! target/release/examples/udp_echo serve 0.0.0.0:9998
//! target/release/examples/udp_echo ping 192.0.2.2:9998 --count 500 --interval-us 10000
//! ```
//!
//! `ping` prints `median_us=… p10_us=… p90_us=… lost=…` (microseconds; a
//! reply not back within 1 s counts as lost). It refuses destinations outside
//! the lab ranges of `support/lab_address.rs`.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "support/lab_address.rs"]
mod lab_address;
use lab_address::is_test_destination;

const USAGE: &str = "usage: udp_echo serve ADDR:PORT
       udp_echo ping ADDR:PORT [--count N (default 500)] [--interval-us US (default 10000)]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => args
            .get(1)
            .ok_or_else(|| USAGE.to_string())
            .and_then(|a| parse_addr(a))
            .and_then(serve),
        Some("ping") => parse_ping(&args[1..]).and_then(|(to, count, interval)| {
            ping(to, count, interval).map(|line| println!("{line}"))
        }),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("udp_echo: {err}");
            ExitCode::from(2)
        }
    }
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|e| format!("'{text}' is not ADDR:PORT: {e}"))
}

fn parse_ping(args: &[String]) -> Result<(SocketAddr, usize, u64), String> {
    let to = parse_addr(args.first().ok_or_else(|| USAGE.to_string())?)?;
    if !is_test_destination(to.ip()) {
        return Err(format!(
            "{to}: only loopback, private and documentation addresses (a lab tool)"
        ));
    }
    let (mut count, mut interval_us) = (500usize, 10_000u64);
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--count" => count = value.parse().map_err(bad)?,
            "--interval-us" => interval_us = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if count == 0 || count > 1_000_000 {
        return Err("--count wants 1..=1000000".into());
    }
    Ok((to, count, interval_us))
}

fn serve(addr: SocketAddr) -> Result<(), String> {
    let socket = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = socket.send_to(&buf[..n], from);
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

fn ping(to: SocketAddr, count: usize, interval_us: u64) -> Result<String, String> {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse()
    } else {
        "[::]:0".parse()
    }
    .map_err(|e| format!("{e}"))?;
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| format!("timeout: {e}"))?;
    let mut rtts = Vec::with_capacity(count);
    let mut lost = 0usize;
    let mut buf = [0u8; 64];
    for seq in 0..count as u64 {
        let probe = seq.to_be_bytes();
        let start = Instant::now();
        socket
            .send_to(&probe, to)
            .map_err(|e| format!("send to {to}: {e}"))?;
        // Replies to earlier, lost probes may still come: wait for this one.
        loop {
            match socket.recv_from(&mut buf) {
                Ok((8, from)) if from == to && buf[..8] == probe => {
                    rtts.push(start.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(interval_us));
    }
    if rtts.is_empty() {
        return Err(format!("no reply from {to}"));
    }
    rtts.sort();
    let at = |q: usize| rtts[(rtts.len() * q / 100).min(rtts.len() - 1)].as_secs_f64() * 1e6;
    Ok(format!(
        "median_us={:.1} p10_us={:.1} p90_us={:.1} lost={lost}",
        at(50),
        at(10),
        at(90)
    ))
}
