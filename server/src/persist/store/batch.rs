//! One `write_batch`: the records sorted by table, deduplicated, and
//! written in one transaction of multi-row statements.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::error::StoreError;
use crate::persist::record::Record;

/// The most bind parameters one statement may carry.
pub(super) const SQLITE_MAX_BINDS: usize = 32_766;
pub(super) const POSTGRES_MAX_BINDS: usize = 65_535;

/// The rows of one batch, each table's in key order. Key order makes two
/// workers that write overlapping batches at once lock rows in the same
/// order, so PostgreSQL does not deadlock them.
#[derive(Debug, Default)]
pub(super) struct Batch<'a> {
    /// One per (game, player): the highest version, because PostgreSQL
    /// refuses to update one row twice in one `INSERT … ON CONFLICT`.
    players: Vec<PlayerRow<'a>>,
    /// One per id: a redelivered event is the same event.
    events: Vec<EventRow<'a>>,
    checkpoints: Vec<CheckpointRow<'a>>,
    /// The (game, room) pairs whose old checkpoints to prune.
    rooms: BTreeSet<(&'a str, &'a str)>,
}

#[derive(Debug)]
struct PlayerRow<'a> {
    game: &'a str,
    player: &'a str,
    version: i64,
    room: &'a str,
    saved_at_ms: i64,
    state: &'a [u8],
}

#[derive(Debug)]
struct EventRow<'a> {
    id: &'a str,
    game: &'a str,
    room: &'a str,
    kind: &'a str,
    tick: i64,
    at_ms: i64,
    payload: &'a serde_json::Value,
}

#[derive(Debug)]
struct CheckpointRow<'a> {
    game: &'a str,
    room: &'a str,
    epoch: i64,
    taken_at_ms: i64,
    tick: i64,
    data: &'a [u8],
}

