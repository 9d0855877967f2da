//! The state delta: what changed among the entities a client can see.
//!
//! ```text
//! delta  = [2, tick, ack_input, [entry...] entered, [entry...] updated, [id...] left]
//!        | [2, tick, ack_input, entered, updated, left, [slot...] slots, [move...] moved]
//! entry  = [entity_id, component_id, value, component_id, value, ...]
//! move   = slot, dx, dy          (three elements of the flat `moved` array)
//! ```
//!
//! Like every message, a delta may carry elements after its last section
//! that a later version appended; the decoder skips them. An entry is a list
//! of pairs, not a fixed layout, so it has no such extension point.
//!
//! An `entered` entry carries every replicated component of the entity; an
//! `updated` entry carries only the components whose quantized value changed.
//! Clients apply `left`, then `entered`, then `updated`, then `moved`.
//!
//! `slots` and `moved` (protocol version 2) come together or not at all: a
//! sender writes them when either is non-empty. `slots` gives each entered
//! entity, in order, a small number for this client; a `moved` triple says
//! that the entity in `slot` moved, as a residual against the position the
//! client predicts (`PROTOCOL.md` §6.3).
//!
//! The server builds deltas from pre-encoded pieces (one entry per changed
//! entity per tick, shared by every client that sees it), so the writer side
//! here works on already-encoded entries.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::limits::MAX_COMPONENTS_PER_ENTITY;
use crate::msgpack::{Reader, Writer};
use crate::raw::{RawValue, read_raw};
use crate::server_msg::{DELTA_LEN, tag};

/// Most elements the decoder reserves room for up front. A count is checked
/// against the bytes left (one byte per element at least), but in a 1 MiB
/// frame that still allows a lying count to reserve tens of MiB before the
/// decoder fails; beyond this bound vectors grow as elements actually decode.
const PREALLOCATE_MAX: usize = 1024;

/// One replicated component's quantized value.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentValue {
    pub id: u8,
    pub value: RawValue,
}

/// An entity entry: its id and some or all of its replicated components.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityState {
    pub id: u32,
    pub components: Vec<ComponentValue>,
}

/// The motion component of the entity in `slot` moved: its new value is the
/// client's prediction plus `(dx, dy)`, axis by axis (`PROTOCOL.md` §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Move {
    pub slot: u32,
    pub dx: i32,
    pub dy: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delta {
    /// Server tick this state belongs to.
    pub tick: u32,
    /// Sequence number of the last input the server applied for this client.
    pub ack_input: u32,
    pub entered: Vec<EntityState>,
    pub updated: Vec<EntityState>,
    pub left: Vec<u32>,
    /// The slot of each `entered` entity, in order; empty, or as long as
    /// `entered` (version 2).
    pub slots: Vec<u32>,
    /// Moved positions of entities the client holds in slots (version 2).
    pub moved: Vec<Move>,
}

/// Elements of a delta that carries `slots` and `moved`.
pub(crate) const COMPACT_DELTA_LEN: usize = DELTA_LEN + 2;

/// Writes the head of an entity entry; `component` must follow
/// `component_count` times.
pub fn write_entry_head(out: &mut Vec<u8>, entity_id: u32, component_count: usize) {
    let mut w = Writer::new(out);
    w.array_len(1 + 2 * component_count as u32);
    w.uint(entity_id.into());
}

/// Writes one component of an entity entry: its id and its encoded value.
pub fn write_entry_component(out: &mut Vec<u8>, component_id: u8, encoded_value: &[u8]) {
    let mut w = Writer::new(out);
    w.uint(component_id.into());
    w.raw(encoded_value);
}

/// Writes the head of a delta frame, up to and including the header of the
/// `entered` section. Then follow `entered_count` entries,
/// [`write_section_head`] with the `updated` count, that many entries, and
/// finally [`write_left`]. Counts come first because MessagePack arrays are
/// length-prefixed; the server knows them before it copies any piece.
///
/// With `compact`, the delta has the `slots` and `moved` sections as well:
/// they follow `left` ([`write_slots`], [`write_moved_head`]).
pub fn write_delta_head(
    out: &mut Vec<u8>,
    tick: u32,
    ack_input: u32,
    entered_count: usize,
    compact: bool,
) {
    let mut w = Writer::new(out);
    w.array_len(if compact {
        COMPACT_DELTA_LEN
    } else {
        DELTA_LEN
    } as u32);
    w.uint(tag::DELTA.into());
    w.uint(tick.into());
    w.uint(ack_input.into());
    w.array_len(entered_count as u32);
}

