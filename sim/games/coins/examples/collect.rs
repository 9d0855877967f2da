//! A coins client: joins the room `field`, walks to the nearest coin it
//! knows and collects it, three times, printing the room's answers.
//!
//! With a node serving coins (`tessera serve --game coins`):
//! `cargo run -p tessera-coins --example collect [URL [CERT]]`, where URL
//! is `ws://127.0.0.1:7700` (the default) or `quic://127.0.0.1:7701`, and
//! CERT, for QUIC, the node's certificate to trust (default: its
//! development certificate, `tessera-data/quic-dev-cert.pem`, as seen from
//! where the node runs).

// In the repository the crate is `tessera_coins`; in the guide, `coins`.
use tessera_coins as coins;

use coins::schema::{self, Action, Coin, Event as CoinsEvent, REACH, Spot, Walk};
use tessera_client::{Client, ClientConfig, Event, Hello};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:7700".into());
    let mut config = ClientConfig::default();
    if url.starts_with("quic://") {
        let path = args.next();
        let path = path.as_deref().unwrap_or("tessera-data/quic-dev-cert.pem");
        let certificate = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        config = config.pinned_certificate_pem(certificate);
    }
    let hello = Hello::new("field").for_game(schema::schema());
    let mut client = Client::connect_with(&url, hello, config).await?;
    let (mut scored, mut collecting) = (0, false);
    while let Some(event) = client.next_event().await {
        // `game_event` is `None` for events that are not game events.
        match event.game_event::<CoinsEvent>() {
            Some(Ok(CoinsEvent::Scored { points, total })) => {
                println!("+{points}: {total} points");
                (scored, collecting) = (scored + 1, false);
            }
            // The coin was a step away when the action was applied.
            Some(Ok(CoinsEvent::NothingInReach)) => collecting = false,
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        if let Event::Disconnected { reason } = &event {
            return Err(reason.to_string().into());
        }
        if scored == 3 {
            break;
        }
        // Steer once per delta, when the mirror has the tick's state.
        if collecting || !matches!(event, Event::Delta { .. }) {
            continue;
        }
        let Some((distance, walk)) = toward_nearest_coin(&client) else {
            continue;
        };
        if distance <= REACH - 2.0 {
            client.send_input(&Walk::default()).await?;
            client.send_action(&Action::Collect).await?;
            collecting = true;
        } else {
            client.send_input(&walk).await?;
        }
    }
    client.close().await;
    Ok(())
}

/// How far the nearest coin this client knows is, and the walk toward it:
/// slower when near, so as not to overshoot (a tick at full speed walks 20
/// units).
fn toward_nearest_coin(client: &Client) -> Option<(f32, Walk)> {
    let me = client.me()?.get::<Spot>()?.ok()?;
    let offset = |at: Spot| {
        let dx = f32::from(at.x) - f32::from(me.x);
        (dx, f32::from(at.y) - f32::from(me.y))
    };
    let (dx, dy) = client
        .world()
        .iter()
        .filter(|e| e.get::<Coin>().is_some())
        .filter_map(|e| e.get::<Spot>()?.ok())
        .map(offset)
        .min_by(|a, b| a.0.hypot(a.1).total_cmp(&b.0.hypot(b.1)))?;
    let distance = dx.hypot(dy);
    let scale = (distance / 20.0).min(1.0) * 127.0 / distance.max(1.0);
    let walk = Walk {
        dx: (dx * scale) as i8,
        dy: (dy * scale) as i8,
    };
    Some((distance, walk))
}
