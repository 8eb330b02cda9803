//! Path MTU discovery and frames in pieces in a simulated network with a
//! virtual clock: a link that carries only 1272-byte datagrams (a 1300-byte
//! IPv4 underlay) between a and b, full-size links elsewhere. Full-size TAP
//! frames must cross every link intact, and nothing larger than a link
//! carries may be sent once its MTU is known.

mod sim;

use sim::SimNet;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// The daemon's TAP (MTU 1400): frames up to 1418 bytes, datagrams up to 1449.
const MAX_FRAME: usize = 1418;
/// UDP payload a 1300-byte IPv4 link carries.
const SMALL_LINK: usize = 1300 - 28;

/// A full-size frame (1414 bytes: a 1400-byte IP packet) with a pattern.
fn full_frame(tag: u8) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, tag]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..1400u32).map(|i| (i as u8) ^ tag));
    f
}

/// Three nodes, all started; the a-b link carries datagrams up to `limit`
/// bytes (shared cell: tests change it), larger ones are dropped and counted.
fn net(limit: Rc<Cell<usize>>, too_big: Rc<Cell<u64>>) -> SimNet {
    let mut net = SimNet::new(7, &["a", "b", "c"]);
    net.tap = Some(Box::new(move |from, to, payload| {
        let small = matches!((from, to), (0, 1) | (1, 0));
        if small && payload.len() > limit.get() {
            too_big.set(too_big.get() + 1);
            return false;
        }
        true
    }));
    for (name, connect) in [("a", &["b", "c"][..]), ("b", &["c"][..]), ("c", &[][..])] {
        let mut cfg = net.config(name, connect);
        cfg.switch.max_frame_len = MAX_FRAME;
        net.start(cfg, &["a", "b", "c"]);
    }
    net
}

fn confirmed(net: &SimNet, node: &str, peer: &str) -> u16 {
    net.node(node)
        .peers()
        .get(peer)
        .expect("peer")
        .pmtu
        .confirmed()
}

#[test]
fn a_small_link_is_found_and_full_frames_cross_it_in_pieces() {
    let limit = Rc::new(Cell::new(SMALL_LINK));
    let too_big = Rc::new(Cell::new(0));
    let mut net = net(limit.clone(), too_big.clone());
    net.run_for(Duration::from_secs(3));
    assert!(net.full_mesh(&net.running()), "no full mesh");
    // Both ends of the small link find it exactly; the others carry the ceiling.
    assert_eq!(confirmed(&net, "a", "b"), SMALL_LINK as u16);
    assert_eq!(confirmed(&net, "b", "a"), SMALL_LINK as u16);
    assert_eq!(confirmed(&net, "a", "c"), (MAX_FRAME + 31) as u16);
    assert_eq!(confirmed(&net, "c", "b"), (MAX_FRAME + 31) as u16);
    let line = net
        .node("a")
        .node_statuses(net.now, 655)
        .into_iter()
        .find(|n| n.name == "b")
        .expect("b in dump nodes");
    assert_eq!(
        (line.pmtu, line.min_mtu, line.max_mtu),
        (1241, 1241, 1241),
        "dump nodes: the largest frame one datagram carries"
    );

    // Full-size frames flooded from a: b gets them in pieces, c whole; no
    // datagram larger than the small link is sent on it any more.
    let dropped_before = too_big.get();
    net.take_tap_rx("b");
    net.take_tap_rx("c");
    for tag in 1..=20 {
        net.tap_send("a", &full_frame(tag));
    }
    net.run_for(Duration::from_millis(200));
    let want: Vec<Vec<u8>> = (1..=20).map(full_frame).collect();
    assert_eq!(
        net.take_tap_rx("b"),
        want,
        "b: every frame, intact, in order"
    );
    assert_eq!(net.take_tap_rx("c"), want, "c: every frame, intact");
    assert_eq!(too_big.get(), dropped_before, "a datagram too big was sent");
    assert_eq!(net.node("b").drops().bad_piece, 0);
}

#[test]
fn a_link_that_shrinks_later_is_noticed_and_frames_cross_again() {
    let limit = Rc::new(Cell::new(usize::MAX));
    let too_big = Rc::new(Cell::new(0));
    let mut net = net(limit.clone(), too_big.clone());
    net.run_for(Duration::from_secs(3));
    assert_eq!(confirmed(&net, "a", "b"), (MAX_FRAME + 31) as u16);
    // The route between a and b now crosses a 1300-byte link.
    limit.set(SMALL_LINK);
    let t = net.elapsed();
    let mut noticed = None;
    for tag in 0..450 {
        // Full-size frames keep flowing (an idle path is not probed).
        net.tap_send("a", &full_frame(tag as u8));
        net.run_for(Duration::from_millis(100));
        if confirmed(&net, "a", "b") == SMALL_LINK as u16 {
            noticed = Some(net.elapsed() - t);
            break;
        }
    }
    let took = noticed.expect("a never found the smaller MTU within 45 s");
    eprintln!("a found the shrunk path after {took:?}");
    // Within the 5 s recheck, three lost probes and the search.
    assert!(took <= Duration::from_secs(10), "{took:?}");
    let lost =
        450usize.min(took.as_millis() as usize / 100 + 1) - net.take_tap_rx("b").len().min(450);
    eprintln!("{lost} full-size frames lost while the path was smaller than known");
    net.take_tap_rx("b");
    net.tap_send("a", &full_frame(9));
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.take_tap_rx("b"), vec![full_frame(9)]);
    // The pair stayed up all along: heartbeats and gossip fit the floor.
    assert!(net.sees("a", "b") && net.sees("b", "a"));
}
