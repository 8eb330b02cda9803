//! The container of the simulated VIP-owner tests: a station behind
//! node_2's TAP that holds the VIP (answering ARP for it, and UDP only when
//! addressed to its own MAC), and the reference scenario with node_2 active
//! (weight 5) serving from it.

use super::lab::*;
use meshd::switch::{build_arp_reply, ArpOp, ArpPacket, EthernetFrame, MacAddr};
use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

pub const CTR_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 2];
pub const OTHER_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 9];

/// What a station behind node_2 does: answers ARP requests for the VIP from
/// `mac` (as Linux does, probes from 0.0.0.0 included) while `arp` and `up`,
/// and UDP to the VIP addressed to `mac` while `up` (saying "I am holder 2").
pub fn station(mac: [u8; 6], up: Rc<Cell<bool>>, arp: bool) -> impl FnMut(&[u8]) -> Vec<Vec<u8>> {
    move |f: &[u8]| {
        if !up.get() {
            return vec![];
        }
        let Ok(eth) = EthernetFrame::parse(f) else {
            return vec![];
        };
        if let Some(Ok(req)) = ArpPacket::from_frame(&eth) {
            if arp && req.op == ArpOp::Request && req.target_ip == VIP {
                return vec![build_arp_reply(&req, eth.src(), MacAddr(mac))];
            }
            return vec![];
        }
        match parse_udp(f) {
            Some((src, dst, sport, dport, payload)) if dst == VIP && f[0..6] == mac => {
                let mut p = payload.to_vec();
                p.push(2);
                vec![udp(
                    f[6..12].try_into().expect("6 bytes"),
                    mac,
                    VIP,
                    src,
                    dport,
                    sport,
                    &p,
                )]
            }
            _ => vec![],
        }
    }
}

/// The scenario with node_2 active (weight 5); `tune` adjusts node_2's VIP.
/// Returns the lab and the switch that starts and stops the container.
pub fn owner_lab(seed: u64, tune: impl Fn(&mut meshd::vip::LocalVip)) -> (Lab, Rc<Cell<bool>>) {
    let mut lab = lab(seed, [5, 10, 10], |cfg| {
        if cfg.name.as_str() == "node_2" {
            for v in &mut cfg.vips {
                tune(v);
            }
        }
    });
    let up = Rc::new(Cell::new(true));
    let mut ctr = station(CTR_MAC, up.clone(), true);
    lab.net.nodes[1].host = Some(Box::new(move |_, f: &[u8]| ctr(f)));
    // The container is found (and present), and node_2 is past its hold-down.
    lab.net.run_for(Duration::from_millis(2500));
    (lab, up)
}

pub fn answered_by(lab: &Lab, range: std::ops::Range<u32>) -> Vec<u8> {
    let a = lab.answers.borrow();
    range
        .map(|s| a.iter().find(|x| x.1 == s).map_or(0, |x| x.2))
        .collect()
}

pub fn owner_mac(lab: &Lab) -> Option<MacAddr> {
    lab.net
        .node("node_2")
        .vip_engine()
        .owner_mac(&IpAddr::V4(VIP))
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
