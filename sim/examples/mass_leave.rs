//! Times a mass disconnect: half the players of a settled crowd room leave
//! at once (a network split, or an attacker dropping its connections), then
//! the room ticks.
//!
//! ```sh
//! cargo build --release -p tessera-sim --example mass_leave
//! taskset -c 1 target/release/examples/mass_leave 10000
//! ```

#[path = "../benches/support/crowd.rs"]
mod crowd;

fn main() {
    let players = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(10_000);
    let mut crowd = crowd::Crowd::new(players, 4096.0, 1);
    let started = std::time::Instant::now();
    for client in (1..=players).step_by(2) {
        crowd.room.leave(client);
    }
    let left = started.elapsed();
    let mut out = Vec::new();
    crowd.room.step(&mut out);
    println!(
        "{players} players, {} leave: leaves {left:?}, then the tick {:?}; {} players left",
        players.div_ceil(2),
        started.elapsed() - left,
        crowd.room.player_count()
    );
}
