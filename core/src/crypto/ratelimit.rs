//! Token-bucket rate limiting of the unauthenticated handshake path, with a
//! bounded per-source table so spoofed-source floods cannot grow memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A token bucket holding at most `rate` tokens (one second of burst),
/// refilled at `rate` tokens per second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Self {
        Self {
            tokens: rate,
            last: now,
        }
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(rate);
        if now > self.last {
            self.last = now;
        }
    }

    /// True once the bucket would be full again at `now`: dropping it is then
    /// indistinguishable from keeping it.
    fn is_idle(&self, rate: f64, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + dt * rate >= rate
    }
}

/// Key of the per-source table: IPv4 address, or the /64 prefix of an IPv6
/// address (one host usually controls a whole /64). IPv4-mapped IPv6
/// addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SourceKey {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for SourceKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => SourceKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SourceKey::V4(u32::from(v4)),
                None => SourceKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Rate limiter for handshake packets (init and response), applied before any
/// signature verification (~50 µs each).
///
/// A packet is allowed only if both the global bucket and the bucket of its
/// source have a token; tokens are consumed from both only when allowed.
/// Rates are per second, with a burst of one second's worth.
///
/// The per-source table holds at most `max_tracked_sources` entries. When full,
/// entries whose bucket has refilled completely are dropped (no information is
/// lost); if that frees less than a quarter of the table, the table is
/// cleared. Both are amortised O(1) per packet, and the global bucket still
/// caps the total verification rate during a flood.
#[derive(Debug)]
pub struct HandshakeLimiter {
    global_rate: f64,
    source_rate: f64,
    max_tracked: usize,
    global: Option<Bucket>,
    sources: HashMap<SourceKey, Bucket>,
    evicted: u64,
    refused: u64,
}

impl HandshakeLimiter {
    /// `global_per_sec` handshakes/s overall, `per_source_per_sec` per source
    /// address, tracking at most `max_tracked_sources` (min 1) sources.
    pub fn new(global_per_sec: u32, per_source_per_sec: u32, max_tracked_sources: usize) -> Self {
        let max_tracked = max_tracked_sources.max(1);
        Self {
            global_rate: f64::from(global_per_sec),
            source_rate: f64::from(per_source_per_sec),
            max_tracked,
            global: None,
            sources: HashMap::with_capacity(max_tracked.min(4096)),
            evicted: 0,
            refused: 0,
        }
    }

    /// Number of sources currently tracked (always `<= max_tracked_sources`).
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// The bound on tracked sources.
    pub fn max_tracked_sources(&self) -> usize {
        self.max_tracked
    }

    /// Source entries dropped to make room for new sources, since creation.
    pub fn evicted_sources(&self) -> u64 {
        self.evicted
    }