/// Writes the array header of the `updated` section.
pub fn write_section_head(out: &mut Vec<u8>, count: usize) {
    Writer::new(out).array_len(count as u32);
}

/// Writes the `left` section, closing the delta.
pub fn write_left(out: &mut Vec<u8>, left: &[u32]) {
    let mut w = Writer::new(out);
    w.array_len(left.len() as u32);
    for id in left {
        w.uint((*id).into());
    }
}

/// Writes the `slots` section.
pub fn write_slots(out: &mut Vec<u8>, slots: &[u32]) {
    let mut w = Writer::new(out);
    w.array_len(slots.len() as u32);
    for slot in slots {
        w.uint((*slot).into());
    }
}

/// Writes the header of the `moved` section for `moves` moves; each follows
/// as its slot ([`write_move_slot`]) and its residual ([`write_residual`]).
pub fn write_moved_head(out: &mut Vec<u8>, moves: usize) {
    Writer::new(out).array_len((3 * moves) as u32);
}

pub fn write_move_slot(out: &mut Vec<u8>, slot: u32) {
    Writer::new(out).uint(slot.into());
}

/// Writes a move's residual: two signed integers in their smallest
/// encoding. It is the same for every client that predicts the same value,
/// so the server encodes it once per entity and tick.
pub fn write_residual(out: &mut Vec<u8>, dx: i32, dy: i32) {
    let mut w = Writer::new(out);
    w.int(dx.into());
    w.int(dy.into());
}

/// Reads an entity entry's array header and id; returns the id and how many
/// `(component id, value)` pairs follow.
pub(crate) fn read_entry_head(r: &mut Reader<'_>) -> Result<(u32, usize), DecodeError> {
    let at = r.position();
    let len = r.array_len()?;
    if len % 2 == 0 || len > 1 + 2 * MAX_COMPONENTS_PER_ENTITY {
        return Err(DecodeError::WrongArity {
            expected: 1 + 2 * (len / 2).min(MAX_COMPONENTS_PER_ENTITY),
            found: len,
            at,
        });
    }
    Ok((r.uint_as("entity id")?, len / 2))
}

impl EntityState {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        write_entry_head(out, self.id, self.components.len());
        for c in &self.components {
            write_entry_component(out, c.id, c.value.as_bytes());
        }
    }

    /// The value of component `id`, if this entry carries it.
    pub fn component(&self, id: u8) -> Option<&RawValue> {
        self.components
            .iter()
            .find(|c| c.id == id)
            .map(|c| &c.value)
    }

    pub(crate) fn decode(r: &mut Reader<'_>, frame: &Bytes) -> Result<Self, DecodeError> {
        let (id, count) = read_entry_head(r)?;
        let mut components = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.uint_as("component id")?;
            let value = read_raw(r, frame)?;
            components.push(ComponentValue { id, value });
        }
        Ok(Self { id, components })
    }
}

impl Delta {
    /// Whether the delta is written with its `slots` and `moved` sections.
    pub fn is_compact(&self) -> bool {
        !(self.slots.is_empty() && self.moved.is_empty())
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let compact = self.is_compact();
        write_delta_head(out, self.tick, self.ack_input, self.entered.len(), compact);
        Sections::encode_into(out, &self.entered, &self.updated, &self.left);
        if compact {
            write_slots(out, &self.slots);
            write_moved_head(out, self.moved.len());
            for m in &self.moved {
                write_move_slot(out, m.slot);
                write_residual(out, m.dx, m.dy);
            }
        }
    }

