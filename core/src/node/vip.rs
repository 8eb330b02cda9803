//! The node's VIP path: ARP for VIPs answered locally with the virtual MAC,
//! ARP that would teach a holder's real MAC rewritten (IPv6's Neighbour
//! Discovery likewise, in `vip_nd`), frames to a virtual MAC
//! steered per flow to one live holder, delivery on the holder, VIP state in
//! our record, and the acknowledged withdrawal of a graceful stop.

use super::{Event, Node};
use crate::switch::{
    build_arp_reply, flow_key, parse_nd, rewrite_arp_sender_mac, set_dst_mac, ArpOp, ArpPacket,
    EthernetFrame, FlowKey, MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV6,
};
use crate::vip::{SteerTarget, VipEvent};
use crate::wire::{ExtensionItem, Message, VipItem};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// After the last acknowledgement, frames already in flight still arrive.
const LEAVE_LINGER: Duration = Duration::from_millis(20);

/// What the VIP path did with a frame.
pub(super) enum VipVerdict {
    /// Handled entirely (answered, steered or dropped).
    Consumed,
    /// Not a VIP matter: the switch takes the frame as it is.
    Pass,
    /// The switch takes this rewritten copy instead.
    Rewritten(Vec<u8>),
}

/// A graceful stop in progress: our withdrawal must be acknowledged.
#[derive(Debug)]
pub(super) struct Leaving {
    version: u64,
    deadline: Instant,
    waiting: BTreeSet<String>,
    done_at: Option<Instant>,
    /// Past the deadline or acknowledged: no more timers needed.
    ready: bool,
}

fn src_ip(key: &FlowKey) -> Option<IpAddr> {
    match key {
        FlowKey::Ip { src, .. } => Some(*src),
        FlowKey::Mac { .. } => None,
    }
}

impl Node {
    /// The MAC of our TAP device (holders rewrite steered frames to it when
    /// no other owner of the VIP is known on their side).
    pub fn set_tap_mac(&mut self, mac: [u8; 6]) {
        self.tap_mac = Some(MacAddr(mac));
    }

    /// The VIP engine (holders, flows), for introspection.
    pub fn vip_engine(&self) -> &crate::vip::VipEngine {
        &self.vip
    }

    /// A health verdict for one of our VIPs (from the driver's checks).
    pub fn set_vip_health(&mut self, now: Instant, vip: IpAddr, healthy: bool) {
        if self.vip.set_health(vip, healthy, now) {
            if healthy {
                tracing::info!(%vip, "health check passes; offering the VIP again");
            } else {
                tracing::warn!(%vip, "health check fails; withdrawing the VIP from the mesh");
            }
            self.own.dirty = true;
            self.drain_vip_events();
            self.finish(now);
        }
    }

    pub(super) fn drain_vip_events(&mut self) {
        while let Some(ev) = self.vip.poll_event() {
            self.events.push_back(match ev {
                VipEvent::Up(v) => Event::VipUp { vip: v },
                VipEvent::Down(v) => Event::VipDown { vip: v },
            });
        }
    }

    /// A frame from the local TAP, before the switch sees it.
    pub(super) fn vip_from_tap(&mut self, now: Instant, frame: &[u8]) -> VipVerdict {
        let Ok(eth) = EthernetFrame::parse(frame) else {
            return VipVerdict::Pass;
        };
        if self.vip.vips().is_empty() {
            return VipVerdict::Pass;
        }
        if eth.ethertype() == ETHERTYPE_ARP {
            if let Some(Ok(arp)) = ArpPacket::from_frame(&eth) {
                if let Some(v) = self.owner_from_arp(now, &eth, &arp) {
                    return v;
                }
                let target = IpAddr::V4(arp.target_ip);
                if arp.op == ArpOp::Request {
                    if let Some(vmac) = self.vip.mac_for_vip(&target) {
                        // Every node answers for every VIP, with the virtual MAC, locally.
                        let reply = build_arp_reply(&arp, eth.src(), vmac);
                        self.vip.counters_mut().arp_answered += 1;
                        self.queue_tap_frame(reply);
                        return VipVerdict::Consumed;
                    }
                }
                if let Some(copy) = self.rewrite_vip_sender(frame, &arp) {
                    return self
                        .vip_to_virtual(now, &copy)
                        .unwrap_or(VipVerdict::Rewritten(copy));
                }
            }
        } else if eth.ethertype() == ETHERTYPE_IPV6 {
            if let Some(nd) = parse_nd(&eth) {
                if let Some(v) = self.vip_nd_from_tap(now, frame, &nd) {
                    return v;
                }
            }
        }
        if let Some(v) = self.vip_to_virtual(now, frame) {
            return v;
        }
        VipVerdict::Pass
    }

