//! TAP offloads: the `virtio_net_hdr` that precedes every frame on a TAP
//! opened with `IFF_VNET_HDR`, TCP segmentation of the large frames the
//! kernel hands over when TSO is on, checksum completion, and the reverse:
//! coalescing consecutive TCP segments of one flow into one large frame for
//! the kernel (what GRO does on a NIC).
//!
//! Peers never see any of this: every frame that crosses the mesh is an
//! ordinary Ethernet frame no longer than the TAP's MTU allows, with correct
//! checksums, exactly as without offloads. The gain is on the local side: the
//! kernel's TCP stack builds and takes 64 KiB frames, and the daemon reads and
//! writes one of those instead of some forty MTU-sized ones.

/// Size of `struct virtio_net_hdr` (the TAP's default header size).
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is to be completed from `csum_start`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN` (a flag on the GSO type).
pub const GSO_ECN: u8 = 0x80;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const PROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;
/// Largest frame written to the TAP after coalescing (an IP packet is at most 64 KiB).
const MAX_COALESCED: usize = 65_000;
/// Most segments coalesced into one frame.
pub const MAX_COALESCED_SEGMENTS: usize = 64;

/// A `virtio_net_hdr` (little-endian fields, as the TAP uses by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM` and others.
    pub flags: u8,
    /// `GSO_*`.
    pub gso_type: u8,
    /// Length of the headers (a hint).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts (the L4 header).
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads a header from the start of `b`.
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// The 10 bytes of the header.
    pub fn bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// Adds `data` to a ones'-complement running sum (RFC 1071), 32 bits at a time.
pub fn csum_add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        sum += w >> 32;
        sum += w & 0xffff_ffff;
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        sum += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        sum += u64::from(rest[i]) << 8;
    }
    sum
}

/// Folds a running sum to 16 bits (not complemented).
pub fn csum_fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn get16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Where the IP header starts and which version it is, behind one optional VLAN tag.
fn l3(frame: &[u8]) -> Option<(usize, u16)> {
    match get16(frame, 12)? {
        ETHERTYPE_VLAN => Some((18, get16(frame, 16)?)),
        t => Some((14, t)),
    }
}

/// The pseudo-header sum of a TCP segment of `l4_len` bytes.
fn pseudo_sum(frame: &[u8], l3_off: usize, v4: bool, l4_len: usize) -> Option<u64> {
    let addrs = if v4 {
        frame.get(l3_off + 12..l3_off + 20)?
    } else {
        frame.get(l3_off + 8..l3_off + 40)?
    };
    let mut sum = csum_add(0, addrs);
    sum += u64::from(PROTO_TCP);
    sum += l4_len as u64;
    Some(sum)
}

/// Recomputes an IPv4 header checksum in place.
fn fix_ipv4_checksum(frame: &mut [u8], l3_off: usize) {
    let ihl = usize::from(frame[l3_off] & 0x0f) * 4;
    put16(frame, l3_off + 10, 0);
    let sum = csum_add(0, &frame[l3_off..l3_off + ihl]);
    put16(frame, l3_off + 10, !csum_fold(sum));
}

/// Why a frame read from the TAP was not passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadError {
    /// Shorter than its headers claim, or offsets out of bounds.
    Malformed,
    /// A GSO type this code does not segment (only TCP is enabled).
    UnsupportedGso,
}

/// Turns one read from a TAP with `IFF_VNET_HDR` into ordinary frames: the
/// frame itself (checksum completed if the kernel left it partial), or the
/// MSS-sized TCP segments of a TSO frame, each with its own headers and
/// checksums. `scratch` is reused for the segments; `out` gets each frame.
pub fn split_read(
    read: &[u8],
    scratch: &mut Vec<u8>,
    mut out: impl FnMut(&[u8]),
) -> Result<(), OffloadError> {
    let hdr = VnetHdr::parse(read).ok_or(OffloadError::Malformed)?;
    let frame = &read[VNET_HDR_LEN..];
    let gso = hdr.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        if hdr.flags & F_NEEDS_CSUM == 0 {
            out(frame);
            return Ok(());
        }
        scratch.clear();
        scratch.extend_from_slice(frame);
        complete_checksum(scratch, &hdr)?;
        out(scratch);
        return Ok(());
    }
    if gso != GSO_TCPV4 && gso != GSO_TCPV6 {
        return Err(OffloadError::UnsupportedGso);
    }
    segment_tcp(frame, &hdr, gso == GSO_TCPV4, scratch, out)
}

/// Completes a partial checksum: the field holds the pseudo-header sum; the
/// sum runs from `csum_start` to the end of the frame.
fn complete_checksum(frame: &mut [u8], hdr: &VnetHdr) -> Result<(), OffloadError> {
    let start = usize::from(hdr.csum_start);
    let field = start + usize::from(hdr.csum_offset);
    if start > frame.len() || field + 2 > frame.len() {
        return Err(OffloadError::Malformed);
    }
    let sum = csum_add(0, &frame[start..]);
    put16(frame, field, !csum_fold(sum));
    Ok(())
}

