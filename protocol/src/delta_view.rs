//! Reading a delta in place, without allocating.
//!
//! [`DeltaView::parse`] validates a whole delta frame exactly as
//! [`crate::ServerMsg::decode`] does, remembering where each section is;
//! its iterators then walk the bytes again. Load generators and other
//! clients that only need to count, check or pick out a few components use
//! it to skip the per-entity allocations of the owned [`crate::Delta`].

use crate::delta::{
    COMPACT_DELTA_LEN, Move, read_entry_head, read_move, read_moved_head, read_slots_head,
};
use crate::error::DecodeError;
use crate::frame;
use crate::limits::{MAX_GAME_VALUE, MAX_SERVER_FRAME};
use crate::msgpack::Reader;
use crate::server_msg::{DELTA_LEN, tag};

/// A validated delta frame, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct DeltaView<'a> {
    pub tick: u32,
    pub ack_input: u32,
    entered: Span<'a>,
    updated: Span<'a>,
    left: Span<'a>,
    slots: Span<'a>,
    /// `count` is the number of moves, a third of the elements.
    moved: Span<'a>,
}

/// A section's elements: `count` values starting at `bytes`.
#[derive(Debug, Clone, Copy)]
struct Span<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One entity entry of a delta.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    pub id: u32,
    components: Span<'a>,
}

impl<'a> DeltaView<'a> {
    /// Parses `frame` if it is a delta. `Ok(None)`: a valid frame header of
    /// another message kind (decode it with `ServerMsg::decode`).
    pub fn parse(frame: &'a [u8]) -> Result<Option<Self>, DecodeError> {
        let (mut r, head) = frame::open(frame, MAX_SERVER_FRAME)?;
        if head.tag != u64::from(tag::DELTA) {
            return Ok(None);
        }
        head.require(DELTA_LEN)?;
        let tick = r.uint_as("tick")?;
        let ack_input = r.uint_as("ack_input")?;
        let entered = section(&mut r, frame, check_entry)?;
        let updated = section(&mut r, frame, check_entry)?;
        let left = section(&mut r, frame, |r| r.uint_as::<u32>("entity id").map(drop))?;
        let none = Span {
            bytes: &[],
            count: 0,
        };
        let (mut slots, mut moved) = (none, none);
        let mut known = DELTA_LEN;
        if head.len >= COMPACT_DELTA_LEN {
            let count = read_slots_head(&mut r, entered.count)?;
            slots = counted(&mut r, frame, count, |r| r.uint_as::<u32>("slot").map(drop))?;
            let moves = read_moved_head(&mut r)?;
            moved = counted(&mut r, frame, moves, |r| read_move(r).map(drop))?;
            known = COMPACT_DELTA_LEN;
        }
        head.finish(&mut r, known)?;
        Ok(Some(Self {
            tick,
            ack_input,
            entered,
            updated,
            left,
            slots,
            moved,
        }))
    }

    /// The slot of each entered entity, in order (version 2).
    pub fn slots(&self) -> Ids<'a> {
        Ids {
            reader: Reader::new(self.slots.bytes),
            remaining: self.slots.count,
        }
    }

    /// The moves (version 2).
    pub fn moved(&self) -> Moves<'a> {
        Moves {
            reader: Reader::new(self.moved.bytes),
            remaining: self.moved.count,
        }
    }

    pub fn moved_len(&self) -> usize {
        self.moved.count
    }

    pub fn entered(&self) -> Entries<'a> {
        Entries::new(self.entered)
    }

    pub fn updated(&self) -> Entries<'a> {
        Entries::new(self.updated)
    }

    /// Ids of the entities that left view.
    pub fn left(&self) -> Ids<'a> {
        Ids {
            reader: Reader::new(self.left.bytes),
            remaining: self.left.count,
        }
    }

    pub fn entered_len(&self) -> usize {
        self.entered.count
    }

    pub fn updated_len(&self) -> usize {
        self.updated.count
    }

    pub fn left_len(&self) -> usize {
        self.left.count
    }
}

/// Reads a section's array header and checks each element with `check`.
fn section<'a>(
    r: &mut Reader<'a>,
    frame: &'a [u8],
    check: impl FnMut(&mut Reader<'a>) -> Result<(), DecodeError>,
) -> Result<Span<'a>, DecodeError> {
    let count = r.array_len()?;
    counted(r, frame, count, check)
}

/// Checks `count` items with `check`, after their section's header.
fn counted<'a>(
    r: &mut Reader<'a>,
    frame: &'a [u8],
    count: usize,
    mut check: impl FnMut(&mut Reader<'a>) -> Result<(), DecodeError>,
) -> Result<Span<'a>, DecodeError> {
    let start = r.position();
    for _ in 0..count {
        check(r)?;
    }
    Ok(Span {
        bytes: &frame[start..r.position()],
        count,
    })
}

/// Validates one entity entry, as the owned decoder does.
fn check_entry(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let (_, count) = read_entry_head(r)?;
    for _ in 0..count {
        r.uint_as::<u8>("component id")?;
        let span = r.value_span()?;
        if span.len() > MAX_GAME_VALUE {
            return Err(DecodeError::TooLong {
                field: "game value",
                len: span.len(),
                max: MAX_GAME_VALUE,
            });
        }
    }
    Ok(())
}