/// A u64 as BIGINT, or the record is refused before it reaches the
/// database.
pub(super) fn bigint(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

impl<'a> Batch<'a> {
    pub(super) fn new(records: &'a [Record]) -> Result<Self, StoreError> {
        let mut players = BTreeMap::new();
        let mut events = BTreeMap::new();
        let mut checkpoints = BTreeMap::new();
        let mut rooms = BTreeSet::new();
        for record in records {
            match record {
                Record::PlayerState(p) => {
                    let row = PlayerRow {
                        game: &p.game,
                        player: &p.player,
                        version: bigint("version", p.version)?,
                        room: &p.room,
                        saved_at_ms: bigint("saved_at_ms", p.saved_at_ms)?,
                        state: &p.state,
                    };
                    match players.entry((row.game, row.player)) {
                        Entry::Vacant(slot) => {
                            slot.insert(row);
                        }
                        // Equal versions keep the first, as the database
                        // would.
                        Entry::Occupied(mut slot) => {
                            if row.version > slot.get().version {
                                slot.insert(row);
                            }
                        }
                    }
                }
                Record::Event(e) => {
                    let row = EventRow {
                        id: &e.id,
                        game: &e.game,
                        room: &e.room,
                        kind: &e.kind,
                        tick: i64::from(e.tick),
                        at_ms: bigint("at_ms", e.at_ms)?,
                        payload: &e.payload,
                    };
                    events.entry(row.id).or_insert(row);
                }
                Record::Checkpoint(c) => {
                    let row = CheckpointRow {
                        game: &c.game,
                        room: &c.room,
                        epoch: bigint("epoch", c.epoch)?,
                        taken_at_ms: bigint("taken_at_ms", c.taken_at_ms)?,
                        tick: i64::from(c.tick),
                        data: &c.data,
                    };
                    rooms.insert((row.game, row.room));
                    let key = (row.game, row.room, row.epoch, row.taken_at_ms);
                    checkpoints.entry(key).or_insert(row);
                }
            }
        }
        Ok(Self {
            players: players.into_values().collect(),
            events: events.into_values().collect(),
            checkpoints: checkpoints.into_values().collect(),
            rooms,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.players.is_empty() && self.events.is_empty() && self.checkpoints.is_empty()
    }
}

const INSERT_PLAYERS: &str =
    "INSERT INTO player_state (game, player, version, room, saved_at_ms, state) ";
/// Never replaces a newer version: a save that arrives late (retried,
/// redelivered, or from the node a player just left) loses.
const PLAYERS_CONFLICT: &str = " ON CONFLICT (game, player) DO UPDATE SET \
    version = excluded.version, room = excluded.room, \
    saved_at_ms = excluded.saved_at_ms, state = excluded.state \
    WHERE player_state.version < excluded.version";
const INSERT_EVENTS: &str = "INSERT INTO game_events (id, game, room, kind, tick, at_ms, payload) ";
const EVENTS_CONFLICT: &str = " ON CONFLICT (id) DO NOTHING";
const INSERT_CHECKPOINTS: &str =
    "INSERT INTO room_checkpoints (game, room, epoch, taken_at_ms, tick, data) ";
const CHECKPOINTS_CONFLICT: &str = " ON CONFLICT (game, room, epoch, taken_at_ms) DO NOTHING";
/// Keeps a room's newest `$3` checkpoints by (epoch, taken_at_ms): a later
/// owner's always outrank an earlier owner's, whatever their clocks say.
const PRUNE_CHECKPOINTS: &str = "DELETE FROM room_checkpoints \
    WHERE game = $1 AND room = $2 AND (epoch, taken_at_ms) NOT IN (\
        SELECT epoch, taken_at_ms FROM room_checkpoints WHERE game = $1 AND room = $2 \
        ORDER BY epoch DESC, taken_at_ms DESC LIMIT $3)";

/// Defines one backend's batch write. A macro rather than a function
/// generic over the database: the same statements over two concrete
/// pools, without sqlx's higher-ranked executor bounds.
macro_rules! write_fn {
    ($(#[$doc:meta])* $name:ident, $db:ty, $max_binds:expr, $begin:literal) => {
        $(#[$doc])*
        pub(super) async fn $name(
            pool: &sqlx::Pool<$db>,
            batch: &Batch<'_>,
            keep: i64,
        ) -> Result<(), sqlx::Error> {
            let mut tx = pool.begin_with($begin).await?;
            for rows in batch.players.chunks($max_binds / 6) {
                let mut query = QueryBuilder::<$db>::new(INSERT_PLAYERS);
                query.push_values(rows, |mut row, p| {
                    row.push_bind(p.game)
                        .push_bind(p.player)
                        .push_bind(p.version)
                        .push_bind(p.room)
                        .push_bind(p.saved_at_ms)
                        .push_bind(p.state);
                });
                query.push(PLAYERS_CONFLICT);
                query.build().execute(&mut *tx).await?;
            }
            for rows in batch.events.chunks($max_binds / 7) {
                let mut query = QueryBuilder::<$db>::new(INSERT_EVENTS);
                query.push_values(rows, |mut row, e| {
                    row.push_bind(e.id)
                        .push_bind(e.game)
                        .push_bind(e.room)
                        .push_bind(e.kind)
                        .push_bind(e.tick)
                        .push_bind(e.at_ms)
                        .push_bind(Json(e.payload));
                });
                query.push(EVENTS_CONFLICT);
                query.build().execute(&mut *tx).await?;
            }
            for rows in batch.checkpoints.chunks($max_binds / 6) {
                let mut query = QueryBuilder::<$db>::new(INSERT_CHECKPOINTS);
                query.push_values(rows, |mut row, c| {
                    row.push_bind(c.game)
                        .push_bind(c.room)
                        .push_bind(c.epoch)
                        .push_bind(c.taken_at_ms)
                        .push_bind(c.tick)
                        .push_bind(c.data);
                });
                query.push(CHECKPOINTS_CONFLICT);
                query.build().execute(&mut *tx).await?;
            }
            for (game, room) in &batch.rooms {
                sqlx::query(PRUNE_CHECKPOINTS)
                    .bind(*game)
                    .bind(*room)
                    .bind(keep)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
    };
}

write_fn!(
    /// `BEGIN IMMEDIATE` takes the write lock up front, where the busy
    /// timeout waits for it, instead of failing on upgrade mid-batch.
    write_sqlite,
    sqlx::Sqlite,
    SQLITE_MAX_BINDS,
    "BEGIN IMMEDIATE"
);
write_fn!(write_postgres, sqlx::Postgres, POSTGRES_MAX_BINDS, "BEGIN");
