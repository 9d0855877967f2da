//! What persistence costs the tick: one game event from the game's payload
//! to the queue (encode, JSON form, record, offer), one player save
//! offered, and a checkpoint snapshot of an arena room of 5,000 players.
//! The queue is drained outside the timed part, as the node's task does.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;
use tessera_server::persist::queue;
use tessera_server::persist::record::{GameEvent, PlayerState, Record};
use tessera_sim::tessera_protocol::RawValue;

#[path = "../../sim/benches/support/crowd.rs"]
mod crowd;

#[derive(Serialize)]
struct CoinCollected<'a> {
    player: &'a str,
    points: u32,
    total: u32,
}

/// Runs `offer` `iters` times into a queue that has room for all of them,
/// timing only the offers.
fn time_offers(iters: u64, mut record: impl FnMut(u64) -> Record) -> Duration {
    let (sink, mut queue) = queue::channel(iters as usize);
    let started = Instant::now();
    for i in 0..iters {
        black_box(sink.offer(record(i)));
    }
    let took = started.elapsed();
    let mut drained = Vec::new();
    queue.try_batch(iters as usize, &mut drained);
    took
}

fn enqueue(c: &mut Criterion) {
    let mut group = c.benchmark_group("persist_enqueue");
    group.bench_function("event", |b| {
        b.iter_custom(|iters| {
            time_offers(iters, |i| {
                // What the game's `Journal::record` and the host do.
                let payload = RawValue::encode(&CoinCollected {
                    player: "player-1234",
                    points: 3,
                    total: i as u32,
                })
                .unwrap_or_else(|_| RawValue::nil());
                let json = GameEvent::json_payload(payload.as_bytes()).unwrap_or_default();
                Record::Event(GameEvent {
                    id: format!("field:0123456789abcdef:{i}:0"),
                    game: "coins".into(),
                    room: "field".into(),
                    kind: "coin_collected".into(),
                    tick: i as u32,
                    at_ms: 0,
                    payload: json,
                })
            })
        });
    });
    let state = vec![7u8; 48];
    group.bench_function("player_state", |b| {
        b.iter_custom(|iters| {
            time_offers(iters, |i| {
                Record::PlayerState(PlayerState {
                    game: "arena".into(),
                    player: "player-1234".into(),
                    version: i,
                    room: "field".into(),
                    saved_at_ms: 0,
                    state: state.clone(),
                })
            })
        });
    });
    group.finish();
}

fn checkpoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(20);
    let mut crowd = crowd::Crowd::new(5_000, 4096.0, 1);
    for _ in 0..5 {
        crowd.tick();
    }
    group.bench_function("arena_snapshot_5000", |b| {
        b.iter(|| black_box(crowd.room.snapshot().map(|s| s.len())));
    });
    let bytes = crowd.room.snapshot().map_or(0, |s| s.len());
    eprintln!("checkpoint/arena_snapshot_5000: {bytes} bytes");
    group.finish();
}

criterion_group!(benches, enqueue, checkpoint);
criterion_main!(benches);
