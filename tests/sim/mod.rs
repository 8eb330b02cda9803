//! A simulated network for the sans-IO core: nodes, links with delay and loss,
//! partitions, kill / freeze / restart, and a virtual clock. Deterministic for a
//! given seed.
#![allow(dead_code)]

pub mod ip6;
pub mod lab;
pub mod owner;
pub mod puppet;

use meshd::keys::PrivateKey;
use meshd::name::NodeName;
use meshd::node::{Event, KnownHost, Node, NodeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One simulated machine.
pub struct SimNode {
    pub name: String,
    pub addr: SocketAddr,
    pub key: PrivateKey,
    pub node: Option<Node>,
    pub frozen: bool,
    /// Datagrams that arrived while frozen (the kernel's socket buffer).
    pub backlog: Vec<(SocketAddr, Vec<u8>)>,
    pub config: Option<NodeConfig>,
    pub knows: Vec<String>,
    pub events: Vec<(Duration, Event)>,
    /// For each `host-up` (PeerUp) polled: the peer and the edges (from, to)
    /// that `dump edges` listed at that moment, as a host-up script sees them.
    pub edges_at_up: Vec<(String, Vec<(String, String)>)>,
    pub restarts: u64,
    /// Frames the node wrote into its TAP, with the time.
    pub tap_rx: Vec<(Duration, Vec<u8>)>,
    /// The simulated host behind the TAP: sees every frame written to the TAP
    /// and returns the frames it sends back (ARP replies, echo replies...).
    pub host: Option<HostFn>,
    /// How far its wall clock is off, in nanoseconds (read at each start).
    pub clock_offset_ns: i64,
    /// Times the network called `handle_timeout` (a driver's timer wakeups),
    /// and how many of them sent nothing.
    pub wakeups: u64,
    pub idle_wakeups: u64,
}

/// A simulated host kernel behind a node's TAP.
pub type HostFn = Box<dyn FnMut(Duration, &[u8]) -> Vec<Vec<u8>>>;

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    from: SocketAddr,
    payload: Vec<u8>,
}

/// A hook on every datagram sent (from index, to index, payload); false drops it.
pub type Tap = Box<dyn FnMut(usize, usize, &[u8]) -> bool>;

/// The network and its clock.
pub struct SimNet {
    pub base: Instant,
    pub now: Instant,
    pub nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    rng: ChaCha8Rng,
    pub delay: Duration,
    /// One-way delays of particular node pairs (index, index), instead of `delay`.
    pub link_delay: std::collections::HashMap<(usize, usize), Duration>,
    pub jitter: Duration,
    pub loss: f64,
    /// Node index pairs that cannot talk (both directions).
    blocked: HashSet<(usize, usize)>,
    /// Datagrams delivered / dropped by the network.
    pub delivered: u64,
    pub dropped: u64,
    /// If set, called on every delivered datagram; returning false drops it.
    pub tap: Option<Tap>,
    /// (from, to, address): datagrams from node `from` to node `to` arrive
    /// with this source address instead of `from`'s (a spoofed source).
    pub spoof: Vec<(usize, usize, SocketAddr)>,
    /// Record, at each PeerUp, the edges `dump edges` listed then
    /// (`SimNode::edges_at_up`). Off by default: at hundreds of nodes it is
    /// every edge of the mesh once per PeerUp, tens of gigabytes.
    pub record_edges_at_up: bool,
    /// What every host file of a node says about reaching it
    /// (`IndirectData`, `PMTU`...), by node name (effective at the next start).
    pub host_paths: std::collections::HashMap<String, meshd::node::HostPath>,
    /// Nodes behind a NAT, by index (see [`SimNet::behind_nat`]).
    nats: std::collections::HashMap<usize, SimNat>,
    /// Node index by address.
    by_addr: std::collections::HashMap<SocketAddr, usize>,
    /// Each node's last `poll_timeout` (None if frozen or not running), kept
    /// current inside `run_until` so a large mesh does not ask every node for
    /// it at every step.
    timers: Vec<Option<Instant>>,
}

