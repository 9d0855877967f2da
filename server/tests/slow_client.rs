//! A client that stops reading does not delay anyone else's deltas, and is
//! disconnected once it has lagged for `max_lag_ms`.

mod common;

use common::*;
use futures_util::SinkExt;
use tessera_protocol::ClientMsg;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_delaying_others() {
    // 300 entities jittering every tick at 30 Hz: about 90 KB/s to each
    // client near them, enough to fill a stalled client's buffers quickly.
    let game = PlacedArena {
        jitterers: 300,
        jitter_at: (2000.0, 2000.0),
    };
    let server = start(game, |c| {
        c.tick_hz = 30;
        c.outbound_queue = 4;
        c.max_lag_ms = 300;
        c.socket_send_buffer = 8 * 1024;
    })
    .await;
    let mut reader = join(&server, "slow", "reader", 2040.0, 2040.0).await;

    // The stalled client: a small receive buffer, a valid join, then silence.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(server.ws_addr()).await.expect("connect");
    let (mut stalled, _) = tokio_tungstenite::client_async(url(&server), stream)
        .await
        .expect("ws handshake");
    let hello = ClientMsg::Hello(hello("slow", "stalled", 2040.0, 2040.0)).encode();
    stalled
        .send(Message::Binary(hello.into()))
        .await
        .expect("hello");

    let room = server.state().rooms.get("slow").expect("room");
    let deadline = tokio::time::Instant::now() + 20 * SECOND;
    let mut ticks = Vec::new();
    let mut saw_two = false;
    loop {
        let events = next_deltas(&mut reader, 1).await;
        ticks.extend(delta_ticks(&events));
        saw_two |= room.players() == 2;
        if saw_two && room.players() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled client was never dropped"
        );
    }
    assert!(ticks.len() > 10);
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "the reader got every tick while the other client stalled: {ticks:?}"
    );
    drop(stalled);
    server.shutdown().await;
}
