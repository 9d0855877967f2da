//! The state message of unreliable transports: a delta against the last
//! tick the client acknowledged, split by entity into self-contained parts.
//!
//! ```text
//! part = [7, tick, baseline, ack_input, part, parts,
//!         [entry...] entered, [entry...] updated, [id...] left]
//! ```
//!
//! Over QUIC, state travels as datagrams that may be lost, duplicated by a
//! retransmitting server, or reordered. So a part is not "what changed since
//! the previous message" (as a [`crate::Delta`] is) but "what changed
//! between `baseline` and `tick`", where `baseline` is a tick the client
//! acknowledged with `Ack` (or 0: a full state). Each part carries whole
//! entities, so any part can be applied as soon as it arrives; `part` and
//! `parts` tell the client when it holds all of a tick (only then may it
//! acknowledge the tick). `PROTOCOL.md` §6.2 gives the client's rules.

use bytes::Bytes;

use crate::delta::{EntityState, Sections};
use crate::error::DecodeError;
use crate::msgpack::{Reader, Writer};
use crate::server_msg::tag;

/// Elements of a part in this version, the tag included.
pub(crate) const DELTA_PART_LEN: usize = 9;

/// Most bytes the head of a part takes, up to and including the header of
/// its `entered` section, plus the headers of `updated` and `left`: a
/// sender budgets this much besides the entries. Array header, tag, three
/// uint32 (5 bytes each), two uint16 (3 each) and three array16 headers.
pub const DELTA_PART_OVERHEAD: usize = 1 + 1 + 3 * 5 + 2 * 3 + 3 * 3;

/// One part of the state of `tick` against `baseline`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeltaPart {
    /// Server tick this state belongs to.
    pub tick: u32,
    /// The acknowledged tick the part is built against; 0 = a full state
    /// (every entity the client sees is in `entered` of some part).
    pub baseline: u32,
    /// Sequence number of the last input the server applied for this client.
    pub ack_input: u32,
    /// Index of this part, `0..parts`.
    pub part: u16,
    /// How many parts the state of `tick` has (at least 1).
    pub parts: u16,
    /// Entities the client did not know at `baseline`, with every component.
    pub entered: Vec<EntityState>,
    /// Entities known at `baseline` with the components changed since.
    pub updated: Vec<EntityState>,
    /// Entities the client may have learnt of and no longer sees.
    pub left: Vec<u32>,
}

impl DeltaPart {
    /// True when the part belongs to a full state.
    pub fn is_full_state(&self) -> bool {
        self.baseline == 0
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        write_part_head(
            out,
            &PartHead {
                tick: self.tick,
                baseline: self.baseline,
                ack_input: self.ack_input,
                part: self.part,
                parts: self.parts,
            },
            self.entered.len(),
        );
        Sections::encode_into(out, &self.entered, &self.updated, &self.left);
    }

    /// Decodes the fields after the tag; the caller skips later elements.
    pub(crate) fn decode_body(r: &mut Reader<'_>, frame: &Bytes) -> Result<Self, DecodeError> {
        let tick: u32 = r.uint_as("tick")?;
        let baseline: u32 = r.uint_as("baseline")?;
        let ack_input = r.uint_as("ack_input")?;
        let part: u16 = r.uint_as("part")?;
        let parts: u16 = r.uint_as("parts")?;
        if baseline >= tick && baseline != 0 {
            return Err(DecodeError::OutOfRange { field: "baseline" });
        }
        if part >= parts {
            return Err(DecodeError::OutOfRange { field: "part" });
        }
        let Sections {
            entered,
            updated,
            left,
        } = Sections::decode(r, frame)?;
        Ok(Self {
            tick,
            baseline,
            ack_input,
            part,
            parts,
            entered,
            updated,
            left,
        })
    }
}

/// The scalar fields of a part, for [`write_part_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHead {
    pub tick: u32,
    pub baseline: u32,
    pub ack_input: u32,
    pub part: u16,
    pub parts: u16,
}

/// Writes the head of a part up to the `entered` header; then follow the
/// entries, [`write_section_head`] with the `updated` count, those entries
/// and [`crate::delta::write_left`], as for a delta.
pub fn write_part_head(out: &mut Vec<u8>, head: &PartHead, entered_count: usize) {
    let mut w = Writer::new(out);
    w.array_len(DELTA_PART_LEN as u32);
    w.uint(tag::DELTA_PART.into());
    w.uint(head.tick.into());
    w.uint(head.baseline.into());
    w.uint(head.ack_input.into());
    w.uint(head.part.into());
    w.uint(head.parts.into());
    w.array_len(entered_count as u32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ComponentValue, RawValue, ServerMsg};

    fn sample() -> DeltaPart {
        DeltaPart {
            tick: 70_000,
            baseline: 69_998,
            ack_input: 3,
            part: 1,
            parts: 2,
            entered: vec![EntityState {
                id: 9,
                components: vec![ComponentValue {
                    id: 1,
                    value: RawValue::encode(&5u32).expect("encodes"),
                }],
            }],
            updated: vec![],
            left: vec![4],
        }
    }

    #[test]
    fn roundtrips_and_the_overhead_bound_holds() {
        let part = sample();
        let frame = ServerMsg::DeltaPart(part.clone()).encode();
        assert_eq!(
            ServerMsg::decode(&Bytes::from(frame.clone())),
            Ok(ServerMsg::DeltaPart(part))
        );
        let widest = DeltaPart {
            tick: u32::MAX,
            baseline: u32::MAX - 1,
            ack_input: u32::MAX,
            part: u16::MAX - 1,
            parts: u16::MAX,
            ..DeltaPart::default()
        };
        let empty = ServerMsg::DeltaPart(widest).encode();
        assert!(empty.len() <= DELTA_PART_OVERHEAD, "{}", empty.len());
    }

    #[test]
    fn part_index_and_baseline_are_checked() {
        for bad in [
            DeltaPart {
                part: 2,
                parts: 2,
                ..sample()
            },
            DeltaPart {
                part: 0,
                parts: 0,
                ..sample()
            },
            DeltaPart {
                baseline: 70_000,
                ..sample()
            },
        ] {
            let frame = Bytes::from(ServerMsg::DeltaPart(bad).encode());
            assert!(matches!(
                ServerMsg::decode(&frame),
                Err(DecodeError::OutOfRange { .. })
            ));
        }
    }
}
