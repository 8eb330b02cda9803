//! The neighbour table: IP-to-MAC bindings learned from ARP and Neighbour
//! Discovery, used to answer ARP/ND locally.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::mac::MacAddr;

/// One binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourEntry {
    /// The link-layer address claimed for the IP.
    pub mac: MacAddr,
    /// When the binding was last claimed.
    pub last_seen: Instant,
}

/// What [`NeighbourTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighbourLearned {
    /// A new binding.
    New,
    /// The same binding again; its age was reset.
    Refreshed,
    /// The IP was bound to another MAC; the newest claim won.
    Changed {
        /// The MAC it was bound to.
        old: MacAddr,
    },
    /// Not learned: an unspecified, multicast or broadcast IP, a multicast or
    /// zero MAC, or the table is full.
    Refused,
}

/// IP-to-MAC bindings with ageing and a size cap. Not thread-safe.
#[derive(Debug)]
pub struct NeighbourTable {
    entries: HashMap<IpAddr, NeighbourEntry>,
    expire: Duration,
    max: usize,
    full_refusals: u64,
}

impl NeighbourTable {
    /// An empty table whose bindings are used for `expire` after their last
    /// claim and which holds at most `max` of them.
    pub fn new(expire: Duration, max: usize) -> Self {
        NeighbourTable {
            entries: HashMap::new(),
            expire,
            max,
            full_refusals: 0,
        }
    }

    /// Replaces the limits (on reload). A lower `max` refuses new bindings but drops none.
    pub fn set_limits(&mut self, expire: Duration, max: usize) {
        self.expire = expire;
        self.max = max;
    }

    /// Records that `ip` is at `mac` as of `now`. Does not allocate unless the
    /// binding is new.
    pub fn learn(&mut self, ip: IpAddr, mac: MacAddr, now: Instant) -> NeighbourLearned {
        if !mac.is_unicast() || !is_learnable(&ip) {
            return NeighbourLearned::Refused;
        }
        if let Some(entry) = self.entries.get_mut(&ip) {
            let old = entry.mac;
            entry.mac = mac;
            entry.last_seen = now;
            return if old == mac {
                NeighbourLearned::Refreshed
            } else {
                NeighbourLearned::Changed { old }
            };
        }
        if self.entries.len() >= self.max {
            // Existing bindings stay: an unknown address is still resolved by
            // flooding the request, so refusing costs a broadcast, not reachability.
            self.full_refusals += 1;
            return NeighbourLearned::Refused;
        }
        self.entries.insert(
            ip,
            NeighbourEntry {
                mac,
                last_seen: now,
            },
        );
        NeighbourLearned::New
    }

    /// The MAC of `ip`, unless unknown or last claimed `expire` or longer before `now`.
    #[inline]
    pub fn lookup(&self, ip: &IpAddr, now: Instant) -> Option<MacAddr> {
        let entry = self.entries.get(ip)?;
        (now.saturating_duration_since(entry.last_seen) < self.expire).then_some(entry.mac)
    }

    /// The cap on bindings.
    pub fn max(&self) -> usize {
        self.max
    }

    /// New bindings refused because the table was full, since creation.
    pub fn full_refusals(&self) -> u64 {
        self.full_refusals
    }

    /// Removes bindings last claimed `expire` or longer before `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        let max_age = self.expire;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_seen) < max_age);
        before - self.entries.len()
    }

    /// All bindings, in no particular order (expired ones not yet removed included).
    pub fn entries(&self) -> impl Iterator<Item = (IpAddr, &NeighbourEntry)> + '_ {
        self.entries.iter().map(|(ip, e)| (*ip, e))
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a binding for `ip` means anything: not unspecified, multicast or
/// the IPv4 limited broadcast.
fn is_learnable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn learn_refresh_change() {
        let t0 = crate::test_clock::start();
        let mut t = NeighbourTable::new(Duration::from_secs(300), 10);
        assert_eq!(t.learn(ip("10.0.0.1"), A, t0), NeighbourLearned::New);
        assert_eq!(t.learn(ip("10.0.0.1"), A, t0), NeighbourLearned::Refreshed);
        assert_eq!(
            t.learn(ip("10.0.0.1"), B, t0),
            NeighbourLearned::Changed { old: A }
        );
        assert_eq!(t.lookup(&ip("10.0.0.1"), t0), Some(B));
        assert_eq!(t.learn(ip("fd00::1"), A, t0), NeighbourLearned::New);
        assert_eq!(t.len(), 2);
        assert!(!t.is_empty());
        assert_eq!(t.entries().count(), 2);
    }

    #[test]
    fn refuses_meaningless_bindings() {
        let t0 = crate::test_clock::start();
        let mut t = NeighbourTable::new(Duration::from_secs(300), 10);
        for bad in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            assert_eq!(t.learn(ip(bad), A, t0), NeighbourLearned::Refused, "{bad}");
        }
        for mac in [
            MacAddr::ZERO,
            MacAddr::BROADCAST,
            MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        ] {
            assert_eq!(t.learn(ip("10.0.0.1"), mac, t0), NeighbourLearned::Refused);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn cap_refuses_new_but_refreshes_old() {
        let t0 = crate::test_clock::start();
        let mut t = NeighbourTable::new(Duration::from_secs(300), 2);
        assert_eq!(t.learn(ip("10.0.0.1"), A, t0), NeighbourLearned::New);
        assert_eq!(t.learn(ip("10.0.0.2"), A, t0), NeighbourLearned::New);
        assert_eq!(t.learn(ip("10.0.0.3"), A, t0), NeighbourLearned::Refused);
        assert_eq!(
            t.learn(ip("10.0.0.2"), B, t0),
            NeighbourLearned::Changed { old: A }
        );
        assert_eq!(t.lookup(&ip("10.0.0.3"), t0), None);
        assert_eq!((t.len(), t.max(), t.full_refusals()), (2, 2, 1));
    }

    #[test]
    fn expiry_with_fake_clock() {
        let t0 = crate::test_clock::start();
        let mut t = NeighbourTable::new(Duration::from_secs(300), 10);
        t.learn(ip("10.0.0.1"), A, t0);
        t.learn(ip("10.0.0.2"), B, t0 + Duration::from_secs(200));
        let t299 = t0 + Duration::from_secs(299);
        assert_eq!(t.lookup(&ip("10.0.0.1"), t299), Some(A));
        let t300 = t0 + Duration::from_secs(300);
        assert_eq!(
            t.lookup(&ip("10.0.0.1"), t300),
            None,
            "stale bindings are not used"
        );
        assert_eq!(t.lookup(&ip("10.0.0.2"), t300), Some(B));
        // A clock that went backwards is no age at all.
        assert_eq!(t.lookup(&ip("10.0.0.2"), t0), Some(B));
        assert_eq!(t.expire(t300), 1);
        assert_eq!(t.len(), 1);
        t.set_limits(Duration::from_secs(10), 10);
        assert_eq!(t.expire(t300), 1);
        assert!(t.is_empty());
    }
}
