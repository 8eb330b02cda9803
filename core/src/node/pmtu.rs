//! Path MTU discovery per peer (PROTOCOL §5.4, r10): the largest datagram
//! that reaches the peer, found with padded probes it acknowledges and
//! lowered at once when the kernel refuses a send as too big (`EMSGSIZE`:
//! larger than the interface, or than a path MTU an ICMP message taught it).
//! Frames that do not fit are split into pieces (`pieces.rs`), so a smaller
//! MTU anywhere on the path costs a second datagram, never the frame.

use super::Node;
use crate::wire::Message;
use rand_core::RngCore;
use std::time::{Duration, Instant};

/// UDP payload assumed to pass everywhere without probing: IPv6's minimum
/// MTU (1280) less its header (40) and UDP's (8). Gossip fits in it.
pub const FLOOR_DATAGRAM: u16 = 1232;
/// Most UDP payload one IPv4 datagram can carry.
pub const MAX_DATAGRAM: u16 = 65_507;
/// Bytes a data packet adds to its plaintext: header (14) and tag (16).
pub const DATA_OVERHEAD: u16 = 30;
/// Bytes a Frame message adds to the frame: data overhead and the type byte.
pub const FRAME_OVERHEAD: u16 = DATA_OVERHEAD + 1;
/// A probe's plaintext before its padding: type byte and token.
const PROBE_HEADER: u16 = 1 + 4;
/// Lost probes of one size before that size is taken as too big (a lone
/// loss must not shrink the path).
const LOSSES_TO_SHRINK: u8 = 3;
/// How often a converged path that carries frames above the floor is
/// checked again at its size (it may have shrunk: a route change, a
/// tunnel). Short, because until then large frames vanish in the black hole;
/// cheap, because it is one datagram per busy path. A path without such
/// frames is not probed at all.
const RECHECK_EVERY: Duration = Duration::from_secs(5);
/// How often a path below its ceiling is searched again upwards.
const REGROW_EVERY: Duration = Duration::from_secs(600);

/// One probe in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    token: u32,
    size: u16,
    sent_at: Instant,
}

/// A peer path's MTU: what is known to pass (`min`), what may (`max`), and
/// the probe in flight. Sizes are UDP payload bytes.
#[derive(Debug, Clone)]
pub struct PathMtu {
    min: u16,
    max: u16,
    ceiling: u16,
    probe: Option<Probe>,
    losses: u8,
    tried_ceiling: bool,
    next_probe: Option<Instant>,
    last_regrow: Option<Instant>,
    takes_pieces: bool,
    /// Frames above the floor went this way since the last check.
    in_use: bool,
    /// When the last probe was sent.
    last_probe: Option<Instant>,
}

impl Default for PathMtu {
    fn default() -> Self {
        PathMtu {
            min: FLOOR_DATAGRAM,
            max: FLOOR_DATAGRAM,
            ceiling: FLOOR_DATAGRAM,
            probe: None,
            losses: 0,
            tried_ceiling: false,
            next_probe: None,
            last_regrow: None,
            takes_pieces: false,
            in_use: false,
            last_probe: None,
        }
    }
}

impl PathMtu {
    /// A new path (the peer came up, or moved): search from the floor up to
    /// `ceiling` (the largest datagram a frame can need), starting now. What
    /// the peer speaks is kept ([`PathMtu::forget_peer`] clears it).
    pub fn restart(&mut self, now: Instant, ceiling: u16) {
        let ceiling = ceiling.clamp(FLOOR_DATAGRAM, MAX_DATAGRAM);
        *self = PathMtu {
            takes_pieces: self.takes_pieces,
            min: FLOOR_DATAGRAM,
            max: ceiling,
            ceiling,
            next_probe: Some(now),
            last_regrow: Some(now),
            ..PathMtu::default()
        };
    }

    /// A new path to a peer whose host file may fix its MTU (`PMTU`) or
    /// turn discovery off (`PMTUDiscovery = no`): as [`PathMtu::restart`],
    /// within `PMTU`; without discovery the path is taken to carry `PMTU`
    /// (or, without it, the ceiling: frames go whole, as before r10).
    pub fn restart_for(&mut self, now: Instant, ceiling: u16, host: super::HostPath) {
        let ceiling = match host.pmtu {
            Some(frame) => ceiling.min(frame.saturating_add(FRAME_OVERHEAD)),
            None => ceiling,
        };
        if host.pmtu_discovery && ceiling >= FLOOR_DATAGRAM {
            self.restart(now, ceiling);
        } else {
            *self = PathMtu {
                min: ceiling,
                max: ceiling,
                ceiling,
                takes_pieces: self.takes_pieces,
                ..PathMtu::default()
            };
        }
    }

