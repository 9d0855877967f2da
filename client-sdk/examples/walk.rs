//! Joins an arena room and walks in a circle, printing what it sees.
//!
//! ```text
//! cargo run -p tessera-client --example walk -- [URL] [ROOM] [NAME] [NEAR]
//! ```
//!
//! Defaults: `ws://127.0.0.1:7700`, room `lobby`, a name from the process id.
//! `NEAR` names a player already in the room to spawn next to (the arena
//! spawns at random otherwise, and players 200 units apart do not see each
//! other). Runs until Ctrl-C (or until the server ends the session), then
//! closes.
//!
//! Over QUIC (`quic://127.0.0.1:7701`), say whom to trust in the
//! environment: `TESSERA_PIN_SHA256` (the fingerprint `tessera cert`
//! prints) or `TESSERA_CA_PEM` (a CA certificate file). Without either, a
//! server on this machine is trusted through the development certificate it
//! wrote into its data dir (`TESSERA_DATA_DIR`, default `./tessera-data`).
//!
//! A server with `auth = "token"` wants a player token: put one in
//! `TESSERA_TOKEN` (`TESSERA_TOKEN=$(tessera token issue --player me)`).

use std::f32::consts::TAU;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tessera_client::arena::{JoinOptions, Name, Position, SpawnNear, Walk};
use tessera_client::{Client, ClientConfig, ClientError, Entity, Event, Hello, RawValue};

