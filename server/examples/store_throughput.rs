//! How many player-state upserts a second the store takes, the way the
//! worker writes them: batches of 1,000 over 10,000 players, each round
//! a higher version of everyone.
//!
//! ```text
//! cargo run --release -p tessera-server --example store_throughput -- \
//!     'sqlite:///tmp/tessera-bench/store.db?mode=rwc' [upserts, default 200000]
//! cargo run --release -p tessera-server --example store_throughput -- \
//!     postgres://postgres@127.0.0.1:5432/tessera_bench
//! ```
//!
//! Versions start at the current Unix millisecond, so a rerun against the
//! same database still replaces every row instead of measuring no-ops.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tessera_server::persist::record::{PlayerState, Record};
use tessera_server::persist::store::Store;

const BATCH: usize = 1_000;
const PLAYERS: u64 = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: store_throughput <database url> [upserts]")?;
    let total: u64 = match args.next() {
        Some(n) => n.parse().context("upserts: a number")?,
        None => 200_000,
    };
    let store = Store::connect(&url).await.context("connect")?;
    let first_version = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    // About what a small game saves per player.
    let state = vec![0xa5_u8; 96];

    let started = Instant::now();
    let mut written = 0_u64;
    let mut batch = Vec::with_capacity(BATCH);
    while written < total {
        batch.clear();
        let end = (written + BATCH as u64).min(total);
        batch.extend((written..end).map(|i| {
            Record::PlayerState(PlayerState {
                game: "bench".into(),
                player: format!("player-{}", i % PLAYERS),
                version: first_version + i / PLAYERS,
                room: format!("room-{}", i % 100),
                saved_at_ms: first_version + i,
                state: state.clone(),
            })
        }));
        store.write_batch(&batch).await.context("write_batch")?;
        written = end;
    }
    let elapsed = started.elapsed();

    println!(
        "{}: {written} upserts in batches of {BATCH} over {PLAYERS} players in {:.2} s: {:.0} upserts/s",
        store.backend(),
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
    );
    store.close().await;
    Ok(())
}
