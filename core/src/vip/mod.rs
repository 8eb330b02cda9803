//! The shared-VIP brain, sans-IO: which nodes hold each VIP, which of them
//! are eligible for traffic (alive, offering it, past their hold-down, lowest
//! weight), per-flow steering (rendezvous hashing or nearest holder, in
//! `steer`) with a flow table, and this node's own VIPs with their health
//! and their owner on our side of the TAP (`owner`).

mod flows;
mod owner;
mod resteer;
mod steer;
mod types;

pub use flows::{Flow, FlowTable};
pub use owner::{
    OwnerClaim, OwnerState, OwnerView, PresenceSpec, OWNER_DISCOVER, OWNER_FRESH, OWNER_HURRY,
    OWNER_REFRESH, VANISH_CONFIRM,
};
pub use resteer::resteer_mac;
#[cfg(test)]
use steer::{fnv1a64, score};
pub use steer::{SteerPolicy, NEAREST_MARGIN_MIN, NEAREST_MARGIN_PERCENT};
pub use types::{Holder, LocalVip, LocalVipState, SteerTarget, Vip, VipCounters, VipEvent};

use crate::switch::{FlowKey, MacAddr};
use crate::wire::VipItem;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The [`VipEngine`]'s settings (from `VIPHoldDown`, `FlowIdleTimeout`); the
/// configuration's `VipSettings` (meshd's `config::VipSettings`) is the VIP part
/// of the config file.
#[derive(Debug, Clone)]
pub struct VipEngineSettings {
    /// A holder that became eligible gets new flows only after this long.
    pub hold_down: Duration,
    /// Flows idle this long are forgotten.
    pub flow_idle_timeout: Duration,
    /// Most flows remembered (beyond it, new flows are steered by hash only).
    pub max_flows: usize,
}

impl Default for VipEngineSettings {
    fn default() -> Self {
        VipEngineSettings {
            hold_down: Duration::from_secs(1),
            flow_idle_timeout: Duration::from_secs(60),
            max_flows: 65536,
        }
    }
}

/// The virtual MAC of a VIP: IPv4 `a.b.c.d` gives `02:6d:a:b:c:d`; IPv6 gives `06:6d`
/// followed by the first 4 bytes of the SHA-256 of the 16 address bytes.
///
/// Both are locally administered unicast MACs, and every node computes the same one, so a
/// client's neighbour entry for the VIP stays valid whichever node holds it.
pub fn virtual_mac_for(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [0x02, 0x6d, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let h = Sha256::digest(v6.octets());
            [0x06, 0x6d, h[0], h[1], h[2], h[3]]
        }
    }
}

/// The VIP state machine of one node.
#[derive(Debug)]
pub struct VipEngine {
    own_name: String,
    settings: VipEngineSettings,
    local: BTreeMap<IpAddr, LocalState>,
    vips: BTreeMap<IpAddr, Vip>,
    by_mac: HashMap<MacAddr, IpAddr>,
    flows: FlowTable,
    events: Vec<VipEvent>,
    counters: VipCounters,
    /// Smoothed round-trip time to each peer (for `nearest`).
    rtts: HashMap<String, Duration>,
    /// Per VIP, the holder `nearest` sends new flows to (kept for hysteresis).
    nearest: HashMap<IpAddr, String>,
}

#[derive(Debug, Clone)]
struct LocalState {
    cfg: LocalVip,
    /// The driver's health checks pass (or there are none).
    healthy: bool,
    owner: OwnerState,
    withdrawn: bool,
    serving: bool,
    /// A failed health check withdrew the VIP: `vip-down` runs at this time,
    /// so what peers already sent here still gets answered.
    down_at: Option<Instant>,
}

impl LocalState {
    fn offered(&self) -> bool {
        self.healthy && self.owner.present() && !self.withdrawn
    }
}

/// How long a holder whose health check failed keeps the VIP on its TAP after
/// withdrawing it from its record: frames peers sent before they learned of the
/// withdrawal (queued behind bulk data, in flight) are still answered.
pub const HEALTH_WITHDRAW_LINGER: Duration = Duration::from_millis(500);

