//! The adaptive failure detector of one peer: smoothed RTT and its variation
//! from the Hello echo (RFC 6298), the peer's heartbeat inter-arrival mean,
//! jitter and loss, and from them the silence deadline after which the peer is
//! dead (bounded by the operator's HelloInterval / DeadInterval); plus
//! on-demand probing and suspicion when frames sent to it go unanswered.

use crate::wire::Hello;
use std::time::{Duration, Instant};

/// A peer may not be scheduled for this long (a loaded machine, a GC-like
/// pause) without being declared dead or suspected: 50 ms and some slack.
pub const FREEZE_MARGIN: Duration = Duration::from_millis(60);
/// Shortest time from the first unanswered frame to a suspicion: a peer
/// frozen for 50 ms answers the frames it got meanwhile within it.
pub const SUSPECT_FLOOR: Duration = Duration::from_millis(75);
/// An on-demand check that runs this much later than due means this node was
/// not running: it probes again instead of suspecting.
pub const LATE_SLACK: Duration = Duration::from_millis(20);
/// Heartbeats lost in a row that a deadline tolerates with probability
/// `1 - LOSS_TARGET` at the measured loss rate.
const LOSS_TARGET: f64 = 1e-6;
/// Hellos flagged SLOW that a sender still sends at the fast rate before it
/// slows down, so that a lost one cannot leave the receiver on the fast deadline.
pub const SLOW_ANNOUNCE: u8 = 3;
/// Weight of one heartbeat slot in the loss average.
const LOSS_WEIGHT: f64 = 1.0 / 32.0;

/// The operator's bounds and the idle rate.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// `HelloInterval`: the heartbeat period of a pair with a steering relation.
    pub hello: Duration,
    /// `DeadInterval`: the longest silence such a pair tolerates.
    pub dead: Duration,
    /// The heartbeat period of a pair without one.
    pub idle_hello: Duration,
}

/// What an on-demand check asks the node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDemand {
    /// Nothing (yet).
    Wait,
    /// Send a reply-requested Hello.
    Probe,
    /// Frames and probes went unanswered: take it out of steering.
    Suspect,
}

/// The detector state of one peer.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    srtt: Option<Duration>,
    rttvar: Duration,
    hb_mean: Option<Duration>,
    hb_dev: Duration,
    last_hello_at: Option<Instant>,
    /// Its last Hello said it heartbeats slowly.
    peer_slow: bool,
    /// Its Hellos say it runs this detector (so it accepts slow heartbeats).
    peer_adaptive: bool,
    /// Smoothed fraction of its heartbeats that did not arrive.
    loss: f64,
    /// `losses_tolerated` at the current loss (0: not computed yet): the
    /// deadline is read at every tick, the loss changes once per heartbeat.
    tolerated: u32,
    unanswered_since: Option<Instant>,
    probes: u8,
    last_probe_at: Option<Instant>,
    suspected: bool,
    /// Our own sending mode towards it.
    sending_slow: bool,
    slow_announced: u8,
    /// Suspicions raised so far.
    pub suspicions: u64,
}

