//! Records through the Redis Stream to PostgreSQL, with the worker
//! process killed (SIGKILL) at three random points and started again:
//! under its own name (it takes back what it had read), then under new
//! names (the others' pending entries are claimed after the idle time);
//! the second kill comes while the database is away, so that its worker
//! dies holding entries it read and could not write. In
//! the end every event is in the database exactly once, every player has
//! its latest version, and nothing is left pending in the stream.

#[path = "common/postgres.rs"]
mod postgres_db;
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/tcp_proxy.rs"]
mod tcp_proxy;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postgres_db::TestDatabase;
use redis_server::RedisServer;
use tessera_server::cluster::conn::RedisLink;
use tessera_server::persist::queue;
use tessera_server::persist::record::{GameEvent, PlayerState, Record};
use tessera_server::persist::store::Store;
use tessera_server::persist::stream::{self, StreamSpec};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 7_000;
const SAVES: usize = 3_000;
const PLAYERS: usize = 100;
const CHUNKS: usize = 20;

/// A `tessera worker` process.
struct Worker {
    child: Child,
    data_dir: std::path::PathBuf,
}

impl Worker {
    fn start(redis: &RedisServer, database: &str, consumer: &str) -> Self {
        let data_dir = std::env::temp_dir().join(format!(
            "tessera-worker-{consumer}-{}-{}",
            std::process::id(),
            RandomState::new().hash_one(consumer) % 1_000_000
        ));
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let log = std::fs::File::create(data_dir.join("worker.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("worker")
            .args(["--redis-url", &redis.url(), "--database-url", database])
            .args(["--consumer", consumer])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("TESSERA_PERSIST_CLAIM_IDLE_MS", "1000")
            .env("TESSERA_LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the worker starts");
        Self { child, data_dir }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        } else {
            eprintln!("worker log kept in {}", self.data_dir.display());
        }
    }
}

/// The records, in the order they are appended: events with unique ids,
/// and saves of `PLAYERS` players whose versions grow.
fn records() -> Vec<Record> {
    let mut out = Vec::with_capacity(EVENTS + SAVES);
    let mut saves = 0;
    for i in 0..EVENTS + SAVES {
        if i % 10 < 3 && saves < SAVES {
            let player = saves % PLAYERS;
            out.push(Record::PlayerState(PlayerState {
                game: "stream-test".into(),
                player: format!("p{player}"),
                version: saves as u64 + 1,
                room: "r".into(),
                saved_at_ms: 0,
                state: (saves as u32).to_be_bytes().to_vec(),
            }));
            saves += 1;
        } else {
            out.push(Record::Event(GameEvent {
                id: format!("e{}", out.len() - saves),
                game: "stream-test".into(),
                room: "r".into(),
                kind: "tested".into(),
                tick: i as u32,
                at_ms: 0,
                payload: serde_json::json!({ "i": i }),
            }));
        }
    }
    out
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_land_exactly_once_though_their_worker_is_killed_three_times() {
    let redis = RedisServer::start();
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url).await.expect("store");
    let records = records();
    let mut latest: HashMap<String, u64> = HashMap::new();
    for r in &records {
        if let Record::PlayerState(p) = r {
            latest.insert(p.player.clone(), p.version);
        }
    }

    // The node's side: the queue and its appender, as a node runs them.
    let conn = RedisLink::open(&redis.url(), false, Duration::from_secs(2))
        .await
        .expect("redis");
    let (sink, queue) = queue::channel(EVENTS + SAVES);
    let (finish, abort) = (CancellationToken::new(), CancellationToken::new());
    let appender = tokio::spawn(stream::append(
        conn,
        StreamSpec::new("tessera"),
        queue,
        Duration::from_secs(2),
        finish.clone(),
        abort.clone(),
    ));

    // Three distinct chunks after which the worker is killed.
    let seed = RandomState::new().hash_one("kill points");
    let mut kill_after: Vec<usize> = Vec::new();
    let mut n = seed;
    while kill_after.len() < 3 {
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let chunk = 1 + (n >> 33) as usize % (CHUNKS - 2);
        if !kill_after.contains(&chunk) {
            kill_after.push(chunk);
        }
    }
    // The workers reach the database through a proxy the test can cut.
    let mut proxy = tcp_proxy::TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let database = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let names = ["w1", "w1", "w2", "w3"];
    let mut restarts = 0;
    let mut worker = Worker::start(&redis, &database, names[0]);
    let per_chunk = records.len() / CHUNKS;
    let pending = || {
        let summary = redis.cli(&["XPENDING", "tessera:{persist}:records", "tessera-workers"]);
        summary
            .lines()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for (i, chunk) in records.chunks(per_chunk).enumerate() {
        // The second kill comes while the database is away: the worker
        // has read entries it cannot write, and they stay pending.
        let cut = kill_after.get(1) == Some(&i);
        if cut {
            // Only a worker that has opened the database holds what it
            // reads: one still starting reads nothing until it can write.
            let offered = records[..i * per_chunk]
                .iter()
                .filter(|r| matches!(r, Record::Event(_)))
                .count();
            eventually("the worker has written what came before", || async {
                pending() == 0 && store.count_events().await.unwrap_or(0) as usize == offered
            })
            .await;
            proxy.cut();
        }
        for record in chunk {
            assert!(sink.offer(record.clone()), "the queue takes every record");
        }
        if cut {
            eventually("the worker holds entries it cannot write", || async {
                pending() > 0
            })
            .await;
        } else {
            // Let the worker get into the chunk before it is killed.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        if kill_after.contains(&i) {
            worker.kill();
            if cut {
                proxy.restore().await;
            }
            restarts += 1;
            worker = Worker::start(&redis, &database, names[restarts]);
        }
    }
    assert_eq!(restarts, 3, "killed at chunks {kill_after:?} (seed {seed})");
    finish.cancel();
    appender.await.expect("the appender drains the queue");

    eventually("every event is written", || async {
        store.count_events().await.unwrap_or(0) as usize == EVENTS
    })
    .await;
    let ids = store.event_ids("stream-test").await.expect("ids");
    assert_eq!(ids.len(), EVENTS, "each event once (seed {seed})");
    eventually("every player has its latest version", || async {
        for (player, version) in &latest {
            let saved = store
                .load_player("stream-test", player)
                .await
                .ok()
                .flatten();
            if saved.map(|s| s.version) != Some(*version) {
                return false;
            }
        }
        true
    })
    .await;
    eventually("nothing is left pending in the stream", || async {
        let pending = redis.cli(&["XPENDING", "tessera:{persist}:records", "tessera-workers"]);
        pending.lines().next() == Some("0")
    })
    .await;
    assert_eq!(redis.cli(&["XLEN", "tessera:{persist}:records"]), "0");
    abort.cancel();
}
