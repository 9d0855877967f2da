//! The database the persistence worker writes into: a SQLite file by
//! default, PostgreSQL when the operator gives a `postgres://` URL. Both
//! get the same tables and the same statements, so a test against one
//! says something about the other.
//!
//! Every write is idempotent, because the queue delivers at least once: a
//! player's state only moves to a higher version, an event id is written
//! once, a checkpoint is keyed by its owner's epoch and time. The worker
//! may therefore retry a whole batch after any failure that
//! [`StoreError::is_transient`] calls transient.
//!
//! - `batch`: one batch's rows, deduplicated, in one transaction.
//! - `error`: [`StoreError`], and which failures are worth a retry.

mod batch;
mod error;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use self::batch::{Batch, bigint};
pub use self::error::StoreError;
use super::record::{Checkpoint, PlayerState, Record};

/// How the store keeps what it is given.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Checkpoints kept per room, newest by (epoch, taken_at_ms); at
    /// least 1. Default 3: the latest is the one a room restarts from,
    /// the older two are there in case the latest turns out unreadable.
    pub keep_checkpoints: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            keep_checkpoints: 3,
        }
    }
}

/// A record the database refused for good, kept so an operator can look
/// at it, replay it or drop it (the admin API lists them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The record's [`Record::key`].
    pub id: String,
    /// The record's [`Record::kind`].
    pub kind: String,
    /// The last error, as the database said it.
    pub error: String,
    pub attempts: u32,
    pub failed_at_ms: u64,
    /// The record itself; `None` if it no longer decodes (written by a
    /// different version of the record types).
    #[serde(skip)]
    pub record: Option<Record>,
}

/// A pool of connections to one database, with the schema applied.
/// Cheap to share by reference; every method takes `&self`.
#[derive(Debug)]
pub struct Store {
    pool: Pool,
    keep_checkpoints: i64,
}

/// One concrete pool per backend rather than `AnyPool`: no runtime type
/// mapping, and each backend keeps its own types (BYTEA, JSONB).
#[derive(Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has; the
/// statements are the same text for both (`$1` placeholders work in
/// SQLite too).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "persistence",
    include_str!("../../migrations/sqlite/0001_persistence.sql"),
)];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "persistence",
    include_str!("../../migrations/postgres/0001_persistence.sql"),
)];

/// The migrations embedded in the binary. Built by hand because
/// `sqlx::migrate!` needs sqlx's "macros" feature (a host build of SQLite
/// and the drivers); versions, names and checksums are the ones
/// `migrate!` and `sqlx-cli` would record for the same files, so either
/// can take over a database this made.
fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, name, sql)| {
                let sql = sql.into_sql_str();
                Migration::new(version, name.into(), MigrationType::Simple, sql, false)
            })
            .collect(),
    )
}

