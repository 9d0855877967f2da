//! Cluster mode against a real `redis-server` of the test's own, with
//! three real nodes on loopback: joins through any node land in the one
//! room, leases fence out a node that lost its room, seats expire, and the
//! rooms keep running while Redis is away.

#[path = "common/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use cluster_nodes::*;
use common::*;
use redis_server::RedisServer;
use tessera_client::protocol::arena::Walk;
use tessera_client::{Client, ErrorCode, Event, Hello, KickReason};
use tessera_protocol::ServerMsg;
use tessera_server::Server;

#[tokio::test]
async fn a_join_through_a_node_that_does_not_host_the_room_lands_in_it() {
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    let mut ann = join_via(&nodes[0], "lobby", "ann").await;
    let owner = wait_for_host(&nodes, "lobby", 1).await;
    let other = other_than(&nodes, owner);
    let mut bob = join_via(other, "lobby", "bob").await;
    wait_for_host(&nodes, "lobby", 2).await;
    until(&mut bob, 5 * SECOND, |c, _| sees(c, "ann")).await;
    until(&mut ann, 5 * SECOND, |c, _| sees(c, "bob")).await;
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n.state().rooms.get("lobby").is_some())
            .count(),
        1,
        "one node hosts the room"
    );
}

#[tokio::test]
async fn two_clients_opening_one_new_room_through_two_nodes_meet_in_one_room() {
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    for trial in 0..20 {
        let room = format!("race-{trial}");
        let (a, b) = tokio::join!(
            join_via(&nodes[trial % 3], &room, "a"),
            join_via(&nodes[(trial + 1) % 3], &room, "b"),
        );
        wait_for_host(&nodes, &room, 2).await;
        let hosts = nodes
            .iter()
            .filter(|n| n.state().rooms.get(&room).is_some_and(|h| h.players() > 0))
            .count();
        assert_eq!(hosts, 1, "trial {trial}: one room");
        drop((a, b));
    }
}

