//! The flow table: which holder each established flow to a VIP goes to, so
//! that flows stay put while their holder lives (bounded, with idle expiry).

use crate::switch::FlowKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// One remembered flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The VIP it goes to.
    pub vip: IpAddr,
    /// The holder it sticks to.
    pub holder: String,
    /// Last frame of the flow.
    pub last_used: Instant,
}

/// Flows by key, bounded: when full, new flows are not remembered (they are
/// still steered by hash, which is stable while the holder set is).
#[derive(Debug, Default)]
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    capacity: usize,
    /// Flows not remembered because the table was full.
    pub full_refusals: u64,
}

impl FlowTable {
    /// A table for at most `capacity` flows.
    pub fn new(capacity: usize) -> FlowTable {
        FlowTable {
            flows: HashMap::new(),
            capacity,
            full_refusals: 0,
        }
    }

    /// Changes the bound (existing flows stay until they expire).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// The bound on remembered flows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The flow for `key`.
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        self.flows.get_mut(key)
    }

    /// The flow for `key`.
    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.flows.get(key)
    }

    /// Remembers a flow (replacing one with the same key), unless full.
    pub fn insert(&mut self, key: FlowKey, flow: Flow) {
        if self.flows.len() >= self.capacity && !self.flows.contains_key(&key) {
            self.full_refusals += 1;
            return;
        }
        self.flows.insert(key, flow);
    }

    /// Keeps the flows `keep` approves; returns how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&Flow) -> bool) -> usize {
        let before = self.flows.len();
        self.flows.retain(|_, f| keep(f));
        before - self.flows.len()
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Flows per holder for one VIP.
    pub fn count_by_holder(&self, vip: IpAddr) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for f in self.flows.values().filter(|f| f.vip == vip) {
            *out.entry(f.holder.clone()).or_insert(0) += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::MacAddr;

    fn key(n: u8) -> FlowKey {
        FlowKey::Mac {
            src: MacAddr([2, 0, 0, 0, 0, n]),
        }
    }

    #[test]
    fn bounded_and_counts() {
        let now = crate::test_clock::start();
        let vip: IpAddr = "10.1.1.10".parse().unwrap();
        let mut t = FlowTable::new(2);
        for (n, h) in [(1, "a"), (2, "b"), (3, "a")] {
            t.insert(
                key(n),
                Flow {
                    vip,
                    holder: h.into(),
                    last_used: now,
                },
            );
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.full_refusals, 1);
        let c = t.count_by_holder(vip);
        assert_eq!(c.get("a"), Some(&1));
        assert_eq!(c.get("b"), Some(&1));
        assert_eq!(t.retain(|f| f.holder == "a"), 1);
        assert!(t.get(&key(1)).is_some());
    }
}
