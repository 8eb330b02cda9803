//! The tokio driver: the only place that touches sockets, the clock, signals,
//! files and the control socket. It feeds the sans-IO [`Node`] and carries out
//! what it asks for.

mod control_server;
pub mod health;
mod hooks;
mod join_server;
pub mod metrics;
pub mod offload;
pub mod scripts;
pub mod setup;
pub mod systemd;
pub mod tap;
mod tap_io;
mod udp;
mod udp_batch;

use crate::config::NetDir;
use crate::control::pidfile::{new_cookie, PidFile};
use crate::control::{Request, Response};
use crate::node::{DownReason, Event, Node};
use anyhow::{Context, Result};
use scripts::{ScriptEnv, ScriptRequest, ScriptRunner};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};

/// Runs the daemon in the current process until it is told to stop.
/// `debug` is the log level, passed to scripts as `DEBUG`.
pub fn run(netdir: NetDir, debug: u8) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run_async(netdir, debug))
}

/// Longest wait for a first session before telling systemd the daemon is ready anyway.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Frames read from the TAP in one go before other inputs get a turn.
const TAP_BATCH: usize = 64;
/// Datagrams (or GRO trains of them) read in one go.
const UDP_READS: usize = 64;
/// Datagrams handed to one batched send.
const UDP_BATCH: usize = 256;
/// Reading input stops for this loop turn once this many datagrams or TAP
/// frames wait to go out (a TSO read alone gives ~45): it bounds the time
/// between two looks at the timers (heartbeats) to about a millisecond of
/// traffic, whatever the load.
const MAX_QUEUED: usize = 512;

struct Daemon {
    netdir: NetDir,
    setup: setup::Setup,
    node: Node,
    udp: udp::Udp,
    tap: Option<tap::Tap>,
    scripts: ScriptRunner,
    buf: Vec<u8>,
    tap_buf: Vec<u8>,
    /// Datagrams taken from the core for one batched send (reused).
    batch: Vec<crate::node::Transmit>,
    /// Frames taken from the core for the TAP (reused).
    tap_frames: Vec<Vec<u8>>,
    /// Segments of an offloaded TAP read (reused).
    seg_buf: Vec<u8>,
    tap_counters: tap_io::TapCounters,
    /// systemd's notify socket, under a `Type=notify` unit.
    notifier: Option<systemd::Notifier>,
    /// Whether `READY=1` went out.
    ready_sent: bool,
    /// Failovers seen, for the metrics.
    metrics_extra: metrics::Extra,
    /// The control socket's connection bounds.
    control_stats: std::sync::Arc<control_server::ControlStats>,
    /// The join port's connection counts (`None` when it could not be bound).
    join_stats: Option<std::sync::Arc<join_server::JoinStats>>,
}

