//! The store against real databases: a SQLite file in a temporary folder
//! and a fresh PostgreSQL database, each test on both. What the worker
//! relies on: newest-wins, written-once, atomic batches, and errors that
//! say whether a retry can help.

#[path = "common/postgres.rs"]
mod postgres_db;

use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use postgres_db::TestDatabase;
use serde_json::json;
use tessera_server::persist::record::{Checkpoint, GameEvent, PlayerState, Record};
use tessera_server::persist::store::{Store, StoreError, StoreOptions};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's database lives; removed when the test ends.
enum Place {
    Sqlite(PathBuf),
    Postgres(TestDatabase),
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Sqlite(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Place {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let salt = RandomState::new().hash_one(n) % 1_000_000;
                let dir = std::env::temp_dir().join(format!(
                    "tessera-store-test-{}-{n}-{salt}",
                    std::process::id()
                ));
                Place::Sqlite(dir)
            }
            Backend::Postgres => Place::Postgres(TestDatabase::create().await),
        }
    }

    /// The folder below the temporary one does not exist yet: `connect`
    /// makes it.
    fn url(&self) -> String {
        match self {
            Place::Sqlite(dir) => {
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.join("data").join("store.db").display()
                )
            }
            Place::Postgres(db) => db.url.clone(),
        }
    }
}

