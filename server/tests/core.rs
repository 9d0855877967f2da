//! The core path over real sockets: join, interest, movement, chat, RTT,
//! shutdown. Every test runs over WebSocket and over QUIC (`NAME::ws`,
//! `NAME::quic`), and a mixed room holds one client of each.

mod common;

use std::time::Duration;

use common::*;
use tessera_client::Event;
use tessera_client::protocol::arena::{self as wire, Walk};

async fn near_players_see_each_other_far_ones_do_not_and_leaving_the_radius_is_seen(
    transport: Transport,
) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut a = join_over(&server, transport, "core", "a", 1000.0, 1000.0).await;
    let mut b = join_over(&server, transport, "core", "b", 1100.0, 1000.0).await;
    let mut c = join_over(&server, transport, "core", "c", 3000.0, 3000.0).await;
    let (a_id, b_id, c_id) = (
        a.welcome().entity_id,
        b.welcome().entity_id,
        c.welcome().entity_id,
    );

    until(&mut a, 2 * SECOND, |a, _| a.world().contains(b_id)).await;
    until(&mut b, 2 * SECOND, |b, _| b.world().contains(a_id)).await;
    let name = a
        .world()
        .get(b_id)
        .and_then(|e| e.get::<wire::Name>())
        .expect("name")
        .expect("decodes");
    assert_eq!(name.0, "b");

    // b walks east (away from a): a sees updates, then b leaves a's view
    // once it is past radius + margin (220 units: 12 ticks of 10 units).
    b.send_input(&Walk::from_direction(1.0, 0.0))
        .await
        .expect("input");
    until(
        &mut a,
        2 * SECOND,
        |_, e| matches!(e, Event::EntityUpdated { id } if *id == b_id),
    )
    .await;
    let left = until(&mut a, 4 * SECOND, |_, e| {
        matches!(e, Event::EntityLeft { .. })
    })
    .await;
    let Event::EntityLeft { id, last } = left else {
        unreachable!()
    };
    assert_eq!(id, b_id);
    let (x, _) = last
        .get::<wire::Position>()
        .expect("position")
        .expect("decodes")
        .to_units();
    assert!(x - 1000.0 > 200.0, "b left at x = {x}, inside the radius");
    assert!(!a.world().contains(b_id));

    // c, far away, never saw either of them (two deltas: a keepalive
    // comes at least once a second).
    let events = next_deltas(&mut c, 2).await;
    assert!(!c.world().contains(a_id) && !c.world().contains(b_id));
    assert!(c.world().contains(c_id), "a player sees itself");
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::EntityEntered { id } if *id != c_id))
    );
    server.shutdown().await;
}

async fn an_idle_entity_produces_no_updates(transport: Transport) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut walker = join_over(&server, transport, "idle", "walker", 500.0, 500.0).await;
    let mut idle = join_over(&server, transport, "idle", "idle", 550.0, 500.0).await;
    let idle_id = idle.welcome().entity_id;
    let walker_id = walker.welcome().entity_id;
    until(&mut walker, 2 * SECOND, |w, _| w.world().contains(idle_id)).await;
    walker
        .send_input(&Walk::from_direction(0.0, 1.0))
        .await
        .expect("input");
    let updates_of = |events: &[Event], id| {
        events
            .iter()
            .filter(|e| matches!(e, Event::EntityUpdated { id: u } if *u == id))
            .count()
    };
    // Over five of the walker's own moves, the idle player sends nothing.
    let events = read_until(&mut walker, |ev| updates_of(ev, walker_id) >= 5).await;
    assert_eq!(
        updates_of(&events, idle_id),
        0,
        "the idle player sends nothing"
    );
    // The idle client sees the walker's moves but nothing about itself.
    let seen = read_until(&mut idle, |ev| updates_of(ev, walker_id) >= 5).await;
    assert_eq!(updates_of(&seen, idle_id), 0);
    server.shutdown().await;
}