async fn run_async(netdir: NetDir, debug: u8) -> Result<()> {
    let setup = setup::load(&netdir)?;
    for w in &setup.warnings {
        tracing::warn!("{w}");
    }
    let key = crate::keyfile::load_private_key(&setup.private_key_file)
        .with_context(|| format!("cannot load the private key of {}", setup.node.name))?;
    let udp = udp::Udp::bind(&setup)?;
    let port = udp.local_port();
    let pidfile = netdir.pidfile();
    let socket_path = netdir.control_socket();
    if crate::control::client::request(
        &pidfile,
        &socket_path,
        &Request::Pid,
        std::time::Duration::from_secs(1),
    )
    .is_ok()
    {
        anyhow::bail!(
            "a meshd daemon is already running for {}",
            netdir.root.display()
        );
    }
    let tap = if setup.dummy_device {
        tracing::info!("DeviceType = dummy: no TAP device");
        None
    } else {
        let tap =
            tap::Tap::open_offload(&setup.interface, setup.interface_mtu).with_context(|| {
                format!(
                    "cannot create the TAP device {} (set Interface to choose another name)",
                    setup.interface
                )
            })?;
        tracing::info!(interface = %tap.name(), mtu = tap.mtu(), offload = tap.vnet_hdr(), "TAP device ready");
        Some(tap)
    };
    let scripts = ScriptRunner::spawn(
        netdir.root.clone(),
        ScriptEnv {
            netname: netdir.netname.clone(),
            name: setup.node.name.to_string(),
            device: "/dev/net/tun".into(),
            interface: tap
                .as_ref()
                .map(|t| t.name().to_string())
                .unwrap_or_default(),
            debug,
            interpreter: setup.scripts_interpreter.clone(),
            extension: setup.scripts_extension.clone(),
        },
        setup.script_timeout,
    );
    // tinc-up configures the interface; the daemon is ready only once it has run.
    scripts.run_now(ScriptRequest::new("tinc-up")).await;
    // tinc-up may have set the MAC; holders rewrite steered frames to it.
    let tap_mac = match &tap {
        Some(t) => Some(t.mac().context("cannot read the TAP device's MAC")?),
        None => None,
    };
    // `meshd join` is served on the same port number over TCP; the mesh runs without it.
    let (joined_tx, mut joined_rx) = tokio::sync::mpsc::unbounded_channel();
    let (join_server, join_stats) = match join_server::spawn(
        netdir.clone(),
        setup.node.name.to_string(),
        std::net::SocketAddr::new(setup.bind_address.ip(), port),
        setup.address_family == crate::config::AddressFamily::Ipv6,
        joined_tx,
    ) {
        Ok((task, stats)) => (Some(task), Some(stats)),
        Err(err) => {
            tracing::warn!("invitations cannot be served: {err:#}");
            (None, None)
        }
    };
    let cookie = new_cookie();
    let (mut control, control_stats) = control_server::spawn(&socket_path, cookie.clone())?;
    PidFile {
        pid: std::process::id(),
        cookie,
        host: "127.0.0.1".into(),
        port,
    }
    .write(&pidfile)?;
    tracing::info!(name = %setup.node.name, port, "meshd {} started", env!("CARGO_PKG_VERSION"));

    let wall_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let node = Node::new(
        setup.node.clone(),
        key,
        setup.hosts.clone(),
        Instant::now(),
        wall_ns,
        Box::new(rand::rngs::OsRng),
    );
    let mut node = node;
    if let Some(mac) = tap_mac {
        node.set_tap_mac(mac);
    }
    let mut d = Daemon {
        netdir,
        setup,
        node,
        udp,
        tap,
        scripts,
        buf: vec![0u8; 65536],
        tap_buf: vec![0u8; 65536 + 1024],
        batch: Vec::with_capacity(UDP_BATCH),
        tap_frames: Vec::new(),
        seg_buf: Vec::with_capacity(2048),
        tap_counters: tap_io::TapCounters::default(),
        notifier: systemd::Notifier::from_env(),
        ready_sent: false,
        metrics_extra: metrics::Extra::default(),
        control_stats,
        join_stats,
    };
    let (scrape_tx, mut scrape_rx) = tokio::sync::mpsc::channel::<metrics::Scrape>(8);
    let metrics_server = match d.setup.metrics_address {
        Some(addr) => match metrics::spawn(addr, scrape_tx) {
            Ok(task) => Some(task),
            Err(err) => {
                tracing::warn!("metrics are not served: {err:#}");
                None
            }
        },
        None => None,
    };
    // Ready for systemd once tinc-up has run and the first session is up; at once for a node
    // that connects to no one; after READY_WAIT anyway (its peers may simply be down).
    let ready_deadline = tokio::time::Instant::now() + READY_WAIT;
    if d.setup.node.connect_to.is_empty() {
        d.send_ready("serving (no ConnectTo)");
    }
    let watchdog_period = d
        .notifier
        .as_ref()
        .and_then(|n| n.watchdog_period())
        .unwrap_or(std::time::Duration::from_secs(3600));
    let mut watchdog = tokio::time::interval(watchdog_period);
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // VIP health checks run as their own tasks and report changes here.
    let (health_tx, mut health_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut health = health::HealthChecks::spawn(d.setup.health_checks.clone(), health_tx.clone());
    let mut stop_reply = None;
    let mut leaving = false;
    // Reloads read files and resolve host names: off the packet loop, so a slow
    // resolver cannot stall heartbeats (tinc's "synchronous DNS" problem).
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<(
        Result<setup::Setup>,
        Option<tokio::sync::oneshot::Sender<Response>>,
    )>(4);
    let start_reload = |reply: Option<tokio::sync::oneshot::Sender<Response>>, netdir: NetDir| {
        let tx = reload_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = setup::load(&netdir);
            let _ = tx.blocking_send((result, reply));
        });
    };
    d.flush().await;
    loop {
        // tokio's timers fire only when the runtime turns its time driver, which
        // a socket that is never empty (a flood faster than we read) puts off
        // for hundreds of ms: heartbeats and liveness follow the clock instead.
        if d.node.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            d.drain_socket(false);
            d.node.handle_timeout(Instant::now());
            d.flush().await;
        }
        let deadline = d
            .node
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline) => {
                // Read what is queued first: a busy loop must not mistake its own
                // deafness for peers' silence.
                d.drain_socket(false);
                d.node.handle_timeout(Instant::now());
            }
            r = d.udp.recv_train(&mut d.buf) => {
                match r {
                    Ok((n, from, seg)) => d.handle_train(n, from, seg),
                    Err(err) => tracing::debug!(%err, "UDP receive error"),
                }
                d.drain_socket(true);
            }
            r = tap_recv(d.tap.as_ref(), &mut d.tap_buf) => {
                match r {
                    Ok(n) => d.deliver_tap_read(n),
                    Err(err) => tracing::debug!(%err, "TAP read error"),
                }
                d.drain_tap();
            }
            Some((req, reply)) = control.recv() => {
                if req == Request::Stop {
                    if stop_reply.is_none() {
                        stop_reply = Some(reply);
                    } else {
                        let _ = reply.send(Response::Ok);
                    }
                    leaving = true;
                    d.notify("STOPPING=1");
                    d.node.begin_leave(Instant::now());
                } else if req == Request::Reload {
                    if leaving {
                        let _ = reply.send(Response::Error { message: "meshd is stopping".into() });
                    } else {
                        d.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", systemd::monotonic_usec()));
                        start_reload(Some(reply), d.netdir.clone());
                    }
                } else {
                    let resp = d.handle_request(req);
                    let _ = reply.send(resp);
                }
            }
            _ = watchdog.tick(), if d.notifier.as_ref().is_some_and(|n| n.watchdog_period().is_some()) => {
                // From the packet loop itself: a wedged loop stops the keepalives.
                if let Some(n) = &d.notifier {
                    n.send("WATCHDOG=1");
                }
            }
            _ = tokio::time::sleep_until(ready_deadline), if !d.ready_sent => {
                d.send_ready("serving; no peer reachable yet");
            }
            Some(reply) = scrape_rx.recv() => {
                d.metrics_extra.tap_write_drops = d.tap_counters.write_drops;
                d.metrics_extra.limits = d.limits();
                let _ = reply.send(metrics::render(&d.node, Instant::now(), &d.metrics_extra));
            }
            Some(change) = health_rx.recv() => {
                d.node.set_vip_health(Instant::now(), change.vip, change.healthy);
                tracing::debug!(vip = %change.vip, healthy = change.healthy, "{}", change.detail);
            }
            Some((result, reply)) = reload_rx.recv() => {
                let checks_before = d.setup.health_checks.clone();
                let resp = d.apply_reload(result);
                if d.ready_sent {
                    d.notify("READY=1\nSTATUS=serving; configuration reloaded");
                }
                if d.setup.health_checks != checks_before {
                    health = health::HealthChecks::spawn(d.setup.health_checks.clone(), health_tx.clone());
                }
                if let Response::Error { message } = &resp {
                    tracing::error!("reload failed: {message}");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(resp);
                }
            }
            _ = sigterm.recv() => {
                tracing::info!("got SIGTERM, stopping");
                leaving = true;
                d.notify("STOPPING=1");
                d.node.begin_leave(Instant::now());
            }
            _ = sigint.recv() => {
                tracing::info!("got SIGINT, stopping");
                leaving = true;
                d.notify("STOPPING=1");
                d.node.begin_leave(Instant::now());
            }
            Some(joined) = joined_rx.recv() => {
                d.scripts.submit(
                    ScriptRequest::new("invitation-accepted")
                        .var("NODE", joined.node.clone())
                        .var("REMOTEADDRESS", joined.remote.ip().to_string()),
                );
                // The new node's key is in hosts/ now: load it so its handshake is accepted.
                start_reload(None, d.netdir.clone());
            }
            _ = sighup.recv() => {
                tracing::info!("got SIGHUP, reloading");
                d.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", systemd::monotonic_usec()));
                start_reload(None, d.netdir.clone());
            }
        }
        d.flush().await;
        // A graceful stop first withdraws our VIPs and waits (bounded) until
        // every peer steers elsewhere; frames keep flowing meanwhile.
        if leaving && d.node.leave_ready(Instant::now()) {
            break;
        }
    }
    drop(health);
    d.node.shutdown(Instant::now());
    d.flush().await;
    // host-down and subnet-down for everything, then tinc-down, before the TAP goes.
    d.scripts.run_now(ScriptRequest::new("tinc-down")).await;
    // Release the UDP port before the pidfile goes: `stop` returns when the pidfile
    // is gone, and `restart` binds the same port right after.
    let Daemon {
        netdir, udp, tap, ..
    } = d;
    drop(udp);
    drop(tap);
    if let Some(task) = metrics_server {
        task.abort();
    }
    if let Some(task) = join_server {
        task.abort();
        let _ = task.await;
    }
    let _ = std::fs::remove_file(netdir.control_socket());
    let _ = std::fs::remove_file(netdir.pidfile());
    tracing::info!("meshd stopped");
    if let Some(reply) = stop_reply {
        let _ = reply.send(Response::Ok);
        // Give the control task a moment to write the answer.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Reads a frame from the TAP; never ready without one (`DeviceType = dummy`).
async fn tap_recv(tap: Option<&tap::Tap>, buf: &mut [u8]) -> std::io::Result<usize> {
    match tap {
        Some(t) => t.recv(buf).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Hands each datagram of a (GRO-coalesced) read to the core.
    fn handle_train(&mut self, n: usize, from: std::net::SocketAddr, seg: usize) {
        let now = Instant::now();
        for datagram in self.buf[..n].chunks_mut(seg.max(1)) {
            self.node.handle_datagram_mut(now, from, datagram);
        }
    }

    /// Hands datagrams already queued on the socket to the core: a bounded
    /// batch, or (`bounded` false, before timers run) all of them, up to
    /// [`UDP_READS`] reads.
    fn drain_socket(&mut self, bounded: bool) {
        for _ in 0..UDP_READS {
            let (out, tap) = self.node.queued();
            if bounded && (out >= MAX_QUEUED || tap >= MAX_QUEUED) {
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
    fn notify(&self, message: &str) {
        if let Some(n) = &self.notifier {
            n.send(message);
        }
    }

    /// `READY=1` with a status line, once.
    fn send_ready(&mut self, status: &str) {
        if !self.ready_sent {
            self.ready_sent = true;
            self.notify(&format!("READY=1\nSTATUS={status}"));
        }
    }

    /// Hands the `n` bytes just read from the TAP to the core.
    fn deliver_tap_read(&mut self, n: usize) {
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
    fn drain_tap(&mut self) {
        for _ in 0..TAP_BATCH {
            let (out, tap) = self.node.queued();
            if out >= MAX_QUEUED || tap >= MAX_QUEUED {
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
    async fn flush(&mut self) {
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
            self.udp.send_batch(&self.batch).await;
            for t in self.batch.drain(..) {
                self.node.recycle(t.payload);
            }
        }
        while let Some(frame) = self.node.poll_frame() {
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
            Event::PeerUp { .. } => {
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
            Event::SubnetUp { .. } | Event::SubnetDown { .. } => {}
        }
    }

    fn handle_request(&mut self, req: Request) -> Response {
        let now = Instant::now();
        match req {
            Request::DumpNodes => Response::Nodes {
                nodes: self.node.node_statuses(now, self.udp.local_port()),
            },
            Request::DumpEdges => Response::Edges {
                edges: self.node.edge_statuses(),
            },
            Request::DumpConnections => Response::Connections {
                connections: self.node.connection_statuses(now),
            },
            Request::DumpVips => Response::Vips {
                vips: self.node.vip_statuses(now),
            },
            Request::DumpSubnets => Response::Subnets {
                subnets: self.node.subnet_statuses(now),
            },
            Request::Pid => Response::Pid {
                pid: std::process::id(),
            },
            Request::Reload => Response::Error {
                message: "reload is handled by the main loop".into(),
            },
            Request::Drops => Response::Drops {
                drops: serde_json::json!({
                    "packets": self.node.drops(),
                    "frames": self.node.switch().counters(),
                    "vip": self.node.vip_engine().counters(),
                    "flows": self.node.vip_engine().flows().len(),
                    "tap_write_drops": self.tap_counters.write_drops,
                    "tap": self.tap_counters,
                    "mac_table_entries": self.node.switch().macs().len(),
                    "ip_bindings": self.node.switch().neighbours().len(),
                }),
            },
            Request::Limits => Response::Limits {
                limits: self.limits(),
            },
            Request::Stop | Request::Log => Response::Ok,
            Request::Debug { level } => match crate::logs::set_level(level) {
                Ok(previous) => {
                    tracing::warn!("log level changed from {previous} to {level}");
                    Response::Debug { previous }
                }
                Err(err) => Response::Error {
                    message: format!("{err:#}"),
                },
            },
        }
    }

    /// Every bounded table: the core's, then the script queue and the control socket's.
    fn limits(&self) -> Vec<crate::node::Limit> {
        let mut limits = self.node.limits();
        limits.push(self.scripts.queue_limit());
        limits.extend(self.control_stats.limits());
        if let Some(join) = &self.join_stats {
            limits.push(join.limit());
        }
        limits
    }

    fn apply_reload(&mut self, loaded: Result<setup::Setup>) -> Response {
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
