//! The state message of unreliable transports: a delta against the last
//! tick the client acknowledged, split by entity into self-contained parts.
//!
//! ```text
//! part = [7, tick, baseline_age, ack_input, part_index * 2 + last,
//!         [entry...] entered, [entry...] updated, [id...] left]
//! ```
//!
//! Over QUIC, state travels as datagrams that may be lost, duplicated by a
//! retransmitting server, or reordered. So a part is not "what changed since
//! the previous message" (as a [`crate::Delta`] is) but "what changed
//! between `baseline` and `tick`", where `baseline` is a tick the client
//! acknowledged with `Ack` (or 0: a full state). The baseline travels as
//! its age (`tick - baseline`, one byte in the steady state) and the part's
//! place as one integer (its index times two, plus one on the last part),
//! so a one-part state costs two header bytes more than a `Delta`. Each
//! part carries whole entities, so any part can be applied as soon as it
//! arrives; the last part's index tells the client when it holds all of a
//! tick (only then may it acknowledge the tick). `PROTOCOL.md` §6.2 gives
//! the client's rules.

use bytes::Bytes;

use crate::delta::{EntityState, Sections};
use crate::error::DecodeError;
use crate::msgpack::{Reader, Writer};
use crate::server_msg::tag;

/// Elements of a part in this version, the tag included.
pub(crate) const DELTA_PART_LEN: usize = 8;

/// Most bytes the head of a part takes, up to and including the header of
/// its `entered` section, plus the headers of `updated` and `left`: a
/// sender budgets this much besides the entries. Array header, tag, four
/// uint32 (5 bytes each) and three array16 headers.
pub const DELTA_PART_OVERHEAD: usize = 1 + 1 + 4 * 5 + 3 * 3;

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
    /// Index of this part among the parts of `tick`, from 0.
    pub part: u16,
    /// True on the part with the highest index: the state of `tick` has
    /// `part + 1` parts.
    pub last: bool,
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
                last: self.last,
            },
            self.entered.len(),
        );
        Sections::encode_into(out, &self.entered, &self.updated, &self.left);
    }

    /// Decodes the fields after the tag; the caller skips later elements.
    pub(crate) fn decode_body(r: &mut Reader<'_>, frame: &Bytes) -> Result<Self, DecodeError> {
        let tick: u32 = r.uint_as("tick")?;
        let age: u32 = r.uint_as("baseline_age")?;
        let ack_input = r.uint_as("ack_input")?;
        let place: u32 = r.uint_as("part")?;
        // A baseline is an earlier tick, never tick 0 (ticks start at 1).
        if age >= tick {
            return Err(DecodeError::OutOfRange {
                field: "baseline_age",
            });
        }
        let baseline = if age == 0 { 0 } else { tick - age };
        let part =
            u16::try_from(place >> 1).map_err(|_| DecodeError::OutOfRange { field: "part" })?;
        let last = place & 1 == 1;
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
            last,
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
    pub last: bool,
}

/// Writes the head of a part up to the `entered` header; then follow the
/// entries, [`crate::delta::write_section_head`] with the `updated` count, those entries
/// and [`crate::delta::write_left`], as for a delta.
pub fn write_part_head(out: &mut Vec<u8>, head: &PartHead, entered_count: usize) {
    let mut w = Writer::new(out);
    w.array_len(DELTA_PART_LEN as u32);
    w.uint(tag::DELTA_PART.into());
    let age = if head.baseline == 0 {
        0
    } else {
        head.tick.wrapping_sub(head.baseline)
    };
    w.uint(head.tick.into());
    w.uint(age.into());
    w.uint(head.ack_input.into());
    w.uint((u64::from(head.part) << 1) | u64::from(head.last));
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
            last: true,
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
            baseline: 1,
            ack_input: u32::MAX,
            part: u16::MAX,
            last: true,
            ..DeltaPart::default()
        };
        let empty = ServerMsg::DeltaPart(widest).encode();
        assert!(empty.len() <= DELTA_PART_OVERHEAD, "{}", empty.len());
    }

    #[test]
    fn a_steady_state_part_costs_two_bytes_more_than_a_delta() {
        let delta = crate::Delta {
            tick: 70_000,
            ack_input: 3,
            ..crate::Delta::default()
        };
        let part = DeltaPart {
            tick: 70_000,
            baseline: 69_999,
            ack_input: 3,
            last: true,
            ..DeltaPart::default()
        };
        let delta = ServerMsg::Delta(delta).encode().len();
        let part = ServerMsg::DeltaPart(part).encode().len();
        assert_eq!(part, delta + 2);
    }

    #[test]
    fn the_baseline_age_and_the_part_index_are_checked() {
        // [7, tick 5, age 5, ack 0, part 0 last, [], [], []]: a baseline
        // of tick 0, which no tick is.
        let at_zero = Bytes::from_static(&[0x98, 0x07, 0x05, 0x05, 0x00, 0x01, 0x90, 0x90, 0x90]);
        // The part index 65536 does not fit 16 bits.
        let wide = Bytes::from_static(&[
            0x98, 0x07, 0x05, 0x01, 0x00, 0xce, 0x00, 0x02, 0x00, 0x01, 0x90, 0x90, 0x90,
        ]);
        for frame in [at_zero, wide] {
            assert!(matches!(
                ServerMsg::decode(&frame),
                Err(DecodeError::OutOfRange { .. })
            ));
        }
    }
}
