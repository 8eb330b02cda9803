//! Path validation: a peer's endpoint moves to a new source address only
//! after the peer echoes a challenge sent there (as QUIC validates paths), and
//! until then at most three times the bytes received from that address go to
//! it. A member that spoofs its packets' source cannot aim this node's
//! traffic at a victim.

use super::{Node, PathCheck};
use crate::wire::Message;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most bytes sent to an unproven address per byte received from it.
pub const AMPLIFICATION_LIMIT: u64 = 3;
/// Least time between two challenges to the same address.
const CHALLENGE_EVERY: Duration = Duration::from_millis(100);

impl Node {
    /// An authenticated packet of `len` bytes from `name` came from `from`,
    /// which is not its endpoint: challenge the address (within its budget).
    pub(super) fn check_path(&mut self, now: Instant, name: &str, from: SocketAddr, len: usize) {
        let fresh_token = self.rng.next_u64();
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let check = match &mut peer.path_check {
            Some(c) if c.addr == from => c,
            slot => {
                tracing::info!(peer = %name, %from, "packets from a new address: checking it");
                slot.insert(PathCheck {
                    addr: from,
                    token: fresh_token,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    last_challenge: None,
                })
            }
        };
        check.rx_bytes += len as u64;
        if check
            .last_challenge
            .is_some_and(|t| now.saturating_duration_since(t) < CHALLENGE_EVERY)
        {
            return;
        }
        let token = check.token;
        if self.send_unproven(name, from, &Message::PathChallenge(token)) {
            if let Some(c) = self.peers.get_mut(name).and_then(|p| p.path_check.as_mut()) {
                c.last_challenge = Some(now);
            }
        }
    }

    /// A PathChallenge from `name` arrived from `src`: echo it there (charged
    /// to that address's budget unless it is the peer's endpoint).
    pub(super) fn on_path_challenge(&mut self, name: &str, src: SocketAddr, token: u64) {
        let at_endpoint = self
            .peers
            .get(name)
            .is_some_and(|p| p.endpoint == Some(src));
        if at_endpoint {
            self.send_message(name, &Message::PathResponse(token));
        } else {
            self.send_unproven(name, src, &Message::PathResponse(token));
        }
    }

    /// A PathResponse from `name` arrived from `src`: if it echoes the
    /// challenge sent there, `src` becomes the endpoint.
    pub(super) fn on_path_response(
        &mut self,
        now: Instant,
        name: &str,
        src: SocketAddr,
        token: u64,
    ) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let proven = peer
            .path_check
            .as_ref()
            .is_some_and(|c| c.addr == src && c.token == token);
        if !proven {
            return;
        }
        peer.path_check = None;
        tracing::info!(peer = %name, from = ?peer.endpoint, to = %src, "peer moved to a new address (proven)");
        peer.endpoint = Some(src);
        // Another path: its MTU is found afresh.
        let ceiling = self.pmtu_ceiling();
        if let Some(peer) = self.peers.get_mut(name) {
            peer.pmtu.restart_for(now, ceiling, peer.host_path);
        }
        self.touch(name);
        self.own.dirty = true;
    }

    /// Seals `msg` for `name` and sends it to `to`, an address not proven yet,
    /// if its budget allows; false (counted) if not.
    fn send_unproven(&mut self, name: &str, to: SocketAddr, msg: &Message<'_>) -> bool {
        let Some(mut transmit) = self.seal_for(name, msg) else {
            return false;
        };
        let Some(check) = self
            .peers
            .get_mut(name)
            .and_then(|p| p.path_check.as_mut())
            .filter(|c| c.addr == to)
        else {
            self.drops.unproven_path += 1;
            self.spare.push(transmit.payload);
            return false;
        };
        let len = transmit.payload.len() as u64;
        if check.tx_bytes + len > AMPLIFICATION_LIMIT * check.rx_bytes {
            self.drops.unproven_path += 1;
            self.spare.push(transmit.payload);
            return false;
        }
        check.tx_bytes += len;
        transmit.destination = to;
        self.urgent.push_back(transmit);
        true
    }
}
