//! Prometheus metrics on `MetricsAddress` (text format 0.0.4): per-peer liveness, RTT,
//! traffic, handshakes; every drop counter by reason; table sizes; every table's cap,
//! refusals and evictions (as `dump limits`); per-VIP holders; VIP
//! failovers seen by this node. A tiny HTTP server whose requests the main loop answers
//! from the core's state (the core is never shared across tasks).

use crate::node::Node;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A scrape waiting for the main loop: it sends the rendered text back.
pub type Scrape = oneshot::Sender<String>;

/// Failovers of one VIP as seen by this node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failovers {
    /// Holders lost (died or withdrew) while they served the VIP.
    pub count: u64,
    /// Seconds from the last packet heard from the lost holder until this node stopped
    /// steering to it (0 for a withdrawal, which takes effect at once).
    pub last_seconds: f64,
}

/// What the main loop knows beyond the core.
#[derive(Debug, Default)]
pub struct Extra {
    /// Frames the TAP refused.
    pub tap_write_drops: u64,
    /// Per VIP address.
    pub failovers: BTreeMap<String, Failovers>,
    /// Every bounded table (as `dump limits`), filled before each scrape.
    pub limits: Vec<crate::node::Limit>,
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// The metrics text.
pub fn render(node: &Node, now: Instant, extra: &Extra) -> String {
    let mut o = Out(String::new());
    let me = node.name().to_string();
    let peers = node.peers();
    type PeerFn = fn(&crate::node::Peer) -> f64;
    let per_peer: [(&str, &str, &str, PeerFn); 14] = [
        (
            "meshd_peer_up",
            "gauge",
            "1 while the peer has a live session",
            |p| f64::from(u8::from(p.alive)),
        ),
        (
            "meshd_peer_relayed",
            "gauge",
            "1 while the peer's live session goes through a relay (0: direct)",
            |p| {
                f64::from(u8::from(
                    p.alive && p.endpoint.is_some_and(crate::node::is_relay_addr),
                ))
            },
        ),
        (
            "meshd_peer_pmtu_bytes",
            "gauge",
            "largest frame one datagram carries to the peer (path MTU discovery)",
            |p| {
                if p.alive {
                    f64::from(
                        p.pmtu
                            .confirmed()
                            .saturating_sub(crate::node::FRAME_OVERHEAD),
                    )
                } else {
                    0.0
                }
            },
        ),
        (
            "meshd_peer_rtt_seconds",
            "gauge",
            "round-trip time measured by hellos",
            |p| p.stats.rtt.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN),
        ),
        (
            "meshd_peer_srtt_seconds",
            "gauge",
            "smoothed round-trip time (the failure detector's SRTT)",
            |p| p.detector.srtt().map_or(f64::NAN, |d| d.as_secs_f64()),
        ),
        (
            "meshd_peer_rttvar_seconds",
            "gauge",
            "round-trip time variation (the failure detector's RTTVAR)",
            |p| {
                p.detector
                    .srtt()
                    .map_or(f64::NAN, |_| p.detector.rttvar().as_secs_f64())
            },
        ),
        (
            "meshd_peer_suspected",
            "gauge",
            "1 while frames to the peer go unanswered (out of steering)",
            |p| f64::from(u8::from(p.detector.suspected())),
        ),
        (
            "meshd_peer_rx_packets_total",
            "counter",
            "frames received from the peer",
            |p| p.stats.rx_packets as f64,
        ),
        (
            "meshd_peer_rx_bytes_total",
            "counter",
            "frame bytes received from the peer",
            |p| p.stats.rx_bytes as f64,
        ),
        (
            "meshd_peer_tx_packets_total",
            "counter",
            "frames sent to the peer",
            |p| p.stats.tx_packets as f64,
        ),
        (
            "meshd_peer_tx_bytes_total",
            "counter",
            "frame bytes sent to the peer",
            |p| p.stats.tx_bytes as f64,
        ),
        (
            "meshd_peer_handshakes_total",
            "counter",
            "completed handshakes: first sessions and rekeys",
            |p| p.stats.handshakes as f64,
        ),
        (
            "meshd_peer_handshake_failures_total",
            "counter",
            "handshakes with the peer that failed",
            |p| p.stats.handshake_failures as f64,
        ),
        (
            "meshd_peer_deaths_total",
            "counter",
            "times the peer was declared down",
            |p| p.stats.deaths as f64,
        ),
    ];
    for (name, kind, help, get) in per_peer {
        o.family(name, kind, help);
        for p in peers.values() {
            o.sample(name, &[("node", &me), ("peer", &p.name)], get(p));
        }
    }
    let name = "meshd_peer_detection_deadline_seconds";
    o.family(
        name,
        "gauge",
        "silence after which the live peer is declared down",
    );
    for p in peers.values() {
        let d = node
            .detection_deadline(&p.name)
            .map_or(f64::NAN, |d| d.as_secs_f64());
        o.sample(name, &[("node", &me), ("peer", &p.name)], d);
    }

