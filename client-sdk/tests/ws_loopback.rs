//! The client against a tiny scripted WebSocket server on loopback: real
//! sockets, real tokio-tungstenite, a server that follows `protocol/` by hand.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tessera_client::protocol::arena::{Name, Position, Walk};
use tessera_client::protocol::{ClientMsg, ComponentValue, Delta, EntityState, ServerMsg};
use tessera_client::{
    Client, ClientConfig, ClientError, DisconnectReason, ErrorCode, Event, Hello, KickReason,
    RawValue, Welcome, WireComponent,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Every wait in these tests is bounded, so a bug fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(5);

type ServerWs = WebSocketStream<TcpStream>;

fn welcome() -> Welcome {
    Welcome {
        session_id: 77,
        entity_id: 5,
        tick_rate: 10,
        tick: 1_000,
        aoi_radius: 200,
        aoi_margin: 20,
        resume: None,
        motion: 0,
    }
}

/// Binds a loopback port and runs `script` on the first connection.
async fn serve<F, Fut>(script: F) -> (String, JoinHandle<()>)
where
    F: FnOnce(ServerWs) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("ws://{}", listener.local_addr().expect("has an address"));
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accepts");
        let ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("upgrades");
        script(ws).await;
    });
    (url, task)
}

async fn send(ws: &mut ServerWs, msg: &ServerMsg) {
    ws.send(Message::Binary(Bytes::from(msg.encode())))
        .await
        .expect("server sends");
}

