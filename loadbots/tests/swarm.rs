//! The swarm against a real server on loopback, against fake servers that
//! break the protocol or refuse on purpose, and against ports where nothing
//! answers; the binary's exit codes.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tessera_bots::{Args, JoinError, SwarmConfig, Verdict};
use tessera_protocol::{
    ClientMsg, ComponentValue, Delta, EntityState, ErrorCode, RawValue, ServerMsg, Welcome,
};
use tessera_server::{Server, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

/// Bound on one run of the binary. Runs here take a few seconds; one that
/// hits this bound is a failure (a run that did not stop early), not a hang.
const BINARY_LIMIT: Duration = Duration::from_secs(60);

/// A fingerprint no server has.
const WRONG_PIN: &str = "abababababababababababababababababababababababababababababababab";

async fn server() -> Server {
    let config = ServerConfig {
        ws_addr: "127.0.0.1:0".parse().expect("addr"),
        quic_addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        data_dir: std::env::temp_dir().join(format!("tessera-bots-test-{}", std::process::id())),
        tick_threads: 1,
        ..ServerConfig::default()
    };
    Server::start(config).await.expect("server starts")
}

/// Runs the binary (`--quiet`) to its end, within [`BINARY_LIMIT`].
async fn bots_binary(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera-bots"));
    command.arg("--quiet").args(args).kill_on_drop(true);
    tokio::time::timeout(BINARY_LIMIT, command.output())
        .await
        .expect("the binary exits on its own in time")
        .expect("the binary runs")
}

/// A short plan, for runs that should reach their end.
const SHORT_RUN: [&str; 8] = [
    "--bots",
    "5",
    "--ramp",
    "500ms",
    "--settle",
    "500ms",
    "--duration",
    "1s",
];

/// The binary with [`SHORT_RUN`] and `extra`.
async fn short_run(extra: &[&str]) -> Output {
    bots_binary(&[&SHORT_RUN[..], extra].concat()).await
}

/// A loopback address where nothing listens (bound, then let go).
fn closed_tcp_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
}

/// The connections `listener` has seen: whatever connected waits in its
/// backlog until accepted, so this counts them without racing an accept
/// loop.
fn connections_made(listener: &std::net::TcpListener) -> usize {
    listener.set_nonblocking(true).expect("non-blocking");
    std::iter::from_fn(|| listener.accept().ok()).count()
}

