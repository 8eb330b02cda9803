//! Frames larger than a path carries (PROTOCOL §5.5, r10): the sender splits
//! them into `FramePiece` messages that each fit the path's confirmed MTU,
//! the receiver joins them. Each piece is its own authenticated data packet,
//! so the underlay never fragments and a lost piece loses only its frame
//! (TCP above resends it, as it would a lost frame). What a peer can make the
//! receiver hold is bounded: a few frames in progress, each no longer than
//! the TAP takes, for at most [`PIECE_TIMEOUT`].

use super::pmtu::DATA_OVERHEAD;
use super::Node;
use crate::wire::{FramePiece, Message, MAX_PIECES};
use std::time::{Duration, Instant};

/// Bytes a piece adds to its share of the frame besides the data packet:
/// type byte, frame id, index, count.
const PIECE_HEADER: u16 = 1 + 4 + 1 + 1;
/// Frames in progress kept per peer; a newer one evicts the oldest.
const MAX_IN_PROGRESS: usize = 4;
/// How long the pieces of one frame may take to arrive.
pub const PIECE_TIMEOUT: Duration = Duration::from_secs(1);

/// How to cut a frame of `len` bytes into pieces that fit datagrams of
/// `datagram` bytes: the piece length (all but the last) and the count.
/// `None` if it needs more than [`MAX_PIECES`].
pub fn cut(len: usize, datagram: u16) -> Option<(usize, u8)> {
    let room = usize::from(datagram.saturating_sub(DATA_OVERHEAD + PIECE_HEADER)).max(1);
    let count = len.div_ceil(room).max(2);
    let count = u8::try_from(count).ok().filter(|c| *c <= MAX_PIECES)?;
    // Even pieces (the last may be shorter): equal datagrams batch in one send.
    Some((len.div_ceil(usize::from(count)), count))
}

/// One frame being joined.
#[derive(Debug)]
struct InProgress {
    frame_id: u32,
    count: u8,
    pieces: Vec<Option<Vec<u8>>>,
    bytes: usize,
    started: Instant,
}

/// A peer's frames in progress.
#[derive(Debug, Default)]
pub struct Reassembly {
    frames: Vec<InProgress>,
}

/// What a piece did.
#[derive(Debug, PartialEq, Eq)]
pub enum PieceOutcome {
    /// The frame is complete.
    Frame(Vec<u8>),
    /// Kept; more pieces to come.
    Kept,
    /// Dropped: a duplicate, a count that disagrees, or the frame would be
    /// longer than `max_frame`.
    Refused,
}

impl Reassembly {
    /// Adds `piece`; frames older than `PIECE_TIMEOUT` (1 s) are forgotten first,
    /// and a new frame beyond `MAX_IN_PROGRESS` (4) evicts the oldest.
    pub fn add(&mut self, now: Instant, piece: &FramePiece<'_>, max_frame: usize) -> PieceOutcome {
        self.frames
            .retain(|f| now.saturating_duration_since(f.started) < PIECE_TIMEOUT);
        let pos = match self
            .frames
            .iter()
            .position(|f| f.frame_id == piece.frame_id)
        {
            Some(pos) => pos,
            None => {
                if self.frames.len() >= MAX_IN_PROGRESS {
                    self.frames.remove(0);
                }
                self.frames.push(InProgress {
                    frame_id: piece.frame_id,
                    count: piece.count,
                    pieces: vec![None; usize::from(piece.count)],
                    bytes: 0,
                    started: now,
                });
                self.frames.len() - 1
            }
        };
        let f = &mut self.frames[pos];
        let index = usize::from(piece.index);
        if f.count != piece.count || f.pieces[index].is_some() {
            return PieceOutcome::Refused;
        }
        if f.bytes + piece.bytes.len() > max_frame {
            self.frames.remove(pos);
            return PieceOutcome::Refused;
        }
        f.bytes += piece.bytes.len();
        f.pieces[index] = Some(piece.bytes.to_vec());
        if f.pieces.iter().any(Option::is_none) {
            return PieceOutcome::Kept;
        }
        let f = self.frames.remove(pos);
        let mut frame = Vec::with_capacity(f.bytes);
        for p in f.pieces.into_iter().flatten() {
            frame.extend_from_slice(&p);
        }
        PieceOutcome::Frame(frame)
    }

    /// Frames in progress (for tests and status).
    pub fn in_progress(&self) -> usize {
        self.frames.len()
    }
}

