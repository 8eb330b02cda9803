//! TAP offloads (`driver::offload`): what the kernel hands over with a
//! `virtio_net_hdr`, and the coalescing of frames from peers into one large
//! frame for the kernel.
//!
//! Input byte 0 selects the mode:
//! * 0, 1: the rest is one TAP read (header + frame) for `split_read`. Every
//!   frame it passes on is no longer than the read, and a TSO read yields at
//!   most `ceil(payload / gso_size)` segments.
//! * 2, 3: the rest is a list of frames `[len_hi, len_lo, bytes[len]]` from
//!   peers, written to the TAP as `tap_io::write_frames` does.
//! * otherwise: a TCP flow is built from fuzzer-chosen parameters, cut into
//!   segments by `split_read` (TSO), some segments corrupted, reordered or
//!   dropped, then written as in the previous mode.
//!
//! Whenever `coalesce_run` joins n > 1 frames: `coalesce_head` succeeds, the
//! joined frame fits one IP packet, and `split_read` of the joined frame with
//! the returned header gives back n valid segments (IPv4 header and TCP
//! checksums right) carrying exactly the payload bytes of the n frames, in
//! order. That is what the kernel's view of the coalesced frame must be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::driver::offload::{
    coalesce_head, coalesce_run, csum_add, csum_fold, split_read, tcp_payload_at, VnetHdr,
    F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, VNET_HDR_LEN,
};

fn get16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// Offsets of the IP and TCP headers of a frame `tcp_payload_at` accepted.
fn offsets(f: &[u8]) -> (usize, usize, bool) {
    let l3 = if get16(f, 12) == 0x8100 { 18 } else { 14 };
    let v4 = get16(f, l3 - 2) == 0x0800;
    let l4 = if v4 {
        l3 + usize::from(f[l3] & 0x0f) * 4
    } else {
        l3 + 40
    };
    (l3, l4, v4)
}

/// Whether the IPv4 header checksum and the TCP checksum of a segment are right.
fn checksums_ok(f: &[u8]) -> bool {
    let (l3, l4, v4) = offsets(f);
    if v4 && csum_fold(csum_add(0, &f[l3..l4])) != 0xffff {
        return false;
    }
    let addrs = if v4 {
        &f[l3 + 12..l3 + 20]
    } else {
        &f[l3 + 8..l3 + 40]
    };
    let sum = csum_add(0, addrs) + 6 + (f.len() - l4) as u64;
    csum_fold(csum_add(sum, &f[l4..])) == 0xffff
}

fn payload(f: &[u8]) -> &[u8] {
    let (at, _) = tcp_payload_at(f).expect("a TCP frame of the run");
    &f[at..]
}

/// Mirrors `tap_io::write_frames` and checks every coalesced run.
fn write_frames(frames: &mut [Vec<u8>]) {
    let mut i = 0;
    while i < frames.len() {
        let n = coalesce_run(&frames[i..]);
        assert!(n >= 1 && n <= frames.len() - i);
        if n == 1 {
            i += 1;
            continue;
        }
        let run = &mut frames[i..i + n];
        let expected: Vec<u8> = run.iter().flat_map(|f| payload(f).to_vec()).collect();
        let total = expected.len();
        let last_flags = tcp_payload_at(&run[n - 1]).map_or(0, |(_, fl)| fl);
        let hdr = coalesce_head(&mut run[0], total, n, last_flags)
            .expect("coalesce_head refused a run coalesce_run found");
        assert_eq!(hdr.flags, F_NEEDS_CSUM);
        assert!(hdr.gso_type == GSO_TCPV4 || hdr.gso_type == GSO_TCPV6);
        let mut joined = hdr.bytes().to_vec();
        joined.extend_from_slice(&run[0]);
        for f in &run[1..] {
            joined.extend_from_slice(payload(f));
        }
        assert!(joined.len() - VNET_HDR_LEN <= 65_000 + 18);
        let mut again: Vec<Vec<u8>> = Vec::new();
        split_read(&joined, &mut Vec::new(), |s| again.push(s.to_vec()))
            .expect("the coalesced frame does not split again");
        assert_eq!(again.len(), n, "segments after a round trip");
        let mut got = Vec::new();
        for s in &again {
            assert!(tcp_payload_at(s).is_some(), "a re-split segment is not TCP");
            assert!(checksums_ok(s), "bad checksum in a re-split segment");
            got.extend_from_slice(payload(s));
        }
        assert!(got == expected, "payload changed by coalescing");
        i += n;
    }
}