impl Detector {
    /// A new RTT sample from a Hello echo (RFC 6298 §2).
    pub fn rtt_sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(s) => {
                let d = s.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + d) / 4;
                self.srtt = Some((s * 7 + rtt) / 8);
            }
        }
    }

    /// Smoothed RTT, if measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// Smoothed heartbeat loss (0..1).
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// Mean heartbeat inter-arrival and its deviation, if measured.
    pub fn heartbeat(&self) -> Option<(Duration, Duration)> {
        self.hb_mean.map(|m| (m, self.hb_dev))
    }

    /// TCP's retransmission timeout: `SRTT + max(1 ms, 4·RTTVAR)`.
    pub fn rto(&self) -> Option<Duration> {
        let s = self.srtt?;
        Some(s + (self.rttvar * 4).max(Duration::from_millis(1)))
    }

    /// Whether the peer's last Hello said it heartbeats slowly.
    pub fn peer_slow(&self) -> bool {
        self.peer_slow
    }

    /// Whether the peer runs this detector.
    pub fn peer_adaptive(&self) -> bool {
        self.peer_adaptive
    }

    /// Whether frames to it are currently unanswered past the suspicion window.
    pub fn suspected(&self) -> bool {
        self.suspected
    }

    /// A Hello arrived: its flags and the inter-arrival statistics.
    pub fn on_hello(&mut self, now: Instant, flags: u8, bounds: &Bounds) {
        self.peer_adaptive = flags & Hello::ADAPTIVE != 0;
        let slow = flags & Hello::SLOW != 0;
        if slow != self.peer_slow {
            // A new rate: the old statistics say nothing about it.
            self.peer_slow = slow;
            self.hb_mean = None;
            self.hb_dev = Duration::ZERO;
            self.last_hello_at = Some(now);
            return;
        }
        let nominal = if slow {
            bounds.idle_hello
        } else {
            bounds.hello
        };
        let Some(prev) = self.last_hello_at else {
            self.last_hello_at = Some(now);
            return;
        };
        let gap = now.saturating_duration_since(prev);
        let mean = self.hb_mean.unwrap_or(nominal);
        if gap < mean / 2 {
            // An answer to a probe, off the schedule: not a heartbeat sample.
            return;
        }
        self.last_hello_at = Some(now);
        let slots = (gap.as_secs_f64() / mean.as_secs_f64().max(1e-6)).round();
        let slots = (slots as u32).clamp(1, 16);
        for _ in 1..slots {
            self.loss += (1.0 - self.loss) * LOSS_WEIGHT;
        }
        self.loss -= self.loss * LOSS_WEIGHT;
        self.tolerated = Self::tolerated_at(self.loss);
        let sample = gap / slots;
        match self.hb_mean {
            None => {
                self.hb_mean = Some(sample);
                self.hb_dev = sample / 8;
            }
            Some(m) => {
                self.hb_dev = (self.hb_dev * 3 + m.abs_diff(sample)) / 4;
                self.hb_mean = Some((m * 7 + sample) / 8);
            }
        }
    }

    /// How many heartbeats in a row the deadline must outlast at the
    /// measured loss: the least `n ≥ 2` with `loss^n ≤ LOSS_TARGET`.
    fn losses_tolerated(&self) -> u32 {
        if self.tolerated == 0 {
            Self::tolerated_at(self.loss)
        } else {
            self.tolerated
        }
    }

    fn tolerated_at(loss: f64) -> u32 {
        let p = loss.clamp(1e-4, 0.5);
        let n = (LOSS_TARGET.ln() / p.ln()).ceil();
        (n as u32).clamp(2, 8)
    }

    /// The silence after which the peer is dead:
    /// `n·mean + 4·jitter + margin`, where `n` covers the measured loss and
    /// the margin a 50 ms scheduling gap (or one RTO, if longer); within
    /// `[min(2·HelloInterval, DeadInterval), DeadInterval]` for a fast peer
    /// (DeadInterval itself until heartbeats were measured), within
    /// `[2, 4]·idle + DeadInterval` for a slow one.
    pub fn deadline(&self, b: &Bounds) -> Duration {
        let n = self.losses_tolerated();
        if self.peer_slow {
            let lo = b.idle_hello * 2 + b.dead;
            let hi = b.idle_hello * 4 + b.dead;
            return match self.hb_mean {
                Some(m) => (m * n + self.hb_dev * 4 + b.dead).clamp(lo, hi),
                None => hi,
            };
        }
        let Some(m) = self.hb_mean else {
            return b.dead;
        };
        let margin = FREEZE_MARGIN.max(self.rto().unwrap_or_default());
        let lo = (b.hello * 2).min(b.dead);
        (m * n + self.hb_dev * 4 + margin).clamp(lo, b.dead)
    }

    // ------------------------------------------------------------- on demand

    /// A frame that expects an answer was sent to the peer. Returns true if
    /// this armed the on-demand check (nothing was unanswered before).
    pub fn frame_sent(&mut self, now: Instant) -> bool {
        if self.unanswered_since.is_none() {
            self.unanswered_since = Some(now);
            return true;
        }
        false
    }

    /// Something authenticated arrived from the peer: nothing is unanswered.
    /// Returns true if it was suspected (it answers again).
    pub fn heard(&mut self) -> bool {
        self.unanswered_since = None;
        self.probes = 0;
        self.last_probe_at = None;
        std::mem::take(&mut self.suspected)
    }

    /// The peer went down or came up: start afresh on demand.
    pub fn reset_on_demand(&mut self) {
        self.heard();
    }

    /// From the first unanswered frame to a suspicion: `max(75 ms, 3·RTO)`.
    fn window(&self) -> Option<Duration> {
        Some(SUSPECT_FLOOR.max(self.rto()? * 3))
    }

    /// When the next on-demand step is due: probes at a quarter and half of
    /// the window, the suspicion at its end (and at least one RTO after the
    /// last probe). None until an RTT was measured or while nothing waits.
    pub fn next_on_demand(&self) -> Option<Instant> {
        let since = self.unanswered_since?;
        if self.suspected {
            return None;
        }
        let w = self.window()?;
        Some(match self.probes {
            0 => since + w / 4,
            1 => since + w / 2,
            _ => {
                let after_probe = self
                    .last_probe_at
                    .zip(self.rto())
                    .map_or(since, |(t, rto)| t + rto);
                (since + w).max(after_probe)
            }
        })
    }

    /// Since when frames to it have gone unanswered, if they have.
    pub fn unanswered_since(&self) -> Option<Instant> {
        self.unanswered_since
    }

    /// The on-demand timer. `others_heard` says whether some other peer was
    /// heard from since the first unanswered frame: without that proof that
    /// this node hears at all (and that the network is not just slower for
    /// everyone), it probes again rather than suspect.
    pub fn on_demand(&mut self, now: Instant, others_heard: impl FnOnce() -> bool) -> OnDemand {
        let Some(due) = self.next_on_demand() else {
            return OnDemand::Wait;
        };
        if now < due {
            return OnDemand::Wait;
        }
        let w = self.window().unwrap_or(SUSPECT_FLOOR);
        let deaf = self.probes >= 2 && !others_heard();
        if deaf || now.saturating_duration_since(due) > LATE_SLACK {
            // We ran late, or heard nobody: the silence may be our own
            // deafness. Start over, probing now.
            self.unanswered_since = Some(now.checked_sub(w / 4).unwrap_or(now));
            self.probes = 1;
            self.last_probe_at = Some(now);
            return OnDemand::Probe;
        }
        if self.probes < 2 {
            self.probes += 1;
            self.last_probe_at = Some(now);
            return OnDemand::Probe;
        }
        self.suspected = true;
        self.suspicions += 1;
        OnDemand::Suspect
    }

    // ------------------------------------------------------------ our rate

    /// Our heartbeat period towards the peer and the flags of the next Hello:
    /// the idle rate only if it runs this detector, `fast` is false (it may
    /// not steer to us: we hold no VIP) and the idle rate is slower, after
    /// announcing it.
    pub fn sending(&self, fast: bool, b: &Bounds) -> (Duration, u8) {
        let slow = !fast && self.peer_adaptive && b.idle_hello > b.hello;
        if !slow {
            return (b.hello, Hello::ADAPTIVE);
        }
        let period = if self.sending_slow && self.slow_announced >= SLOW_ANNOUNCE {
            b.idle_hello
        } else {
            b.hello
        };
        (period, Hello::ADAPTIVE | Hello::SLOW)
    }

    /// A Hello with these flags was sent.
    pub fn hello_sent(&mut self, flags: u8) {
        let slow = flags & Hello::SLOW != 0;
        if slow != self.sending_slow {
            self.sending_slow = slow;
            self.slow_announced = 0;
        }
        if slow {
            self.slow_announced = self.slow_announced.saturating_add(1);
        }
    }

    /// Whether the last Hello we sent said SLOW.
    pub fn sending_slow(&self) -> bool {
        self.sending_slow
    }
}

#[cfg(test)]
mod tests;