impl Node {
    /// Sends `frame` to `name` in pieces that fit `datagram` bytes each.
    /// False if it would need more than [`MAX_PIECES`] or a piece could not
    /// be sealed.
    pub(super) fn send_frame_in_pieces(&mut self, name: &str, frame: &[u8], datagram: u16) -> bool {
        let Some((size, count)) = cut(frame.len(), datagram) else {
            self.drops.frame_too_big += 1;
            return false;
        };
        let Some(peer) = self.peers.get_mut(name) else {
            return false;
        };
        peer.next_frame_id = peer.next_frame_id.wrapping_add(1);
        let frame_id = peer.next_frame_id;
        let mut sent = true;
        for (index, bytes) in frame.chunks(size).enumerate() {
            let piece = FramePiece {
                frame_id,
                index: index as u8,
                count,
                bytes,
            };
            sent &= self.send_message(name, &Message::FramePiece(piece));
        }
        sent
    }

    /// A piece of a frame from `from`: the frame goes to the switch once whole.
    pub(super) fn on_frame_piece(&mut self, now: Instant, from: &str, piece: &FramePiece<'_>) {
        let max_frame = self.switch.config().max_frame_len;
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        match peer.reassembly.add(now, piece, max_frame) {
            PieceOutcome::Frame(frame) => self.on_frame(now, from, &frame),
            PieceOutcome::Kept => {}
            PieceOutcome::Refused => self.drops.bad_piece += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces_of(frame: &[u8], datagram: u16, id: u32) -> Vec<(u32, u8, u8, Vec<u8>)> {
        let (size, count) = cut(frame.len(), datagram).expect("fits");
        frame
            .chunks(size)
            .enumerate()
            .map(|(i, c)| (id, i as u8, count, c.to_vec()))
            .collect()
    }

    fn add(r: &mut Reassembly, now: Instant, p: &(u32, u8, u8, Vec<u8>)) -> PieceOutcome {
        r.add(
            now,
            &FramePiece {
                frame_id: p.0,
                index: p.1,
                count: p.2,
                bytes: &p.3,
            },
            1418,
        )
    }

    #[test]
    fn a_full_frame_is_cut_to_fit_and_joined_in_any_order() {
        let t0 = crate::test_clock::start();
        let frame: Vec<u8> = (0..1414u32).map(|i| i as u8).collect();
        let pieces = pieces_of(&frame, 1272, 1);
        assert_eq!(pieces.len(), 2);
        for p in &pieces {
            let datagram = usize::from(DATA_OVERHEAD + PIECE_HEADER) + p.3.len();
            assert!(datagram <= 1272, "{datagram}");
        }
        let mut r = Reassembly::default();
        assert_eq!(add(&mut r, t0, &pieces[1]), PieceOutcome::Kept);
        assert_eq!(add(&mut r, t0, &pieces[0]), PieceOutcome::Frame(frame));
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn duplicates_stale_and_oversized_pieces_are_refused() {
        let t0 = crate::test_clock::start();
        let frame = vec![7u8; 1400];
        let pieces = pieces_of(&frame, 1232, 9);
        let mut r = Reassembly::default();
        assert_eq!(add(&mut r, t0, &pieces[0]), PieceOutcome::Kept);
        assert_eq!(add(&mut r, t0, &pieces[0]), PieceOutcome::Refused);
        // Too late: the first piece was forgotten, the frame starts over.
        let late = t0 + PIECE_TIMEOUT;
        assert_eq!(add(&mut r, late, &pieces[1]), PieceOutcome::Kept);
        assert_eq!(r.in_progress(), 1);
        // A frame that claims more than the TAP takes.
        let big = (5, 0, 2, vec![0u8; 1000]);
        let big2 = (5, 1, 2, vec![0u8; 1000]);
        assert_eq!(add(&mut r, late, &big), PieceOutcome::Kept);
        assert_eq!(add(&mut r, late, &big2), PieceOutcome::Refused);
        // A count that disagrees with the first piece's.
        assert_eq!(add(&mut r, late, &(6, 0, 2, vec![1])), PieceOutcome::Kept);
        assert_eq!(
            add(&mut r, late, &(6, 1, 3, vec![1])),
            PieceOutcome::Refused
        );
    }

    #[test]
    fn frames_in_progress_are_bounded() {
        let t0 = crate::test_clock::start();
        let mut r = Reassembly::default();
        for id in 0..100 {
            assert_eq!(
                add(&mut r, t0, &(id, 0, 2, vec![1; 600])),
                PieceOutcome::Kept
            );
        }
        assert_eq!(r.in_progress(), MAX_IN_PROGRESS);
    }

    #[test]
    fn cut_refuses_what_needs_too_many_pieces() {
        assert_eq!(cut(1414, 1449).map(|c| c.1), Some(2));
        assert!(cut(65_000, 1232).is_none());
        assert_eq!(cut(9018, 1232).map(|c| c.1), Some(8));
    }
}
