//! What a room hands its host to persist: players' saved state and the
//! game's own events ("coin collected", "match won").
//!
//! The room only encodes; the host drains [`crate::Room::take_records`]
//! after each tick and queues them without waiting. When the host's queue
//! is full it tells the room ([`crate::Room::records_dropped`]), and the
//! game sees the count in [`Journal::dropped`]: nothing is lost in silence.

use bevy_ecs::prelude::*;
use serde::Serialize;
use tessera_protocol::{PayloadError, RawValue};

use crate::channels::is_valid_channel_name;

/// Something for the host to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomRecord {
    /// A player's persisted components (see [`crate::snapshot::SavedState`]).
    PlayerSaved {
        player: String,
        /// [`crate::Room::decode_player_state`] reads it back.
        state: Vec<u8>,
        /// Saved because it left (true) or on its save interval.
        left: bool,
    },
    /// An event the game recorded ([`Journal::record`]).
    Event {
        kind: String,
        payload: RawValue,
        tick: u32,
        /// Its place among the tick's events: `(tick, seq)` is unique in
        /// the room's life.
        seq: u32,
    },
}

/// Why the journal refused an event.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An event kind is 1 to 64 bytes of `A-Z a-z 0-9 _ . : -`.
    #[error("invalid event kind {0:?}")]
    InvalidKind(String),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The room recorded `RoomConfig::max_events_per_tick` events this tick.
    #[error("more than {0} recorded events in one tick")]
    TooMany(usize),
}

/// The game's persisted events (a world resource). Systems and action
/// handlers record; the events leave after the tick, once each, for the
/// store's `game_events` table.
#[derive(Resource, Debug)]
pub struct Journal {
    events: Vec<(String, RawValue)>,
    limit: usize,
    dropped: u64,
    /// The tick of the last events taken, and the seq the next event of
    /// that tick gets: the host may take them more than once a tick.
    last_tick: u32,
    next_seq: u32,
}

impl Journal {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            events: Vec::new(),
            limit,
            dropped: 0,
            last_tick: 0,
            next_seq: 0,
        }
    }

    /// Records an event of `kind` with the game's `payload` (any serde
    /// type; the store keeps it as JSON, so maps need string keys).
    pub fn record<E: Serialize + ?Sized>(
        &mut self,
        kind: &str,
        payload: &E,
    ) -> Result<(), JournalError> {
        if !is_valid_channel_name(kind) {
            return Err(JournalError::InvalidKind(kind.to_owned()));
        }
        if self.events.len() >= self.limit {
            return Err(JournalError::TooMany(self.limit));
        }
        self.events
            .push((kind.to_owned(), RawValue::encode(payload)?));
        Ok(())
    }

    /// Records (events and player saves) the host could not queue since
    /// the room opened: its queue to the store was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn add_dropped(&mut self, n: u64) {
        self.dropped += n;
    }

    pub(crate) fn take(&mut self, tick: u32, out: &mut Vec<RoomRecord>) {
        if tick != self.last_tick {
            self.last_tick = tick;
            self.next_seq = 0;
        }
        for (kind, payload) in self.events.drain(..) {
            out.push(RoomRecord::Event {
                kind,
                payload,
                tick,
                seq: self.next_seq,
            });
            self.next_seq += 1;
        }
    }
}
