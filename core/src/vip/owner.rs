//! Who owns one of this node's VIPs on its local side of the TAP — the
//! host's own stack, a container or VM on a bridge with the TAP, a LAN host —
//! and whether that owner is present: the MAC steered frames are delivered
//! to (configured with `VIPOwner`, or learned from the owner's ARP/ND and
//! refreshed by probes), and the rise/fall count of the presence check
//! (`HealthCheck = VIP presence`). Sans-IO: the node sends the probes this
//! asks for and reports what the local side claims.

use crate::switch::MacAddr;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A presence check: the VIP is healthy while a station on the local side
/// answers for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceSpec {
    /// Time between two probes; a probe unanswered by the next one failed.
    pub interval: Duration,
    /// Consecutive answered probes that make an absent owner present (≥ 1).
    pub rise: u32,
    /// Consecutive unanswered probes that make a present owner absent (≥ 1).
    pub fall: u32,
}

/// How often a VIP with no known owner is probed for one.
pub const OWNER_DISCOVER: Duration = Duration::from_secs(1);
/// How often a learned owner is probed again (without a presence check).
pub const OWNER_REFRESH: Duration = Duration::from_secs(10);
/// A learned owner not heard from this long (without a presence check) may
/// be replaced by another station that claims the VIP; a fresher one may not.
pub const OWNER_FRESH: Duration = Duration::from_secs(30);
/// Least time between two probes a frame for a VIP with no known owner asks for.
pub const OWNER_HURRY: Duration = Duration::from_millis(100);
/// Least time between two log lines about conflicting owners of one VIP.
const CONFLICT_LOG_EVERY: Duration = Duration::from_secs(10);
/// After the local side says the owner left (its bridge forwarding entry
/// was deleted), how long fast probes wait for it to answer before its
/// presence fails at once.
pub const VANISH_CONFIRM: Duration = Duration::from_millis(20);
/// The fast probes' spacing while a vanish is being confirmed.
pub const VANISH_PROBE_EVERY: Duration = Duration::from_millis(5);

/// What a claim from the local side did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerClaim {
    /// The known owner said so again (refreshed; counts as presence).
    Confirmed,
    /// The first owner learned for the VIP.
    Learned,
    /// A new owner replaced one that had gone quiet.
    Moved {
        /// The owner it replaced.
        from: MacAddr,
    },
    /// Another station claims the VIP while its owner is fresh or
    /// configured: refused (the caller logs and counts it).
    Conflict {
        /// The owner kept.
        owner: MacAddr,
        /// Whether to log this one (at most one line per 10 s and VIP).
        log: bool,
    },
}

#[derive(Debug, Clone)]
struct Learned {
    mac: MacAddr,
    seen: Instant,
}

#[derive(Debug, Clone)]
struct Presence {
    spec: PresenceSpec,
    present: bool,
    successes: u32,
    failures: u32,
    /// A probe is out and its round has not ended.
    round_open: bool,
    /// The current round got an answer.
    answered: bool,
}

impl Presence {
    fn new(spec: PresenceSpec) -> Presence {
        Presence {
            spec,
            present: false,
            successes: 0,
            failures: 0,
            round_open: false,
            answered: false,
        }
    }

    /// An answer: counts once per round. Returns true if presence changed.
    fn answer(&mut self) -> bool {
        if self.answered {
            return false;
        }
        self.answered = true;
        self.failures = 0;
        if self.present {
            return false;
        }
        self.successes += 1;
        if self.successes >= self.spec.rise.max(1) {
            self.present = true;
            self.successes = 0;
            return true;
        }
        false
    }

    /// The owner is gone for sure: absent at once, a new round starts.
    /// Returns true if presence changed.
    fn fail_now(&mut self) -> bool {
        let was = self.present;
        self.present = false;
        self.successes = 0;
        self.failures = 0;
        self.round_open = false;
        self.answered = false;
        was
    }

    /// The end of a round. Returns true if presence changed.
    fn end_round(&mut self) -> bool {
        let failed = self.round_open && !self.answered;
        self.round_open = true;
        self.answered = false;
        if !failed {
            return false;
        }
        self.successes = 0;
        if !self.present {
            return false;
        }
        self.failures += 1;
        if self.failures >= self.spec.fall.max(1) {
            self.present = false;
            self.failures = 0;
            return true;
        }
        false
    }
}

/// The owner of one local VIP and its presence. See the module documentation.
#[derive(Debug, Clone)]
pub struct OwnerState {
    configured: Option<MacAddr>,
    learned: Option<Learned>,
    presence: Option<Presence>,
    next_probe: Instant,
    last_probe: Option<Instant>,
    conflict_logged: Option<Instant>,
    conflicts: u64,
    /// The local side said the owner left: confirming with fast probes.
    suspect: Option<Suspect>,
}

