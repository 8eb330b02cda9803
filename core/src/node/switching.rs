//! The node's Ethernet side: frames from the local TAP and from peers go
//! through the [`Switch`]; MAC and subnet changes become script events; the
//! static subnets each node publishes in its record pin its MACs.

use super::{Event, Node};
use crate::name::NodeName;
use crate::subnet::{Subnet, SubnetAddr};
use crate::switch::{Delivery, MacAddr, Port, SwitchEvent};
use crate::wire::extension::{decode_extension, ExtensionItem};
use std::time::{Duration, Instant};

/// How often learned MACs and IP bindings are checked for expiry.
pub(super) const SWITCH_SWEEP: Duration = Duration::from_secs(1);
/// Least time between two "MAC table full" log lines.
const CAP_LOG_EVERY: Duration = Duration::from_secs(10);

/// Frames and bytes through the local TAP (the `MYSELF` line of `dump nodes`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TapStats {
    /// Frames read from the TAP.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames written to the TAP.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
}

impl Node {
    /// A frame read from the local TAP: answer it locally, send it to one
    /// peer, flood it, or drop it, as the switch decides.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        self.tap_stats.rx_packets += 1;
        self.tap_stats.rx_bytes += frame.len() as u64;
        match self.vip_from_tap(now, frame) {
            super::vip::VipVerdict::Consumed => {}
            super::vip::VipVerdict::Pass => self.switch_from_tap(now, frame),
            super::vip::VipVerdict::Rewritten(copy) => self.switch_from_tap(now, &copy),
        }
    }

    fn switch_from_tap(&mut self, now: Instant, frame: &[u8]) {
        let mut replies = std::mem::take(&mut self.reply_buf);
        let peers = &self.peers;
        let delivery = self.switch.from_tap(
            now,
            frame,
            |name| peers.get(name).is_some_and(|p| p.alive),
            &mut replies,
        );
        for reply in replies.drain(..) {
            self.queue_tap_frame(reply);
        }
        self.reply_buf = replies;
        match delivery {
            Delivery::Peer(name) => {
                if self.send_frame(now, &name, frame) {
                    self.note_frame_sent(now, &name);
                }
            }
            Delivery::Flood => {
                let names: Vec<NodeName> = self
                    .peers
                    .values()
                    .filter(|p| p.alive)
                    .map(|p| p.name.clone())
                    .collect();
                for name in names {
                    self.send_frame(now, &name, frame);
                }
            }
            Delivery::Tap | Delivery::Drop => {}
        }
        self.drain_switch_events(now);
    }

    /// A frame a peer sent us.
    pub(super) fn on_frame(&mut self, now: Instant, from: &str, frame: &[u8]) {
        if let Some(peer) = self.peers.get_mut(from) {
            peer.stats.rx_packets += 1;
            peer.stats.rx_bytes += frame.len() as u64;
        }
        self.frame_from_peer(now, from, frame);
    }

    /// A frame from peer `from` (counted already): the VIP path, then the switch.
    pub(super) fn frame_from_peer(&mut self, now: Instant, from: &str, frame: &[u8]) {
        let copy = match self.vip_from_peer(now, from, frame) {
            super::vip::VipVerdict::Consumed => return,
            super::vip::VipVerdict::Pass => None,
            super::vip::VipVerdict::Rewritten(copy) => Some(copy),
        };
        let frame = copy.as_deref().unwrap_or(frame);
        if let Delivery::Tap = self.switch.from_peer(now, from, frame) {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.extend_from_slice(frame);
            self.queue_tap_frame(buf);
        }
        self.drain_switch_events(now);
    }

    pub(super) fn queue_tap_frame(&mut self, mut frame: Vec<u8>) {
        if self.tap_out.len() >= super::limits::MAX_TAP_QUEUE {
            self.limit_counters.tap_queue_refused += 1;
            self.recycle(frame);
            return;
        }
        self.rewrite_for_tap(&mut frame);
        self.tap_stats.tx_packets += 1;
        self.tap_stats.tx_bytes += frame.len() as u64;
        self.tap_out.push_back(frame);
    }

    /// Next frame to write into the local TAP (hand the buffer back with
    /// [`Node::recycle`] once written).
    #[must_use]
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.tap_out.pop_front()
    }

    /// Frames through the local TAP so far.
    pub fn tap_stats(&self) -> &TapStats {
        &self.tap_stats
    }

    /// The switch (MAC table, IP bindings, counters), for introspection.
    pub fn switch(&self) -> &crate::switch::Switch {
        &self.switch
    }

    /// Periodic expiry of learned MACs and IP bindings.
    pub(super) fn sweep_switch(&mut self, now: Instant) {
        if now < self.next_switch_sweep {
            return;
        }
        self.next_switch_sweep = now + SWITCH_SWEEP;
        self.switch.expire(now);
        self.vip.expire(now);
        self.drain_switch_events(now);
    }

    /// Turns the switch's MAC changes into subnet events (for `subnet-up`/`subnet-down`).
    pub(super) fn drain_switch_events(&mut self, now: Instant) {
        while let Some(ev) = self.switch.poll_event() {
            match ev {
                SwitchEvent::MacUp { mac, port } => self.mac_event(true, mac, &port),
                SwitchEvent::MacDown { mac, port } => self.mac_event(false, mac, &port),
                SwitchEvent::MacMoved { mac, from, to } => {
                    tracing::info!(%mac, from = %from, to = %to, "MAC moved");
                    self.mac_event(false, mac, &from);
                    self.mac_event(true, mac, &to);
                }
                SwitchEvent::CapHit { port } => {
                    if self.cap_logged_at.is_none_or(|t| now >= t + CAP_LOG_EVERY) {
                        self.cap_logged_at = Some(now);
                        tracing::warn!(
                            port = %port,
                            hits = self.switch.counters().cap_hits,
                            "MAC table limit reached; not learning more addresses (MACTableMax / MACTableMaxPerNode)"
                        );
                    }
                }
                SwitchEvent::NeighbourConflict { .. } => {}
            }
        }
    }

    fn mac_event(&mut self, up: bool, mac: MacAddr, port: &Port) {
        let owner = match port {
            Port::Local => None,
            Port::Peer(name) => Some(name.clone()),
        };
        let subnet = Subnet::mac(mac.0);
        self.push_subnet_event(up, owner, subnet);
    }

    fn push_subnet_event(&mut self, up: bool, owner: Option<String>, subnet: Subnet) {
        let endpoint = owner
            .as_deref()
            .and_then(|o| self.peers.get(o))
            .and_then(|p| p.endpoint);
        self.events.push_back(if up {
            Event::SubnetUp {
                owner,
                subnet,
                endpoint,
            }
        } else {
            Event::SubnetDown {
                owner,
                subnet,
                endpoint,
            }
        });
    }

    /// Our own static subnets: pin our MACs, announce them (startup and reload).
    pub(super) fn apply_own_subnets(&mut self, old: &[Subnet]) {
        let new = self.config.subnets.clone();
        for s in old.iter().filter(|s| !new.contains(s)) {
            self.push_subnet_event(false, None, *s);
        }
        for s in new.iter().filter(|s| !old.contains(s)) {
            self.push_subnet_event(true, None, *s);
        }
        self.switch.set_static(Port::Local, &mac_subnets(&new));
        self.drain_switch_events_quietly();
        self.own.dirty = true;
    }

    /// The subnets a peer's record lists; applied when the record is accepted.
    pub(super) fn apply_peer_extension(&mut self, now: Instant, name: &str, extension: &[u8]) {
        let items = match decode_extension(extension) {
            Ok(items) => items,
            Err(err) => {
                tracing::warn!(node = %name, %err, "ignoring an undecodable record extension");
                return;
            }
        };
        let mut subnets = Vec::new();
        let mut vips = Vec::new();
        for item in items {
            match item {
                ExtensionItem::Subnet(text) => match text.parse::<Subnet>() {
                    Ok(s) if !subnets.contains(&s) => subnets.push(s),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(node = %name, %err, "ignoring a bad subnet"),
                },
                ExtensionItem::Vip(v) => vips.push(v),
                // Read when choosing a relay (relay.rs), from the record itself.
                ExtensionItem::NeighbourRtts(_) => {}
            }
        }
        let (subnets, vips) = self.strict_claims(name, subnets, vips);
        self.apply_peer_vips(now, name, &vips);
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let old = std::mem::replace(&mut peer.subnets, subnets.clone());
        // While its `host-up` waits, its subnets go up with it (announce.rs).
        let alive = peer.alive && peer.up_pending.is_none();
        if alive {
            for s in old.iter().filter(|s| !subnets.contains(s)) {
                self.push_subnet_event(false, Some(name.to_string()), *s);
            }
            for s in subnets.iter().filter(|s| !old.contains(s)) {
                self.push_subnet_event(true, Some(name.to_string()), *s);
            }
        }
        self.switch
            .set_static(Port::Peer(name.to_string()), &mac_subnets(&subnets));
        self.drain_switch_events_quietly();
    }

    /// Static pins produce MacUp/MacDown from the switch; the subnet events for
    /// static subnets are produced from the subnet lists instead, so drop these.
    fn drain_switch_events_quietly(&mut self) {
        while self.switch.poll_event().is_some() {}
    }

    /// `subnet-up` (or down) for each of a peer's static subnets.
    pub(super) fn push_static_subnet_events(&mut self, up: bool, name: &str) {
        let subnets = self
            .peers
            .get(name)
            .map(|p| p.subnets.clone())
            .unwrap_or_default();
        for s in subnets {
            self.push_subnet_event(up, Some(name.to_string()), s);
        }
    }

    /// A peer went down: forget the MACs learned behind it, `subnet-down` for
    /// those and for its static subnets.
    pub(super) fn peer_subnets_down(&mut self, now: Instant, name: &str) {
        self.vip.set_peer_alive(name, false, now);
        self.switch.peer_down(name);
        self.drain_switch_events(now);
        self.push_static_subnet_events(false, name);
    }

    /// Our record's extension: our static subnets.
    pub(super) fn own_extension_items(&self) -> Vec<ExtensionItem> {
        let mut items: Vec<ExtensionItem> = self
            .config
            .subnets
            .iter()
            .map(|s| ExtensionItem::Subnet(s.to_string()))
            .collect();
        items.extend(self.own_vip_items());
        items
    }

    /// Our configured VIPs (startup and reload).
    pub(super) fn apply_own_vips(&mut self, now: Instant) {
        self.vip.set_local(self.config.vips.clone(), now);
        self.reserve_virtual_macs();
        self.drain_vip_events();
        self.own.dirty = true;
        // Our VIPs make every pair a steering relation (or no longer).
        self.touch_all();
    }
}

fn mac_subnets(subnets: &[Subnet]) -> Vec<MacAddr> {
    subnets
        .iter()
        .filter_map(|s| match s.addr {
            SubnetAddr::Mac(m) => Some(MacAddr(m)),
            _ => None,
        })
        .collect()
}
