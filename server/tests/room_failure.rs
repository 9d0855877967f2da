//! A panic in game code closes only that room: its players get an `internal`
//! error, other rooms on the same tick thread keep ticking, and the room's
//! name can be joined again. Over both transports.

mod common;

use common::*;
use tessera_client::{ErrorCode, Event};

over_both_transports!(a_panicking_room_is_closed_and_the_others_carry_on);

async fn a_panicking_room_is_closed_and_the_others_carry_on(transport: Transport) {
    let server = start(PlacedArena::default(), |c| c.tick_threads = 1).await;
    let mut calm = join_over(&server, transport, "calm", "calm", 100.0, 100.0).await;
    calm.send_input(&tessera_client::arena::Walk::from_direction(1.0, 0.0))
        .await
        .expect("input");
    let mut doomed = join_over(&server, transport, "boom", "doomed", 100.0, 100.0).await;
    until(&mut calm, 2 * SECOND, |_, e| {
        matches!(e, Event::Delta { .. })
    })
    .await;

    doomed.send_input(&EXPLODE).await.expect("input");
    let error = until(&mut doomed, 3 * SECOND, |_, e| {
        matches!(e, Event::Error { .. })
    })
    .await;
    assert_eq!(error.error_code(), Some(ErrorCode::Internal));

    // The calm room never missed a tick.
    let events = next_deltas(&mut calm, 5).await;
    let ticks = delta_ticks(&events);
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");

    // The name is free again: a new join opens a fresh room.
    let mut again = join_over(&server, transport, "boom", "again", 50.0, 50.0).await;
    until(&mut again, 2 * SECOND, |_, e| {
        matches!(e, Event::Delta { .. })
    })
    .await;
    server.shutdown().await;
}