/// Long enough to ride out another writer's transaction; short enough
/// that a wedged database shows up as a retryable error, not a hang.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A PostgreSQL that is down answers "refused" at once, but one that is
/// unreachable (a dropped route) would hold a connect for minutes: three
/// seconds and the worker gets a transient error to back off on.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl Store {
    /// `sqlite://path?mode=rwc` (the folder is made if missing; without
    /// `mode=rwc` the file must exist) or `postgres://…`. Applies the
    /// migrations before returning.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(connect_sqlite(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // test_before_acquire pings a connection before lending it,
            // so connections broken by a database restart are replaced
            // and the pool recovers on its own when the database is back.
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .test_before_acquire(true)
                .connect(url)
                .await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let store = Store {
            pool,
            keep_checkpoints: i64::try_from(options.keep_checkpoints.max(1)).unwrap_or(i64::MAX),
        };
        let migrated = match &store.pool {
            Pool::Sqlite(pool) => migrator(SQLITE_MIGRATIONS).run(pool).await,
            Pool::Postgres(pool) => migrator(POSTGRES_MIGRATIONS).run(pool).await,
        };
        if let Err(e) = migrated {
            store.close().await;
            return Err(e.into());
        }
        Ok(store)
    }

    /// For logs and `/ready`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Writes every record in one transaction: all of the batch lands or
    /// none of it, so the worker acks a batch only once it is durable.
    /// A redelivered or stale record is a no-op, not an error. Fails
    /// before touching the database if a number does not fit a BIGINT.
    pub async fn write_batch(&self, records: &[Record]) -> Result<(), StoreError> {
        let batch = Batch::new(records)?;
        if batch.is_empty() {
            return Ok(());
        }
        match &self.pool {
            Pool::Sqlite(pool) => batch::write_sqlite(pool, &batch, self.keep_checkpoints).await?,
            Pool::Postgres(pool) => {
                batch::write_postgres(pool, &batch, self.keep_checkpoints).await?
            }
        }
        Ok(())
    }

    /// What a rejoining player gets back.
    pub async fn load_player(
        &self,
        game: &str,
        player: &str,
    ) -> Result<Option<PlayerState>, StoreError> {
        const SQL: &str = "SELECT game, player, version, room, saved_at_ms, state \
            FROM player_state WHERE game = $1 AND player = $2";
        type Row = (String, String, i64, String, i64, Vec<u8>);
        let row: Option<Row> = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(game).bind(player).fetch_optional(pool).await?
        });
        Ok(row.map(
            |(game, player, version, room, saved_at_ms, state)| PlayerState {
                game,
                player,
                version: unsigned(version),
                room,
                saved_at_ms: unsigned(saved_at_ms),
                state,
            },
        ))
    }

    /// The checkpoint a recreated room starts from: the highest epoch
    /// first (a later owner wins), then the latest taken.
    pub async fn latest_checkpoint(
        &self,
        game: &str,
        room: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self
            .checkpoints_up_to(game, room, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Every kept checkpoint of a room, newest first.
    pub async fn checkpoints(&self, game: &str, room: &str) -> Result<Vec<Checkpoint>, StoreError> {
        self.checkpoints_up_to(game, room, i64::MAX).await
    }

    async fn checkpoints_up_to(
        &self,
        game: &str,
        room: &str,
        limit: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        const SQL: &str = "SELECT game, room, epoch, taken_at_ms, tick, data \
            FROM room_checkpoints WHERE game = $1 AND room = $2 \
            ORDER BY epoch DESC, taken_at_ms DESC LIMIT $3";
        type Row = (String, String, i64, i64, i64, Vec<u8>);
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(game).bind(room).bind(limit).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(game, room, epoch, taken_at_ms, tick, data)| Checkpoint {
                game,
                room,
                epoch: unsigned(epoch),
                tick: u32::try_from(tick).unwrap_or_default(),
                taken_at_ms: unsigned(taken_at_ms),
                data,
            })
            .collect())
    }

    /// Keeps a record the database refused, replacing an earlier dead
    /// letter of the same key (a replay that failed again). NULs in the
    /// key and error are escaped: PostgreSQL text cannot hold them, and
    /// the record that carried one must still find its way in here.
    pub async fn add_dead_letter(
        &self,
        record: &Record,
        error: &str,
        attempts: u32,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO dead_letters \
            (id, kind, record, error, attempts, failed_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
            ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, record = excluded.record, \
            error = excluded.error, attempts = excluded.attempts, \
            failed_at_ms = excluded.failed_at_ms";
        let id = without_nul(&record.key()).into_owned();
        let error = without_nul(error).into_owned();
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        let failed_at_ms = bigint("failed_at_ms", now_ms)?;
        let bytes = record.encode();
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&id)
                .bind(record.kind())
                .bind(&bytes)
                .bind(&error)
                .bind(attempts)
                .bind(failed_at_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Up to `limit` dead letters, oldest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        const SQL: &str = "SELECT id, kind, record, error, attempts, failed_at_ms \
            FROM dead_letters ORDER BY failed_at_ms, id LIMIT $1";
        type Row = (String, String, Vec<u8>, String, i32, i64);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(limit).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, record, error, attempts, failed_at_ms)| DeadLetter {
                    id,
                    kind,
                    error,
                    attempts: u32::try_from(attempts).unwrap_or_default(),
                    failed_at_ms: unsigned(failed_at_ms),
                    record: Record::decode(&record).ok(),
                },
            )
            .collect())
    }

    /// Forgets a dead letter (replayed or dropped by an operator); a
    /// missing id is not an error.
    pub async fn remove_dead_letter(&self, id: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM dead_letters WHERE id = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(id).execute(pool).await?;
        });
        Ok(())
    }

    /// A round trip to the database, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Events stored, over all games.
    pub async fn count_events(&self) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM game_events";
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?);
        Ok(unsigned(count))
    }

    /// A game's stored event ids, sorted.
    pub async fn event_ids(&self, game: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT id FROM game_events WHERE game = $1 ORDER BY id";
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(SQL).bind(game).fetch_all(pool).await?
        }))
    }

    /// Waits for borrowed connections to come back, then closes them all;
    /// later calls fail with a (transient) closed-pool error.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    // WAL lets readers (a player joining) run beside the worker's write;
    // NORMAL sync in WAL loses at most the last commits on power loss,
    // never consistency, and the queue redelivers what was not acked.
    let options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory
        && let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    // SQLite writes one at a time anyway; a few connections are for reads.
    // An in-memory database lives as long as its one connection.
    let pool = if in_memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(4)
    };
    Ok(pool.connect_with(options).await?)
}

/// Our own writes are never negative; anything else reads as 0.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\\0"))
    } else {
        Cow::Borrowed(text)
    }
}
