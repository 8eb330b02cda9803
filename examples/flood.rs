//! A bounded UDP flooder for meshd's unauthenticated load test (a test tool:
//! it refuses destinations outside loopback, private and documentation
//! ranges, and every run is bounded in time and, optionally, in packets).
//!
//! Kinds of packet, all sent to one UDP address (a meshd daemon's port):
//!
//! - `garbage`: random bytes of random length (1..=1400), with a random first
//!   byte (mostly a wrong version, so the daemon drops it at the first byte);
//! - `init`: well-formed HandshakeInits built with meshd's own handshake code
//!   (`meshd::crypto::initiate`), addressed to `--responder`, from random
//!   unknown node names signed with random keys;
//! - `init-known`: the same, but claiming to come from `--impersonate` (a node
//!   the target knows) while signed with a random key: the target has to verify
//!   the Ed25519 signature before it can refuse it (the expensive path);
//! - `data`: well-formed data packets (type 3) to random receiver indexes,
//!   with random counters and random ciphertext of random length;
//! - `mixed`: the four above in turn.
//!
//! Handshake inits are signed ahead of time (a pool of `--pool` distinct
//! inits, sent in turn), so the flooder's rate is not bound by its own
//! signing. Each source address gets `--ports` sockets on random ports.
//!
//! ```text
//! cargo build --release --example flood
//! target/release/examples/flood --to 192.0.2.1:655 --kind mixed --seconds 10 \
//!     --responder node_1 --impersonate node_2 --rate 50000
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use meshd::crypto::{initiate, PROTOCOL_VERSION};
use meshd::keys::PrivateKey;
use meshd::name::NodeName;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

#[path = "support/lab_address.rs"]
mod lab_address;
use lab_address::is_test_destination;

/// Longest run allowed (seconds).
const MAX_SECONDS: f64 = 600.0;
/// Most source addresses.
const MAX_SOURCES: u32 = 1024;
/// Longest garbage datagram.
const MAX_GARBAGE: usize = 1400;
/// Data packet header: version, type, receiver index, counter.
const DATA_HEADER: usize = 14;
/// Poly1305 tag length (the least ciphertext a data packet carries).
const TAG: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Random bytes of random length.
    Garbage,
    /// HandshakeInits from unknown names with random keys.
    Init,
    /// HandshakeInits claiming a known node's name, signed with a wrong key.
    InitKnown,
    /// Data packets to random receiver indexes.
    Data,
    /// All four in turn.
    Mixed,
}

