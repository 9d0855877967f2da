//! A busy room's node is killed (SIGKILL) in a cluster whose nodes share a
//! PostgreSQL database: the next join on a survivor restores the room from
//! its last checkpoint, and the dead node's clients come back into it by
//! resuming, each into its own entity, where the checkpoint had it.

#[path = "common/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "common/postgres.rs"]
mod postgres_db;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use cluster_nodes::*;
use common::*;
use postgres_db::TestDatabase;
use redis_server::RedisServer;
use tessera_client::protocol::arena as wire;
use tessera_client::{Client, Event, Hello, Welcome};
use tessera_server::persist::store::Store;

/// Where `client` sees entity `id`.
fn position(client: &Client, id: u32) -> Option<wire::Position> {
    client.world().get(id)?.get::<wire::Position>()?.ok()
}

async fn resumed(client: &mut Client) -> Welcome {
    match until(client, 60 * SECOND, |_, e| matches!(e, Event::Resumed(_))).await {
        Event::Resumed(welcome) => welcome,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_room_comes_back_from_its_checkpoint_and_its_players_resume() {
    let redis = RedisServer::start();
    let db = TestDatabase::create().await;
    let persisting = [
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_CHECKPOINT_INTERVAL_S", "1"),
    ];
    let mut victim = ProcessNode::start_with(&redis, "a-victim", &persisting);
    let in_cluster = clustered(&redis, "n2");
    let database = db.url.clone();
    let survivor = start_arena(move |c| {
        in_cluster(c);
        c.database_url = Some(database);
        c.checkpoint_interval_s = 1;
    })
    .await;
    registered(&redis, 2).await;

    // The room opens on the victim; Ann and Bob enter through the survivor
    // and are sent there.
    let opener = Client::connect_with(&victim.ws, Hello::new("phoenix"), config())
        .await
        .expect("opens the room");
    let resuming = config()
        .reconnect_attempts(60)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500));
    let entry = url(&survivor);
    let join = |name: &str, x: f32| {
        let mut hello = Hello::new("phoenix");
        let options = wire::JoinOptions::named(name).near(wire::SpawnNear::Point(x, 500.0));
        hello.options = tessera_client::protocol::RawValue::encode(&options).expect("options");
        Client::connect_with(&entry, hello, resuming.clone())
    };
    let mut ann = join("ann", 500.0).await.expect("ann joins");
    let mut bob = join("bob", 550.0).await.expect("bob joins");
    assert_ne!(ann.node_url(), url(&survivor), "ann was sent to the victim");
    let (ann_id, bob_id) = (ann.welcome().entity_id, bob.welcome().entity_id);
    until(&mut ann, PATIENCE, |c, _| position(c, bob_id).is_some()).await;
    until(&mut bob, PATIENCE, |c, _| position(c, ann_id).is_some()).await;
    let bob_was = position(&ann, bob_id);
    let joined_at = tessera_server::persist::unix_ms();

    let store = Store::connect(&db.url).await.expect("store");
    let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
    loop {
        let checkpoint = store
            .latest_checkpoint("arena", "phoenix")
            .await
            .expect("read");
        if checkpoint.is_some_and(|c| c.taken_at_ms > joined_at) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a checkpoint with both players"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    victim.kill();
    drop(opener);
    // Each client finds its node gone, goes back through the node it
    // entered by, and resumes into the room the survivor restored.
    let ann_back = resumed(&mut ann).await;
    let bob_back = resumed(&mut bob).await;
    assert_eq!(ann_back.entity_id, ann_id, "ann is in her own entity");
    assert_eq!(bob_back.entity_id, bob_id, "bob is in his own entity");
    assert_eq!(ann.node_url(), url(&survivor));
    until(&mut ann, PATIENCE, |c, _| position(c, bob_id).is_some()).await;
    assert_eq!(
        position(&ann, bob_id),
        bob_was,
        "bob is where the checkpoint had him"
    );
    let hosted = survivor
        .state()
        .rooms
        .get("phoenix")
        .expect("the survivor hosts it");
    assert!(hosted.players() >= 2);
    survivor.shutdown().await;
}
