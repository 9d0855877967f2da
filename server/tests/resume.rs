//! Reconnect with resume over real sockets, on both transports: a relay in
//! the test cuts a player's connection without a close; a new connection
//! with the `Welcome`'s resume token gets the same entity back, where the
//! server went on simulating it, and the other players never saw it leave.
//! After the grace window the token gets `resume_failed`; a second
//! connection of the same player replaces the first at once.

mod common;

use std::net::SocketAddr;

use common::*;
use tessera_client::protocol::arena::{Position, Walk};
use tessera_client::{Client, ErrorCode, Event, Hello};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Forwards clients' traffic to the server; `cut` drops the connections
/// of the moment, without a close (a lost path, as a phone switching
/// networks sees it), and later connections are forwarded again.
struct Relay {
    addr: SocketAddr,
    /// Cancelled to cut the connections of the moment; replaced by `cut`.
    current: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Relay {
    async fn start(transport: Transport, server: &tessera_server::Server) -> Self {
        let current = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let addr = match transport {
            Transport::Ws => tcp_relay(server.ws_addr(), Arc::clone(&current), stop.clone()).await,
            Transport::Quic => {
                udp_relay(server.quic_addr(), Arc::clone(&current), stop.clone()).await
            }
        };
        Self {
            addr,
            current,
            stop,
        }
    }

    fn url(&self, transport: Transport) -> String {
        match transport {
            Transport::Ws => format!("ws://{}", self.addr),
            Transport::Quic => format!("quic://{}", self.addr),
        }
    }

    fn cut(&self) {
        let mut current = self.current.lock().expect("lock");
        current.cancel();
        *current = CancellationToken::new();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.stop.cancel();
    }
}

async fn tcp_relay(
    server: SocketAddr,
    current: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((mut client, _)) = accepted else {
                continue;
            };
            let cut = current.lock().expect("lock").clone();
            tokio::spawn(async move {
                let Ok(mut upstream) = TcpStream::connect(server).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                    () = cut.cancelled() => {}
                }
                // Both sockets drop here: the server reads the end of its
                // stream with no WebSocket close before it.
            });
        }
    });
    addr
}

async fn udp_relay(
    server: SocketAddr,
    current: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    back.connect(server).await.expect("connect");
    let addr = front.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut up, mut down) = (vec![0u8; 2048], vec![0u8; 2048]);
        // The client of the moment, and when its path is cut.
        let mut client: Option<(SocketAddr, CancellationToken)> = None;
        let mut cut_off = std::collections::HashSet::new();
        loop {
            if let Some((addr, cut)) = &client
                && cut.is_cancelled()
            {
                cut_off.insert(*addr);
                client = None;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                got = front.recv_from(&mut up) => if let Ok((n, from)) = got {
                    let was_cut = client
                        .as_ref()
                        .is_some_and(|(a, cut)| *a == from && cut.is_cancelled());
                    if was_cut || cut_off.contains(&from) {
                        cut_off.insert(from);
                        continue;
                    }
                    if client.as_ref().is_none_or(|(a, _)| *a != from) {
                        client = Some((from, current.lock().expect("lock").clone()));
                    }
                    let _ = back.send(&up[..n]).await;
                },
                got = back.recv(&mut down) => if let (Ok(n), Some((to, cut))) = (got, &client)
                    && !cut.is_cancelled()
                {
                    let _ = front.send_to(&down[..n], *to).await;
                },
            }
        }
    });
    addr
}

fn position_of(client: &Client, id: u32) -> Option<(f32, f32)> {
    let entity = client.world().get(id)?;
    Some(entity.get::<Position>()?.ok()?.to_units())
}

/// Reads `client`'s events until `done`, failing if any says `id` left.
async fn never_leaving(client: &mut Client, id: u32, mut done: impl FnMut(&Client) -> bool) {
    until(client, 3 * PATIENCE, |c, e| {
        assert!(
            !matches!(e, Event::EntityLeft { id: left, .. } if *left == id),
            "the others saw the held player leave"
        );
        done(c)
    })
    .await;
}

async fn a_cut_connection_resumes_the_same_entity_where_the_server_kept_it(transport: Transport) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut ann = join_over(&server, transport, "resume", "ann", 1000.0, 1000.0).await;
    let relay = Relay::start(transport, &server).await;
    let hello_bob = hello("resume", "bob", 1150.0, 1000.0);
    let mut bob = Client::connect_with(&relay.url(transport), hello_bob, transport.config(&server))
        .await
        .expect("bob joins through the relay");
    let bob_id = bob.welcome().entity_id;
    let token = bob.welcome().resume.clone().expect("a resume token");
    // Bob walks slowly toward and past ann: in her view for 12 s.
    input_acked(&mut bob, Walk::from_direction(-0.3, 0.0)).await;
    until(&mut ann, PATIENCE, |a, _| a.world().contains(bob_id)).await;
    let (cut_x, _) = position_of(&bob, bob_id).expect("bob sees himself");

    relay.cut();
    drop(bob);
    // The server goes on moving bob, and ann goes on seeing him.
    never_leaving(&mut ann, bob_id, |a| {
        position_of(a, bob_id).is_some_and(|(x, _)| x < cut_x - 10.0)
    })
    .await;

    let mut back = Hello::new("resume");
    back.resume = Some(token);
    let mut bob = Client::connect_with(&transport.url(&server), back, transport.config(&server))
        .await
        .expect("bob resumes");
    assert_eq!(bob.welcome().entity_id, bob_id, "the same entity");
    assert!(bob.welcome().resume.is_some(), "and a new token");
    until(&mut bob, PATIENCE, |b, _| b.world().contains(bob_id)).await;
    let (x, _) = position_of(&bob, bob_id).expect("in the full state");
    assert!(
        x < cut_x - 10.0,
        "where the server kept simulating: {x} vs {cut_x}"
    );
    assert!(
        bob.world().contains(ann.welcome().entity_id),
        "and what it sees"
    );
    // Still walking: the intent carried over, and the others still see him.
    never_leaving(&mut ann, bob_id, |a| {
        position_of(a, bob_id).is_some_and(|(bx, _)| bx < x - 10.0)
    })
    .await;
    server.shutdown().await;
}

