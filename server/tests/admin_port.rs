//! The admin port cannot be used to starve the node: connections beyond
//! `max_admin_connections` wait in the backlog, a request that dawdles over
//! its headers is closed, and meanwhile `/health` answers and the game
//! carries on. The attack comes from 127.0.0.2.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn half_sent_admin_requests_are_closed_and_health_still_answers() {
    let server = start(PlacedArena::default(), |c| {
        c.max_admin_connections = 4;
        c.admin_request_timeout_ms = 300;
    })
    .await;
    let mut player = join(&server, "main", "player", 100.0, 100.0).await;

    // Ten connections that start a request and never finish its headers:
    // more than the cap, so some wait in the backlog.
    let mut dawdlers = Vec::new();
    for _ in 0..10 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 2], 0)))
            .expect("bind");
        let mut stream = socket.connect(server.admin_addr()).await.expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a request");
        dawdlers.push(stream);
    }
    // Each is closed once its headers are overdue, the waiting ones too.
    for stream in &mut dawdlers {
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "a dawdler still open after {PATIENCE:?}");
    }
    // The port answers whole requests, and the game never noticed.
    let health = tokio::time::timeout(PATIENCE, http(&server, "GET", "/health", None))
        .await
        .expect("health answers in time");
    assert_eq!(health.status, 200);
    let mut newcomer = join(&server, "main", "newcomer", 120.0, 100.0).await;
    next_deltas(&mut newcomer, 2).await;
    next_deltas(&mut player, 2).await;
    server.shutdown().await;
}
