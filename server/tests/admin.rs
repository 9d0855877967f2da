//! Operating a node over real sockets: the admin API and `tessera admin`
//! (in-process, and once as the real binary), Prometheus metrics, health,
//! readiness and drain.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Parser;
use common::*;
use tessera_client::protocol::arena::Walk;
use tessera_client::{Client, ClientConfig, ErrorCode, Event, KickReason};
use tessera_server::admin::AdminToken;
use tessera_server::admin::cli::{self, CliError};
use tessera_server::admin::report::{EntityReport, RoomDetail, RoomList};
use tessera_server::cli::{Cli, Command};
use tessera_server::{Server, ServerConfig};

const TOKEN: &str = "test-admin-token-0123456789";

async fn start_admin(tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    start(PlacedArena::default(), |c| {
        c.admin_token = Some(AdminToken::new(TOKEN));
        tweak(c);
    })
    .await
}

/// Runs `tessera admin --url … --token TOKEN ARGS…` in-process and returns
/// what it printed.
async fn admin(server: &Server, args: &[&str]) -> Result<String, CliError> {
    admin_with_token(server, TOKEN, args).await
}

async fn admin_with_token(server: &Server, token: &str, args: &[&str]) -> Result<String, CliError> {
    admin_cli(server, token, args).await
}

