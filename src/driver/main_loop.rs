//! The main loop: a dispatcher that waits for the next input (a due timer, a datagram, a
//! TAP frame, a control request, a signal, a health change, a configuration read off the
//! loop…) and hands it to one method of the [`Daemon`]. A graceful stop begins in one
//! place, [`Daemon::stop`], and a reload in one, [`Daemon::reload`], whatever asked for it.

use super::daemon::{tap_recv, Daemon, Loaded};
use super::health::{HealthChange, HealthChecks};
use super::join_server::Joined;
use super::scripts::ScriptRequest;
use super::{control_server, metrics, setup, systemd};
use crate::control::{Request, Response};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::signal::unix::Signal;
use tokio::sync::{mpsc, oneshot};

/// What the loop waits on besides the daemon's own UDP socket, TAP and timers.
pub(super) struct Inputs {
    /// Requests from the control socket (`log` is served there, never forwarded).
    pub(super) control: mpsc::Receiver<control_server::Pending>,
    /// Nodes that joined through an invitation.
    pub(super) joined: mpsc::UnboundedReceiver<Joined>,
    /// Metrics scrapes waiting for their text.
    pub(super) scrapes: mpsc::Receiver<metrics::Scrape>,
    /// VIP health changes.
    pub(super) health: mpsc::UnboundedReceiver<HealthChange>,
    /// MACs of stations that left the TAP's bridge.
    pub(super) stations: mpsc::UnboundedReceiver<[u8; 6]>,
    /// Configurations read off the loop.
    pub(super) reloads: mpsc::Receiver<Loaded>,
    pub(super) sigterm: Signal,
    pub(super) sigint: Signal,
    pub(super) sighup: Signal,
    pub(super) sigalrm: Signal,
    /// systemd's watchdog keepalives (ticks only when systemd asked for them).
    pub(super) watchdog: tokio::time::Interval,
    /// When to tell systemd the daemon is ready even without a first session.
    pub(super) ready_deadline: tokio::time::Instant,
}

/// The signals the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Term,
    Int,
    Hup,
    /// tincd's SIGALRM: `meshd retry`.
    Alrm,
}

/// One thing that happened, for [`Daemon::dispatch`].
enum Input {
    /// The core's next timer is due.
    Timer,
    /// A (GRO-coalesced) read from the UDP socket: length, sender, segment size.
    Datagrams(std::io::Result<(usize, SocketAddr, usize)>),
    /// A read from the TAP: its length.
    Tap(std::io::Result<usize>),
    Control(Request, oneshot::Sender<Response>),
    Watchdog,
    /// No session came up within the ready wait.
    ReadyDeadline,
    Scrape(metrics::Scrape),
    Health(HealthChange),
    /// A station left the TAP's bridge: its MAC.
    StationLeft([u8; 6]),
    /// Boxed: a whole configuration would make every input as large.
    ReloadLoaded(Box<Loaded>),
    Signal(Sig),
    Joined(Joined),
}

/// Why a graceful stop began (for the log).
enum StopCause {
    Signal(&'static str),
    Control,
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopCause::Signal(name) => write!(f, "got {name}"),
            StopCause::Control => write!(f, "`stop` requested on the control socket"),
        }
    }
}

/// Why the configuration is reread (for the log).
enum ReloadCause {
    Sighup,
    Control,
    /// A node joined through an invitation: its host file is new.
    Joined(String),
}

impl std::fmt::Display for ReloadCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadCause::Sighup => write!(f, "got SIGHUP"),
            ReloadCause::Control => write!(f, "`reload` requested on the control socket"),
            ReloadCause::Joined(node) => write!(f, "{node} joined with an invitation"),
        }
    }
}

impl Daemon {
    /// Runs the loop until a graceful stop is done: every VIP withdrawn and acknowledged
    /// (bounded by the core's grace). Whatever an input made the core queue goes out before
    /// the next input is taken.
    pub(super) async fn serve(&mut self, inputs: &mut Inputs) {
        self.flush().await;
        loop {
            // tokio's timers fire only when the runtime turns its time driver, which
            // a socket that is never empty (a flood faster than we read) puts off
            // for hundreds of ms: heartbeats and liveness follow the clock instead.
            if self
                .node
                .poll_timeout()
                .is_some_and(|t| t <= Instant::now())
            {
                self.on_timer();
                self.flush().await;
            }
            let input = self.next_input(inputs).await;
            self.dispatch(input);
            self.flush().await;
            // A graceful stop first withdraws our VIPs and waits (bounded) until
            // every peer steers elsewhere; frames keep flowing meanwhile.
            if self.leaving && self.ready_to_leave {
                return;
            }
        }
    }