    /// Stops probing (the peer is down).
    pub fn stop(&mut self) {
        self.probe = None;
        self.next_probe = None;
    }

    /// The peer went down: when it returns it may run another version.
    pub fn forget_peer(&mut self) {
        self.stop();
        self.takes_pieces = false;
    }

    /// Largest datagram known to pass: frames are sent whole up to this.
    pub fn confirmed(&self) -> u16 {
        self.min
    }

    /// The peer probes or answers probes (r10): it joins frame pieces. An
    /// older peer does neither; it gets every frame whole, as before r10.
    pub fn takes_pieces(&self) -> bool {
        self.takes_pieces
    }

    /// A probe or a probe's answer came from the peer on this session.
    pub fn peer_speaks_r10(&mut self) {
        self.takes_pieces = true;
    }

    /// Largest datagram that may pass (the search's upper bound).
    pub fn upper(&self) -> u16 {
        self.max
    }

    /// True once the search is over (until the next recheck).
    pub fn converged(&self) -> bool {
        self.min >= self.max
    }

    /// When [`PathMtu::on_due`] has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        self.next_probe
    }

    /// The size the next probe tries: the ceiling first (most paths carry
    /// it: one round trip and done), then the upper middle of what is left,
    /// so the search always moves.
    fn size_to_try(&self) -> u16 {
        if self.tried_ceiling {
            self.min + (self.max - self.min).div_ceil(2)
        } else {
            self.max
        }
    }

    /// The probe timer fired: a lost probe counts (its size is tried again,
    /// and after `LOSSES_TO_SHRINK` (3) losses taken as too big), and the next
    /// probe's size is returned to send with `token`. `wait` is how long an
    /// answer may take (a few round trips).
    pub fn on_due(&mut self, now: Instant, wait: Duration, token: u32) -> Option<u16> {
        if self.next_probe.is_none_or(|t| t > now) {
            return None;
        }
        let mut again = None;
        if let Some(p) = self.probe.take() {
            self.losses += 1;
            if self.losses >= LOSSES_TO_SHRINK {
                self.losses = 0;
                self.shrink_below(p.size);
            } else {
                again = Some(p.size);
            }
        }
        let size = match again {
            Some(size) => size,
            None if self.converged() => return self.recheck(now, wait, token),
            None => self.size_to_try(),
        };
        Some(self.send_probe(now, wait, token, size))
    }

    fn send_probe(&mut self, now: Instant, wait: Duration, token: u32, size: u16) -> u16 {
        self.tried_ceiling = true;
        self.last_probe = Some(now);
        self.probe = Some(Probe {
            token,
            size,
            sent_at: now,
        });
        self.next_probe = Some(now + wait);
        size
    }

    /// A converged path's periodic check: now and then the ceiling again
    /// (did it grow?), else its size (did it shrink?).
    fn recheck(&mut self, now: Instant, wait: Duration, token: u32) -> Option<u16> {
        if !std::mem::take(&mut self.in_use) {
            // Idle (or small frames only): nothing to check until a large
            // frame goes this way ([`PathMtu::note_large_frame`]).
            self.next_probe = None;
            return None;
        }
        let regrow = self.max < self.ceiling
            && self
                .last_regrow
                .is_none_or(|t| now.saturating_duration_since(t) >= REGROW_EVERY);
        if regrow {
            self.last_regrow = Some(now);
            self.max = self.ceiling;
            self.tried_ceiling = false;
            return Some(self.send_probe(now, wait, token, self.ceiling));
        }
        if self.min <= FLOOR_DATAGRAM {
            self.next_probe = Some(now + RECHECK_EVERY);
            return None;
        }
        Some(self.send_probe(now, wait, token, self.min))
    }

    /// `size` does not pass: the upper bound falls below it, and if what
    /// was known to pass does not either, the search starts from the floor.
    fn shrink_below(&mut self, size: u16) {
        self.max = self.max.min(size.saturating_sub(1)).max(FLOOR_DATAGRAM);
        if self.min > self.max {
            self.min = FLOOR_DATAGRAM;
        }
    }

    /// The probe `token` was acknowledged: its size passes. Returns true if
    /// it was the probe in flight.
    pub fn on_ack(&mut self, now: Instant, token: u32) -> bool {
        let Some(p) = self.probe.filter(|p| p.token == token) else {
            return false;
        };
        self.probe = None;
        self.losses = 0;
        self.min = self.min.max(p.size);
        self.max = self.max.max(self.min);
        self.next_probe = Some(if self.converged() {
            now + RECHECK_EVERY
        } else {
            now
        });
        true
    }

    /// A frame that needs more than the floor goes this way: a sleeping
    /// converged path is checked again if its last check is older than
    /// `RECHECK_EVERY` (5 s). True if that set a new probe time (the caller
    /// requeues the peer's timer).
    pub fn note_large_frame(&mut self, now: Instant) -> bool {
        self.in_use = true;
        if self.next_probe.is_some() || !self.converged() {
            return false;
        }
        let due = self
            .last_probe
            .map_or(now, |t| (t + RECHECK_EVERY).max(now));
        self.next_probe = Some(due);
        true
    }

    /// The kernel refused a datagram of `len` bytes to this path as too big.
    pub fn on_too_big(&mut self, now: Instant, len: usize) {
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        if len > self.max {
            return;
        }
        if self.probe.is_some_and(|p| p.size >= len) {
            self.probe = None;
            self.losses = 0;
        }
        self.shrink_below(len);
        self.next_probe = Some(now);
    }
}

