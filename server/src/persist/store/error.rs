//! Why a write failed, sorted into "try again" and "this record is bad".

use std::path::PathBuf;

use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// A store operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names neither `sqlite:` nor `postgres:`.
    #[error("unsupported database url {0:?}: expected sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// The SQLite file's folder could not be made.
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A number above `i64::MAX`: BIGINT cannot hold it, and storing it
    /// wrapped would break newest-wins.
    #[error("{field} {value} does not fit a BIGINT")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when retrying may succeed: the database is down, restarting,
    /// busy or lost a race (connection refused or reset, pool timed out,
    /// I/O; PostgreSQL classes 08, 40, 53 and 57P; SQLite BUSY, LOCKED,
    /// IOERR, FULL, NOMEM). False when the database refused the
    /// data itself (a constraint, invalid JSON, a NUL in text): the worker
    /// then gives up on the record after its retries and dead-letters it,
    /// instead of blocking the queue behind it forever.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => sqlx_is_transient(e),
            Self::Migrate(sqlx::migrate::MigrateError::Execute(e)) => sqlx_is_transient(e),
            Self::UnsupportedUrl(_)
            | Self::CreateDir { .. }
            | Self::OutOfRange { .. }
            | Self::Migrate(_) => false,
        }
    }
}

fn sqlx_is_transient(error: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match error {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::WorkerCrashed | E::BeginFailed => true,
        // Closed at shutdown: the record is not at fault, so it stays
        // queued for the next start rather than going to dead letters.
        E::PoolClosed => true,
        E::Database(db) => database_is_transient(db.as_ref()),
        _ => false,
    }
}

fn database_is_transient(error: &dyn DatabaseError) -> bool {
    if let Some(pg) = error.try_downcast_ref::<PgDatabaseError>() {
        let state = pg.code();
        // 08 connection exception, 40 serialization failure or deadlock,
        // 53 insufficient resources (disk full, too many connections),
        // 57P admin shutdown, crash shutdown, cannot connect now.
        return ["08", "40", "53", "57P"]
            .iter()
            .any(|c| state.starts_with(c));
    }
    if error.try_downcast_ref::<SqliteError>().is_some() {
        // The extended result code; its low byte is the primary code.
        // CANTOPEN is not here: it is nearly always a wrong path or a
        // missing `mode=rwc`, which no retry fixes.
        let primary = error
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff);
        return matches!(
            primary,
            Some(
                libsqlite3_codes::BUSY
                    | libsqlite3_codes::LOCKED
                    | libsqlite3_codes::NOMEM
                    | libsqlite3_codes::IOERR
                    | libsqlite3_codes::FULL
            )
        );
    }
    false
}

/// SQLite's primary result codes (sqlite.org/rescode.html), stable since
/// 3.0; spelled out rather than linking `libsqlite3-sys` directly.
mod libsqlite3_codes {
    pub const BUSY: i32 = 5;
    pub const LOCKED: i32 = 6;
    pub const NOMEM: i32 = 7;
    pub const IOERR: i32 = 10;
    pub const FULL: i32 = 13;
}