    /// Frames to a virtual MAC: steered (IP) or sent to every holder (ARP,
    /// Neighbour Discovery and other non-IP: a holder's kernel must get the
    /// answers to its questions).
    pub(super) fn vip_to_virtual(&mut self, now: Instant, frame: &[u8]) -> Option<VipVerdict> {
        let eth = EthernetFrame::parse(frame).ok()?;
        let vip = self.vip.vip_for_mac(&eth.dst())?;
        let key = flow_key(&eth);
        let targets = match key {
            FlowKey::Ip { .. } if parse_nd(&eth).is_none() => {
                self.vip.steer(now, vip, &key).into_iter().collect()
            }
            _ => self.vip.eligible_holders(&vip),
        };
        if targets.is_empty() {
            tracing::debug!(%vip, "no live holder for a frame to the VIP");
        }
        for t in targets {
            match t {
                SteerTarget::Local => self.queue_tap_frame(frame.to_vec()),
                SteerTarget::Peer(name) => {
                    if self.send_frame(now, &name, frame) {
                        self.note_frame_sent(now, &name);
                    }
                }
            }
        }
        Some(VipVerdict::Consumed)
    }

    /// An ARP frame whose sender IP is a VIP, with the sender MAC set to the
    /// virtual MAC (so no host ever learns a holder's own MAC for a VIP).
    fn rewrite_vip_sender(&mut self, frame: &[u8], arp: &ArpPacket) -> Option<Vec<u8>> {
        let vmac = self.vip.mac_for_vip(&IpAddr::V4(arp.sender_ip))?;
        if arp.sender_mac == vmac {
            return None;
        }
        let mut copy = frame.to_vec();
        if !rewrite_arp_sender_mac(&mut copy, vmac) {
            return None;
        }
        self.vip.counters_mut().arp_rewritten += 1;
        Some(copy)
    }

    /// A frame from peer `from`, before the switch sees it.
    pub(super) fn vip_from_peer(&mut self, now: Instant, from: &str, frame: &[u8]) -> VipVerdict {
        if self.vip.vips().is_empty() {
            return VipVerdict::Pass;
        }
        let Ok(eth) = EthernetFrame::parse(frame) else {
            return VipVerdict::Pass;
        };
        if let Some(v) = self.resteered_in(&eth, frame) {
            return v;
        }
        let mut rewritten = None;
        let nd = parse_nd(&eth);
        if eth.ethertype() == ETHERTYPE_ARP {
            if let Some(Ok(arp)) = ArpPacket::from_frame(&eth) {
                rewritten = self.rewrite_vip_sender(frame, &arp);
            }
        } else if let Some(nd) = nd {
            match self.vip_nd_from_peer(from, frame, &nd) {
                Some(VipVerdict::Rewritten(copy)) => rewritten = Some(copy),
                Some(other) => return other,
                None => {}
            }
        } else {
            // A flow a holder started from the VIP: its replies go back to it.
            let key = flow_key(&eth);
            if let Some(src) = src_ip(&key) {
                if self.vip.mac_for_vip(&src).is_some() {
                    self.vip.pin_reply(now, src, from, &key);
                }
            }
        }
        if let Some(vip) = self.vip.vip_for_mac(&eth.dst()) {
            if !self.vip.is_local(&vip) {
                self.vip.counters_mut().not_holder += 1;
                tracing::debug!(%vip, peer = %from, "frame for a VIP we do not hold");
                return VipVerdict::Consumed;
            }
            if let Some(v) = self.resteer_from_peer(now, from, vip, &eth, frame) {
                return v;
            }
            let mut copy = rewritten.unwrap_or_else(|| frame.to_vec());
            self.vip.owner_wanted(&vip, now);
            if let Some(mac) = self.delivery_mac(&vip) {
                set_dst_mac(&mut copy, mac);
            }
            return VipVerdict::Rewritten(copy);
        }
        match rewritten {
            Some(copy) => VipVerdict::Rewritten(copy),
            None => VipVerdict::Pass,
        }
    }