fn segment_tcp(
    frame: &[u8],
    hdr: &VnetHdr,
    v4: bool,
    seg: &mut Vec<u8>,
    mut out: impl FnMut(&[u8]),
) -> Result<(), OffloadError> {
    let bad = OffloadError::Malformed;
    let (l3_off, ethertype) = l3(frame).ok_or(bad)?;
    if ethertype != if v4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 } {
        return Err(bad);
    }
    let l4_off = usize::from(hdr.csum_start);
    let doff = usize::from(*frame.get(l4_off + 12).ok_or(bad)? >> 4) * 4;
    let hdrs = l4_off + doff;
    let mss = usize::from(hdr.gso_size);
    let min_l3 = if v4 { 20 } else { 40 };
    if doff < 20 || hdrs > frame.len() || mss == 0 || l4_off < l3_off + min_l3 {
        return Err(bad);
    }
    // The IPv4 header must end where the TCP header starts (its checksum is
    // recomputed over IHL * 4 bytes of each segment).
    if v4 && usize::from(frame[l3_off] & 0x0f) * 4 != l4_off - l3_off {
        return Err(bad);
    }
    let payload = &frame[hdrs..];
    let seq0 = u32::from_be_bytes([
        frame[l4_off + 4],
        frame[l4_off + 5],
        frame[l4_off + 6],
        frame[l4_off + 7],
    ]);
    let id0 = get16(frame, l3_off + 4).ok_or(bad)?;
    let flags0 = frame[l4_off + 13];
    let count = payload.len().div_ceil(mss).max(1);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        seg.clear();
        seg.extend_from_slice(&frame[..hdrs]);
        seg.extend_from_slice(chunk);
        let l4_len = doff + chunk.len();
        if v4 {
            put16(seg, l3_off + 2, (l4_off - l3_off + l4_len) as u16);
            put16(seg, l3_off + 4, id0.wrapping_add(i as u16));
            fix_ipv4_checksum(seg, l3_off);
        } else {
            put16(seg, l3_off + 4, (l4_off - l3_off - 40 + l4_len) as u16);
        }
        let seq = seq0.wrapping_add((i * mss) as u32);
        seg[l4_off + 4..l4_off + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < count {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            flags &= !TCP_CWR;
        }
        seg[l4_off + 13] = flags;
        put16(seg, l4_off + 16, 0);
        let sum = csum_add(
            pseudo_sum(seg, l3_off, v4, l4_len).ok_or(bad)?,
            &seg[l4_off..],
        );
        put16(seg, l4_off + 16, !csum_fold(sum));
        out(seg);
    }
    Ok(())
}

/// What makes TCP segments of one flow mergeable, read from a frame.
#[derive(Debug, Clone, Copy)]
struct TcpInfo {
    v4: bool,
    l3_off: usize,
    l4_off: usize,
    /// Length of all headers (Ethernet to TCP options).
    hdrs: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

fn tcp_info(frame: &[u8]) -> Option<TcpInfo> {
    let (l3_off, ethertype) = l3(frame)?;
    let (v4, l4_off, ip_len) = match ethertype {
        ETHERTYPE_IPV4 => {
            let vihl = *frame.get(l3_off)?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            let frag = get16(frame, l3_off + 6)?;
            // Version 4, no options, TCP, not a fragment.
            if vihl != 0x45 || *frame.get(l3_off + 9)? != PROTO_TCP || frag & 0x3fff != 0 {
                return None;
            }
            (true, l3_off + ihl, usize::from(get16(frame, l3_off + 2)?))
        }
        ETHERTYPE_IPV6 => {
            // No extension headers.
            if *frame.get(l3_off)? >> 4 != 6 || *frame.get(l3_off + 6)? != PROTO_TCP {
                return None;
            }
            (
                false,
                l3_off + 40,
                usize::from(get16(frame, l3_off + 4)?) + 40,
            )
        }
        _ => return None,
    };
    // The frame must be exactly the IP packet (no Ethernet padding).
    if l3_off + ip_len != frame.len() {
        return None;
    }
    let doff = usize::from(*frame.get(l4_off + 12)? >> 4) * 4;
    let hdrs = l4_off + doff;
    if doff < 20 || hdrs > frame.len() {
        return None;
    }
    let seq = u32::from_be_bytes(frame.get(l4_off + 4..l4_off + 8)?.try_into().ok()?);
    Some(TcpInfo {
        v4,
        l3_off,
        l4_off,
        hdrs,
        seq,
        flags: frame[l4_off + 13],
        payload: frame.len() - hdrs,
    })
}

/// Whether `next` continues `first`'s flow right after `end_seq`: same
/// Ethernet and IP addresses, ports, ack, window and options, next in
/// sequence, plain ACK (PSH allowed on the last), not longer than the first.
fn continues(first: &[u8], fi: &TcpInfo, end_seq: u32, next: &[u8], ni: &TcpInfo) -> bool {
    if ni.v4 != fi.v4 || ni.hdrs != fi.hdrs || ni.l4_off != fi.l4_off || ni.seq != end_seq {
        return false;
    }
    if ni.payload == 0 || ni.payload > fi.payload {
        return false;
    }
    if ni.flags & !TCP_PSH != fi.flags
        || fi.flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_URG | TCP_PSH | TCP_CWR) != 0
    {
        return false;
    }
    // Ethernet header, then the IP fields that must match.
    if first[..fi.l3_off] != next[..fi.l3_off] {
        return false;
    }
    let (a, b) = (fi.l3_off, fi.l4_off);
    let ip_same = if fi.v4 {
        // TOS, flags (DF), TTL, protocol, addresses; not length, ID, checksum.
        first[a + 1] == next[a + 1]
            && first[a + 6] == next[a + 6]
            && first[a + 8..a + 10] == next[a + 8..a + 10]
            && first[a + 12..b] == next[a + 12..b]
    } else {
        // Traffic class and flow label, next header, hop limit, addresses.
        first[a..a + 4] == next[a..a + 4] && first[a + 6..b] == next[a + 6..b]
    };
    // Ports, ack, data offset, window, urgent pointer and options; not seq,
    // flags or checksum.
    ip_same
        && first[b..b + 4] == next[b..b + 4]
        && first[b + 8..b + 13] == next[b + 8..b + 13]
        && first[b + 14..b + 16] == next[b + 14..b + 16]
        && first[b + 18..fi.hdrs] == next[b + 18..fi.hdrs]
}