fn config(url: &str, extra: &[&str]) -> SwarmConfig {
    let mut argv = vec![
        "tessera-bots",
        "--url",
        url,
        "--quiet",
        "--ramp",
        "1s",
        "--settle",
        "500ms",
        "--duration",
        "2s",
    ];
    argv.extend_from_slice(extra);
    SwarmConfig::try_from(Args::try_parse_from(argv).expect("args parse")).expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_bots_join_walk_acknowledge_and_see_no_faults() {
    let server = server().await;
    let url = format!("quic://{}", server.quic_addr());
    let pin = server.quic_fingerprint().to_owned();
    let args = |extra: &[&str]| {
        let mut argv = vec!["tessera-bots", "--url", &url, "--transport", "quic"];
        argv.extend_from_slice(extra);
        SwarmConfig::try_from(Args::try_parse_from(argv).expect("args parse"))
    };
    assert!(args(&[]).is_err(), "QUIC needs a pin or a CA");
    assert!(
        args(&["--pin-sha256", &pin, "--ca-pem", "x.pem"]).is_err(),
        "not both"
    );
    // No --transport: the quic:// scheme picks QUIC.
    let mut cfg = config(
        &url,
        &["--pin-sha256", &pin, "--bots", "30", "--sample-every", "3"],
    );
    cfg.plan.settle = Duration::from_secs(1);
    let (report, _) = tessera_bots::run(&cfg).await.expect("bots join");
    let json: Value = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["transport"], "quic");
    assert_eq!(report.bots_connected, 30);
    assert_eq!((report.join_failures, report.disconnects), (0, 0));
    assert_eq!((report.decode_errors, report.protocol_violations), (0, 0));
    let interval = report.snapshot_interval_ms.p50.expect("deltas timed");
    assert!((50.0..200.0).contains(&interval), "{interval}");
    assert!(report.down_bytes_per_bot_s.mean > 10.0 * 10.0);
    assert!(report.visible_entities.mean >= 1.0, "a bot sees itself");
    assert_eq!(report.sample_bots, 10);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_bots_report_every_field_and_thresholds_decide() {
    let server = server().await;
    let url = format!("ws://{}", server.ws_addr());
    let admin = format!("http://{}", server.admin_addr());
    let cfg = config(
        &url,
        &[
            "--bots",
            "50",
            "--admin-url",
            &admin,
            "--threshold",
            "rtt_ms.p99<1000",
            "--threshold",
            "snapshot_interval_ms.p99<1",
        ],
    );
    let (report, verdict) = tessera_bots::run(&cfg).await.expect("bots join");
    let json: Value = serde_json::to_value(&report).expect("serializes");
    for field in [
        "scenario",
        "transport",
        "bots_target",
        "bots_connected",
        "join_failures",
        "disconnects",
        "decode_errors",
        "protocol_violations",
        "duration_s",
        "rtt_ms",
        "snapshot_interval_ms",
        "down_bytes_per_bot_s",
        "up_bytes_per_bot_s",
        "visible_entities",
        "thresholds",
        "bots_cpu_percent",
    ] {
        assert!(json.get(field).is_some(), "report lacks {field}: {json}");
    }
    assert_eq!(json["scenario"], "crowd");
    assert_eq!(json["transport"], "ws");
    assert_eq!(report.bots_target, 50);
    assert_eq!(report.bots_connected, 50);
    assert_eq!((report.join_failures, report.disconnects), (0, 0));
    assert_eq!((report.decode_errors, report.protocol_violations), (0, 0));
    assert_eq!(report.duration_s, 2.0);
    let rtt = report.rtt_ms.p99.expect("rtt measured");
    assert!(rtt > 0.0 && rtt < 1000.0, "{rtt}");
    let interval = report.snapshot_interval_ms.p50.expect("deltas timed");
    assert!(
        (50.0..200.0).contains(&interval),
        "deltas every ~100 ms at 10 Hz, got {interval}"
    );
    // Walking bots: every delta carries at least the bot's own move.
    assert!(report.down_bytes_per_bot_s.mean > 10.0 * 10.0);
    assert!(
        report.up_bytes_per_bot_s.mean > 10.0 * 5.0,
        "10 inputs a second"
    );
    assert!(report.visible_entities.mean >= 1.0, "a bot sees itself");
    assert_eq!(report.sample_bots, 1);
    if cfg!(target_os = "linux") {
        // This test process holds the server too, on two worker threads.
        let cpu = report.bots_cpu_percent.expect("own CPU read from /proc");
        assert!((0.0..=250.0).contains(&cpu), "{cpu}");
    }
    // The server's own figures, from its /metrics.
    let figures = json.get("server").expect("server figures with --admin-url");
    let tick = figures["tick_ms"]["p50"].as_f64().expect("tick p50");
    assert!(tick > 0.0 && tick < 100.0, "{tick}");
    assert!(figures["rss_mb"].as_f64().expect("rss") > 1.0);
    assert!(figures["cpu_percent"].as_f64().is_some());
    // The first threshold holds, the second cannot.
    assert_eq!(report.thresholds.len(), 2);
    assert!(report.thresholds[0].passed);
    assert!(!report.thresholds[1].passed);
    assert_eq!(verdict, Verdict::Fail);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_of_the_binary() {
    let server = server().await;
    let url = format!("ws://{}", server.ws_addr());
    let json =
        std::env::temp_dir().join(format!("tessera-bots-report-{}.json", std::process::id()));
    let pass = short_run(&[
        "--url",
        &url,
        "--threshold",
        "disconnects==0",
        "--json",
        json.to_str().expect("utf-8"),
    ])
    .await;
    assert_eq!(
        pass.status.code(),
        Some(Verdict::Pass as i32),
        "{}",
        String::from_utf8_lossy(&pass.stderr)
    );
    let written: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report written")).expect("json");
    assert_eq!(written["thresholds"][0]["passed"], true);
    std::fs::remove_file(&json).ok();

    let fail = short_run(&["--url", &url, "--threshold", "rtt_ms.p99<0"]).await;
    assert_eq!(fail.status.code(), Some(Verdict::Fail as i32));
    assert!(String::from_utf8_lossy(&fail.stdout).contains("threshold FAIL"));

    let usage = short_run(&["--url", &url, "--stage", "soon"]).await;
    assert_eq!(usage.status.code(), Some(Verdict::Usage as i32));

    let contradiction = short_run(&["--url", &url, "--transport", "quic"]).await;
    assert_eq!(contradiction.status.code(), Some(Verdict::Usage as i32));
    let said = String::from_utf8_lossy(&contradiction.stderr);
    assert!(said.contains("--transport quic contradicts"), "{said}");

    let help = bots_binary(&["--help"]).await;
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit status:") && help.contains("  3  no bot could join"),
        "{help}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_threshold_path_exits_2_before_any_bot_connects() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let bad = short_run(&["--url", &url, "--threshold", "rtt.p99<100"]).await;
    assert_eq!(bad.status.code(), Some(Verdict::Usage as i32));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(said.contains("\"rtt.p99\""), "names the bad path: {said}");
    assert!(
        said.contains("valid paths: ") && said.contains("rtt_ms.p99"),
        "lists the valid ones: {said}"
    );
    assert_eq!(connections_made(&listener), 0, "no bot connected");

    // The same run with a path the report has does connect: the count above
    // is zero because of the check, not because this listener cannot see
    // bots. Nothing here speaks WebSocket, so no bot joins.
    listener.set_nonblocking(false).expect("blocking");
    let good = short_run(&["--url", &url, "--threshold", "rtt_ms.p99<100"]).await;
    assert_eq!(good.status.code(), Some(Verdict::NoBotJoined as i32));
    assert!(connections_made(&listener) > 0, "the bots connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_port_fails_fast_with_the_cause() {
    // Ten minutes of plan: only stopping early ends these runs within
    // BINARY_LIMIT.
    let long_run = ["--bots", "20", "--ramp", "2s", "--duration", "10m"];
    let closed = format!("ws://{}", closed_tcp_port());
    let refused = bots_binary(&[&long_run[..], &["--url", &closed]].concat()).await;
    assert_eq!(refused.status.code(), Some(Verdict::NoBotJoined as i32));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.contains(&format!("no bot could join {closed}"))
            && said.to_lowercase().contains("connection refused"),
        "{said}"
    );

    // UDP has no "connection refused": a QUIC port with nothing behind it
    // is silence, and the run gives up on silence after a few seconds.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let silent = format!("quic://{}", silent.local_addr().expect("addr"));
    let unanswered = bots_binary(
        &[
            &long_run[..],
            &["--url", &silent, "--pin-sha256", WRONG_PIN],
        ]
        .concat(),
    )
    .await;
    assert_eq!(unanswered.status.code(), Some(Verdict::NoBotJoined as i32));
    let said = String::from_utf8_lossy(&unanswered.stderr);
    assert!(said.contains("nothing answered within"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_certificate_pin_is_a_tls_failure() {
    let server = server().await;
    let url = format!("quic://{}", server.quic_addr());
    let cfg = config(&url, &["--pin-sha256", WRONG_PIN]);
    let failed = tessera_bots::run(&cfg).await.expect_err("no bot can join");
    assert_eq!(failed.url, url);
    assert!(matches!(failed.cause, JoinError::Tls(_)), "{failed}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_refusal_is_named_with_its_code() {
    let addr = refusing_server(ErrorCode::RoomFull).await;
    let cfg = config(&format!("ws://{addr}"), &["--bots", "3"]);
    let failed = tessera_bots::run(&cfg)
        .await
        .expect_err("every bot is refused");
    assert_eq!(
        failed.cause,
        JoinError::Refused {
            code: ErrorCode::RoomFull as u16,
            message: "the room is full".into()
        }
    );
    assert!(failed.to_string().contains("room_full (10)"), "{failed}");
}

/// A server that answers every hello with `code`.
async fn refusing_server(code: ErrorCode) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let _hello = ws.next().await;
                let refusal = ServerMsg::error(code, "the room is full").encode();
                let _ = ws.send(Message::Binary(refusal.into())).await;
                let _ = ws.close(None).await;
            });
        }
    });
    addr
}