/// Plaintext padding that makes a probe datagram `size` bytes long.
pub fn probe_padding(size: u16) -> u16 {
    size.saturating_sub(DATA_OVERHEAD + PROBE_HEADER)
}

impl Node {
    /// The largest datagram a frame of ours can need: the TAP's largest
    /// frame in a Frame message.
    pub(super) fn pmtu_ceiling(&self) -> u16 {
        let frame = self.switch.config().max_frame_len;
        u16::try_from(frame.saturating_add(usize::from(FRAME_OVERHEAD))).unwrap_or(MAX_DATAGRAM)
    }

    /// How long a probe's answer may take from `name`: a few round trips,
    /// within 100 ms..1 s (300 ms before any RTT is known).
    fn probe_wait(&self, name: &str) -> Duration {
        self.peers
            .get(name)
            .and_then(|p| p.detector.srtt())
            .map_or(Duration::from_millis(300), |srtt| {
                (srtt * 3).clamp(Duration::from_millis(100), Duration::from_secs(1))
            })
    }

    /// The tick for `name`'s path MTU: sends the next probe if one is due.
    pub(super) fn tick_pmtu(&mut self, now: Instant, name: &str) {
        let wait = self.probe_wait(name);
        let token = self.rng.next_u32();
        let Some(peer) = self.peers.get_mut(name).filter(|p| p.alive) else {
            return;
        };
        if let Some(size) = peer.pmtu.on_due(now, wait, token) {
            tracing::trace!(peer = %name, size, "path MTU probe");
            let padding = probe_padding(size);
            self.send_message(name, &Message::MtuProbe { token, padding });
        }
    }

    /// A probe from `name` (plaintext of `size` bytes): acknowledge it.
    pub(super) fn on_mtu_probe(&mut self, name: &str, token: u32, padding: u16) {
        if let Some(peer) = self.peers.get_mut(name) {
            peer.pmtu.peer_speaks_r10();
        }
        let size = PROBE_HEADER.saturating_add(padding);
        self.send_message(name, &Message::MtuProbeAck { token, size });
    }

