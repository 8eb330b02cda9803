//! Tests of the TAP offload helpers: TSO frames split into valid segments,
//! partial checksums completed, segments coalesced back.

use super::*;

/// An Ethernet + IPv4/IPv6 + TCP frame with `payload` bytes, checksums left
/// as the kernel leaves them for offload (TCP: the pseudo-header sum).
fn tcp_frame(v4: bool, payload: usize, seq: u32, flags: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    let l3 = 14;
    if v4 {
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = (20 + 32 + payload) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, PROTO_TCP, 0, 0]);
        f.extend_from_slice(&[10, 1, 1, 1, 10, 1, 1, 2]);
        fix_ipv4_checksum(&mut f, l3);
    } else {
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&((32 + payload) as u16).to_be_bytes());
        f.extend_from_slice(&[PROTO_TCP, 64]);
        f.extend_from_slice(&[0xfd; 16]);
        f.extend_from_slice(&[0xfe; 16]);
    }
    let l4 = f.len();
    f.extend_from_slice(&[0x13, 0x88, 0xc3, 0x50]); // ports 5000 -> 50000
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&0x0bad_cafeu32.to_be_bytes()); // ack
    f.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]); // doff 8 (32 bytes)
    f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]); // NOP NOP timestamps
    f.extend((0..payload).map(|i| (i * 7 + 3) as u8));
    let l4_len = f.len() - l4;
    let pseudo = csum_fold(pseudo_sum(&f, l3, v4, l4_len).unwrap());
    put16(&mut f, l4 + 16, pseudo);
    f
}

fn with_hdr(hdr: VnetHdr, frame: &[u8]) -> Vec<u8> {
    let mut v = hdr.bytes().to_vec();
    v.extend_from_slice(frame);
    v
}

/// Whether a frame's IPv4 header checksum and TCP checksum are right.
fn checksums_ok(f: &[u8]) -> bool {
    let info = tcp_info(f).expect("a TCP frame");
    if info.v4 && csum_fold(csum_add(0, &f[info.l3_off..info.l4_off])) != 0xffff {
        return false;
    }
    let l4_len = f.len() - info.l4_off;
    let sum = csum_add(
        pseudo_sum(f, info.l3_off, info.v4, l4_len).unwrap(),
        &f[info.l4_off..],
    );
    csum_fold(sum) == 0xffff
}

fn tso_hdr(v4: bool, mss: u16) -> VnetHdr {
    VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: if v4 { GSO_TCPV4 } else { GSO_TCPV6 },
        hdr_len: 0,
        gso_size: mss,
        csum_start: if v4 { 34 } else { 54 },
        csum_offset: 16,
    }
}

#[test]
fn header_round_trips() {
    let h = tso_hdr(true, 1348);
    assert_eq!(VnetHdr::parse(&h.bytes()), Some(h));
    assert_eq!(VnetHdr::parse(&[0; 9]), None);
}

#[test]
fn plain_frames_pass_unchanged() {
    let frame = tcp_frame(true, 100, 1, 0x10);
    let mut got = Vec::new();
    split_read(
        &with_hdr(VnetHdr::default(), &frame),
        &mut Vec::new(),
        |f| got.push(f.to_vec()),
    )
    .unwrap();
    assert_eq!(got, vec![frame]);
}

#[test]
fn partial_checksum_is_completed() {
    let frame = tcp_frame(true, 333, 1, 0x18);
    assert!(!checksums_ok(&frame));
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 16,
        ..VnetHdr::default()
    };
    let mut got = Vec::new();
    split_read(&with_hdr(hdr, &frame), &mut Vec::new(), |f| {
        got.push(f.to_vec())
    })
    .unwrap();
    assert_eq!(got.len(), 1);
    assert!(checksums_ok(&got[0]));
}

fn split(v4: bool, payload: usize, mss: u16, flags: u8) -> (Vec<u8>, Vec<Vec<u8>>) {
    let big = tcp_frame(v4, payload, 0xffff_f000, flags);
    let mut segs = Vec::new();
    split_read(&with_hdr(tso_hdr(v4, mss), &big), &mut Vec::new(), |f| {
        segs.push(f.to_vec())
    })
    .unwrap();
    (big, segs)
}

#[test]
fn tso_frames_become_valid_segments() {
    for v4 in [true, false] {
        let (big, segs) = split(v4, 10_000, 1348, 0x18 | TCP_CWR);
        assert_eq!(segs.len(), 8, "v4 {v4}");
        let mut data = Vec::new();
        let mut seq = 0xffff_f000u32;
        for (i, s) in segs.iter().enumerate() {
            assert!(checksums_ok(s), "segment {i} v4 {v4}");
            let info = tcp_info(s).expect("TCP");
            assert_eq!(info.seq, seq, "seq wraps correctly");
            seq = seq.wrapping_add(info.payload as u32);
            let last = i + 1 == segs.len();
            assert_eq!(info.flags & TCP_PSH != 0, last, "PSH on the last only");
            assert_eq!(info.flags & TCP_CWR != 0, i == 0, "CWR on the first only");
            if v4 {
                assert_eq!(get16(s, 18), Some(0x1234 + i as u16), "IP ID");
            }
            assert!(s.len() <= 14 + 40 + 32 + 1348);
            data.extend_from_slice(&s[info.hdrs..]);
        }
        assert_eq!(data, big[big.len() - 10_000..]);
    }
}