    /// Handshake packets refused (either bucket empty), since creation.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Decides whether one handshake packet from `source` may be processed at `now`.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        let key = SourceKey::from(source);
        let global_rate = self.global_rate;
        let global = self
            .global
            .get_or_insert_with(|| Bucket::full(global_rate, now));
        global.refill(global_rate, now);
        if global.tokens < 1.0 {
            self.refused += 1;
            return false;
        }
        if !self.sources.contains_key(&key) && self.sources.len() >= self.max_tracked {
            self.make_room(now);
        }
        let source_rate = self.source_rate;
        let src = self
            .sources
            .entry(key)
            .or_insert_with(|| Bucket::full(source_rate, now));
        src.refill(source_rate, now);
        if src.tokens < 1.0 {
            self.refused += 1;
            return false;
        }
        src.tokens -= 1.0;
        if let Some(g) = self.global.as_mut() {
            g.tokens -= 1.0;
        }
        true
    }

    fn make_room(&mut self, now: Instant) {
        let rate = self.source_rate;
        let before = self.sources.len();
        self.sources.retain(|_, b| !b.is_idle(rate, now));
        if self.sources.len() > self.max_tracked - self.max_tracked / 4 - 1 {
            self.sources.clear();
        }
        self.evicted += (before - self.sources.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn per_source_limit_and_refill() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(1000, 5, 100);
        let a = v4(192, 0, 2, 1);
        for _ in 0..5 {
            assert!(l.allow(a, t0));
        }
        assert!(!l.allow(a, t0));
        // Another source is unaffected.
        assert!(l.allow(v4(192, 0, 2, 2), t0));
        // 200 ms at 5/s refills exactly one token.
        assert!(l.allow(a, t0 + Duration::from_millis(200)));
        assert!(!l.allow(a, t0 + Duration::from_millis(200)));
        // Refill is capped at the burst (5).
        let later = t0 + Duration::from_secs(100);
        for _ in 0..5 {
            assert!(l.allow(a, later));
        }
        assert!(!l.allow(a, later));
    }

    #[test]
    fn global_limit() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(10, 100, 1000);
        for i in 0..10 {
            assert!(l.allow(v4(198, 51, 100, i), t0));
        }
        assert!(!l.allow(v4(198, 51, 100, 200), t0));
        assert!(l.allow(v4(198, 51, 100, 200), t0 + Duration::from_millis(100)));
        assert!(!l.allow(v4(198, 51, 100, 201), t0 + Duration::from_millis(100)));
    }

    #[test]
    fn denied_by_source_does_not_consume_global() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(3, 1, 10);
        let a = v4(10, 0, 0, 1);
        assert!(l.allow(a, t0));
        for _ in 0..100 {
            assert!(!l.allow(a, t0));
        }
        assert!(l.allow(v4(10, 0, 0, 2), t0));
        assert!(l.allow(v4(10, 0, 0, 3), t0));
        assert!(!l.allow(v4(10, 0, 0, 4), t0));
    }

    #[test]
    fn zero_rate_denies_all() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(0, 10, 10);
        assert!(!l.allow(v4(10, 0, 0, 1), t0));
        let mut l = HandshakeLimiter::new(10, 0, 10);
        assert!(!l.allow(v4(10, 0, 0, 1), t0));
    }

    #[test]
    fn table_is_bounded_under_spoofed_flood() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(u32::MAX, 2, 64);
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            l.allow(ip, t0 + Duration::from_micros(u64::from(i)));
            assert!(l.tracked_sources() <= 64);
        }
        assert_eq!(l.max_tracked_sources(), 64);
        assert!(l.evicted_sources() >= 100_000 - 64);
    }

    #[test]
    fn full_table_evicts_idle_sources_and_keeps_active_state() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(1000, 1, 4);
        let (a, b, c, d, e) = (
            v4(203, 0, 113, 1),
            v4(203, 0, 113, 2),
            v4(203, 0, 113, 3),
            v4(203, 0, 113, 4),
            v4(203, 0, 113, 5),
        );
        for ip in [a, b, c] {
            assert!(l.allow(ip, t0));
        }
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.allow(d, t1));
        assert_eq!(l.tracked_sources(), 4);
        // At t2 a, b, c have refilled (idle) but d has not: only a, b, c go.
        let t2 = t0 + Duration::from_millis(1200);
        assert!(l.allow(e, t2));
        assert_eq!(l.tracked_sources(), 2);
        assert_eq!(l.evicted_sources(), 3);
        assert!(!l.allow(d, t2), "d's bucket state must survive eviction");
        assert_eq!(l.refused(), 1);
    }

    #[test]
    fn full_table_of_active_sources_is_reset() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(1000, 1, 4);
        for i in 1..=4 {
            assert!(l.allow(v4(203, 0, 113, i), t0));
        }
        assert!(!l.allow(v4(203, 0, 113, 1), t0));
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.allow(v4(203, 0, 113, 5), t1));
        assert_eq!(l.tracked_sources(), 1);
        // Source 1 was forgotten by the reset and gets a fresh bucket.
        assert!(l.allow(v4(203, 0, 113, 1), t1));
    }

    #[test]
    fn ipv6_grouped_by_prefix_and_mapped_v4() {
        let t0 = crate::test_clock::start();
        let mut l = HandshakeLimiter::new(1000, 1, 10);
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.allow(IpAddr::V6(a), t0));
        assert!(!l.allow(IpAddr::V6(b), t0));
        assert!(l.allow(IpAddr::V6(c), t0));
        assert!(l.allow(v4(192, 0, 2, 7), t0));
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        assert!(!l.allow(IpAddr::V6(mapped), t0));
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = crate::test_clock::start() + Duration::from_secs(10);
        let mut l = HandshakeLimiter::new(1000, 1, 10);
        let a = v4(192, 0, 2, 1);
        assert!(l.allow(a, t0));
        assert!(!l.allow(a, t0 - Duration::from_secs(5)));
        assert!(l.allow(a, t0 + Duration::from_secs(1)));
    }
}
