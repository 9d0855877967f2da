//! The client following a cluster (PROTOCOL.md §10.5) across scripted
//! WebSocket nodes on loopback: redirects with seats, the hop limit, a
//! refused seat, reconnecting to the last node or through the entry URL,
//! and a room that moved.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tessera_client::protocol::{ClientMsg, ServerMsg};
use tessera_client::{
    Client, ClientConfig, ClientError, ErrorCode, Event, Hello, KickReason, RedirectError, Welcome,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Every wait in these tests is bounded, so a bug fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(5);

type ServerWs = WebSocketStream<TcpStream>;

/// One scripted node: a loopback listener and its URL.
struct Node {
    listener: TcpListener,
    url: String,
}

impl Node {
    async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let url = format!("ws://{}", listener.local_addr().expect("has an address"));
        Self { listener, url }
    }

    /// The next connection, upgraded, and the hello it sends.
    async fn accept(&self) -> (ServerWs, Hello) {
        let (tcp, _) = tokio::time::timeout(LIMIT, self.listener.accept())
            .await
            .expect("the client connects in time")
            .expect("accepts");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("upgrades");
        let ClientMsg::Hello(hello) = recv(&mut ws).await else {
            panic!("the first message must be the hello");
        };
        (ws, hello)
    }
}

fn welcome(resume: Option<&str>) -> Welcome {
    Welcome {
        session_id: 1,
        entity_id: 5,
        tick_rate: 10,
        tick: 1_000,
        aoi_radius: 200,
        aoi_margin: 20,
        resume: resume.map(Into::into),
        motion: 0,
    }
}

fn redirect(to: &Node, seat: &str) -> ServerMsg {
    ServerMsg::Redirect {
        url: to.url.clone(),
        seat: seat.into(),
    }
}

async fn send(ws: &mut ServerWs, msg: &ServerMsg) {
    ws.send(Message::Binary(Bytes::from(msg.encode())))
        .await
        .expect("server sends");
}

/// Sends `msg` and closes, as a node does after a redirect or a refusal.
async fn answer_and_close(mut ws: ServerWs, msg: &ServerMsg) {
    send(&mut ws, msg).await;
    let _ = ws.close(None).await;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(LIMIT, ws.next()).await {}
}

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

/// No pings (the scripts read hellos only) and quick reconnects.
fn config() -> ClientConfig {
    ClientConfig::default()
        .ping_interval(Duration::ZERO)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(20))
}

async fn next(client: &mut Client) -> Option<Event> {
    tokio::time::timeout(LIMIT, client.next_event())
        .await
        .expect("event in time")
}

async fn done(server: JoinHandle<()>) {
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("server done in time")
        .expect("server script passed");
}

#[tokio::test]
async fn a_redirect_is_followed_with_the_same_hello_and_the_seat() {
    let (entry, host) = (Node::bind().await, Node::bind().await);
    let (entry_url, host_url) = (entry.url.clone(), host.url.clone());
    let server = tokio::spawn(async move {
        let (ws, first) = entry.accept().await;
        assert_eq!(first.seat, None);
        answer_and_close(ws, &redirect(&host, "seat-1")).await;
        let (mut ws, second) = host.accept().await;
        let mut expected = first.clone();
        expected.seat = Some("seat-1".into());
        assert_eq!(second, expected, "the same hello, with the seat");
        send(&mut ws, &ServerMsg::Welcome(welcome(None))).await;
        let _ = ws.close(None).await;
    });

    let mut hello = Hello::new("lobby");
    hello.token = Some("token".into());
    let mut client = Client::connect_with(&entry_url, hello, config())
        .await
        .expect("joins on the host");
    assert_eq!(client.entry_url(), entry_url);
    assert_eq!(client.node_url(), host_url);
    assert_eq!(
        next(&mut client).await,
        Some(Event::Redirected {
            url: host_url.clone()
        }),
        "the redirect is the first event"
    );
    done(server).await;
}

