//! One arena tick at 1,000 / 5,000 / 10,000 players (movement, grid,
//! interest, delta encoding for every client), and 500 rooms of 10.
//!
//! Players spawn uniformly (seeded) in the 4096 x 4096 world, walk at the
//! arena speed, and re-draw their direction every 20 ticks (2 s at 10 Hz),
//! each at its own phase, as the `tessera-bots` crowd scenario does.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tessera_protocol::RawValue;
use tessera_protocol::arena::Walk;
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::TestRoom;
use tessera_sim::{Outgoing, Room, RoomConfig};

/// A small deterministic generator for the bench's own choices.
struct SplitMix(u64);

impl SplitMix {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

struct Crowd {
    room: Room,
    rng: SplitMix,
    seq: u32,
    players: u64,
    out: Vec<Outgoing>,
}

impl Crowd {
    fn new(players: u64, area: f32, seed: u64) -> Self {
        // TESSERA_BENCH_CELL overrides the grid cell size, to compare sizes.
        let cell_size = std::env::var("TESSERA_BENCH_CELL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let config = RoomConfig {
            seed,
            cell_size,
            ..RoomConfig::default()
        };
        let mut t = TestRoom::new(&Arena, config);
        let mut rng = SplitMix(seed);
        for client in 1..=players {
            let id = t.join(client).entity_id;
            let (x, y) = (rng.next_f32() * area, rng.next_f32() * area);
            t.set(id, Position { x, y });
        }
        let mut crowd = Self {
            room: t.room,
            rng,
            seq: 0,
            players,
            out: Vec::new(),
        };
        for client in 1..=players {
            crowd.redraw(client);
        }
        // Settle: everyone has received the join snapshot.
        for _ in 0..3 {
            crowd.tick();
        }
        crowd
    }

    fn redraw(&mut self, client: u64) {
        let angle = self.rng.next_f32() * std::f32::consts::TAU;
        let walk = RawValue::encode(&Walk::from_direction(angle.cos(), angle.sin()))
            .expect("walk encodes");
        self.room
            .input(client, self.seq, &walk)
            .expect("input accepted");
    }

    fn tick(&mut self) -> usize {
        self.seq += 1;
        let phase = u64::from(self.room.tick() % 20);
        for client in (1..=self.players).filter(|c| c % 20 == phase) {
            self.redraw(client);
        }
        self.out.clear();
        self.room.step(&mut self.out);
        self.out.len()
    }
}

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
