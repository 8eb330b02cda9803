//! The sans-IO Ethernet switch: decides, frame by frame, where a frame read from
//! the TAP or received from a peer goes, learning MAC locations and IP-to-MAC
//! bindings on the way and answering ARP/ND for stations behind live peers.
//!
//! Everything here is pure and deterministic: no I/O, no clock (the caller
//! passes `now`), no threads. The owner (the driver) feeds frames in, acts on
//! the returned [`Delivery`], writes the reply frames into the TAP, drains
//! [`SwitchEvent`]s with [`Switch::poll_event`] and calls [`Switch::expire`]
//! periodically.
//!
//! Flooding cannot loop: a frame from a peer is only ever delivered to the
//! local TAP, never forwarded to another peer.

pub mod arp;
pub mod flow;
pub mod frame;
pub mod mac;
pub mod mac_table;
pub mod nd;
pub mod nd_rewrite;
pub mod neighbours;
pub mod probe;
pub mod types;

#[cfg(test)]
mod mac_table_tests;
#[cfg(test)]
mod switch_answer_tests;
#[cfg(test)]
mod switch_tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

pub use arp::{build_arp_reply, build_gratuitous_arp, rewrite_arp_sender_mac, ArpOp, ArpPacket};
pub use flow::{flow_key, FlowKey};
pub use frame::{
    set_dst_mac, set_src_mac, EthernetFrame, FrameError, ETHERTYPE_ARP, ETHERTYPE_IPV4,
    ETHERTYPE_IPV6, ETH_HEADER_LEN,
};
pub use mac::{MacAddr, MacParseError, MacParseReason};
pub use mac_table::{Learned, MacEntry, MacTable, MacTableLimits, Port, PortRef, StaticChange};
pub use nd::{
    build_neighbour_advertisement, parse_nd, NdMessage, NeighbourAdvertisement,
    NeighbourSolicitation,
};
pub use nd_rewrite::rewrite_nd_link_layer;
pub use neighbours::{NeighbourEntry, NeighbourLearned, NeighbourTable};
pub use probe::{build_arp_probe, build_neighbour_probe, probe_source_ip};
pub use types::{
    Delivery, SwitchConfig, SwitchCounters, SwitchEvent, DEFAULT_MAX_FRAME_LEN,
    DEFAULT_NEIGHBOUR_EXPIRE, DEFAULT_NEIGHBOUR_MAX,
};

/// The switch. See the module documentation.
#[derive(Debug)]
pub struct Switch {
    cfg: SwitchConfig,
    macs: MacTable,
    neighbours: NeighbourTable,
    counters: SwitchCounters,
    events: VecDeque<SwitchEvent>,
    /// Ports with a queued [`SwitchEvent::CapHit`].
    cap_pending: Vec<Port>,
    /// MACs never learned as stations (the VIPs' virtual MACs).
    reserved: HashSet<MacAddr>,
}

/// Who knows the answer to an ARP request / solicitation.
enum Answer {
    /// Nobody we know of: let the request through.
    Unknown,
    /// The station is behind the TAP: it answers itself.
    Local,
    /// The station is behind a live peer: answer with its MAC.
    Mac(MacAddr),
}

impl Switch {
    /// A switch with empty tables.
    pub fn new(cfg: SwitchConfig) -> Self {
        Switch {
            macs: MacTable::new(cfg.macs),
            neighbours: NeighbourTable::new(cfg.neighbour_expire, cfg.neighbour_max),
            cfg,
            counters: SwitchCounters::default(),
            events: VecDeque::new(),
            cap_pending: Vec::new(),
            reserved: HashSet::new(),
        }
    }

