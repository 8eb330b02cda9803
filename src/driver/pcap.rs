//! `meshd pcap [SNAPLEN]`: a copy of every frame the daemon reads from or writes to its TAP,
//! streamed to the client as a pcap file (tinc's pcap: little-endian magic, version 2.4,
//! link type 1 = Ethernet). The data path pays one relaxed atomic load per frame while no
//! client listens.

use anyhow::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

/// Frames kept for a slow client before it misses some.
const BACKLOG: usize = 4096;
/// The snapshot length when none is asked for (whole frames, offloaded ones included).
pub const DEFAULT_SNAPLEN: u32 = 65535;

static CLIENTS: AtomicUsize = AtomicUsize::new(0);
static FRAMES: OnceLock<broadcast::Sender<(SystemTime, Arc<[u8]>)>> = OnceLock::new();

fn frames() -> &'static broadcast::Sender<(SystemTime, Arc<[u8]>)> {
    FRAMES.get_or_init(|| broadcast::channel(BACKLOG).0)
}

/// Hands a frame to the `pcap` clients, if any (hot path: nothing else when none).
#[inline]
pub fn capture(frame: &[u8]) {
    if CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let _ = frames().send((SystemTime::now(), Arc::from(frame)));
}

/// One client's registration; the data path stops copying when the last one goes.
struct Client(broadcast::Receiver<(SystemTime, Arc<[u8]>)>);

impl Client {
    fn new() -> Client {
        let rx = frames().subscribe();
        CLIENTS.fetch_add(1, Ordering::Relaxed);
        Client(rx)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        CLIENTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pcap file header.
pub fn file_header(snaplen: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    h.extend_from_slice(&snaplen.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    h
}

/// One pcap record: the frame cut to `snaplen`.
pub fn record(at: SystemTime, frame: &[u8], snaplen: u32) -> Vec<u8> {
    let t = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let incl = frame.len().min(snaplen as usize);
    let mut r = Vec::with_capacity(16 + incl);
    r.extend_from_slice(&(t.as_secs() as u32).to_le_bytes());
    r.extend_from_slice(&t.subsec_micros().to_le_bytes());
    r.extend_from_slice(&(incl as u32).to_le_bytes());
    r.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    r.extend_from_slice(&frame[..incl]);
    r
}

/// Serves one `pcap` request on a control connection: `ok_line` (the JSON `Ok`), the file
/// header, then a record per frame until the client closes its side.
pub async fn stream(
    mut read: impl AsyncRead + Unpin,
    mut write: tokio::net::unix::OwnedWriteHalf,
    ok_line: &[u8],
    snaplen: Option<u32>,
) -> Result<()> {
    let snaplen = snaplen.filter(|s| *s > 0).unwrap_or(DEFAULT_SNAPLEN);
    let mut client = Client::new();
    let mut ignored = [0u8; 512];
    write.write_all(ok_line).await?;
    write.write_all(&file_header(snaplen)).await?;
    loop {
        tokio::select! {
            frame = client.0.recv() => match frame {
                Ok((at, frame)) => write.write_all(&record(at, &frame, snaplen)).await?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "a pcap client was too slow");
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // The client closing its side ends the stream (it sends nothing else).
            r = read.read(&mut ignored) => if !matches!(r, Ok(n) if n > 0) { return Ok(()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let h = file_header(96);
        assert_eq!(h.len(), 24);
        assert_eq!(&h[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&h[16..20], &96u32.to_le_bytes());
        assert_eq!(&h[20..24], &1u32.to_le_bytes());
        let at = UNIX_EPOCH + std::time::Duration::from_micros(5_000_007);
        let r = record(at, &[1, 2, 3, 4], 3);
        assert_eq!(&r[..4], &5u32.to_le_bytes());
        assert_eq!(&r[4..8], &7u32.to_le_bytes());
        assert_eq!(&r[8..12], &3u32.to_le_bytes());
        assert_eq!(&r[12..16], &4u32.to_le_bytes());
        assert_eq!(&r[16..], &[1, 2, 3]);
    }
}
