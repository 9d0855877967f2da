//! Steps the crowd scenario of `benches/tick.rs` a fixed number of ticks, for
//! instruction counts that do not depend on machine load:
//!
//! ```sh
//! cargo build --release -p tessera-sim --example crowd_ticks
//! valgrind --tool=callgrind --toggle-collect='*measured_ticks*' \
//!     target/release/examples/crowd_ticks 10000 10
//! ```
//!
//! Arguments: players (default 10,000) and ticks (default 10). Only the
//! ticks after the room has settled (everyone joined and got the join
//! snapshot) are counted, as in the benchmark.

#[path = "../benches/support/crowd.rs"]
mod crowd;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let players = args.next().and_then(Result::ok).unwrap_or(10_000);
    let ticks = args.next().and_then(Result::ok).unwrap_or(10);
    let mut crowd = crowd::Crowd::new(players, 4096.0, 1);
    let started = std::time::Instant::now();
    let frames = measured_ticks(&mut crowd, ticks);
    let per_tick = started.elapsed() / ticks.max(1) as u32;
    let stats = crowd.room.stats();
    println!(
        "{players} players, {ticks} ticks: {per_tick:?} per tick, {frames} frames, visible mean {:.1}, delta bytes/client {:.0}",
        stats.visible_total as f64 / players as f64,
        stats.delta_bytes as f64 / players as f64
    );
}

/// The ticks callgrind counts (`--toggle-collect`), apart from the set-up.
#[inline(never)]
fn measured_ticks(crowd: &mut crowd::Crowd, ticks: u64) -> usize {
    (0..ticks).map(|_| crowd.tick()).sum()
}
