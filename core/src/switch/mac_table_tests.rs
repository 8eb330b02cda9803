//! Tests of the MAC table: learning, moves, statics, caps and expiry.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use super::mac::MacAddr;
use super::mac_table::*;

fn mac(n: u32) -> MacAddr {
    let b = n.to_be_bytes();
    MacAddr([0x02, 0, b[0], b[1], b[2], b[3]])
}

fn peer(name: &str) -> Port {
    Port::peer(name)
}

#[test]
fn port_forms() {
    assert_eq!(Port::Local.to_string(), "(local)");
    assert_eq!(peer("beta").to_string(), "beta");
    assert_eq!(peer("beta").peer_name(), Some("beta"));
    assert_eq!(Port::Local.peer_name(), None);
    assert_eq!(serde_json::to_string(&peer("beta")).unwrap(), "\"beta\"");
    assert!(PortRef::Peer("beta").is(&peer("beta")));
    assert!(!PortRef::Peer("beta").is(&Port::Local));
    assert_eq!(PortRef::from(&peer("x")).to_port(), peer("x"));
    assert!(Port::Local < peer("a"));
}

#[test]
fn learn_refresh_move_invalid() {
    let t0 = crate::test_clock::start();
    let mut t = MacTable::default();
    assert_eq!(t.learn(mac(1), &peer("a"), t0), Learned::New);
    assert_eq!(t.learn(mac(1), PortRef::Peer("a"), t0), Learned::Refreshed);
    assert_eq!(t.lookup(&mac(1)), Some(&peer("a")));
    assert_eq!(
        t.learn(mac(1), &Port::Local, t0),
        Learned::Moved { from: peer("a") }
    );
    assert_eq!(t.lookup(&mac(1)), Some(&Port::Local));
    assert_eq!((t.count_for(&peer("a")), t.count_for(&Port::Local)), (0, 1));
    for bad in [
        MacAddr::BROADCAST,
        MacAddr::ZERO,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
    ] {
        assert_eq!(t.learn(bad, &Port::Local, t0), Learned::Invalid);
    }
    assert_eq!(t.len(), 1);
    assert_eq!(t.learned_len(), 1);
    let (m, e) = t.entries().next().unwrap();
    assert_eq!(
        (m, &e.port, e.is_static, e.last_seen),
        (mac(1), &Port::Local, false, Some(t0))
    );
}

#[test]
fn static_pin_beats_learning() {
    let t0 = crate::test_clock::start();
    let mut t = MacTable::default();
    t.learn(mac(1), &peer("a"), t0);
    let change = t.set_static(Port::Local, &[mac(1), mac(2), mac(2), MacAddr::BROADCAST]);
    assert_eq!(change.added, vec![mac(1), mac(2)]);
    assert_eq!(change.removed, vec![]);
    assert_eq!(change.replaced, vec![(mac(1), peer("a"))]);
    assert_eq!(t.learn(mac(1), &peer("a"), t0), Learned::Pinned);
    assert_eq!(t.learn(mac(2), &peer("b"), t0), Learned::Pinned);
    assert_eq!(t.lookup(&mac(1)), Some(&Port::Local));
    // Frames from the pinned port refresh the static entry without unpinning it.
    assert_eq!(t.learn(mac(2), &Port::Local, t0), Learned::Refreshed);
    assert!(t.get(&mac(2)).unwrap().is_static);
    assert_eq!(t.get(&mac(2)).unwrap().last_seen, Some(t0));
    assert_eq!(t.learned_len(), 0);
    assert_eq!(t.count_for(&Port::Local), 2);
    assert_eq!(t.learned_for(&Port::Local), 0);

    // Replacing the set: mac(1) goes, mac(3) comes, mac(2) unchanged.
    let change = t.set_static(Port::Local, &[mac(2), mac(3)]);
    assert_eq!(change.added, vec![mac(3)]);
    assert_eq!(change.removed, vec![mac(1)]);
    assert!(change.replaced.is_empty());
    assert_eq!(t.lookup(&mac(1)), None);
    // A static entry at another port is taken over by the latest call.
    let change = t.set_static(peer("b"), &[mac(3)]);
    assert_eq!(change.replaced, vec![(mac(3), Port::Local)]);
    assert_eq!(t.lookup(&mac(3)), Some(&peer("b")));
    assert_eq!(t.count_for(&Port::Local), 1);
    // Statics never expire; clearing the set removes them.
    assert!(t.expire(t0 + Duration::from_secs(100_000)).is_empty());
    let change = t.set_static(Port::Local, &[]);
    assert_eq!(change.removed, vec![mac(2)]);
    assert_eq!(t.len(), 1);
}

