//! Model-based property tests of [`ReplayWindow`] against a reference: the set
//! of counters accepted so far and the window rule of `proto/PROTOCOL.md` §4.1.

use super::ReplayWindow;
use proptest::prelude::*;
use std::collections::HashSet;

/// The reference: every accepted counter, and the highest one.
struct Model {
    window: u64,
    accepted: HashSet<u64>,
    max: Option<u64>,
}

impl Model {
    fn new(window: u64) -> Model {
        Model {
            window: window.clamp(1, 1 << 20),
            accepted: HashSet::new(),
            max: None,
        }
    }

    /// §4.1: accepted iff above the highest, or less than `W` below it and unseen.
    fn acceptable(&self, c: u64) -> bool {
        match self.max {
            None => true,
            Some(max) if c > max => true,
            Some(max) => max - c < self.window && !self.accepted.contains(&c),
        }
    }

    fn accept(&mut self, c: u64) {
        self.accepted.insert(c);
        self.max = Some(self.max.map_or(c, |m| m.max(c)));
    }
}

/// One step: a counter derived from the current highest (so the interesting
/// region around the window edge is hit often), and how it is fed in.
#[derive(Debug, Clone)]
enum Op {
    /// `max + 1`: in-order delivery.
    Next,
    /// `max + k`: a jump forward (loss), up to many windows.
    Ahead(u64),
    /// `max - k`: reordered or old, around the window edge.
    Behind(u64),
    /// Exactly at the window edge: `max - W + 1 + d` for `d` in -2..=2.
    Edge(i8),
    /// A counter accepted before (a duplicate), by index.
    Dup(usize),
    /// An absolute counter, often near 0 or near `u64::MAX`.
    Abs(u64),
    /// `check` of a probe only: must not change state.
    Probe(u64),
    /// `mark` without `check` of something `check` rejects: a no-op.
    MarkRejected(u64),
}

fn arb_window() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..=200,
        prop::sample::select(vec![
            1u64,
            2,
            63,
            64,
            65,
            127,
            128,
            129,
            2047,
            2048,
            2049,
            4096,
            1 << 20,
            (1 << 20) + 1,
            u64::MAX
        ]),
        1u64..=5000,
    ]
}

fn arb_abs() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..300,
        (0u64..300).prop_map(|d| u64::MAX - d),
        any::<u64>(),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Next),
        3 => prop_oneof![1u64..5, 1u64..3000, 1u64..(1 << 22)].prop_map(Op::Ahead),
        4 => prop_oneof![0u64..70, 0u64..5000].prop_map(Op::Behind),
        3 => (-2i8..=2).prop_map(Op::Edge),
        3 => any::<usize>().prop_map(Op::Dup),
        1 => arb_abs().prop_map(Op::Abs),
        2 => prop_oneof![any::<u64>(), 0u64..5000].prop_map(Op::Probe),
        1 => any::<u64>().prop_map(Op::MarkRejected),
    ]
}

/// Checks `check` against the model around the window edge and at the top.
fn cross_check(w: &ReplayWindow, m: &Model) -> Result<(), TestCaseError> {
    let Some(max) = m.max else {
        prop_assert!(w.check(0) && w.check(u64::MAX));
        return Ok(());
    };
    prop_assert_eq!(w.max_seen(), Some(max));
    let edge = max.saturating_sub(m.window - 1);
    let mut probes: Vec<u64> = (0..6).map(|d| edge.saturating_sub(d)).collect();
    probes.extend((0..6).map(|d| edge.saturating_add(d)));
    probes.extend((0..6).map(|d| max.saturating_sub(d)));
    probes.extend((0..3).map(|d| max.saturating_add(d)));
    probes.extend([0, u64::MAX]);
    for c in probes {
        prop_assert_eq!(w.check(c), m.acceptable(c), "check({}) with max {}", c, max);
    }
    Ok(())
}