/// A store of the test's own. Fields drop in order: the pool, then the
/// database.
struct TestStore {
    store: Store,
    place: Place,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

async fn open(backend: Backend, options: StoreOptions) -> TestStore {
    let place = Place::new(backend).await;
    let store = Store::connect_with(&place.url(), options)
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", place.url()));
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(store.backend(), expected);
    TestStore { store, place }
}

async fn open_default(backend: Backend) -> TestStore {
    open(backend, StoreOptions::default()).await
}

fn player(name: &str, version: u64) -> Record {
    Record::PlayerState(PlayerState {
        game: "arena".into(),
        player: name.into(),
        version,
        room: format!("room-{version}"),
        saved_at_ms: 1_000 + version,
        state: format!("{name}@{version}").into_bytes(),
    })
}

fn event(id: &str, kind: &str) -> Record {
    Record::Event(GameEvent {
        id: id.into(),
        game: "arena".into(),
        room: "lobby".into(),
        kind: kind.into(),
        tick: 7,
        at_ms: 1_700_000_000_000,
        payload: json!({ "coins": 3, "by": "ana", "where": [1.5, -2.0] }),
    })
}

fn checkpoint(room: &str, epoch: u64, taken_at_ms: u64) -> Record {
    Record::Checkpoint(Checkpoint {
        game: "arena".into(),
        room: room.into(),
        epoch,
        tick: u32::try_from(taken_at_ms / 100).expect("small"),
        taken_at_ms,
        data: format!("{room}/e{epoch}/t{taken_at_ms}").into_bytes(),
    })
}

async fn saved_version(store: &Store, name: &str) -> Option<u64> {
    let saved = store.load_player("arena", name).await.expect("load");
    if let Some(p) = &saved {
        // The whole row moves with the version, never a mix of two saves.
        assert_eq!(p.state, format!("{name}@{}", p.version).into_bytes());
        assert_eq!(p.room, format!("room-{}", p.version));
    }
    saved.map(|p| p.version)
}

async fn write(store: &Store, records: &[Record]) {
    store.write_batch(records).await.expect("write_batch");
}

async fn player_state_newer_wins(backend: Backend) {
    let store = open_default(backend).await;
    assert_eq!(saved_version(&store, "ana").await, None);
    write(&store, &[player("ana", 2)]).await;
    write(&store, &[player("ana", 1)]).await;
    assert_eq!(
        saved_version(&store, "ana").await,
        Some(2),
        "an older save lost"
    );
    write(&store, &[player("ana", 3)]).await;
    assert_eq!(
        saved_version(&store, "ana").await,
        Some(3),
        "a newer save won"
    );
    write(&store, &[player("ana", 3)]).await;
    assert_eq!(
        saved_version(&store, "ana").await,
        Some(3),
        "a redelivery is a no-op"
    );
    assert_eq!(
        store.load_player("other-game", "ana").await.expect("load"),
        None
    );
}

async fn same_player_twice_in_a_batch_keeps_the_highest(backend: Backend) {
    let store = open_default(backend).await;
    write(
        &store,
        &[
            player("ana", 5),
            player("bo", 1),
            player("ana", 7),
            player("ana", 6),
        ],
    )
    .await;
    assert_eq!(saved_version(&store, "ana").await, Some(7));
    assert_eq!(saved_version(&store, "bo").await, Some(1));
    write(
        &store,
        &[player("ana", 4), player("ana", 8), player("ana", 2)],
    )
    .await;
    assert_eq!(saved_version(&store, "ana").await, Some(8));
}

async fn events_are_written_once(backend: Backend) {
    let store = open_default(backend).await;
    write(
        &store,
        &[
            event("e1", "coin"),
            event("e1", "coin"),
            event("e2", "coin"),
        ],
    )
    .await;
    assert_eq!(store.count_events().await.expect("count"), 2);
    write(&store, &[event("e2", "coin"), event("e1", "coin")]).await;
    write(&store, &[event("e3", "goal")]).await;
    assert_eq!(store.count_events().await.expect("count"), 3);
    assert_eq!(
        store.event_ids("arena").await.expect("ids"),
        ["e1", "e2", "e3"]
    );
}

async fn checkpoints_keep_the_newest(backend: Backend) {
    let store = open(
        backend,
        StoreOptions {
            keep_checkpoints: 3,
        },
    )
    .await;
    assert_eq!(
        store.latest_checkpoint("arena", "r").await.expect("latest"),
        None
    );
    for taken_at_ms in [100, 200, 300] {
        write(&store, &[checkpoint("r", 1, taken_at_ms)]).await;
    }
    // A later owner with an earlier clock still wins; a redelivered
    // checkpoint is a no-op; another room is left alone.
    write(
        &store,
        &[
            checkpoint("r", 2, 50),
            checkpoint("r", 1, 400),
            checkpoint("r", 1, 400),
        ],
    )
    .await;
    write(&store, &[checkpoint("other", 0, 10)]).await;
    let kept: Vec<(u64, u64)> = store
        .checkpoints("arena", "r")
        .await
        .expect("checkpoints")
        .iter()
        .map(|c| (c.epoch, c.taken_at_ms))
        .collect();
    assert_eq!(kept, [(2, 50), (1, 400), (1, 300)]);
    let latest = store.latest_checkpoint("arena", "r").await.expect("latest");
    assert_eq!(
        latest,
        match checkpoint("r", 2, 50) {
            Record::Checkpoint(c) => Some(c),
            _ => unreachable!(),
        }
    );
    assert_eq!(
        store
            .checkpoints("arena", "other")
            .await
            .expect("other")
            .len(),
        1
    );
    // One older than every kept one is written and pruned at once.
    write(&store, &[checkpoint("r", 0, 999)]).await;
    assert_eq!(
        store
            .checkpoints("arena", "r")
            .await
            .expect("checkpoints")
            .len(),
        3
    );
}

async fn dead_letters_add_list_remove(backend: Backend) {
    let store = open_default(backend).await;
    let (a, b) = (event("bad-1", "coin"), player("ana", 9));
    store
        .add_dead_letter(&a, "first", 3, 2_000)
        .await
        .expect("add");
    store
        .add_dead_letter(&b, "second", 1, 1_000)
        .await
        .expect("add");
    let listed = store.dead_letters(10).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, [b.key(), a.key()], "oldest first");
    assert_eq!(listed[0].kind, "player_state");
    assert_eq!(listed[0].error, "second");
    assert_eq!((listed[0].attempts, listed[0].failed_at_ms), (1, 1_000));
    assert_eq!(listed[0].record.as_ref(), Some(&b));
    assert_eq!(listed[1].record.as_ref(), Some(&a));
    assert_eq!(store.dead_letters(1).await.expect("list").len(), 1);

    // The same record failing again replaces its dead letter.
    store
        .add_dead_letter(&b, "again", 6, 3_000)
        .await
        .expect("upsert");
    let listed = store.dead_letters(10).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[1].id.as_str(), listed[1].attempts),
        (b.key().as_str(), 6)
    );
    assert_eq!(listed[1].error, "again");

    store.remove_dead_letter(&a.key()).await.expect("remove");
    store
        .remove_dead_letter("no-such-letter")
        .await
        .expect("remove missing");
    let listed = store.dead_letters(10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, b.key());
}

