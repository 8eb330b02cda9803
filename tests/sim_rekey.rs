//! Property test of anti-replay across rekeys with two real nodes on the
//! simulated network: frames sent through sessions that rekey by packet count
//! or by time, with loss, jitter, packets held back and delivered late, and
//! captured packets replayed at random times. Every frame that crossed the
//! link opens exactly once, late packets of a superseded session still open
//! within its grace period, replays never deliver anything, and once a
//! session is retired none of its packets is even looked up.

mod sim;

use proptest::prelude::*;
use sim::SimNet;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
/// How long a superseded session is still accepted (node `SESSION_GRACE`).
const GRACE: Duration = Duration::from_secs(10);
/// Frame payload size: far bigger than any heartbeat, gossip or digest.
const PAYLOAD: usize = 1000;
/// A data datagram this big carries one of our frames...
const FRAME_DATAGRAM_MIN: usize = 900;
/// ...and one this big is a path MTU probe (the floor, 1232 bytes, or more).
const PROBE_DATAGRAM_MIN: usize = 1200;

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    /// Rekey by packet count (else by time).
    by_packets: bool,
    rekey_packets: u64,
    rekey_secs: u64,
    loss_permille: u32,
    jitter_ms: u64,
    hold_permille: u32,
    replay_permille: u32,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        any::<bool>(),
        // Hellos (10/s) plus frames (20/s): a rekey every 3 to 7 s, so the
        // sessions alive within one grace period stay under the per-peer cap.
        90u64..200,
        3u64..8,
        0u32..40,
        0u64..30,
        0u32..80,
        0u32..80,
    )
        .prop_map(
            |(seed, by_packets, rekey_packets, rekey_secs, loss, jitter, hold, replay)| Case {
                seed,
                by_packets,
                rekey_packets,
                rekey_secs,
                loss_permille: loss,
                jitter_ms: jitter,
                hold_permille: hold,
                replay_permille: replay,
            },
        )
}

/// What the link between a and b saw, shared with the network's tap hook.
#[derive(Default)]
struct Link {
    rng: u64,
    hold_permille: u32,
    now: Duration,
    /// Data datagrams a→b that crossed (or were held back), with when.
    captured: Vec<(Duration, Vec<u8>)>,
    /// Held back: deliver at this time.
    held: Vec<(Duration, Vec<u8>)>,
    /// Frame datagrams that crossed the lossy link (delivered or held).
    frames_passed: u64,
    /// Capturing and holding back (else only `last_arrival` is kept).
    capturing: bool,
    /// Receiver index → when a packet on it last reached b (b keeps a
    /// superseded session a grace period past its last use).
    last_arrival: HashMap<u32, Duration>,
}

impl Link {
    fn next(&mut self) -> u64 {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.rng >> 33
    }
}

fn receiver_index(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[2], d[3], d[4], d[5]])
}

fn frame(tag: u32) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&tag.to_be_bytes());
    f.resize(14 + PAYLOAD, 0x5a);
    f
}

