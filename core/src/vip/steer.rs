//! How a sender picks the holder of a new flow (PROTOCOL §7.2, §7.5): the
//! pool (eligible, past hold-down, lowest weight), then rendezvous hashing
//! (`hash`, the default) or the holder with the lowest measured round-trip
//! time (`nearest`), which changes its choice only for a clearly faster one.

use super::{Holder, Vip};
use crate::switch::FlowKey;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How new flows to a VIP pick a holder, as its holders announce it
/// (`VIPPolicy`). Senders use `Nearest` only while every holder in the pool
/// asks for it; otherwise `Hash`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SteerPolicy {
    /// Rendezvous hashing of the flow over the pool: load shared.
    #[default]
    Hash,
    /// The holder with the lowest round-trip time from the sender.
    Nearest,
}

impl SteerPolicy {
    /// `hash` or `nearest`.
    pub fn as_str(self) -> &'static str {
        match self {
            SteerPolicy::Hash => "hash",
            SteerPolicy::Nearest => "nearest",
        }
    }
}

/// `nearest` moves its choice to another holder only if that one is at
/// least this many percent faster...
pub const NEAREST_MARGIN_PERCENT: u32 = 20;
/// ... and at least this much faster (so LAN jitter never flips it).
pub const NEAREST_MARGIN_MIN: Duration = Duration::from_micros(500);

/// Rendezvous score of `holder` for `key`: the highest wins. A fixed function
/// (PROTOCOL §7.2), so that a restart or an upgrade steers new flows as before
/// and nodes of different builds agree: FNV-1a (64-bit) over the key's
/// canonical bytes, a zero byte and the holder's name, then MurmurHash3's
/// 64-bit finalizer (FNV alone mixes its last bytes poorly).
pub(crate) fn score(key: &FlowKey, holder: &str) -> u64 {
    let (bytes, len) = key.canonical_bytes();
    fmix64(fnv1a64(&[&bytes[..len], &[0], holder.as_bytes()]))
}

/// FNV-1a, 64-bit, over the concatenation of `parts`.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The holders new flows may go to: the eligible ones past their hold-down
/// (all eligible ones if none is), of the lowest weight among them.
pub(super) fn pool(v: &Vip, now: Instant, hold_down: Duration) -> Vec<(&String, &Holder)> {
    let settled = |h: &Holder| {
        h.eligible_since
            .is_some_and(|t| now.saturating_duration_since(t) >= hold_down)
    };
    let eligible: Vec<(&String, &Holder)> =
        v.holders.iter().filter(|(_, h)| h.eligible()).collect();
    let mut pool: Vec<(&String, &Holder)> = eligible
        .iter()
        .copied()
        .filter(|(_, h)| settled(h))
        .collect();
    if pool.is_empty() {
        pool = eligible;
    }
    let Some(best) = pool.iter().map(|(_, h)| h.weight).min() else {
        return Vec::new();
    };
    pool.retain(|(_, h)| h.weight == best);
    pool
}

/// The policy in force for a pool: `Nearest` if every holder in it asks for it.
pub(super) fn policy(pool: &[(&String, &Holder)]) -> SteerPolicy {
    if !pool.is_empty() && pool.iter().all(|(_, h)| h.nearest) {
        SteerPolicy::Nearest
    } else {
        SteerPolicy::Hash
    }
}

/// The rendezvous winner for `key`.
pub(super) fn pick_hash(pool: &[(&String, &Holder)], key: &FlowKey) -> Option<String> {
    pool.iter()
        .max_by_key(|(n, _)| score(key, n))
        .map(|(n, _)| (*n).clone())
}

/// The nearest holder: `current` while it is in the pool with a known RTT,
/// unless another is faster by [`NEAREST_MARGIN_PERCENT`] and
/// [`NEAREST_MARGIN_MIN`]; else the one with the lowest RTT (ties by name).
/// `None` if no holder in the pool has an RTT yet (the caller hashes).
pub(super) fn pick_nearest(
    pool: &[(&String, &Holder)],
    rtt: impl Fn(&str) -> Option<Duration>,
    current: Option<&str>,
) -> Option<String> {
    let best = pool.iter().filter_map(|(n, _)| Some((rtt(n)?, *n))).min()?;
    let kept = current
        .filter(|c| pool.iter().any(|(n, _)| n.as_str() == *c))
        .and_then(|c| Some((rtt(c)?, c)));
    match kept {
        Some((cur, name)) if !clearly_faster(best.0, cur) => Some(name.to_string()),
        _ => Some(best.1.clone()),
    }
}

/// Whether `candidate` beats `current` by both margins.
pub(super) fn clearly_faster(candidate: Duration, current: Duration) -> bool {
    let pct = u128::from(NEAREST_MARGIN_PERCENT);
    candidate.as_nanos() * 100 <= current.as_nanos() * (100 - pct)
        && current.saturating_sub(candidate) >= NEAREST_MARGIN_MIN
}

impl super::VipEngine {
    /// A smoothed round-trip time to `peer` (from its heartbeats), for `nearest`.
    pub fn set_rtt(&mut self, peer: &str, rtt: Option<Duration>) {
        match rtt {
            Some(r) => {
                self.rtts.insert(peer.to_string(), r);
            }
            None => {
                self.rtts.remove(peer);
            }
        }
    }

    /// The round-trip time to holder `name` (zero for this node).
    pub fn rtt_of(&self, name: &str) -> Option<Duration> {
        if name == self.own_name {
            return Some(Duration::ZERO);
        }
        self.rtts.get(name).copied()
    }

    /// The policy senders use for `vip` now and whether its holders disagree
    /// (some ask for `nearest`, some do not: then `hash`), and the holder
    /// `nearest` sends new flows to.
    pub fn steering(&self, vip: &IpAddr, now: Instant) -> (SteerPolicy, bool, Option<&str>) {
        let Some(v) = self.vips.get(vip) else {
            return (SteerPolicy::Hash, false, None);
        };
        let pool = pool(v, now, self.settings.hold_down);
        let policy = policy(&pool);
        let asking = pool.iter().filter(|(_, h)| h.nearest).count();
        let disagree = asking > 0 && asking < pool.len();
        let current = match policy {
            SteerPolicy::Nearest => self.nearest.get(vip).map(String::as_str),
            SteerPolicy::Hash => None,
        };
        (policy, disagree, current)
    }
}