    /// Waits for the next input; earlier arms win when several are ready.
    async fn next_input(&mut self, inputs: &mut Inputs) -> Input {
        let deadline = self
            .node
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let watchdog = self
            .notifier
            .as_ref()
            .is_some_and(|n| n.watchdog_period().is_some());
        let ready_pending = !self.ready_sent;
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline) => Input::Timer,
            r = self.udp.recv_train(&mut self.buf) => Input::Datagrams(r),
            r = tap_recv(self.tap.as_ref(), &mut self.tap_buf) => Input::Tap(r),
            Some((req, reply)) = inputs.control.recv() => Input::Control(req, reply),
            _ = inputs.watchdog.tick(), if watchdog => Input::Watchdog,
            _ = tokio::time::sleep_until(inputs.ready_deadline), if ready_pending => {
                Input::ReadyDeadline
            }
            Some(reply) = inputs.scrapes.recv() => Input::Scrape(reply),
            Some(change) = inputs.health.recv() => Input::Health(change),
            Some(mac) = inputs.stations.recv() => Input::StationLeft(mac),
            Some(loaded) = inputs.reloads.recv() => Input::ReloadLoaded(Box::new(loaded)),
            _ = inputs.sigterm.recv() => Input::Signal(Sig::Term),
            _ = inputs.sigint.recv() => Input::Signal(Sig::Int),
            Some(joined) = inputs.joined.recv() => Input::Joined(joined),
            _ = inputs.sighup.recv() => Input::Signal(Sig::Hup),
            _ = inputs.sigalrm.recv() => Input::Signal(Sig::Alrm),
        }
    }

    /// Hands one input to the method that handles it.
    fn dispatch(&mut self, input: Input) {
        match input {
            Input::Timer => self.on_timer(),
            Input::Datagrams(read) => self.on_datagrams(read),
            Input::Tap(read) => self.on_tap(read),
            Input::Control(req, reply) => self.on_control(req, reply),
            Input::Watchdog => self.on_watchdog(),
            Input::ReadyDeadline => self.send_ready("serving; no peer reachable yet"),
            Input::Scrape(reply) => self.on_scrape(reply),
            Input::Health(change) => self.on_health(change),
            Input::StationLeft(mac) => self.node.station_left(Instant::now(), mac),
            Input::ReloadLoaded(loaded) => self.on_reload_loaded(loaded),
            Input::Signal(sig) => self.on_signal(sig),
            Input::Joined(joined) => self.on_joined(joined),
        }
    }

    fn on_timer(&mut self) {
        // Read what is queued first: a busy loop must not mistake its own
        // deafness for peers' silence.
        self.drain_socket(false);
        self.node.handle_timeout(Instant::now());
    }

    fn on_datagrams(&mut self, read: std::io::Result<(usize, SocketAddr, usize)>) {
        match read {
            Ok((n, from, seg)) => self.handle_train(n, from, seg),
            Err(err) => tracing::debug!(%err, "UDP receive error"),
        }
        self.drain_socket(true);
    }

    fn on_tap(&mut self, read: std::io::Result<usize>) {
        match read {
            Ok(n) => self.deliver_tap_read(n),
            Err(err) => tracing::debug!(%err, "TAP read error"),
        }
        self.drain_tap();
    }

    fn on_watchdog(&self) {
        // From the packet loop itself: a wedged loop stops the keepalives.
        self.notify("WATCHDOG=1");
    }

    fn on_scrape(&mut self, reply: metrics::Scrape) {
        self.metrics_extra.tap_write_drops = self.tap_counters.write_drops;
        self.metrics_extra.limits = self.limits();
        let _ = reply.send(metrics::render(
            &self.node,
            Instant::now(),
            &self.metrics_extra,
        ));
    }

    fn on_health(&mut self, change: HealthChange) {
        self.node
            .set_vip_health(Instant::now(), change.vip, change.healthy);
        tracing::debug!(vip = %change.vip, healthy = change.healthy, "{}", change.detail);
    }

    fn on_signal(&mut self, sig: Sig) {
        match sig {
            Sig::Term => self.stop(StopCause::Signal("SIGTERM"), None),
            Sig::Int => self.stop(StopCause::Signal("SIGINT"), None),
            Sig::Hup => self.reload(ReloadCause::Sighup, None),
            Sig::Alrm => {
                self.node.retry(Instant::now());
            }
        }
    }

    fn on_joined(&mut self, joined: Joined) {
        // tinc's address cache: the invitee was reached from there (its port is its own).
        let ip = joined.remote.ip().to_string();
        if let Err(err) = crate::config::addr_cache::store(&self.netdir, &joined.node, &ip) {
            tracing::debug!(node = %joined.node, "cannot write the address cache: {err}");
        }
        self.scripts.submit(
            ScriptRequest::new("invitation-accepted")
                .var("NODE", joined.node.clone())
                .var("REMOTEADDRESS", joined.remote.ip().to_string()),
        );
        // The new node's key is in hosts/ now: load it so its handshake is accepted.
        self.reload(ReloadCause::Joined(joined.node), None);
    }

    /// Answers a control request; `stop` and `reload` are answered when done.
    fn on_control(&mut self, req: Request, reply: oneshot::Sender<Response>) {
        let now = Instant::now();
        let response = match req {
            Request::Stop => return self.stop(StopCause::Control, Some(reply)),
            Request::Reload => return self.reload(ReloadCause::Control, Some(reply)),
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
            Request::Debug { level } => match crate::logs::set_level(level) {
                Ok(previous) => {
                    tracing::warn!("log level changed from {previous} to {level}");
                    Response::Debug { previous }
                }
                Err(err) => Response::Error {
                    message: format!("{err:#}"),
                },
            },
            Request::Disconnect { node } => match self.node.disconnect(now, &node) {
                true => Response::Ok,
                false => Response::Error {
                    message: format!("no session with {node}"),
                },
            },
            Request::Retry => {
                self.node.retry(now);
                Response::Ok
            }
            Request::Purge => {
                self.node.purge(now);
                Response::Ok
            }
            // The control server streams logs on the connection itself; a `log` that
            // reached the loop has no stream to go to.
            Request::Log { .. } | Request::Pcap { .. } => Response::Error {
                message: "the log stream is served by the control connection".into(),
            },
        };
        let _ = reply.send(response);
    }

    /// Begins a graceful stop; the only place one begins. Our VIPs are withdrawn now
    /// and the loop ends once every peer acknowledged (bounded); `reply`, if any, is
    /// answered once the daemon is gone (a second `stop` at once).
    fn stop(&mut self, cause: StopCause, reply: Option<oneshot::Sender<Response>>) {
        tracing::info!("{cause}, stopping");
        if let Some(reply) = reply {
            if self.stop_reply.is_none() {
                self.stop_reply = Some(reply);
            } else {
                let _ = reply.send(Response::Ok);
            }
        }
        self.leaving = true;
        self.notify("STOPPING=1");
        self.node.begin_leave(Instant::now());
    }

    /// Rereads the configuration off the packet loop (files and name resolution may be
    /// slow: a slow resolver must not stall heartbeats, tinc's "synchronous DNS" problem);
    /// [`Daemon::on_reload_loaded`] applies it. The only place a reload begins. Refused
    /// while stopping.
    fn reload(&mut self, cause: ReloadCause, reply: Option<oneshot::Sender<Response>>) {
        if self.leaving {
            tracing::info!("{cause}, but meshd is stopping: not reloading");
            if let Some(reply) = reply {
                let _ = reply.send(Response::Error {
                    message: "meshd is stopping".into(),
                });
            }
            return;
        }
        // As tincd on SIGHUP: the log file is reopened (log rotation moved or removed it).
        if let Err(err) = crate::logs::reopen_log_file() {
            tracing::warn!("{err:#}; still logging to the old file");
        }
        tracing::info!("{cause}, reloading");
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            systemd::monotonic_usec()
        ));
        let tx = self.reload_tx.clone();
        let netdir = self.netdir.clone();
        tokio::task::spawn_blocking(move || {
            let result = setup::load(&netdir);
            let _ = tx.blocking_send((result, reply));
        });
    }

    /// Applies a configuration read by [`Daemon::reload`], restarts the health checks if
    /// they changed, and answers the `reload` that asked for it.
    fn on_reload_loaded(&mut self, loaded: Box<Loaded>) {
        let (result, reply) = *loaded;
        let checks_before = self.setup.health_checks.clone();
        let response = self.apply_reload(result);
        if self.ready_sent {
            self.notify("READY=1\nSTATUS=serving; configuration reloaded");
        }
        self.watch_stations();
        if self.setup.health_checks != checks_before {
            self.health = Some(HealthChecks::spawn(
                self.setup.health_checks.clone(),
                self.health_tx.clone(),
            ));
        }
        if let Response::Error { message } = &response {
            tracing::error!("reload failed: {message}");
        }
        if let Some(reply) = reply {
            let _ = reply.send(response);
        }
    }
}
