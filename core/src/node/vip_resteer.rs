//! The node's side of a VIP owner that vanished (PROTOCOL §7.6): the
//! driver's word that a station left the bridge holding the TAP, frames held
//! while fast probes confirm it, and frames for the VIP that still arrive
//! after the owner is gone sent on, once, to another live holder.

use super::vip::VipVerdict;
use super::Node;
use crate::switch::{flow_key, parse_nd, set_dst_mac, EthernetFrame, FlowKey, MacAddr};
use crate::vip::resteer_mac;
use std::net::IpAddr;
use std::time::Instant;

/// Most frames held per VIP while its owner's vanish is being confirmed
/// (20 ms of a busy flow); more are delivered as usual.
pub(super) const MAX_HELD: usize = 1024;

impl Node {
    /// The station with MAC `mac` left the local side (the driver saw its
    /// bridge forwarding entry deleted on the bridge that holds our TAP).
    /// If it owned one of our VIPs under a presence check, fast probes
    /// confirm it at once: unanswered within 20 ms, the VIP is withdrawn as
    /// a failing presence check would withdraw it, and frames meanwhile wait.
    pub fn station_left(&mut self, now: Instant, mac: [u8; 6]) {
        let mac = MacAddr(mac);
        let vips = self.vip.owner_vanished(mac, now);
        if vips.is_empty() {
            tracing::trace!(station = %mac, "a station left the local bridge");
            return;
        }
        for vip in &vips {
            tracing::info!(%vip, owner = %mac,
                "the VIP's owner left the local bridge; confirming with fast probes");
        }
        self.tick_vips(now);
        self.finish(now);
    }

    /// A frame for our VIP `vip` from a peer: held while a vanish of its
    /// owner is being confirmed, sent on to another holder once the owner is
    /// gone. `None`: deliver it as usual.
    pub(super) fn resteer_from_peer(
        &mut self,
        now: Instant,
        from: &str,
        vip: IpAddr,
        eth: &EthernetFrame<'_>,
        frame: &[u8],
    ) -> Option<VipVerdict> {
        let suspected = self.vip.owner_suspected(&vip);
        if !suspected && !self.vip.owner_absent(&vip) {
            return None;
        }
        let key = flow_key(eth);
        if !matches!(key, FlowKey::Ip { .. }) || parse_nd(eth).is_some() {
            return None;
        }
        if suspected {
            let held = self.vip_held.entry(vip).or_default();
            if held.len() >= MAX_HELD {
                return None;
            }
            held.push((from.to_string(), frame.to_vec()));
            self.vip.counters_mut().vanish_held += 1;
            return Some(VipVerdict::Consumed);
        }
        self.resteer(now, vip, &key, frame);
        Some(VipVerdict::Consumed)
    }

    /// Sends a frame for our VIP `vip`, whose owner is gone here, to the
    /// holder a sender would pick without us, at the VIP's re-steer MAC.
    fn resteer(&mut self, now: Instant, vip: IpAddr, key: &FlowKey, frame: &[u8]) {
        let target = self.vip.resteer_target(now, &vip, key);
        let (Some(peer), Some(vmac)) = (target, self.vip.mac_for_vip(&vip)) else {
            self.vip.counters_mut().resteer_dropped += 1;
            tracing::debug!(%vip, "the VIP's owner is gone here and no other holder takes it; dropped a frame");
            return;
        };
        let mut copy = frame.to_vec();
        set_dst_mac(&mut copy, resteer_mac(vmac));
        if self.send_frame(now, &peer, &copy) {
            self.vip.counters_mut().resteered += 1;
            self.note_frame_sent(now, &peer);
        } else {
            self.vip.counters_mut().resteer_dropped += 1;
        }
    }

    /// A frame a holder re-steered to us (its destination is a re-steer MAC):
    /// delivered to our owner of the VIP if it is there, else dropped —
    /// never sent on, so it cannot loop. `None`: not a re-steered frame.
    pub(super) fn resteered_in(
        &mut self,
        eth: &EthernetFrame<'_>,
        frame: &[u8],
    ) -> Option<VipVerdict> {
        let vip = self.vip.vip_for_resteer_mac(&eth.dst())?;
        let vmac = self.vip.mac_for_vip(&vip)?;
        let here = self.vip.is_local(&vip)
            && !self.vip.owner_absent(&vip)
            && !self.vip.owner_suspected(&vip);
        if here {
            let mut copy = self.spare.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(frame);
            // queue_tap_frame gives it the owner's MAC (or the TAP's).
            set_dst_mac(&mut copy, vmac);
            self.vip.counters_mut().resteer_delivered += 1;
            self.queue_tap_frame(copy);
        } else {
            self.vip.counters_mut().resteer_dropped += 1;
            tracing::debug!(%vip, "a frame re-steered to us for a VIP we cannot deliver; dropped");
        }
        Some(VipVerdict::Consumed)
    }

    /// Frames held for VIPs whose vanish is no longer being confirmed go
    /// their way: to the owner (it answered) or on to another holder.
    pub(super) fn release_held(&mut self, now: Instant) {
        if self.vip_held.is_empty() {
            return;
        }
        let done: Vec<IpAddr> = self
            .vip_held
            .keys()
            .filter(|v| !self.vip.owner_suspected(v))
            .copied()
            .collect();
        for vip in done {
            for (from, frame) in self.vip_held.remove(&vip).unwrap_or_default() {
                self.frame_from_peer(now, &from, &frame);
            }
        }
    }
}
