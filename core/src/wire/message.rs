//! The messages carried in the plaintext of a data packet: heartbeats, Ethernet
//! frames, membership gossip and goodbyes.

use super::reader::{put_name, put_optional_name, Reader};
use super::record::NodeRecord;
use super::WireError;

/// Message type bytes (first plaintext byte of a data packet).
pub mod kind {
    /// Liveness heartbeat with RTT echo.
    pub const HELLO: u8 = 0x01;
    /// An Ethernet frame for the receiver's TAP.
    pub const FRAME: u8 = 0x02;
    /// Signed node records.
    pub const GOSSIP: u8 = 0x03;
    /// A summary of the node records the sender holds.
    pub const DIGEST: u8 = 0x04;
    /// The sender is shutting down.
    pub const GOODBYE: u8 = 0x05;
    /// The sender applied the receiver's node record (generation, version).
    pub const RECORD_ACK: u8 = 0x06;
    /// Prove you receive at the address this was sent to (echo the token).
    pub const PATH_CHALLENGE: u8 = 0x07;
    /// The token of a PathChallenge received, echoed.
    pub const PATH_RESPONSE: u8 = 0x08;
    /// One part of a digest too large for one datagram: the entries of a
    /// range of names.
    pub const DIGEST_PART: u8 = 0x09;
    /// A path MTU probe: a token, padded to the size being tried (r10).
    pub const MTU_PROBE: u8 = 0x0A;
    /// A probe's token and the size it arrived with, echoed (r10).
    pub const MTU_PROBE_ACK: u8 = 0x0B;
    /// One piece of a frame too large for the path's MTU (r10).
    pub const FRAME_PIECE: u8 = 0x0C;
    /// A packet for another node, to be relayed to it (r10).
    pub const RELAY_TO: u8 = 0x0D;
    /// A packet another node sent through the sender, relayed (r10).
    pub const RELAY_FROM: u8 = 0x0E;
    /// The sender tries a direct handshake now: try one back (r10).
    pub const DIRECT_TRY: u8 = 0x0F;
}

/// A liveness heartbeat. The echo fields let the receiver measure RTT without
/// synchronised clocks: RTT = now − echo_us − echo_delay_us (all in the
/// receiver's own clock for echo_us, which it sent earlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Sender's monotonic clock in microseconds when it sent this hello.
    pub sent_us: u64,
    /// `sent_us` of the last hello the sender received from the receiver (0 = none).
    pub echo_us: u64,
    /// Microseconds between the sender receiving that hello and sending this one.
    pub echo_delay_us: u32,
    /// [`Hello::REPLY_REQUESTED`] and future bits (unknown bits are ignored).
    pub flags: u8,
}

impl Hello {
    /// The sender has not heard from the receiver for a while: answer with a Hello now.
    pub const REPLY_REQUESTED: u8 = 0x01;
    /// The sender runs the adaptive detector (protocol 1.1, PROTOCOL §5.1):
    /// it accepts slow heartbeats from the receiver when they share no VIP.
    pub const ADAPTIVE: u8 = 0x02;
    /// The sender heartbeats this session at its idle rate (seconds): the
    /// receiver must wait that long before declaring it dead.
    pub const SLOW: u8 = 0x04;
}

/// One line of a digest: which version of a node's record the sender holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestEntry {
    /// Node name.
    pub name: crate::name::NodeName,
    /// The node's generation (changes when it restarts).
    pub generation: u64,
    /// The record's version within that generation.
    pub version: u64,
}

/// The sender's view of the membership, for anti-entropy: all of it, or (a
/// part, r5) the names after `after` up to and including `through`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digest {
    /// One entry per node record held in the range (the sender's own included).
    pub entries: Vec<DigestEntry>,
    /// The range starts after this name (`None`: at the first name).
    pub after: Option<crate::name::NodeName>,
    /// The range ends with this name (`None`: at the last name).
    pub through: Option<crate::name::NodeName>,
}

impl Digest {
    /// Whether `name` falls in this digest's range.
    pub fn covers(&self, name: &crate::name::NodeName) -> bool {
        self.after.as_ref().is_none_or(|a| name > a)
            && self.through.as_ref().is_none_or(|t| name <= t)
    }

    /// A part covers a range; a whole digest covers every name.
    pub fn is_part(&self) -> bool {
        self.after.is_some() || self.through.is_some()
    }
}