fn records(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while data.len() >= 2 && frames.len() < 128 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        frames.push(data[2..2 + len].to_vec());
        data = &data[2 + len..];
    }
    frames
}

/// A TSO read of one TCP flow: parameters and header bytes from `p`.
fn tso_read(p: &[u8]) -> Vec<u8> {
    let b = |i: usize| p.get(i).copied().unwrap_or(0);
    let v4 = b(0) & 1 == 0;
    let vlan = b(0) & 2 != 0;
    let opts = usize::from(b(1) % 11) * 4;
    let mss = 1 + usize::from(u16::from_be_bytes([b(2), b(3)])) % 1500;
    let len = usize::from(u16::from_be_bytes([b(4), b(5)])) % 20_000;
    let flags = b(6);
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, b(7)];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0, b(8)]);
    }
    if v4 {
        f.extend_from_slice(&[0x08, 0x00, 0x45, b(9)]);
        f.extend_from_slice(&((20 + 20 + opts + len) as u16).to_be_bytes());
        f.extend_from_slice(&[b(10), b(11), 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 1, 1, b(12), 10, 1, 1, b(13)]);
    } else {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, b(9), 0, 0]);
        f.extend_from_slice(&((20 + opts + len) as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&[0xfd; 15]);
        f.push(b(12));
        f.extend_from_slice(&[0xfe; 15]);
        f.push(b(13));
    }
    let l4 = f.len();
    f.extend_from_slice(&[0x13, 0x88, 0xc3, b(14)]);
    f.extend_from_slice(&[b(15), b(16), b(17), b(18)]); // seq
    f.extend_from_slice(&[0, 0, 0, b(19)]); // ack
    f.push((((20 + opts) / 4) as u8) << 4);
    f.push(flags);
    f.extend_from_slice(&[0x01, 0xf5, 0, 0, 0, 0]);
    f.extend((0..opts).map(|i| if i % 4 == 3 { b(20) } else { 1 }));
    f.extend((0..len).map(|i| (i * 7 + usize::from(b(21))) as u8));
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: if v4 { GSO_TCPV4 } else { GSO_TCPV6 },
        hdr_len: (l4 + 20 + opts) as u16,
        gso_size: mss as u16,
        csum_start: l4 as u16,
        csum_offset: 16,
    };
    let mut read = hdr.bytes().to_vec();
    read.extend_from_slice(&f);
    read
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 | 1 => {
            let mut scratch = Vec::new();
            let mut count = 0usize;
            let hdr = VnetHdr::parse(rest);
            if let Some(h) = hdr {
                assert_eq!(VnetHdr::parse(&h.bytes()), Some(h));
            }
            let res = split_read(rest, &mut scratch, |f| {
                count += 1;
                assert!(f.len() <= rest.len());
            });
            if let (Ok(()), Some(h)) = (res, hdr) {
                if h.gso_type & 0x7f != 0 {
                    let frame = rest.len() - VNET_HDR_LEN;
                    let max = frame.div_ceil(usize::from(h.gso_size)).max(1);
                    assert!(count <= max, "{count} segments of a {frame}-byte frame");
                }
            }
        }
        2 | 3 => write_frames(&mut records(rest)),
        _ => {
            let (params, edits) = rest.split_at(rest.len().min(22));
            let read = tso_read(params);
            let mut segs: Vec<Vec<u8>> = Vec::new();
            if split_read(&read, &mut Vec::new(), |s| segs.push(s.to_vec())).is_err() {
                return;
            }
            // Edits: [op, index, position_hi, position_lo, value].
            for e in edits.chunks_exact(5).take(16) {
                if segs.is_empty() {
                    break;
                }
                let i = usize::from(e[1]) % segs.len();
                match e[0] % 4 {
                    0 => {
                        let seg = &mut segs[i];
                        if !seg.is_empty() {
                            let at = usize::from(u16::from_be_bytes([e[2], e[3]])) % seg.len();
                            seg[at] ^= e[4] | 1;
                        }
                    }
                    1 => {
                        segs.remove(i);
                    }
                    2 => {
                        let j = usize::from(e[4]) % segs.len();
                        segs.swap(i, j);
                    }
                    _ => {
                        let seg = &mut segs[i];
                        let keep = usize::from(u16::from_be_bytes([e[2], e[3]])) % (seg.len() + 1);
                        seg.truncate(keep);
                    }
                }
            }
            write_frames(&mut segs);
        }
    }
});