/// A vanish being confirmed ([`OwnerState::vanished`]).
#[derive(Debug, Clone, Copy)]
struct Suspect {
    /// No answer by then: presence fails.
    deadline: Instant,
    /// When the regular probe was due before the fast ones began.
    resume: Instant,
}

/// One local VIP's owner as `dump vips` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerView {
    /// Where steered frames go: the owner's MAC (None: the TAP's own).
    pub mac: Option<MacAddr>,
    /// The MAC comes from `VIPOwner` (else learned, if any).
    pub configured: bool,
    /// When the owner was last heard from (learned owners).
    pub seen: Option<Instant>,
    /// The presence check's verdict, if the VIP has one.
    pub present: Option<bool>,
    /// Claims by other stations refused so far.
    pub conflicts: u64,
    /// The local side said the owner left and fast probes are confirming it:
    /// presence fails then unless it answers.
    pub confirming_until: Option<Instant>,
}

impl OwnerState {
    /// The owner state of a VIP just configured at `now`: probed at once.
    pub fn new(configured: Option<MacAddr>, presence: Option<PresenceSpec>, now: Instant) -> Self {
        OwnerState {
            configured,
            learned: None,
            presence: presence.map(Presence::new),
            next_probe: now,
            last_probe: None,
            conflict_logged: None,
            conflicts: 0,
            suspect: None,
        }
    }

    /// New settings (reload): what was learned and counted stays; a changed
    /// presence check starts over.
    pub fn reconfigure(
        &mut self,
        configured: Option<MacAddr>,
        presence: Option<PresenceSpec>,
        now: Instant,
    ) {
        self.configured = configured;
        if self.presence.as_ref().map(|p| p.spec) != presence {
            self.presence = presence.map(Presence::new);
            self.suspect = None;
            self.next_probe = now;
        }
    }

    /// The MAC frames for the VIP are delivered to, if one is known.
    pub fn mac(&self) -> Option<MacAddr> {
        self.configured.or(self.learned.as_ref().map(|l| l.mac))
    }

    /// True unless a presence check says no owner is there.
    pub fn present(&self) -> bool {
        self.presence.as_ref().is_none_or(|p| p.present)
    }

    /// For `dump vips`.
    pub fn view(&self) -> OwnerView {
        OwnerView {
            mac: self.mac(),
            configured: self.configured.is_some(),
            seen: self.learned.as_ref().map(|l| l.seen),
            present: self.presence.as_ref().map(|p| p.present),
            conflicts: self.conflicts,
            confirming_until: self.suspect.map(|s| s.deadline),
        }
    }

    /// How long a learned owner stays fresh without being heard from: past
    /// the point where the presence check would call it absent, or
    /// [`OWNER_FRESH`].
    fn fresh_for(&self) -> Duration {
        match &self.presence {
            Some(p) => p.spec.interval * (p.spec.fall.max(1) + 1),
            None => OWNER_FRESH,
        }
    }

    /// A station on the local side claims the VIP with `mac` (its ARP or
    /// ND, an answer to a probe or not). Returns what it did and whether
    /// presence changed.
    pub fn claim(&mut self, mac: MacAddr, now: Instant) -> (OwnerClaim, bool) {
        let fresh_for = self.fresh_for();
        let claim = match (&mut self.learned, self.configured) {
            (_, Some(c)) if c != mac => None,
            (Some(l), _) if l.mac == mac => {
                l.seen = now;
                Some(OwnerClaim::Confirmed)
            }
            (Some(l), None) if now.saturating_duration_since(l.seen) < fresh_for => None,
            (Some(l), None) => {
                let from = l.mac;
                *l = Learned { mac, seen: now };
                Some(OwnerClaim::Moved { from })
            }
            (learned, configured) => {
                *learned = Some(Learned { mac, seen: now });
                Some(if configured.is_some() {
                    OwnerClaim::Confirmed
                } else {
                    OwnerClaim::Learned
                })
            }
        };
        let Some(claim) = claim else {
            self.conflicts += 1;
            let log = self
                .conflict_logged
                .is_none_or(|t| now.saturating_duration_since(t) >= CONFLICT_LOG_EVERY);
            if log {
                self.conflict_logged = Some(now);
            }
            let owner = self.mac().unwrap_or(mac);
            return (OwnerClaim::Conflict { owner, log }, false);
        };
        // The owner answered: it did not leave after all.
        if let Some(s) = self.suspect.take() {
            self.next_probe = s.resume;
        }
        let changed = self.presence.as_mut().is_some_and(Presence::answer);
        (claim, changed)
    }