/// How many frames from the start of `frames` coalesce into one TCP frame
/// (1 if the first is not TCP or nothing follows it in sequence).
pub fn coalesce_run<F: AsRef<[u8]>>(frames: &[F]) -> usize {
    let Some(first) = frames.first().map(AsRef::as_ref) else {
        return 0;
    };
    let Some(fi) = tcp_info(first) else {
        return 1;
    };
    if fi.payload == 0 {
        return 1;
    }
    let mut end = fi.seq.wrapping_add(fi.payload as u32);
    let mut total = first.len();
    let mut n = 1;
    for next in &frames[1..] {
        let next = next.as_ref();
        if n >= MAX_COALESCED_SEGMENTS {
            break;
        }
        let Some(ni) = tcp_info(next) else { break };
        if total + ni.payload > MAX_COALESCED || !continues(first, &fi, end, next, &ni) {
            break;
        }
        total += ni.payload;
        end = end.wrapping_add(ni.payload as u32);
        n += 1;
        // A shorter segment or a PSH ends the train.
        if ni.payload < fi.payload || ni.flags & TCP_PSH != 0 {
            break;
        }
    }
    n
}

/// Rewrites the first frame of a run found by [`coalesce_run`] to head the
/// coalesced frame (`total_payload` bytes of TCP data after its headers,
/// `last_flags` the TCP flags of the run's last segment) and returns the
/// `virtio_net_hdr` to write before it; the payloads of the other frames
/// follow it in order. The TCP checksum is left partial for the kernel.
pub fn coalesce_head(
    first: &mut [u8],
    total_payload: usize,
    segments: usize,
    last_flags: u8,
) -> Option<VnetHdr> {
    let fi = tcp_info(first)?;
    let l4_len = fi.hdrs - fi.l4_off + total_payload;
    if fi.v4 {
        put16(
            first,
            fi.l3_off + 2,
            (fi.l4_off - fi.l3_off + l4_len) as u16,
        );
        fix_ipv4_checksum(first, fi.l3_off);
    } else {
        put16(first, fi.l3_off + 4, l4_len as u16);
    }
    first[fi.l4_off + 13] = fi.flags | (last_flags & TCP_PSH);
    let pseudo = csum_fold(pseudo_sum(first, fi.l3_off, fi.v4, l4_len)?);
    put16(first, fi.l4_off + 16, pseudo);
    Some(VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: if segments > 1 {
            if fi.v4 {
                GSO_TCPV4
            } else {
                GSO_TCPV6
            }
        } else {
            GSO_NONE
        },
        hdr_len: fi.hdrs as u16,
        gso_size: fi.payload as u16,
        csum_start: fi.l4_off as u16,
        csum_offset: 16,
    })
}

/// Where the TCP payload of a frame starts and its TCP flags (for the
/// frames after the first of a run).
pub fn tcp_payload_at(frame: &[u8]) -> Option<(usize, u8)> {
    tcp_info(frame).map(|i| (i.hdrs, i.flags))
}

#[cfg(test)]
#[path = "offload_tests.rs"]
mod tests;
