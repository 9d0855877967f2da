//! The crowd scenario shared by the tick benchmark and the instruction-count
//! example: players spawn uniformly (seeded), walk at the arena speed and
//! re-draw their direction every 20 ticks (2 s at 10 Hz), each at its own
//! phase, as the `tessera-bots` crowd scenario does.

use tessera_protocol::RawValue;
use tessera_protocol::arena::Walk;
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::TestRoom;
use tessera_sim::{Outgoing, Room, RoomConfig};

/// A small deterministic generator for the bench's own choices.
#[derive(Debug)]
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

#[derive(Debug)]
pub struct Crowd {
    pub room: Room,
    rng: SplitMix,
    seq: u32,
    players: u64,
    out: Vec<Outgoing>,
}

impl Crowd {
    pub fn new(players: u64, area: f32, seed: u64) -> Self {
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

    pub fn tick(&mut self) -> usize {
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
