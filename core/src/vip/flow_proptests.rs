//! Property tests of VIP flow steering (rendezvous hash plus the sticky flow
//! table), through the public [`VipEngine`] API: deterministic and
//! order-independent, minimal movement when a holder dies or joins, a roughly
//! even spread, and established flows staying on their live holder.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// Past every holder's hold-down.
const SETTLED: Duration = Duration::from_secs(5);

fn item(weight: u32) -> VipItem {
    VipItem {
        address: VIP,
        prefix_len: 24,
        weight,
        virtual_mac: [2, 0x6d, 10, 1, 1, 10],
        flags: VipItem::OFFERED,
    }
}

/// An engine on node `own` that learned the holders in this order at `t0`.
fn engine(own: &str, holders: &[(String, u32)], t0: Instant) -> VipEngine {
    let mut e = VipEngine::new(own, VipEngineSettings::default());
    for (name, weight) in holders {
        e.apply_peer_items(name, &[item(*weight)], true, t0);
    }
    e
}

fn holder(t: Option<SteerTarget>) -> Option<String> {
    match t {
        Some(SteerTarget::Peer(p)) => Some(p),
        _ => None,
    }
}

fn arb_holders(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("h[a-z0-9_]{0,8}", 2..=max).prop_map(|s| s.into_iter().collect())
}

fn arb_flow() -> impl Strategy<Value = FlowKey> {
    prop_oneof![
        8 => (any::<u32>(), any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(src, proto, sp, dp)| FlowKey::Ip {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: VIP,
            proto,
            src_port: sp,
            dst_port: dp,
        }),
        1 => any::<u128>().prop_map(|src| FlowKey::Ip {
            src: IpAddr::V6(src.into()),
            dst: VIP,
            proto: 6,
            src_port: 40000,
            dst_port: 443,
        }),
        1 => any::<[u8; 6]>().prop_map(|m| FlowKey::Mac { src: MacAddr(m) }),
    ]
}

fn arb_flows(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<FlowKey>> {
    prop::collection::vec(arb_flow(), n).prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter().filter(|k| seen.insert(*k)).collect()
    })
}