    /// `name` acknowledged our probe `token`.
    pub(super) fn on_mtu_probe_ack(&mut self, now: Instant, name: &str, token: u32) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        peer.pmtu.peer_speaks_r10();
        let before = peer.pmtu.confirmed();
        if peer.pmtu.on_ack(now, token) {
            let after = peer.pmtu.confirmed();
            if peer.pmtu.converged() && after != before {
                tracing::debug!(peer = %name, datagram = after, "path MTU found");
            }
            self.retime(name);
        }
    }

    /// The driver could not send a datagram of `len` bytes to `destination`:
    /// the kernel says it is larger than the path allows (`EMSGSIZE`). The
    /// peer's path MTU falls below `len` at once; frames are split to fit.
    pub fn handle_send_too_big(
        &mut self,
        now: Instant,
        destination: std::net::SocketAddr,
        len: usize,
    ) {
        let names: Vec<_> = self
            .peers
            .values()
            .filter(|p| p.endpoint == Some(destination))
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            if let Some(peer) = self.peers.get_mut(&name) {
                peer.pmtu.on_too_big(now, len);
                tracing::debug!(peer = %name, len, max = peer.pmtu.upper(), "datagram too big for the path");
            }
            self.touch(&name);
        }
        self.finish(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(100);

    /// Runs the search against a path that passes datagrams up to `mtu`
    /// (no loss); returns the probes sent.
    fn search(p: &mut PathMtu, mut now: Instant, mtu: u16) -> (Vec<u16>, Instant) {
        let mut sent = Vec::new();
        for token in 0..200u32 {
            if p.converged() && p.probe.is_none() {
                break;
            }
            match p.on_due(now, MS, token) {
                Some(size) => {
                    sent.push(size);
                    if size <= mtu {
                        assert!(p.on_ack(now + MS / 10, token));
                        now += MS / 10;
                    } else {
                        now += MS;
                    }
                }
                None => now = p.next_due().unwrap_or(now + MS),
            }
        }
        (sent, now)
    }

    #[test]
    fn a_clean_path_takes_one_probe() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        let (sent, _) = search(&mut p, t0, 1472);
        assert_eq!(sent, vec![1449]);
        assert_eq!(p.confirmed(), 1449);
        assert!(p.converged());
    }

    #[test]
    fn a_small_path_is_found_exactly() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        // A 1300-byte underlay link: 1272 bytes of UDP payload over IPv4.
        let (sent, _) = search(&mut p, t0, 1272);
        assert_eq!(p.confirmed(), 1272, "probes {sent:?}");
        assert_eq!(p.upper(), 1272);
        // Three losses at the ceiling, then a binary search of ~8 steps.
        assert!(sent.len() <= 3 + 9 * 3, "{} probes: {sent:?}", sent.len());
    }

    #[test]
    fn one_lost_probe_does_not_shrink_the_path() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        assert_eq!(p.on_due(t0, MS, 1), Some(1449));
        // Lost: the same size is tried again.
        assert_eq!(p.on_due(t0 + MS, MS, 2), Some(1449));
        assert!(p.on_ack(t0 + MS * 2, 2));
        assert_eq!(p.confirmed(), 1449);
        // A late answer to the first probe is not taken for the second.
        assert!(!p.on_ack(t0 + MS * 2, 1));
    }

    #[test]
    fn emsgsize_lowers_the_bound_at_once() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        assert_eq!(p.on_due(t0, MS, 1), Some(1449));
        p.on_too_big(t0, 1449);
        assert_eq!(p.upper(), 1448);
        assert_eq!(p.next_due(), Some(t0));
        // Not counted as a loss: the search goes on below at once.
        let next = p.on_due(t0, MS, 2).expect("a probe");
        assert!(next < 1449 && next > FLOOR_DATAGRAM, "{next}");
    }

    #[test]
    fn a_shrunk_path_is_found_at_the_recheck() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        let (_, now) = search(&mut p, t0, 1472);
        assert_eq!(p.confirmed(), 1449);
        // The route changes: 1300-byte link. The recheck probes at 1449 are lost.
        let mut now = p.next_due().expect("recheck").max(now);
        assert!(now >= t0 + RECHECK_EVERY);
        let mut token = 100;
        let mut sizes = Vec::new();
        while p.confirmed() == 1449 {
            // Full-size frames keep flowing: the path is checked.
            p.note_large_frame(now);
            sizes.extend(p.on_due(now, MS, token));
            token += 1;
            now += MS;
            assert!(token < 110, "never noticed");
        }
        // Three losses at the old size, then the search starts below it.
        assert_eq!(&sizes[..3], &[1449, 1449, 1449]);
        assert!(sizes[3] < 1449);
        now += MS;
        let (_, _) = search(&mut p, now, 1272);
        assert_eq!(p.confirmed(), 1272);
    }

    #[test]
    fn a_path_below_its_ceiling_grows_again_later() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        let (_, _) = search(&mut p, t0, 1300);
        assert_eq!(p.confirmed(), 1300);
        // Ten minutes on the path carries the ceiling again.
        let later = t0 + REGROW_EVERY + Duration::from_secs(1);
        p.note_large_frame(later);
        assert_eq!(p.on_due(later, MS, 500), Some(1449));
        assert!(p.on_ack(later + MS / 10, 500));
        assert_eq!(p.confirmed(), 1449);
        assert!(p.converged());
    }

    #[test]
    fn an_idle_path_is_not_probed_until_a_large_frame_goes() {
        let t0 = crate::test_clock::start();
        let mut p = PathMtu::default();
        p.restart(t0, 1449);
        let (_, now) = search(&mut p, t0, 1472);
        // The recheck finds no traffic: the path sleeps.
        let check = p.next_due().expect("a recheck");
        assert_eq!(p.on_due(check, MS, 50), None);
        assert_eq!(p.next_due(), None);
        // A large frame an hour later wakes it at once (the last check is old).
        let later = now + Duration::from_secs(3600);
        assert!(p.note_large_frame(later));
        assert_eq!(p.next_due(), Some(later));
        assert_eq!(p.on_due(later, MS, 51), Some(1449));
        // Another right after changes nothing: a probe is in flight.
        assert!(!p.note_large_frame(later));
    }

    #[test]
    fn probe_padding_makes_the_datagram_size() {
        assert_eq!(probe_padding(1449) + DATA_OVERHEAD + PROBE_HEADER, 1449);
        let msg = Message::MtuProbe {
            token: 1,
            padding: probe_padding(1449),
        };
        assert_eq!(msg.to_vec().len() + usize::from(DATA_OVERHEAD), 1449);
    }
}