#[test]
fn malformed_tso_is_refused_not_panicking() {
    let big = tcp_frame(true, 3000, 1, 0x10);
    let mut hdr = tso_hdr(true, 0);
    assert!(split_read(&with_hdr(hdr, &big), &mut Vec::new(), |_| {}).is_err());
    hdr.gso_size = 1000;
    hdr.csum_start = 60_000;
    assert!(split_read(&with_hdr(hdr, &big), &mut Vec::new(), |_| {}).is_err());
    for len in 0..80 {
        let _ = split_read(
            &with_hdr(tso_hdr(true, 100), &big[..len]),
            &mut Vec::new(),
            |_| {},
        );
        let _ = split_read(&big[..len], &mut Vec::new(), |_| {});
    }
    hdr.gso_type = 3; // UDP fragmentation offload: never enabled
    hdr.csum_start = 34;
    assert_eq!(
        split_read(&with_hdr(hdr, &big), &mut Vec::new(), |_| {}),
        Err(OffloadError::UnsupportedGso)
    );
}

/// Found by `fuzz/fuzz_targets/tap_offload.rs`: an IPv4 header claiming more
/// bytes (IHL 15: 60) than lie before the TCP header (`csum_start`), with a
/// payload too short to cover the difference, made the IPv4 checksum of a
/// segment read past its end.
#[test]
fn tso_with_ihl_beyond_the_tcp_header_is_refused() {
    let mut frame = tcp_frame(true, 5, 1, 0x10);
    frame[14] = 0x4f;
    let read = with_hdr(tso_hdr(true, 100), &frame);
    assert_eq!(
        split_read(&read, &mut Vec::new(), |_| {}),
        Err(OffloadError::Malformed)
    );
    // IHL 5 with that header is still fine.
    frame[14] = 0x45;
    let read = with_hdr(tso_hdr(true, 100), &frame);
    assert!(split_read(&read, &mut Vec::new(), |_| {}).is_ok());
}

/// Joins a run the way the driver writes it: header, first frame, payloads.
fn join(segs: &mut [Vec<u8>]) -> (VnetHdr, Vec<u8>) {
    let n = segs.len();
    let total: usize = segs.iter().map(|s| tcp_info(s).unwrap().payload).sum();
    let last_flags = tcp_payload_at(&segs[n - 1]).unwrap().1;
    let hdr = coalesce_head(&mut segs[0], total, n, last_flags).unwrap();
    let mut out = segs[0].clone();
    for s in &segs[1..] {
        let (at, _) = tcp_payload_at(s).unwrap();
        out.extend_from_slice(&s[at..]);
    }
    (hdr, out)
}

#[test]
fn segments_coalesce_back_into_one_frame() {
    for v4 in [true, false] {
        let (_, mut segs) = split(v4, 10_000, 1348, 0x18);
        assert_eq!(coalesce_run(&segs), segs.len());
        let n = segs.len();
        let (hdr, joined) = join(&mut segs);
        assert_eq!(hdr.gso_type, if v4 { GSO_TCPV4 } else { GSO_TCPV6 });
        assert_eq!(hdr.gso_size, 1348);
        assert_eq!(usize::from(hdr.hdr_len), if v4 { 66 } else { 86 });
        assert_eq!(n, 8);
        // Splitting the coalesced frame again gives valid segments with the
        // same data: the kernel's view of it is consistent.
        let mut again = Vec::new();
        split_read(&with_hdr(hdr, &joined), &mut Vec::new(), |f| {
            again.push(f.to_vec())
        })
        .unwrap();
        assert_eq!(again.len(), 8);
        assert!(again.iter().all(|s| checksums_ok(s)));
        let info = tcp_info(&joined).unwrap();
        assert_eq!(info.payload, 10_000);
        assert_ne!(info.flags & TCP_PSH, 0, "the last segment's PSH is kept");
    }
}

#[test]
fn coalescing_stops_at_gaps_other_flows_and_flags() {
    let (_, segs) = split(true, 5000, 1000, 0x10);
    assert_eq!(segs.len(), 5);
    // A missing segment ends the run.
    let gap = vec![segs[0].clone(), segs[2].clone()];
    assert_eq!(coalesce_run(&gap), 1);
    // Another flow (different port) ends it.
    let mut other = segs[1].clone();
    other[34] ^= 1;
    assert_eq!(coalesce_run(&[segs[0].clone(), other]), 1);
    // Different options (timestamp) end it.
    let mut ts = segs[1].clone();
    ts[34 + 27] ^= 1;
    assert_eq!(coalesce_run(&[segs[0].clone(), ts]), 1);
    // A SYN or FIN never merges; a pure ACK (no payload) neither.
    let fin = tcp_frame(true, 100, 1, 0x11);
    assert_eq!(coalesce_run(&[fin.clone(), fin]), 1);
    let ack = tcp_frame(true, 0, 1, 0x10);
    assert_eq!(coalesce_run(&[ack.clone(), ack]), 1);
    // Non-TCP frames are runs of one.
    assert_eq!(coalesce_run(&[vec![0u8; 60], vec![0u8; 60]]), 1);
    // A shorter segment is the last of a run.
    let (_, short) = split(true, 2500, 1000, 0x10);
    let mut v = short.clone();
    v.extend(segs.iter().cloned());
    assert_eq!(coalesce_run(&v), 3);
}
