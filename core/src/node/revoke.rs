//! Revocation: a node whose host file the operator removed (or listed in
//! `NodeConfig::revoked`) loses its sessions, pending handshakes, record,
//! subnets and VIP claims at once, and gossip cannot bring it back.

use super::{DownReason, Node};
use crate::name::NodeName;
use std::collections::BTreeSet;
use std::time::Instant;

impl Node {
    /// Applies a new host list's revocations: every name that had a host file
    /// at the previous load and has none now, and every name the configuration
    /// lists as revoked without a host file, is revoked. A name with a host
    /// file again is trusted again.
    pub(super) fn apply_revocations(&mut self, now: Instant, host_files: BTreeSet<NodeName>) {
        let gone: Vec<NodeName> = self
            .host_files
            .difference(&host_files)
            .filter(|n| **n != self.config.name)
            .cloned()
            .collect();
        let listed: Vec<NodeName> = self
            .config
            .revoked
            .iter()
            .filter(|n| !host_files.contains(*n) && **n != self.config.name)
            .cloned()
            .collect();
        for name in &host_files {
            if self.revoked.remove(name) {
                tracing::info!(peer = %name, "host file is back: the node is trusted again");
            }
        }
        self.host_files = host_files;
        for name in gone.into_iter().chain(listed) {
            self.revoke(now, name);
        }
    }

    /// Forgets `name` entirely and refuses it from now on.
    fn revoke(&mut self, now: Instant, name: NodeName) {
        if !self.revoked.insert(name.clone()) {
            return;
        }
        let Some(peer) = self.peers.get(&name) else {
            tracing::info!(peer = %name, "revoked (no host file): gossip cannot introduce it");
            return;
        };
        let was_alive = peer.alive;
        tracing::warn!(
            peer = %name,
            "revoked: its host file is gone; dropping its sessions, record, subnets and VIPs"
        );
        if was_alive {
            self.mark_dead(now, name.as_str(), DownReason::Revoked);
        }
        self.forget_peer(now, &name, false);
        self.own.dirty = true;
    }

    /// True if `name` was revoked (records and handshakes from it are refused).
    pub fn is_revoked(&self, name: &str) -> bool {
        self.revoked.iter().any(|n| n.as_str() == name)
    }
}