impl VipEngine {
    /// An engine for node `own_name`.
    pub fn new(own_name: &str, settings: VipEngineSettings) -> VipEngine {
        VipEngine {
            own_name: own_name.to_string(),
            flows: FlowTable::new(settings.max_flows),
            settings,
            local: BTreeMap::new(),
            vips: BTreeMap::new(),
            by_mac: HashMap::new(),
            events: Vec::new(),
            counters: VipCounters::default(),
            rtts: HashMap::new(),
            nearest: HashMap::new(),
        }
    }

    /// New settings (reload).
    pub fn set_settings(&mut self, settings: VipEngineSettings) {
        self.flows.set_capacity(settings.max_flows);
        self.settings = settings;
    }

    /// This node's configured VIPs (startup and reload). VIPs without a health
    /// check are offered at once; checked ones wait for their first healthy verdict.
    pub fn set_local(&mut self, vips: Vec<LocalVip>, now: Instant) {
        let old = std::mem::take(&mut self.local);
        for cfg in vips {
            let state = match old.get(&cfg.address) {
                Some(prev) if prev.cfg == cfg => prev.clone(),
                Some(prev) => {
                    let mut owner = prev.owner.clone();
                    owner.reconfigure(cfg.owner, cfg.presence, now);
                    LocalState {
                        healthy: if cfg.checked { prev.healthy } else { true },
                        owner,
                        cfg,
                        withdrawn: prev.withdrawn,
                        serving: prev.serving,
                        down_at: prev.down_at,
                    }
                }
                None => LocalState {
                    healthy: !cfg.checked,
                    owner: OwnerState::new(cfg.owner, cfg.presence, now),
                    cfg,
                    withdrawn: false,
                    serving: false,
                    down_at: None,
                },
            };
            self.local.insert(state.cfg.address, state);
        }
        for (addr, prev) in old {
            if !self.local.contains_key(&addr) && prev.serving {
                self.events.push(VipEvent::Down(prev.cfg.clone()));
            }
            if let Some(v) = self.vips.get_mut(&addr) {
                v.holders.remove(&self.own_name);
            }
        }
        self.refresh_local(now);
    }

    /// A health verdict for one of our VIPs. Returns true if it changed anything.
    pub fn set_health(&mut self, vip: IpAddr, healthy: bool, now: Instant) -> bool {
        let Some(state) = self.local.get_mut(&vip) else {
            return false;
        };
        if state.healthy == healthy {
            return false;
        }
        state.healthy = healthy;
        self.refresh_local(now);
        true
    }

    /// Graceful stop: stop offering every VIP (the record says so; we keep
    /// delivering what still arrives).
    pub fn withdraw_all(&mut self, now: Instant) {
        for s in self.local.values_mut() {
            s.withdrawn = true;
        }
        self.refresh_local(now);
    }

    /// Runs the `vip-down` of health withdrawals whose linger is over.
    pub fn tick(&mut self, now: Instant) {
        for s in self.local.values_mut() {
            if s.down_at.is_some_and(|t| now >= t) {
                s.down_at = None;
                if s.serving && !s.offered() {
                    s.serving = false;
                    self.events.push(VipEvent::Down(s.cfg.clone()));
                }
            }
        }
    }