    o.family(
        "meshd_dropped_total",
        "counter",
        "packets and frames dropped, by reason",
    );
    let mut dropped = Vec::new();
    for (scope, value) in [
        ("packets", serde_json::to_value(node.drops())),
        ("frames", serde_json::to_value(node.switch().counters())),
        ("vip", serde_json::to_value(node.vip_engine().counters())),
    ] {
        if let Ok(v) = value {
            let mut leaves = Vec::new();
            crate::control::json_leaves(scope, "_", &v, &mut leaves);
            dropped.extend(
                leaves
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, value.as_f64()?))),
            );
        }
    }
    dropped.push(("tap_write".to_string(), extra.tap_write_drops as f64));
    for (reason, value) in &dropped {
        o.sample(
            "meshd_dropped_total",
            &[("node", &me), ("reason", reason)],
            *value,
        );
    }

    for (name, help, value) in [
        (
            "meshd_mac_table_entries",
            "learned MAC addresses",
            node.switch().macs().len(),
        ),
        (
            "meshd_ip_bindings",
            "learned IP-to-MAC bindings",
            node.switch().neighbours().len(),
        ),
        (
            "meshd_vip_flows",
            "flows in the VIP steering table",
            node.vip_engine().flows().len(),
        ),
        ("meshd_peers", "nodes known", peers.len()),
    ] {
        o.family(name, "gauge", help);
        o.sample(name, &[("node", &me)], value as f64);
    }

    let relay = node.relay_counters();
    o.family(
        "meshd_relayed_packets_total",
        "counter",
        "packets this node relayed between two other nodes",
    );
    o.sample(
        "meshd_relayed_packets_total",
        &[("node", &me)],
        relay.relayed_packets as f64,
    );
    o.family(
        "meshd_relayed_bytes_total",
        "counter",
        "bytes of the packets this node relayed",
    );
    o.sample(
        "meshd_relayed_bytes_total",
        &[("node", &me)],
        relay.relayed_bytes as f64,
    );
    o.family(
        "meshd_relay_refused_total",
        "counter",
        "relay requests refused, by reason",
    );
    for (reason, n) in [
        ("forged_source", relay.forged_source),
        ("no_route", relay.no_route),
        ("over_budget", relay.over_budget),
        ("nested", relay.nested),
        ("relay_gone", relay.relay_gone),
        ("unknown_source", relay.unknown_source),
    ] {
        o.sample(
            "meshd_relay_refused_total",
            &[("node", &me), ("reason", reason)],
            n as f64,
        );
    }

    type LimitFn = fn(&crate::node::Limit) -> u64;
    let limit_families: [(&str, &str, &str, LimitFn); 4] = [
        (
            "meshd_limit_in_use",
            "gauge",
            "entries in a bounded table (as dump limits)",
            |l| l.in_use,
        ),
        ("meshd_limit_cap", "gauge", "the table's cap", |l| l.cap),
        (
            "meshd_limit_refused_total",
            "counter",
            "new entries the cap refused",
            |l| l.refused,
        ),
        (
            "meshd_limit_evicted_total",
            "counter",
            "entries evicted to make room",
            |l| l.evicted,
        ),
    ];
    for (name, kind, help, get) in limit_families {
        o.family(name, kind, help);
        for l in &extra.limits {
            o.sample(name, &[("node", &me), ("table", &l.name)], get(l) as f64);
        }
    }

    let vips = node.vip_statuses(now);
    for (name, help) in [
        ("meshd_vip_holders", "nodes offering the VIP"),
        (
            "meshd_vip_holders_alive",
            "holders with a live session (or this node)",
        ),
        (
            "meshd_vip_holders_eligible",
            "holders steered to now (alive, offered, not held down)",
        ),
    ] {
        o.family(name, "gauge", help);
        for v in &vips {
            let n = match name {
                "meshd_vip_holders" => v.holders.iter().filter(|h| h.offered).count(),
                "meshd_vip_holders_alive" => {
                    v.holders.iter().filter(|h| h.alive && h.offered).count()
                }
                _ => v.holders.iter().filter(|h| h.eligible).count(),
            };
            o.sample(name, &[("node", &me), ("vip", &v.vip)], n as f64);
        }
    }
    o.family(
        "meshd_vip_failovers_total",
        "counter",
        "holders of the VIP lost while serving (died or withdrew), seen by this node",
    );
    for v in &vips {
        let f = extra.failovers.get(&v.vip).cloned().unwrap_or_default();
        o.sample(
            "meshd_vip_failovers_total",
            &[("node", &me), ("vip", &v.vip)],
            f.count as f64,
        );
    }
    o.family(
        "meshd_vip_last_failover_seconds",
        "gauge",
        "last failover: from the last packet of the lost holder until steering moved",
    );
    for v in &vips {
        if let Some(f) = extra.failovers.get(&v.vip) {
            o.sample(
                "meshd_vip_last_failover_seconds",
                &[("node", &me), ("vip", &v.vip)],
                f.last_seconds,
            );
        }
    }
    o.0
}

