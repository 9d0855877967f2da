//! The `tessera` binary as an operator runs it, with its output in a pipe:
//! no colour codes in the log, and torn files in the data dir (a crash
//! while they were written) do not stop it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tessera_client::protocol::arena::Name;

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tessera serve` on free loopback ports with `data_dir`, and
/// returns it with every log line up to "tessera is listening".
fn serve(data_dir: &std::path::Path) -> (Running, Vec<String>) {
    serve_with(data_dir, Command::new(env!("CARGO_BIN_EXE_tessera")), &[])
}

/// The same with `command` (the binary, or a wrapper that runs it) and
/// more flags.
fn serve_with(
    data_dir: &std::path::Path,
    mut command: Command,
    flags: &[&str],
) -> (Running, Vec<String>) {
    command.arg("serve");
    // Free loopback ports, unless `flags` say otherwise.
    for flag in ["--ws-addr", "--quic-addr", "--admin-addr"] {
        if !flags.contains(&flag) {
            command.args([flag, "127.0.0.1:0"]);
        }
    }
    let mut child = command
        .arg("--data-dir")
        .arg(data_dir)
        .args(flags)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no \"tessera is listening\" line; got {lines:#?}"));
        let listening = line.contains("tessera is listening");
        lines.push(line);
        if listening {
            return (running, lines);
        }
    }
}

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

#[test]
fn piped_logs_have_no_colour_codes() {
    let dir = data_dir("plain");
    let (_server, lines) = serve(&dir);
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_development_certificate_is_replaced_at_start() {
    let dir = data_dir("torn");
    std::fs::write(dir.join("quic-dev-cert.pem"), "").expect("torn cert");
    std::fs::write(dir.join("quic-dev-key.pem"), "").expect("torn key");
    let (_server, lines) = serve(&dir);
    assert!(
        lines.iter().any(|l| l.contains("generating a new one")),
        "{lines:#?}"
    );
    let cert = std::fs::read_to_string(dir.join("quic-dev-cert.pem")).expect("cert");
    assert!(cert.contains("BEGIN CERTIFICATE"), "{cert}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The WebSocket address in the "tessera is listening" line.
fn ws_addr(lines: &[String]) -> std::net::SocketAddr {
    let line = lines.last().expect("the listening line");
    let value: serde_json::Value = serde_json::from_str(line).expect("a json line");
    value["ws"]
        .as_str()
        .expect("ws")
        .parse()
        .expect("an address")
}

#[tokio::test]
async fn past_the_descriptor_limit_clients_get_server_full_not_silence() {
    use futures_util::{SinkExt, StreamExt};
    use tessera_protocol::{ClientMsg, ErrorCode, Hello, ServerMsg};
    use tokio_tungstenite::tungstenite::Message;

    let dir = data_dir("fds");
    // 160 descriptors, soft and hard, so the server cannot raise them.
    let mut command = Command::new("prlimit");
    command
        .args(["--nofile=160:160", env!("CARGO_BIN_EXE_tessera")])
        .env("TESSERA_MAX_ADMIN_CONNECTIONS", "8")
        .env("TESSERA_NEW_CONNECTIONS_PER_IP_PER_SECOND", "1000");
    let (_server, lines) = serve_with(&dir, command, &["--log-format", "json"]);
    assert!(
        lines.iter().any(|l| l.contains("caps lowered to fit")),
        "{lines:#?}"
    );
    let url = format!("ws://{}", ws_addr(&lines));
    let (mut welcomed, mut full) = (Vec::new(), 0);
    // More clients than the server has descriptors.
    for i in 0..200 {
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        .expect("the upgrade answers in time")
        .expect("upgraded");
        let hello = ClientMsg::Hello(Hello::new(format!("room-{}", i % 4))).encode();
        ws.send(Message::Binary(hello.into())).await.expect("hello");
        let answer = loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("every client hears back");
            match frame {
                Some(Ok(Message::Binary(b))) => break ServerMsg::decode(&b).expect("decodes"),
                Some(Ok(_)) => {}
                other => panic!("closed without an answer: {other:?}"),
            }
        };
        match answer {
            ServerMsg::Welcome(_) => welcomed.push(ws),
            ServerMsg::Error { code, .. } => {
                assert_eq!(ErrorCode::from_u16(code), Some(ErrorCode::ServerFull));
                full += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        !welcomed.is_empty() && full > 0,
        "{} welcomed, {full} full",
        welcomed.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tessera ARGS` to its end: exit code, stdout, stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn cert_prints_exactly_the_fingerprint_the_server_serves() {
    // A data dir that does not exist yet, as on a new machine.
    let dir = data_dir("cert").join("new");
    let dir_arg = dir.to_str().expect("utf-8 path");
    // Before any start: the development certificate is made now.
    let (code, stdout, stderr) = run(&["cert", "--data-dir", dir_arg], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let pin = stdout.trim_end_matches('\n');
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let pairs: Vec<&str> = pin.split(':').collect();
    assert!(
        pairs.len() == 32
            && pairs
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())),
        "{pin:?}"
    );
    assert!(stderr.contains("quic-dev-cert.pem"), "{stderr}");
    // The server then uses that one, logs it on a line of its own, and a
    // client pinning what `cert` printed gets in.
    let (_server, lines) = serve_with(
        &dir,
        Command::new(env!("CARGO_BIN_EXE_tessera")),
        &["--log-format", "json"],
    );
    let logged: Vec<&String> = lines.iter().filter(|l| l.contains(pin)).collect();
    assert_eq!(logged.len(), 1, "{lines:#?}");
    assert!(logged[0].contains("\"quic fingerprint\""), "{}", logged[0]);
    let listening: serde_json::Value =
        serde_json::from_str(lines.last().expect("listening")).expect("json");
    let quic = listening["quic"].as_str().expect("quic address").to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = tessera_client::ClientConfig::default().pinned_certificate(pin);
        let hello = tessera_client::Hello::new("pinned");
        let client = tessera_client::Client::connect_with(&format!("quic://{quic}"), hello, config)
            .await
            .expect("the pinned fingerprint is trusted");
        client.close().await;
    });
    // Asked again, the same.
    let (_, again, _) = run(&["cert", "--data-dir", dir_arg], &[]);
    assert_eq!(again, stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_start_that_cannot_listen_says_so_in_one_line_without_a_backtrace() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = data_dir("taken");
    let addr = format!("127.0.0.1:{port}");
    let (code, stdout, stderr) = run(
        &[
            "serve",
            "--ws-addr",
            &addr,
            "--data-dir",
            dir.to_str().expect("utf-8"),
        ],
        &[
            ("RUST_BACKTRACE", "1"),
            ("TESSERA_QUIC_ADDR", "127.0.0.1:0"),
            ("TESSERA_ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: cannot listen on"), "{stderr}");
    assert!(
        lines[0].contains(&addr) && lines[0].contains("in use"),
        "{stderr}"
    );
    assert_eq!(
        lines[0].matches("in use").count(),
        1,
        "the cause once: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_address_may_be_a_bare_port_or_a_host_name_and_a_bad_one_is_named() {
    let dir = data_dir("addrs");
    // A host name and port; a bare port (every interface) for QUIC.
    let (_server, lines) = serve_with(
        &dir,
        Command::new(env!("CARGO_BIN_EXE_tessera")),
        &[
            "--log-format",
            "json",
            "--ws-addr",
            "localhost:0",
            "--quic-addr",
            "0",
        ],
    );
    let listening: serde_json::Value =
        serde_json::from_str(lines.last().expect("listening")).expect("json");
    let quic: std::net::SocketAddr = listening["quic"]
        .as_str()
        .expect("quic")
        .parse()
        .expect("addr");
    assert!(quic.ip().is_unspecified(), "{quic}");
    assert!(ws_addr(&lines).ip().is_loopback());
    drop(_server);

    let (code, _, stderr) = run(
        &[
            "serve",
            "--ws-addr",
            "seven",
            "--data-dir",
            dir.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("\"seven\"") && stderr.contains("localhost:7700"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tessera token issue` prints a token alone, signed with the secret a
/// `serve --auth token` of the same data dir then checks: the player it
/// names joins, under its name.
#[test]
fn an_issued_token_lets_its_player_into_a_token_node() {
    let dir = data_dir("token").join("new");
    let dir_arg = dir.to_str().expect("utf-8 path");
    let issue = [
        "token", "issue", "--player", "p-7", "--name", "Zoe", "--ttl", "10m",
    ];
    let (code, stdout, stderr) = run(&[&issue[..], &["--data-dir", dir_arg]].concat(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let token = stdout.trim_end().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = std::fs::metadata(dir.join("token-secret")).expect("secret kept");
        assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    }
    let (code, _, stderr) = run(&["token", "issue", "--player", "p", "--ttl", "1w"], &[]);
    assert_eq!(code, Some(2), "a bad ttl is a usage error: {stderr}");

    let (_server, lines) = serve_with(
        &dir,
        Command::new(env!("CARGO_BIN_EXE_tessera")),
        &["--log-format", "json", "--auth", "token"],
    );
    let ws = ws_addr(&lines);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let url = format!("ws://{ws}");
        let refused = tessera_client::Client::connect(&url, tessera_client::Hello::new("r"))
            .await
            .expect_err("no token");
        assert_eq!(
            refused.error_code(),
            Some(tessera_client::ErrorCode::AuthRequired)
        );
        let mut hello = tessera_client::Hello::new("r");
        hello.token = Some(token);
        let mut client = tessera_client::Client::connect(&url, hello)
            .await
            .expect("the issued token joins");
        let me = client.welcome().entity_id;
        let name = loop {
            if let Some(name) = client.world().get(me).and_then(|e| e.get::<Name>()) {
                break name.expect("decodes").0;
            }
            tokio::time::timeout(Duration::from_secs(10), client.next_event())
                .await
                .expect("a delta in time")
                .expect("open");
        };
        assert_eq!(name, "Zoe", "the arena shows the token's name");
        client.close().await;
    });
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
}
