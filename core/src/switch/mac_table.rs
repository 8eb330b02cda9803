//! The MAC address table: which [`Port`] each station lives behind, learned from
//! source addresses or configured statically, with per-port and total caps.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use super::mac::MacAddr;

/// Where a station lives: behind the local TAP, or behind a peer node.
#[derive(Clone, Eq, PartialEq, Hash, Ord, PartialOrd, Debug)]
pub enum Port {
    /// The local TAP interface.
    Local,
    /// The peer node of this name.
    Peer(String),
}

impl Port {
    /// The port of peer `name`.
    pub fn peer(name: &str) -> Port {
        Port::Peer(name.to_owned())
    }

    /// The peer name, or `None` for [`Port::Local`].
    pub fn peer_name(&self) -> Option<&str> {
        match self {
            Port::Local => None,
            Port::Peer(name) => Some(name),
        }
    }

    /// A borrowed form of this port.
    pub fn as_port_ref(&self) -> PortRef<'_> {
        match self {
            Port::Local => PortRef::Local,
            Port::Peer(name) => PortRef::Peer(name),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Local => f.write_str("(local)"),
            Port::Peer(name) => f.write_str(name),
        }
    }
}

impl serde::Serialize for Port {
    /// As its [`Display`](fmt::Display) form: `(local)` or the peer name.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A borrowed [`Port`], so that the per-frame path can name a peer by `&str`
/// without allocating.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
pub enum PortRef<'a> {
    /// The local TAP interface.
    Local,
    /// The peer node of this name.
    Peer(&'a str),
}

impl PortRef<'_> {
    /// Whether `port` is this port.
    #[inline]
    pub fn is(self, port: &Port) -> bool {
        match (self, port) {
            (PortRef::Local, Port::Local) => true,
            (PortRef::Peer(a), Port::Peer(b)) => a == b,
            _ => false,
        }
    }

    /// An owned copy (allocates the name of a peer).
    pub fn to_port(self) -> Port {
        match self {
            PortRef::Local => Port::Local,
            PortRef::Peer(name) => Port::peer(name),
        }
    }
}

impl<'a> From<&'a Port> for PortRef<'a> {
    fn from(port: &'a Port) -> Self {
        port.as_port_ref()
    }
}

/// Caps and ageing of learned entries (static entries are exempt from all three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacTableLimits {
    /// A learned entry silent this long is removed by [`MacTable::expire`] (`MACExpire`).
    pub expire: Duration,
    /// Most learned entries in all (`MACTableMax`).
    pub max_total: usize,
    /// Most learned entries behind one port (`MACTableMaxPerNode`).
    pub max_per_port: usize,
    /// A learned entry that has not expired does not move to a peer
    /// (`StrictSubnets`): no member can take over a station's MAC — another
    /// node's TAP, a host on our LAN — by sending frames from it. A station
    /// that really moved is learned at its new place once the old entry
    /// expires; moving to the local TAP is always allowed.
    pub sticky: bool,
}

impl Default for MacTableLimits {
    /// 600 s, 65536, 4096.
    fn default() -> Self {
        MacTableLimits {
            expire: Duration::from_secs(600),
            max_total: 65536,
            max_per_port: 4096,
            sticky: false,
        }
    }
}

/// One MAC table entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// Where the station is.
    pub port: Port,
    /// Configured rather than learned: never expires, never moves by learning.
    pub is_static: bool,
    /// When a frame from the station last arrived from `port`; `None` for a
    /// static entry no frame has come from yet.
    pub last_seen: Option<Instant>,
}

/// What [`MacTable::learn`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Already known at this port; its age was reset.
    Refreshed,
    /// A new entry.
    New,
    /// The station moved here from another port.
    Moved {
        /// Where it was.
        from: Port,
    },
    /// A static entry at another port wins; nothing changed.
    Pinned,
    /// A cap was hit; nothing changed (existing entries are never evicted).
    Refused,
    /// A multicast or all-zero address, which is never learned.
    Invalid,
}

/// What [`MacTable::set_static`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticChange {
    /// Addresses now static at the port that were not before, in input order.
    pub added: Vec<MacAddr>,
    /// Addresses no longer static at the port (and gone from the table), sorted.
    pub removed: Vec<MacAddr>,
    /// Of `added`, those that had an entry already (learned anywhere, or static
    /// at another port), with the port they were at.
    pub replaced: Vec<(MacAddr, Port)>,
}

/// Entry counts of one port.
#[derive(Clone, Debug, Default)]
struct PortSlot {
    learned: usize,
    statics: usize,
}