async fn admin_json<T: serde::de::DeserializeOwned>(server: &Server, args: &[&str]) -> T {
    let mut args = args.to_vec();
    args.push("--json");
    let out = admin(server, &args).await.expect("the command succeeds");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Runs an admin command the server must answer no to: one line holding
/// `expected`, exit code 1.
async fn refused(server: &Server, args: &[&str], expected: &str) {
    let error = admin(server, args).await.expect_err("refused");
    assert_eq!(error.exit_code(), 1, "{error:?}");
    assert!(error.line().contains(expected), "{}", error.line());
}

/// Waits for `client` to be kicked, checking the reason and the message.
async fn expect_kicked(client: &mut Client, reason: KickReason, message: &str) {
    let kicked = until(client, 3 * SECOND, |_, e| matches!(e, Event::Kicked { .. })).await;
    assert_eq!(kicked.kick_reason(), Some(reason), "{kicked:?}");
    assert!(
        matches!(&kicked, Event::Kicked { message: m, .. } if m == message),
        "{kicked:?}"
    );
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `limit`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn players_of(list: &RoomList, room: &str) -> Option<usize> {
    list.rooms
        .iter()
        .find(|r| r.name == room)
        .map(|r| r.players)
}

#[tokio::test]
async fn rooms_room_and_entity_show_what_each_room_is_doing() {
    let server = start_admin(|_| {}).await;
    let mut a = join(&server, "ops", "alice", 1000.0, 1000.0).await;
    let b = join(&server, "ops", "bob", 1050.0, 1000.0).await;
    let _c = join(&server, "other", "carol", 10.0, 10.0).await;
    let b_entity = b.welcome().entity_id;
    until(&mut a, 2 * SECOND, |a, _| a.world().contains(b_entity)).await;

    let list: RoomList = admin_json(&server, &["rooms"]).await;
    assert_eq!(players_of(&list, "ops"), Some(2), "{list:?}");
    assert_eq!(players_of(&list, "other"), Some(1), "{list:?}");
    let table = admin(&server, &["rooms"]).await.expect("rooms");
    assert!(
        table.contains("ops") && table.contains("PLAYERS"),
        "{table}"
    );

    // Each player with its session, address and transport; the round trip
    // is the server's own measurement and shows up within a few seconds.
    let sessions = BTreeSet::from([a.welcome().session_id, b.welcome().session_id]);
    let detail: RoomDetail = eventually(5 * SECOND, "round trips measured", || async {
        let d: RoomDetail = admin_json(&server, &["room", "ops"]).await;
        d.players.iter().all(|p| p.rtt_ms.is_some()).then_some(d)
    })
    .await;
    assert_eq!(detail.summary.players, 2);
    let seen: BTreeSet<u64> = detail.players.iter().map(|p| p.session).collect();
    assert_eq!(seen, sessions);
    for p in &detail.players {
        assert!(p.address.starts_with("127.0.0.1:"), "{p:?}");
        assert_eq!(p.transport, "ws");
        assert!(p.visible >= 2, "sees itself and the other: {p:?}");
        let rtt = p.rtt_ms.expect("measured");
        assert!(rtt > 0.0 && rtt < 1000.0, "{p:?}");
    }
    let bob = detail
        .players
        .iter()
        .find(|p| p.session == b.welcome().session_id)
        .expect("bob listed");
    assert_eq!(bob.entity, Some(b_entity));
    let table = admin(&server, &["room", "ops"]).await.expect("room");
    for session in &sessions {
        assert!(table.contains(&session.to_string()), "{table}");
    }

    let entity: EntityReport = admin_json(&server, &["entity", "ops", &b_entity.to_string()]).await;
    assert_eq!(entity.player, Some(b.welcome().session_id));
    let name = entity
        .components
        .iter()
        .find(|c| c.name == "name")
        .expect("the name replicates");
    assert_eq!(name.value, serde_json::json!("bob"));
    // Through the game's schema: units, not the packed wire integer, which
    // stays in the JSON beside them.
    let position = entity
        .components
        .iter()
        .find(|c| c.name == "position")
        .expect("the position replicates");
    assert_eq!(
        position.value,
        serde_json::json!({"x": 1050.0, "y": 1000.0})
    );
    assert!(position.wire.is_u64(), "{:?}", position.wire);
    let table = admin(&server, &["entity", "ops", &b_entity.to_string()])
        .await
        .expect("entity");
    assert!(table.contains("x=1050.0 y=1000.0"), "{table}");

    refused(&server, &["entity", "ops", "999999"], "no entity 999999").await;
    server.shutdown().await;
}

#[tokio::test]
async fn kick_tells_the_client_why_and_the_count_drops() {
    let server = start_admin(|_| {}).await;
    let _stays = join(&server, "kick", "stays", 100.0, 100.0).await;
    let mut goes = join(&server, "kick", "goes", 200.0, 200.0).await;
    let session = goes.welcome().session_id.to_string();

    let out = admin(
        &server,
        &["kick", "kick", &session, "--reason", "spamming chat"],
    )
    .await
    .expect("kick");
    assert!(out.contains("kicked session"), "{out}");
    expect_kicked(&mut goes, KickReason::Admin, "spamming chat").await;

    eventually(3 * SECOND, "the player count drops to 1", || async {
        let list: RoomList = admin_json(&server, &["rooms"]).await;
        (players_of(&list, "kick") == Some(1)).then_some(())
    })
    .await;
    refused(
        &server,
        &["kick", "kick", &session],
        "no player with session",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn close_tells_every_player_and_frees_the_name() {
    let server = start_admin(|_| {}).await;
    let mut a = join(&server, "closing", "a", 100.0, 100.0).await;
    let mut b = join(&server, "closing", "b", 300.0, 300.0).await;
    let out = admin(&server, &["close", "closing", "--reason", "maintenance"])
        .await
        .expect("close");
    assert!(out.contains("2 player(s) told"), "{out}");
    for client in [&mut a, &mut b] {
        expect_kicked(client, KickReason::RoomClosed, "maintenance").await;
    }
    let rooms = std::sync::Arc::clone(&server.state().rooms);
    eventually(3 * SECOND, "the room is gone", || async {
        rooms.get("closing").is_none().then_some(())
    })
    .await;
    refused(&server, &["room", "closing"], "no room named \"closing\"").await;
    // The name opens a fresh room.
    let mut again = join(&server, "closing", "c", 50.0, 50.0).await;
    until(&mut again, 2 * SECOND, |_, e| {
        matches!(e, Event::Delta { .. })
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn drain_turns_ready_to_503_and_refuses_joins_while_players_keep_playing() {
    let server = start_admin(|_| {}).await;
    let mut player = join(&server, "drain", "stays", 100.0, 100.0).await;
    let ready = http(&server, "GET", "/ready", None).await;
    assert_eq!(ready.status, 200, "{ready:?}");

    let out = admin(&server, &["drain"]).await.expect("drain");
    assert!(out.contains("draining"), "{out}");
    let ready = http(&server, "GET", "/ready", None).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.contains("\"reason\":\"draining\""), "{ready:?}");
    let health = http(&server, "GET", "/health", None).await;
    assert_eq!(health.status, 200);
    assert!(health.body.contains("\"draining\":true"), "{health:?}");

    let refused = Client::connect_with(
        &url(&server),
        hello("drain", "late", 10.0, 10.0),
        ClientConfig::default(),
    )
    .await
    .expect_err("a new join is refused");
    assert_eq!(refused.error_code(), Some(ErrorCode::ShuttingDown));
    assert!(refused.to_string().contains("draining"), "{refused}");

    // The player already in keeps playing: inputs land, ticks keep coming.
    input_acked(&mut player, Walk::from_direction(1.0, 0.0)).await;
    let ticks = delta_ticks(&next_deltas(&mut player, 5).await);
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints_answer_401_and_nothing_else_without_the_token() {
    let server = start_admin(|_| {}).await;
    let _player = join(&server, "secret", "p", 10.0, 10.0).await;
    let requests = [
        ("GET", "/admin/rooms"),
        ("GET", "/admin/rooms/secret"),
        ("GET", "/admin/rooms/secret/entities/1"),
        ("POST", "/admin/rooms/secret/close"),
        ("POST", "/admin/drain"),
        ("GET", "/admin/no-such-endpoint"),
    ];
    for (method, path) in requests {
        for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
            let answer = http(&server, method, path, token).await;
            assert_eq!(
                answer,
                HttpAnswer {
                    status: 401,
                    body: String::new()
                },
                "{method} {path} with {token:?}"
            );
        }
    }
    // Nothing happened: still ready, the room still open.
    assert_eq!(http(&server, "GET", "/ready", None).await.status, 200);
    assert!(server.state().rooms.get("secret").is_some());
    let ok = http(&server, "GET", "/admin/rooms", Some(TOKEN)).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("\"secret\""), "{ok:?}");

    let wrong = admin_with_token(&server, "wrong", &["rooms"])
        .await
        .expect_err("refused");
    assert!(matches!(wrong, CliError::Unauthorized { .. }), "{wrong:?}");
    assert_eq!(wrong.exit_code(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_after_traffic_have_the_tick_histogram_and_byte_counters() {
    let server = start_admin(|_| {}).await;
    let mut a = join(&server, "metered", "a", 100.0, 100.0).await;
    let _b = join(&server, "metered", "b", 150.0, 100.0).await;
    a.send_input(&Walk::from_direction(0.0, 1.0))
        .await
        .expect("input");
    a.send_chat("hello").await.expect("chat");
    // The visible-set histogram is sampled once a second and the round
    // trip once a probe is answered: wait for both, a tick at a time.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let text = loop {
        let metrics = http(&server, "GET", "/metrics", None).await;
        assert_eq!(metrics.status, 200);
        let sampled = [
            "tessera_aoi_visible_entities_bucket{le=",
            "tessera_rtt_seconds_bucket{le=",
        ];
        if sampled.iter().all(|s| metrics.body.contains(s)) {
            break metrics.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", metrics.body);
        next_deltas(&mut a, 1).await;
    };
    for series in [
        "tessera_tick_duration_seconds_bucket{le=",
        "tessera_tick_duration_seconds_count",
        "tessera_aoi_visible_entities_bucket{le=",
        "tessera_rtt_seconds_bucket{le=",
        "# TYPE tessera_tick_duration_seconds histogram",
        "# HELP tessera_bytes_sent_total",
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    for counter in [
        "tessera_bytes_sent_total{transport=\"ws\"}",
        "tessera_bytes_received_total{transport=\"ws\"}",
        "tessera_messages_sent_total{transport=\"ws\"}",
        "tessera_messages_received_total{transport=\"ws\"}",
        "tessera_connections_accepted_total{transport=\"ws\"}",
        "tessera_connections{transport=\"ws\"}",
        "tessera_rooms",
        "tessera_players",
        "tessera_entities",
    ] {
        let value = sample(&text, counter).unwrap_or_else(|| panic!("{counter} in\n{text}"));
        assert!(value > 0.0, "{counter} = {value}");
    }
    server.shutdown().await;
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn watch_redraws_the_room_in_place() {
    let server = start_admin(|_| {}).await;
    let _p = join(&server, "watched", "p", 10.0, 10.0).await;
    let url = format!("http://{}", server.admin_addr());
    let argv = [
        "tessera", "admin", "--url", &url, "--token", TOKEN, "watch", "watched",
    ];
    let Command::Admin(args) = Cli::try_parse_from(argv).expect("parse").command else {
        panic!("not an admin command");
    };
    let screen = Screen::default();
    let mut redraws = screen.redraws.subscribe();
    let mut out = screen.clone();
    tokio::select! {
        ran = cli::run(args, &mut out) => panic!("watch runs until stopped: {ran:?}"),
        seen = tokio::time::timeout(PATIENCE, redraws.wait_for(|n| *n >= 2)) => {
            seen.expect("redrawn twice in time").expect("the screen is there");
        }
    }
    let text = screen.text();
    assert!(text.contains("room watched"), "{text}");
    server.shutdown().await;
}

/// A terminal for `watch`: keeps what was written and counts the redraws
/// (each starts by clearing the screen).
#[derive(Clone, Default)]
struct Screen {
    written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    redraws: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.written.lock().expect("screen")).into_owned()
    }
}

impl std::io::Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written.lock().expect("screen").extend_from_slice(buf);
        self.redraws
            .send_replace(self.text().matches("\x1b[H\x1b[2J").count());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_generated_token_is_kept_owner_only_and_works() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let path = server.state().config.data_dir.join("admin-token");
    let token = std::fs::read_to_string(&path).expect("token file written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let list = admin_with_token(&server, token.trim(), &["rooms", "--json"])
        .await
        .expect("the generated token is accepted");
    assert!(list.contains("\"rooms\""), "{list}");
    server.shutdown().await;
}

#[tokio::test]
async fn probe_answers_do_not_keep_an_idle_client_alive() {
    let server = start_admin(|c| c.idle_timeout_ms = 3_000).await;
    // The SDK pings on its own; this client only reads (its WebSocket layer
    // answers the server's probes) and never sends a message.
    let config = ClientConfig::default().ping_interval(Duration::from_secs(3600));
    let mut quiet = Client::connect_with(&url(&server), hello("quiet", "q", 10.0, 10.0), config)
        .await
        .expect("joins");
    let kicked = until(&mut quiet, 6 * SECOND, |_, e| {
        matches!(e, Event::Kicked { .. })
    })
    .await;
    assert_eq!(kicked.kick_reason(), Some(KickReason::IdleTimeout));
    server.shutdown().await;
}

#[test]
fn the_cli_against_a_port_where_nothing_listens_fails_with_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "--url", &format!("http://127.0.0.1:{port}")])
        .args(["--token", "whatever", "rooms"])
        .env_remove("TESSERA_ADMIN_URL")
        .env_remove("TESSERA_ADMIN_TOKEN")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with("error: cannot reach the admin API at http://127.0.0.1:"),
        "{stderr:?}"
    );
}
