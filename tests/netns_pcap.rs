//! Issue 21: `meshd pcap` (tinc's pcap) on two real daemons with TAP devices in network
//! namespaces (needs root): a ping from alpha to beta over the overlay shows up in alpha's
//! capture as a pcap file (tinc's: LE magic, v2.4, Ethernet) with the echo request read from
//! the TAP and the reply written to it; SNAPLEN cuts the frames.

use meshd_lab::netns::{meshd, Lab};
use meshd_lab::require_netns;
use std::process::{Command, Stdio};
use std::time::Duration;

/// (incl_len, orig_len, data) of each record of a pcap file, after checking its header.
fn records(pcap: &[u8], snaplen: u32) -> Vec<(u32, u32, Vec<u8>)> {
    assert!(pcap.len() >= 24, "no pcap header: {} bytes", pcap.len());
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!(u32_at(pcap, 0), 0xa1b2_c3d4, "magic");
    assert_eq!(&pcap[4..8], &[2, 0, 4, 0], "version 2.4");
    assert_eq!(u32_at(pcap, 16), snaplen, "snaplen");
    assert_eq!(u32_at(pcap, 20), 1, "link type Ethernet");
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= pcap.len() {
        let incl = u32_at(pcap, i + 8);
        let orig = u32_at(pcap, i + 12);
        let end = i + 16 + incl as usize;
        if end > pcap.len() {
            break; // the capture was cut mid-record
        }
        out.push((incl, orig, pcap[i + 16..end].to_vec()));
        i = end;
    }
    out
}

/// ICMP type of an IPv4 ICMP frame between the two overlay addresses.
fn icmp_type(frame: &[u8]) -> Option<u8> {
    if frame.len() < 14 + 20 + 1 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 1 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    frame.get(14 + ihl).copied()
}

/// Captures on alpha while alpha pings beta; returns the pcap bytes.
fn capture(lab: &Lab, snaplen: Option<u32>) -> Vec<u8> {
    let mut cmd = Command::new(meshd());
    cmd.arg("-c").arg(&lab.node("alpha").netdir).arg("pcap");
    if let Some(s) = snaplen {
        cmd.arg(s.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("meshd pcap");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    std::thread::sleep(Duration::from_millis(500));
    let ping = lab.exec_in(
        &lab.node("alpha").ns,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.1.2"],
    );
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    reader.join().expect("reader")
}

#[test]
fn pcap_streams_the_frames_of_the_tap() {
    require_netns!();
    let mut lab = Lab::new("pc", &["alpha", "beta"]);
    lab.init_all();
    lab.hub("alpha");
    for (node, ip) in [("alpha", "10.9.1.1"), ("beta", "10.9.1.2")] {
        lab.conf(node, "Interface = pcap0");
        lab.script(
            node,
            "tinc-up",
            &format!(
                "#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {ip}/24 dev \"$INTERFACE\"\n"
            ),
        );
    }
    lab.start("alpha");
    lab.start("beta");
    lab.wait(Duration::from_secs(15), |l| {
        l.reachable("alpha")
            .is_some_and(|r| r.iter().any(|n| n == "beta"))
    })
    .expect("beta reachable from alpha");

    let pcap = capture(&lab, None);
    let recs = records(&pcap, 65535);
    let types: Vec<u8> = recs.iter().filter_map(|(_, _, f)| icmp_type(f)).collect();
    assert!(
        types.iter().filter(|t| **t == 8).count() >= 3,
        "echo requests (from the TAP): {types:?} in {} records",
        recs.len()
    );
    assert!(
        types.iter().filter(|t| **t == 0).count() >= 3,
        "echo replies (to the TAP): {types:?}"
    );
    assert!(recs.iter().all(|(incl, orig, _)| incl == orig));

    // A snapshot length cuts every frame to it; the original length is kept.
    let recs = records(&capture(&lab, Some(40)), 40);
    assert!(!recs.is_empty());
    assert!(recs
        .iter()
        .all(|(incl, orig, f)| *incl as usize == f.len() && *incl <= 40 && orig >= incl));
    assert!(recs.iter().any(|(_, orig, _)| *orig > 40));
}
