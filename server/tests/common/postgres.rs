//! A PostgreSQL database of a test's own, created fresh on the machine's
//! PostgreSQL and dropped when the test ends. Never another database's
//! data: the name is this process's, numbered and salted.
//!
//! PostgreSQL at `postgres://postgres@127.0.0.1:5432/test` (trust auth),
//! or wherever `TESSERA_TEST_POSTGRES` points. A test that needs it fails
//! when it is not there: a skipped database test would pass CI silently.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database named `tessera_test_<pid>_<n>_<salt>`, dropped (with
/// `FORCE`, so leftover connections do not keep it) on drop.
pub struct TestDatabase {
    pub name: String,
    /// The new database's URL.
    pub url: String,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    match PgConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url}: {e}. The store tests need a running \
             PostgreSQL (trust auth for user postgres on 127.0.0.1:5432, database `test`), \
             or TESSERA_TEST_POSTGRES set to an admin URL."
        ),
    }
}

impl TestDatabase {
    pub async fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let salt = RandomState::new().hash_one(n) % 1_000_000;
        let name = format!("tessera_test_{}_{n}_{salt}", std::process::id());
        let admin_url = admin_url();
        let mut admin = admin_connection(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be the one
        // dropping: drop the database from a runtime of its own.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}