    /// The local side says station `mac` left (its bridge forwarding entry
    /// was deleted: the port it was behind went down or away, or the entry
    /// aged out). If it is the present owner under a presence check, fast
    /// probes start at once and presence fails at `VANISH_CONFIRM` (20 ms) unless
    /// it answers. Returns true if that began.
    pub fn vanished(&mut self, mac: MacAddr, now: Instant) -> bool {
        if self.suspect.is_some()
            || self.mac() != Some(mac)
            || !self.presence.as_ref().is_some_and(|p| p.present)
        {
            return false;
        }
        self.suspect = Some(Suspect {
            deadline: now + VANISH_CONFIRM,
            resume: self.next_probe,
        });
        self.next_probe = now;
        true
    }

    /// A vanish is being confirmed: frames for the VIP wait.
    pub fn suspected(&self) -> bool {
        self.suspect.is_some()
    }

    /// A frame must be delivered to the VIP now: if no owner is known, the
    /// next probe goes at once (at most every [`OWNER_HURRY`]) rather than at
    /// the next discovery period.
    pub fn hurry(&mut self, now: Instant) {
        // A presence check probes on its own beat: an early probe would cut
        // its round short.
        if self.mac().is_some() || self.presence.is_some() {
            return;
        }
        let soonest = self.last_probe.map_or(now, |t| (t + OWNER_HURRY).max(now));
        self.next_probe = self.next_probe.min(soonest);
    }

    /// When the next probe is due.
    pub fn next_probe(&self) -> Option<Instant> {
        // A configured owner without a presence check needs no probing.
        (self.configured.is_none() || self.presence.is_some()).then_some(self.next_probe)
    }

    /// If a probe is due at `now`: ends the presence round, schedules the
    /// next probe, and returns whether presence changed (`None`: no probe due).
    pub fn probe_due(&mut self, now: Instant) -> Option<bool> {
        if self.next_probe().is_none_or(|t| now < t) {
            return None;
        }
        if let Some(s) = self.suspect {
            self.last_probe = Some(now);
            if now < s.deadline {
                self.next_probe = (now + VANISH_PROBE_EVERY).min(s.deadline);
                return Some(false);
            }
            self.suspect = None;
            let interval = self
                .presence
                .as_ref()
                .map_or(OWNER_REFRESH, |p| p.spec.interval);
            self.next_probe = now + interval.max(Duration::from_millis(1));
            return Some(self.presence.as_mut().is_some_and(Presence::fail_now));
        }
        let changed = self.presence.as_mut().is_some_and(Presence::end_round);
        let every = match (&self.presence, self.mac()) {
            (Some(p), _) => p.spec.interval,
            (None, None) => OWNER_DISCOVER,
            (None, Some(_)) => OWNER_REFRESH,
        };
        self.next_probe = now + every.max(Duration::from_millis(1));
        self.last_probe = Some(now);
        Some(changed)
    }
}

impl super::VipEngine {
    /// The local VIPs whose owner probe is due at `now` (the node sends
    /// them into the TAP), and those whose presence verdict changed (then
    /// our record changes too).
    pub fn owner_probes(&mut self, now: Instant) -> (Vec<IpAddr>, Vec<IpAddr>) {
        let mut due = Vec::new();
        let mut changed = Vec::new();
        for (addr, s) in self.local.iter_mut() {
            if let Some(c) = s.owner.probe_due(now) {
                due.push(*addr);
                if c {
                    changed.push(*addr);
                }
            }
        }
        self.counters.owner_probes += due.len() as u64;
        if !changed.is_empty() {
            self.refresh_local(now);
        }
        (due, changed)
    }

    /// A station on our side of the TAP claims local VIP `vip` with `mac`
    /// (its ARP or ND). `None` if `vip` is not ours; else what it did, and
    /// whether a presence verdict changed (then our record changes too).
    pub fn owner_claim(
        &mut self,
        vip: IpAddr,
        mac: MacAddr,
        now: Instant,
    ) -> Option<(OwnerClaim, bool)> {
        let s = self.local.get_mut(&vip)?;
        let (claim, changed) = s.owner.claim(mac, now);
        match claim {
            OwnerClaim::Learned | OwnerClaim::Moved { .. } => self.counters.owners_learned += 1,
            OwnerClaim::Conflict { .. } => self.counters.owner_conflicts += 1,
            OwnerClaim::Confirmed => {}
        }
        if changed {
            self.refresh_local(now);
        }
        Some((claim, changed))
    }

    /// A frame is being delivered to local VIP `vip`: probe for its owner
    /// soon if none is known ([`OwnerState::hurry`]).
    pub fn owner_wanted(&mut self, vip: &IpAddr, now: Instant) {
        if let Some(s) = self.local.get_mut(vip) {
            s.owner.hurry(now);
        }
    }

    /// The MAC frames for local VIP `vip` are delivered to on our side, if
    /// an owner is configured or known (else the TAP's own).
    pub fn owner_mac(&self, vip: &IpAddr) -> Option<MacAddr> {
        self.local.get(vip).and_then(|s| s.owner.mac())
    }