#[test]
fn caps_never_evict() {
    let t0 = crate::test_clock::start();
    let mut t = MacTable::new(MacTableLimits {
        expire: Duration::from_secs(600),
        max_total: 200,
        max_per_port: 100,
        sticky: false,
    });
    for n in 0..50 {
        assert_eq!(t.learn(mac(n), &peer("good"), t0), Learned::New);
    }
    // Statics do not count.
    t.set_static(peer("evil"), &[mac(900_000)]);
    let mut refused = 0;
    for n in 1000..11_000 {
        match t.learn(mac(n), PortRef::Peer("evil"), t0) {
            Learned::New => {}
            Learned::Refused => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 9900);
    assert_eq!(t.cap_hits(), 9900);
    assert_eq!(t.per_port_cap_hits(), 9900);
    assert_eq!(t.largest_port(), 100);
    assert_eq!(t.learned_for(&peer("evil")), 100);
    assert_eq!(t.count_for(&peer("evil")), 101);
    for n in 0..50 {
        assert_eq!(t.lookup(&mac(n)), Some(&peer("good")));
    }
    // The total cap: 200 learned in all.
    for n in 50..100 {
        assert_eq!(t.learn(mac(n), &peer("good"), t0), Learned::New);
    }
    assert_eq!(t.learn(mac(100), &Port::Local, t0), Learned::Refused);
    // A move into a full port is refused too; a move does not need total room.
    assert_eq!(t.learn(mac(0), &peer("evil"), t0), Learned::Refused);
    assert_eq!(
        t.learn(mac(1000), &Port::Local, t0),
        Learned::Moved { from: peer("evil") }
    );
    assert_eq!(t.learned_len(), 200);
    // One refusal by the total cap, one more by the per-port cap.
    assert_eq!((t.cap_hits(), t.per_port_cap_hits()), (9902, 9901));
    // Raised caps take effect at once.
    t.set_limits(MacTableLimits {
        max_total: 201,
        ..t.limits()
    });
    assert_eq!(t.learn(mac(100), &Port::Local, t0), Learned::New);
}

#[test]
fn expiry_with_fake_clock() {
    let t0 = crate::test_clock::start();
    let s = Duration::from_secs;
    let mut t = MacTable::default();
    t.learn(mac(1), &peer("a"), t0);
    t.learn(mac(2), &Port::Local, t0);
    t.learn(mac(3), &peer("b"), t0);
    t.set_static(peer("a"), &[mac(4)]);
    t.learn(mac(2), &Port::Local, t0 + s(300));
    assert!(t.expire(t0 + s(599)).is_empty());
    assert_eq!(
        t.expire(t0 + s(600)),
        vec![(mac(1), peer("a")), (mac(3), peer("b"))]
    );
    assert_eq!(t.count_for(&peer("b")), 0);
    assert_eq!(t.expire(t0 + s(900)), vec![(mac(2), Port::Local)]);
    assert_eq!(t.len(), 1, "the static entry stays");
    assert_eq!(t.learned_len(), 0);
}

#[test]
fn remove_learned_keeps_statics() {
    let t0 = crate::test_clock::start();
    let mut t = MacTable::default();
    t.set_static(peer("a"), &[mac(9)]);
    for n in [3, 1, 2] {
        t.learn(mac(n), &peer("a"), t0);
    }
    t.learn(mac(5), &peer("b"), t0);
    assert_eq!(t.remove_learned(&peer("a")), vec![mac(1), mac(2), mac(3)]);
    assert!(t.remove_learned(PortRef::Peer("a")).is_empty());
    assert!(t.remove_learned(PortRef::Peer("nobody")).is_empty());
    assert_eq!(t.lookup(&mac(9)), Some(&peer("a")));
    assert_eq!(t.lookup(&mac(5)), Some(&peer("b")));
    assert_eq!((t.count_for(&peer("a")), t.learned_len()), (1, 1));
}

#[test]
fn forget_removes_only_learned() {
    let t0 = crate::test_clock::start();
    let mut t = MacTable::default();
    t.learn(mac(1), &peer("a"), t0);
    t.set_static(peer("a"), &[mac(2)]);
    assert_eq!(t.forget(&mac(1)), Some(peer("a")));
    assert_eq!(t.forget(&mac(1)), None);
    assert_eq!(t.forget(&mac(2)), None);
    assert_eq!(
        (t.len(), t.learned_len(), t.count_for(&peer("a"))),
        (1, 0, 1)
    );
}

#[derive(Debug, Clone)]
enum Op {
    Learn(u8, u8, u16),
    Static(u8, Vec<u8>),
    Expire(u16),
    Remove(u8),
    Forget(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u8..24, 0u16..1200).prop_map(|(p, m, t)| Op::Learn(p, m, t)),
        1 => (0u8..4, proptest::collection::vec(0u8..24, 0..6)).prop_map(|(p, m)| Op::Static(p, m)),
        1 => (0u16..2000).prop_map(Op::Expire),
        1 => (0u8..4).prop_map(Op::Remove),
        1 => (0u8..24).prop_map(Op::Forget),
    ]
}

