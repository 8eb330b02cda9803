//! `StrictSubnets`: what a peer may claim is what its host file on this node's
//! disk gives it — its subnets and VIPs (at the host file's weights and
//! virtual MACs) — never what its self-signed record says.

use super::Node;
use crate::subnet::Subnet;
use crate::vip::SteerPolicy;
use crate::wire::extension::VipItem;
use std::time::Instant;

impl Node {
    /// Under `StrictSubnets`, replaces the claims of `name`'s record with what
    /// its host file here gives it: the host file's subnets; of the record's
    /// VIP items, those its host file lists, with the host file's weight,
    /// prefix, virtual MAC and steering policy (the record still says whether
    /// it serves now).
    /// Refused claims are counted and logged. Without it, returns the claims.
    pub(super) fn strict_claims(
        &mut self,
        name: &str,
        subnets: Vec<Subnet>,
        vips: Vec<VipItem>,
    ) -> (Vec<Subnet>, Vec<VipItem>) {
        if !self.config.strict_subnets {
            return (subnets, vips);
        }
        let Some(peer) = self.peers.get(name) else {
            return (Vec::new(), Vec::new());
        };
        let refused_subnets: Vec<Subnet> = subnets
            .into_iter()
            .filter(|s| !peer.host_subnets.contains(s))
            .collect();
        let mut allowed = Vec::new();
        let mut refused_vips = Vec::new();
        for item in vips {
            match peer.host_vips.iter().find(|v| v.address == item.address) {
                Some(v) => allowed.push(VipItem {
                    address: v.address,
                    prefix_len: v.prefix_len,
                    weight: v.weight,
                    virtual_mac: v.virtual_mac.0,
                    // Serving or not is the peer's to say; the policy is the host file's.
                    flags: (item.flags & VipItem::OFFERED)
                        | match v.policy {
                            SteerPolicy::Nearest => VipItem::NEAREST,
                            SteerPolicy::Hash => 0,
                        },
                }),
                None => refused_vips.push(item.address),
            }
        }
        let host_subnets = peer.host_subnets.clone();
        let refused = refused_subnets.len() + refused_vips.len();
        if refused > 0 {
            self.drops.strict_refused += refused as u64;
            tracing::warn!(
                peer = %name,
                subnets = ?refused_subnets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                vips = ?refused_vips,
                "StrictSubnets: refused claims its host file here does not give it"
            );
        }
        (host_subnets, allowed)
    }

    /// Applies every peer's record extension again (after a reload: the host
    /// files `StrictSubnets` honours may have changed, or the setting itself).
    pub(super) fn reapply_peer_extensions(&mut self, now: Instant) {
        let records: Vec<(String, Vec<u8>)> = self
            .peers
            .values()
            .filter_map(|p| {
                p.record
                    .as_ref()
                    .map(|r| (p.name.to_string(), r.extension.clone()))
            })
            .collect();
        for (name, extension) in records {
            self.apply_peer_extension(now, &name, &extension);
        }
    }
}
