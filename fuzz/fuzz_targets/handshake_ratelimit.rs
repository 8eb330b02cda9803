//! The handshake rate limiter (`crypto::HandshakeLimiter`) driven by an
//! arbitrary stream of handshake packets: sources (IPv4, IPv6 in a few /64s,
//! IPv4-mapped IPv6) chosen by the input, and time steps forward and back.
//!
//! Input: bytes 0..2 pick the global rate, the per-source rate and the table
//! bound; then records `[source, step]`. What must hold: the table never
//! tracks more than its bound; allowed + refused = packets; over any run the
//! limiter allows at most `global_rate * (1 + elapsed seconds)` packets (one
//! second of burst, then the rate; elapsed from the first packet to the
//! latest time seen), and while no source was evicted, at most
//! `source_rate * (1 + elapsed)` per source key (an IPv4 address, or the /64
//! of an IPv6 one; elapsed from that key's first packet to its latest).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::crypto::HandshakeLimiter;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The source of a packet, and its key for the per-source bound.
fn source(b: u8) -> (IpAddr, u64) {
    let n = b & 0x3f;
    match b >> 6 {
        0 | 1 => (IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)), u64::from(n)),
        // Four /64s, many hosts in each.
        2 => {
            let prefix = u16::from(n & 3);
            let ip = Ipv6Addr::new(0x2001, 0xdb8, 0, prefix, 0, 0, 0, u16::from(n));
            (IpAddr::V6(ip), 0x1_0000 + u64::from(prefix))
        }
        // IPv4-mapped: the same key as the IPv4 address.
        _ => {
            let ip = Ipv4Addr::new(192, 0, 2, n).to_ipv6_mapped();
            (IpAddr::V6(ip), u64::from(n))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let b = |i: usize| data.get(i).copied().unwrap_or(1);
    let global = u32::from(b(0) % 64) + 1;
    let per_source = u32::from(b(1) % 16) + 1;
    let max_tracked = usize::from(b(2) % 32);
    let mut limiter = HandshakeLimiter::new(global, per_source, max_tracked);
    let bound = max_tracked.max(1);
    assert_eq!(limiter.max_tracked_sources(), bound);

    let mut now = Instant::now() + Duration::from_secs(3600);
    // The buckets start full at the first packet and only ever move forward.
    let mut start = None;
    let mut latest: Option<Instant> = None;
    let mut allowed = 0u64;
    let mut packets = 0u64;
    // Per source key: packets allowed, first and latest time seen.
    let mut per_key: HashMap<u64, (u64, Instant, Instant)> = HashMap::new();
    for rec in data.get(3..).unwrap_or(&[]).chunks_exact(2).take(4096) {
        let (ip, key) = source(rec[0]);
        let step = rec[1];
        now = if step & 0x80 == 0 {
            now + Duration::from_millis(u64::from(step) * 7)
        } else {
            // The clock may step back (an `Instant` from another thread).
            now.checked_sub(Duration::from_millis(u64::from(step & 0x7f)))
                .unwrap_or(now)
        };
        let start = *start.get_or_insert(now);
        let latest = *latest.insert(latest.map_or(now, |l| l.max(now)));
        packets += 1;
        let entry = per_key.entry(key).or_insert((0, now, now));
        entry.2 = entry.2.max(now);
        if limiter.allow(ip, now) {
            allowed += 1;
            entry.0 += 1;
        }
        assert!(limiter.tracked_sources() <= bound);
        assert_eq!(allowed + limiter.refused(), packets);
        let elapsed = latest.duration_since(start).as_secs_f64();
        let cap = |rate: u32, secs: f64| (f64::from(rate) * (1.0 + secs) + 1e-6).floor() as u64;
        assert!(
            allowed <= cap(global, elapsed),
            "{allowed} allowed in {elapsed}s at {global}/s"
        );
        if limiter.evicted_sources() == 0 {
            for (k, (n, first, last)) in &per_key {
                let secs = last.duration_since(*first).as_secs_f64();
                assert!(*n <= cap(per_source, secs), "{n} from key {k:x} in {secs}s");
            }
        }
    }
});