/// A server that welcomes one client and then sends an update for an entity
/// the client never saw.
async fn lying_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let _hello = ws.next().await;
                let welcome = ServerMsg::Welcome(Welcome {
                    session_id: 1,
                    entity_id: 1,
                    tick_rate: 10,
                    tick: 0,
                    aoi_radius: 200,
                    aoi_margin: 20,
                    resume: None,
                    motion: 0,
                });
                let _ = ws.send(Message::Binary(welcome.encode().into())).await;
                let position =
                    RawValue::encode(&tessera_protocol::arena::Position::from_units(10.0, 10.0))
                        .expect("encodes");
                let entry = |id| EntityState {
                    id,
                    components: vec![ComponentValue {
                        id: 1,
                        value: position.clone(),
                    }],
                };
                for tick in 1..40u32 {
                    let delta = Delta {
                        tick,
                        entered: if tick == 1 {
                            vec![entry(1)]
                        } else {
                            Vec::new()
                        },
                        updated: if tick == 5 {
                            vec![entry(99)]
                        } else {
                            Vec::new()
                        },
                        ..Delta::default()
                    };
                    if ws
                        .send(Message::Binary(ServerMsg::Delta(delta).encode().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_sample_bot_catches_an_update_for_an_unknown_entity() {
    let addr = lying_server().await;
    let cfg = config(
        &format!("ws://{addr}"),
        &["--bots", "1", "--sample-every", "1"],
    );
    let (report, _) = tessera_bots::run(&cfg).await.expect("the bot joins");
    assert_eq!(report.protocol_violations, 1, "{}", report.human());
    assert_eq!(report.decode_errors, 0);
}

/// `--drop-rate`: bots cut their connection without a close and come back
/// to their player with the server's resume token, over both transports;
/// none is refused, and no sample bot finds a fault in what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_bots_resume_their_players() {
    let server = server().await;
    let ws = format!("ws://{}", server.ws_addr());
    let quic = format!("quic://{}", server.quic_addr());
    let pin = server.quic_fingerprint().to_owned();
    for (url, extra) in [(&ws, vec![]), (&quic, vec!["--pin-sha256", pin.as_str()])] {
        let mut args = vec!["--bots", "20", "--drop-rate", "8", "--sample-every", "2"];
        args.extend(extra);
        let cfg = config(url, &args);
        let (report, _) = tessera_bots::run(&cfg).await.expect("bots join");
        assert!(report.resumes > 0, "{url}: no resume in {report:?}");
        assert_eq!(report.resume_failures, 0, "{url}");
        assert!(report.resume_ms.p50.is_some(), "{url}: resumes are timed");
        assert_eq!(
            (report.decode_errors, report.protocol_violations),
            (0, 0),
            "{url}"
        );
        assert_eq!(report.disconnects, 0, "{url}: a drop is no disconnect");
    }
    server.shutdown().await;
}

/// A node that welcomes every hello, answers pings, and counts the hellos
/// that carried a seat; a seat named `stale` it refuses (`seat_invalid`).
async fn hosting_node(seats: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seats = Arc::clone(&seats);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let Some(Ok(Message::Binary(frame))) = ws.next().await else {
                    return;
                };
                let Ok(ClientMsg::Hello(hello)) = ClientMsg::decode(&frame) else {
                    return;
                };
                let answer = match hello.seat.as_deref() {
                    Some("stale") => ServerMsg::error(ErrorCode::SeatInvalid, "expired"),
                    seat => {
                        seats.fetch_add(usize::from(seat.is_some()), Ordering::Relaxed);
                        ServerMsg::Welcome(Welcome {
                            session_id: 1,
                            entity_id: 1,
                            tick_rate: 10,
                            tick: 0,
                            aoi_radius: 200,
                            aoi_margin: 20,
                            resume: None,
                            motion: 0,
                        })
                    }
                };
                let _ = ws.send(Message::Binary(answer.encode().into())).await;
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Binary(frame) = message
                        && let Ok(ClientMsg::Ping { nonce }) = ClientMsg::decode(&frame)
                    {
                        let pong = ServerMsg::Pong { nonce, tick: 0 }.encode();
                        let _ = ws.send(Message::Binary(pong.into())).await;
                    }
                }
            });
        }
    });
    addr
}

