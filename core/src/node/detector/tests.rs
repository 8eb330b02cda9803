//! Unit tests of the per-peer detector: RTT smoothing, heartbeat statistics,
//! the deadline's bounds, on-demand probing and suspicion, the sending rate.

use super::*;

fn yes() -> bool {
    true
}

const MS: Duration = Duration::from_millis(1);

fn bounds() -> Bounds {
    Bounds {
        hello: MS * 100,
        dead: MS * 300,
        idle_hello: Duration::from_secs(2),
    }
}

/// Feeds `n` hellos `every` apart (flags as given), returns the last time.
fn feed(d: &mut Detector, t0: Instant, n: u32, every: Duration, flags: u8) -> Instant {
    let mut t = t0;
    for _ in 0..n {
        t += every;
        d.on_hello(t, flags, &bounds());
    }
    t
}

#[test]
fn rtt_follows_rfc_6298() {
    let mut d = Detector::default();
    assert_eq!(d.rto(), None);
    d.rtt_sample(MS * 10);
    assert_eq!(d.srtt(), Some(MS * 10));
    assert_eq!(d.rttvar(), MS * 5);
    assert_eq!(d.rto(), Some(MS * 30));
    d.rtt_sample(MS * 18);
    assert_eq!(d.srtt(), Some(MS * 11));
    assert_eq!(d.rttvar(), (MS * 15 + MS * 8) / 4);
}

#[test]
fn deadline_is_dead_interval_until_heartbeats_are_measured_then_shorter() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    assert_eq!(d.deadline(&bounds()), MS * 300);
    feed(&mut d, t0, 50, MS * 100, Hello::ADAPTIVE);
    let dl = d.deadline(&bounds());
    // Two heartbeats and the freeze margin: 260 ms, never below 2·HelloInterval.
    assert!(dl >= MS * 255 && dl <= MS * 265, "{dl:?}");
}

#[test]
fn loss_and_jitter_lengthen_the_deadline_up_to_dead_interval() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    let mut t = feed(&mut d, t0, 20, MS * 100, Hello::ADAPTIVE);
    // Every tenth heartbeat lost.
    for i in 0..200 {
        t += if i % 10 == 0 { MS * 200 } else { MS * 100 };
        d.on_hello(t, Hello::ADAPTIVE, &bounds());
    }
    assert!(d.loss() > 0.05 && d.loss() < 0.15, "{}", d.loss());
    assert_eq!(d.deadline(&bounds()), MS * 300);
    // The mean stays the heartbeat period: a gap of two counts as a loss.
    let (mean, _) = d.heartbeat().unwrap();
    assert!(mean >= MS * 95 && mean <= MS * 105, "{mean:?}");
}

#[test]
fn probe_answers_are_not_heartbeat_samples() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    let t = feed(&mut d, t0, 20, MS * 100, Hello::ADAPTIVE);
    d.on_hello(t + MS * 5, Hello::ADAPTIVE, &bounds());
    d.on_hello(t + MS * 100, Hello::ADAPTIVE, &bounds());
    let (mean, _) = d.heartbeat().unwrap();
    assert!(mean >= MS * 99, "{mean:?}");
}

#[test]
fn a_slow_peer_gets_seconds() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    d.on_hello(t0, Hello::ADAPTIVE | Hello::SLOW, &bounds());
    assert!(d.peer_slow());
    assert_eq!(d.deadline(&bounds()), Duration::from_secs(8) + MS * 300);
    feed(
        &mut d,
        t0,
        10,
        Duration::from_secs(2),
        Hello::ADAPTIVE | Hello::SLOW,
    );
    let dl = d.deadline(&bounds());
    assert!(
        dl >= Duration::from_secs(4) && dl < Duration::from_secs(5),
        "{dl:?}"
    );
    // Back to fast: DeadInterval at once.
    d.on_hello(t0 + Duration::from_secs(21), Hello::ADAPTIVE, &bounds());
    assert_eq!(d.deadline(&bounds()), MS * 300);
}

