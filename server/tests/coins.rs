//! The second game, `coins`, played over real sockets by two SDK clients on
//! each transport: one walks to a coin and collects it (an action), hears
//! that it scored (a game event), and the other sees the score and the
//! coin go. (Both start in the middle of the field; the test needs a coin
//! within the view radius of it, which 64 seeded coins leave out about
//! once in 3,000 rooms.)

#[path = "common/coins_play.rs"]
mod coins_play;
mod common;

use std::sync::Arc;

use coins_play::*;
use common::*;
use tessera_client::{Client, ErrorCode, Event, Hello};
use tessera_coins::Coins;
use tessera_coins::schema::{Action, Score};

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