async fn a_poison_event_fails_the_batch_for_good(backend: Backend) {
    let store = open_default(backend).await;
    let poison = event("poison", &"k".repeat(65));
    let error = store
        .write_batch(&[player("ana", 1), poison.clone(), event("fine", "coin")])
        .await
        .expect_err("a 65-byte kind violates the CHECK");
    assert!(!error.is_transient(), "poison, not an outage: {error}");
    // The batch is one transaction: nothing of it landed.
    assert_eq!(saved_version(&store, "ana").await, None);
    assert_eq!(store.count_events().await.expect("count"), 0);
    // And the poison can be set aside.
    store
        .add_dead_letter(&poison, &error.to_string(), 5, 1)
        .await
        .expect("dead letter");
    let empty = event("empty-kind", "");
    let error = store
        .write_batch(&[empty])
        .await
        .expect_err("an empty kind");
    assert!(!error.is_transient(), "{error}");
    // 64 bytes of multibyte characters is the limit, not 64 characters.
    write(&store, &[event("long", &"é".repeat(32))]).await;
    let error = store.write_batch(&[event("longer", &"é".repeat(33))]).await;
    assert!(error.is_err_and(|e| !e.is_transient()));
}

async fn numbers_above_bigint_are_refused(backend: Backend) {
    let store = open_default(backend).await;
    let error = store
        .write_batch(&[player("ana", 1 << 63)])
        .await
        .expect_err("out of range");
    assert!(
        matches!(
            error,
            StoreError::OutOfRange {
                field: "version",
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.is_transient());
    assert_eq!(saved_version(&store, "ana").await, None);
}

/// More rows than one statement may bind on either database (6 binds a
/// row: 5,461 rows on SQLite, 10,922 on PostgreSQL).
async fn a_large_batch_is_split_into_statements(backend: Backend) {
    let store = open_default(backend).await;
    let records: Vec<Record> = (0..12_000).map(|i| player(&format!("p{i}"), 1)).collect();
    write(&store, &records).await;
    let events: Vec<Record> = (0..10_000)
        .map(|i| event(&format!("e{i}"), "coin"))
        .collect();
    write(&store, &events).await;
    assert_eq!(saved_version(&store, "p0").await, Some(1));
    assert_eq!(saved_version(&store, "p11999").await, Some(1));
    assert_eq!(store.count_events().await.expect("count"), 10_000);
}

/// A restart connects to a database it already migrated.
async fn reconnecting_keeps_the_data(backend: Backend) {
    let store = open_default(backend).await;
    write(&store, &[player("ana", 4)]).await;
    store.ping().await.expect("ping");
    store.close().await;
    let error = store.ping().await.expect_err("closed");
    assert!(
        error.is_transient(),
        "a closed store keeps its records queued: {error}"
    );
    let again = Store::connect(&store.place.url()).await.expect("reconnect");
    assert_eq!(saved_version(&again, "ana").await, Some(4));
    again.close().await;
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    player_state_newer_wins,
    same_player_twice_in_a_batch_keeps_the_highest,
    events_are_written_once,
    checkpoints_keep_the_newest,
    dead_letters_add_list_remove,
    a_poison_event_fails_the_batch_for_good,
    numbers_above_bigint_are_refused,
    a_large_batch_is_split_into_statements,
    reconnecting_keeps_the_data,
);

#[tokio::test]
async fn postgres_refuses_a_nul_in_json_or_text_for_good() {
    let store = open_default(Backend::Postgres).await;
    let mut nul = event("nul-json", "coin");
    if let Record::Event(e) = &mut nul {
        e.payload = json!({ "name": "a\u{0}b" });
    }
    let error = store
        .write_batch(&[nul])
        .await
        .expect_err("jsonb has no NUL");
    assert!(!error.is_transient(), "{error}");

    let nul_name = player("a\u{0}b", 1);
    let error = store
        .write_batch(std::slice::from_ref(&nul_name))
        .await
        .expect_err("text has no NUL");
    assert!(!error.is_transient(), "{error}");
    // Its dead letter still goes in, the key escaped, the record intact.
    store
        .add_dead_letter(&nul_name, &error.to_string(), 5, 1)
        .await
        .expect("dead letter");
    let listed = store.dead_letters(10).await.expect("list");
    assert_eq!(listed[0].id, "player:arena:a\\0b:v1");
    assert_eq!(listed[0].record.as_ref(), Some(&nul_name));
}

#[tokio::test]
async fn a_database_that_is_not_there_is_a_transient_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let error = Store::connect(&url)
        .await
        .expect_err("nothing listens there");
    assert!(error.is_transient(), "worth a retry: {error:?}");
}

#[tokio::test]
async fn an_unknown_url_is_a_permanent_error() {
    let error = Store::connect("mysql://localhost/x")
        .await
        .expect_err("unsupported");
    assert!(matches!(error, StoreError::UnsupportedUrl(_)), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn an_in_memory_sqlite_store_works() {
    let store = Store::connect("sqlite::memory:").await.expect("memory");
    assert_eq!(store.backend(), "sqlite");
    store.write_batch(&[player("ana", 1)]).await.expect("write");
    assert_eq!(saved_version(&store, "ana").await, Some(1));
}
