//! Persistence end to end, on real databases (a SQLite file, a PostgreSQL
//! database of the test's own) and a real Redis: what a player earned
//! survives its leaving, a room reopens from its checkpoint, the store can
//! go away and come back without a tick waiting, poison records end up
//! among the dead letters, and records through the Redis Stream land
//! exactly once however often their worker is killed.

#[path = "common/coins_play.rs"]
mod coins_play;
mod common;
#[path = "common/postgres.rs"]
mod postgres_db;
#[path = "common/tcp_proxy.rs"]
mod tcp_proxy;

use std::sync::Arc;
use std::time::Duration;

use coins_play::*;
use common::*;
use postgres_db::TestDatabase;
use tessera_client::{Client, Hello};
use tessera_coins::Coins;
use tessera_coins::schema::{Coin, Score, Spot};
use tessera_server::admin::AdminToken;
use tessera_server::identity::{self, AuthMode, TokenRequest};
use tessera_server::persist::dead_letters;
use tessera_server::persist::record::{GameEvent, Record};
use tessera_server::persist::store::Store;
use tessera_server::persist::writer::{BatchWriter, RetryPolicy, Written};
use tessera_server::{Server, ServerConfig};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "a-persistence-test-token-secret-of-length";
const ADMIN: &str = "a-persistence-test-admin-token";

/// Where a test's database is: a SQLite file in the node's data dir, or a
/// PostgreSQL database of its own.
enum Db {
    Sqlite,
    Postgres(TestDatabase),
}

impl Db {
    async fn postgres() -> Self {
        Self::Postgres(TestDatabase::create().await)
    }

    /// The URL for `server`'s config; SQLite: the node's default file.
    fn url(&self, config: &ServerConfig) -> String {
        match self {
            Self::Sqlite => config.database_url(),
            Self::Postgres(db) => db.url.clone(),
        }
    }
}

/// A coins node that admits players by token and persists into `db`.
async fn coins_node(db: &Db, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let postgres = match db {
        Db::Sqlite => None,
        Db::Postgres(db) => Some(db.url.clone()),
    };
    start_games(vec![Arc::new(Coins)], "coins", move |c| {
        c.auth = AuthMode::Token;
        c.token_secret = Some(AdminToken::new(SECRET));
        c.admin_token = Some(AdminToken::new(ADMIN));
        c.database_url = postgres;
        tweak(c);
    })
    .await
}

fn as_player(room: &str, player: &str) -> Hello {
    let request = TokenRequest {
        player: player.into(),
        name: None,
        room: None,
        ttl_s: 600,
    };
    let mut hello = Hello::new(room);
    hello.token = Some(identity::issue(
        &AdminToken::new(SECRET),
        &request,
        identity::unix_now(),
    ));
    hello
}

async fn open_store(server: &Server, db: &Db) -> Store {
    let url = db.url(&server.state().config);
    Store::connect(&url)
        .await
        .expect("the test opens the store")
}

/// Polls `check` every 50 ms until it holds, failing after [`PATIENCE`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The points in a save of a coins player.
fn saved_points(state: &[u8]) -> u32 {
    let room = tessera_sim::Room::new(&Coins, tessera_sim::RoomConfig::default()).expect("room");
    let saved = room.decode_player_state(state).expect("a coins save");
    saved
        .get::<tessera_coins::Points>()
        .expect("points saved")
        .0
}

fn my_score(client: &Client) -> Option<Score> {
    client.me()?.get::<Score>()?.ok()
}

async fn points_and_events_survive_a_rejoin(db: Db) {
    let server = coins_node(&db, |_| {}).await;
    let mut ann = join_coins_as(&server, Transport::Ws, as_player("field", "ann")).await;
    until(&mut ann, PATIENCE, |c, _| nearest_coin(c).is_some()).await;
    let (_, _, total) = collect_nearest(&mut ann).await;
    ann.close().await;
    // Straight back, before the save can have reached the database.
    let mut back = join_coins_as(&server, Transport::Ws, as_player("field", "ann")).await;
    until(&mut back, PATIENCE, |c, _| {
        my_score(c) == Some(Score(total))
    })
    .await;
    back.close().await;

    let store = open_store(&server, &db).await;
    // Ann may have been saved on her interval before she scored; what she
    // had when she left comes last and wins.
    eventually("ann's save as she left is stored", || async {
        let saved = store.load_player("coins", "ann").await.expect("read");
        saved.is_some_and(|s| saved_points(&s.state) == total)
    })
    .await;
    let events = store.event_ids("coins").await.expect("events");
    assert_eq!(events.len(), 1, "one coin_collected event: {events:?}");
    // Later, once the room has closed: from the database.
    eventually("the room closes", || async {
        server.state().rooms.get("field").is_none()
    })
    .await;
    let mut later = join_coins_as(&server, Transport::Ws, as_player("field", "ann")).await;
    until(&mut later, PATIENCE, |c, _| {
        my_score(c) == Some(Score(total))
    })
    .await;
    // Someone else starts from nothing.
    let mut bob = join_coins_as(&server, Transport::Ws, as_player("field", "bob")).await;
    until(&mut bob, PATIENCE, |c, _| my_score(c).is_some()).await;
    assert_eq!(my_score(&bob), Some(Score(0)));
    server.shutdown().await;
}