/// A NAT in front of one node: its datagrams leave from `public` with a
/// port per mapping, and only replies come in (address and port filtered,
/// as a home router): a datagram to a mapped port passes only from the
/// remote that mapping was made for.
#[derive(Debug)]
struct SimNat {
    public: std::net::IpAddr,
    /// Endpoint-independent: one port (the node's own) for every remote;
    /// otherwise a new port per remote (MASQUERADE --random-fully).
    keeps_port: bool,
    /// Remote -> public port.
    mappings: HashMap<SocketAddr, u16>,
    next_port: u16,
}

impl SimNat {
    fn port_for(&mut self, remote: SocketAddr, own_port: u16) -> u16 {
        if let Some(p) = self.mappings.get(&remote) {
            return *p;
        }
        let port = if self.keeps_port {
            own_port
        } else {
            self.next_port = self.next_port.wrapping_add(7919).max(1024);
            self.next_port
        };
        self.mappings.insert(remote, port);
        port
    }
}

pub const WALL_BASE_NS: u64 = 1_800_000_000_000_000_000;

impl SimNet {
    /// Nodes with these names, keys generated from the seed; none started yet.
    pub fn new(seed: u64, names: &[&str]) -> SimNet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes: Vec<SimNode> = names
            .iter()
            .enumerate()
            .map(|(i, name)| SimNode {
                name: name.to_string(),
                addr: SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250 + 1) as u8], 655)),
                key: PrivateKey::generate(&mut rng),
                node: None,
                frozen: false,
                backlog: Vec::new(),
                config: None,
                knows: Vec::new(),
                events: Vec::new(),
                edges_at_up: Vec::new(),
                restarts: 0,
                tap_rx: Vec::new(),
                host: None,
                clock_offset_ns: 0,
                wakeups: 0,
                idle_wakeups: 0,
            })
            .collect();
        let base = Instant::now();
        let by_addr = nodes.iter().enumerate().map(|(i, n)| (n.addr, i)).collect();
        SimNet {
            by_addr,
            record_edges_at_up: false,
            host_paths: Default::default(),
            nats: Default::default(),
            timers: Vec::new(),
            base,
            now: base,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            delay: Duration::from_micros(200),
            link_delay: std::collections::HashMap::new(),
            jitter: Duration::ZERO,
            loss: 0.0,
            blocked: HashSet::new(),
            delivered: 0,
            dropped: 0,
            tap: None,
            spoof: Vec::new(),
        }
    }

    pub fn idx(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Default config for a node of this net.
    pub fn config(&self, name: &str, connect_to: &[&str]) -> NodeConfig {
        let mut cfg = NodeConfig::new(NodeName::new(name).expect("a test node name"));
        cfg.connect_to = connect_to
            .iter()
            .map(|s| NodeName::new(*s).expect("a test node name"))
            .collect();
        cfg.advertised_addresses = vec![self.nodes[self.idx(name)].addr];
        // The daemon's default TAP (MTU 1400): path MTU probes are 1449 bytes.
        cfg.switch.max_frame_len = 1418;
        cfg
    }

    /// Starts `name` with `config`, knowing the host files of `knows` (key + address).
    pub fn start(&mut self, config: NodeConfig, knows: &[&str]) {
        let slot = config.name.clone();
        self.start_as(&slot, config, knows);
    }

    /// Starts the machine `slot` running `config` (whose name may differ: an impostor).
    pub fn start_as(&mut self, slot: &str, config: NodeConfig, knows: &[&str]) {
        let i = self.idx(slot);
        self.nodes[i].knows = knows.iter().map(|s| s.to_string()).collect();
        self.nodes[i].config = Some(config);
        self.boot(i);
    }

    /// Replaces the host files `name` has (effective at its next reload or start).
    pub fn set_knows(&mut self, name: &str, knows: &[&str]) {
        let i = self.idx(name);
        self.nodes[i].knows = knows.iter().map(|s| s.to_string()).collect();
    }

    /// Sets how far `name`'s wall clock is off (effective at its next start).
    pub fn set_clock_offset(&mut self, name: &str, offset: Duration, ahead: bool) {
        let i = self.idx(name);
        let ns = offset.as_nanos() as i64;
        self.nodes[i].clock_offset_ns = if ahead { ns } else { -ns };
    }

    /// Reloads a running node with a new config (SIGHUP), its current host files.
    pub fn reload(&mut self, name: &str, config: NodeConfig) {
        let i = self.idx(name);
        let hosts = self.hosts_of(i);
        self.nodes[i].config = Some(config.clone());
        let now = self.now;
        if let Some(n) = self.nodes[i].node.as_mut() {
            n.reload(config, hosts, now);
        }
        self.pump(i);
    }

    fn hosts_of(&self, i: usize) -> Vec<KnownHost> {
        self.nodes[i]
            .knows
            .iter()
            .map(|k| {
                let n = &self.nodes[self.idx(k)];
                KnownHost {
                    name: NodeName::new(n.name.as_str()).expect("a test node name"),
                    public_key: Some(n.key.public()),
                    addresses: vec![n.addr],
                    // Its host file says what its configuration says now.
                    subnets: n
                        .config
                        .as_ref()
                        .map(|c| c.subnets.clone())
                        .unwrap_or_default(),
                    vips: n
                        .config
                        .as_ref()
                        .map(|c| c.vips.clone())
                        .unwrap_or_default(),
                    path: self.host_paths.get(k.as_str()).copied().unwrap_or_default(),
                }
            })
            .collect()
    }

    fn boot(&mut self, i: usize) {
        let hosts = self.hosts_of(i);
        let config = self.nodes[i].config.clone().expect("configured");
        let wall = (WALL_BASE_NS + (self.now - self.base).as_nanos() as u64)
            .saturating_add_signed(self.nodes[i].clock_offset_ns);
        let seed = self.rng.gen::<u64>();
        let key = PrivateKey::from_pem_str(&self.nodes[i].key.to_pem_string()).expect("own key");
        let node = Node::new(
            config,
            key,
            hosts,
            self.now,
            wall,
            Box::new(ChaCha8Rng::seed_from_u64(seed)),
        );
        self.nodes[i].node = Some(node);
        self.nodes[i].frozen = false;
        self.nodes[i].backlog.clear();
        self.pump(i);
    }

    /// Stops a node without a goodbye (SIGKILL / power loss).
    pub fn kill(&mut self, name: &str) {
        let i = self.idx(name);
        self.nodes[i].node = None;
        self.nodes[i].backlog.clear();
    }

    /// Graceful stop: the node says goodbye, then is gone.
    pub fn stop(&mut self, name: &str) {
        let i = self.idx(name);
        let now = self.now;
        if let Some(n) = self.nodes[i].node.as_mut() {
            n.shutdown(now);
        }
        self.pump(i);
        self.nodes[i].node = None;
    }

    /// Starts a killed node again with the same key and config (a new generation).
    pub fn restart(&mut self, name: &str) {
        let i = self.idx(name);
        self.nodes[i].restarts += 1;
        self.boot(i);
    }

    /// SIGSTOP: no timers run, datagrams queue in its socket buffer.
    pub fn freeze(&mut self, name: &str) {
        let i = self.idx(name);
        self.nodes[i].frozen = true;
    }

    /// SIGCONT: the node runs again and reads its backlog first.
    pub fn thaw(&mut self, name: &str) {
        let i = self.idx(name);
        self.nodes[i].frozen = false;
        let backlog = std::mem::take(&mut self.nodes[i].backlog);
        let now = self.now;
        if let Some(n) = self.nodes[i].node.as_mut() {
            for (from, payload) in backlog {
                n.handle_datagram(now, from, &payload);
            }
            n.handle_timeout(now);
        }
        self.pump(i);
    }

    /// Cuts every link between `group` and the rest.
    pub fn partition(&mut self, group: &[&str]) {
        let inside: Vec<usize> = group.iter().map(|n| self.idx(n)).collect();
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                if inside.contains(&a) != inside.contains(&b) {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Puts `name` behind a NAT with public address `public` (`keeps_port`:
    /// endpoint-independent mapping; else a new port per remote). Its own
    /// address is private from then on: only replies reach it.
    pub fn behind_nat(&mut self, name: &str, public: std::net::IpAddr, keeps_port: bool) {
        let i = self.idx(name);
        self.nats.insert(
            i,
            SimNat {
                public,
                keeps_port,
                mappings: HashMap::new(),
                next_port: 20_000,
            },
        );
    }

    /// The public address `name`'s NAT uses towards `remote`, if it has one.
    pub fn nat_mapping(&self, name: &str, remote: SocketAddr) -> Option<SocketAddr> {
        let nat = self.nats.get(&self.idx(name))?;
        nat.mappings
            .get(&remote)
            .map(|p| SocketAddr::new(nat.public, *p))
    }

    /// Sets the one-way delay between two nodes, both ways.
    pub fn set_link_delay(&mut self, a: &str, b: &str, d: Duration) {
        let (a, b) = (self.idx(a), self.idx(b));
        self.link_delay.insert((a, b), d);
        self.link_delay.insert((b, a), d);
    }

    /// Cuts the link between two nodes.
    pub fn cut(&mut self, a: &str, b: &str) {
        let (a, b) = (self.idx(a), self.idx(b));
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    /// Injects a raw datagram as if `from` sent it to node `to`.
    /// Datagrams sent to `addr` reach node `name` too (its NAT's new mapping, say).
    pub fn alias(&mut self, name: &str, addr: SocketAddr) {
        let i = self.idx(name);
        self.by_addr.insert(addr, i);
    }

    pub fn inject(&mut self, to: &str, from: SocketAddr, payload: Vec<u8>) {
        let i = self.idx(to);
        let now = self.now;
        if let Some(n) = self.nodes[i].node.as_mut() {
            n.handle_datagram(now, from, &payload);
        }
        self.pump(i);
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes[self.idx(name)]
            .node
            .as_ref()
            .unwrap_or_else(|| panic!("{name} is not running"))
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        let i = self.idx(name);
        self.nodes[i]
            .node
            .as_mut()
            .unwrap_or_else(|| panic!("node is not running"))
    }

    /// A frame sent by the host behind `name`'s TAP.
    pub fn tap_send(&mut self, name: &str, frame: &[u8]) {
        let i = self.idx(name);
        let now = self.now;
        if let Some(n) = self.nodes[i].node.as_mut() {
            n.handle_frame(now, frame);
        }
        self.pump(i);
    }

    /// Frames `name`'s TAP received since the last call.
    pub fn take_tap_rx(&mut self, name: &str) -> Vec<Vec<u8>> {
        let i = self.idx(name);
        std::mem::take(&mut self.nodes[i].tap_rx)
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    }

    /// Drains a node's transmits into the network and its events into its log.
    pub fn pump(&mut self, i: usize) {
        let elapsed = self.now - self.base;
        let now = self.now;
        let sim = &mut self.nodes[i];
        let Some(node) = sim.node.as_mut() else {
            return;
        };
        // Frames for the TAP go to the host, whose answers come back in.
        for _ in 0..1000 {
            let Some(frame) = node.poll_frame() else {
                break;
            };
            let replies = match sim.host.as_mut() {
                Some(host) => host(elapsed, &frame),
                None => Vec::new(),
            };
            sim.tap_rx.push((elapsed, frame));
            for r in replies {
                node.handle_frame(now, &r);
            }
        }
        // Every peer with something due is in the core's timer queue no later
        // than that (or marked to be queued): checked after every input.
        if node.peers().len() <= 64 {
            if let Err(err) = node.check_timers() {
                panic!("timer queue invariant broken: {err}");
            }
        }
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        let mut edges_at_up = Vec::new();
        let record_edges = self.record_edges_at_up;
        while let Some(e) = node.poll_event() {
            if let (true, Event::PeerUp { name, .. }) = (record_edges, &e) {
                let edges = node.edge_statuses().into_iter().map(|e| (e.from, e.to));
                edges_at_up.push((name.clone(), edges.collect()));
            }
            events.push((elapsed, e));
        }
        self.nodes[i].events.extend(events);
        self.nodes[i].edges_at_up.extend(edges_at_up);
        let from = self.nodes[i].addr;
        for t in out {
            // Through the sender's NAT: a public source, a mapping made.
            let nat_src = self
                .nats
                .get_mut(&i)
                .map(|nat| SocketAddr::new(nat.public, nat.port_for(t.destination, from.port())));
            let Some(to) = self.route(i, t.destination, nat_src.unwrap_or(from)) else {
                self.dropped += 1;
                continue;
            };
            if self.blocked.contains(&(i, to)) || (self.loss > 0.0 && self.rng.gen_bool(self.loss))
            {
                self.dropped += 1;
                continue;
            }
            if let Some(tap) = self.tap.as_mut() {
                if !tap(i, to, &t.payload) {
                    self.dropped += 1;
                    continue;
                }
            }
            let jitter = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.gen_range(0..self.jitter.as_nanos() as u64))
            };
            self.seq += 1;
            let from = self
                .spoof
                .iter()
                .find(|(a, b, _)| *a == i && *b == to)
                .map_or(from, |s| s.2);
            let from = nat_src.unwrap_or(from);
            let delay = self.link_delay.get(&(i, to)).copied().unwrap_or(self.delay);
            self.queue.push(Reverse(InFlight {
                at: self.now + delay + jitter,
                seq: self.seq,
                to,
                from,
                payload: t.payload,
            }));
        }
    }

    /// Which node a datagram from node `from` to `dest` reaches: a node's
    /// own address (unless it is behind a NAT), or a NAT's public address
    /// and a port mapped for exactly this sender's public address.
    /// `src` is the sender's address as it leaves (its NAT's public one).
    fn route(&self, from: usize, dest: SocketAddr, src: SocketAddr) -> Option<usize> {
        if let Some(&to) = self.by_addr.get(&dest) {
            return (!self.nats.contains_key(&to) || to == from).then_some(to);
        }
        self.nats.iter().find_map(|(&to, nat)| {
            let mapped = nat.public == dest.ip()
                && nat.mappings.get(&src).is_some_and(|p| *p == dest.port());
            mapped.then_some(to)
        })
    }

    /// Runs the network until `self.now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    fn timer_of(&self, i: usize) -> Option<Instant> {
        let n = &self.nodes[i];
        if n.frozen {
            return None;
        }
        n.node.as_ref().and_then(|n| n.poll_timeout())
    }

    pub fn run_until(&mut self, end: Instant) {
        self.timers = (0..self.nodes.len()).map(|i| self.timer_of(i)).collect();
        let mut touched: Vec<usize> = Vec::new();
        loop {
            let next_packet = self.queue.peek().map(|Reverse(p)| p.at);
            let next_timer = self.timers.iter().flatten().min().copied();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            while let Some(Reverse(p)) = self.queue.peek() {
                if p.at > self.now {
                    break;
                }
                let Some(Reverse(p)) = self.queue.pop() else {
                    break;
                };
                let to = p.to;
                let now = self.now;
                let sim = &mut self.nodes[to];
                match sim.node.as_mut() {
                    None => self.dropped += 1,
                    Some(_) if sim.frozen => sim.backlog.push((p.from, p.payload)),
                    Some(n) => {
                        self.delivered += 1;
                        n.handle_datagram(now, p.from, &p.payload);
                        self.pump(to);
                        self.timers[to] = self.timer_of(to);
                    }
                }
            }
            let now = self.now;
            touched.clear();
            touched.extend(
                self.timers
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.is_some_and(|t| t <= now))
                    .map(|(i, _)| i),
            );
            for &i in &touched {
                if let Some(n) = self.nodes[i].node.as_mut() {
                    n.handle_timeout(now);
                    let sent_nothing = n.queued().transmits == 0;
                    self.nodes[i].wakeups += 1;
                    self.nodes[i].idle_wakeups += u64::from(sent_nothing);
                }
                self.pump(i);
                self.timers[i] = self.timer_of(i);
                // A core that keeps asking for a timeout in the past would spin here.
                assert!(
                    self.timers[i].is_none_or(|t| t > now),
                    "a node asked for a timeout in the past after handling it"
                );
            }
        }
        self.now = self.now.max(end);
    }

    /// Names of the running nodes.
    pub fn running(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.node.is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    /// True if `a` sees `b` alive.
    pub fn sees(&self, a: &str, b: &str) -> bool {
        self.nodes[self.idx(a)]
            .node
            .as_ref()
            .is_some_and(|n| n.is_alive(b))
    }

    /// True if every pair of the named nodes has a live direct session both ways.
    pub fn full_mesh(&self, names: &[String]) -> bool {
        names
            .iter()
            .all(|a| names.iter().all(|b| a == b || self.sees(a, b)))
    }

    /// Runs until `cond` holds (checked every `step`) or `limit` passes; returns the time taken.
    pub fn run_until_cond(
        &mut self,
        limit: Duration,
        step: Duration,
        mut cond: impl FnMut(&SimNet) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now - start <= limit {
            if cond(self) {
                return Some(self.now - start);
            }
            self.run_for(step);
        }
        None
    }
}