/// A decoded inner message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Heartbeat.
    Hello(Hello),
    /// An Ethernet frame (borrowed from the packet buffer).
    Frame(&'a [u8]),
    /// Node records, each signed by its origin.
    Gossip(Vec<NodeRecord>),
    /// Anti-entropy summary.
    Digest(Digest),
    /// The sender is leaving on purpose.
    Goodbye,
    /// The sender holds the receiver's own record at least this new (a
    /// leaving node waits for these before it goes, so nothing is lost).
    RecordAck {
        /// The receiver's record generation.
        generation: u64,
        /// Its version.
        version: u64,
    },
    /// The sender saw the receiver's packets come from a new address and
    /// sent this there: the receiver echoes the token in a [`Message::PathResponse`].
    PathChallenge(u64),
    /// A [`Message::PathChallenge`]'s token, echoed from the address it reached.
    PathResponse(u64),
    /// A path MTU probe (r10): answer with a [`Message::MtuProbeAck`].
    MtuProbe {
        /// Identifies the probe in the answer.
        token: u32,
        /// Zero bytes after the token that make the datagram the size tried.
        padding: u16,
    },
    /// A [`Message::MtuProbe`] arrived (r10): its token and the length of its
    /// plaintext.
    MtuProbeAck {
        /// The probe's token.
        token: u32,
        /// The probe's plaintext length as received.
        size: u16,
    },
    /// One piece of an Ethernet frame that does not fit the path (r10).
    FramePiece(FramePiece<'a>),
    /// Relay `packet` (a whole outer packet of the pair `src`–`dst`, sealed
    /// end to end) to `dst` (r10). `src` must be the sender itself: the
    /// relay checks it, and the message it forwards is then always shorter
    /// than this one (no amplification).
    RelayTo {
        /// Where to.
        dst: crate::name::NodeName,
        /// The sender (who the relay says it is from).
        src: crate::name::NodeName,
        /// The packet, opaque to the relay.
        packet: &'a [u8],
    },
    /// The sender (reached through a relay) is sending a direct handshake
    /// to the receiver's addresses now: the receiver sends one back at once,
    /// so both NATs open a mapping towards the other (r10).
    DirectTry,
    /// `packet` came from `src` through the sender, a relay (r10).
    RelayFrom {
        /// The packet's origin, as the relay authenticated it.
        src: crate::name::NodeName,
        /// The packet, to be handled as a datagram from `src`.
        packet: &'a [u8],
    },
}

/// One piece of a frame split to fit a path's MTU; the receiver joins the
/// `count` pieces of one `frame_id` in `index` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePiece<'a> {
    /// The sender's number for the frame (per session direction).
    pub frame_id: u32,
    /// This piece's place, `0..count`.
    pub index: u8,
    /// How many pieces the frame has, 2..=[`MAX_PIECES`].
    pub count: u8,
    /// The piece's bytes (not empty).
    pub bytes: &'a [u8],
}

/// Most pieces one frame is split into.
pub const MAX_PIECES: u8 = 16;

/// Largest number of records or digest entries one message may carry.
pub const MAX_ITEMS: usize = 4096;