#[tokio::test]
async fn points_and_events_survive_a_rejoin_sqlite() {
    points_and_events_survive_a_rejoin(Db::Sqlite).await;
}

#[tokio::test]
async fn points_and_events_survive_a_rejoin_postgres() {
    points_and_events_survive_a_rejoin(Db::postgres().await).await;
}

/// Where each coin a client knows is.
fn coins_seen(client: &Client) -> Vec<(u32, Spot)> {
    let mut coins: Vec<(u32, Spot)> = client
        .world()
        .iter()
        .filter(|e| e.get::<Coin>().is_some())
        .filter_map(|e| Some((e.id(), e.get::<Spot>()?.ok()?)))
        .collect();
    coins.sort_by_key(|(id, _)| *id);
    coins
}

/// Coins lie where the room's seeded generator put them: a room opened
/// afresh has them elsewhere, one restored from its checkpoint where they
/// were.
#[tokio::test]
async fn a_room_that_closed_reopens_from_its_checkpoint() {
    let db = Db::Sqlite;
    let server = coins_node(&db, |_| {}).await;
    let mut ann = join_coins_as(&server, Transport::Ws, as_player("meadow", "ann")).await;
    until(&mut ann, PATIENCE, |c, _| !coins_seen(c).is_empty()).await;
    let before = coins_seen(&ann);
    ann.close().await;
    let store = open_store(&server, &db).await;
    eventually("the room closes with a checkpoint", || async {
        server.state().rooms.get("meadow").is_none()
            && store
                .latest_checkpoint("coins", "meadow")
                .await
                .expect("read")
                .is_some()
    })
    .await;

    let mut back = join_coins_as(&server, Transport::Ws, as_player("meadow", "ann")).await;
    until(&mut back, PATIENCE, |c, _| {
        coins_seen(c).len() >= before.len()
    })
    .await;
    let after = coins_seen(&back);
    for coin in &before {
        assert!(
            after.contains(coin),
            "coin {coin:?} where it was: {after:?}"
        );
    }
    // A room of another name is a fresh one: its coins lie elsewhere.
    let mut other = join_coins_as(&server, Transport::Ws, as_player("elsewhere", "bob")).await;
    until(&mut other, PATIENCE, |c, _| !coins_seen(c).is_empty()).await;
    assert_ne!(coins_seen(&other), before);
    server.shutdown().await;
}

/// PostgreSQL goes away (connections reset, new ones refused) while a
/// player scores; the node keeps ticking, says it is not ready, and the
/// records land once the database is back.
#[tokio::test]
async fn records_wait_out_a_database_outage_and_ticks_do_not() {
    let db = TestDatabase::create().await;
    let upstream = "127.0.0.1:5432".parse().expect("addr");
    let mut proxy = tcp_proxy::TcpProxy::start(upstream).await;
    let through_proxy = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let url = through_proxy.clone();
    let server = start_games(vec![Arc::new(Coins)], "coins", move |c| {
        c.auth = AuthMode::Token;
        c.token_secret = Some(AdminToken::new(SECRET));
        c.admin_token = Some(AdminToken::new(ADMIN));
        c.database_url = Some(url);
    })
    .await;
    let mut ann = join_coins_as(&server, Transport::Ws, as_player("field", "ann")).await;
    until(&mut ann, PATIENCE, |c, _| nearest_coin(c).is_some()).await;

    proxy.cut();
    let (_, _, first) = collect_nearest(&mut ann).await;
    let (_, _, total) = collect_nearest(&mut ann).await;
    assert!(total > first);
    eventually("/ready says the database is gone", || {
        let server = &server;
        async move {
            let ready = http(server, "GET", "/ready", None).await;
            ready.status == 503 && ready.body.contains("database")
        }
    })
    .await;
    // Every tick of the room stayed short while its records could not be
    // written: none waited on the database (a wait is seconds).
    let rooms: tessera_server::admin::report::RoomList = serde_json::from_str(
        &admin_cli(&server, ADMIN, &["rooms", "--json"])
            .await
            .expect("rooms"),
    )
    .expect("json");
    let field = rooms
        .rooms
        .iter()
        .find(|r| r.name == "field")
        .expect("room");
    let period_ms = 1_000.0 / f64::from(server.state().config.tick_hz);
    assert!(
        field.tick_p99_ms < period_ms,
        "tick p99 {} ms during the outage",
        field.tick_p99_ms
    );
    ann.close().await;

    proxy.restore().await;
    let store = Store::connect(&db.url).await.expect("store");
    eventually("both events and ann's save land", || async {
        let events = store.count_events().await.unwrap_or(0);
        let saved = store.load_player("coins", "ann").await.ok().flatten();
        events == 2 && saved.is_some_and(|s| saved_points(&s.state) == total)
    })
    .await;
    server.shutdown().await;
}