/// A cluster node that hosts nothing: it redirects every hello to `host`,
/// the first time with a seat the host will refuse.
async fn redirecting_node(host: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((stream, _)) = listener.accept().await {
            let seat = if std::mem::take(&mut first) {
                "stale"
            } else {
                "fresh"
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let _hello = ws.next().await;
                let redirect = ServerMsg::Redirect {
                    url: format!("ws://{host}"),
                    seat: seat.into(),
                };
                let _ = ws.send(Message::Binary(redirect.encode().into())).await;
                let _ = ws.close(None).await;
            });
        }
    });
    addr
}

/// Two `--url`s, one bot on each: the one sent to a node that does not
/// host the room follows its redirects (a refused seat included) to the
/// host, and the report counts them.
#[tokio::test]
async fn bots_spread_over_the_urls_and_follow_redirects() {
    let seats = Arc::new(AtomicUsize::new(0));
    let host = hosting_node(Arc::clone(&seats)).await;
    let entry = redirecting_node(host).await;
    let cfg = config(
        &format!("ws://{entry}"),
        &["--url", &format!("ws://{host}"), "--bots", "2"],
    );
    let (report, _) = tessera_bots::run(&cfg).await.expect("bots join");
    assert_eq!(report.bots_connected, 2, "{}", report.human());
    assert_eq!(report.join_failures, 0, "{}", report.human());
    assert_eq!(
        (report.redirects, report.seat_refusals),
        (2, 1),
        "stale seat, back to the entry, fresh seat: {}",
        report.human()
    );
    assert_eq!(
        seats.load(Ordering::Relaxed),
        1,
        "the fresh seat reached the host"
    );
    assert!(report.join_ms.p50.is_some(), "joins are timed");
    assert!(
        report
            .human()
            .contains("redirects: 2 followed, 1 seats refused")
    );
}
