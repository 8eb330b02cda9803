//! Sliding-window anti-replay filter for data packet counters (RFC 6479 style bitmap).

/// Default window: counters up to 2047 below the highest seen are still accepted.
pub const DEFAULT_REPLAY_WINDOW: u64 = 2048;

const BLOCK_BITS: u64 = 64;

/// Anti-replay window over 64-bit packet counters.
///
/// A counter `c` is acceptable iff it has not been marked before and
/// `c + window > max_seen` (i.e. it is at most `window - 1` below the highest
/// counter marked so far). Counters above the highest are always acceptable.
///
/// Use [`check`](Self::check) before and [`mark`](Self::mark) only after the
/// packet authenticated, so forged packets cannot move the window.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Ring of 64-bit blocks; length is a power of two, at least
    /// `ceil(window / 64) + 1` so the block holding the highest counter never
    /// aliases a block still inside the window.
    blocks: Vec<u64>,
    /// Highest counter marked so far (meaningless while `any` is false).
    max: u64,
    any: bool,
    window: u64,
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("window", &self.window)
            .field("max", &(self.any.then_some(self.max)))
            .finish()
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_WINDOW)
    }
}

impl ReplayWindow {
    /// A window accepting counters up to `window - 1` below the highest seen.
    /// `window` is clamped to `1..=2^20`.
    pub fn new(window: u64) -> Self {
        let window = window.clamp(1, 1 << 20);
        let nblocks = (window.div_ceil(BLOCK_BITS) + 1).next_power_of_two();
        Self {
            blocks: vec![0; nblocks as usize],
            max: 0,
            any: false,
            window,
        }
    }

    /// Configured window size in packets.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Highest counter marked so far, if any.
    pub fn max_seen(&self) -> Option<u64> {
        self.any.then_some(self.max)
    }

    fn slot(&self, counter: u64) -> (usize, u64) {
        let block = (counter / BLOCK_BITS) as usize & (self.blocks.len() - 1);
        (block, 1u64 << (counter % BLOCK_BITS))
    }

    /// Would `counter` be accepted? Does not change state.
    pub fn check(&self, counter: u64) -> bool {
        if !self.any || counter > self.max {
            return true;
        }
        if self.max - counter >= self.window {
            return false;
        }
        let (block, bit) = self.slot(counter);
        self.blocks[block] & bit == 0
    }

    /// Records `counter` as seen. Marking a counter that [`check`](Self::check)
    /// would reject is a no-op (it cannot move the window backwards).
    pub fn mark(&mut self, counter: u64) {
        if !self.any || counter > self.max {
            let new_block = counter / BLOCK_BITS;
            if self.any {
                let cur_block = self.max / BLOCK_BITS;
                let advance = new_block - cur_block;
                if advance >= self.blocks.len() as u64 {
                    self.blocks.fill(0);
                } else {
                    for b in cur_block + 1..=new_block {
                        let i = b as usize & (self.blocks.len() - 1);
                        self.blocks[i] = 0;
                    }
                }
            } else {
                self.blocks.fill(0);
            }
            self.max = counter;
            self.any = true;
        } else if self.max - counter >= self.window {
            return;
        }
        let (block, bit) = self.slot(counter);
        self.blocks[block] |= bit;
    }

    /// `check` then `mark`; returns whether the counter was accepted.
    pub fn check_and_mark(&mut self, counter: u64) -> bool {
        if self.check(counter) {
            self.mark(counter);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
#[path = "replay_proptests.rs"]
mod replay_proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn basic_sequence() {
        let mut w = ReplayWindow::new(2048);
        assert!(w.check_and_mark(0));
        assert!(!w.check_and_mark(0));
        assert!(w.check_and_mark(1));
        assert!(w.check_and_mark(5000));
        assert!(!w.check(5000 - 2048));
        assert!(w.check(5000 - 2047));
        assert!(!w.check(1));
        assert!(w.check(4999));
        assert_eq!(w.max_seen(), Some(5000));
    }

    #[test]
    fn huge_jump_clears_everything() {
        let mut w = ReplayWindow::new(128);
        for c in 0..128 {
            assert!(w.check_and_mark(c));
        }
        assert!(w.check_and_mark(1 << 40));
        for c in (1u64 << 40) - 127..(1 << 40) {
            assert!(w.check(c), "{c}");
        }
        assert!(!w.check((1 << 40) - 128));
    }

    #[test]
    fn near_u64_max() {
        let mut w = ReplayWindow::new(64);
        assert!(w.check_and_mark(u64::MAX - 1));
        assert!(w.check_and_mark(u64::MAX));
        assert!(!w.check(u64::MAX));
        assert!(w.check(u64::MAX - 63));
        assert!(!w.check(u64::MAX - 64));
    }

    #[test]
    fn mark_of_too_old_is_noop() {
        let mut w = ReplayWindow::new(64);
        w.mark(1000);
        w.mark(10);
        assert_eq!(w.max_seen(), Some(1000));
        assert!(w.check(999));
    }

    proptest! {
        #[test]
        fn never_accepts_duplicate(window in 1u64..3000, seq in proptest::collection::vec(0u64..6000, 1..400)) {
            let mut w = ReplayWindow::new(window);
            let mut accepted = HashSet::new();
            for c in seq {
                if w.check_and_mark(c) {
                    prop_assert!(accepted.insert(c), "accepted duplicate {}", c);
                }
            }
        }

        #[test]
        fn accepts_any_permutation_within_window(
            window in 1u64..3000,
            base in 0u64..(1u64 << 62),
            seed in any::<u64>(),
        ) {
            // All counters lie in [base, base + window), so every one is within
            // the window of the highest at any point; all must be accepted once.
            let n = window.min(300);
            let mut counters: Vec<u64> = (0..n).map(|i| base + i * (window / n)).collect();
            let mut s = seed;
            for i in (1..counters.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (s >> 33) as usize % (i + 1);
                counters.swap(i, j);
            }
            let mut w = ReplayWindow::new(window);
            for &c in &counters {
                prop_assert!(w.check_and_mark(c), "rejected {} (window {})", c, window);
            }
            for &c in &counters {
                prop_assert!(!w.check(c));
            }
        }

        #[test]
        fn rejects_older_than_window(window in 1u64..3000, seq in proptest::collection::vec(0u64..8000, 1..200), probe in 0u64..8000) {
            let mut w = ReplayWindow::new(window);
            let mut max = None::<u64>;
            for c in seq {
                if w.check_and_mark(c) {
                    max = Some(max.map_or(c, |m: u64| m.max(c)));
                }
            }
            let max = max.unwrap();
            if probe + window <= max {
                prop_assert!(!w.check(probe));
            }
            if probe > max {
                prop_assert!(w.check(probe));
            }
        }
    }
}