    /// When [`VipEngine::tick`] or [`VipEngine::owner_probes`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.local
            .values()
            .flat_map(|s| [s.down_at, s.owner.next_probe()])
            .flatten()
            .min()
    }

    /// Final stop: `vip-down` for everything still served.
    pub fn stop_serving(&mut self) {
        for s in self.local.values_mut() {
            s.down_at = None;
            if s.serving {
                s.serving = false;
                self.events.push(VipEvent::Down(s.cfg.clone()));
            }
        }
    }

    fn refresh_local(&mut self, now: Instant) {
        let own = self.own_name.clone();
        let states: Vec<LocalState> = self.local.values().cloned().collect();
        for s in states {
            let offered = s.offered();
            let vip = self.vip_entry(s.cfg.address, s.cfg.prefix_len, s.cfg.virtual_mac);
            let holder = vip.holders.entry(own.clone()).or_insert(Holder {
                weight: s.cfg.weight,
                offered: false,
                alive: true,
                eligible_since: None,
                nearest: false,
                resteer: true,
            });
            holder.weight = s.cfg.weight;
            holder.nearest = s.cfg.policy == SteerPolicy::Nearest;
            update_holder(holder, offered, true, now);
            // vip-up when we start offering; vip-down HEALTH_WITHDRAW_LINGER after a
            // health check withdraws it (peers learn it from our record meanwhile and
            // what they already sent is still answered); a graceful stop keeps
            // serving until the very end.
            let state = self.local.get_mut(&s.cfg.address).expect("present");
            if offered {
                state.down_at = None;
                if !state.serving {
                    state.serving = true;
                    self.events.push(VipEvent::Up(s.cfg.clone()));
                }
            } else if state.serving && !state.withdrawn && state.down_at.is_none() {
                state.down_at = Some(now + HEALTH_WITHDRAW_LINGER);
            }
        }
        self.gc();
    }

    fn vip_entry(&mut self, address: IpAddr, prefix_len: u8, mac: MacAddr) -> &mut Vip {
        if let Some(old) = self.vips.get(&address) {
            if old.virtual_mac != mac {
                tracing::warn!(vip = %address, old = %old.virtual_mac, new = %mac,
                    "holders disagree on the virtual MAC; using the newest");
                self.by_mac.remove(&old.virtual_mac);
            }
        }
        self.by_mac.insert(mac, address);
        let vip = self.vips.entry(address).or_insert_with(|| Vip {
            address,
            prefix_len,
            virtual_mac: mac,
            holders: BTreeMap::new(),
        });
        vip.virtual_mac = mac;
        vip.prefix_len = prefix_len;
        vip
    }

    /// Forgets VIPs nobody holds any more.
    fn gc(&mut self) {
        let empty: Vec<IpAddr> = self
            .vips
            .iter()
            .filter(|(_, v)| v.holders.is_empty())
            .map(|(a, _)| *a)
            .collect();
        for a in empty {
            if let Some(v) = self.vips.remove(&a) {
                // The MAC may have moved to another VIP meanwhile.
                if self.by_mac.get(&v.virtual_mac) == Some(&a) {
                    self.by_mac.remove(&v.virtual_mac);
                }
            }
        }
    }

    /// Items for our own record.
    pub fn local_items(&self) -> Vec<VipItem> {
        self.local
            .values()
            .map(|s| VipItem {
                address: s.cfg.address,
                prefix_len: s.cfg.prefix_len,
                weight: s.cfg.weight,
                virtual_mac: s.cfg.virtual_mac.0,
                flags: if s.offered() { VipItem::OFFERED } else { 0 }
                    | if s.cfg.policy == SteerPolicy::Nearest {
                        VipItem::NEAREST
                    } else {
                        0
                    }
                    | VipItem::RESTEER,
            })
            .collect()
    }

    /// A peer's record lists these VIPs (replacing what it listed before).
    /// Items whose address cannot be a VIP, or whose virtual MAC another VIP
    /// already uses, are refused (logged, counted); the others apply.
    pub fn apply_peer_items(&mut self, peer: &str, items: &[VipItem], alive: bool, now: Instant) {
        let mut claimed: HashMap<MacAddr, IpAddr> = HashMap::new();
        let items: Vec<&VipItem> = items
            .iter()
            .filter(|i| self.acceptable(peer, i, &mut claimed))
            .collect();
        for v in self.vips.values_mut() {
            if !items.iter().any(|i| i.address == v.address) {
                v.holders.remove(peer);
            }
        }
        for item in items {
            let vip = self.vip_entry(item.address, item.prefix_len, MacAddr(item.virtual_mac));
            let holder = vip.holders.entry(peer.to_string()).or_insert(Holder {
                weight: item.weight,
                offered: false,
                alive,
                eligible_since: None,
                nearest: false,
                resteer: false,
            });
            holder.weight = item.weight;
            holder.nearest = item.is_nearest();
            holder.resteer = item.takes_resteered();
            update_holder(holder, item.is_offered(), alive, now);
        }
        self.drop_ineligible_flows();
        self.gc();
    }

    /// Whether a peer's VIP item may apply: its address can be a VIP and its
    /// virtual MAC is not another VIP's. Refusals are logged and counted.
    fn acceptable(
        &mut self,
        peer: &str,
        item: &VipItem,
        claimed: &mut HashMap<MacAddr, IpAddr>,
    ) -> bool {
        let vip = item.address;
        let mac = MacAddr(item.virtual_mac);
        if !usable_vip(&vip) {
            self.counters.items_refused += 1;
            tracing::warn!(%vip, %peer, "refused a VIP item: the address cannot be a VIP (unspecified, loopback, multicast, link-local or IPv4-mapped)");
            return false;
        }
        // A VIP only this peer held does not count: its new record may rename it.
        let held_by_others = |a: &IpAddr| {
            self.vips
                .get(a)
                .is_some_and(|v| v.holders.keys().any(|h| h != peer))
        };
        let other = claimed
            .get(&mac)
            .or_else(|| self.by_mac.get(&mac).filter(|a| held_by_others(a)));
        if let Some(other) = other.filter(|a| **a != vip) {
            self.counters.items_refused += 1;
            tracing::warn!(%vip, %peer, %mac, other = %other, "refused a VIP item: its virtual MAC is already another VIP's");
            return false;
        }
        claimed.insert(mac, vip);
        true
    }

    /// A peer's session came up or died.
    pub fn set_peer_alive(&mut self, peer: &str, alive: bool, now: Instant) {
        for v in self.vips.values_mut() {
            if let Some(h) = v.holders.get_mut(peer) {
                let offered = h.offered;
                update_holder(h, offered, alive, now);
            }
        }
        if !alive {
            self.drop_ineligible_flows();
        }
    }

    fn drop_ineligible_flows(&mut self) {
        let vips = &self.vips;
        let moved = self.flows.retain(|f| {
            vips.get(&f.vip)
                .and_then(|v| v.holders.get(&f.holder))
                .is_some_and(Holder::eligible)
        });
        self.counters.flows_moved += moved as u64;
    }

    /// The VIP whose virtual MAC this is.
    pub fn vip_for_mac(&self, mac: &MacAddr) -> Option<IpAddr> {
        self.by_mac.get(mac).copied()
    }

    /// The virtual MAC of a VIP, if it is one.
    pub fn mac_for_vip(&self, ip: &IpAddr) -> Option<MacAddr> {
        self.vips.get(ip).map(|v| v.virtual_mac)
    }

    /// True if this node is configured to serve `ip` (offered or not).
    pub fn is_local(&self, ip: &IpAddr) -> bool {
        self.local.contains_key(ip)
    }

    /// True if some VIP uses this MAC.
    pub fn is_virtual_mac(&self, mac: &MacAddr) -> bool {
        self.by_mac.contains_key(mac)
    }

    /// Every virtual MAC in use.
    pub fn virtual_macs(&self) -> impl Iterator<Item = &MacAddr> {
        self.by_mac.keys()
    }

    /// Every eligible holder of `vip` (for frames that all holders must see, like ARP replies).
    pub fn eligible_holders(&self, vip: &IpAddr) -> Vec<SteerTarget> {
        let own = &self.own_name;
        self.vips
            .get(vip)
            .map(|v| {
                v.holders
                    .iter()
                    .filter(|(_, h)| h.eligible())
                    .map(|(n, _)| {
                        if n == own {
                            SteerTarget::Local
                        } else {
                            SteerTarget::Peer(n.clone())
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Picks the holder for a frame of flow `key` to `vip`: the flow's holder
    /// while it stays eligible, else the rendezvous winner among the eligible
    /// holders of the lowest weight (holders in hold-down only if nobody else is).
    pub fn steer(&mut self, now: Instant, vip: IpAddr, key: &FlowKey) -> Option<SteerTarget> {
        let Some(v) = self.vips.get(&vip) else {
            self.counters.no_holder += 1;
            return None;
        };
        let holder = match self.flows.get_mut(key) {
            Some(flow) if v.holders.get(&flow.holder).is_some_and(Holder::eligible) => {
                flow.last_used = now;
                flow.holder.clone()
            }
            _ => {
                let pool = steer::pool(v, now, self.settings.hold_down);
                let nearest = match steer::policy(&pool) {
                    steer::SteerPolicy::Nearest => steer::pick_nearest(
                        &pool,
                        |n| self.rtt_of(n),
                        self.nearest.get(&vip).map(String::as_str),
                    ),
                    steer::SteerPolicy::Hash => None,
                };
                // Nearest with no RTT known yet hashes, as the default does.
                let Some(name) = nearest.clone().or_else(|| steer::pick_hash(&pool, key)) else {
                    self.counters.no_holder += 1;
                    return None;
                };
                if let Some(n) = nearest {
                    if self.nearest.get(&vip) != Some(&n) {
                        tracing::info!(%vip, holder = %n, rtt_us = self.rtt_of(&n).map(|d| d.as_micros() as u64),
                            "nearest holder for new flows");
                        self.nearest.insert(vip, n);
                    }
                }
                self.flows.insert(
                    *key,
                    Flow {
                        vip,
                        holder: name.clone(),
                        last_used: now,
                    },
                );
                name
            }
        };
        self.counters.steered += 1;
        Some(if holder == self.own_name {
            SteerTarget::Local
        } else {
            SteerTarget::Peer(holder)
        })
    }

    /// A frame from holder `peer` with a VIP as its source: the replies of that
    /// flow must go back to `peer` (a flow the holder started).
    pub fn pin_reply(&mut self, now: Instant, vip: IpAddr, peer: &str, key: &FlowKey) {
        let reply = key.reversed();
        let holds = self
            .vips
            .get(&vip)
            .is_some_and(|v| v.holders.get(peer).is_some_and(Holder::eligible));
        if !holds {
            return;
        }
        let vips = &self.vips;
        match self.flows.get_mut(&reply) {
            Some(f) if f.holder == peer => f.last_used = now,
            // An established flow stays on its live holder: late frames from a
            // holder that was frozen or cut off must not pull it back.
            Some(f)
                if vips
                    .get(&f.vip)
                    .and_then(|v| v.holders.get(&f.holder))
                    .is_some_and(Holder::eligible) => {}
            _ => self.flows.insert(
                reply,
                Flow {
                    vip,
                    holder: peer.to_string(),
                    last_used: now,
                },
            ),
        }
    }

    /// Forgets flows idle for `FlowIdleTimeout`.
    pub fn expire(&mut self, now: Instant) {
        let idle = self.settings.flow_idle_timeout;
        self.flows
            .retain(|f| now.saturating_duration_since(f.last_used) < idle);
    }

    /// Next event for the driver.
    pub fn poll_event(&mut self) -> Option<VipEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    /// Every VIP known.
    pub fn vips(&self) -> &BTreeMap<IpAddr, Vip> {
        &self.vips
    }

    /// The flow table.
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// Our own VIP's state, if we serve it.
    pub fn local_state(&self, vip: &IpAddr) -> Option<LocalVipState> {
        self.local.get(vip).map(|s| LocalVipState {
            healthy: s.healthy && s.owner.present(),
            offered: s.offered(),
        })
    }

    /// Our configured VIPs.
    pub fn local_vips(&self) -> impl Iterator<Item = &LocalVip> {
        self.local.values().map(|s| &s.cfg)
    }

    /// Settings in force.
    pub fn settings(&self) -> &VipEngineSettings {
        &self.settings
    }

    /// Counters.
    pub fn counters(&self) -> &VipCounters {
        &self.counters
    }

    /// Counters, for the node to bump.
    pub fn counters_mut(&mut self) -> &mut VipCounters {
        &mut self.counters
    }
}

/// Whether `ip` can be a VIP: not unspecified, loopback, multicast or IPv4
/// broadcast, and for IPv6 not link-local (`fe80::/10`) nor IPv4-mapped.
pub fn usable_vip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
        }
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.segments()[0] & 0xffc0 == 0xfe80
                || a.to_ipv4_mapped().is_some())
        }
    }
}

fn update_holder(h: &mut Holder, offered: bool, alive: bool, now: Instant) {
    let was = h.eligible();
    h.offered = offered;
    h.alive = alive;
    match (was, h.eligible()) {
        (false, true) => h.eligible_since = Some(now),
        (true, false) => h.eligible_since = None,
        _ => {}
    }
}

#[cfg(test)]
mod tests;
