//! Shared test support: a server on loopback ports, a test game with
//! controlled spawn points, and client helpers.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;
use std::time::Duration;

use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use tessera_client::protocol::arena::Walk;
use tessera_client::{Client, ClientConfig, Event, Hello, RawValue};
use tessera_server::{Server, ServerConfig};
use tessera_sim::games::arena::{Arena, Name, Position};
use tessera_sim::{Game, Intent, JoinRefused, Replicated, RoomBuilder, TickSet};

/// Join options of [`PlacedArena`]: a name and a spawn point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placed {
    pub name: String,
    pub x: f32,
    pub y: f32,
}

/// Marks the test game's non-player walkers.
#[derive(Component)]
struct Jitter;

/// The arena, except that players spawn where their join options say, and
/// `jitterers` non-player entities step back and forth around a point every
/// tick (to make a lot of update traffic on demand). Registered like any
/// other game: the server is not changed for it.
#[derive(Debug, Clone, Default)]
pub struct PlacedArena {
    pub jitterers: usize,
    pub jitter_at: (f32, f32),
}

impl Game for PlacedArena {
    fn name(&self) -> &'static str {
        "placed-arena"
    }

    fn setup(&self, room: &mut RoomBuilder<'_>) {
        Arena.setup(room);
        room.on_join(|world, ctx| {
            let placed: Placed = ctx
                .options
                .decode()
                .map_err(|e| JoinRefused(format!("options: {e}")))?;
            Ok(world
                .spawn((
                    Position {
                        x: placed.x,
                        y: placed.y,
                    },
                    Name(placed.name),
                ))
                .id())
        });
        room.add_systems(TickSet::ApplyInputs, (flip_jitterers, explode_on_request));
        let (cx, cy) = self.jitter_at;
        for i in 0..self.jitterers {
            let x = cx + (i % 20) as f32 * 5.0;
            let y = cy + (i / 20) as f32 * 5.0;
            room.world().spawn((
                Position { x, y },
                Name(format!("npc-{i}")),
                Intent(Walk { dx: 127, dy: 0 }),
                Jitter,
                Replicated,
            ));
        }
    }
}

/// The intent that makes [`PlacedArena`] panic, to test that a game bug
/// takes down only its own room.
pub const EXPLODE: Walk = Walk { dx: 99, dy: 99 };

fn explode_on_request(intents: Query<'_, '_, &Intent<Walk>>) {
    if intents.iter().any(|i| i.0 == EXPLODE) {
        panic!("test game asked to explode");
    }
}

fn flip_jitterers(mut walkers: Query<'_, '_, &mut Intent<Walk>, With<Jitter>>) {
    for mut w in &mut walkers {
        w.0.dx = -w.0.dx;
    }
}

/// Starts a server on loopback ports chosen by the OS, hosting
/// [`PlacedArena`], after `tweak` adjusts the config.
pub async fn start(game: PlacedArena, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    start_games(vec![Arc::new(game)], "placed-arena", tweak).await
}

/// Starts a server hosting the real arena, as `tessera serve` does.
pub async fn start_arena(tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    start_games(tessera_sim::games::builtin(), "arena", tweak).await
}

/// Starts a server hosting `games`, serving the one named `game`.
pub async fn start_games(
    games: Vec<Arc<dyn Game>>,
    game: &str,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Server {
    let data_dir = std::env::temp_dir().join(format!(
        "tessera-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let mut config = ServerConfig {
        ws_addr: "127.0.0.1:0".parse().expect("addr"),
        quic_addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        data_dir,
        game: game.into(),
        tick_threads: 1,
        shutdown_grace_ms: 2_000,
        ..ServerConfig::default()
    };
    tweak(&mut config);
    Server::start_with_games(config, games)
        .await
        .expect("server starts")
}

fn rand_suffix() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

pub fn url(server: &Server) -> String {
    format!("ws://{}", server.ws_addr())
}

/// The transport a test client connects over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Quic,
}

impl Transport {
    pub fn url(self, server: &Server) -> String {
        match self {
            Self::Ws => url(server),
            Self::Quic => format!("quic://{}", server.quic_addr()),
        }
    }

    /// Pings every 200 ms; over QUIC, the server's certificate pinned.
    pub fn config(self, server: &Server) -> ClientConfig {
        let config = ClientConfig::default().ping_interval(Duration::from_millis(200));
        match self {
            Self::Ws => config,
            Self::Quic => config.pinned_certificate(server.quic_fingerprint()),
        }
    }
}

/// Runs each named `async fn(Transport)` as two tests, `NAME::ws` and
/// `NAME::quic`: one body, both transports.
#[macro_export]
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn ws() {
                super::$name($crate::common::Transport::Ws).await
            }
            #[tokio::test]
            async fn quic() {
                super::$name($crate::common::Transport::Quic).await
            }
        }
    )*};
}