impl<'a> Message<'a> {
    /// Decodes a plaintext; fails on any malformed or trailing input.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, WireError> {
        let mut r = Reader::new(buf);
        let msg = match r.u8("message type")? {
            kind::HELLO => Message::Hello(Hello {
                sent_us: r.u64("hello sent_us")?,
                echo_us: r.u64("hello echo_us")?,
                echo_delay_us: r.u32("hello echo_delay_us")?,
                flags: r.u8("hello flags")?,
            }),
            kind::FRAME => {
                let frame = r.bytes(r.remaining(), "frame")?;
                Message::Frame(frame)
            }
            kind::GOSSIP => {
                let count = r.u16("record count")? as usize;
                if count > MAX_ITEMS {
                    return Err(WireError::Invalid {
                        field: "record count",
                        reason: "more than 4096",
                    });
                }
                let mut records = Vec::with_capacity(count.min(64));
                for _ in 0..count {
                    records.push(NodeRecord::read(&mut r)?);
                }
                Message::Gossip(records)
            }
            kind::DIGEST | kind::DIGEST_PART => {
                let part = buf.first() == Some(&kind::DIGEST_PART);
                let (after, through) = if part {
                    (
                        r.optional_name("digest after")?,
                        r.optional_name("digest through")?,
                    )
                } else {
                    (None, None)
                };
                if part && after.is_none() && through.is_none() {
                    // That is a whole Digest, which has its own type.
                    return Err(WireError::Invalid {
                        field: "digest part",
                        reason: "has neither bound",
                    });
                }
                let count = r.u16("digest count")? as usize;
                if count > MAX_ITEMS {
                    return Err(WireError::Invalid {
                        field: "digest count",
                        reason: "more than 4096",
                    });
                }
                let mut entries = Vec::with_capacity(count.min(256));
                for _ in 0..count {
                    entries.push(DigestEntry {
                        name: r.name("digest name")?,
                        generation: r.u64("digest generation")?,
                        version: r.u64("digest version")?,
                    });
                }
                Message::Digest(Digest {
                    entries,
                    after,
                    through,
                })
            }
            kind::GOODBYE => Message::Goodbye,
            kind::DIRECT_TRY => Message::DirectTry,
            kind::RECORD_ACK => Message::RecordAck {
                generation: r.u64("ack generation")?,
                version: r.u64("ack version")?,
            },
            kind::PATH_CHALLENGE => Message::PathChallenge(r.u64("challenge token")?),
            kind::PATH_RESPONSE => Message::PathResponse(r.u64("response token")?),
            kind::MTU_PROBE => {
                let token = r.u32("probe token")?;
                let padding = r.bytes(r.remaining(), "probe padding")?;
                if padding.iter().any(|b| *b != 0) {
                    return Err(WireError::Invalid {
                        field: "probe padding",
                        reason: "not zero",
                    });
                }
                let padding = u16::try_from(padding.len()).map_err(|_| WireError::Invalid {
                    field: "probe padding",
                    reason: "longer than 65535",
                })?;
                Message::MtuProbe { token, padding }
            }
            kind::MTU_PROBE_ACK => Message::MtuProbeAck {
                token: r.u32("probe ack token")?,
                size: r.u16("probe ack size")?,
            },
            kind::FRAME_PIECE => {
                let frame_id = r.u32("piece frame id")?;
                let index = r.u8("piece index")?;
                let count = r.u8("piece count")?;
                if !(2..=MAX_PIECES).contains(&count) || index >= count {
                    return Err(WireError::Invalid {
                        field: "piece count",
                        reason: "index or count out of range",
                    });
                }
                let bytes = r.bytes(r.remaining(), "piece bytes")?;
                if bytes.is_empty() {
                    return Err(WireError::Invalid {
                        field: "piece bytes",
                        reason: "empty",
                    });
                }
                Message::FramePiece(FramePiece {
                    frame_id,
                    index,
                    count,
                    bytes,
                })
            }
            kind::RELAY_TO | kind::RELAY_FROM => {
                let to = buf.first() == Some(&kind::RELAY_TO);
                let dst = if to {
                    Some(r.name("relay destination")?)
                } else {
                    None
                };
                let src = r.name("relay source")?;
                let packet = r.bytes(r.remaining(), "relayed packet")?;
                if packet.len() < 2 {
                    return Err(WireError::Invalid {
                        field: "relayed packet",
                        reason: "shorter than a packet header",
                    });
                }
                match dst {
                    Some(dst) => Message::RelayTo { dst, src, packet },
                    None => Message::RelayFrom { src, packet },
                }
            }
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the message, appending to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => {
                out.push(kind::HELLO);
                out.extend_from_slice(&h.sent_us.to_be_bytes());
                out.extend_from_slice(&h.echo_us.to_be_bytes());
                out.extend_from_slice(&h.echo_delay_us.to_be_bytes());
                out.push(h.flags);
            }
            Message::Frame(frame) => {
                out.push(kind::FRAME);
                out.extend_from_slice(frame);
            }
            Message::Gossip(records) => {
                out.push(kind::GOSSIP);
                let n = records.len().min(MAX_ITEMS);
                out.extend_from_slice(&(n as u16).to_be_bytes());
                for rec in &records[..n] {
                    rec.write(out);
                }
            }
            Message::Digest(d) => {
                if d.is_part() {
                    out.push(kind::DIGEST_PART);
                    put_optional_name(out, d.after.as_ref());
                    put_optional_name(out, d.through.as_ref());
                } else {
                    out.push(kind::DIGEST);
                }
                let n = d.entries.len().min(MAX_ITEMS);
                out.extend_from_slice(&(n as u16).to_be_bytes());
                for e in &d.entries[..n] {
                    put_name(out, &e.name);
                    out.extend_from_slice(&e.generation.to_be_bytes());
                    out.extend_from_slice(&e.version.to_be_bytes());
                }
            }
            Message::Goodbye => out.push(kind::GOODBYE),
            Message::DirectTry => out.push(kind::DIRECT_TRY),
            Message::RecordAck {
                generation,
                version,
            } => {
                out.push(kind::RECORD_ACK);
                out.extend_from_slice(&generation.to_be_bytes());
                out.extend_from_slice(&version.to_be_bytes());
            }
            Message::PathChallenge(token) => {
                out.push(kind::PATH_CHALLENGE);
                out.extend_from_slice(&token.to_be_bytes());
            }
            Message::PathResponse(token) => {
                out.push(kind::PATH_RESPONSE);
                out.extend_from_slice(&token.to_be_bytes());
            }
            Message::MtuProbe { token, padding } => {
                out.push(kind::MTU_PROBE);
                out.extend_from_slice(&token.to_be_bytes());
                out.resize(out.len() + usize::from(*padding), 0);
            }
            Message::MtuProbeAck { token, size } => {
                out.push(kind::MTU_PROBE_ACK);
                out.extend_from_slice(&token.to_be_bytes());
                out.extend_from_slice(&size.to_be_bytes());
            }
            Message::FramePiece(p) => {
                out.push(kind::FRAME_PIECE);
                out.extend_from_slice(&p.frame_id.to_be_bytes());
                out.push(p.index);
                out.push(p.count);
                out.extend_from_slice(p.bytes);
            }
            Message::RelayTo { dst, src, packet } => {
                out.push(kind::RELAY_TO);
                put_name(out, dst);
                put_name(out, src);
                out.extend_from_slice(packet);
            }
            Message::RelayFrom { src, packet } => {
                out.push(kind::RELAY_FROM);
                put_name(out, src);
                out.extend_from_slice(packet);
            }
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let frame = [0xffu8; 60];
        let msgs = vec![
            Message::Hello(Hello {
                sent_us: 1,
                echo_us: 2,
                echo_delay_us: 3,
                flags: 1,
            }),
            Message::Frame(&frame),
            Message::Gossip(vec![]),
            Message::Digest(Digest {
                entries: vec![DigestEntry {
                    name: crate::name::NodeName::new("node_1").unwrap(),
                    generation: 7,
                    version: 9,
                }],
                ..Digest::default()
            }),
            Message::Goodbye,
            Message::RecordAck {
                generation: 3,
                version: 4,
            },
            Message::Digest(Digest {
                entries: vec![],
                after: Some(crate::name::NodeName::new("a").unwrap()),
                through: None,
            }),
            Message::PathChallenge(0x0102_0304_0506_0708),
            Message::PathResponse(u64::MAX),
            Message::MtuProbe {
                token: 7,
                padding: 1400,
            },
            Message::MtuProbe {
                token: 8,
                padding: 0,
            },
            Message::MtuProbeAck {
                token: 7,
                size: 1405,
            },
            Message::FramePiece(FramePiece {
                frame_id: 9,
                index: 1,
                count: 2,
                bytes: &frame,
            }),
            Message::RelayTo {
                dst: crate::name::NodeName::new("b").unwrap(),
                src: crate::name::NodeName::new("a").unwrap(),
                packet: &frame,
            },
            Message::RelayFrom {
                src: crate::name::NodeName::new("a").unwrap(),
                packet: &frame,
            },
            Message::DirectTry,
        ];
        for m in msgs {
            let bytes = m.to_vec();
            assert_eq!(Message::parse(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Message::parse(&[]).is_err());
        assert_eq!(Message::parse(&[0x7f]), Err(WireError::UnknownType(0x7f)));
        assert!(Message::parse(&[kind::HELLO, 0, 0]).is_err());
        assert_eq!(
            Message::parse(&[kind::GOODBYE, 0]),
            Err(WireError::Trailing(1))
        );
        // A digest that claims more entries than it carries.
        assert!(Message::parse(&[kind::DIGEST, 0xff, 0xff]).is_err());
        // A part without bounds is a whole digest in disguise (found by fuzzing:
        // it would not re-encode to itself).
        assert!(Message::parse(&[kind::DIGEST_PART, 0, 0, 0, 0]).is_err());
        // Probe padding is zeros; pieces have 2..=16 parts, a valid index, bytes.
        assert!(Message::parse(&[kind::MTU_PROBE, 0, 0, 0, 1, 0, 1]).is_err());
        assert!(Message::parse(&[kind::FRAME_PIECE, 0, 0, 0, 1, 0, 1, 9]).is_err());
        assert!(Message::parse(&[kind::FRAME_PIECE, 0, 0, 0, 1, 2, 2, 9]).is_err());
        assert!(Message::parse(&[kind::FRAME_PIECE, 0, 0, 0, 1, 0, 17, 9]).is_err());
        assert!(Message::parse(&[kind::FRAME_PIECE, 0, 0, 0, 1, 0, 2]).is_err());
        assert!(Message::parse(&[kind::FRAME_PIECE, 0, 0, 0, 1, 1, 2, 9]).is_ok());
    }
}
