//! The node's IPv6 VIP path: Neighbour Solicitations for a VIP answered
//! locally with its virtual MAC, Neighbour Discovery that would teach a
//! holder's own MAC rewritten, and duplicate address detection kept from ever
//! failing on a holder (PROTOCOL §7.1).

use super::vip::VipVerdict;
use super::Node;
use crate::switch::{
    build_neighbour_advertisement, rewrite_nd_link_layer, EthernetFrame, MacAddr, NdMessage,
};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

/// The address an ND message claims a link-layer address for: a
/// solicitation's source (unless `::`), an advertisement's target.
fn claimed(nd: &NdMessage) -> Option<Ipv6Addr> {
    match nd {
        NdMessage::Solicitation(ns) if !ns.src_ip.is_unspecified() => Some(ns.src_ip),
        NdMessage::Solicitation(_) => None,
        NdMessage::Advertisement(na) => Some(na.target),
    }
}

/// The link-layer address an ND message carries for its claimed address.
fn carried(nd: &NdMessage) -> Option<MacAddr> {
    match nd {
        NdMessage::Solicitation(ns) => ns.source_ll,
        NdMessage::Advertisement(na) => na.target_ll,
    }
}

impl Node {
    /// An ND message read from the local TAP. `Some` if the VIP path took it
    /// (answered, dropped, or rewritten and handed on); `None` if it is no
    /// VIP matter.
    pub(super) fn vip_nd_from_tap(
        &mut self,
        now: Instant,
        frame: &[u8],
        nd: &NdMessage,
    ) -> Option<VipVerdict> {
        if let Ok(eth) = EthernetFrame::parse(frame) {
            if let Some(v) = self.owner_from_nd(now, &eth, nd) {
                return Some(v);
            }
        }
        if let NdMessage::Solicitation(ns) = nd {
            let target = IpAddr::V6(ns.target);
            if let Some(vmac) = self.vip.mac_for_vip(&target) {
                if ns.src_ip.is_unspecified() && self.vip.is_local(&target) {
                    // Our own kernel's duplicate address detection for a VIP we
                    // hold: no other holder may answer it, or the VIP would be
                    // left "dadfailed".
                    self.vip.counters_mut().nd_dad_dropped += 1;
                    tracing::debug!(vip = %target, "dropped our own DAD probe for the VIP");
                    return Some(VipVerdict::Consumed);
                }
                // Every node answers for every VIP, with the virtual MAC, locally
                // (a DAD probe by a host that is no holder learns the address is taken).
                let reply = build_neighbour_advertisement(ns, vmac);
                self.vip.counters_mut().nd_answered += 1;
                self.queue_tap_frame(reply);
                return Some(VipVerdict::Consumed);
            }
        }
        let copy = self.rewrite_nd_claim(frame, nd)?;
        Some(
            self.vip_to_virtual(now, &copy)
                .unwrap_or(VipVerdict::Rewritten(copy)),
        )
    }

    /// An ND message from peer `from`. `Some(Consumed)` if it must not reach
    /// our TAP (a DAD probe or an advertisement for a VIP we hold: our kernel
    /// would mark the VIP "dadfailed" or see its address advertised by
    /// another); `Some(Rewritten)` with the sender's MAC replaced by the
    /// virtual MAC (from nodes that did not rewrite it); `None` otherwise.
    pub(super) fn vip_nd_from_peer(
        &mut self,
        from: &str,
        frame: &[u8],
        nd: &NdMessage,
    ) -> Option<VipVerdict> {
        let ours = |ip: Ipv6Addr| self.vip.is_local(&IpAddr::V6(ip));
        let keep_out = match nd {
            NdMessage::Solicitation(ns) => ns.src_ip.is_unspecified() && ours(ns.target),
            NdMessage::Advertisement(na) => ours(na.target),
        };
        if keep_out {
            self.vip.counters_mut().nd_dad_dropped += 1;
            tracing::debug!(peer = %from, ?nd, "kept ND about a VIP we hold from our TAP");
            return Some(VipVerdict::Consumed);
        }
        self.rewrite_nd_claim(frame, nd).map(VipVerdict::Rewritten)
    }

    /// A copy of `frame` with the Ethernet source and link-layer option set
    /// to the virtual MAC, if its message claims a VIP with another MAC.
    fn rewrite_nd_claim(&mut self, frame: &[u8], nd: &NdMessage) -> Option<Vec<u8>> {
        let vip = IpAddr::V6(claimed(nd)?);
        let vmac = self.vip.mac_for_vip(&vip)?;
        let src = EthernetFrame::parse(frame).ok()?.src();
        if src == vmac && carried(nd).is_none_or(|m| m == vmac) {
            return None;
        }
        let mut copy = frame.to_vec();
        if !rewrite_nd_link_layer(&mut copy, vmac) {
            return None;
        }
        self.vip.counters_mut().nd_rewritten += 1;
        tracing::trace!(%vip, "rewrote ND to the virtual MAC");
        Some(copy)
    }
}
