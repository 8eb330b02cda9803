//! Ethernet frames: every parser of `meshd::switch` on each frame, and a script
//! driving a `Switch` (small caps) with frames from the TAP and from peers, a
//! fake clock, peers dying, statics and expiry.
//!
//! Input: a sequence of records `[op, len, bytes[len]]`. Checks beyond "no
//! panic": flow keys reverse twice to themselves; a successful ARP sender
//! rewrite changes exactly the two sender MACs; a Neighbour Discovery
//! link-layer rewrite succeeds exactly on valid ND messages, keeps them valid
//! (checksum recomputed) and carries the new MAC; answers the switch writes into
//! the TAP parse back as a valid ARP reply or Neighbour Advertisement; a frame
//! from a peer is only ever delivered to the TAP or dropped; the caps hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::switch::{
    flow_key, parse_nd, rewrite_arp_sender_mac, rewrite_nd_link_layer, ArpOp, ArpPacket, Delivery,
    EthernetFrame, MacAddr, MacTableLimits, NdMessage, Port, Switch, SwitchConfig, ETHERTYPE_ARP,
};
use std::time::{Duration, Instant};

const PEERS: [&str; 3] = ["alpha", "beta", "gamma"];
const NEW_MAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x01]);

fn parsers(frame: &[u8]) {
    let _ = frame
        .get(..17)
        .map(|t| String::from_utf8_lossy(t).parse::<MacAddr>());
    let Ok(eth) = EthernetFrame::parse(frame) else {
        return;
    };
    let key = flow_key(&eth);
    assert_eq!(key.reversed().reversed(), key);
    let nd = parse_nd(&eth);
    let mut nd_copy = frame.to_vec();
    assert_eq!(rewrite_nd_link_layer(&mut nd_copy, NEW_MAC), nd.is_some());
    if let Some(before) = nd {
        let after_eth = EthernetFrame::parse(&nd_copy).expect("still a frame");
        assert_eq!(after_eth.src(), NEW_MAC);
        match (before, parse_nd(&after_eth).expect("still valid ND")) {
            (NdMessage::Solicitation(b), NdMessage::Solicitation(a)) => {
                assert_eq!((a.target, a.src_ip), (b.target, b.src_ip));
                assert_eq!(a.source_ll, b.source_ll.map(|_| NEW_MAC));
            }
            (NdMessage::Advertisement(b), NdMessage::Advertisement(a)) => {
                assert_eq!((a.target, a.solicited), (b.target, b.solicited));
                assert_eq!(a.target_ll, b.target_ll.map(|_| NEW_MAC));
            }
            _ => panic!("the rewrite changed the message type"),
        }
    } else {
        assert_eq!(nd_copy, frame);
    }
    if eth.ethertype() == ETHERTYPE_ARP {
        let parsed = ArpPacket::parse(eth.payload());
        let mut copy = frame.to_vec();
        let rewritten = rewrite_arp_sender_mac(&mut copy, NEW_MAC);
        assert_eq!(rewritten, parsed.is_ok());
        if let Ok(before) = parsed {
            let after_eth = EthernetFrame::parse(&copy).expect("still a frame");
            assert_eq!(after_eth.src(), NEW_MAC);
            assert_eq!(after_eth.dst(), eth.dst());
            let after = ArpPacket::parse(after_eth.payload()).expect("still ARP");
            assert_eq!(
                after,
                ArpPacket {
                    sender_mac: NEW_MAC,
                    ..before
                }
            );
            let differing = frame.iter().zip(&copy).filter(|(a, b)| a != b).count();
            assert!(differing <= 12);
        }
    }
}

fn check_reply(reply: &[u8]) {
    let eth = EthernetFrame::parse(reply).expect("a reply is a frame");
    if eth.ethertype() == ETHERTYPE_ARP {
        let arp = ArpPacket::parse(eth.payload()).expect("a reply is valid ARP");
        assert_eq!(arp.op, ArpOp::Reply);
        assert_eq!(arp.sender_mac, eth.src());
    } else {
        match parse_nd(&eth) {
            Some(NdMessage::Advertisement(na)) => assert_eq!(na.target_ll, Some(eth.src())),
            other => panic!("a reply that is neither ARP nor an advertisement: {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let limits = MacTableLimits {
        expire: Duration::from_secs(60),
        max_total: 16,
        max_per_port: 6,
        sticky: data.first().is_some_and(|b| b & 1 == 1),
    };
    let mut sw = Switch::new(SwitchConfig {
        macs: limits,
        neighbour_expire: Duration::from_secs(30),
        neighbour_max: 8,
        max_frame_len: 200,
        ..SwitchConfig::default()
    });
    let mut dead = [false; 3];
    let mut replies = Vec::new();
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        parsers(frame);
        let peer = usize::from(op >> 4) % PEERS.len();
        match op & 0x0f {
            0..=5 => {
                replies.clear();
                let d = sw.from_tap(
                    now,
                    frame,
                    |p| PEERS.iter().position(|q| *q == p).is_some_and(|i| !dead[i]),
                    &mut replies,
                );
                assert_ne!(d, Delivery::Tap);
                if let Delivery::Peer(name) = &d {
                    let i = PEERS.iter().position(|q| q == name).expect("a known peer");
                    assert!(!dead[i]);
                    assert!(replies.is_empty());
                }
                for reply in &replies {
                    check_reply(reply);
                }
            }
            6..=10 => {
                let d = sw.from_peer(now, PEERS[peer], frame);
                assert!(matches!(d, Delivery::Tap | Delivery::Drop));
            }
            11 => now += Duration::from_secs(u64::from(len as u8 % 64)),
            12 => {
                dead[peer] = !dead[peer];
                if dead[peer] {
                    sw.peer_down(PEERS[peer]);
                }
            }
            13 => {
                let macs: Vec<MacAddr> = frame
                    .chunks_exact(6)
                    .filter_map(MacAddr::from_slice)
                    .collect();
                sw.set_static(Port::peer(PEERS[peer]), &macs);
            }
            14 => sw.expire(now),
            _ => while sw.poll_event().is_some() {},
        }
        assert!(sw.macs().learned_len() <= limits.max_total);
        assert!(sw.neighbours().len() <= 8);
        for name in PEERS {
            assert!(sw.macs().learned_for(&Port::peer(name)) <= limits.max_per_port);
        }
    }
});
