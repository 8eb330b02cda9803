//! Serves `meshd join` on the daemon's own port over TCP (the UDP mesh keeps the same number,
//! as tinc listens on TCP and UDP 655): one task per connection, a few at a time, each
//! bounded in time. Completed joins are reported to the main loop, which runs
//! `invitation-accepted` and reloads so the new node's key is known.

use crate::config::{load_server_config, NetDir};
use crate::crypto::HandshakeLimiter;
use crate::invite::serve::{serve_join, ServeConfig};
use crate::invite::store::{invitation_expire, DEFAULT_EXPIRE};
use crate::node::{Limit, LogThrottle};
use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// Joins served at the same time; more connections are closed at once.
const MAX_CONCURRENT_JOINS: usize = 8;
/// New join connections per second, from everyone (burst: one second's
/// worth). Each may cost an X25519 exchange and a signature; a real join is
/// one connection, so an operator inviting a whole rack stays far below.
const JOINS_PER_SEC: u32 = 50;
/// New join connections per second from one address (or IPv6 /64): a user
/// retrying a mistyped URL stays far below.
const JOINS_PER_SOURCE_PER_SEC: u32 = 10;
/// Sources the per-source limiter remembers (a spoofed-source flood cannot
/// grow it: see `HandshakeLimiter`).
const JOIN_SOURCES_TRACKED: usize = 1024;
/// The longest one join connection may last.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// Join connections in use and refused, for `dump limits`.
#[derive(Debug)]
pub struct JoinStats {
    permits: Arc<Semaphore>,
    refused: AtomicU64,
    rate_limited: AtomicU64,
}

impl JoinStats {
    /// `join_connections` (at once) and `join_rate` (new connections per
    /// second, all sources) for `dump limits`.
    pub fn limits(&self) -> Vec<Limit> {
        vec![
            Limit::refusing(
                "join_connections",
                MAX_CONCURRENT_JOINS - self.permits.available_permits(),
                MAX_CONCURRENT_JOINS,
                self.refused.load(Ordering::Relaxed),
            ),
            Limit::refusing(
                "join_rate",
                0,
                JOINS_PER_SEC as usize,
                self.rate_limited.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// A node that joined through this daemon.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Its name (now in `hosts/`).
    pub node: String,
    /// Where it connected from.
    pub remote: SocketAddr,
}

/// Binds a join listener on `bind` (see [`super::listen`]): `dual_stack` lets an IPv6
/// wildcard take IPv4 too; `device` is BindToInterface.
pub(super) fn bind(
    bind: SocketAddr,
    dual_stack: bool,
    device: Option<&str>,
) -> Result<TcpListener> {
    let domain = if bind.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))
        .context("cannot create the TCP socket for joins")?;
    if bind.is_ipv6() {
        let dual = dual_stack && bind.ip().is_unspecified();
        socket.set_only_v6(!dual).context("IPV6_V6ONLY")?;
    }
    if let Some(dev) = device {
        socket
            .bind_device(Some(dev.as_bytes()))
            .with_context(|| format!("cannot bind to interface {dev} (BindToInterface)"))?;
    }
    socket.set_reuse_address(true).context("SO_REUSEADDR")?;
    socket.set_nonblocking(true).context("O_NONBLOCK")?;
    socket.bind(&bind.into())?;
    socket.listen(16).context("listen")?;
    TcpListener::from_std(socket.into()).context("cannot register the listener")
}

/// Spawns the accept loop over `listeners` (from [`super::listen::open`]) on the current runtime. Abort
/// the returned task (and await it) to close the ports; the stats count its connections.
pub fn spawn(
    netdir: NetDir,
    self_name: String,
    listeners: Vec<TcpListener>,
    joined: mpsc::UnboundedSender<Joined>,
) -> (tokio::task::JoinHandle<()>, Arc<JoinStats>) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_JOINS));
    let stats = Arc::new(JoinStats {
        permits: permits.clone(),
        refused: AtomicU64::new(0),
        rate_limited: AtomicU64::new(0),
    });
    let mut limiter = HandshakeLimiter::new(
        JOINS_PER_SEC,
        JOINS_PER_SOURCE_PER_SEC,
        JOIN_SOURCES_TRACKED,
    );
    // Anyone can make these lines: one a second at most, with a count.
    let refusal_log = Arc::new(Mutex::new(LogThrottle::default()));
    let counted = stats.clone();
    let task = tokio::spawn(async move {
        loop {
            let accept = std::future::poll_fn(|cx| {
                for l in &listeners {
                    if let std::task::Poll::Ready(r) = l.poll_accept(cx) {
                        return std::task::Poll::Ready(r);
                    }
                }
                std::task::Poll::Pending
            });
            let (stream, remote) = match accept.await {
                Ok(x) => x,
                Err(err) => {
                    tracing::debug!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let remote = crate::driver::udp::canonical(remote);
            let now = Instant::now();
            if !limiter.allow(remote.ip(), now) {
                counted.rate_limited.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = throttled(&refusal_log, now) {
                    tracing::warn!(%remote, suppressed, "join connections come too fast; closed");
                }
                refuse(
                    &stream,
                    "too many join attempts at once: try again in a few seconds",
                );
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                counted.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = throttled(&refusal_log, now) {
                    tracing::warn!(%remote, suppressed, "too many joins at once, connection closed");
                }
                refuse(
                    &stream,
                    "the inviter serves too many joins at once: try again in a minute",
                );
                continue;
            };
            let mut stream = stream;
            let refusal_log = refusal_log.clone();
            let netdir = netdir.clone();
            let self_name = self_name.clone();
            let joined = joined.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let expire = {
                    let nd = netdir.clone();
                    tokio::task::spawn_blocking(move || {
                        load_server_config(&nd)
                            .ok()
                            .and_then(|s| invitation_expire(&s).ok())
                    })
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(DEFAULT_EXPIRE)
                };
                let cfg = ServeConfig {
                    netdir,
                    self_name,
                    expire,
                };
                match tokio::time::timeout(JOIN_DEADLINE, serve_join(&mut stream, &cfg)).await {
                    Ok(Ok(accepted)) => {
                        tracing::info!(node = %accepted.node, %remote, "invitation accepted: {} joined", accepted.node);
                        let _ = joined.send(Joined {
                            node: accepted.node,
                            remote,
                        });
                    }
                    Ok(Err(err)) => {
                        if let Some(suppressed) = throttled(&refusal_log, Instant::now()) {
                            tracing::warn!(%remote, suppressed, "join failed: {err}");
                        }
                    }
                    Err(_) => {
                        if let Some(suppressed) = throttled(&refusal_log, Instant::now()) {
                            tracing::warn!(%remote, suppressed, "join took longer than {} s, closed", JOIN_DEADLINE.as_secs());
                        }
                    }
                }
            });
        }
    });
    (task, stats)
}

/// [`LogThrottle::allow`] through the lock the connection tasks share.
fn throttled(log: &Mutex<LogThrottle>, now: Instant) -> Option<u64> {
    log.lock().ok()?.allow(now)
}

/// Tells a refused joiner why, if its socket takes the few bytes at once
/// (never waits: the accept loop must not block on a refused connection).
fn refuse(stream: &tokio::net::TcpStream, reason: &str) {
    if let Ok(frame) = crate::invite::exchange::frame(&crate::invite::exchange::refusal(reason)) {
        let _ = stream.try_write(&frame);
    }
}