/// One full circle every 2 seconds, steering 10 times a second: at the
/// arena's 100 units/s, a circle 64 units across, so that two walkers who
/// spawned next to each other (40 units apart) stay within each other's
/// 200-unit view wherever on their circles they are.
const STEPS_PER_CIRCLE: f32 = 20.0;
/// How long to wait for the server's welcome. A server on this machine or
/// this continent answers in milliseconds; a QUIC port with nothing behind
/// it never answers at all (UDP has no "connection refused"), so a person
/// waiting hears about it after this instead of the SDK's 10 s default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const PIN_VARIABLE: &str = "TESSERA_PIN_SHA256";
const CA_VARIABLE: &str = "TESSERA_CA_PEM";
const DATA_DIR_VARIABLE: &str = "TESSERA_DATA_DIR";
const TOKEN_VARIABLE: &str = "TESSERA_TOKEN";
const DEV_CERT_FILE: &str = "quic-dev-cert.pem";
const DEFAULT_PORTS: &str = "(by default WebSocket is on port 7700, QUIC on 7701)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=tessera_client=debug shows the connection's own logs.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:7700".into());
    let room = args.next().unwrap_or_else(|| "lobby".into());
    let name = args
        .next()
        .unwrap_or_else(|| format!("walker-{}", std::process::id()));
    let near = args.next();

    // Built for the arena: a server running another game says so at once.
    let mut hello = Hello::new(room.clone()).for_game(tessera_client::protocol::arena::schema());
    let mut options = JoinOptions::named(name.clone());
    if let Some(near) = &near {
        options = options.near(SpawnNear::Player(near.clone()));
    }
    hello.options = RawValue::encode(&options)?;
    hello.token = std::env::var(TOKEN_VARIABLE).ok();
    let config = trust(
        ClientConfig::default().connect_timeout(CONNECT_TIMEOUT),
        &url,
    )?;
    let mut client = match Client::connect_with(&url, hello, config).await {
        Ok(client) => client,
        Err(error) => return Err(explain(error, &url).context(format!("joining {room} at {url}"))),
    };
    let welcome = client.welcome().clone();
    println!(
        "joined {room} as {name}: entity {}, tick {} at {} Hz, sees {} units around",
        welcome.entity_id, welcome.tick, welcome.tick_rate, welcome.aoi_radius
    );

    let mut steer = tokio::time::interval(Duration::from_millis(100));
    let mut report = tokio::time::interval(Duration::from_secs(1));
    println!("walking in circles; Ctrl-C to stop");
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut step = 0.0_f32;

    loop {
        tokio::select! {
            event = client.next_event() => match event {
                Some(event) => {
                    if !print_event(&client, &event) {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            },
            _ = steer.tick() => {
                let angle = step / STEPS_PER_CIRCLE * TAU;
                step += 1.0;
                // While the client reconnects there is no connection to
                // send on; the next steer after it is back goes through.
                let walk = Walk::from_direction(angle.cos(), angle.sin());
                if let Err(e) = client.send_input(&walk).await {
                    tracing::debug!(%e, "input not sent");
                }
            }
            _ = report.tick() => {
                let rtt = client.rtt().map_or("-".into(), |r| {
                    format!("{:.1} ms (smoothed {:.1} ms)", ms(r.latest), ms(r.smoothed))
                });
                let me = client.me().map_or("not visible yet".into(), describe);
                println!("rtt {rtt}; sees {} entities; me: {me}", client.world().len());
            }
            _ = &mut ctrl_c => break,
        }
    }
    println!("closing");
    client.close().await;
    Ok(())
}

/// Whom to trust over QUIC: the environment's pin or CA, else the
/// development certificate of a server on this machine, when there is one.
fn trust(config: ClientConfig, url: &str) -> anyhow::Result<ClientConfig> {
    if let Ok(pin) = std::env::var(PIN_VARIABLE) {
        return Ok(config.pinned_certificate(pin));
    }
    if let Ok(path) = std::env::var(CA_VARIABLE) {
        let pem = std::fs::read(&path).with_context(|| format!("{CA_VARIABLE}: reading {path}"))?;
        return Ok(config.ca_certificate_pem(pem));
    }
    if !is_quic_to_this_machine(url) {
        return Ok(config);
    }
    let data_dir =
        std::env::var_os(DATA_DIR_VARIABLE).map_or_else(|| "tessera-data".into(), PathBuf::from);
    let path = data_dir.join(DEV_CERT_FILE);
    match std::fs::read(&path) {
        Ok(pem) => {
            println!(
                "trusting the development certificate of the server on this machine: {} (set {PIN_VARIABLE} or {CA_VARIABLE} to trust another)",
                path.display()
            );
            Ok(config.pinned_certificate_pem(pem))
        }
        // No such file: the server keeps its data elsewhere, or uses a
        // certificate of its own; the no-trust error says what to set.
        Err(_) => Ok(config),
    }
}

fn is_quic_to_this_machine(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("quic://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _port)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// A failed join, with what the person running the example can do about
/// it. The SDK's errors name its own API (a library reads no environment);
/// this example takes its trust from environment variables, so its advice
/// names them.
fn explain(error: ClientError, url: &str) -> anyhow::Error {
    let advice = match &error {
        // The SDK's message names `ClientConfig` methods, which are no
        // help to someone running the example: say it in its own terms.
        ClientError::NoTrust { .. } => {
            return anyhow::anyhow!(
                "{url}: QUIC needs to know whom to trust: set {PIN_VARIABLE} to the SHA-256 \
                 fingerprint `tessera cert` prints on the server's machine, or {CA_VARIABLE} \
                 to the PEM file of the CA that issued the server's certificate"
            );
        }
        ClientError::InvalidFingerprint(_) => {
            format!(
                "{PIN_VARIABLE} must be the 64 hex digits `tessera serve` logs (colons allowed)"
            )
        }
        ClientError::InvalidCertificatePem(_) => format!(
            "the development certificate under {DATA_DIR_VARIABLE} is not readable; set \
             {PIN_VARIABLE} instead"
        ),
        ClientError::InvalidCa(_) => {
            format!("{CA_VARIABLE} must name a PEM file with the CA's certificate")
        }
        ClientError::UntrustedCertificate { .. } => format!(
            "the server is not the one {PIN_VARIABLE} or {CA_VARIABLE} (or the development \
             certificate found here) vouches for; pin what `tessera cert` prints on its machine"
        ),
        ClientError::Timeout(limit) => format!(
            "nothing answered within {limit:?}: is a Tessera server listening at {url}? \
             {DEFAULT_PORTS}"
        ),
        ClientError::Connect { .. } => {
            format!("is a Tessera server listening at {url}? {DEFAULT_PORTS}")
        }
        _ => return error.into(),
    };
    anyhow::Error::new(error).context(advice)
}

/// Prints one event; false when the session is over.
fn print_event(client: &Client, event: &Event) -> bool {
    match event {
        Event::EntityEntered { id } => {
            if let Some(entity) = client.world().get(*id) {
                println!("+ {}", describe(entity));
            }
        }
        Event::EntityLeft { last, .. } => println!("- {}", describe(last)),
        Event::Chat { from, text } => println!("[chat] {from}: {text}"),
        Event::Error { message, .. } => {
            let code = event
                .error_code()
                .map_or("unknown".into(), |c| c.to_string());
            println!("server error {code}: {message}");
        }
        Event::Kicked { message, .. } => {
            let reason = event
                .kick_reason()
                .map_or("unknown".into(), |r| r.to_string());
            println!("kicked ({reason}): {message}");
        }
        Event::Reconnecting { attempt } => println!("connection lost; reconnecting ({attempt})"),
        Event::Redirected { url } => println!("the room is on another node; going to {url}"),
        Event::Resumed(_) => println!("back, as the same player"),
        Event::ResumeFailed { reason } => println!("could not resume: {reason}"),
        Event::Disconnected { reason } => {
            println!("disconnected: {reason}");
            return false;
        }
        // The arena sends no game events.
        Event::Welcome(_) | Event::EntityUpdated { .. } | Event::Delta { .. } | Event::Game(_) => {}
    }
    true
}

/// `name (id) at (x, y)` from whatever the entity carries.
fn describe(entity: &Entity) -> String {
    let name = match entity.get::<Name>() {
        Some(Ok(Name(name))) => name,
        Some(Err(_)) => "<bad name>".into(),
        None => "?".into(),
    };
    let at = match entity.get::<Position>() {
        Some(Ok(position)) => {
            let (x, y) = position.to_units();
            format!("({x:.1}, {y:.1})")
        }
        Some(Err(_)) => "<bad position>".into(),
        None => "(?)".into(),
    };
    format!("{name} ({}) at {at}", entity.id())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
