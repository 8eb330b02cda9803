//! The reference VIP scenario for simulated-network tests: node_1 hub,
//! node_2..4 serve 10.1.1.10 (servers behind them answer UDP saying who they
//! are), node_5 is a client whose probes and answers are logged.

use super::SimNet;
use meshd::switch::MacAddr;
use meshd::vip::LocalVip;
use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);
pub const VMAC: [u8; 6] = [0x02, 0x6d, 10, 1, 1, 10];
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 2);
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 5];
pub const NAMES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];
pub const PROBE: Duration = Duration::from_millis(10);

pub fn tap_mac(i: usize) -> [u8; 6] {
    [0x02, 0xaa, 0, 0, 0, i as u8]
}

/// A UDP datagram in an Ethernet frame: `payload` = [probe seq (4 bytes), holder id].
pub fn udp(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

pub fn parse_udp(f: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u16, u16, &[u8])> {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
        return None;
    }
    let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let sport = u16::from_be_bytes([f[34], f[35]]);
    let dport = u16::from_be_bytes([f[36], f[37]]);
    Some((src, dst, sport, dport, &f[42..]))
}

/// (time, seq, holder index, client port) of every answer the client got.
pub type Answers = Rc<RefCell<Vec<(Duration, u32, u8, u16)>>>;

pub struct Lab {
    pub net: SimNet,
    pub answers: Answers,
    pub next_seq: u32,
}

/// The reference scenario; `weights[k]` is node_(k+2)'s weight.
pub fn lab(seed: u64, weights: [u32; 3], tune: impl Fn(&mut meshd::node::NodeConfig)) -> Lab {
    let mut net = SimNet::new(seed, &NAMES);
    for (i, name) in NAMES.iter().enumerate() {
        let mut cfg = if i == 0 {
            net.config(name, &[])
        } else {
            net.config(name, &["node_1"])
        };
        if (1..=3).contains(&i) {
            cfg.vips = vec![LocalVip {
                address: VIP.into(),
                prefix_len: 24,
                weight: weights[i - 1],
                virtual_mac: MacAddr(VMAC),
                checked: false,
                owner: None,
                presence: None,
                policy: Default::default(),
            }];
        }
        tune(&mut cfg);
        net.start(cfg, &NAMES);
        net.node_mut(name).set_tap_mac(tap_mac(i + 1));
    }
    // Servers behind node_2..4 answer UDP to the VIP, saying who they are.
    for i in 1..=3usize {
        let me = tap_mac(i + 1);
        net.nodes[i].host = Some(Box::new(move |_, f: &[u8]| {
            if f[0..6] != me {
                return vec![];
            }
            match parse_udp(f) {
                Some((src, dst, sport, dport, payload)) if dst == VIP => {
                    let mut p = payload.to_vec();
                    p.push((i + 1) as u8);
                    vec![udp(
                        f[6..12].try_into().unwrap(),
                        me,
                        VIP,
                        src,
                        dport,
                        sport,
                        &p,
                    )]
                }
                _ => vec![],
            }
        }));
    }
    let answers: Answers = Rc::new(RefCell::new(Vec::new()));
    let log = answers.clone();
    net.nodes[4].host = Some(Box::new(move |t, f: &[u8]| {
        if let Some((src, dst, _, dport, p)) = parse_udp(f) {
            if src == VIP && dst == CLIENT_IP && p.len() == 5 {
                let seq = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                log.borrow_mut().push((t, seq, p[4], dport));
            }
        }
        vec![]
    }));
    net.run_for(Duration::from_secs(3));
    let all: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    assert!(net.full_mesh(&all), "mesh did not form");
    Lab {
        net,
        answers,
        next_seq: 0,
    }
}

impl Lab {
    pub fn probe(&mut self, port: u16) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let f = udp(
            VMAC,
            CLIENT_MAC,
            CLIENT_IP,
            VIP,
            port,
            53,
            &seq.to_be_bytes(),
        );
        self.net.tap_send("node_5", &f);
    }

    /// Probes every 10 ms from one flow for `d`; returns the probes sent.
    pub fn probe_for(&mut self, d: Duration, port: u16) -> std::ops::Range<u32> {
        let first = self.next_seq;
        let mut t = Duration::ZERO;
        while t < d {
            self.probe(port);
            self.net.run_for(PROBE);
            t += PROBE;
        }
        first..self.next_seq
    }

    pub fn holder_of_port(&self, port: u16) -> u8 {
        self.answers
            .borrow()
            .iter()
            .rev()
            .find(|a| a.3 == port)
            .map(|a| a.2)
            .expect("no answer yet")
    }

    /// Longest run of unanswered probes in `range`, as time.
    pub fn outage(&self, range: std::ops::Range<u32>) -> (Duration, u32) {
        let answered: std::collections::HashSet<u32> =
            self.answers.borrow().iter().map(|a| a.1).collect();
        let (mut run, mut worst, mut lost) = (0u32, 0u32, 0u32);
        for s in range {
            if answered.contains(&s) {
                run = 0;
            } else {
                run += 1;
                lost += 1;
                worst = worst.max(run);
            }
        }
        (PROBE * worst, lost)
    }
}

pub fn name_of(holder: u8) -> &'static str {
    NAMES[holder as usize - 1]
}
