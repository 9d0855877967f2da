//! One address cannot take a node's connection slots: connections open
//! from one address are capped from the moment they are accepted, and new
//! ones from one address are rate limited. Attacks come from their own
//! 127.0.0.x addresses; the player already in and a newcomer from
//! 127.0.0.1 carry on.

mod common;

use common::*;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket upgrade from `source`; `None` when the server closed the
/// connection instead.
async fn upgrade_from(server: &tessera_server::Server, source: [u8; 4]) -> Option<Ws> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    let stream = socket.connect(server.ws_addr()).await.ok()?;
    let upgrade = tokio_tungstenite::client_async(url(server), stream);
    match tokio::time::timeout(PATIENCE, upgrade).await {
        Ok(Ok((ws, _))) => Some(ws),
        Ok(Err(_)) => None,
        Err(_) => panic!("the server neither upgraded nor closed the connection"),
    }
}

async fn disconnects(server: &tessera_server::Server, reason: &str) -> f64 {
    let metrics = http(server, "GET", "/metrics", None).await;
    let series = format!("tessera_disconnects_total{{reason=\"{reason}\"}} ");
    metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection_slot() {
    let server = start(PlacedArena::default(), |c| {
        c.max_connections = 40;
        c.max_connections_per_ip = 10;
        c.handshake_timeout_ms = 30_000;
    })
    .await;
    let mut player = join(&server, "main", "player", 100.0, 100.0).await;

    // 30 upgrades from one address that never send their Hello: ten are
    // held, the rest closed at once.
    let mut held = Vec::new();
    let mut closed = 0;
    for _ in 0..30 {
        match upgrade_from(&server, [127, 0, 0, 2]).await {
            Some(ws) => held.push(ws),
            None => closed += 1,
        }
    }
    assert_eq!(held.len(), 10, "{closed} closed");
    assert!(disconnects(&server, "address_limit").await >= 20.0);

    // Others still get in, and the player in the room never noticed.
    let mut newcomer = join(&server, "main", "newcomer", 120.0, 100.0).await;
    next_deltas(&mut newcomer, 2).await;
    next_deltas(&mut player, 2).await;

    // Slots come back when the address lets go.
    drop(held);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let again = loop {
        if let Some(ws) = upgrade_from(&server, [127, 0, 0, 2]).await {
            break ws;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slots never came back"
        );
        next_deltas(&mut player, 1).await;
    };
    drop(again);
    server.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_open_connections_as_fast_as_it_likes() {
    let server = start(PlacedArena::default(), |c| {
        c.new_connections_per_ip_per_second = 2;
    })
    .await;
    let mut player = join(&server, "main", "player", 100.0, 100.0).await;

    // A burst of ten seconds' worth at once, each closed straight after:
    // past the burst of five seconds' worth, the rest are refused.
    let mut refused = 0;
    for _ in 0..20 {
        match upgrade_from(&server, [127, 0, 0, 3]).await {
            Some(mut ws) => {
                let _ = futures_util::SinkExt::send(&mut ws, Message::Close(None)).await;
            }
            None => refused += 1,
        }
    }
    assert!(refused >= 5, "only {refused} of 20 refused");
    assert!(disconnects(&server, "connection_rate").await >= 5.0);

    // Another address is not slowed, and the player carries on.
    let mut newcomer = join(&server, "main", "newcomer", 120.0, 100.0).await;
    next_deltas(&mut newcomer, 2).await;
    next_deltas(&mut player, 2).await;
    server.shutdown().await;
}