/// Records a failover for every VIP `peer` served, when it goes down at `now`.
pub fn note_holder_lost(
    node: &Node,
    peer: &str,
    now: Instant,
    failovers: &mut BTreeMap<String, Failovers>,
) {
    let silent = node
        .peers()
        .get(peer)
        .and_then(|p| p.last_rx)
        .map(|t| now.saturating_duration_since(t))
        .unwrap_or(Duration::ZERO);
    for v in node.vip_statuses(now) {
        if v.holders.iter().any(|h| h.name == peer && h.offered) {
            let f = failovers.entry(v.vip.clone()).or_default();
            f.count += 1;
            f.last_seconds = silent.as_secs_f64();
            tracing::info!(vip = %v.vip, holder = peer, seconds = f.last_seconds, "VIP failover: holder lost");
        }
    }
}

/// Most metrics connections served at once; more are closed at once
/// (counted). Without a cap, connections that never finish their request
/// could take every descriptor the daemon has, and the health checks (which
/// need descriptors) would then fail and withdraw the VIPs.
pub const MAX_METRICS_CONNECTIONS: usize = 16;

/// The metrics listener's connection count, for `dump limits`.
#[derive(Debug)]
pub struct MetricsStats {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    refused: std::sync::atomic::AtomicU64,
}

impl MetricsStats {
    /// `metrics_connections` for `dump limits`.
    pub fn limit(&self) -> crate::node::Limit {
        crate::node::Limit::refusing(
            "metrics_connections",
            MAX_METRICS_CONNECTIONS - self.permits.available_permits(),
            MAX_METRICS_CONNECTIONS,
            self.refused.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// Serves `GET /metrics` on `addr`; each scrape is answered by the main loop through `scrapes`.
pub fn spawn(
    addr: SocketAddr,
    scrapes: mpsc::Sender<Scrape>,
) -> Result<(tokio::task::JoinHandle<()>, std::sync::Arc<MetricsStats>)> {
    let std_listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot bind MetricsAddress {addr}"))?;
    std_listener.set_nonblocking(true).context("O_NONBLOCK")?;
    let listener =
        TcpListener::from_std(std_listener).context("cannot register the metrics listener")?;
    tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    let stats = std::sync::Arc::new(MetricsStats {
        permits: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_METRICS_CONNECTIONS)),
        refused: std::sync::atomic::AtomicU64::new(0),
    });
    let counted = stats.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, remote)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = counted.permits.clone().try_acquire_owned() else {
                let n = counted
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(%remote, refused = n + 1, "{MAX_METRICS_CONNECTIONS} metrics connections open, closing a new one");
                }
                continue;
            };
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return false,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    true
                })
                .await;
                if read != Ok(true) {
                    return;
                }
                let line = String::from_utf8_lossy(&req);
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) =
                    if line.starts_with("GET ") && (path == "/metrics" || path == "/") {
                        let (tx, rx) = oneshot::channel();
                        if scrapes.send(tx).await.is_err() {
                            return;
                        }
                        match rx.await {
                            Ok(text) => ("200 OK", text),
                            Err(_) => return,
                        }
                    } else {
                        ("404 Not Found", "try /metrics\n".to_string())
                    };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((task, stats))
}
