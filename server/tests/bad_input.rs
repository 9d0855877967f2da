//! Bad input gets an error with a code and a close, and nobody else notices:
//! the room keeps ticking and a well-behaved client keeps getting a delta
//! every tick.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tessera_client::protocol::arena::Walk;
use tessera_client::{ErrorCode, RawValue};
use tessera_protocol::{ClientMsg, Hello, ServerMsg};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects")
        .0
}

/// Connects and joins far from everyone, returning once welcomed.
async fn joined(url: &str) -> Ws {
    let mut ws = connect(url).await;
    let hello = ClientMsg::Hello(hello("abuse", "bad", 3500.0, 3500.0)).encode();
    ws.send(Message::Binary(hello.into())).await.expect("send");
    loop {
        match next_server_msg(&mut ws).await {
            Some(ServerMsg::Welcome(_)) => return ws,
            Some(_) => {}
            None => panic!("closed before the welcome"),
        }
    }
}

async fn next_server_msg(ws: &mut Ws) -> Option<ServerMsg> {
    loop {
        match tokio::time::timeout(5 * SECOND, ws.next())
            .await
            .expect("server answers")
        {
            Some(Ok(Message::Binary(b))) => {
                return Some(ServerMsg::decode(&b).expect("server frames decode"));
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Sends `message`, then expects an error with `code` and the close.
async fn expect_refusal(mut ws: Ws, message: Message, code: ErrorCode) {
    ws.send(message).await.expect("send");
    loop {
        match next_server_msg(&mut ws).await {
            Some(ServerMsg::Error { code: got, message }) => {
                assert_eq!(ErrorCode::from_u16(got), Some(code), "{message}");
                assert!(!message.is_empty());
                break;
            }
            Some(ServerMsg::Delta(_) | ServerMsg::Pong { .. }) => {}
            Some(other) => panic!("expected an error, got {other:?}"),
            None => panic!("closed without an error (expected {code})"),
        }
    }
    assert!(
        next_server_msg(&mut ws).await.is_none(),
        "the connection closes after the error"
    );
}

fn binary(bytes: impl Into<Bytes>) -> Message {
    Message::Binary(bytes.into())
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_and_the_room_carries_on() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let url = url(&server);
    let mut victim = join(&server, "abuse", "victim", 1000.0, 1000.0).await;
    victim
        .send_input(&Walk::from_direction(1.0, 0.0))
        .await
        .expect("input");
    until(&mut victim, 2 * SECOND, |_, e| {
        matches!(e, tessera_client::Event::Delta { .. })
    })
    .await;

    let abuse = tokio::spawn(async move {
        let hello_bytes = ClientMsg::Hello(Hello::new("abuse")).encode();
        let mut old = Hello::new("abuse");
        old.version = 99;
        let bad_intent = ClientMsg::Input {
            seq: 1,
            intent: RawValue::encode(&"not a walk").expect("encodes"),
        }
        .encode();
        // Before the handshake.
        expect_refusal(
            connect(&url).await,
            binary(vec![0xc1, 0xff, 0x00]),
            ErrorCode::Malformed,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(hello_bytes[..hello_bytes.len() - 3].to_vec()),
            ErrorCode::Malformed,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(vec![0x90; 8 * 1024]),
            ErrorCode::FrameTooLarge,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(vec![0x90; 200 * 1024]),
            ErrorCode::FrameTooLarge,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(ClientMsg::Hello(old).encode()),
            ErrorCode::UnsupportedVersion,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            Message::Text("{\"hello\":1}".into()),
            ErrorCode::UnsupportedFrame,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(ClientMsg::Ping { nonce: 1 }.encode()),
            ErrorCode::HandshakeRequired,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(ClientMsg::Hello(Hello::new("no spaces")).encode()),
            ErrorCode::InvalidRoomName,
        )
        .await;
        expect_refusal(
            connect(&url).await,
            binary(vec![0x91, 0x63]),
            ErrorCode::UnknownMessage,
        )
        .await;
        // After joining.
        expect_refusal(
            joined(&url).await,
            binary(vec![0xde, 0xad, 0xbe, 0xef]),
            ErrorCode::Malformed,
        )
        .await;
        expect_refusal(
            joined(&url).await,
            binary(vec![0x92, 0x02]),
            ErrorCode::Malformed,
        )
        .await;
        expect_refusal(
            joined(&url).await,
            binary(vec![0x90; 8 * 1024]),
            ErrorCode::FrameTooLarge,
        )
        .await;
        expect_refusal(
            joined(&url).await,
            Message::Text("hi".into()),
            ErrorCode::UnsupportedFrame,
        )
        .await;
        expect_refusal(
            joined(&url).await,
            binary(hello_bytes),
            ErrorCode::AlreadyJoined,
        )
        .await;
        expect_refusal(
            joined(&url).await,
            binary(bad_intent),
            ErrorCode::InvalidInput,
        )
        .await;
        for text in ["   ", "line one\n[server] line two"] {
            expect_refusal(
                joined(&url).await,
                binary(ClientMsg::Chat { text: text.into() }.encode()),
                ErrorCode::InvalidChat,
            )
            .await;
        }
    });
    let (mut events, done) = events_during(&mut victim, abuse).await;
    done.expect("every refusal as expected");
    events.extend(next_deltas(&mut victim, 5).await);
    // The victim walked the whole time: it got a delta for every tick.
    let ticks = delta_ticks(&events);
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "no tick was skipped or delayed: {ticks:?}"
    );
    // The refused clients are gone from the room.
    wait_for_players(&server, "abuse", 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_times_out_with_an_error() {
    let server = start(PlacedArena::default(), |c| c.handshake_timeout_ms = 300).await;
    let mut ws = connect(&url(&server)).await;
    match next_server_msg(&mut ws).await {
        Some(ServerMsg::Error { code, .. }) => {
            assert_eq!(ErrorCode::from_u16(code), Some(ErrorCode::HandshakeTimeout))
        }
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    assert!(next_server_msg(&mut ws).await.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_is_cut_off() {
    let server = start(PlacedArena::default(), |c| {
        c.messages_per_second = 5;
        c.message_burst = 5;
    })
    .await;
    // Protocol pings, and WebSocket pings, which carry no message but cost
    // the server a read and an answer all the same.
    let floods: [fn(u32) -> Message; 2] = [
        |nonce| binary(ClientMsg::Ping { nonce }.encode()),
        |nonce| Message::Ping(Bytes::copy_from_slice(&nonce.to_be_bytes())),
    ];
    for flood in floods {
        let mut ws = joined(&url(&server)).await;
        for nonce in 0..50 {
            if ws.send(flood(nonce)).await.is_err() {
                break;
            }
        }
        loop {
            match next_server_msg(&mut ws).await {
                Some(ServerMsg::Error { code, .. }) => {
                    assert_eq!(ErrorCode::from_u16(code), Some(ErrorCode::RateLimited));
                    break;
                }
                Some(_) => {}
                None => panic!("closed without rate_limited"),
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn half_open_connections_past_the_handshake_cap_are_dropped() {
    use tokio::io::AsyncReadExt;
    let server = start(PlacedArena::default(), |c| {
        c.max_pending_handshakes = 2;
        // Far longer than the waits below: only the cap can close them.
        c.handshake_timeout_ms = 30_000;
    })
    .await;
    let addr = server.ws_addr();
    // Two connections that never send their upgrade request hold both
    // handshake permits.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(
            tokio::net::TcpStream::connect(addr)
                .await
                .expect("connects"),
        );
    }
    let mut byte = [0u8; 1];
    let mut third = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let read = tokio::time::timeout(2 * SECOND, third.read(&mut byte))
        .await
        .expect("the third is dropped, not left waiting");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The first two are still in their handshake: each can finish it.
    for stream in stalled.drain(..) {
        let upgraded = tokio::time::timeout(
            PATIENCE,
            tokio_tungstenite::client_async(url(&server), stream),
        )
        .await
        .expect("the upgrade answers in time");
        assert!(upgraded.is_ok(), "a held handshake completes: {upgraded:?}");
    }
    // Once they go, their permits come back.
    let mut welcomed = false;
    for _ in 0..50 {
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url(&server)).await {
            let hello = ClientMsg::Hello(hello("after", "late", 100.0, 100.0)).encode();
            ws.send(Message::Binary(hello.into())).await.expect("send");
            welcomed = matches!(next_server_msg(&mut ws).await, Some(ServerMsg::Welcome(_)));
            break;
        }
        tokio::time::sleep(SECOND / 10).await;
    }
    assert!(
        welcomed,
        "a client gets in once the stalled connections are gone"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_flood_still_gets_its_error_and_close_frame() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let url = url(&server);
    // A reset overtook the goodbye in most tries before the server lingered.
    for _ in 0..5 {
        let mut ws = joined(&url).await;
        for _ in 0..120 {
            ws.feed(Message::Ping(Bytes::from_static(b"flood")))
                .await
                .expect("queue a ping");
        }
        ws.flush().await.expect("one write");
        let (mut error, mut close) = (None, false);
        loop {
            let frame = tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("the server answers");
            match frame {
                Some(Ok(Message::Binary(b))) => {
                    if let Ok(ServerMsg::Error { code, .. }) = ServerMsg::decode(&b) {
                        error = ErrorCode::from_u16(code);
                    }
                }
                Some(Ok(Message::Close(_))) => close = true,
                Some(Ok(_)) => {}
                None => break,
                Some(Err(e)) => panic!("the connection failed instead of closing: {e}"),
            }
        }
        assert_eq!(error, Some(ErrorCode::RateLimited));
        assert!(close, "a close frame came");
    }
    server.shutdown().await;
}