/// The MAC address table. Not thread-safe; owned by the switch.
#[derive(Debug)]
pub struct MacTable {
    entries: HashMap<MacAddr, MacEntry>,
    local: PortSlot,
    /// Per-peer counts, keyed by name; a peer with no entries has no slot.
    peers: HashMap<String, PortSlot>,
    learned_total: usize,
    limits: MacTableLimits,
    cap_hits: u64,
    /// Of `cap_hits`: refused by the per-port cap.
    per_port_hits: u64,
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable::new(MacTableLimits::default())
    }
}

impl MacTable {
    /// An empty table.
    pub fn new(limits: MacTableLimits) -> Self {
        MacTable {
            entries: HashMap::new(),
            local: PortSlot::default(),
            peers: HashMap::new(),
            learned_total: 0,
            limits,
            cap_hits: 0,
            per_port_hits: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> MacTableLimits {
        self.limits
    }

    /// Replaces the limits (on reload). Lower caps refuse new entries but evict none.
    pub fn set_limits(&mut self, limits: MacTableLimits) {
        self.limits = limits;
    }

    fn slot(&self, port: PortRef<'_>) -> Option<&PortSlot> {
        match port {
            PortRef::Local => Some(&self.local),
            PortRef::Peer(name) => self.peers.get(name),
        }
    }

    /// The slot of `port`, created if needed (allocating only then).
    fn slot_mut(&mut self, port: PortRef<'_>) -> &mut PortSlot {
        match port {
            PortRef::Local => &mut self.local,
            PortRef::Peer(name) => {
                if !self.peers.contains_key(name) {
                    self.peers.insert(name.to_owned(), PortSlot::default());
                }
                // Present: inserted above if it was not (the fallback is never taken).
                self.peers.get_mut(name).unwrap_or(&mut self.local)
            }
        }
    }

    /// Counts one entry fewer at `port`, dropping a peer's slot once empty.
    fn release(&mut self, port: &Port, is_static: bool) {
        let slot = match port {
            Port::Local => &mut self.local,
            Port::Peer(name) => match self.peers.get_mut(name.as_str()) {
                Some(slot) => slot,
                None => return,
            },
        };
        if is_static {
            slot.statics = slot.statics.saturating_sub(1);
        } else {
            slot.learned = slot.learned.saturating_sub(1);
            self.learned_total = self.learned_total.saturating_sub(1);
        }
        if let Port::Peer(name) = port {
            if slot.learned == 0 && slot.statics == 0 {
                self.peers.remove(name.as_str());
            }
        }
    }

    /// Records that a frame from `mac` arrived at `port` at `now`.
    ///
    /// Refreshing a known entry does not allocate; a new or moved entry
    /// allocates its copy of the port.
    pub fn learn<'p>(
        &mut self,
        mac: MacAddr,
        port: impl Into<PortRef<'p>>,
        now: Instant,
    ) -> Learned {
        let port = port.into();
        if !mac.is_unicast() {
            return Learned::Invalid;
        }
        let moving = match self.entries.get_mut(&mac) {
            Some(entry) if port.is(&entry.port) => {
                entry.last_seen = Some(now);
                return Learned::Refreshed;
            }
            Some(entry) if entry.is_static => return Learned::Pinned,
            Some(entry)
                if self.limits.sticky
                    && matches!(port, PortRef::Peer(_))
                    && entry.last_seen.is_some_and(|seen| {
                        now.saturating_duration_since(seen) < self.limits.expire
                    }) =>
            {
                return Learned::Pinned
            }
            Some(_) => true,
            None => false,
        };
        let here = self.slot(port).map_or(0, |slot| slot.learned);
        if here >= self.limits.max_per_port {
            self.cap_hits += 1;
            self.per_port_hits += 1;
            return Learned::Refused;
        }
        if !moving && self.learned_total >= self.limits.max_total {
            self.cap_hits += 1;
            return Learned::Refused;
        }
        self.slot_mut(port).learned += 1;
        self.learned_total += 1;
        let entry = MacEntry {
            port: port.to_port(),
            is_static: false,
            last_seen: Some(now),
        };
        match self.entries.insert(mac, entry) {
            None => Learned::New,
            Some(old) => {
                self.release(&old.port, false);
                Learned::Moved { from: old.port }
            }
        }
    }

    /// Makes `macs` (multicast and zero addresses ignored) the static set of
    /// `port`, replacing the previous one. A static entry takes over any
    /// existing entry for its address (learned anywhere, or static at another
    /// port: the latest call wins); statics never expire and do not count
    /// against the caps.
    pub fn set_static(&mut self, port: Port, macs: &[MacAddr]) -> StaticChange {
        let pref = port.as_port_ref();
        let mut wanted = HashSet::with_capacity(macs.len());
        let mut change = StaticChange::default();
        for &mac in macs {
            if mac.is_unicast() {
                wanted.insert(mac);
            }
        }
        let mut gone: Vec<MacAddr> = self
            .entries
            .iter()
            .filter(|(mac, e)| e.is_static && pref.is(&e.port) && !wanted.contains(*mac))
            .map(|(mac, _)| *mac)
            .collect();
        gone.sort_unstable();
        for mac in &gone {
            if let Some(old) = self.entries.remove(mac) {
                self.release(&old.port, true);
            }
        }
        change.removed = gone;

        let mut seen = HashSet::with_capacity(wanted.len());
        for &mac in macs {
            if !wanted.contains(&mac) || !seen.insert(mac) {
                continue;
            }
            let mut last_seen = None;
            match self.entries.get(&mac) {
                Some(e) if e.is_static && pref.is(&e.port) => continue,
                Some(_) => {
                    if let Some(old) = self.entries.remove(&mac) {
                        self.release(&old.port, old.is_static);
                        if pref.is(&old.port) {
                            last_seen = old.last_seen;
                        }
                        change.replaced.push((mac, old.port));
                    }
                }
                None => {}
            }
            self.slot_mut(pref).statics += 1;
            let entry = MacEntry {
                port: port.clone(),
                is_static: true,
                last_seen,
            };
            self.entries.insert(mac, entry);
            change.added.push(mac);
        }
        change
    }

    /// Where `mac` is, if known.
    #[inline]
    pub fn lookup(&self, mac: &MacAddr) -> Option<&Port> {
        self.entries.get(mac).map(|e| &e.port)
    }

    /// The entry for `mac`, if any.
    pub fn get(&self, mac: &MacAddr) -> Option<&MacEntry> {
        self.entries.get(mac)
    }

    /// Removes the learned entries silent for at least the `expire` limit at
    /// `now` and returns them, sorted by address. Meant to be called
    /// periodically, not per frame.
    pub fn expire(&mut self, now: Instant) -> Vec<(MacAddr, Port)> {
        let max_age = self.limits.expire;
        let mut gone = Vec::new();
        self.entries.retain(|mac, e| {
            let stale = !e.is_static
                && e.last_seen
                    .is_none_or(|seen| now.saturating_duration_since(seen) >= max_age);
            if stale {
                gone.push((*mac, e.port.clone()));
            }
            !stale
        });
        for (_, port) in &gone {
            self.release(port, false);
        }
        gone.sort_unstable();
        gone
    }

    /// Removes the learned entry for `mac`, if there is one, and returns its
    /// port (static entries stay).
    pub fn forget(&mut self, mac: &MacAddr) -> Option<Port> {
        if self.entries.get(mac).is_none_or(|e| e.is_static) {
            return None;
        }
        let entry = self.entries.remove(mac)?;
        self.release(&entry.port, false);
        Some(entry.port)
    }

    /// Removes every learned entry at `port` (its static ones stay) and returns
    /// their addresses, sorted.
    pub fn remove_learned<'p>(&mut self, port: impl Into<PortRef<'p>>) -> Vec<MacAddr> {
        let port = port.into();
        if self.slot(port).is_none_or(|slot| slot.learned == 0) {
            return Vec::new();
        }
        let mut gone = Vec::new();
        let mut owned = None;
        self.entries.retain(|mac, e| {
            let remove = !e.is_static && port.is(&e.port);
            if remove {
                gone.push(*mac);
                owned.get_or_insert_with(|| e.port.clone());
            }
            !remove
        });
        if let Some(owned) = owned {
            for _ in &gone {
                self.release(&owned, false);
            }
        }
        gone.sort_unstable();
        gone
    }