    /// Decodes the fields after the tag, `len` elements in all; the caller
    /// has read the header and skips any elements after the last section.
    /// Returns the delta and how many elements it read.
    pub(crate) fn decode_body(
        r: &mut Reader<'_>,
        frame: &Bytes,
        len: usize,
    ) -> Result<(Self, usize), DecodeError> {
        let tick = r.uint_as("tick")?;
        let ack_input = r.uint_as("ack_input")?;
        let Sections {
            entered,
            updated,
            left,
        } = Sections::decode(r, frame)?;
        let mut delta = Self {
            tick,
            ack_input,
            entered,
            updated,
            left,
            ..Self::default()
        };
        if len < COMPACT_DELTA_LEN {
            return Ok((delta, DELTA_LEN));
        }
        let count = read_slots_head(r, delta.entered.len())?;
        delta.slots.reserve(count);
        for _ in 0..count {
            delta.slots.push(r.uint_as("slot")?);
        }
        let moves = read_moved_head(r)?;
        delta.moved.reserve(moves.min(PREALLOCATE_MAX));
        for _ in 0..moves {
            delta.moved.push(read_move(r)?);
        }
        Ok((delta, COMPACT_DELTA_LEN))
    }
}

/// Reads the `slots` header: one slot per entered entry.
pub(crate) fn read_slots_head(r: &mut Reader<'_>, entered: usize) -> Result<usize, DecodeError> {
    let at = r.position();
    let count = r.array_len()?;
    if count != entered {
        return Err(DecodeError::WrongArity {
            expected: entered,
            found: count,
            at,
        });
    }
    Ok(count)
}

/// Reads the `moved` header and returns the number of moves (a third of
/// its elements).
pub(crate) fn read_moved_head(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let at = r.position();
    let len = r.array_len()?;
    if len % 3 != 0 {
        return Err(DecodeError::WrongArity {
            expected: len - len % 3,
            found: len,
            at,
        });
    }
    Ok(len / 3)
}

pub(crate) fn read_move(r: &mut Reader<'_>) -> Result<Move, DecodeError> {
    Ok(Move {
        slot: r.uint_as("slot")?,
        dx: r.int_as("dx")?,
        dy: r.int_as("dy")?,
    })
}

/// The three sections every state message ends with: `entered`, `updated`
/// and `left`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Sections {
    pub entered: Vec<EntityState>,
    pub updated: Vec<EntityState>,
    pub left: Vec<u32>,
}

impl Sections {
    pub(crate) fn encode_into(
        out: &mut Vec<u8>,
        entered: &[EntityState],
        updated: &[EntityState],
        left: &[u32],
    ) {
        for e in entered {
            e.encode_into(out);
        }
        write_section_head(out, updated.len());
        for e in updated {
            e.encode_into(out);
        }
        write_left(out, left);
    }

    /// Reads the three sections; the `entered` header comes first.
    pub(crate) fn decode(r: &mut Reader<'_>, frame: &Bytes) -> Result<Self, DecodeError> {
        let entries = |r: &mut Reader<'_>| -> Result<Vec<EntityState>, DecodeError> {
            let n = r.array_len()?;
            let mut v = Vec::with_capacity(n.min(PREALLOCATE_MAX));
            for _ in 0..n {
                v.push(EntityState::decode(r, frame)?);
            }
            Ok(v)
        };
        let entered = entries(r)?;
        let updated = entries(r)?;
        let n = r.array_len()?;
        let mut left = Vec::with_capacity(n.min(PREALLOCATE_MAX));
        for _ in 0..n {
            left.push(r.uint_as("entity id")?);
        }
        Ok(Self {
            entered,
            updated,
            left,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerMsg;

    #[test]
    fn lying_entry_count_fails_on_the_first_missing_entry() {
        // A delta whose `entered` claims 1,000,000 entries in a frame that
        // has room for them (one byte each), but whose first "entry" is not
        // an array.
        let mut frame = Vec::new();
        write_delta_head(&mut frame, 1, 0, 1_000_000, false);
        frame.resize(frame.len() + 1_000_000, 0xc0);
        let err = ServerMsg::decode(&Bytes::from(frame)).expect_err("nil is not an entry");
        assert!(matches!(err, DecodeError::UnexpectedType { .. }), "{err}");
    }

    #[test]
    fn more_entries_than_preallocated_still_decode() {
        let delta = Delta {
            tick: 3,
            updated: (0..PREALLOCATE_MAX as u32 + 5)
                .map(|id| EntityState {
                    id,
                    components: Vec::new(),
                })
                .collect(),
            left: (0..PREALLOCATE_MAX as u32 * 2).collect(),
            ..Delta::default()
        };
        let frame = Bytes::from(ServerMsg::Delta(delta.clone()).encode());
        assert_eq!(ServerMsg::decode(&frame), Ok(ServerMsg::Delta(delta)));
    }
}
