//! Where other nodes' records say they reach each node: an index of the
//! records' neighbour lists, kept as records arrive and go, so a handshake
//! finds a peer's reported addresses without reading every record (with
//! thousands of known nodes, reading them all per attempt made the tick
//! quadratic).

use crate::name::NodeName;
use crate::wire::NodeRecord;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Per node: the reporters whose records list it, with the addresses they give.
#[derive(Debug, Default)]
pub(super) struct ObservedEndpoints {
    by_node: HashMap<NodeName, BTreeMap<NodeName, Vec<SocketAddr>>>,
}

impl ObservedEndpoints {
    /// `reporter`'s record changed from `old` to `new` (`None`: it has none).
    pub(super) fn replace(
        &mut self,
        reporter: &NodeName,
        old: Option<&NodeRecord>,
        new: Option<&NodeRecord>,
    ) {
        for n in old.into_iter().flat_map(|r| &r.neighbours) {
            if let Some(reporters) = self.by_node.get_mut(n.name.as_str()) {
                reporters.remove(reporter);
                if reporters.is_empty() {
                    self.by_node.remove(n.name.as_str());
                }
            }
        }
        for n in new.into_iter().flat_map(|r| &r.neighbours) {
            let addrs = self
                .by_node
                .entry(n.name.clone())
                .or_default()
                .entry(reporter.clone())
                .or_default();
            if !addrs.contains(&n.endpoint) {
                addrs.push(n.endpoint);
            }
        }
    }

    /// The addresses at least `min_reporters` different records give for
    /// `name`, most reported first.
    pub(super) fn confirmed(&self, name: &str, min_reporters: usize) -> Vec<SocketAddr> {
        let mut counts: Vec<(SocketAddr, usize)> = Vec::new();
        for addr in self
            .by_node
            .get(name)
            .into_iter()
            .flat_map(|r| r.values().flatten())
        {
            match counts.iter_mut().find(|(a, _)| a == addr) {
                Some((_, n)) => *n += 1,
                None => counts.push((*addr, 1)),
            }
        }
        counts.retain(|(_, n)| *n >= min_reporters);
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts.into_iter().map(|(a, _)| a).collect()
    }

    /// The nodes whose records list `name` as a neighbour (each has a live
    /// direct session with it).
    pub(super) fn reporters(&self, name: &str) -> Vec<NodeName> {
        self.by_node
            .get(name)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The addresses records give for `name`, each once, in the order of
    /// the reporters' names and then of their records.
    pub(super) fn of(&self, name: &str) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for addr in self
            .by_node
            .get(name)
            .into_iter()
            .flat_map(|r| r.values().flatten())
        {
            if !out.contains(addr) {
                out.push(*addr);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Neighbour;

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    fn record(origin: &str, neighbours: &[(&str, &str)]) -> NodeRecord {
        NodeRecord {
            name: name(origin),
            public_key: [7; 32],
            generation: 1,
            version: 1,
            addresses: Vec::new(),
            neighbours: neighbours
                .iter()
                .map(|(n, a)| Neighbour {
                    name: name(n),
                    endpoint: a.parse().unwrap(),
                })
                .collect(),
            extension: Vec::new(),
            signature: [0; 64],
        }
    }

    #[test]
    fn follows_records_as_they_change_and_go() {
        let mut idx = ObservedEndpoints::default();
        let b1 = record("b", &[("x", "192.0.2.1:655"), ("y", "192.0.2.2:655")]);
        let a1 = record("a", &[("x", "192.0.2.9:655"), ("x", "192.0.2.1:655")]);
        idx.replace(&name("b"), None, Some(&b1));
        idx.replace(&name("a"), None, Some(&a1));
        // Reporters in name order, each address once.
        let x: Vec<SocketAddr> = vec![
            "192.0.2.9:655".parse().unwrap(),
            "192.0.2.1:655".parse().unwrap(),
        ];
        assert_eq!(idx.of("x"), x);
        let b2 = record("b", &[("y", "192.0.2.3:655")]);
        idx.replace(&name("b"), Some(&b1), Some(&b2));
        assert_eq!(
            idx.of("y"),
            vec!["192.0.2.3:655".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(idx.of("x"), x);
        idx.replace(&name("a"), Some(&a1), None);
        assert!(idx.of("x").is_empty());
        assert!(
            !idx.by_node.contains_key("x"),
            "emptied entries are dropped"
        );
    }
}