#[test]
fn unanswered_frames_probe_twice_then_suspect() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    d.frame_sent(t0);
    // No RTT yet: no on-demand detection.
    assert_eq!(d.next_on_demand(), None);
    d.heard();
    d.rtt_sample(MS);
    d.frame_sent(t0);
    d.frame_sent(t0 + MS * 10);
    let w = SUSPECT_FLOOR;
    assert_eq!(d.next_on_demand(), Some(t0 + w / 4));
    assert_eq!(d.on_demand(t0 + MS, yes), OnDemand::Wait);
    assert_eq!(d.on_demand(t0 + w / 4, yes), OnDemand::Probe);
    assert_eq!(d.on_demand(t0 + w / 2, yes), OnDemand::Probe);
    assert_eq!(d.on_demand(t0 + w - MS, yes), OnDemand::Wait);
    assert_eq!(d.on_demand(t0 + w, yes), OnDemand::Suspect);
    assert!(d.suspected());
    assert_eq!(d.next_on_demand(), None);
    assert!(d.heard());
    assert!(!d.suspected());
    assert_eq!(d.suspicions, 1);
}

#[test]
fn an_answer_clears_the_episode() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    d.rtt_sample(MS);
    d.frame_sent(t0);
    assert_eq!(d.on_demand(t0 + MS * 20, yes), OnDemand::Probe);
    assert!(!d.heard());
    assert_eq!(d.next_on_demand(), None);
    d.frame_sent(t0 + MS * 30);
    assert_eq!(d.next_on_demand(), Some(t0 + MS * 30 + SUSPECT_FLOOR / 4));
}

#[test]
fn a_late_check_probes_again_instead_of_suspecting() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    d.rtt_sample(MS);
    d.frame_sent(t0);
    assert_eq!(d.on_demand(t0 + MS * 19, yes), OnDemand::Probe);
    // The node did not run for 200 ms.
    let late = t0 + MS * 220;
    assert_eq!(d.on_demand(late, yes), OnDemand::Probe);
    assert!(!d.suspected());
    assert_eq!(d.on_demand(late + MS * 20, yes), OnDemand::Probe);
    assert_eq!(d.on_demand(late + SUSPECT_FLOOR, yes), OnDemand::Suspect);
}

#[test]
fn nobody_else_heard_means_probe_again() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    d.rtt_sample(MS);
    d.frame_sent(t0);
    assert_eq!(d.on_demand(t0 + MS * 19, || false), OnDemand::Probe);
    assert_eq!(d.on_demand(t0 + MS * 38, || false), OnDemand::Probe);
    assert_eq!(d.on_demand(t0 + SUSPECT_FLOOR, || false), OnDemand::Probe);
    assert!(!d.suspected());
    // Started over at 75 ms as if the first probe had just gone: the second
    // at 94 ms, the suspicion a window after the restart's origin.
    assert_eq!(d.on_demand(t0 + MS * 94, || true), OnDemand::Probe);
    assert_eq!(d.on_demand(t0 + MS * 130, || true), OnDemand::Wait);
    assert_eq!(d.on_demand(t0 + MS * 132, || true), OnDemand::Suspect);
}

#[test]
fn a_long_rtt_widens_the_window() {
    let t0 = crate::test_clock::start();
    let mut d = Detector::default();
    for _ in 0..20 {
        d.rtt_sample(MS * 200);
    }
    d.frame_sent(t0);
    let rto = d.rto().unwrap();
    assert_eq!(d.next_on_demand(), Some(t0 + rto * 3 / 4));
}

#[test]
fn idle_rate_only_for_adaptive_unrelated_peers_after_announcing_it() {
    let b = bounds();
    let mut d = Detector::default();
    // An old peer (no ADAPTIVE): always fast.
    assert_eq!(d.sending(false, &b), (b.hello, Hello::ADAPTIVE));
    d.on_hello(crate::test_clock::start(), Hello::ADAPTIVE, &b);
    assert_eq!(d.sending(true, &b), (b.hello, Hello::ADAPTIVE));
    let slow = Hello::ADAPTIVE | Hello::SLOW;
    for _ in 0..SLOW_ANNOUNCE {
        assert_eq!(d.sending(false, &b), (b.hello, slow));
        d.hello_sent(slow);
    }
    assert_eq!(d.sending(false, &b), (b.idle_hello, slow));
    assert!(d.sending_slow());
    // It gains a relation: fast at once.
    assert_eq!(d.sending(true, &b), (b.hello, Hello::ADAPTIVE));
    d.hello_sent(Hello::ADAPTIVE);
    assert!(!d.sending_slow());
}
