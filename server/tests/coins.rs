//! The second game, `coins`, played over real sockets by two SDK clients on
//! each transport: one walks to a coin and collects it (an action), hears
//! that it scored (a game event), and the other sees the score and the
//! coin go. (Both start in the middle of the field; the test needs a coin
//! within the view radius of it, which 64 seeded coins leave out about
//! once in 3,000 rooms.)

mod common;

use std::sync::Arc;

use common::*;
use tessera_client::{Client, ErrorCode, Event, Hello};
use tessera_coins::Coins;
use tessera_coins::schema::{self, Action, Coin, Event as CoinsEvent, REACH, Score, Spot, Walk};

async fn join_coins(server: &tessera_server::Server, transport: Transport) -> Client {
    let hello = Hello::new("field").for_game(schema::schema());
    Client::connect_with(&transport.url(server), hello, transport.config(server))
        .await
        .expect("joins")
}

/// The nearest coin `client` knows: its id and distance, and the walk
/// toward it (slower when near, so as not to overshoot).
fn nearest_coin(client: &Client) -> Option<(u32, f32, Walk)> {
    let me = client.me()?.get::<Spot>()?.ok()?;
    let (id, at) = client
        .world()
        .iter()
        .filter(|e| e.get::<Coin>().is_some())
        .filter_map(|e| Some((e.id(), e.get::<Spot>()?.ok()?)))
        .min_by_key(|(_, at)| {
            u32::from(at.x.abs_diff(me.x)).pow(2) + u32::from(at.y.abs_diff(me.y)).pow(2)
        })?;
    let (dx, dy) = (
        f32::from(at.x) - f32::from(me.x),
        f32::from(at.y) - f32::from(me.y),
    );
    let distance = dx.hypot(dy);
    // A tick walks 20 units at full speed.
    let speed = (distance / 20.0).min(1.0) * 127.0 / distance.max(1.0);
    let walk = Walk {
        dx: (dx * speed) as i8,
        dy: (dy * speed) as i8,
    };
    Some((id, distance, walk))
}

/// Walks to the nearest coin and collects it; returns the coin's id and
/// what the room answered (points, total).
async fn collect_nearest(client: &mut Client) -> (u32, u32, u32) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut collecting = None;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("a coin is collected in time")
            .expect("the session is still open");
        match event.game_event::<CoinsEvent>() {
            Some(Ok(CoinsEvent::Scored { points, total })) => {
                let coin = collecting.expect("scored after a collect");
                return (coin, points, total);
            }
            // Still a step away when the action was applied: walk on.
            Some(Ok(CoinsEvent::NothingInReach)) => collecting = None,
            Some(Err(e)) => panic!("an event coins does not send: {e}"),
            None => {}
        }
        if collecting.is_some() || !matches!(event, Event::Delta { .. }) {
            continue;
        }
        let Some((coin, distance, walk)) = nearest_coin(client) else {
            continue;
        };
        if distance <= REACH - 2.0 {
            client.send_input(&Walk::default()).await.expect("input");
            client.send_action(&Action::Collect).await.expect("action");
            collecting = Some(coin);
        } else {
            client.send_input(&walk).await.expect("input");
        }
    }
}

async fn two_players_collect_and_see_the_score_and_the_coin_go(transport: Transport) {
    let server = start_games(vec![Arc::new(Coins)], "coins", |_| {}).await;
    let mut ann = join_coins(&server, transport).await;
    let mut bob = join_coins(&server, transport).await;
    let ann_id = ann.welcome().entity_id;
    // Both start in the middle: each sees the other, and the coins near.
    until(&mut bob, PATIENCE, |bob, _| bob.world().contains(ann_id)).await;
    until(&mut ann, PATIENCE, |ann, _| nearest_coin(ann).is_some()).await;

    let (coin, points, total) = collect_nearest(&mut ann).await;
    assert!(
        (1..=5).contains(&points) && total == points,
        "{points} {total}"
    );
    let score_of_ann = |bob: &Client| {
        bob.world()
            .get(ann_id)
            .and_then(|e| e.get::<Score>())
            .and_then(Result::ok)
    };
    until(&mut bob, PATIENCE, |bob, _| {
        score_of_ann(bob) == Some(Score(total))
    })
    .await;
    // Over QUIC the event may come before the datagrams of its tick.
    for client in [&mut ann, &mut bob] {
        until(client, PATIENCE, |c, _| !c.world().contains(coin)).await;
    }
    server.shutdown().await;
}

over_both_transports!(two_players_collect_and_see_the_score_and_the_coin_go);

/// The arena takes no actions: sending one ends the session with
/// `invalid_action`, and the room carries on.
#[tokio::test]
async fn an_action_to_a_game_without_actions_is_refused() {
    let server = start_arena(|_| {}).await;
    let mut client = Client::connect(&url(&server), Hello::new("plain"))
        .await
        .expect("joins");
    client.send_action(&Action::Collect).await.expect("sent");
    let refused = until(&mut client, PATIENCE, |_, e| {
        matches!(e, Event::Error { .. })
    })
    .await;
    assert_eq!(
        refused.error_code(),
        Some(ErrorCode::InvalidAction),
        "{refused:?}"
    );
    server.shutdown().await;
}
