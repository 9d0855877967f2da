//! One arena tick at 1,000 / 5,000 / 10,000 players (movement, grid,
//! interest, delta encoding for every client), and 500 rooms of 10.
//!
//! Players spawn uniformly (seeded) in the 4096 x 4096 world, walk at the
//! arena speed, and re-draw their direction every 20 ticks (2 s at 10 Hz),
//! each at its own phase, as the `tessera-bots` crowd scenario does.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/crowd.rs"]
mod crowd;

use crowd::Crowd;

fn arena_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("arena_tick");
    group.sample_size(20);
    for players in [1_000u64, 5_000, 10_000] {
        let mut crowd = Crowd::new(players, 4096.0, 1);
        group.throughput(Throughput::Elements(players));
        group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, _| {
            b.iter(|| black_box(crowd.tick()));
        });
        let stats = crowd.room.stats();
        eprintln!(
            "arena_tick/{players}: visible mean {:.1}, max {}, delta bytes/client {:.0}",
            stats.visible_total as f64 / players as f64,
            stats.visible_max,
            stats.delta_bytes as f64 / players as f64
        );
    }
    group.finish();
}

fn many_small_rooms(c: &mut Criterion) {
    let mut group = c.benchmark_group("small_rooms");
    group.sample_size(20);
    // 500 matches of 10 players, each in a 400 x 400 area so they see each other.
    let mut rooms: Vec<Crowd> = (0..500).map(|i| Crowd::new(10, 400.0, 100 + i)).collect();
    group.throughput(Throughput::Elements(5_000));
    group.bench_function("500x10", |b| {
        b.iter(|| rooms.iter_mut().map(Crowd::tick).sum::<usize>());
    });
    group.finish();
}

criterion_group!(benches, arena_tick, many_small_rooms);
criterion_main!(benches);