    /// All entries, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (MacAddr, &MacEntry)> + '_ {
        self.entries.iter().map(|(mac, e)| (*mac, e))
    }

    /// Number of entries, static ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of learned (not static) entries.
    pub fn learned_len(&self) -> usize {
        self.learned_total
    }

    /// Number of entries (learned and static) at `port`.
    pub fn count_for<'p>(&self, port: impl Into<PortRef<'p>>) -> usize {
        self.slot(port.into()).map_or(0, |s| s.learned + s.statics)
    }

    /// Number of learned entries at `port`.
    pub fn learned_for<'p>(&self, port: impl Into<PortRef<'p>>) -> usize {
        self.slot(port.into()).map_or(0, |s| s.learned)
    }

    /// How many times learning was refused by a cap, since creation.
    pub fn cap_hits(&self) -> u64 {
        self.cap_hits
    }

    /// Of [`MacTable::cap_hits`], the refusals by the per-port cap (`MACTableMaxPerNode`).
    pub fn per_port_cap_hits(&self) -> u64 {
        self.per_port_hits
    }

    /// The most learned entries behind any one port (the local TAP or a peer).
    pub fn largest_port(&self) -> usize {
        self.peers
            .values()
            .map(|s| s.learned)
            .chain(std::iter::once(self.local.learned))
            .max()
            .unwrap_or(0)
    }
}
