//! `dump vips` and `info VIP`: each VIP with its virtual MAC, its holders and
//! their state, and how this node's flows are spread over them.

use super::Node;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One holder of a VIP, as this node sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HolderStatus {
    /// Node name.
    pub name: String,
    /// Its weight (lower wins).
    pub weight: u32,
    /// Live session with it (always true for this node).
    pub alive: bool,
    /// It offers the VIP (healthy and not leaving).
    pub offered: bool,
    /// Gets traffic now: alive and offered.
    pub eligible: bool,
    /// Milliseconds of hold-down left before it gets new flows (0 = none).
    pub hold_down_ms: u64,
    /// Flows this node steers to it.
    pub flows: usize,
    /// Those flows as a share of this node's flows to the VIP, in percent.
    pub share_percent: f64,
    /// Smoothed round-trip time from this node, in milliseconds (0 for itself).
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// It asks for nearest-holder steering (`VIPPolicy`).
    #[serde(default)]
    pub nearest: bool,
}

/// Who owns one of this node's VIPs on its side of the TAP.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OwnerStatus {
    /// This node (the holder whose side it is).
    pub node: String,
    /// The MAC steered frames are delivered to (the TAP's own when no other
    /// owner is known), if known.
    pub mac: Option<String>,
    /// Where `mac` comes from: `VIPOwner`, `learned` (its ARP/ND) or `tap`.
    pub source: String,
    /// Milliseconds since a learned owner was last heard from.
    pub seen_ms_ago: Option<u64>,
    /// The presence check's verdict (`HealthCheck = VIP presence`), if any.
    pub present: Option<bool>,
    /// The presence check's state, if any: `present`, `absent`, or
    /// `confirming` (the local side said the owner left; fast probes ask
    /// whether it still answers before its presence fails).
    #[serde(default)]
    pub presence: Option<String>,
    /// While `confirming`: milliseconds left before presence fails unanswered.
    #[serde(default)]
    pub confirm_ms_left: Option<u64>,
    /// Claims for the VIP by a second station, refused.
    pub conflicts: u64,
}

/// One VIP.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VipStatus {
    /// The address.
    pub vip: String,
    /// Prefix length.
    pub prefix_len: u8,
    /// The virtual MAC every node answers ARP with.
    pub virtual_mac: String,
    /// This node serves it: its health verdict.
    pub local_healthy: Option<bool>,
    /// This node serves it: its owner on our side of the TAP.
    #[serde(default)]
    pub owner: Option<OwnerStatus>,
    /// How this node picks the holder of a new flow: `hash` or `nearest`.
    #[serde(default)]
    pub policy: String,
    /// Why: e.g. that holders disagree on the policy (then `hash`).
    #[serde(default)]
    pub policy_note: Option<String>,
    /// Under `nearest`, the holder new flows go to now.
    #[serde(default)]
    pub nearest: Option<String>,
    /// Flows this node steers to it.
    pub flows: usize,
    /// Holders, by name.
    pub holders: Vec<HolderStatus>,
}

impl Node {
    fn owner_status(&self, vip: &std::net::IpAddr, now: Instant) -> Option<OwnerStatus> {
        let o = self.vip.owner_view(vip)?;
        let (mac, source) = match (o.mac, o.configured) {
            (Some(m), true) => (Some(m), "VIPOwner"),
            (Some(m), false) => (Some(m), "learned"),
            (None, _) => (self.tap_mac, "tap"),
        };
        Some(OwnerStatus {
            node: self.config.name.to_string(),
            mac: mac.map(|m| m.to_string()),
            source: source.into(),
            seen_ms_ago: o
                .seen
                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
            present: o.present,
            presence: o.present.map(|p| {
                match (o.confirming_until, p) {
                    (Some(_), _) => "confirming",
                    (None, true) => "present",
                    (None, false) => "absent",
                }
                .to_string()
            }),
            confirm_ms_left: o
                .confirming_until
                .map(|t| t.saturating_duration_since(now).as_millis() as u64),
            conflicts: o.conflicts,
        })
    }

    /// Every VIP known, sorted by address.
    pub fn vip_statuses(&self, now: Instant) -> Vec<VipStatus> {
        let hold_down = self.vip.settings().hold_down;
        self.vip
            .vips()
            .values()
            .map(|v| {
                let counts = self.vip.flows().count_by_holder(v.address);
                let total: usize = counts.values().sum();
                let holders = v
                    .holders
                    .iter()
                    .map(|(name, h)| {
                        let flows = counts.get(name).copied().unwrap_or(0);
                        let left = h.eligible_since.map_or(0, |t| {
                            hold_down
                                .saturating_sub(now.saturating_duration_since(t))
                                .as_millis() as u64
                        });
                        HolderStatus {
                            name: name.clone(),
                            weight: h.weight,
                            alive: h.alive,
                            offered: h.offered,
                            eligible: h.eligible(),
                            hold_down_ms: left,
                            flows,
                            share_percent: if total == 0 {
                                0.0
                            } else {
                                flows as f64 * 100.0 / total as f64
                            },
                            rtt_ms: self.vip.rtt_of(name).map(|d| d.as_secs_f64() * 1000.0),
                            nearest: h.nearest,
                        }
                    })
                    .collect();
                let (policy, disagree, nearest) = self.vip.steering(&v.address, now);
                VipStatus {
                    policy: policy.as_str().into(),
                    policy_note: disagree.then(|| {
                        "holders disagree (some ask for nearest): hash until all of the lowest weight do"
                            .to_string()
                    }),
                    nearest: nearest.map(str::to_string),
                    vip: v.address.to_string(),
                    prefix_len: v.prefix_len,
                    virtual_mac: v.virtual_mac.to_string(),
                    local_healthy: self.vip.local_state(&v.address).map(|s| s.healthy),
                    owner: self.owner_status(&v.address, now),
                    flows: total,
                    holders,
                }
            })
            .collect()
    }
}
