//! Nodes of a cluster for the cluster tests: in-process servers and
//! `tessera` processes on a Redis of the test's own (one `redis-server`, or
//! a Redis Cluster), with short timings so that failures show within
//! seconds, and the waits those tests share.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::time::Duration;

use crate::common::*;
use crate::redis_server::SharedRedis;
use tessera_client::{Client, ClientConfig};
use tessera_server::Server;

pub const SECRET: &str = "a-cluster-test-token-secret-of-enough-length";

/// A node of the cluster on `redis`, with short timings so that failures
/// show within seconds.
pub async fn node(redis: &impl SharedRedis, id: &str) -> Server {
    start(PlacedArena::default(), clustered(redis, id)).await
}

/// The same, running the real arena (as the `tessera` binary does).
pub async fn arena_node(redis: &impl SharedRedis, id: &str) -> Server {
    start_arena(clustered(redis, id)).await
}

pub fn clustered(
    redis: &impl SharedRedis,
    id: &str,
) -> impl FnOnce(&mut tessera_server::ServerConfig) {
    let url = redis.url();
    let redis_cluster = redis.is_cluster();
    let id = id.to_owned();
    move |c| {
        c.redis_url = Some(url);
        c.redis_cluster = redis_cluster;
        c.node_id = Some(id);
        c.token_secret = Some(tessera_server::admin::AdminToken::new(SECRET));
        c.heartbeat_ms = 200;
        c.node_ttl_ms = 1_000;
        c.lease_ms = 1_500;
        c.seat_ttl_ms = 1_500;
        c.redis_timeout_ms = 500;
        c.admin_token = Some(tessera_server::admin::AdminToken::new(ADMIN_TOKEN));
    }
}

pub const ADMIN_TOKEN: &str = "a-cluster-test-admin-token";

pub async fn admin_json<T: serde::de::DeserializeOwned>(node: &Server, args: &[&str]) -> T {
    let mut args = args.to_vec();
    args.push("--json");
    let out = admin_cli(node, ADMIN_TOKEN, &args)
        .await
        .unwrap_or_else(|e| panic!("tessera admin {args:?}: {e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub async fn three_nodes(redis: &impl SharedRedis) -> [Server; 3] {
    let nodes = [
        node(redis, "n1").await,
        node(redis, "n2").await,
        node(redis, "n3").await,
    ];
    registered(redis, 3).await;
    nodes
}

/// Waits until `count` nodes are in the registry, and for one more
/// heartbeat, so that each has read the others.
pub async fn registered(redis: &impl SharedRedis, count: usize) {
    eventually(&format!("{count} nodes registered"), || {
        redis.cli(&["ZCARD", "tessera:{nodes}"]) == count.to_string()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Waits until `done` holds (checked every 20 ms), failing after 10 s.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node of `nodes` that is not `node`.
pub fn other_than<'a>(nodes: &'a [Server], node: &Server) -> &'a Server {
    nodes
        .iter()
        .find(|n| n.ws_addr() != node.ws_addr())
        .expect("another node")
}

pub fn node_id(node: &Server) -> String {
    node.state()
        .cluster
        .as_ref()
        .expect("clustered")
        .node_id
        .clone()
}

pub fn config() -> ClientConfig {
    ClientConfig::default().ping_interval(Duration::from_millis(200))
}

pub async fn join_via(node: &Server, room: &str, name: &str) -> Client {
    Client::connect_with(&url(node), hello(room, name, 0.0, 0.0), config())
        .await
        .expect("joins through the cluster")
}

pub async fn wait_for_host<'a>(nodes: &'a [Server], room: &str, players: usize) -> &'a Server {
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    loop {
        if let Some(n) = nodes.iter().find(|n| {
            n.state()
                .rooms
                .get(room)
                .is_some_and(|h| h.players() == players)
        }) {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a node hosts {room} with {players} players"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn sees(client: &Client, name: &str) -> bool {
    client.world().iter().any(|entity| {
        entity
            .get::<tessera_client::protocol::arena::Name>()
            .and_then(Result::ok)
            .is_some_and(|n| n.0 == name)
    })
}

/// A node run as the `tessera` binary, to be killed with SIGKILL.
pub struct ProcessNode {
    child: std::process::Child,
    pub ws: String,
    data_dir: std::path::PathBuf,
}

impl ProcessNode {
    pub fn start(redis: &impl SharedRedis, id: &str) -> Self {
        Self::start_with(redis, id, &[])
    }

    /// The same, with `env` (`TESSERA_*` settings) on top.
    pub fn start_with(redis: &impl SharedRedis, id: &str, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let data_dir = std::env::temp_dir().join(format!(
            "tessera-cluster-{id}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .args(["--ws-addr", "127.0.0.1:0", "--quic-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(["--redis-url", &redis.url(), "--node-id", id])
            .args(["--token-secret", SECRET])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("TESSERA_REDIS_CLUSTER", redis.is_cluster().to_string())
            .env("TESSERA_HEARTBEAT_MS", "200")
            .env("TESSERA_NODE_TTL_MS", "1000")
            .env("TESSERA_LEASE_MS", "1500")
            .env("TESSERA_SEAT_TTL_MS", "1500")
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        // Reads to the end, so that the node never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let ws = loop {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the node says it is listening");
            if line.contains("tessera is listening") {
                let value: serde_json::Value = serde_json::from_str(&line).expect("json");
                let addr = value["ws"].as_str().expect("ws address").to_owned();
                break format!("ws://{addr}");
            }
        };
        Self {
            child,
            ws,
            data_dir,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A `tessera` process `a-victim` and two in-process survivors on `redis`,
/// running the arena; room `phoenix` opened on the victim (a join through a
/// node as idle as any other stays there) by a first client, and a second
/// client that joined it through a survivor, and was redirected. The
/// clients rejoin afresh when their room's node is gone.
pub async fn room_on_a_victim(
    redis: &impl SharedRedis,
) -> (ProcessNode, [Server; 2], Client, Client) {
    let victim = ProcessNode::start(redis, "a-victim");
    let survivors = [arena_node(redis, "n2").await, arena_node(redis, "n3").await];
    registered(redis, 3).await;
    let config = config()
        .rejoin_if_resume_fails(true)
        .reconnect_attempts(20)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500));
    let opener = Client::connect_with(
        &victim.ws,
        tessera_client::Hello::new("phoenix"),
        config.clone(),
    )
    .await
    .expect("opens the room");
    let ann = Client::connect_with(
        &url(&survivors[0]),
        tessera_client::Hello::new("phoenix"),
        config,
    )
    .await
    .expect("joins through a survivor");
    (victim, survivors, opener, ann)
}