/// Which holder each flow gets from a fresh engine (pure hash, no history).
fn assignment(own: &str, holders: &[(String, u32)], flows: &[FlowKey]) -> Vec<Option<String>> {
    let t0 = crate::test_clock::start();
    let mut e = engine(own, holders, t0);
    flows
        .iter()
        .map(|k| holder(e.steer(t0 + SETTLED, VIP, k)))
        .collect()
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut s = seed | 1;
    for i in (1..out.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.swap(i, (s >> 33) as usize % (i + 1));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Two different nodes that learned the same holders in different orders
    /// pick the same holder for every flow; the pick is one of the holders
    /// with the lowest weight.
    #[test]
    fn choice_is_deterministic_and_order_independent(
        names in arb_holders(8),
        weights in prop::collection::vec(prop_oneof![Just(10u32), 0u32..4], 8),
        flows in arb_flows(1..200),
        seed in any::<u64>(),
    ) {
        let holders: Vec<(String, u32)> = names.iter().cloned().zip(weights).collect();
        let best = holders.iter().map(|(_, w)| *w).min().unwrap_or(10);
        let a = assignment("client_a", &holders, &flows);
        let b = assignment("client_b", &shuffled(&holders, seed), &flows);
        prop_assert_eq!(&a, &b);
        for h in &a {
            let Some(h) = h else {
                return Err(TestCaseError::fail("a flow got no holder"));
            };
            let w = holders.iter().find(|(n, _)| n == h).map(|(_, w)| *w);
            prop_assert_eq!(w, Some(best), "{} is not among the lowest-weight holders", h);
        }
    }

    /// Removing one holder moves only the flows that were on it, both for
    /// the pure hash (fresh engines) and for an engine with established
    /// flows whose holder dies.
    #[test]
    fn a_dead_holder_moves_only_its_flows(
        names in arb_holders(8),
        victim in any::<prop::sample::Index>(),
        flows in arb_flows(50..300),
    ) {
        let holders: Vec<(String, u32)> = names.iter().map(|n| (n.clone(), 10)).collect();
        let dead = &names[victim.index(names.len())];
        let rest: Vec<(String, u32)> = holders.iter().filter(|(n, _)| n != dead).cloned().collect();
        let before = assignment("client", &holders, &flows);
        let after = assignment("client", &rest, &flows);
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if b.as_ref() == Some(dead) {
                prop_assert!(a.is_some() && a.as_ref() != Some(dead), "flow {} stayed on the dead holder", i);
            } else {
                prop_assert_eq!(a, b, "flow {} moved although its holder lives", i);
            }
        }
        // The same through a live engine: established flows, then a death.
        let t0 = crate::test_clock::start();
        let mut e = engine("client", &holders, t0);
        let t1 = t0 + SETTLED;
        let live: Vec<Option<String>> = flows.iter().map(|k| holder(e.steer(t1, VIP, k))).collect();
        prop_assert_eq!(&live, &before);
        e.set_peer_alive(dead, false, t1);
        for (i, k) in flows.iter().enumerate() {
            let now = holder(e.steer(t1, VIP, k));
            if before[i].as_ref() == Some(dead) {
                // Its flows go where the hash over the survivors sends them.
                prop_assert_eq!(&now, &after[i]);
            } else {
                prop_assert_eq!(&now, &before[i], "established flow {} moved", i);
            }
        }
    }

    /// Adding a holder moves flows only to the newcomer (pure hash); with a
    /// flow table, established flows stay where they are even after the
    /// newcomer's hold-down, and only new flows reach it.
    #[test]
    fn a_new_holder_only_takes_flows(
        names in arb_holders(8),
        newcomer in "n[a-z0-9]{0,6}",
        flows in arb_flows(50..300),
        fresh in arb_flows(50..300),
    ) {
        let holders: Vec<(String, u32)> = names.iter().map(|n| (n.clone(), 10)).collect();
        let mut more = holders.clone();
        more.push((newcomer.clone(), 10));
        let before = assignment("client", &holders, &flows);
        let after = assignment("client", &more, &flows);
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if a != b {
                prop_assert_eq!(a.as_deref(), Some(newcomer.as_str()), "flow {} moved to an old holder", i);
            }
        }
        let t0 = crate::test_clock::start();
        let mut e = engine("client", &holders, t0);
        let t1 = t0 + SETTLED;
        for k in &flows {
            e.steer(t1, VIP, k);
        }
        e.apply_peer_items(&newcomer, &[item(10)], true, t1);
        let t2 = t1 + SETTLED;
        for (i, k) in flows.iter().enumerate() {
            prop_assert_eq!(&holder(e.steer(t2, VIP, k)), &before[i], "established flow {} moved", i);
        }
        let known: std::collections::HashSet<&FlowKey> = flows.iter().collect();
        let unseen: Vec<FlowKey> = fresh.into_iter().filter(|k| !known.contains(k)).collect();
        let expect = assignment("client", &more, &unseen);
        for (i, k) in unseen.iter().enumerate() {
            prop_assert_eq!(&holder(e.steer(t2, VIP, k)), &expect[i], "new flow {} not hashed over all holders", i);
        }
    }

    /// Equal-weight holders share flows roughly evenly.
    #[test]
    fn spread_is_roughly_even(names in arb_holders(6), flows in arb_flows(3000..3001)) {
        let holders: Vec<(String, u32)> = names.iter().map(|n| (n.clone(), 10)).collect();
        let got = assignment("client", &holders, &flows);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for h in got.into_iter().flatten() {
            *counts.entry(h).or_insert(0) += 1;
        }
        let fair = flows.len() as f64 / names.len() as f64;
        for n in &names {
            let c = counts.get(n).copied().unwrap_or(0) as f64;
            prop_assert!(c > fair * 0.6 && c < fair * 1.5, "{} got {} flows, fair share {:.0}: {:?}", n, c, fair, counts);
        }
    }

    /// Whatever happens to other holders (deaths, returns, newcomers), an
    /// established flow keeps its holder for as long as that holder lives.
    #[test]
    fn established_flows_stick_while_their_holder_lives(
        names in arb_holders(6),
        flows in arb_flows(20..120),
        churn in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 1..20),
    ) {
        let holders: Vec<(String, u32)> = names.iter().map(|n| (n.clone(), 10)).collect();
        let t0 = crate::test_clock::start();
        let mut e = engine("client", &holders, t0);
        let mut now = t0 + SETTLED;
        let mut alive: BTreeSet<String> = names.iter().cloned().collect();
        let mut pinned: Vec<Option<String>> = flows.iter().map(|k| holder(e.steer(now, VIP, k))).collect();
        for (who, up) in churn {
            let name = &names[who.index(names.len())];
            now += Duration::from_millis(700);
            e.set_peer_alive(name, up, now);
            if up { alive.insert(name.clone()); } else { alive.remove(name); }
            for (i, k) in flows.iter().enumerate() {
                let got = holder(e.steer(now, VIP, k));
                match &pinned[i] {
                    Some(p) if alive.contains(p) => {
                        prop_assert_eq!(got.as_ref(), Some(p), "flow {} left its live holder", i);
                    }
                    _ => {
                        if let Some(g) = &got {
                            prop_assert!(alive.contains(g), "flow {} sent to dead {}", i, g);
                        } else {
                            prop_assert!(alive.is_empty(), "flow {} dropped with holders alive", i);
                        }
                        pinned[i] = got;
                    }
                }
            }
        }
    }
}