async fn inputs_are_acknowledged_chat_is_broadcast_and_rtt_is_measured(transport: Transport) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut a = join_over(&server, transport, "chat", "a", 100.0, 100.0).await;
    let mut b = join_over(&server, transport, "chat", "b", 4000.0, 4000.0).await;
    input_acked(&mut a, Walk::from_direction(1.0, 1.0)).await;
    a.send_chat("hello room").await.expect("chat");
    let from_a = a.welcome().entity_id;
    let got = until(&mut b, 2 * SECOND, |_, e| matches!(e, Event::Chat { .. })).await;
    assert_eq!(
        got,
        Event::Chat {
            from: from_a,
            text: "hello room".into()
        }
    );
    until(&mut a, 2 * SECOND, |a, _| a.rtt().is_some()).await;
    server.shutdown().await;
}

async fn a_room_opens_on_first_join_and_closes_when_empty(transport: Transport) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let rooms = std::sync::Arc::clone(&server.state().rooms);
    assert!(rooms.get("solo").is_none());
    let client = join_over(&server, transport, "solo", "x", 10.0, 10.0).await;
    assert_eq!(
        rooms.get("solo").map(|r| r.name.clone()),
        Some("solo".into())
    );
    client.close().await;
    let deadline = tokio::time::Instant::now() + 3 * SECOND;
    while rooms.get("solo").is_some() {
        assert!(tokio::time::Instant::now() < deadline, "room still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

async fn shutdown_tells_every_client_and_health_answers_until_then(transport: Transport) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let health = http(&server, "GET", "/health", None).await;
    assert_eq!(health.status, 200);
    assert!(health.body.contains("\"status\":\"ok\""), "{health:?}");
    let mut a = join_over(&server, transport, "bye", "a", 10.0, 10.0).await;
    until(&mut a, 2 * SECOND, |_, e| matches!(e, Event::Delta { .. })).await;
    let stopping = tokio::spawn(server.shutdown());
    let kicked = until(&mut a, 3 * SECOND, |_, e| matches!(e, Event::Kicked { .. })).await;
    assert_eq!(
        kicked.kick_reason(),
        Some(tessera_client::KickReason::Shutdown)
    );
    stopping.await.expect("shutdown completes");
}

/// One client of each transport in one room: each sees the other move.
#[tokio::test]
async fn a_websocket_and_a_quic_client_in_one_room_see_each_other_move() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut ws = join_over(&server, Transport::Ws, "mixed", "ws", 1000.0, 1000.0).await;
    let mut quic = join_over(&server, Transport::Quic, "mixed", "quic", 1050.0, 1000.0).await;
    let (ws_id, quic_id) = (ws.welcome().entity_id, quic.welcome().entity_id);
    until(&mut ws, 2 * SECOND, |c, _| c.world().contains(quic_id)).await;
    until(&mut quic, 2 * SECOND, |c, _| c.world().contains(ws_id)).await;
    ws.send_input(&Walk::from_direction(0.0, 1.0))
        .await
        .expect("input");
    quic.send_input(&Walk::from_direction(0.0, -1.0))
        .await
        .expect("input");
    let moved = |id| move |_: &tessera_client::Client, e: &Event| matches!(e, Event::EntityUpdated { id: u } if *u == id);
    until(&mut ws, 2 * SECOND, moved(quic_id)).await;
    until(&mut quic, 2 * SECOND, moved(ws_id)).await;
    // Soon each mirror has the other walking its way (they stay well
    // within each other's radius).
    let y = |c: &tessera_client::Client, id| {
        c.world()
            .get(id)
            .and_then(|e| e.get::<wire::Position>())
            .expect("position")
            .expect("decodes")
            .to_units()
            .1
    };
    // The QUIC client walked north, the WebSocket client south.
    until(&mut ws, PATIENCE, |c, _| y(c, quic_id) < 990.0).await;
    until(&mut quic, PATIENCE, |c, _| y(c, ws_id) > 1010.0).await;
    ws.send_input(&Walk::default()).await.expect("input");
    quic.send_input(&Walk::default()).await.expect("input");
    server.shutdown().await;
}

