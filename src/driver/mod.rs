//! The tokio driver: the only place that touches sockets, the clock, signals,
//! files and the control socket. It feeds the sans-IO [`Node`] and carries out
//! what it asks for.

pub mod child;
mod control_server;
mod daemon;
pub mod health;
mod hooks;
mod join_server;
mod listen;
mod main_loop;
pub mod metrics;
pub mod offload;
pub mod pcap;
pub mod privileges;
pub mod scripts;
pub mod setup;
mod station_watch;
pub mod systemd;
pub mod tap;
mod tap_io;
mod udp;
mod udp_batch;

use crate::config::NetDir;
use crate::control::pidfile::{new_cookie, PidFile};
use crate::control::{Request, Response};
use crate::node::Node;
use anyhow::{Context, Result};
use daemon::Daemon;
use main_loop::Inputs;
use scripts::{ScriptEnv, ScriptRequest, ScriptRunner};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};

/// Runs the daemon in the current process until it is told to stop.
/// `debug` is the `-d` level (0 without one, as tincd), passed to scripts as `DEBUG`.
/// `privileges` (`-L`, `-U USER`) are applied once the daemon holds what needs root.
pub fn run(netdir: NetDir, debug: u8, privileges: privileges::Privileges) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run_async(netdir, debug, privileges))
}

/// A start that failed after writing the pidfile (it is written before tinc-up) removes it
/// and the control socket, unless the pidfile is another daemon's.
fn remove_own_pidfile(netdir: &NetDir) {
    let pidfile = netdir.pidfile();
    if PidFile::read(&pidfile).is_ok_and(|p| p.pid == std::process::id()) {
        let _ = std::fs::remove_file(netdir.control_socket());
        let _ = std::fs::remove_file(&pidfile);
    }
}

/// Longest wait for a first session before telling systemd the daemon is ready anyway.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the daemon, serves until a graceful stop is done, and shuts it down.
async fn run_async(netdir: NetDir, debug: u8, privileges: privileges::Privileges) -> Result<()> {
    let (mut daemon, mut inputs, servers) = match start(netdir.clone(), debug).await {
        Ok(started) => started,
        Err(err) => {
            remove_own_pidfile(&netdir);
            return Err(err);
        }
    };
    if let Err(err) = privileges.apply() {
        // As if stopped: the scripts' down events and tinc-down run, the files go.
        tracing::error!("{err:#}");
        daemon.shut_down(servers).await;
        return Err(err);
    }
    daemon.chrooted = privileges.chroot;
    daemon.serve(&mut inputs).await;
    // The inputs (the control socket's requests among them) live until the daemon is gone.
    daemon.shut_down(servers).await;
    drop(inputs);
    Ok(())
}

/// The servers running beside the main loop, ended at shutdown.
struct Servers {
    metrics: Option<tokio::task::JoinHandle<()>>,
    join: Option<tokio::task::JoinHandle<()>>,
}