    /// The owner of local VIP `vip`, for `dump vips`.
    pub fn owner_view(&self, vip: &IpAddr) -> Option<OwnerView> {
        self.local.get(vip).map(|s| s.owner.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xb]);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn learns_refreshes_and_refuses_a_second_station_while_fresh() {
        let t0 = crate::test_clock::start();
        let mut o = OwnerState::new(None, None, t0);
        assert_eq!(o.mac(), None);
        assert_eq!(o.claim(A, t0).0, OwnerClaim::Learned);
        assert_eq!(o.claim(A, t0 + ms(10)).0, OwnerClaim::Confirmed);
        assert!(matches!(
            o.claim(B, t0 + ms(20)).0,
            OwnerClaim::Conflict {
                owner: A,
                log: true
            }
        ));
        assert!(matches!(
            o.claim(B, t0 + ms(30)).0,
            OwnerClaim::Conflict { log: false, .. }
        ));
        assert_eq!(o.mac(), Some(A));
        assert_eq!(o.view().conflicts, 2);
        // A goes quiet: B takes over.
        let later = t0 + ms(10) + OWNER_FRESH;
        assert_eq!(o.claim(B, later).0, OwnerClaim::Moved { from: A });
        assert_eq!(o.mac(), Some(B));
    }

    #[test]
    fn a_configured_owner_wins_and_needs_no_probe() {
        let t0 = crate::test_clock::start();
        let mut o = OwnerState::new(Some(A), None, t0);
        assert_eq!(o.next_probe(), None);
        assert!(matches!(
            o.claim(B, t0).0,
            OwnerClaim::Conflict { owner: A, .. }
        ));
        assert_eq!(o.claim(A, t0).0, OwnerClaim::Confirmed);
        assert_eq!(o.mac(), Some(A));
    }

    #[test]
    fn presence_rises_and_falls_by_rounds() {
        let t0 = crate::test_clock::start();
        let spec = PresenceSpec {
            interval: ms(100),
            rise: 2,
            fall: 2,
        };
        let mut o = OwnerState::new(None, Some(spec), t0);
        assert!(!o.present());
        let mut t = t0;
        // Two answered rounds: present.
        for round in 0..2 {
            assert_eq!(o.probe_due(t), Some(false));
            let (_, changed) = o.claim(A, t + ms(1));
            assert_eq!(changed, round == 1, "round {round}");
            t += ms(100);
        }
        assert!(o.present());
        // Not due before the interval.
        assert_eq!(o.probe_due(t - ms(1)), None);
        // Two unanswered rounds: absent at the end of the second.
        assert_eq!(o.probe_due(t), Some(false));
        t += ms(100);
        assert_eq!(o.probe_due(t), Some(false));
        t += ms(100);
        assert_eq!(o.probe_due(t), Some(true));
        assert!(!o.present());
    }

    #[test]
    fn a_vanish_fails_presence_at_once_unless_the_owner_answers() {
        let t0 = crate::test_clock::start();
        let spec = PresenceSpec {
            interval: ms(100),
            rise: 1,
            fall: 2,
        };
        let mut o = OwnerState::new(None, Some(spec), t0);
        assert_eq!(o.probe_due(t0), Some(false));
        assert!(o.claim(A, t0 + ms(1)).1);
        assert!(o.present());
        // Another station leaving, or none under a presence check: nothing.
        assert!(!o.vanished(B, t0 + ms(10)));
        // The owner's entry went: a probe at once, fast ones after.
        assert!(o.vanished(A, t0 + ms(10)));
        assert!(o.suspected());
        assert!(!o.vanished(A, t0 + ms(11)), "one confirmation at a time");
        assert_eq!(
            o.view().confirming_until,
            Some(t0 + ms(10) + VANISH_CONFIRM)
        );
        assert_eq!(o.view().present, Some(true), "present until confirmed gone");
        assert_eq!(o.probe_due(t0 + ms(10)), Some(false));
        assert_eq!(o.next_probe(), Some(t0 + ms(10) + VANISH_PROBE_EVERY));
        // It answers: a false alarm; the regular round resumes.
        assert!(!o.claim(A, t0 + ms(12)).1);
        assert!(!o.suspected() && o.present());
        assert_eq!(o.next_probe(), Some(t0 + ms(100)));
        // It goes for real: absent when the confirmation ends unanswered.
        let t = t0 + ms(150);
        assert!(o.vanished(A, t));
        let mut now = t;
        let mut changed = false;
        while now <= t + VANISH_CONFIRM {
            if let Some(c) = o.probe_due(now) {
                changed |= c;
            }
            now += ms(1);
        }
        assert!(changed && !o.present() && !o.suspected());
        assert_eq!(o.view().confirming_until, None);
    }
}
