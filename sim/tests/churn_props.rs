//! Property: whatever happens (joins, leaves, movement, lost deltas), once
//! deltas flow again every client's mirror matches the server: it holds every
//! entity within the radius with its current state, nothing beyond radius +
//! margin, and no stale values.

use std::collections::HashMap;

use proptest::prelude::*;
use tessera_protocol::arena::Walk;
use tessera_protocol::{RawValue, ServerMsg};
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::ClientMirror;
use tessera_sim::{NetId, Outgoing, Room, RoomConfig};

#[derive(Debug, Clone)]
enum Op {
    Join {
        x: f32,
        y: f32,
    },
    Leave(usize),
    Walk(usize, i8, i8),
    /// The next delta of this client is lost.
    Lose(usize),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0.0f32..600.0, 0.0f32..600.0).prop_map(|(x, y)| Op::Join { x, y }),
        1 => (0usize..32).prop_map(Op::Leave),
        3 => (0usize..32, -127i8..=127, -127i8..=127).prop_map(|(c, dx, dy)| Op::Walk(c, dx, dy)),
        2 => (0usize..32).prop_map(Op::Lose),
        4 => Just(Op::Tick),
    ]
}

struct Harness {
    room: Room,
    clients: Vec<u64>,
    mirrors: HashMap<u64, ClientMirror>,
    lose: Vec<u64>,
    next_client: u64,
    seq: u32,
}

impl Harness {
    fn step(&mut self) {
        let mut out: Vec<Outgoing> = Vec::new();
        self.room.step(&mut out);
        for o in out {
            if self.lose.contains(&o.client) {
                self.room.delivery_failed(o.client);
                continue;
            }
            if let (Ok(ServerMsg::Delta(d)), Some(m)) =
                (ServerMsg::decode(&o.frame), self.mirrors.get_mut(&o.client))
            {
                m.apply(&d)
                    .unwrap_or_else(|e| panic!("client {}: {e}", o.client));
            }
        }
        self.lose.clear();
    }

    fn pick(&self, i: usize) -> Option<u64> {
        (!self.clients.is_empty()).then(|| self.clients[i % self.clients.len()])
    }

    fn position_of(&self, client: u64) -> Position {
        let entity = self.room.clients().get(client).expect("client").entity;
        *self.room.world().get::<Position>(entity).expect("position")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn mirrors_converge_to_the_server(ops in prop::collection::vec(op(), 1..120)) {
        let mut h = Harness {
            room: Room::new(&Arena, RoomConfig { aoi_radius: 120.0, aoi_margin: 15.0, ..RoomConfig::default() }).expect("room"),
            clients: Vec::new(),
            mirrors: HashMap::new(),
            lose: Vec::new(),
            next_client: 1,
            seq: 0,
        };
        for op in ops {
            match op {
                Op::Join { x, y } => {
                    let c = h.next_client;
                    h.next_client += 1;
                    let id = h.room.join(c, &RawValue::nil()).expect("join").entity_id;
                    let world = h.room.world_mut();
                    let mut q = world.query::<(bevy_ecs::entity::Entity, &NetId)>();
                    let e = q.iter(world).find(|(_, n)| n.0 == id).map(|(e, _)| e).expect("entity");
                    world.entity_mut(e).insert(Position { x, y });
                    h.clients.push(c);
                    h.mirrors.insert(c, ClientMirror::default());
                }
                Op::Leave(i) => if let Some(c) = h.pick(i) {
                    h.room.leave(c);
                    h.clients.retain(|x| *x != c);
                    h.mirrors.remove(&c);
                },
                Op::Walk(i, dx, dy) => if let Some(c) = h.pick(i) {
                    h.seq += 1;
                    let intent = RawValue::encode(&Walk { dx, dy }).expect("encodes");
                    h.room.input(c, h.seq, &intent).expect("input");
                },
                Op::Lose(i) => if let Some(c) = h.pick(i) { h.lose.push(c) },
                Op::Tick => h.step(),
            }
        }
        // Everyone stops; deltas flow without loss until views settle.
        for &c in &h.clients.clone() {
            h.seq += 1;
            let stop = RawValue::encode(&Walk::default()).expect("encodes");
            h.room.input(c, h.seq, &stop).expect("input");
        }
        for _ in 0..4 {
            h.step();
        }
        for &c in &h.clients {
            let me = h.position_of(c);
            let mirror = &h.mirrors[&c];
            for &other in &h.clients {
                let p = h.position_of(other);
                let entity = h.room.clients().get(other).expect("client").entity;
                let id = h.room.world().get::<NetId>(entity).expect("net id").0;
                let d = ((p.x - me.x).powi(2) + (p.y - me.y).powi(2)).sqrt();
                let truth: Vec<(u8, Vec<u8>)> = h.room.wire_state(id).expect("state")
                    .into_iter().map(|(k, v)| (k, v.to_vec())).collect();
                match mirror.entities.get(&id) {
                    Some(seen) => {
                        prop_assert!(d <= 135.0 + 0.01, "client {c} still sees {id} at {d}");
                        let seen: Vec<(u8, Vec<u8>)> = seen.iter().map(|(k, v)| (*k, v.as_bytes().to_vec())).collect();
                        prop_assert_eq!(seen, truth, "client {} has stale state of {}", c, id);
                    }
                    None => prop_assert!(d > 120.0, "client {c} misses {id} at {d}"),
                }
            }
            prop_assert!(mirror.entities.keys().all(|id| h.room.wire_state(*id).is_some()), "client {} sees a despawned entity", c);
        }
    }
}