/// Feeds one counter and compares with the model.
fn feed(
    w: &mut ReplayWindow,
    m: &mut Model,
    order: &mut Vec<u64>,
    c: u64,
) -> Result<(), TestCaseError> {
    let expect = m.acceptable(c);
    prop_assert_eq!(
        w.check(c),
        expect,
        "check({}) with max {:?} window {}",
        c,
        m.max,
        m.window
    );
    // `check` alone changes nothing.
    prop_assert_eq!(w.check(c), expect);
    let got = w.check_and_mark(c);
    prop_assert_eq!(got, expect, "check_and_mark({})", c);
    if got {
        prop_assert!(!m.accepted.contains(&c), "accepted duplicate {}", c);
        m.accept(c);
        order.push(c);
    }
    // A counter just accepted is never accepted again.
    prop_assert!(!w.check(c), "{} accepted twice", c);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Fed any mix of in-order, reordered, duplicated, jumping and extreme
    /// counters, the window accepts exactly what the reference accepts, never
    /// a duplicate, and keeps a fixed amount of state.
    #[test]
    fn matches_reference_model(
        window in arb_window(),
        start in arb_abs(),
        ops in prop::collection::vec(arb_op(), 1..300),
    ) {
        let mut w = ReplayWindow::new(window);
        let mut m = Model::new(window);
        prop_assert_eq!(w.window(), m.window);
        let blocks = w.blocks.len();
        prop_assert!(blocks as u64 * 64 >= m.window + 64, "ring too small for the window");
        let mut order: Vec<u64> = Vec::new();
        feed(&mut w, &mut m, &mut order, start)?;
        for op in ops {
            let max = m.max.unwrap_or(0);
            match op {
                Op::Next => feed(&mut w, &mut m, &mut order, max.saturating_add(1))?,
                Op::Ahead(k) => feed(&mut w, &mut m, &mut order, max.saturating_add(k))?,
                Op::Behind(k) => feed(&mut w, &mut m, &mut order, max.saturating_sub(k))?,
                Op::Edge(d) => {
                    let edge = max.saturating_sub(m.window - 1);
                    let c = if d < 0 {
                        edge.saturating_sub(u64::from(d.unsigned_abs()))
                    } else {
                        edge.saturating_add(d as u64)
                    };
                    feed(&mut w, &mut m, &mut order, c)?;
                }
                Op::Dup(i) => {
                    if !order.is_empty() {
                        let c = order[i % order.len()];
                        prop_assert!(!w.check(c), "duplicate {} would be accepted", c);
                        prop_assert!(!w.check_and_mark(c), "duplicate {} accepted", c);
                    }
                }
                Op::Abs(c) => feed(&mut w, &mut m, &mut order, c)?,
                Op::Probe(c) => {
                    prop_assert_eq!(w.check(c), m.acceptable(c), "probe {}", c);
                }
                Op::MarkRejected(c) => {
                    if !m.acceptable(c) {
                        w.mark(c);
                    }
                }
            }
            prop_assert_eq!(w.blocks.len(), blocks, "state grew");
            cross_check(&w, &m)?;
        }
        // Everything ever accepted is now rejected.
        for &c in &order {
            prop_assert!(!w.check(c), "{} accepted before, acceptable again", c);
        }
    }

    /// A forward-only stream with arbitrary gaps is always accepted in full,
    /// and afterwards exactly the unseen counters less than `W` below the top
    /// are still acceptable.
    #[test]
    fn gaps_leave_exactly_the_unseen_window(
        window in 1u64..600,
        start in arb_abs(),
        gaps in prop::collection::vec(1u64..40, 1..200),
    ) {
        let mut w = ReplayWindow::new(window);
        let mut seen = HashSet::new();
        let mut c = start;
        prop_assert!(w.check_and_mark(c));
        seen.insert(c);
        for g in gaps {
            let Some(next) = c.checked_add(g) else { break };
            c = next;
            prop_assert!(w.check_and_mark(c), "in-order {} rejected", c);
            seen.insert(c);
        }
        let lowest = c.saturating_sub(window - 1);
        for probe in c.saturating_sub(window + 3)..=c {
            let expect = probe >= lowest && !seen.contains(&probe);
            prop_assert_eq!(w.check(probe), expect, "probe {} top {} window {}", probe, c, window);
        }
    }
}
