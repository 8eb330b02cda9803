//! The daemon's state, and how it moves datagrams, TAP frames and the core's events
//! between the sockets, the TAP, the core and the script runner (the main loop in
//! [`super::main_loop`] decides when).

use super::health::{HealthChange, HealthChecks};
use super::scripts::ScriptRunner;
use super::{control_server, hooks, join_server, metrics, setup, systemd, tap, tap_io, udp};
use crate::config::NetDir;
use crate::control::Response;
use crate::node::{DownReason, Event, Node};
use anyhow::Result;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Frames read from the TAP in one go before other inputs get a turn.
const TAP_BATCH: usize = 64;
/// Datagrams (or GRO trains of them) read in one go.
const UDP_READS: usize = 64;
/// Datagrams handed to one batched send.
pub(super) const UDP_BATCH: usize = 256;
/// Reading input stops for this loop turn once this many datagrams or TAP
/// frames wait to go out (a TSO read alone gives ~45): it bounds the time
/// between two looks at the timers (heartbeats) to about a millisecond of
/// traffic, whatever the load.
const MAX_QUEUED: usize = 512;

/// A configuration read off the packet loop, and where to answer the `reload` that asked
/// for it (none for SIGHUP or a joined node).
pub(super) type Loaded = (Result<setup::Setup>, Option<oneshot::Sender<Response>>);

/// Everything the running daemon owns besides the inputs the main loop waits on.
pub(super) struct Daemon {
    pub(super) netdir: NetDir,
    pub(super) setup: setup::Setup,
    pub(super) node: Node,
    pub(super) udp: udp::Udp,
    pub(super) tap: Option<tap::Tap>,
    pub(super) scripts: ScriptRunner,
    pub(super) buf: Vec<u8>,
    pub(super) tap_buf: Vec<u8>,
    /// Datagrams taken from the core for one batched send (reused).
    pub(super) batch: Vec<crate::node::Transmit>,
    /// Frames taken from the core for the TAP (reused).
    pub(super) tap_frames: Vec<Vec<u8>>,
    /// Segments of an offloaded TAP read (reused).
    pub(super) seg_buf: Vec<u8>,
    pub(super) tap_counters: tap_io::TapCounters,
    /// systemd's notify socket, under a `Type=notify` unit.
    pub(super) notifier: Option<systemd::Notifier>,
    /// Whether `READY=1` went out.
    pub(super) ready_sent: bool,
    /// The core said a graceful stop may proceed ([`Event::ReadyToLeave`]).
    pub(super) ready_to_leave: bool,
    /// Failovers seen, for the metrics.
    pub(super) metrics_extra: metrics::Extra,
    /// The control socket's connection bounds.
    pub(super) control_stats: std::sync::Arc<control_server::ControlStats>,
    /// The join port's connection counts (`None` when it could not be bound).
    pub(super) join_stats: Option<std::sync::Arc<join_server::JoinStats>>,
    /// The metrics listener's connection count (`None` without `MetricsAddress`).
    pub(super) metrics_stats: Option<std::sync::Arc<metrics::MetricsStats>>,
    /// The VIP health checks (`None` once stopping has ended them).
    pub(super) health: Option<HealthChecks>,
    /// Where the health checks report (kept for the checks of a reloaded configuration).
    pub(super) health_tx: mpsc::UnboundedSender<HealthChange>,
    /// Where the bridge watcher reports stations that left (`station_watch`).
    pub(super) stations_tx: mpsc::UnboundedSender<[u8; 6]>,
    /// Whether the bridge watcher runs (started once a VIP has a presence check).
    pub(super) station_watch: bool,
    /// Where a reload started off the packet loop delivers what it read.
    pub(super) reload_tx: mpsc::Sender<Loaded>,
    /// Whether a graceful stop has begun (the loop ends once the core's leave is done).
    pub(super) leaving: bool,
    /// The `stop` request to answer once the daemon is gone.
    pub(super) stop_reply: Option<oneshot::Sender<Response>>,
    /// Whether the daemon chrooted into its network directory (`-R`).
    pub(super) chrooted: bool,
}

