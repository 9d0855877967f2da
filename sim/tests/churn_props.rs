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
use tessera_sim::{DeliveryMode, NetId, Outgoing, Room, RoomConfig};

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
    /// Clients that lost a delta and have not had one since.
    behind: Vec<u64>,
    next_client: u64,
    seq: u32,
    /// Moves applied by every mirror so far.
    moves: usize,
}

impl Harness {
    fn new() -> Self {
        let config = RoomConfig {
            aoi_radius: 120.0,
            aoi_margin: 15.0,
            ..RoomConfig::default()
        };
        Self {
            room: Room::new(&Arena, config).expect("room"),
            clients: Vec::new(),
            mirrors: HashMap::new(),
            lose: Vec::new(),
            behind: Vec::new(),
            next_client: 1,
            seq: 0,
            moves: 0,
        }
    }

    fn step(&mut self) {
        let mut out: Vec<Outgoing> = Vec::new();
        self.room.step(&mut out);
        for o in out {
            if self.lose.contains(&o.client) {
                self.room.delivery_failed(o.client);
                self.behind.push(o.client);
                continue;
            }
            if let (Ok(ServerMsg::Delta(d)), Some(m)) =
                (ServerMsg::decode(&o.frame), self.mirrors.get_mut(&o.client))
            {
                m.apply(&d)
                    .unwrap_or_else(|e| panic!("client {}: {e}", o.client));
                self.moves += d.moved.len();
                self.behind.retain(|c| *c != o.client);
            }
        }
        self.lose.clear();
    }

    /// Every entity a client's mirror holds has the server's current
    /// values, for each client that got every delta sent to it.
    fn check_mirrors_hold_current_values(&self) -> Result<(), TestCaseError> {
        for (c, mirror) in &self.mirrors {
            if self.behind.contains(c) {
                continue;
            }
            for (id, seen) in &mirror.entities {
                let truth: Vec<(u8, Vec<u8>)> = match self.room.wire_state(*id) {
                    Some(state) => state.into_iter().map(|(k, v)| (k, v.to_vec())).collect(),
                    None => continue, // despawned this tick: it leaves next delta
                };
                let seen: Vec<(u8, Vec<u8>)> = seen
                    .iter()
                    .map(|(k, v)| (*k, v.as_bytes().to_vec()))
                    .collect();
                prop_assert_eq!(
                    seen,
                    truth,
                    "client {} at tick {} holds a stale {}",
                    c,
                    self.room.tick(),
                    id
                );
            }
        }
        Ok(())
    }

    fn join(&mut self, x: f32, y: f32) {
        let c = self.next_client;
        self.next_client += 1;
        let welcome = self.room.join(c, &RawValue::nil()).expect("join");
        let id = welcome.entity_id;
        let world = self.room.world_mut();
        let mut q = world.query::<(bevy_ecs::entity::Entity, &NetId)>();
        let e = q
            .iter(world)
            .find(|(_, n)| n.0 == id)
            .map(|(e, _)| e)
            .expect("entity");
        world.entity_mut(e).insert(Position { x, y });
        self.clients.push(c);
        self.mirrors.insert(c, ClientMirror::for_welcome(&welcome));
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Join { x, y } => self.join(x, y),
            Op::Leave(i) => {
                if let Some(c) = self.pick(i) {
                    self.room.leave(c);
                    self.clients.retain(|x| *x != c);
                    self.mirrors.remove(&c);
                    self.behind.retain(|x| *x != c);
                }
            }
            Op::Walk(i, dx, dy) => {
                if let Some(c) = self.pick(i) {
                    self.seq += 1;
                    let intent = RawValue::encode(&Walk { dx, dy }).expect("encodes");
                    self.room.input(c, self.seq, &intent).expect("input");
                }
            }
            Op::Lose(i) => {
                if let Some(c) = self.pick(i) {
                    self.lose.push(c)
                }
            }
            Op::Tick => self.step(),
        }
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
        let mut h = Harness::new();
        for op in ops {
            h.apply(op);
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

    /// Moves (and every other change) keep each mirror exactly on the
    /// server's values, tick after tick, through joins, leaves, walks and
    /// lost deltas: a client that lost one is checked again once it got
    /// the next.
    #[test]
    fn mirrors_hold_the_servers_values_after_every_tick(ops in prop::collection::vec(op(), 1..160)) {
        let mut h = Harness::new();
        for op in ops {
            let ticked = matches!(op, Op::Tick);
            h.apply(op);
            if ticked {
                h.check_mirrors_hold_current_values()?;
            }
        }
    }
}

/// Walkers that keep walking do travel as moves: the property above is
/// about them, not only about entries.
#[test]
fn steady_walkers_travel_as_moves() {
    let mut h = Harness::new();
    for i in 0..6 {
        h.join(200.0 + 10.0 * i as f32, 200.0);
    }
    for i in 0..6 {
        h.apply(Op::Walk(i, 90, -40 + 15 * i as i8));
    }
    for _ in 0..12 {
        h.step();
        h.check_mirrors_hold_current_values()
            .expect("current values");
    }
    assert!(h.moves >= 6 * 5 * 8, "{} moves", h.moves);
}

/// A client of protocol version 1 is told no motion component, and gets
/// every change as an `updated` entry that its mirror applies as such.
#[test]
fn a_version_1_client_gets_every_change_as_an_entry() {
    let mut h = Harness::new();
    h.join(300.0, 300.0);
    h.apply(Op::Walk(0, 100, 20));
    let old = h.next_client;
    h.next_client += 1;
    let welcome = h
        .room
        .join_with(old, &RawValue::nil(), DeliveryMode::ReliableWithoutMoves)
        .expect("join");
    assert_eq!(welcome.motion, 0, "no moves for version 1");
    let world = h.room.world_mut();
    let mut q = world.query::<(bevy_ecs::entity::Entity, &NetId)>();
    let e = q
        .iter(world)
        .find(|(_, n)| n.0 == welcome.entity_id)
        .map(|(e, _)| e)
        .expect("entity");
    world.entity_mut(e).insert(Position { x: 320.0, y: 300.0 });
    h.clients.push(old);
    h.mirrors.insert(old, ClientMirror::for_welcome(&welcome));
    let mut updated = 0;
    for _ in 0..10 {
        let mut out: Vec<Outgoing> = Vec::new();
        h.room.step(&mut out);
        for o in out {
            if let Ok(ServerMsg::Delta(d)) = ServerMsg::decode(&o.frame) {
                if o.client == old {
                    assert!(d.slots.is_empty() && d.moved.is_empty(), "{d:?}");
                    updated += d.updated.len();
                }
                h.mirrors
                    .get_mut(&o.client)
                    .expect("mirror")
                    .apply(&d)
                    .expect("applies");
            }
        }
        h.check_mirrors_hold_current_values()
            .expect("current values");
    }
    assert!(updated >= 8, "{updated} updates of the walker");
}