#[tokio::test]
async fn redirects_stop_at_the_limit_with_a_clear_error() {
    let node = Node::bind().await;
    let url = node.url.clone();
    // A node that sends everyone back to itself: a room forever moving.
    let server = tokio::spawn(async move {
        for i in 0..3 {
            let (ws, _) = node.accept().await;
            answer_and_close(ws, &redirect(&node, &format!("seat-{i}"))).await;
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), node.listener.accept())
                .await
                .is_err(),
            "no connection past the limit"
        );
    });

    let err = Client::connect_with(&url, Hello::new("lobby"), config().max_redirects(2))
        .await
        .expect_err("too many redirects");
    assert!(
        matches!(
            &err,
            ClientError::Redirect(RedirectError::TooMany { max: 2, url: to }) if *to == url
        ),
        "got {err:?}"
    );
    assert!(err.to_string().contains("more than 2 times"), "{err}");
    done(server).await;
}

#[tokio::test]
async fn a_refused_seat_joins_again_through_the_entry_without_it() {
    let (entry, host) = (Node::bind().await, Node::bind().await);
    let entry_url = entry.url.clone();
    let server = tokio::spawn(async move {
        let (ws, _) = entry.accept().await;
        answer_and_close(ws, &redirect(&host, "stale")).await;
        let (ws, hello) = host.accept().await;
        assert_eq!(hello.seat.as_deref(), Some("stale"));
        let refusal = ServerMsg::error(ErrorCode::SeatInvalid, "seat expired");
        answer_and_close(ws, &refusal).await;
        let (mut ws, again) = entry.accept().await;
        assert_eq!(again.seat, None, "joins again without the seat");
        send(&mut ws, &ServerMsg::Welcome(welcome(None))).await;
        let _ = ws.close(None).await;
    });

    let client = Client::connect_with(&entry_url, Hello::new("lobby"), config())
        .await
        .expect("joins through the entry");
    assert_eq!(client.node_url(), entry_url);
    done(server).await;
}

/// Joins through `entry`, redirected to `host`, which welcomes with a
/// resume token and then drops the connection without a close.
async fn join_then_drop(entry: &Node, host: &Node) {
    let (ws, _) = entry.accept().await;
    answer_and_close(ws, &redirect(host, "seat-1")).await;
    let (mut ws, _) = host.accept().await;
    send(&mut ws, &ServerMsg::Welcome(welcome(Some("resume-1")))).await;
    // Give the client the welcome before the drop.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(ws);
}

#[tokio::test]
async fn a_reconnect_resumes_on_the_last_node_first() {
    let (entry, host) = (Node::bind().await, Node::bind().await);
    let entry_url = entry.url.clone();
    let server = tokio::spawn(async move {
        join_then_drop(&entry, &host).await;
        let (mut ws, hello) = host.accept().await;
        assert_eq!(hello.resume.as_deref(), Some("resume-1"));
        assert_eq!(hello.seat, None, "a seat is good for one connection");
        send(&mut ws, &ServerMsg::Welcome(welcome(Some("resume-2")))).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(200), entry.listener.accept())
                .await
                .is_err(),
            "the entry is not asked"
        );
        let _ = ws.close(None).await;
    });

    let mut client = Client::connect_with(&entry_url, Hello::new("lobby"), config())
        .await
        .expect("joins");
    assert!(matches!(
        next(&mut client).await,
        Some(Event::Redirected { .. })
    ));
    assert_eq!(
        next(&mut client).await,
        Some(Event::Reconnecting { attempt: 1 })
    );
    assert!(matches!(next(&mut client).await, Some(Event::Resumed(_))));
    done(server).await;
}