/// Takes b's TAP frames; each tag must be new.
fn check_rx(net: &mut SimNet, seen: &mut HashSet<u32>) -> Result<(), TestCaseError> {
    for f in net.take_tap_rx("b") {
        prop_assert!(f.len() >= 18, "short frame at b");
        let tag = u32::from_be_bytes([f[14], f[15], f[16], f[17]]);
        prop_assert!(seen.insert(tag), "frame {} delivered twice", tag);
    }
    Ok(())
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    let mut net = SimNet::new(c.seed, &["a", "b"]);
    let (ia, ib) = (net.idx("a"), net.idx("b"));
    let a_addr = net.nodes[ia].addr;
    for (name, connect) in [("a", &["b"][..]), ("b", &[][..])] {
        let mut cfg = net.config(name, connect);
        // Heartbeats at HelloInterval, as for a pair that shares a VIP: the
        // traffic the rekeys are counted and timed against.
        cfg.idle_hello_interval = cfg.hello_interval;
        if c.by_packets {
            cfg.rekey_after_packets = c.rekey_packets;
        } else {
            cfg.rekey_after_time = Duration::from_secs(c.rekey_secs);
        }
        let other = if name == "a" { "b" } else { "a" };
        net.start(cfg, &[other]);
    }
    net.run_until_cond(Duration::from_secs(5), 10 * MS, |n| {
        n.sees("a", "b") && n.sees("b", "a")
    })
    .ok_or_else(|| TestCaseError::fail("no session within 5 s"))?;
    net.take_tap_rx("b");

    let link = Rc::new(RefCell::new(Link {
        rng: c.seed | 1,
        hold_permille: c.hold_permille,
        capturing: true,
        ..Link::default()
    }));
    let hook = Rc::clone(&link);
    net.tap = Some(Box::new(move |from, to, payload: &[u8]| {
        if from != ia || to != ib || payload.get(1) != Some(&3) {
            return true;
        }
        let mut l = hook.borrow_mut();
        let now = l.now;
        if payload.len() >= 6 {
            // Delivered within this step (jitter < 30 ms < the 50 ms step).
            l.last_arrival
                .insert(receiver_index(payload), now + 50 * MS);
        }
        if !l.capturing {
            return true;
        }
        l.captured.push((now, payload.to_vec()));
        if (FRAME_DATAGRAM_MIN..PROBE_DATAGRAM_MIN).contains(&payload.len()) {
            l.frames_passed += 1;
        }
        if (l.next() % 1000) < u64::from(l.hold_permille) {
            let delay = Duration::from_millis(l.next() % 3000);
            l.held.push((now + delay, payload.to_vec()));
            return false;
        }
        true
    }));
    net.loss = f64::from(c.loss_permille) / 1000.0;
    net.jitter = Duration::from_millis(c.jitter_ms);

    // b's session for a over time: index → last time it was the current one.
    let mut current_until: HashMap<u32, Duration> = HashMap::new();
    let mut seen_tags: HashSet<u32> = HashSet::new();
    let mut rng = c.seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    let mut replays = 0u64;
    let step = 50 * MS;
    let frames: u32 = 600; // 30 s of traffic
    for tag in 0..frames + 80 {
        let now = net.elapsed();
        link.borrow_mut().now = now;
        if tag < frames {
            net.tap_send("a", &frame(tag));
        } else {
            // The tail: nothing more is held back, what is held comes due.
            link.borrow_mut().hold_permille = 0;
        }
        // Late packets whose time has come.
        let due: Vec<Vec<u8>> = {
            let mut l = link.borrow_mut();
            let (due, keep): (Vec<_>, Vec<_>) = l.held.drain(..).partition(|(t, _)| *t <= now);
            l.held = keep;
            due.into_iter().map(|(_, p)| p).collect()
        };
        for p in due {
            if p.len() >= 6 {
                link.borrow_mut()
                    .last_arrival
                    .insert(receiver_index(&p), now);
            }
            net.inject("b", a_addr, p);
        }
        // Replays of earlier packets (duplicates, possibly of old sessions).
        if next() % 1000 < u64::from(c.replay_permille) {
            // Only packets long delivered (held ones within 3 s, jitter 30 ms):
            // a replay must never be the first copy to arrive.
            let pick = {
                let l = link.borrow();
                let old = l
                    .captured
                    .partition_point(|(t, _)| *t + Duration::from_millis(3500) < now);
                (old > 0).then(|| l.captured[(next() as usize) % old].1.clone())
            };
            if let Some(p) = pick {
                let before = net.node("b").drops().clone();
                let bad_before = before.bad_data + before.unknown_session;
                net.inject("b", a_addr, p);
                let after = net.node("b").drops();
                prop_assert_eq!(
                    after.bad_data + after.unknown_session,
                    bad_before + 1,
                    "a replay was not dropped"
                );
                replays += 1;
            }
        }
        net.run_for(step);
        if let Some(i) = net.node("b").peers().get("a").and_then(|p| p.send_index) {
            current_until.insert(i, net.elapsed());
        }
        check_rx(&mut net, &mut seen_tags)?;
    }
    // Everything held back has been delivered by now (delays < 3 s, 4 s of tail).
    prop_assert!(link.borrow().held.is_empty());
    check_rx(&mut net, &mut seen_tags)?;
    let handshakes = net.node("b").peers()["a"].stats.handshakes;
    prop_assert!(
        handshakes >= 4,
        "only {} handshakes: the case did not rekey",
        handshakes
    );
    // Every frame that crossed the lossy link, on time or late, opened once.
    let passed = link.borrow().frames_passed;
    prop_assert_eq!(
        seen_tags.len() as u64,
        passed,
        "{} frames crossed the link, {} delivered ({} handshakes, {} replays)",
        passed,
        seen_tags.len(),
        handshakes,
        replays
    );
    prop_assert!(
        net.sees("a", "b") && net.sees("b", "a"),
        "the peers lost each other"
    );

    // Long after: every captured packet again. None delivers anything; those
    // of sessions unused for more than a grace period are not even found. The
    // two sides may each send on a session of its own (both started a rekey
    // at once), so "in use" is what a still sends on, not b's own choice.
    link.borrow_mut().capturing = false;
    for _ in 0..300 {
        link.borrow_mut().now = net.elapsed();
        net.run_for(step);
        if let Some(i) = net.node("b").peers().get("a").and_then(|p| p.send_index) {
            current_until.insert(i, net.elapsed());
        }
    }
    let now = net.elapsed();
    let captured = std::mem::take(&mut link.borrow_mut().captured);
    let last_arrival = std::mem::take(&mut link.borrow_mut().last_arrival);
    let mut retired = 0u64;
    let before = net.node("b").drops().clone();
    for (_, p) in &captured {
        let idx = receiver_index(p);
        let last_current = current_until.get(&idx).copied().unwrap_or_default();
        let last_used = last_arrival.get(&idx).copied().unwrap_or_default();
        if last_current.max(last_used) + GRACE + 100 * MS < now {
            retired += 1;
        }
        net.inject("b", a_addr, p.clone());
    }
    let after = net.node("b").drops().clone();
    prop_assert!(
        net.take_tap_rx("b").is_empty(),
        "a replayed packet delivered a frame"
    );
    prop_assert_eq!(
        (after.bad_data + after.unknown_session) - (before.bad_data + before.unknown_session),
        captured.len() as u64,
        "not every replay was dropped"
    );
    prop_assert!(
        after.unknown_session - before.unknown_session >= retired,
        "{} packets of retired sessions, only {} refused as unknown",
        retired,
        after.unknown_session - before.unknown_session
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn rekeys_never_replay_and_late_packets_still_open(c in arb_case()) {
        run_case(&c)?;
    }
}