    /// Frames into our TAP addressed to a virtual MAC of ours get the MAC of
    /// the VIP's owner on our side, or our TAP's (a station drops frames for
    /// other MACs; a bridge hands frames for the TAP's MAC to the host).
    pub(super) fn rewrite_for_tap(&self, frame: &mut [u8]) {
        let Ok(eth) = EthernetFrame::parse(frame) else {
            return;
        };
        if let Some(vip) = self.vip.vip_for_mac(&eth.dst()) {
            if self.vip.is_local(&vip) {
                if let Some(mac) = self.delivery_mac(&vip) {
                    set_dst_mac(frame, mac);
                }
            }
        }
    }

    /// Our record's VIP items.
    pub(super) fn own_vip_items(&self) -> Vec<ExtensionItem> {
        self.vip
            .local_items()
            .into_iter()
            .map(ExtensionItem::Vip)
            .collect()
    }

    /// A peer's record lists these VIPs.
    pub(super) fn apply_peer_vips(&mut self, now: Instant, name: &str, items: &[VipItem]) {
        let alive = self.steerable(name);
        self.vip.apply_peer_items(name, items, alive, now);
        self.reserve_virtual_macs();
    }

    /// The switch must never learn a virtual MAC as a station.
    pub(super) fn reserve_virtual_macs(&mut self) {
        let macs: Vec<MacAddr> = self.vip.virtual_macs().copied().collect();
        self.switch.set_reserved(&macs);
    }

    // ------------------------------------------------------------ leaving

    /// Graceful stop, step one: withdraw our VIPs and wait (at most
    /// `ShutdownGrace`) until every live peer acknowledged the record that says
    /// so. Keep driving the node meanwhile (frames still flow); it emits
    /// [`Event::ReadyToLeave`] when the driver may call [`Node::shutdown`].
    /// Calling it again while leaving does nothing.
    pub fn begin_leave(&mut self, now: Instant) {
        if self.leaving.is_some() {
            return;
        }
        let has_vips = self.vip.local_vips().next().is_some();
        self.vip.withdraw_all(now);
        self.drain_vip_events();
        self.own.dirty = true;
        self.finish(now);
        let waiting: BTreeSet<String> = if has_vips {
            self.peers
                .values()
                .filter(|p| p.alive)
                .map(|p| p.name.to_string())
                .collect()
        } else {
            BTreeSet::new()
        };
        if !waiting.is_empty() {
            tracing::info!(
                peers = waiting.len(),
                "withdrawing VIPs; waiting for acknowledgements"
            );
        }
        let done_at = waiting.is_empty().then_some(now);
        self.leaving = Some(Leaving {
            version: self.own.version,
            deadline: now + self.config.shutdown_grace,
            waiting,
            done_at,
            ready: false,
        });
        // Nobody to wait for: ready at once.
        self.tick_leave(now);
    }

    /// When the leave state needs a look again.
    pub(super) fn leave_timeout(&self) -> Option<Instant> {
        self.leaving
            .as_ref()
            .filter(|l| !l.ready)
            .map(|l| l.done_at.map_or(l.deadline, |d| d.min(l.deadline)))
    }

    /// Timer: once every live peer acknowledged (plus a short linger for
    /// frames in flight) or `ShutdownGrace` ran out, tells the driver it may
    /// proceed to [`Node::shutdown`] ([`Event::ReadyToLeave`], once).
    pub(super) fn tick_leave(&mut self, now: Instant) {
        let Some(l) = self.leaving.as_mut() else {
            return;
        };
        if l.ready || !(now >= l.deadline || l.done_at.is_some_and(|t| now >= t)) {
            return;
        }
        l.ready = true;
        let unacknowledged: Vec<String> = l.waiting.iter().cloned().collect();
        if !unacknowledged.is_empty() {
            tracing::warn!(missing = ?unacknowledged, "leaving without every acknowledgement");
        }
        self.events
            .push_back(Event::ReadyToLeave { unacknowledged });
    }

    /// A peer acknowledged one of our records.
    pub(super) fn on_record_ack(
        &mut self,
        now: Instant,
        from: &str,
        generation: u64,
        version: u64,
    ) {
        let Some(l) = self.leaving.as_mut() else {
            return;
        };
        if generation != self.own.generation || version < l.version {
            return;
        }
        if l.waiting.remove(from) && l.waiting.is_empty() {
            tracing::info!("every peer acknowledged the VIP withdrawal");
            l.done_at = Some(now + LEAVE_LINGER);
        }
    }

    /// A record came straight from its origin: tell it we have it.
    pub(super) fn ack_record(&mut self, from: &str, generation: u64, version: u64) {
        self.send_message(
            from,
            &Message::RecordAck {
                generation,
                version,
            },
        );
    }
}