#[tokio::test]
async fn a_reconnect_goes_through_the_entry_when_the_last_node_is_gone() {
    let (entry, host, new_host) = (Node::bind().await, Node::bind().await, Node::bind().await);
    let (entry_url, new_host_url) = (entry.url.clone(), new_host.url.clone());
    let server = tokio::spawn(async move {
        join_then_drop(&entry, &host).await;
        // The node is gone: nothing listens there any more.
        drop(host);
        let (ws, hello) = entry.accept().await;
        assert_eq!(hello.resume.as_deref(), Some("resume-1"));
        answer_and_close(ws, &redirect(&new_host, "seat-2")).await;
        let (mut ws, hello) = new_host.accept().await;
        assert_eq!(
            (hello.resume.as_deref(), hello.seat.as_deref()),
            (Some("resume-1"), Some("seat-2"))
        );
        send(&mut ws, &ServerMsg::Welcome(welcome(Some("resume-2")))).await;
        let _ = ws.close(None).await;
    });

    let mut client = Client::connect_with(&entry_url, Hello::new("lobby"), config())
        .await
        .expect("joins");
    assert!(matches!(
        next(&mut client).await,
        Some(Event::Redirected { .. })
    ));
    assert_eq!(
        next(&mut client).await,
        Some(Event::Reconnecting { attempt: 1 })
    );
    assert_eq!(
        next(&mut client).await,
        Some(Event::Redirected {
            url: new_host_url.clone()
        })
    );
    assert!(matches!(next(&mut client).await, Some(Event::Resumed(_))));
    assert_eq!(client.node_url(), new_host_url);
    done(server).await;
}

#[tokio::test]
async fn cluster_unavailable_on_a_reconnect_is_tried_again() {
    let (entry, host) = (Node::bind().await, Node::bind().await);
    let entry_url = entry.url.clone();
    let server = tokio::spawn(async move {
        join_then_drop(&entry, &host).await;
        let (ws, _) = host.accept().await;
        let refusal = ServerMsg::error(ErrorCode::ClusterUnavailable, "no cluster");
        answer_and_close(ws, &refusal).await;
        let (mut ws, hello) = host.accept().await;
        assert_eq!(hello.resume.as_deref(), Some("resume-1"));
        send(&mut ws, &ServerMsg::Welcome(welcome(Some("resume-2")))).await;
        let _ = ws.close(None).await;
    });

    let mut client = Client::connect_with(&entry_url, Hello::new("lobby"), config())
        .await
        .expect("joins");
    assert!(matches!(
        next(&mut client).await,
        Some(Event::Redirected { .. })
    ));
    for attempt in 1..=2 {
        assert_eq!(
            next(&mut client).await,
            Some(Event::Reconnecting { attempt })
        );
    }
    assert!(matches!(next(&mut client).await, Some(Event::Resumed(_))));
    done(server).await;
}

#[tokio::test]
async fn a_moved_room_is_joined_afresh_through_the_entry() {
    let (entry, host) = (Node::bind().await, Node::bind().await);
    let entry_url = entry.url.clone();
    let server = tokio::spawn(async move {
        let (ws, _) = entry.accept().await;
        answer_and_close(ws, &redirect(&host, "seat-1")).await;
        let (mut ws, _) = host.accept().await;
        send(&mut ws, &ServerMsg::Welcome(welcome(Some("resume-1")))).await;
        let moved = ServerMsg::kicked(KickReason::RoomMoved, "the room moved");
        answer_and_close(ws, &moved).await;
        let (mut ws, hello) = entry.accept().await;
        assert_eq!(
            (hello.resume, hello.seat),
            (None, None),
            "a new player: the new host does not hold the old one"
        );
        send(&mut ws, &ServerMsg::Welcome(welcome(None))).await;
        let _ = ws.close(None).await;
    });

    let mut client = Client::connect_with(&entry_url, Hello::new("lobby"), config())
        .await
        .expect("joins");
    assert!(matches!(
        next(&mut client).await,
        Some(Event::Redirected { .. })
    ));
    let kicked = next(&mut client).await.expect("kicked");
    assert_eq!(kicked.kick_reason(), Some(KickReason::RoomMoved));
    assert_eq!(
        next(&mut client).await,
        Some(Event::Reconnecting { attempt: 1 })
    );
    assert!(matches!(next(&mut client).await, Some(Event::Welcome(_))));
    assert_eq!(client.node_url(), entry_url);
    done(server).await;
}
