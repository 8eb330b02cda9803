//! The VIP engine's public data: a VIP this node serves ([`LocalVip`]), what
//! is known of every VIP and its holders ([`Vip`], [`Holder`]), where a
//! steered frame goes, the events and counters the engine hands out.

use super::{PresenceSpec, SteerPolicy};
use crate::switch::MacAddr;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// A VIP this node serves, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVip {
    /// The address.
    pub address: IpAddr,
    /// Prefix length of its subnet.
    pub prefix_len: u8,
    /// Lower weights win.
    pub weight: u32,
    /// The virtual MAC.
    pub virtual_mac: MacAddr,
    /// Whether a health check run by the driver gates it (if so it starts
    /// unhealthy).
    pub checked: bool,
    /// The MAC of the station that owns the VIP on our side of the TAP
    /// (`VIPOwner`); `None`: learned from its ARP/ND, else the TAP's own.
    pub owner: Option<MacAddr>,
    /// A presence check (`HealthCheck = VIP presence`): healthy while a
    /// station on our side answers for the VIP (it starts unhealthy).
    pub presence: Option<PresenceSpec>,
    /// How senders should pick among holders (`VIPPolicy`), announced in our item.
    pub policy: SteerPolicy,
}

/// One node's stake in a VIP.
#[derive(Debug, Clone)]
pub struct Holder {
    /// Its weight.
    pub weight: u32,
    /// It says it serves the VIP (healthy, not leaving).
    pub offered: bool,
    /// It has a live session with us (always true for ourselves).
    pub alive: bool,
    /// When it last became eligible (alive and offering), if it is.
    pub eligible_since: Option<Instant>,
    /// It asks for nearest-holder steering (`VIPPolicy = ADDRESS nearest`).
    pub nearest: bool,
    /// It takes frames another holder re-steers to it (its item has
    /// `RESTEER`, PROTOCOL §7.6; always true for ourselves).
    pub resteer: bool,
}

impl Holder {
    /// Alive and offering.
    pub fn eligible(&self) -> bool {
        self.alive && self.offered
    }
}

/// Everything known about one VIP.
#[derive(Debug, Clone)]
pub struct Vip {
    /// The address.
    pub address: IpAddr,
    /// Prefix length (as its holders configured it).
    pub prefix_len: u8,
    /// The MAC every node answers ARP with.
    pub virtual_mac: MacAddr,
    /// Holders by node name (this node under its own name).
    pub holders: BTreeMap<String, Holder>,
}

/// Where a steered frame goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteerTarget {
    /// This node holds it: deliver into the local TAP.
    Local,
    /// Send it to this peer.
    Peer(String),
}

/// Something the driver should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipEvent {
    /// This node started serving a VIP (run `vip-up`).
    Up(LocalVip),
    /// This node stopped serving a VIP (run `vip-down`).
    Down(LocalVip),
}

/// Counters of the steering path.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VipCounters {
    /// ARP requests for a VIP answered locally with its virtual MAC.
    pub arp_answered: u64,
    /// ARP frames whose sender was rewritten to a virtual MAC.
    pub arp_rewritten: u64,
    /// Frames steered to a holder.
    pub steered: u64,
    /// Frames to a VIP with no eligible holder (dropped).
    pub no_holder: u64,
    /// Frames for a VIP this node does not hold (dropped).
    pub not_holder: u64,
    /// Flows moved because their holder stopped being eligible.
    pub flows_moved: u64,
    /// Neighbour Solicitations for a VIP answered locally with its virtual MAC.
    pub nd_answered: u64,
    /// Neighbour Discovery messages whose link-layer address was rewritten to a virtual MAC.
    pub nd_rewritten: u64,
    /// Duplicate address detection probes for a VIP held here dropped, and
    /// advertisements for it kept from the TAP (so the VIP never becomes "dadfailed").
    pub nd_dad_dropped: u64,
    /// Peers' VIP items refused (an address that cannot be a VIP, or another VIP's virtual MAC).
    pub items_refused: u64,
    /// Owners of our VIPs learned (or moved) from their ARP/ND on our side of the TAP.
    pub owners_learned: u64,
    /// Claims for one of our VIPs by a second station on our side, refused.
    pub owner_conflicts: u64,
    /// ARP probes / Neighbour Solicitations sent into the TAP for our VIPs' owners.
    pub owner_probes: u64,
    /// Times the local side said a present owner of ours left (each starts
    /// a fast confirmation).
    pub owner_vanish_reports: u64,
    /// Frames for our VIP held while a vanish was being confirmed.
    pub vanish_held: u64,
    /// Frames for our VIP whose owner is gone here, re-steered to another holder.
    pub resteered: u64,
    /// Frames another holder re-steered to us, delivered to our owner.
    pub resteer_delivered: u64,
    /// Frames that could not be re-steered (no other holder) or that were
    /// re-steered to us while our owner was gone too (never sent on): dropped.
    pub resteer_dropped: u64,
}

/// One of our own VIPs as the engine sees it ([`VipEngine::local_state`](super::VipEngine::local_state)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalVipState {
    /// Its health checks pass, presence included (or it has none).
    pub healthy: bool,
    /// It is in our record for peers to steer to (healthy, not withdrawn).
    pub offered: bool,
}