/// Sends a bounded flood of garbage, handshake inits or data packets to one
/// meshd UDP port. A test tool: only loopback, private (RFC 1918, ULA,
/// CGNAT, link-local) and documentation/benchmark destinations are accepted.
#[derive(Debug, Parser)]
#[command(name = "flood")]
pub(crate) struct Args {
    /// Destination, IP:PORT (the target daemon's UDP port).
    #[arg(long)]
    to: SocketAddr,
    /// What to send.
    #[arg(long, value_enum, default_value = "mixed")]
    kind: Kind,
    /// Stop after this many seconds (required; at most 600).
    #[arg(long)]
    seconds: f64,
    /// Stop after this many packets (default: only the time bounds the run).
    #[arg(long)]
    count: Option<u64>,
    /// Packets per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The target's node name (the responder of the handshake inits).
    #[arg(long, default_value = "node_1")]
    responder: String,
    /// A node name the target knows, for `init-known` (and `mixed`).
    #[arg(long)]
    impersonate: Option<String>,
    /// First IPv4 source address to bind (default: the unspecified address).
    /// With `--sources N`, N consecutive addresses from this one, which must
    /// be configured on a local interface.
    #[arg(long)]
    from: Option<Ipv4Addr>,
    /// Number of consecutive source addresses starting at `--from`.
    #[arg(long, default_value_t = 1)]
    sources: u32,
    /// Sockets (random source ports) per source address.
    #[arg(long, default_value_t = 4)]
    ports: u32,
    /// Distinct pre-signed handshake inits to cycle through.
    #[arg(long, default_value_t = 512)]
    pool: usize,
    /// Seed of the random generator (default: from the OS).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The packets a run cycles through (inits are pre-signed; the rest is made on the fly).
struct Packets {
    kind: Kind,
    inits_unknown: Vec<Vec<u8>>,
    inits_known: Vec<Vec<u8>>,
    next: u64,
    buf: Vec<u8>,
}

fn random_name(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let len = rng.gen_range(4..=16);
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// `n` HandshakeInits to `responder`, each from `from` (or a random name when
/// `None`), each signed with its own random key.
fn make_inits(
    n: usize,
    responder: &str,
    from: Option<&str>,
    rng: &mut StdRng,
) -> Result<Vec<Vec<u8>>> {
    let wall_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let responder = &NodeName::new(responder)
        .with_context(|| format!("the responder {responder:?} is not a node name"))?;
    (0..n)
        .map(|i| {
            let key = PrivateKey::generate(rng);
            let name = from.map_or_else(|| random_name(rng), str::to_string);
            let name = NodeName::new(name.as_str())
                .with_context(|| format!("the initiator {name:?} is not a node name"))?;
            // The target's key for us is unknown (or someone else's): any 32 bytes do.
            let mut peer_key = [0u8; 32];
            rng.fill_bytes(&mut peer_key);
            let (_, init) = initiate(
                &key,
                &name,
                responder,
                peer_key,
                rng.next_u32() | 1,
                wall_ns + i as u64,
                rng,
            )
            .with_context(|| format!("building a handshake init from {name:?} to {responder:?}"))?;
            Ok(init)
        })
        .collect()
}

impl Packets {
    fn new(args: &Args, rng: &mut StdRng) -> Result<Packets> {
        let pool = args.pool.max(1);
        let wants_unknown = matches!(args.kind, Kind::Init | Kind::Mixed);
        let wants_known = matches!(args.kind, Kind::InitKnown | Kind::Mixed);
        let inits_unknown = if wants_unknown {
            make_inits(pool, &args.responder, None, rng)?
        } else {
            Vec::new()
        };
        let inits_known = match (&args.impersonate, wants_known) {
            (Some(name), true) => make_inits(pool, &args.responder, Some(name), rng)?,
            (None, true) if args.kind == Kind::InitKnown => {
                bail!("--kind init-known needs --impersonate NAME (a node the target knows)")
            }
            _ => Vec::new(),
        };
        Ok(Packets {
            kind: args.kind,
            inits_unknown,
            inits_known,
            next: 0,
            buf: Vec::with_capacity(MAX_GARBAGE),
        })
    }

    /// The next datagram to send.
    fn next(&mut self, rng: &mut StdRng) -> &[u8] {
        let i = self.next;
        self.next += 1;
        let kind = match self.kind {
            Kind::Mixed => match i % 4 {
                0 => Kind::Garbage,
                1 => Kind::Init,
                2 if !self.inits_known.is_empty() => Kind::InitKnown,
                2 => Kind::Init,
                _ => Kind::Data,
            },
            k => k,
        };
        let slot = (i / 4) as usize;
        match kind {
            Kind::Init => &self.inits_unknown[slot % self.inits_unknown.len()],
            Kind::InitKnown => &self.inits_known[slot % self.inits_known.len()],
            Kind::Garbage => {
                let len = rng.gen_range(1..=MAX_GARBAGE);
                self.buf.resize(len, 0);
                rng.fill_bytes(&mut self.buf);
                &self.buf
            }
            Kind::Data | Kind::Mixed => {
                let len = DATA_HEADER + TAG + rng.gen_range(0..=1400 - DATA_HEADER - TAG);
                self.buf.resize(len, 0);
                rng.fill_bytes(&mut self.buf);
                self.buf[0] = PROTOCOL_VERSION;
                self.buf[1] = 3;
                &self.buf
            }
        }
    }
}

fn bind_sockets(args: &Args, to: SocketAddr) -> Result<Vec<UdpSocket>> {
    let sources = args.sources.clamp(1, MAX_SOURCES);
    let ports = args.ports.clamp(1, 64);
    let mut sockets = Vec::new();
    for s in 0..sources {
        let ip: IpAddr = match (args.from, to) {
            (Some(first), _) => {
                let v = u32::from(first)
                    .checked_add(s)
                    .context("--from + --sources runs past 255.255.255.255")?;
                IpAddr::V4(Ipv4Addr::from(v))
            }
            (None, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (None, SocketAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        if args.from.is_none() && s > 0 {
            break;
        }
        for _ in 0..ports {
            let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).with_context(|| {
                format!("binding a UDP socket to {ip} (is it a local address?)")
            })?;
            sockets.push(sock);
        }
    }
    Ok(sockets)
}

/// What a run sent.
pub(crate) struct Outcome {
    /// Datagrams sent.
    pub(crate) sent: u64,
    /// Sends that failed.
    pub(crate) errors: u64,
    /// How long the run took.
    pub(crate) elapsed: Duration,
}

/// Sends the flood `args` describe (from the calling thread's network namespace).
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    if !is_test_destination(args.to.ip()) {
        bail!(
            "refusing to flood {}: flood is a test tool and only sends to loopback, private \
             (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, link-local) or documentation \
             and benchmark ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 198.18/15, 2001:db8::/32)",
            args.to
        );
    }
    if !(args.seconds > 0.0 && args.seconds <= MAX_SECONDS) {
        bail!(
            "--seconds {} is out of range: a flood must be bounded, 0 < seconds <= {MAX_SECONDS}",
            args.seconds
        );
    }
    if args.sources > MAX_SOURCES {
        bail!("--sources {} is more than {MAX_SOURCES}", args.sources);
    }
    let mut rng = match args.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_entropy(),
    };
    let mut packets = Packets::new(args, &mut rng)?;
    let sockets = bind_sockets(args, args.to)?;
    let limit = Duration::from_secs_f64(args.seconds);
    let max_packets = args.count.unwrap_or(u64::MAX);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut which = 0usize;
    'outer: loop {
        let elapsed = start.elapsed();
        if elapsed >= limit || sent + errors >= max_packets {
            break;
        }
        // How many may go now: everything due at `rate`, in batches of at most 64.
        let due = if args.rate == 0 {
            64
        } else {
            let target = (elapsed.as_secs_f64() * args.rate as f64) as u64 + 1;
            let due = target.saturating_sub(sent + errors).min(64);
            if due == 0 {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            due
        };
        for _ in 0..due {
            if sent + errors >= max_packets {
                break 'outer;
            }
            let sock = &sockets[which % sockets.len()];
            which = which.wrapping_add(1);
            match sock.send_to(packets.next(&mut rng), args.to) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
    }
    Ok(Outcome {
        sent,
        errors,
        elapsed: start.elapsed(),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(o) => {
            let secs = o.elapsed.as_secs_f64().max(1e-9);
            let pps = o.sent as f64 / secs;
            let kind = args
                .kind
                .to_possible_value()
                .map_or_else(|| format!("{:?}", args.kind), |v| v.get_name().to_string());
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "kind": kind,
                        "to": args.to.to_string(),
                        "sent": o.sent,
                        "send_errors": o.errors,
                        "seconds": secs,
                        "pps": pps.round(),
                    })
                );
            } else {
                println!(
                    "flood {kind} -> {}: {} packets sent in {secs:.2} s = {pps:.0} pps ({} send errors)",
                    args.to, o.sent, o.errors
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("flood: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_test_destinations() {
        for ok in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "192.0.2.9",
            "::1",
            "fd00::1",
        ] {
            assert!(is_test_destination(ok.parse().unwrap()), "{ok}");
        }
        for bad in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "192.0.3.1"] {
            assert!(!is_test_destination(bad.parse().unwrap()), "{bad}");
        }
    }
}
