//! Frames between the TAP and the core, with offloads when the TAP has
//! them: a read is split into ordinary frames for [`Node::handle_frame`], and
//! the frames the core queued for the TAP are written with consecutive TCP
//! segments of one flow coalesced into one large frame (one `writev`, no copy).

use super::offload::{self, MAX_COALESCED_SEGMENTS};
use super::tap::Tap;
use crate::node::Node;
use std::io::IoSlice;
use std::time::Instant;

/// Counters of the TAP side.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TapCounters {
    /// Frames the TAP refused (queue full, link down).
    pub write_drops: u64,
    /// Reads that could not be turned into frames (malformed offload header).
    pub read_drops: u64,
    /// Large frames written after coalescing, and the segments they held.
    pub coalesced_writes: u64,
    /// Segments in those.
    pub coalesced_segments: u64,
    /// Reads that were TSO frames, split into segments.
    pub tso_reads: u64,
}

/// Hands what one TAP read returned to the core: the frame, or the segments
/// of an offloaded frame. `scratch` is reused for segments.
pub fn deliver_read(
    tap: &Tap,
    read: &[u8],
    scratch: &mut Vec<u8>,
    node: &mut Node,
    counters: &mut TapCounters,
    now: Instant,
) {
    if !tap.vnet_hdr() {
        super::pcap::capture(read);
        node.handle_frame(now, read);
        return;
    }
    if read.get(1).is_some_and(|gso| *gso != offload::GSO_NONE) {
        counters.tso_reads += 1;
    }
    let deliver = |f: &[u8]| {
        super::pcap::capture(f);
        node.handle_frame(now, f)
    };
    if let Err(err) = offload::split_read(read, scratch, deliver) {
        counters.read_drops += 1;
        tracing::debug!(?err, len = read.len(), "dropping a TAP read");
    }
}

/// Writes `frames` to the TAP in order, coalescing TCP runs when the TAP
/// takes offloaded frames. The first frame of a run is rewritten in place.
pub fn write_frames(tap: &Tap, frames: &mut [Vec<u8>], counters: &mut TapCounters) {
    let mut i = 0;
    while i < frames.len() {
        let n = if tap.vnet_hdr() {
            offload::coalesce_run(&frames[i..])
        } else {
            1
        };
        if n <= 1 {
            write_one(tap, &frames[i], 1, counters);
            i += 1;
            continue;
        }
        let run = &mut frames[i..i + n];
        let mut payload = 0;
        let mut last_flags = 0;
        let mut offsets = [0usize; MAX_COALESCED_SEGMENTS];
        for (k, f) in run.iter().enumerate() {
            if let Some((at, flags)) = offload::tcp_payload_at(f) {
                offsets[k] = at;
                payload += f.len() - at;
                last_flags = flags;
            }
        }
        let (first, rest) = run.split_at_mut(1);
        let Some(hdr) = offload::coalesce_head(&mut first[0], payload, n, last_flags) else {
            // Not expected (the run was checked); write them one by one.
            for f in run.iter() {
                write_one(tap, f, 1, counters);
            }
            i += n;
            continue;
        };
        let hdr = hdr.bytes();
        let mut iov = [IoSlice::new(&[]); MAX_COALESCED_SEGMENTS + 1];
        iov[0] = IoSlice::new(&hdr);
        iov[1] = IoSlice::new(&first[0]);
        for (k, f) in rest.iter().enumerate() {
            iov[k + 2] = IoSlice::new(&f[offsets[k + 1]..]);
        }
        match tap.try_send_vectored(&iov[..n + 1]) {
            Ok(true) => {
                counters.coalesced_writes += 1;
                counters.coalesced_segments += n as u64;
            }
            Ok(false) => counters.write_drops += n as u64,
            Err(err) => {
                counters.write_drops += n as u64;
                tracing::debug!(%err, segments = n, "TAP write failed");
            }
        }
        i += n;
    }
}

fn write_one(tap: &Tap, frame: &[u8], n: u64, counters: &mut TapCounters) {
    match tap.try_send(frame) {
        Ok(true) => {}
        Ok(false) => counters.write_drops += n,
        Err(err) => {
            counters.write_drops += n;
            tracing::debug!(%err, len = frame.len(), "TAP write failed");
        }
    }
}
