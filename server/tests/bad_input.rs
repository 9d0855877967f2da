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

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .expect("bind to a loopback address");
    socket.connect(addr).await.expect("connects")
}

/// Waits until the server closes `stream` (reads end or fail).
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = [0_u8; 512];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn half_open_connections_give_their_slots_to_real_clients() {
    let server = start(PlacedArena::default(), |c| {
        c.max_pending_handshakes = 2;
        c.max_pending_handshakes_per_ip = 2;
        // Far longer than the waits below: only the gate can close them.
        c.handshake_timeout_ms = 30_000;
    })
    .await;
    let addr = server.ws_addr();
    let mut victim = join(&server, "gate", "victim", 100.0, 100.0).await;
    // 127.0.0.2 opens two connections that never send their upgrade
    // request: every handshake slot; a third from it is dropped at once.
    let mut oldest = connect_from([127, 0, 0, 2], addr).await;
    let newer = connect_from([127, 0, 0, 2], addr).await;
    wait_for_pending_handshakes(&server, 2).await;
    let mut third = connect_from([127, 0, 0, 2], addr).await;
    assert!(
        closed_by_server(&mut third).await,
        "one address holds at most two"
    );
    // A real client still gets in: it takes the oldest stalled slot.
    let mut late = join(&server, "gate", "late", 150.0, 100.0).await;
    assert!(
        closed_by_server(&mut oldest).await,
        "the oldest handshake gave way"
    );
    // The newer stalled one still holds a slot and can finish.
    let upgraded = tokio::time::timeout(
        PATIENCE,
        tokio_tungstenite::client_async(url(&server), newer),
    )
    .await
    .expect("the upgrade answers in time");
    assert!(upgraded.is_ok(), "a held handshake completes: {upgraded:?}");
    // The players there all along kept getting deltas.
    next_deltas(&mut victim, 2).await;
    next_deltas(&mut late, 2).await;
    server.shutdown().await;
}

/// Waits (up to [`PATIENCE`]) until the WebSocket gate holds `n`.
async fn wait_for_pending_handshakes(server: &tessera_server::Server, n: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.pending_ws_handshakes() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} pending",
            server.pending_ws_handshakes()
        );
        tokio::time::sleep(SECOND / 50).await;
    }
}

#[tokio::test]
async fn an_upgrade_request_that_never_ends_is_cut_at_8_kib() {
    use tokio::io::AsyncWriteExt;
    let server = start(PlacedArena::default(), |c| c.handshake_timeout_ms = 30_000).await;
    let mut victim = join(&server, "headers", "victim", 100.0, 100.0).await;
    let mut endless = connect_from([127, 0, 0, 3], server.ws_addr()).await;
    endless
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("request line");
    let header = format!("X-Filler: {}\r\n", "a".repeat(1000));
    let mut sent = 0;
    // Far more than the cap; the server closes long before the end (a
    // write then fails, which also ends the loop).
    while sent < 64 * 1024 {
        if endless.write_all(header.as_bytes()).await.is_err() {
            break;
        }
        sent += header.len();
    }
    assert!(
        closed_by_server(&mut endless).await,
        "closed well within the handshake timeout"
    );
    next_deltas(&mut victim, 2).await;
    // A real upgrade still works.
    let _after = join(&server, "headers", "after", 120.0, 100.0).await;
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

/// RFC 6455 §7.4.1: a client that breaks the WebSocket protocol itself is
/// closed with 1002, and is told why first.
#[tokio::test]
async fn a_websocket_protocol_violation_gets_malformed_and_close_1002() {
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let server = start(PlacedArena::default(), |_| {}).await;
    let url = url(&server);
    // An unmasked frame from a client; a frame of a reserved opcode.
    for raw in [&[0x82, 0x01, 0x00][..], &[0x83, 0x80, 0, 0, 0, 0]] {
        let mut ws = joined(&url).await;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
            panic!("plain TCP");
        };
        tcp.write_all(raw).await.expect("write");
        let mut told = false;
        let close = loop {
            let frame = tokio::time::timeout(5 * SECOND, ws.next())
                .await
                .expect("the server answers");
            match frame {
                Some(Ok(Message::Binary(b))) => match ServerMsg::decode(&b).expect("decodes") {
                    ServerMsg::Error { code, message } => {
                        assert_eq!(ErrorCode::from_u16(code), Some(ErrorCode::Malformed));
                        assert!(message.contains("protocol violation"), "{message}");
                        told = true;
                    }
                    ServerMsg::Delta(_) => {}
                    other => panic!("{other:?}"),
                },
                Some(Ok(Message::Close(close))) => break close,
                other => panic!("expected the error and a close frame, got {other:?}"),
            }
        };
        assert!(told, "the error came before the close");
        let close = close.expect("a close frame with a code");
        assert_eq!(close.code, CloseCode::Protocol, "{close:?}");
    }
    server.shutdown().await;
}

/// PROTOCOL.md §4.4: every ping within the rate is answered, in order, even
/// a burst larger than the client's outbound queue.
#[tokio::test]
async fn every_ping_of_a_burst_is_answered_in_order() {
    let server = start(PlacedArena::default(), |c| c.outbound_queue = 16).await;
    let mut ws = joined(&url(&server)).await;
    let burst = 78_u32;
    for nonce in 1..=burst {
        ws.feed(binary(ClientMsg::Ping { nonce }.encode()))
            .await
            .expect("feed");
    }
    ws.flush().await.expect("flush");
    let mut answered = Vec::new();
    while answered.len() < burst as usize {
        match next_server_msg(&mut ws).await {
            Some(ServerMsg::Pong { nonce, .. }) => answered.push(nonce),
            Some(ServerMsg::Delta(_)) => {}
            other => panic!("after {} pongs: {other:?}", answered.len()),
        }
    }
    assert_eq!(answered, (1..=burst).collect::<Vec<_>>());
    server.shutdown().await;
}

/// PROTOCOL.md §4.5: over WebSocket an `Ack` does nothing, but counts
/// against the ack rate.
#[tokio::test]
async fn acks_over_websocket_are_ignored_but_rate_limited() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut ws = joined(&url(&server)).await;
    // Within the rate: nothing happens, the session goes on.
    ws.send(binary(ClientMsg::Ack { tick: 1 }.encode()))
        .await
        .expect("send");
    ws.send(binary(ClientMsg::Ping { nonce: 7 }.encode()))
        .await
        .expect("send");
    loop {
        match next_server_msg(&mut ws).await {
            Some(ServerMsg::Pong { nonce: 7, .. }) => break,
            Some(ServerMsg::Delta(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    // Past the burst of eight ticks' worth: refused.
    for tick in 0..200 {
        ws.feed(binary(ClientMsg::Ack { tick }.encode()))
            .await
            .expect("feed");
    }
    expect_refusal(
        ws,
        binary(ClientMsg::Ack { tick: 0 }.encode()),
        ErrorCode::RateLimited,
    )
    .await;
    server.shutdown().await;
}