over_both_transports!(
    near_players_see_each_other_far_ones_do_not_and_leaving_the_radius_is_seen,
    an_idle_entity_produces_no_updates,
    inputs_are_acknowledged_chat_is_broadcast_and_rtt_is_measured,
    a_room_opens_on_first_join_and_closes_when_empty,
    shutdown_tells_every_client_and_health_answers_until_then,
);

/// The README's quick start: a second walker who names the first spawns
/// next to it, and the two see each other at once, one over each transport.
#[tokio::test]
async fn a_player_who_spawns_near_another_sees_it_in_its_first_delta() {
    use tessera_client::protocol::arena::{JoinOptions, SpawnNear};
    use tessera_client::{Client, Hello, RawValue};
    let server = start_arena(|_| {}).await;
    let hello = |options: &JoinOptions| {
        let mut hello = Hello::new("meet");
        hello.options = RawValue::encode(options).expect("options encode");
        hello
    };
    let (ws, quic) = (Transport::Ws, Transport::Quic);
    let alice = JoinOptions::named("alice");
    let mut alice = Client::connect_with(&ws.url(&server), hello(&alice), ws.config(&server))
        .await
        .expect("alice joins");
    let bob = JoinOptions::named("bob").near(SpawnNear::Player("alice".into()));
    let mut bob = Client::connect_with(&quic.url(&server), hello(&bob), quic.config(&server))
        .await
        .expect("bob joins next to alice");
    let (alice_id, bob_id) = (alice.welcome().entity_id, bob.welcome().entity_id);

    until(&mut bob, PATIENCE, |_, e| matches!(e, Event::Delta { .. })).await;
    assert!(
        bob.world().contains(alice_id),
        "bob's first delta shows alice"
    );
    // Alice may have a delta of the tick before bob's on its way; the one
    // after it shows him.
    let events = next_deltas(&mut alice, 2).await;
    assert!(alice.world().contains(bob_id), "{events:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn spawning_near_a_player_who_is_not_there_is_refused_with_the_reason() {
    use tessera_client::protocol::arena::{JoinOptions, SpawnNear};
    use tessera_client::{Client, ClientError, Hello, RawValue};
    let server = start_arena(|_| {}).await;
    let mut hello = Hello::new("empty");
    let ghost = JoinOptions::named("bob").near(SpawnNear::Player("ghost".into()));
    hello.options = RawValue::encode(&ghost).expect("options encode");
    let refused = Client::connect_with(&url(&server), hello, Transport::Ws.config(&server))
        .await
        .expect_err("nobody to spawn near");
    assert!(
        matches!(&refused, ClientError::Refused { message, .. } if message.contains("no player named \"ghost\"")),
        "{refused:?}"
    );
    server.shutdown().await;
}

/// A client built for another game is refused at the handshake, with both
/// games named; one built for this game, or naming none, gets in.
#[tokio::test]
async fn a_client_built_for_another_game_is_refused_at_the_handshake() {
    use tessera_client::protocol::GameSchema;
    use tessera_client::{Client, ClientError, ErrorCode, Hello};
    let server = start_arena(|_| {}).await;
    let config = || Transport::Ws.config(&server);
    let coins = GameSchema::new("coins", &[(1, "position"), (3, "score")]);
    let refused = Client::connect_with(&url(&server), Hello::new("g").for_game(coins), config())
        .await
        .expect_err("another game");
    match &refused {
        ClientError::Refused { code, message } => {
            assert_eq!(ErrorCode::from_u16(*code), Some(ErrorCode::WrongGame));
            assert!(
                message.contains("\"arena\"") && message.contains("\"coins\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let arena = tessera_client::protocol::arena::schema();
    let ours = Client::connect_with(&url(&server), Hello::new("g").for_game(arena), config())
        .await
        .expect("the arena's own client");
    let unnamed = Client::connect_with(&url(&server), Hello::new("g"), config())
        .await
        .expect("a client that names no game");
    ours.close().await;
    unnamed.close().await;
    server.shutdown().await;
}