/// Everything before the first loop turn: the configuration, the key, the UDP socket,
/// the TAP, `tinc-up`, the join, control and metrics servers, the pidfile, the core, the
/// health checks and the signal handlers.
async fn start(netdir: NetDir, debug: u8) -> Result<(Daemon, Inputs, Servers)> {
    let setup = setup::load(&netdir)?;
    for w in &setup.warnings {
        tracing::warn!("{w}");
    }
    // tinc's default is router mode; meshd has only switch mode: say so.
    match &setup.no_mode_line {
        Some(conf) if conf.ends_with(crate::config::netdir::TINC_CONF) => tracing::warn!(
            "{} has no Mode line: tinc would run router mode; meshd runs switch mode \
             (a TAP device, Ethernet frames, MAC learning). Add Mode = switch to say so",
            conf.display()
        ),
        Some(conf) => tracing::info!(
            "no Mode line in {}: switch mode (meshd's only mode)",
            conf.display()
        ),
        None => {}
    }
    let key = crate::keyfile::load_private_key(&setup.private_key_file)
        .with_context(|| format!("cannot load the private key of {}", setup.node.name))?;
    // A UDP socket (the mesh) and a join listener (TCP) per listen address, as tincd.
    let listeners = listen::open(&setup)?;
    let udp = udp::Udp::new(listeners.udp)?;
    let join_listeners = listeners.tcp;
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
            // As tinc: `DeviceType = dummy` gives `DEVICE=dummy` and `INTERFACE=dummy`.
            device: if setup.dummy_device {
                "dummy".into()
            } else {
                "/dev/net/tun".into()
            },
            interface: tap
                .as_ref()
                .map_or_else(|| "dummy".to_string(), |t| t.name().to_string()),
            debug: Some(debug),
            interpreter: setup.scripts_interpreter.clone(),
            extension: setup.scripts_extension.clone(),
        },
        setup.script_timeout,
    );
    // As tincd: the control socket listens and the pidfile is written before tinc-up runs,
    // so a `stop` or `pid` sent while tinc-up runs (or right after it) is queued and answered
    // once the loop starts, and tinc-up can read the pidfile (its port).
    let cookie = new_cookie();
    let (control, control_stats) = control_server::spawn(&socket_path, cookie.clone())?;
    PidFile {
        pid: std::process::id(),
        cookie,
        host: "127.0.0.1".into(),
        port,
    }
    .write(&pidfile)?;
    // tinc-up configures the interface; the daemon answers only once it has run.
    scripts.run_now(ScriptRequest::new("tinc-up")).await;
    // tinc-up may have set the MAC; holders rewrite steered frames to it.
    let tap_mac = match &tap {
        Some(t) => Some(t.mac().context("cannot read the TAP device's MAC")?),
        None => None,
    };
    let (joined_tx, joined_rx) = tokio::sync::mpsc::unbounded_channel();
    let (join_server, join_stats) = {
        let (task, stats) = join_server::spawn(
            netdir.clone(),
            setup.node.name.to_string(),
            join_listeners,
            joined_tx,
        );
        (Some(task), Some(stats))
    };
    tracing::info!(name = %setup.node.name, port, "meshd {} started", env!("CARGO_PKG_VERSION"));

    let wall_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut node = Node::new(
        setup.node.clone(),
        key,
        setup.hosts.clone(),
        Instant::now(),
        wall_ns,
        Box::new(rand::rngs::OsRng),
    );
    if let Some(mac) = tap_mac {
        node.set_tap_mac(mac);
    }
    // VIP health checks run as their own tasks and report changes here.
    let (health_tx, health_rx) = tokio::sync::mpsc::unbounded_channel();
    let health = health::HealthChecks::spawn(setup.health_checks.clone(), health_tx.clone());
    // Stations that leave the TAP's bridge (for presence checks): see Daemon::watch_stations.
    let (stations_tx, stations_rx) = tokio::sync::mpsc::unbounded_channel();
    // Reloads read files and resolve host names off the packet loop: see Daemon::reload.
    let (reload_tx, reloads) = tokio::sync::mpsc::channel::<daemon::Loaded>(4);
    let mut d = Daemon {
        netdir,
        setup,
        node,
        udp,
        tap,
        scripts,
        buf: vec![0u8; 65536],
        tap_buf: vec![0u8; 65536 + 1024],
        batch: Vec::with_capacity(daemon::UDP_BATCH),
        tap_frames: Vec::new(),
        seg_buf: Vec::with_capacity(2048),
        tap_counters: tap_io::TapCounters::default(),
        notifier: systemd::Notifier::from_env(),
        ready_sent: false,
        ready_to_leave: false,
        metrics_extra: metrics::Extra::default(),
        control_stats,
        join_stats,
        metrics_stats: None,
        health: Some(health),
        health_tx,
        stations_tx,
        station_watch: false,
        reload_tx,
        leaving: false,
        stop_reply: None,
        chrooted: false,
    };
    let (scrape_tx, scrapes) = tokio::sync::mpsc::channel::<metrics::Scrape>(8);
    let metrics_server = match d.setup.metrics_address {
        Some(addr) => match metrics::spawn(addr, scrape_tx) {
            Ok((task, stats)) => {
                d.metrics_stats = Some(stats);
                Some(task)
            }
            Err(err) => {
                tracing::warn!("metrics are not served: {err:#}");
                None
            }
        },
        None => None,
    };
    d.watch_stations();
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
    let watchdog = tokio::time::interval(watchdog_period);
    let inputs = Inputs {
        control,
        joined: joined_rx,
        scrapes,
        health: health_rx,
        stations: stations_rx,
        reloads,
        sigterm: signal(SignalKind::terminate()).context("SIGTERM handler")?,
        sigint: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        sighup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        sigalrm: signal(SignalKind::alarm()).context("SIGALRM handler")?,
        watchdog,
        ready_deadline,
    };
    let servers = Servers {
        metrics: metrics_server,
        join: join_server,
    };
    Ok((d, inputs, servers))
}

impl Daemon {
    /// After the loop: the health checks end, the core says goodbye (host-down and
    /// subnet-down for everything), `tinc-down` runs, the UDP port and the TAP are released,
    /// the servers end, the control socket and the pidfile go, and a waiting `stop` is
    /// answered.
    async fn shut_down(mut self, servers: Servers) {
        self.health = None;
        self.node.shutdown(Instant::now());
        self.flush().await;
        // host-down and subnet-down for everything, then tinc-down, before the TAP goes.
        self.scripts.run_now(ScriptRequest::new("tinc-down")).await;
        // Release the UDP port before the pidfile goes: `stop` returns when the pidfile
        // is gone, and `restart` binds the same port right after.
        let Daemon {
            netdir,
            udp,
            tap,
            stop_reply,
            chrooted,
            ..
        } = self;
        drop(udp);
        drop(tap);
        if let Some(task) = servers.metrics {
            task.abort();
        }
        if let Some(task) = servers.join {
            task.abort();
            let _ = task.await;
        }
        // Chrooted (-R), an absolute path names a file outside that is out of reach (and
        // might name another file inside): `stop` removes what is left.
        for file in [netdir.control_socket(), netdir.pidfile()] {
            if !(chrooted && file.is_absolute()) {
                let _ = std::fs::remove_file(file);
            }
        }
        tracing::info!("meshd stopped");
        if let Some(reply) = stop_reply {
            let _ = reply.send(Response::Ok);
            // Give the control task a moment to write the answer.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
