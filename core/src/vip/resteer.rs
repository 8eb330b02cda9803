//! When a local VIP's owner vanished from the holder's side (PROTOCOL §7.6):
//! the local side's word that a station left starts a fast confirmation,
//! and frames that still reach this holder for the VIP go on to another live
//! holder, once, addressed to the VIP's *re-steer MAC* so the receiver
//! delivers them and never sends them on again.

use super::{steer, Holder, Vip, VipEngine};
use crate::switch::{FlowKey, MacAddr};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// The re-steer MAC of virtual MAC `vmac`: its second byte XOR 0x03
/// (`02:6d:…` gives `02:6e:…`). Only on the wire between holders: the
/// receiver rewrites it to its owner's MAC before its TAP.
pub fn resteer_mac(vmac: MacAddr) -> MacAddr {
    let mut m = vmac.0;
    m[1] ^= 0x03;
    MacAddr(m)
}

impl VipEngine {
    /// The local side says station `mac` left: the local VIPs whose present
    /// owner it was now confirm with fast probes (their presence fails unless
    /// it answers). Returns them.
    pub fn owner_vanished(&mut self, mac: MacAddr, now: Instant) -> Vec<IpAddr> {
        let vips: Vec<IpAddr> = self
            .local
            .iter_mut()
            .filter_map(|(a, s)| s.owner.vanished(mac, now).then_some(*a))
            .collect();
        self.counters.owner_vanish_reports += vips.len() as u64;
        vips
    }

    /// Local VIP `vip` is confirming a vanish: frames for it wait.
    pub fn owner_suspected(&self, vip: &IpAddr) -> bool {
        self.local.get(vip).is_some_and(|s| s.owner.suspected())
    }

    /// Local VIP `vip` has a presence check that says no owner is there:
    /// frames for it go to another holder.
    pub fn owner_absent(&self, vip: &IpAddr) -> bool {
        self.local.get(vip).is_some_and(|s| !s.owner.present())
    }

    /// The VIP whose re-steer MAC this is (never a virtual MAC itself).
    pub fn vip_for_resteer_mac(&self, mac: &MacAddr) -> Option<IpAddr> {
        if self.by_mac.contains_key(mac) {
            return None;
        }
        self.vip_for_mac(&resteer_mac(*mac))
    }

    /// The holder a frame of flow `key` to our VIP `vip`, whose owner is
    /// gone here, goes on to: the one a sender that knew of our withdrawal
    /// would pick — the pool (§7.2) of the other eligible holders that take
    /// re-steered frames, then the rendezvous winner (or the nearest, as the
    /// policy says). `None`: nobody.
    pub fn resteer_target(&self, now: Instant, vip: &IpAddr, key: &FlowKey) -> Option<String> {
        let v = self.vips.get(vip)?;
        let holders: BTreeMap<String, Holder> = v
            .holders
            .iter()
            .filter(|(n, h)| **n != self.own_name && h.resteer && h.eligible())
            .map(|(n, h)| (n.clone(), h.clone()))
            .collect();
        let others = Vip {
            holders,
            ..v.clone()
        };
        let pool = steer::pool(&others, now, self.settings.hold_down);
        match steer::policy(&pool) {
            steer::SteerPolicy::Nearest => steer::pick_nearest(&pool, |n| self.rtt_of(n), None),
            steer::SteerPolicy::Hash => None,
        }
        .or_else(|| steer::pick_hash(&pool, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resteer_mac_differs_from_every_virtual_mac_form() {
        let v4 = MacAddr(super::super::virtual_mac_for("10.1.1.10".parse().unwrap()));
        let v6 = MacAddr(super::super::virtual_mac_for("fd00:1::10".parse().unwrap()));
        assert_eq!(resteer_mac(v4), MacAddr([0x02, 0x6e, 10, 1, 1, 10]));
        assert_eq!(resteer_mac(v6).0[..2], [0x06, 0x6e]);
        assert!(resteer_mac(v4).is_unicast());
        assert_eq!(resteer_mac(resteer_mac(v4)), v4);
    }
}