/// Joins `room` as `name` at `(x, y)` over `transport`.
pub async fn join_over(
    server: &Server,
    transport: Transport,
    room: &str,
    name: &str,
    x: f32,
    y: f32,
) -> Client {
    Client::connect_with(
        &transport.url(server),
        hello(room, name, x, y),
        transport.config(server),
    )
    .await
    .expect("client joins")
}

pub fn hello(room: &str, name: &str, x: f32, y: f32) -> Hello {
    let mut hello = Hello::new(room);
    hello.options = RawValue::encode(&Placed {
        name: name.into(),
        x,
        y,
    })
    .expect("options encode");
    hello
}

/// Joins `room` as `name` at `(x, y)` over WebSocket.
pub async fn join(server: &Server, room: &str, name: &str, x: f32, y: f32) -> Client {
    join_over(server, Transport::Ws, room, name, x, y).await
}

/// Reads events until `want` returns true for one, failing after `limit`.
pub async fn until(
    client: &mut Client,
    limit: Duration,
    mut want: impl FnMut(&Client, &Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("the expected event arrives in time")
            .expect("the session is still open");
        if want(client, &event) {
            return event;
        }
    }
}

/// Sends `walk` and waits for a delta acknowledging it.
pub async fn input_acked(client: &mut Client, walk: Walk) {
    let seq = client.send_input(&walk).await.expect("input");
    until(
        client,
        PATIENCE,
        |_, e| matches!(e, Event::Delta { ack_input, .. } if *ack_input == seq),
    )
    .await;
}

/// How long a test waits for events that should come within a tick or
/// two: generous, since a busy CI machine is slow, and never reached when
/// things work.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Reads events until `done` holds for all read so far, failing after
/// [`PATIENCE`]; returns them all.
pub async fn read_until(client: &mut Client, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut events = Vec::new();
    while !done(&events) {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("the expected events arrive in time")
            .expect("the session is still open");
        events.push(event);
    }
    events
}

/// Reads events until `n` deltas have arrived; returns every event read.
pub async fn next_deltas(client: &mut Client, n: usize) -> Vec<Event> {
    read_until(client, |events| delta_ticks(events).len() >= n).await
}

/// Reads the client's events while `work` runs; returns them with what
/// `work` returned.
pub async fn events_during<T>(
    client: &mut Client,
    work: impl Future<Output = T>,
) -> (Vec<Event>, T) {
    let mut events = Vec::new();
    tokio::pin!(work);
    let deadline = tokio::time::sleep(3 * PATIENCE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return (events, out),
            event = client.next_event() => events.push(event.expect("the session is still open")),
            () = &mut deadline => panic!("the work did not finish in time"),
        }
    }
}

/// Tick numbers of the deltas among `events`.
pub fn delta_ticks(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Delta { tick, .. } => Some(*tick),
            _ => None,
        })
        .collect()
}

pub const SECOND: Duration = Duration::from_secs(1);

/// Waits (up to 3 s) until room `name` holds exactly `players` players.
pub async fn wait_for_players(server: &Server, name: &str, players: usize) {
    let room = server.state().rooms.get(name).expect("room open");
    let deadline = tokio::time::Instant::now() + 3 * SECOND;
    while room.players() != players {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} players in {name}, expected {players}",
            room.players()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `tessera admin --url … --token TOKEN ARGS…` in-process against
/// `server` and returns what it printed.
pub async fn admin_cli(
    server: &Server,
    token: &str,
    args: &[&str],
) -> Result<String, tessera_server::admin::cli::CliError> {
    use clap::Parser;
    use tessera_server::cli::{Cli, Command};
    let url = format!("http://{}", server.admin_addr());
    let argv = ["tessera", "admin", "--url", &url, "--token", token]
        .into_iter()
        .chain(args.iter().copied());
    let Command::Admin(args) = Cli::try_parse_from(argv).expect("arguments parse").command else {
        panic!("not an admin command");
    };
    let mut out = Vec::new();
    tessera_server::admin::cli::run(args, &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.1 request to the server's admin port over a raw socket (the
/// tests need nothing more), with `Authorization: Bearer <token>` if given.
pub async fn http(server: &Server, method: &str, path: &str, token: Option<&str>) -> HttpAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = server.admin_addr();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    HttpAnswer {
        status,
        body: body.to_owned(),
    }
}
