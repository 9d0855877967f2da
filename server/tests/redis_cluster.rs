//! Cluster mode on a Redis Cluster of three masters the test starts: the
//! room's keys sit in one slot (hash tags), its scripts run there, and
//! pub/sub reaches every node whichever master it was published on. The
//! redirect and the failover cases of `cluster.rs`, again.

#[path = "common/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use cluster_nodes::*;
use common::*;
use redis_server::RedisCluster;
use tessera_client::{Client, Event, Hello};

#[tokio::test]
async fn a_join_through_any_node_lands_in_the_room_and_a_dead_nodes_room_moves() {
    let redis = RedisCluster::start();
    let mut victim = ProcessNode::start(&redis, "a-victim");
    let survivors = [
        arena_node(&redis, "n2").await,
        arena_node(&redis, "n3").await,
    ];
    registered(&redis, 3).await;
    // The room opens on the victim; ann joins it through a survivor, and
    // is redirected.
    let config = config()
        .rejoin_if_resume_fails(true)
        .reconnect_attempts(20)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500));
    let opener = Client::connect_with(&victim.ws, Hello::new("phoenix"), config.clone())
        .await
        .expect("opens the room");
    let mut ann = Client::connect_with(&url(&survivors[0]), Hello::new("phoenix"), config)
        .await
        .expect("joins through a survivor");
    assert_eq!(ann.node_url(), victim.ws, "redirected to the room's node");
    assert_eq!(
        redis.cli(&["HGET", "tessera:{room:phoenix}:lease", "node"]),
        "a-victim"
    );
    // The admin API answers through any node (pub/sub across masters).
    let answer = admin_cli(&survivors[1], ADMIN_TOKEN, &["room", "phoenix", "--json"])
        .await
        .expect("the victim answers through n3");
    assert!(answer.contains("\"players\""), "{answer}");
    victim.kill();
    drop(opener);
    until(&mut ann, 30 * SECOND, |_, e| matches!(e, Event::Welcome(_))).await;
    wait_for_host(&survivors, "phoenix", 1).await;
}
