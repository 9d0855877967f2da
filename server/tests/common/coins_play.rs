//! Playing coins from a test: join, find the nearest coin, walk to it and
//! collect it.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use crate::common::*;
use tessera_client::{Client, Event, Hello};
use tessera_coins::schema::{self, Action, Coin, Event as CoinsEvent, REACH, Spot, Walk};

pub async fn join_coins(server: &tessera_server::Server, transport: Transport) -> Client {
    join_coins_as(server, transport, Hello::new("field")).await
}

/// Joins with `hello` (its room, its token), for the coins game.
pub async fn join_coins_as(
    server: &tessera_server::Server,
    transport: Transport,
    hello: Hello,
) -> Client {
    let hello = hello.for_game(schema::schema());
    Client::connect_with(&transport.url(server), hello, transport.config(server))
        .await
        .expect("joins")
}

/// The nearest coin `client` knows: its id and distance, and the walk
/// toward it (slower when near, so as not to overshoot).
pub fn nearest_coin(client: &Client) -> Option<(u32, f32, Walk)> {
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
pub async fn collect_nearest(client: &mut Client) -> (u32, u32, u32) {
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
