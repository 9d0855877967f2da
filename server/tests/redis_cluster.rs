//! Cluster mode on a Redis Cluster of three masters the test starts: the
//! room's keys sit in one slot (hash tags), its scripts run there, and
//! pub/sub reaches every node whichever master it was published on. The
//! redirect and the failover cases of `cluster.rs`, again.

#[path = "common/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "common/redis.rs"]
mod redis_server;

use cluster_nodes::*;
use common::*;
use redis_server::RedisCluster;
use tessera_client::Event;

#[tokio::test]
async fn a_join_through_any_node_lands_in_the_room_and_a_dead_nodes_room_moves() {
    let redis = RedisCluster::start();
    let (mut victim, survivors, opener, mut ann) = room_on_a_victim(&redis).await;
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