#[tokio::test]
async fn a_seat_that_is_never_used_expires_and_frees_its_place() {
    let redis = RedisServer::start();
    let small = |id: &'static str| {
        let cluster = clustered(&redis, id);
        start(PlacedArena::default(), move |c| {
            cluster(c);
            c.max_players_per_room = 2;
        })
    };
    let nodes = [small("n1").await, small("n2").await];
    let _ann = join_via(&nodes[0], "duo", "ann").await;
    let owner = wait_for_host(&nodes, "duo", 1).await;
    let other = other_than(&nodes, owner);
    // Seats are counted against the players the owner last published
    // under its lease (at each refresh).
    eventually("the owner publishes its players", || {
        redis.cli(&["HGET", "tessera:{room:duo}:lease", "players"]) == "1"
    })
    .await;
    // A client that takes the redirect and never follows it: its seat
    // holds the last place.
    let (url, _seat) = redirect_of(other, "duo").await;
    assert!(url.starts_with("ws://"), "{url}");
    let full = Client::connect_with(&common::url(other), hello("duo", "cat", 0.0, 0.0), config())
        .await
        .expect_err("the kept place counts toward the cap");
    assert_eq!(full.error_code(), Some(ErrorCode::RoomFull), "{full:?}");
    // Once the seat expires, the place is free again.
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let _dan = loop {
        match Client::connect_with(&common::url(other), hello("duo", "dan", 0.0, 0.0), config())
            .await
        {
            Ok(dan) => break dan,
            Err(e) => {
                assert_eq!(e.error_code(), Some(ErrorCode::RoomFull), "{e:?}");
                assert!(tokio::time::Instant::now() < deadline, "the seat expires");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for_host(&nodes, "duo", 2).await;
}

/// Sends a `Hello` for `room` to `node` over a bare connection and returns
/// the `Redirect` it answers with.
async fn redirect_of(node: &Server, room: &str) -> (String, String) {
    match first_answer(node, hello(room, "ghost", 0.0, 0.0)).await {
        ServerMsg::Redirect { url, seat } => (url, seat),
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// What `node` first answers `hello` with, over a bare WebSocket (no
/// client that would follow a redirect or retry).
async fn first_answer(node: &Server, hello: Hello) -> ServerMsg {
    bare_join(&url(node), hello).await.0
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `hello` to `url` over a bare WebSocket and returns the first
/// answer, with the connection still open.
async fn bare_join(url: &str, hello: Hello) -> (ServerMsg, Ws) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let hello = tessera_protocol::ClientMsg::Hello(hello).encode();
    ws.send(Message::Binary(hello.into())).await.expect("sends");
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(frame) = message {
            return (ServerMsg::decode(&frame).expect("decodes"), ws);
        }
    }
    panic!("closed without an answer")
}

#[tokio::test]
async fn a_node_whose_lease_was_taken_closes_the_room_with_room_moved() {
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    let mut ann = join_via(&nodes[0], "stolen", "ann").await;
    let owner = wait_for_host(&nodes, "stolen", 1).await;
    // Behind the owner's back: the lease is deleted, and another node takes
    // the room under a newer epoch.
    let thief = other_than(&nodes, owner);
    let thief_id = node_id(thief);
    redis.cli(&["DEL", "tessera:{room:stolen}:lease"]);
    let epoch = redis.cli(&["INCR", "tessera:{room:stolen}:epoch"]);
    redis.cli(&[
        "HSET",
        "tessera:{room:stolen}:lease",
        "node",
        &thief_id,
        "epoch",
        &epoch,
        "players",
        "0",
    ]);
    redis.cli(&["PEXPIRE", "tessera:{room:stolen}:lease", "10000"]);
    let kicked = until(&mut ann, 10 * SECOND, |_, e| {
        matches!(e, Event::Kicked { .. })
    })
    .await;
    let Event::Kicked { reason, .. } = kicked else {
        unreachable!()
    };
    assert_eq!(reason, KickReason::RoomMoved as u16);
}

#[tokio::test]
async fn rooms_keep_ticking_while_redis_is_down_and_joins_work_once_it_is_back_empty() {
    let mut redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    let mut ann = join_via(&nodes[0], "steady", "ann").await;
    let owner = wait_for_host(&nodes, "steady", 1).await;
    // Walking, ann's entity changes every tick, and so a delta comes every
    // tick (an idle player gets one a second).
    input_acked(&mut ann, Walk { dx: 1, dy: 0 }).await;
    redis.kill();
    // Fifty ticks (five seconds) without Redis: the room sends the delta of
    // every one of them, none skipped.
    let ticks = delta_ticks(&next_deltas(&mut ann, 50).await);
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "ticks without a delta: {ticks:?}"
    );
    // A join that needs the cluster is refused at once, never left hanging.
    let other = other_than(&nodes, owner);
    let refused = Client::connect_with(&url(other), hello("fresh", "x", 0.0, 0.0), config())
        .await
        .expect_err("no cluster, no new room");
    assert_eq!(
        refused.error_code(),
        Some(ErrorCode::ClusterUnavailable),
        "{refused:?}"
    );
    // Redis returns empty: the nodes register again and re-assert their
    // leases, and a join of the running room through another node works.
    redis.restart();
    let deadline = tokio::time::Instant::now() + 15 * SECOND;
    let mut bob = loop {
        match Client::connect_with(&url(other), hello("steady", "bob", 0.0, 0.0), config()).await {
            Ok(bob) => break bob,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "joins work again: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for_players(owner, "steady", 2).await;
    until(&mut bob, 5 * SECOND, |c, _| sees(c, "ann")).await;
}

#[tokio::test]
async fn a_seat_on_a_node_outside_any_cluster_is_refused() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut hello = hello("solo", "ann", 0.0, 0.0);
    hello.seat = Some(format!("1.{}", "ab".repeat(16)));
    let answer = first_answer(&server, hello).await;
    assert_eq!(
        answer,
        ServerMsg::error(
            ErrorCode::SeatInvalid,
            "this node is not part of a cluster and issues no seats; join again without the seat"
        )
    );
}

#[tokio::test]
async fn after_kill_9_of_its_node_a_room_is_recreated_on_a_survivor() {
    let redis = RedisServer::start();
    let (mut victim, survivors, opener, mut ann) = room_on_a_victim(&redis).await;
    assert_eq!(
        redis.cli(&["HGET", "tessera:{room:phoenix}:lease", "node"]),
        "a-victim",
        "the room is on the victim"
    );
    assert!(
        ann.node_url() != url(&survivors[0]),
        "ann was redirected to the victim"
    );
    assert!(!victim.ws.is_empty());
    victim.kill();
    drop(opener);
    // The client finds its node gone, goes back through the node it
    // entered by, and is welcomed into the room recreated on a survivor.
    until(&mut ann, 30 * SECOND, |_, e| matches!(e, Event::Welcome(_))).await;
    wait_for_host(&survivors, "phoenix", 1).await;
    // The dead node's entry is gone from the registry.
    eventually("the dead node's entry expires", || {
        redis.cli(&["GET", "tessera:{node:a-victim}"]).is_empty()
    })
    .await;
    // And the room list names the room on its new node only.
    let rooms: tessera_server::admin::report::RoomList =
        admin_json(&survivors[0], &["rooms"]).await;
    let phoenix: Vec<_> = rooms.rooms.iter().filter(|r| r.name == "phoenix").collect();
    assert!(
        phoenix
            .iter()
            .all(|r| r.node.as_deref() != Some("a-victim")),
        "{phoenix:?}"
    );
}

#[tokio::test]
async fn a_broadcast_reaches_the_players_of_every_node() {
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    // Three rooms, spread over the nodes by placement.
    let mut players = Vec::new();
    for (i, room) in ["b1", "b2", "b3"].into_iter().enumerate() {
        players.push(join_via(&nodes[i], room, room).await);
        wait_for_host(&nodes, room, 1).await;
    }
    let hosts: std::collections::BTreeSet<_> = ["b1", "b2", "b3"]
        .iter()
        .filter_map(|room| {
            nodes
                .iter()
                .position(|n| n.state().rooms.get(room).is_some())
        })
        .collect();
    assert!(hosts.len() > 1, "placement spread the rooms: {hosts:?}");
    let sent: tessera_server::admin::report::BroadcastReport =
        admin_json(&nodes[0], &["broadcast", "maintenance at noon"]).await;
    assert_eq!(sent.nodes, 3);
    for player in &mut players {
        until(
            player,
            5 * SECOND,
            |_, e| matches!(e, Event::Chat { from: 0, text } if text == "maintenance at noon"),
        )
        .await;
    }
}

#[tokio::test]
async fn nodes_rooms_room_and_kick_work_through_a_node_that_does_not_host_the_room() {
    use tessera_server::admin::report::{KickReport, NodeList, RoomDetail, RoomList};
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    let mut ann = join_via(&nodes[0], "watched", "ann").await;
    let owner = wait_for_host(&nodes, "watched", 1).await;
    let other = other_than(&nodes, owner);
    let owner_id = node_id(owner);

    let list: NodeList = admin_json(other, &["nodes"]).await;
    assert!(list.clustered);
    let ids: Vec<_> = list.nodes.iter().map(|n| n.info.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2", "n3"]);
    assert!(list.nodes.iter().all(|n| n.info.state == "active"));

    // The room list is the cluster's, with each room's node (published at
    // the owner's next heartbeat).
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    loop {
        let rooms: RoomList = admin_json(other, &["rooms"]).await;
        if let Some(room) = rooms.rooms.iter().find(|r| r.name == "watched") {
            assert_eq!(room.node.as_deref(), Some(owner_id.as_str()));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room is listed: {rooms:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let detail: RoomDetail = admin_json(other, &["room", "watched"]).await;
    assert_eq!(detail.players.len(), 1);
    let session = detail.players[0].session.to_string();
    let kicked: KickReport =
        admin_json(other, &["kick", "watched", &session, "--reason", "testing"]).await;
    assert_eq!(kicked.reason, "testing");
    let event = until(&mut ann, 5 * SECOND, |_, e| {
        matches!(e, Event::Kicked { .. })
    })
    .await;
    assert!(
        matches!(&event, Event::Kicked { reason, message } if *reason == KickReason::Admin as u16 && message == "testing"),
        "{event:?}"
    );
    let missing = admin_cli(other, ADMIN_TOKEN, &["room", "nowhere"])
        .await
        .expect_err("no such room");
    assert!(
        missing.line().contains("in the cluster"),
        "{}",
        missing.line()
    );

    // Drain one node through another: it shows as draining, and new rooms
    // go elsewhere.
    admin_cli(other, ADMIN_TOKEN, &["drain", "--node", &owner_id])
        .await
        .expect("drains");
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    loop {
        let list: NodeList = admin_json(other, &["nodes"]).await;
        let drained = list
            .nodes
            .iter()
            .find(|n| n.info.id == owner_id)
            .expect("listed");
        if drained.info.state == "draining" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "shows as draining");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..4 {
        let room = format!("after-drain-{i}");
        let _client = join_via(other, &room, "p").await;
        let host = wait_for_host(&nodes, &room, 1).await;
        assert_ne!(
            host.ws_addr(),
            owner.ws_addr(),
            "a draining node takes no new rooms"
        );
    }
}

/// The test arena plus a global chat across rooms: an action is a line,
/// which the room publishes on the channel `global`; every room that hears
/// it tells its players, as a game event.
#[derive(Debug, Clone, Copy)]
struct GlobalChat;

impl tessera_sim::Game for GlobalChat {
    fn name(&self) -> &'static str {
        "global-chat"
    }

    fn setup(&self, room: &mut tessera_sim::RoomBuilder<'_>) {
        PlacedArena::default().setup(room);
        room.on_action(|world, _, line: String| {
            let _ = world
                .resource_mut::<tessera_sim::GameEvents>()
                .publish("global", &line);
        });
        room.on_channel("global", |world, line: String| {
            let _ = world
                .resource_mut::<tessera_sim::GameEvents>()
                .to_everyone(&line);
        });
    }
}

async fn global_chat_node(tweak: impl FnOnce(&mut tessera_server::ServerConfig)) -> Server {
    start_games(vec![std::sync::Arc::new(GlobalChat)], "global-chat", tweak).await
}

async fn hears(client: &mut Client, line: &str) {
    until(client, 5 * SECOND, |_, e| {
        e.game_event::<String>().and_then(Result::ok).as_deref() == Some(line)
    })
    .await;
}

#[tokio::test]
async fn a_game_channel_reaches_the_rooms_of_every_node_that_subscribe() {
    let redis = RedisServer::start();
    let nodes = [
        global_chat_node(clustered(&redis, "n1")).await,
        global_chat_node(clustered(&redis, "n2")).await,
    ];
    registered(&redis, 2).await;
    // Each joins through its own node, which keeps the new room.
    let mut ann = join_via(&nodes[0], "east", "ann").await;
    let mut bob = join_via(&nodes[1], "west", "bob").await;
    wait_for_host(&nodes, "east", 1).await;
    wait_for_host(&nodes, "west", 1).await;
    assert!(nodes[0].state().rooms.get("east").is_some());
    assert!(nodes[1].state().rooms.get("west").is_some());
    ann.send_action("hello, west").await.expect("sends");
    hears(&mut bob, "hello, west").await;
    hears(&mut ann, "hello, west").await;
}

#[tokio::test]
async fn a_game_channel_reaches_the_other_rooms_of_a_node_on_its_own() {
    let node = global_chat_node(|_| {}).await;
    let mut ann = join_via(&node, "east", "ann").await;
    let mut bob = join_via(&node, "west", "bob").await;
    bob.send_action("hello, east").await.expect("sends");
    hears(&mut ann, "hello, east").await;
    hears(&mut bob, "hello, east").await;
}

#[tokio::test]
async fn a_resume_token_brought_to_another_node_resumes_the_player_on_the_rooms_node() {
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    let _ann = join_via(&nodes[0], "again", "ann").await;
    let owner = wait_for_host(&nodes, "again", 1).await;
    let other = other_than(&nodes, owner);
    // Bob comes through another node, follows the redirect by hand, joins,
    // and loses his connection without a close.
    let (redirect, _) = bare_join(&url(other), hello("again", "bob", 0.0, 0.0)).await;
    let ServerMsg::Redirect {
        url: owner_url,
        seat,
    } = redirect
    else {
        panic!("expected a redirect, got {redirect:?}");
    };
    let mut with_seat = hello("again", "bob", 0.0, 0.0);
    with_seat.seat = Some(seat);
    let (welcome, ws) = bare_join(&owner_url, with_seat).await;
    let ServerMsg::Welcome(welcome) = welcome else {
        panic!("expected a welcome, got {welcome:?}");
    };
    drop(ws);
    // His client brings the resume token back through yet another node.
    let third = nodes
        .iter()
        .find(|n| n.ws_addr() != owner.ws_addr() && n.ws_addr() != other.ws_addr())
        .expect("a third node");
    let mut back = hello("again", "bob", 0.0, 0.0);
    back.resume = welcome.resume.clone();
    let bob = Client::connect_with(&url(third), back, config())
        .await
        .expect("resumes through the cluster");
    assert_eq!(
        bob.welcome().entity_id,
        welcome.entity_id,
        "the same player"
    );
    assert_eq!(bob.node_url(), owner_url);
    wait_for_players(owner, "again", 2).await;
}

#[tokio::test]
async fn a_node_bound_to_every_interface_needs_its_public_urls_in_cluster_mode() {
    let redis = RedisServer::start();
    let games =
        vec![std::sync::Arc::new(PlacedArena::default()) as std::sync::Arc<dyn tessera_sim::Game>];
    let mut config = tessera_server::ServerConfig {
        ws_addr: "0.0.0.0:0".parse().expect("addr"),
        quic_addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        data_dir: std::env::temp_dir().join(format!("tessera-public-url-{}", redis.port)),
        game: "placed-arena".into(),
        ..tessera_server::ServerConfig::default()
    };
    clustered(&redis, "n1")(&mut config);
    let refused = Server::start_with_games(config.clone(), games.clone())
        .await
        .expect_err("no URL to send clients to");
    let message = refused.to_string();
    assert!(message.contains("public_ws_url"), "{message}");
    config.public_ws_url = Some("ws://10.1.2.3:7700".into());
    let node = Server::start_with_games(config, games)
        .await
        .expect("starts with the URL given");
    let cluster = node.state().cluster.clone().expect("clustered");
    assert_eq!(cluster.urls.ws, "ws://10.1.2.3:7700");
    node.shutdown().await;
}

#[tokio::test]
async fn a_forged_seat_changes_nothing() {
    let redis = RedisServer::start();
    let nodes = three_nodes(&redis).await;
    let mut forged = hello("forged", "eve", 0.0, 0.0);
    forged.seat = Some(format!("12345.{}", "ab".repeat(16)));
    let answer = first_answer(&nodes[1], forged).await;
    assert!(
        matches!(answer, ServerMsg::Error { code, .. } if code == ErrorCode::SeatInvalid as u16),
        "{answer:?}"
    );
    assert_eq!(redis.cli(&["EXISTS", "tessera:{room:forged}:lease"]), "0");
    assert_eq!(redis.cli(&["EXISTS", "tessera:{room:forged}:epoch"]), "0");
    // The room opens as any other afterwards, under the first epoch.
    let _eve = join_via(&nodes[1], "forged", "eve").await;
    assert_eq!(
        redis.cli(&["HGET", "tessera:{room:forged}:lease", "epoch"]),
        "1"
    );
}

#[tokio::test]
async fn a_node_that_stops_lets_its_rooms_move_at_once() {
    let redis = RedisServer::start();
    let [a, b, c] = three_nodes(&redis).await;
    let ann = join_via(&a, "handover", "ann").await;
    wait_for_host(std::slice::from_ref(&a), "handover", 1).await;
    drop(ann);
    a.shutdown().await;
    assert_eq!(redis.cli(&["EXISTS", "tessera:{room:handover}:lease"]), "0");
    let nodes = [b, c];
    let _bob = join_via(&nodes[0], "handover", "bob").await;
    wait_for_host(&nodes, "handover", 1).await;
}
