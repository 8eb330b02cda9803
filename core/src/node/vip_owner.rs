//! The node's side of a VIP's local owner (PROTOCOL §7.4): the station on
//! our side of the TAP that holds one of our VIPs (our own stack, a container
//! on a bridge with the TAP, a LAN host) is learned from its ARP/ND and
//! probed for; steered frames and answers to its own questions are delivered
//! to its MAC; its presence (`HealthCheck = VIP presence`) offers or
//! withdraws the VIP.

use super::vip::VipVerdict;
use super::Node;
use crate::switch::{
    build_arp_probe, build_neighbour_probe, ArpOp, ArpPacket, EthernetFrame, MacAddr, NdMessage,
};
use crate::vip::OwnerClaim;
use std::net::IpAddr;
use std::time::Instant;

impl Node {
    /// Where frames for our VIP `vip` go on our side: its owner's MAC, else
    /// the TAP's own (a VIP on the TAP itself, before it answered a probe).
    pub(super) fn delivery_mac(&self, vip: &IpAddr) -> Option<MacAddr> {
        self.vip.owner_mac(vip).or(self.tap_mac)
    }

    /// Timers of our VIPs: `vip-down` after a withdrawal's linger, owner and
    /// presence probes into the TAP.
    pub(super) fn tick_vips(&mut self, now: Instant) {
        self.vip.tick(now);
        if !self.shutting_down {
            let (due, changed) = self.vip.owner_probes(now);
            for vip in due {
                let Some(vmac) = self.vip.mac_for_vip(&vip) else {
                    continue;
                };
                // From the virtual MAC, deliberately: the answer must come back
                // out of the TAP to us, and a bridge would hand a frame for the
                // TAP's own MAC to the host's stack instead; the virtual MAC is
                // the one we answer ARP/ND for the VIP with, so a bridge already
                // has it behind the TAP port and no host learns anything new.
                let probe = match vip {
                    IpAddr::V4(v4) => build_arp_probe(vmac, v4),
                    IpAddr::V6(v6) => build_neighbour_probe(vmac, v6),
                };
                tracing::trace!(%vip, "probing for the VIP's owner on the local side");
                self.queue_tap_frame(probe);
            }
            for vip in changed {
                self.presence_changed(vip);
            }
        }
        self.release_held(now);
        self.drain_vip_events();
    }

    /// An ARP frame from the TAP: a station claiming one of our VIPs is its
    /// owner (learned, refreshed, or refused as a second one). `Some` if the
    /// frame answered our probe and goes no further.
    pub(super) fn owner_from_arp(
        &mut self,
        now: Instant,
        eth: &EthernetFrame<'_>,
        arp: &ArpPacket,
    ) -> Option<VipVerdict> {
        let vip = IpAddr::V4(arp.sender_ip);
        self.owner_claim(now, vip, arp.sender_mac)?;
        let ours = arp.op == ArpOp::Reply
            && arp.target_ip.is_unspecified()
            && self.vip.mac_for_vip(&vip) == Some(eth.dst());
        ours.then_some(VipVerdict::Consumed)
    }

    /// The same for Neighbour Discovery: a solicitation from one of our VIPs
    /// or an advertisement of one, with the link-layer address it carries.
    pub(super) fn owner_from_nd(
        &mut self,
        now: Instant,
        eth: &EthernetFrame<'_>,
        nd: &NdMessage,
    ) -> Option<VipVerdict> {
        let (vip, mac) = match nd {
            NdMessage::Solicitation(ns) if !ns.src_ip.is_unspecified() => {
                (ns.src_ip, ns.source_ll.unwrap_or(eth.src()))
            }
            NdMessage::Solicitation(_) => return None,
            NdMessage::Advertisement(na) => (na.target, na.target_ll.unwrap_or(eth.src())),
        };
        let vip = IpAddr::V6(vip);
        self.owner_claim(now, vip, mac)?;
        // An advertisement to the virtual MAC answers our probe (nobody else
        // solicits from it on this side); no other holder needs it.
        let ours = matches!(nd, NdMessage::Advertisement(_))
            && self.vip.mac_for_vip(&vip) == Some(eth.dst());
        ours.then_some(VipVerdict::Consumed)
    }

    /// `mac` claims our VIP `vip`. `None` if `vip` is not ours or `mac`
    /// cannot be a station's.
    fn owner_claim(&mut self, now: Instant, vip: IpAddr, mac: MacAddr) -> Option<()> {
        if !self.vip.is_local(&vip)
            || !mac.is_unicast()
            || mac.is_zero()
            || self.vip.is_virtual_mac(&mac)
        {
            return None;
        }
        let (claim, changed) = self.vip.owner_claim(vip, mac, now)?;
        match claim {
            OwnerClaim::Confirmed => {}
            OwnerClaim::Learned => {
                tracing::info!(%vip, owner = %mac, "learned the VIP's owner on the local side");
            }
            OwnerClaim::Moved { from } => {
                tracing::info!(%vip, owner = %mac, old = %from, "the VIP's owner on the local side moved");
            }
            OwnerClaim::Conflict { owner, log } => {
                if log {
                    tracing::warn!(%vip, %owner, refused = %mac,
                        conflicts = self.vip.counters().owner_conflicts,
                        "two stations on the local side answer for the VIP; keeping the first (VIPOwner pins one)");
                }
            }
        }
        if changed {
            self.presence_changed(vip);
            self.finish(now);
        }
        self.release_held(now);
        Some(())
    }

    /// The presence verdict of our VIP `vip` changed: log it; our record says so.
    fn presence_changed(&mut self, vip: IpAddr) {
        match self.vip.owner_view(&vip) {
            Some(v) if v.present == Some(true) => tracing::info!(%vip,
                owner = %v.mac.map_or_else(|| "?".to_string(), |m| m.to_string()),
                "presence: a station on the local side answers for the VIP; offering it"),
            Some(_) => tracing::warn!(%vip,
                "presence: no station on the local side answers for the VIP; withdrawing it from the mesh"),
            None => {}
        }
        self.own.dirty = true;
        self.drain_vip_events();
    }
}