fn event(id: &str, kind: &str) -> Record {
    Record::Event(GameEvent {
        id: id.into(),
        game: "coins".into(),
        room: "field".into(),
        kind: kind.into(),
        tick: 1,
        at_ms: 0,
        payload: serde_json::json!({ "id": id }),
    })
}

/// Ten events, the fifth one poison: its kind is longer than the store
/// takes (64 bytes).
fn events_with_poison() -> Vec<Record> {
    (0..10)
        .map(|i| {
            let kind = if i == 4 { "k".repeat(65) } else { "ok".into() };
            event(&format!("e{i}"), &kind)
        })
        .collect()
}

async fn a_poison_record_becomes_a_dead_letter_and_the_rest_land(url: &str) {
    let store = Arc::new(Store::connect(url).await.expect("store"));
    let policy = RetryPolicy {
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_attempts: 3,
    };
    let writer = BatchWriter::new(Arc::clone(&store), policy);
    let written = writer
        .write(&events_with_poison(), &CancellationToken::new())
        .await
        .expect("not stopped");
    assert_eq!(
        written,
        Written {
            stored: 9,
            dead_letters: 1
        }
    );
    assert_eq!(store.count_events().await.expect("count"), 9);
    let dead = store.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].id.as_str(), dead[0].attempts), ("event:e4", 3));
    assert!(!dead[0].error.is_empty());
    // Replayed, it is refused again and stays, its attempts counted.
    let replayed = dead_letters::replay(&store, 10).await.expect("replay");
    assert_eq!((replayed.written, replayed.refused), (0, 1));
    assert_eq!(store.dead_letters(10).await.expect("read")[0].attempts, 4);
}

#[tokio::test]
async fn a_poison_record_becomes_a_dead_letter_and_the_rest_land_sqlite() {
    let dir = std::env::temp_dir().join(format!("tessera-poison-{}", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("poison.db").display());
    a_poison_record_becomes_a_dead_letter_and_the_rest_land(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_poison_record_becomes_a_dead_letter_and_the_rest_land_postgres() {
    let db = TestDatabase::create().await;
    a_poison_record_becomes_a_dead_letter_and_the_rest_land(&db.url).await;
}

/// An operator sees the dead letters of a node (`tessera admin
/// dead-letters`), and replays them (`tessera worker
/// --replay-dead-letters`): the one that was only refused for a while
/// lands, the poison one stays.
#[tokio::test]
async fn operators_list_and_replay_dead_letters() {
    let db = Db::Sqlite;
    let server = coins_node(&db, |_| {}).await;
    let url = db.url(&server.state().config);
    let store = Store::connect(&url).await.expect("store");
    let poison = event("poison", &"k".repeat(65));
    let fine = event("fine-now", "ok");
    for record in [&poison, &fine] {
        store
            .add_dead_letter(record, "refused", 5, 1)
            .await
            .expect("dead letter");
    }
    let listed = admin_cli(&server, ADMIN, &["dead-letters"])
        .await
        .expect("dead-letters");
    assert!(
        listed.contains("event:poison") && listed.contains("event:fine-now"),
        "{listed}"
    );

    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["worker", "--replay-dead-letters", "--database-url", &url])
        .arg("--data-dir")
        .arg(&server.state().config.data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("tessera worker runs");
    let said = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{said}");
    assert!(said.contains("1 written, 1 refused again"), "{said}");
    let left = store.dead_letters(10).await.expect("read");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "event:poison");
    assert_eq!(store.event_ids("coins").await.expect("ids"), ["fine-now"]);
    server.shutdown().await;
}