fn port_n(n: u8) -> Port {
    match n {
        0 => Port::Local,
        n => Port::peer(&format!("p{n}")),
    }
}

proptest! {
    /// Whatever happens, the counts agree with the entries and the caps hold.
    #[test]
    fn counts_stay_consistent(ops in proptest::collection::vec(op(), 0..80)) {
        let t0 = crate::test_clock::start();
        let limits = MacTableLimits { expire: Duration::from_secs(600), max_total: 10, max_per_port: 4, sticky: false };
        let mut t = MacTable::new(limits);
        for op in ops {
            match op {
                Op::Learn(p, m, at) => { t.learn(mac(m.into()), &port_n(p), t0 + Duration::from_secs(at.into())); }
                Op::Static(p, ms) => {
                    let ms: Vec<MacAddr> = ms.into_iter().map(|m| mac(m.into())).collect();
                    t.set_static(port_n(p), &ms);
                }
                Op::Expire(at) => { t.expire(t0 + Duration::from_secs(at.into())); }
                Op::Remove(p) => { t.remove_learned(&port_n(p)); }
                Op::Forget(m) => { t.forget(&mac(m.into())); }
            }
            let mut learned: HashMap<Port, usize> = HashMap::new();
            let mut all: HashMap<Port, usize> = HashMap::new();
            for (_, e) in t.entries() {
                *all.entry(e.port.clone()).or_default() += 1;
                if !e.is_static {
                    *learned.entry(e.port.clone()).or_default() += 1;
                }
            }
            prop_assert_eq!(learned.values().sum::<usize>(), t.learned_len());
            prop_assert!(t.learned_len() <= 10);
            for p in 0..4 {
                let port = port_n(p);
                prop_assert_eq!(t.learned_for(&port), learned.get(&port).copied().unwrap_or(0));
                prop_assert_eq!(t.count_for(&port), all.get(&port).copied().unwrap_or(0));
                prop_assert!(t.learned_for(&port) <= 4);
            }
        }
    }
}

#[test]
fn sticky_entries_do_not_move_between_peers_until_they_expire() {
    let t0 = crate::test_clock::start();
    let limits = MacTableLimits {
        expire: Duration::from_secs(600),
        sticky: true,
        ..MacTableLimits::default()
    };
    let mut t = MacTable::new(limits);
    assert_eq!(t.learn(mac(1), &peer("b"), t0), Learned::New);
    assert_eq!(t.learn(mac(2), &Port::Local, t0), Learned::New);
    // A member sending from b's station, or from one on our LAN: refused.
    assert_eq!(t.learn(mac(1), &peer("m"), t0), Learned::Pinned);
    assert_eq!(t.learn(mac(2), &peer("m"), t0), Learned::Pinned);
    assert_eq!(t.get(&mac(1)).map(|e| e.port.clone()), Some(peer("b")));
    // The local side may always take a station over (the operator's own LAN).
    assert!(matches!(
        t.learn(mac(1), &Port::Local, t0),
        Learned::Moved { .. }
    ));
    // Once an entry expired, the station is learned where it is now.
    assert_eq!(t.learn(mac(3), &peer("b"), t0), Learned::New);
    let later = t0 + Duration::from_secs(601);
    assert!(matches!(
        t.learn(mac(3), &peer("m"), later),
        Learned::Moved { .. }
    ));
    // Without the setting, a move is a move.
    let mut loose = MacTable::new(MacTableLimits::default());
    loose.learn(mac(1), &peer("b"), t0);
    assert!(matches!(
        loose.learn(mac(1), &peer("m"), t0),
        Learned::Moved { .. }
    ));
}