/// The entries of a section. Every entry was validated by `parse`, so the
/// walk cannot fail; should it meet anything unexpected it stops.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

impl<'a> Entries<'a> {
    fn new(span: Span<'a>) -> Self {
        Self {
            reader: Reader::new(span.bytes),
            remaining: span.count,
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = EntryView<'a>;

    fn next(&mut self) -> Option<EntryView<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let len = self.reader.array_len().ok()?;
        let id = self.reader.uint_as("entity id").ok()?;
        let start = self.reader.position();
        for _ in 0..len / 2 {
            self.reader.uint().ok()?;
            self.reader.value_span().ok()?;
        }
        let bytes = self.reader.consumed_since(start);
        Some(EntryView {
            id,
            components: Span {
                bytes,
                count: len / 2,
            },
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl<'a> EntryView<'a> {
    /// `(component id, encoded value)` pairs.
    pub fn components(&self) -> Components<'a> {
        Components {
            reader: Reader::new(self.components.bytes),
            remaining: self.components.count,
        }
    }

    pub fn component_count(&self) -> usize {
        self.components.count
    }

    /// The encoded value of component `id`, if the entry carries it.
    pub fn component(&self, id: u8) -> Option<&'a [u8]> {
        self.components().find(|(c, _)| *c == id).map(|(_, v)| v)
    }
}

/// The components of an entry.
#[derive(Debug, Clone)]
pub struct Components<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

impl<'a> Iterator for Components<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let id = self.reader.uint_as("component id").ok()?;
        let span = self.reader.value_span().ok()?;
        Some((id, self.reader.slice(span)))
    }
}

/// The moves of the `moved` section.
#[derive(Debug, Clone)]
pub struct Moves<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

impl Iterator for Moves<'_> {
    type Item = Move;

    fn next(&mut self) -> Option<Move> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        read_move(&mut self.reader).ok()
    }
}

/// The ids of the `left` section (or the slots of `slots`).
#[derive(Debug, Clone)]
pub struct Ids<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

impl Iterator for Ids<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.reader.uint_as("entity id").ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ComponentValue, Delta, EntityState, RawValue, ServerMsg};
    use bytes::Bytes;

    /// Entries as plain data, to compare the view with the owned decoder.
    type Flat = Vec<(u32, Vec<(u8, Vec<u8>)>)>;

    fn sample() -> Delta {
        Delta {
            tick: 70_000,
            ack_input: 5,
            entered: vec![EntityState {
                id: 300,
                components: vec![
                    ComponentValue {
                        id: 1,
                        value: RawValue::encode(&123_456u32).expect("encodes"),
                    },
                    ComponentValue {
                        id: 2,
                        value: RawValue::encode(&"bob").expect("encodes"),
                    },
                ],
            }],
            updated: vec![EntityState {
                id: 7,
                components: vec![ComponentValue {
                    id: 1,
                    value: RawValue::encode(&9u32).expect("encodes"),
                }],
            }],
            left: vec![1, 100_000],
            slots: vec![3],
            moved: vec![
                Move {
                    slot: 3,
                    dx: -200,
                    dy: 0,
                },
                Move {
                    slot: 0,
                    dx: 70_000,
                    dy: -1,
                },
            ],
        }
    }

    #[test]
    fn view_matches_the_owned_decoder() {
        let delta = sample();
        let frame = ServerMsg::Delta(delta.clone()).encode();
        let view = DeltaView::parse(&frame).expect("valid").expect("a delta");
        assert_eq!((view.tick, view.ack_input), (70_000, 5));
        let entered: Flat = view
            .entered()
            .map(|e| (e.id, e.components().map(|(c, v)| (c, v.to_vec())).collect()))
            .collect();
        let expected: Flat = delta
            .entered
            .iter()
            .map(|e| {
                (
                    e.id,
                    e.components
                        .iter()
                        .map(|c| (c.id, c.value.as_bytes().to_vec()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(entered, expected);
        assert_eq!(view.updated().map(|e| e.id).collect::<Vec<_>>(), vec![7]);
        assert_eq!(view.left().collect::<Vec<_>>(), vec![1, 100_000]);
        assert_eq!(view.slots().collect::<Vec<_>>(), delta.slots);
        assert_eq!(view.moved().collect::<Vec<_>>(), delta.moved);
        let first = view.entered().next().expect("entry");
        assert_eq!(first.component(2), Some(&[0xa3, b'b', b'o', b'b'][..]));
        assert_eq!(first.component(9), None);
    }

    #[test]
    fn other_messages_are_not_deltas_and_bad_deltas_fail_like_decode() {
        let pong = ServerMsg::Pong { nonce: 1, tick: 2 }.encode();
        assert!(DeltaView::parse(&pong).expect("valid").is_none());
        let mut frame = ServerMsg::Delta(sample()).encode();
        frame.truncate(frame.len() - 2);
        let owned = ServerMsg::decode(&Bytes::from(frame.clone())).expect_err("truncated");
        let view = DeltaView::parse(&frame).expect_err("truncated");
        assert_eq!(owned, view);
    }
}