over_both_transports!(a_cut_connection_resumes_the_same_entity_where_the_server_kept_it);

#[tokio::test]
async fn after_the_grace_window_the_token_gets_resume_failed() {
    let server = start(PlacedArena::default(), |c| c.reconnect_grace_ms = 300).await;
    let mut ann = join(&server, "late", "ann", 1000.0, 1000.0).await;
    let relay = Relay::start(Transport::Ws, &server).await;
    let bob = Client::connect(
        &relay.url(Transport::Ws),
        hello("late", "bob", 1050.0, 1000.0),
    )
    .await
    .expect("joins");
    let bob_id = bob.welcome().entity_id;
    let token = bob.welcome().resume.clone().expect("a resume token");
    until(&mut ann, PATIENCE, |a, _| a.world().contains(bob_id)).await;
    drop(relay);
    drop(bob);
    until(
        &mut ann,
        PATIENCE,
        |_, e| matches!(e, Event::EntityLeft { id, .. } if *id == bob_id),
    )
    .await;
    let mut back = Hello::new("late");
    back.resume = Some(token);
    let err = Client::connect(&url(&server), back)
        .await
        .expect_err("too late");
    assert_eq!(err.error_code(), Some(ErrorCode::ResumeFailed), "{err}");
    let mut other_room = Hello::new("elsewhere");
    other_room.resume = ann.welcome().resume.clone();
    let err = Client::connect(&url(&server), other_room)
        .await
        .expect_err("wrong room");
    assert_eq!(err.error_code(), Some(ErrorCode::ResumeFailed), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_same_player_again_replaces_the_stale_connection_at_once() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut first = join(&server, "usurp", "ann", 1000.0, 1000.0).await;
    let ann = first.welcome().entity_id;
    let mut again = Hello::new("usurp");
    again.resume = first.welcome().resume.clone();
    let mut second = Client::connect(&url(&server), again)
        .await
        .expect("takes over");
    assert_eq!(second.welcome().entity_id, ann);
    let kicked = until(&mut first, PATIENCE, |_, e| {
        matches!(e, Event::Kicked { .. })
    })
    .await;
    assert_eq!(
        kicked.kick_reason(),
        Some(tessera_client::KickReason::Replaced)
    );
    until(&mut second, PATIENCE, |s, _| s.world().contains(ann)).await;
    let players = server.state().rooms.get("usurp").map(|r| r.players());
    assert_eq!(players, Some(1), "one player, one entity");
    server.shutdown().await;
}

/// The SDK comes back by itself each time the relay drops it, and after
/// each resume its mirror is what the server lets it see: no entity twice,
/// and not the one that left while it was away.
async fn the_sdk_reconnects_by_itself_and_its_mirror_is_true_after_each_resume(
    transport: Transport,
) {
    let server = start(PlacedArena::default(), |_| {}).await;
    let mut ann = join_over(&server, transport, "again", "ann", 1000.0, 1000.0).await;
    let ann_id = ann.welcome().entity_id;
    let relay = Relay::start(transport, &server).await;
    let config = transport
        .config(&server)
        .silence_timeout(Duration::from_millis(800))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let hello_bob = hello("again", "bob", 1050.0, 1000.0);
    let mut bob = Client::connect_with(&relay.url(transport), hello_bob, config)
        .await
        .expect("bob joins through the relay");
    let bob_id = bob.welcome().entity_id;
    for round in 0..3 {
        // cy is there when the path goes, and leaves while bob is away.
        let cy = join_over(
            &server,
            transport,
            "again",
            &format!("cy{round}"),
            1020.0,
            1000.0,
        )
        .await;
        let cy_id = cy.welcome().entity_id;
        until(&mut bob, PATIENCE, |b, _| b.world().contains(cy_id)).await;
        relay.cut();
        cy.close().await;
        until(
            &mut ann,
            PATIENCE,
            |_, e| matches!(e, Event::EntityLeft { id, .. } if *id == cy_id),
        )
        .await;
        let mut reconnecting = false;
        let resumed = until(&mut bob, 3 * PATIENCE, |_, e| {
            reconnecting |= matches!(e, Event::Reconnecting { .. });
            assert!(
                !matches!(e, Event::ResumeFailed { .. }),
                "round {round}: {e:?}"
            );
            matches!(e, Event::Resumed(_))
        })
        .await;
        assert!(reconnecting, "round {round}: Reconnecting came first");
        let Event::Resumed(welcome) = resumed else {
            unreachable!()
        };
        assert_eq!(welcome.entity_id, bob_id, "round {round}: the same entity");
        until(&mut bob, PATIENCE, |_, e| matches!(e, Event::Delta { .. })).await;
        let mut seen: Vec<u32> = bob.world().iter().map(|e| e.id()).collect();
        seen.sort_unstable();
        let mut expected = vec![ann_id, bob_id];
        expected.sort_unstable();
        assert_eq!(
            seen, expected,
            "round {round}: the server's view, nothing stale"
        );
    }
    // Inputs go on with their numbering: the next one is acknowledged.
    input_acked(&mut bob, Walk::from_direction(1.0, 0.0)).await;
    bob.close().await;
    server.shutdown().await;
}

over_both_transports!(the_sdk_reconnects_by_itself_and_its_mirror_is_true_after_each_resume);