    /// A frame read from the local TAP. `alive(peer)` tells whether a peer has
    /// a live session.
    ///
    /// Learns the source as [`Port::Local`] and ARP/ND sender bindings. If
    /// `answer_arp` is on, a broadcast ARP request (not a probe with sender
    /// 0.0.0.0, not an announcement) or a multicast Neighbour Solicitation
    /// (not from `::`) for an IP whose MAC is known and behind a live peer is
    /// answered by pushing a reply frame onto `replies` (to be written into the
    /// TAP) and dropped; one for a station behind the TAP is dropped (it
    /// answers itself). Otherwise: unicast to a MAC behind a live peer →
    /// [`Delivery::Peer`]; unicast to a MAC behind the TAP → [`Delivery::Drop`]
    /// (counted as looped); broadcast, multicast, unknown unicast, or unicast
    /// to a MAC behind a dead peer → [`Delivery::Flood`].
    ///
    /// Allocates only for replies, for table changes, and for the peer name
    /// of a [`Delivery::Peer`].
    pub fn from_tap(
        &mut self,
        now: Instant,
        frame: &[u8],
        alive: impl Fn(&str) -> bool,
        replies: &mut Vec<Vec<u8>>,
    ) -> Delivery {
        let Some(eth) = self.validate(frame, PortRef::Local) else {
            return Delivery::Drop;
        };
        self.learn_mac(eth.src(), PortRef::Local, now);
        match eth.ethertype() {
            ETHERTYPE_ARP => {
                let Some(arp) = self.arp(&eth, PortRef::Local, now) else {
                    return Delivery::Drop;
                };
                if self.cfg.answer_arp
                    && arp.op == ArpOp::Request
                    && eth.dst().is_broadcast()
                    && !arp.is_probe()
                    && !arp.is_announcement()
                {
                    match self.answer_for(IpAddr::V4(arp.target_ip), now, &alive) {
                        Answer::Unknown => {}
                        Answer::Local => {
                            self.counters.local_target += 1;
                            return Delivery::Drop;
                        }
                        Answer::Mac(mac) => {
                            replies.push(build_arp_reply(&arp, eth.src(), mac));
                            self.counters.arp_answered += 1;
                            return Delivery::Drop;
                        }
                    }
                }
            }
            ETHERTYPE_IPV6 => {
                if let Some(NdMessage::Solicitation(ns)) = self.nd(&eth, PortRef::Local, now) {
                    if self.cfg.answer_arp
                        && eth.dst().is_multicast()
                        && !ns.src_ip.is_unspecified()
                    {
                        match self.answer_for(IpAddr::V6(ns.target), now, &alive) {
                            Answer::Unknown => {}
                            Answer::Local => {
                                self.counters.local_target += 1;
                                return Delivery::Drop;
                            }
                            Answer::Mac(mac) => {
                                replies.push(build_neighbour_advertisement(&ns, mac));
                                self.counters.nd_answered += 1;
                                return Delivery::Drop;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        self.forward(&eth, &alive)
    }

    /// Where a valid frame from the TAP goes, by its destination.
    #[inline]
    fn forward(&mut self, eth: &EthernetFrame<'_>, alive: &impl Fn(&str) -> bool) -> Delivery {
        let dst = eth.dst();
        if dst.is_multicast() {
            self.counters.flooded += 1;
            return Delivery::Flood;
        }
        match self.macs.lookup(&dst) {
            Some(Port::Peer(name)) if alive(name) => {
                self.counters.unicast += 1;
                Delivery::Peer(name.clone())
            }
            Some(Port::Peer(_)) => {
                self.counters.dead_peer += 1;
                self.counters.flooded += 1;
                Delivery::Flood
            }
            Some(Port::Local) => {
                self.counters.looped += 1;
                tracing::debug!(peer = "(local)", %dst, "switch: dropped frame to a local MAC");
                Delivery::Drop
            }
            None => {
                self.counters.unknown_unicast += 1;
                self.counters.flooded += 1;
                Delivery::Flood
            }
        }
    }

    /// A frame received from peer `from`: validated, its source learned as
    /// `Peer(from)` (a MAC seen elsewhere moves at once), its ARP/ND bindings
    /// learned, then [`Delivery::Tap`] (everything valid is delivered locally
    /// and nothing is forwarded to other peers, so flooding cannot loop) or
    /// [`Delivery::Drop`].
    pub fn from_peer(&mut self, now: Instant, from: &str, frame: &[u8]) -> Delivery {
        let port = PortRef::Peer(from);
        let Some(eth) = self.validate(frame, port) else {
            return Delivery::Drop;
        };
        self.learn_mac(eth.src(), port, now);
        let valid = match eth.ethertype() {
            ETHERTYPE_ARP => self.arp(&eth, port, now).is_some(),
            ETHERTYPE_IPV6 => {
                self.nd(&eth, port, now);
                true
            }
            _ => true,
        };
        if !valid {
            return Delivery::Drop;
        }
        self.counters.delivered += 1;
        Delivery::Tap
    }

    /// Checks length and source MAC; counts and logs a drop.
    #[inline]
    fn validate<'f>(&mut self, frame: &'f [u8], from: PortRef<'_>) -> Option<EthernetFrame<'f>> {
        if frame.len() > self.cfg.max_frame_len {
            self.counters.oversized += 1;
            tracing::debug!(peer = %label(from), len = frame.len(), "switch: dropped oversized frame");
            return None;
        }
        let Ok(eth) = EthernetFrame::parse(frame) else {
            self.counters.runt += 1;
            tracing::debug!(peer = %label(from), len = frame.len(), "switch: dropped runt frame");
            return None;
        };
        if !eth.src().is_unicast() {
            self.counters.multicast_source += 1;
            tracing::debug!(peer = %label(from), src = %eth.src(), "switch: dropped frame with a group or zero source MAC");
            return None;
        }
        Some(eth)
    }

    /// Learns a source MAC and queues what changed.
    #[inline]
    fn learn_mac(&mut self, mac: MacAddr, port: PortRef<'_>, now: Instant) {
        if !self.reserved.is_empty() && self.reserved.contains(&mac) {
            return;
        }
        match self.macs.learn(mac, port, now) {
            Learned::Refreshed | Learned::Invalid => {}
            Learned::New => {
                if let Some(entry) = self.macs.get(&mac) {
                    let port = entry.port.clone();
                    self.push_event(SwitchEvent::MacUp { mac, port });
                }
            }
            Learned::Moved { from } => {
                self.counters.mac_moves += 1;
                let to = port.to_port();
                tracing::debug!(%mac, %from, %to, "switch: MAC moved");
                self.push_event(SwitchEvent::MacMoved { mac, from, to });
            }
            Learned::Pinned => self.counters.pinned_source += 1,
            Learned::Refused => {
                self.counters.cap_hits += 1;
                self.cap_hit(port);
            }
        }
    }

    /// Counts a cap refusal at `port`, queueing a [`SwitchEvent::CapHit`] if
    /// none is pending for it.
    fn cap_hit(&mut self, port: PortRef<'_>) {
        if self.cap_pending.iter().any(|p| port.is(p)) {
            return;
        }
        let owned = port.to_port();
        let event = SwitchEvent::CapHit {
            port: owned.clone(),
        };
        if self.push_event(event) {
            self.cap_pending.push(owned);
        }
    }

    /// Parses an ARP frame and learns its sender binding; `None` (counted) if malformed.
    fn arp(
        &mut self,
        eth: &EthernetFrame<'_>,
        from: PortRef<'_>,
        now: Instant,
    ) -> Option<ArpPacket> {
        match ArpPacket::parse(eth.payload()) {
            Ok(arp) => {
                self.learn_neighbour(IpAddr::V4(arp.sender_ip), arp.sender_mac, from, now);
                Some(arp)
            }
            Err(_) => {
                self.counters.malformed_arp += 1;
                tracing::debug!(peer = %label(from), src = %eth.src(), "switch: dropped malformed ARP");
                None
            }
        }
    }

    /// Parses a Neighbour Discovery message and learns the binding it carries.
    fn nd(
        &mut self,
        eth: &EthernetFrame<'_>,
        from: PortRef<'_>,
        now: Instant,
    ) -> Option<NdMessage> {
        let msg = parse_nd(eth)?;
        match msg {
            NdMessage::Solicitation(ns) => {
                if let Some(mac) = ns.source_ll {
                    self.learn_neighbour(IpAddr::V6(ns.src_ip), mac, from, now);
                }
            }
            NdMessage::Advertisement(na) => {
                if let Some(mac) = na.target_ll {
                    self.learn_neighbour(IpAddr::V6(na.target), mac, from, now);
                }
            }
        }
        Some(msg)
    }

    fn learn_neighbour(&mut self, ip: IpAddr, mac: MacAddr, from: PortRef<'_>, now: Instant) {
        if let NeighbourLearned::Changed { old } = self.neighbours.learn(ip, mac, now) {
            self.counters.neighbour_conflicts += 1;
            tracing::warn!(%ip, old_mac = %old, new_mac = %mac, peer = %label(from), "neighbour conflict: IP now claimed by another MAC");
            self.push_event(SwitchEvent::NeighbourConflict { ip, old, new: mac });
        }
    }

    /// Who can answer for `ip`.
    fn answer_for(&self, ip: IpAddr, now: Instant, alive: &impl Fn(&str) -> bool) -> Answer {
        let Some(mac) = self.neighbours.lookup(&ip, now) else {
            return Answer::Unknown;
        };
        match self.macs.lookup(&mac) {
            Some(Port::Local) => Answer::Local,
            Some(Port::Peer(name)) if alive(name) => Answer::Mac(mac),
            _ => Answer::Unknown,
        }
    }

    /// Queues an event unless the queue is full; returns whether it was queued.
    fn push_event(&mut self, event: SwitchEvent) -> bool {
        let limit = self.cfg.macs.max_total.saturating_mul(2).max(1 << 16);
        if self.events.len() >= limit {
            self.counters.events_dropped += 1;
            return false;
        }
        self.events.push_back(event);
        true
    }

    /// Peer `peer` lost its session: forgets the MACs learned behind it
    /// (queueing [`SwitchEvent::MacDown`] for each); its static ones stay.
    pub fn peer_down(&mut self, peer: &str) {
        let port = PortRef::Peer(peer);
        let gone = self.macs.remove_learned(port);
        if gone.is_empty() {
            return;
        }
        let owned = port.to_port();
        for mac in gone {
            self.push_event(SwitchEvent::MacDown {
                mac,
                port: owned.clone(),
            });
        }
    }

    /// Makes `macs` the static set of `port`, queueing [`SwitchEvent::MacUp`],
    /// [`SwitchEvent::MacMoved`] and [`SwitchEvent::MacDown`] for the changes.
    pub fn set_static(&mut self, port: Port, macs: &[MacAddr]) {
        let change = self.macs.set_static(port.clone(), macs);
        for mac in change.removed {
            self.push_event(SwitchEvent::MacDown {
                mac,
                port: port.clone(),
            });
        }
        let replaced: HashMap<MacAddr, Port> = change.replaced.into_iter().collect();
        for mac in change.added {
            let event = match replaced.get(&mac) {
                None => SwitchEvent::MacUp {
                    mac,
                    port: port.clone(),
                },
                Some(from) if *from == port => continue,
                Some(from) => SwitchEvent::MacMoved {
                    mac,
                    from: from.clone(),
                    to: port.clone(),
                },
            };
            self.push_event(event);
        }
    }

    /// Ages the tables: learned MACs silent for `MACExpire` go (queueing
    /// [`SwitchEvent::MacDown`]), and stale IP-to-MAC bindings. Call periodically.
    pub fn expire(&mut self, now: Instant) {
        for (mac, port) in self.macs.expire(now) {
            self.push_event(SwitchEvent::MacDown { mac, port });
        }
        self.neighbours.expire(now);
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<SwitchEvent> {
        let event = self.events.pop_front()?;
        if let SwitchEvent::CapHit { port } = &event {
            self.cap_pending.retain(|p| p != port);
        }
        Some(event)
    }

    /// The MAC table.
    pub fn macs(&self) -> &MacTable {
        &self.macs
    }

    /// The IP-to-MAC bindings.
    pub fn neighbours(&self) -> &NeighbourTable {
        &self.neighbours
    }

    /// The frame counters.
    pub fn counters(&self) -> &SwitchCounters {
        &self.counters
    }

    /// The settings in force.
    pub fn config(&self) -> &SwitchConfig {
        &self.cfg
    }

    /// Makes `macs` the set of addresses never learned as stations (the
    /// virtual MACs of VIPs, which several holders send from): frames from
    /// them are still forwarded, but their source is not learned. Learned
    /// entries for them are removed (queueing [`SwitchEvent::MacDown`]);
    /// static ones stay.
    pub fn set_reserved(&mut self, macs: &[MacAddr]) {
        self.reserved = macs.iter().copied().collect();
        for &mac in macs {
            if let Some(port) = self.macs.forget(&mac) {
                self.push_event(SwitchEvent::MacDown { mac, port });
            }
        }
    }

    /// Applies new settings (on reload). Lower caps refuse new entries but evict none.
    pub fn reconfigure(&mut self, cfg: SwitchConfig) {
        self.macs.set_limits(cfg.macs);
        self.neighbours
            .set_limits(cfg.neighbour_expire, cfg.neighbour_max);
        self.cfg = cfg;
    }
}

/// A port's name for logs.
fn label(port: PortRef<'_>) -> &str {
    match port {
        PortRef::Local => "(local)",
        PortRef::Peer(name) => name,
    }
}