/// The next protocol message from the client; panics on anything else.
async fn recv(ws: &mut ServerWs) -> ClientMsg {
    loop {
        let message = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("client sends in time")
            .expect("connection open")
            .expect("reads");
        match message {
            Message::Binary(frame) => return ClientMsg::decode(&frame).expect("decodes"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Closes from the server side and waits for the client's answer.
async fn close(mut ws: ServerWs) {
    ws.close(None).await.expect("closes");
    while let Ok(Some(Ok(_))) = tokio::time::timeout(LIMIT, ws.next()).await {}
}

async fn next(client: &mut Client) -> Option<Event> {
    tokio::time::timeout(LIMIT, client.next_event())
        .await
        .expect("event in time")
}

#[tokio::test]
async fn joins_mirrors_measures_rtt_and_sees_the_kick() {
    let (url, server) = serve(|mut ws| async move {
        let ClientMsg::Hello(hello) = recv(&mut ws).await else {
            panic!("first message must be the hello");
        };
        assert_eq!(hello.room, "lobby");
        send(&mut ws, &ServerMsg::Welcome(welcome())).await;

        let position = RawValue::encode(&Position::from_units(100.0, 200.0)).expect("encodes");
        let name = RawValue::encode(&Name("ann".into())).expect("encodes");
        let snapshot = Delta {
            tick: 1_000,
            ack_input: 0,
            entered: vec![EntityState {
                id: 5,
                components: vec![
                    ComponentValue {
                        id: Position::ID,
                        value: position,
                    },
                    ComponentValue {
                        id: Name::ID,
                        value: name,
                    },
                ],
            }],
            ..Delta::default()
        };
        send(&mut ws, &ServerMsg::Delta(snapshot)).await;

        // The client pings on its own and sends one input; either may come first.
        let (mut pinged, mut input_seq) = (false, None);
        while !pinged || input_seq.is_none() {
            match recv(&mut ws).await {
                ClientMsg::Ping { nonce } if !pinged => {
                    pinged = true;
                    send(&mut ws, &ServerMsg::Pong { nonce, tick: 1_001 }).await;
                }
                ClientMsg::Ping { .. } => {}
                ClientMsg::Input { seq, intent } => {
                    assert_eq!(
                        intent.decode::<Walk>().expect("a walk"),
                        Walk { dx: 127, dy: 0 }
                    );
                    input_seq = Some(seq);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(input_seq, Some(1));
        send(&mut ws, &ServerMsg::kicked(KickReason::Admin, "bye")).await;
        close(ws).await;
    })
    .await;

    let config = ClientConfig::default().ping_interval(Duration::from_millis(20));
    let mut client = Client::connect_with(&url, Hello::new("lobby"), config)
        .await
        .expect("joins");
    assert_eq!(client.welcome(), &welcome());

    assert_eq!(
        next(&mut client).await,
        Some(Event::EntityEntered { id: 5 })
    );
    let me = client.me().expect("own entity is mirrored");
    assert_eq!(
        me.get::<Position>().expect("has").expect("decodes"),
        Position::from_units(100.0, 200.0)
    );
    assert_eq!(
        me.get::<Name>().expect("has").expect("decodes"),
        Name("ann".into())
    );
    assert_eq!(
        next(&mut client).await,
        Some(Event::Delta {
            tick: 1_000,
            ack_input: 0
        })
    );

    let seq = client
        .send_input(&Walk::from_direction(1.0, 0.0))
        .await
        .expect("sends");
    assert_eq!(seq, 1);

    let kicked = next(&mut client).await.expect("kicked");
    assert_eq!(kicked.kick_reason(), Some(KickReason::Admin));
    // The pong was answered before the kick, on an ordered stream.
    assert!(client.rtt().is_some(), "rtt measured from the pong");
    assert!(client.send_chat("too late").await.is_err());

    match next(&mut client).await {
        Some(Event::Disconnected { reason }) => {
            assert!(reason.is_clean(), "clean close, got {reason:?}");
            assert!(matches!(reason, DisconnectReason::ServerClosed { .. }));
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(next(&mut client).await, None);
    assert_eq!(client.world().len(), 1, "the mirror stays readable");
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("server done in time")
        .expect("server script passed");
}

#[tokio::test]
async fn refusal_is_a_typed_error() {
    let (url, server) = serve(|mut ws| async move {
        recv(&mut ws).await;
        send(
            &mut ws,
            &ServerMsg::error(ErrorCode::RoomFull, "room is full"),
        )
        .await;
        close(ws).await;
    })
    .await;

    let err = Client::connect(&url, Hello::new("lobby"))
        .await
        .expect_err("refused");
    assert_eq!(err.error_code(), Some(ErrorCode::RoomFull));
    assert!(matches!(err, ClientError::Refused { ref message, .. } if message == "room is full"));
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("server done in time")
        .expect("server script passed");
}

#[tokio::test]
async fn silent_server_times_out_the_handshake() {
    let (url, server) = serve(|mut ws| async move {
        recv(&mut ws).await;
        // Say nothing; wait for the client to give up and hang up.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(LIMIT, ws.next()).await {}
    })
    .await;

    let config = ClientConfig::default().connect_timeout(Duration::from_millis(200));
    let err = Client::connect_with(&url, Hello::new("lobby"), config)
        .await
        .expect_err("times out");
    assert!(matches!(err, ClientError::Timeout(_)), "got {err:?}");
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("server sees the client leave")
        .expect("server script passed");
}

#[tokio::test]
async fn garbage_from_the_server_is_a_protocol_error() {
    let (url, server) = serve(|mut ws| async move {
        recv(&mut ws).await;
        send(&mut ws, &ServerMsg::Welcome(welcome())).await;
        ws.send(Message::Binary(Bytes::from_static(&[0x91, 0x63])))
            .await
            .expect("sends");
        // The client answers with a protocol-error close.
        let close = loop {
            match tokio::time::timeout(LIMIT, ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame,
                Ok(Some(Ok(_))) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(close.map(|f| u16::from(f.code)), Some(1002));
    })
    .await;

    let config = ClientConfig::default().ping_interval(Duration::ZERO);
    let mut client = Client::connect_with(&url, Hello::new("lobby"), config)
        .await
        .expect("joins");
    match next(&mut client).await {
        Some(Event::Disconnected {
            reason: DisconnectReason::ProtocolViolation(err),
        }) => assert!(err.to_string().contains("unknown message tag")),
        other => panic!("expected a protocol violation, got {other:?}"),
    }
    assert_eq!(next(&mut client).await, None);
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("server done in time")
        .expect("server script passed");
}

#[tokio::test]
async fn unknown_scheme_and_bad_room_fail_before_any_network() {
    let err = Client::connect("tcp://127.0.0.1:7701", Hello::new("lobby"))
        .await
        .expect_err("no such transport");
    assert!(matches!(err, ClientError::UnsupportedScheme { ref scheme, .. } if scheme == "tcp"));

    // QUIC with nobody to trust is refused before any packet is sent.
    let err = Client::connect("quic://127.0.0.1:7701", Hello::new("lobby"))
        .await
        .expect_err("no trust configured");
    assert!(matches!(err, ClientError::NoTrust { .. }), "got {err:?}");
    assert!(err.to_string().contains("pinned_certificate"), "{err}");

    let err = Client::connect("127.0.0.1:7700", Hello::new("lobby"))
        .await
        .expect_err("no scheme");
    assert!(matches!(err, ClientError::InvalidUrl { .. }));

    let err = Client::connect("ws://127.0.0.1:7700", Hello::new("bad room"))
        .await
        .expect_err("invalid room");
    assert!(matches!(err, ClientError::Connection(_)), "got {err:?}");
}

#[tokio::test]
async fn close_is_polite_and_bounded() {
    let (url, server) = serve(|mut ws| async move {
        recv(&mut ws).await;
        send(&mut ws, &ServerMsg::Welcome(welcome())).await;
        let close = loop {
            match tokio::time::timeout(LIMIT, ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame,
                Ok(Some(Ok(_))) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
    })
    .await;

    let client = Client::connect(&url, Hello::new("lobby"))
        .await
        .expect("joins");
    tokio::time::timeout(LIMIT, client.close())
        .await
        .expect("close is bounded");
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("server done in time")
        .expect("server script passed");
}