/// Reads a frame from the TAP; never ready without one (`DeviceType = dummy`).
pub(super) async fn tap_recv(tap: Option<&tap::Tap>, buf: &mut [u8]) -> std::io::Result<usize> {
    match tap {
        Some(t) => t.recv(buf).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Hands each datagram of a (GRO-coalesced) read to the core.
    pub(super) fn handle_train(&mut self, n: usize, from: std::net::SocketAddr, seg: usize) {
        let now = Instant::now();
        for datagram in self.buf[..n].chunks_mut(seg.max(1)) {
            self.node.handle_datagram_mut(now, from, datagram);
        }
    }

    /// Hands datagrams already queued on the socket to the core: a bounded
    /// batch, or (`bounded` false, before timers run) all of them, up to
    /// [`UDP_READS`] reads.
    pub(super) fn drain_socket(&mut self, bounded: bool) {
        for _ in 0..UDP_READS {
            if bounded && self.node.queued().either_at_least(MAX_QUEUED) {
                break;
            }
            match self.udp.try_recv_train(&mut self.buf) {
                Ok(Some((n, from, seg))) => self.handle_train(n, from, seg),
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(%err, "UDP receive error");
                    break;
                }
            }
        }
    }

    /// Sends a notification to systemd, if run under it.
    pub(super) fn notify(&self, message: &str) {
        if let Some(n) = &self.notifier {
            n.send(message);
        }
    }

    /// `READY=1` with a status line, once.
    pub(super) fn send_ready(&mut self, status: &str) {
        if !self.ready_sent {
            self.ready_sent = true;
            self.notify(&format!("READY=1\nSTATUS={status}"));
        }
    }

    /// Hands the `n` bytes just read from the TAP to the core.
    pub(super) fn deliver_tap_read(&mut self, n: usize) {
        if let Some(tap) = self.tap.as_ref() {
            tap_io::deliver_read(
                tap,
                &self.tap_buf[..n],
                &mut self.seg_buf,
                &mut self.node,
                &mut self.tap_counters,
                Instant::now(),
            );
        }
    }

    /// Hands frames already waiting on the TAP to the core (a bounded batch).
    pub(super) fn drain_tap(&mut self) {
        for _ in 0..TAP_BATCH {
            if self.node.queued().either_at_least(MAX_QUEUED) {
                break;
            }
            let Some(tap) = self.tap.as_ref() else { break };
            match tap.try_recv(&mut self.tap_buf) {
                Ok(Some(n)) => self.deliver_tap_read(n),
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(%err, "TAP read error");
                    break;
                }
            }
        }
    }

    /// Sends what the core queued and acts on its events.
    pub(super) async fn flush(&mut self) {
        loop {
            while self.batch.len() < UDP_BATCH {
                match self.node.poll_transmit() {
                    Some(t) => self.batch.push(t),
                    None => break,
                }
            }
            if self.batch.is_empty() {
                break;
            }
            let too_big = self.udp.send_batch(&self.batch).await;
            for (destination, len) in too_big {
                self.node
                    .handle_send_too_big(std::time::Instant::now(), destination, len);
            }
            for t in self.batch.drain(..) {
                self.node.recycle(t.payload);
            }
        }
        while let Some(frame) = self.node.poll_frame() {
            super::pcap::capture(&frame);
            self.tap_frames.push(frame);
        }
        if let Some(tap) = self.tap.as_ref() {
            tap_io::write_frames(tap, &mut self.tap_frames, &mut self.tap_counters);
        }
        for frame in self.tap_frames.drain(..) {
            self.node.recycle(frame);
        }
        while let Some(event) = self.node.poll_event() {
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: Event) {
        for req in hooks::scripts_for(&event, self.node.name()) {
            self.scripts.submit(req);
        }
        match event {
            Event::HostLearned { name, public_key } => {
                if self.setup.store_learned_hosts {
                    if let Err(err) = setup::store_learned_host(&self.netdir, &name, &public_key) {
                        tracing::warn!(node = %name, "cannot store learned host file: {err:#}");
                    }
                }
            }
            Event::VipUp { vip } => {
                tracing::info!(vip = %vip.address, mac = %vip.virtual_mac, "now serving the VIP");
            }
            Event::VipDown { vip } => {
                tracing::info!(vip = %vip.address, "no longer serving the VIP");
            }
            Event::PeerUp {
                ref name,
                ref endpoint,
            } => {
                // tinc's address cache: where a node we connect to was reached.
                if self
                    .setup
                    .node
                    .connect_to
                    .iter()
                    .any(|c| c.as_str() == name.as_str())
                {
                    let addr = format!("{} {}", endpoint.ip(), endpoint.port());
                    if let Err(err) = crate::config::addr_cache::store(&self.netdir, name, &addr) {
                        tracing::debug!(node = %name, "cannot write the address cache: {err}");
                    }
                }
                if !self.ready_sent {
                    self.send_ready("serving; first session up");
                }
            }
            // Our own stop is not a failover of the peers' VIPs.
            Event::PeerDown {
                reason: DownReason::LocalShutdown,
                ..
            } => {}
            Event::PeerDown { ref name, .. } => {
                metrics::note_holder_lost(
                    &self.node,
                    name,
                    Instant::now(),
                    &mut self.metrics_extra.failovers,
                );
            }
            Event::ReadyToLeave { .. } => self.ready_to_leave = true,
            Event::SubnetUp { .. } | Event::SubnetDown { .. } => {}
        }
    }

    /// Every bounded table: the core's, then the script queue and the control socket's.
    pub(super) fn limits(&self) -> Vec<crate::node::Limit> {
        let mut limits = self.node.limits();
        limits.push(self.scripts.queue_limit());
        limits.extend(self.control_stats.limits());
        if let Some(join) = &self.join_stats {
            limits.extend(join.limits());
        }
        if let Some(metrics) = &self.metrics_stats {
            limits.push(metrics.limit());
        }
        limits
    }

    pub(super) fn apply_reload(&mut self, loaded: Result<setup::Setup>) -> Response {
        match loaded {
            Ok(setup) => {
                for w in &setup.warnings {
                    tracing::warn!("{w}");
                }
                self.node
                    .reload(setup.node.clone(), setup.hosts.clone(), Instant::now());
                let warnings = setup.warnings.clone();
                self.setup = setup;
                tracing::info!("configuration reloaded");
                Response::Reloaded { warnings }
            }
            Err(err) => Response::Error {
                message: format!("{err:#}"),
            },
        }
    }
}

impl Daemon {
    /// Starts watching the TAP's bridge for stations that leave, once a VIP
    /// of ours has a presence check (PROTOCOL §7.6); a failure is logged and
    /// presence still works by its probes alone.
    pub(super) fn watch_stations(&mut self) {
        if self.station_watch || !self.setup.node.vips.iter().any(|v| v.presence.is_some()) {
            return;
        }
        let Some(tap) = self.tap.as_ref().map(|t| t.name().to_string()) else {
            return;
        };
        self.station_watch = true;
        if let Err(err) = super::station_watch::spawn(tap, self.stations_tx.clone()) {
            tracing::warn!(%err, "cannot watch the TAP's bridge (rtnetlink); a VIP's presence check notices a vanished owner by its probes only");
        }
    }
}
