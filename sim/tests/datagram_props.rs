//! Property: datagram clients converge through a lossy network. Parts are
//! dropped (20 %), delayed and reordered, and sometimes duplicated; acks are
//! lost and delayed too; the reliable path (full states) is delayed but in
//! order. Throughout, every entity in a datagram client's mirror holds
//! exactly the server's state of the tick it was last written at (so an
//! older state never overwrote a newer one), and once everyone stops, every
//! mirror converges to the server's state within a few ticks, loss and all.
//! Reliable clients share the room and converge as before.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use tessera_protocol::arena::Walk;
use tessera_protocol::{RawValue, ServerMsg};
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::{ClientMirror, DatagramMirror};
use tessera_sim::{DeliveryMode, FrameKind, NetId, Outgoing, Room, RoomConfig};

/// Datagrams small enough that a crowd's state takes several parts.
const MAX_DATAGRAM: usize = 120;
const RADIUS: f32 = 120.0;
const MARGIN: f32 = 15.0;

#[derive(Debug, Clone)]
enum Op {
    Join { x: f32, y: f32, datagram: bool },
    Leave(usize),
    Walk(usize, i8, i8),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0.0f32..400.0, 0.0f32..400.0, prop::bool::weighted(0.7))
            .prop_map(|(x, y, datagram)| Op::Join { x, y, datagram }),
        1 => (0usize..32).prop_map(Op::Leave),
        3 => (0usize..32, -127i8..=127, -127i8..=127).prop_map(|(c, dx, dy)| Op::Walk(c, dx, dy)),
        5 => Just(Op::Tick),
    ]
}

/// A small deterministic generator for the network's choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

type Wire = Vec<(u8, Vec<u8>)>;

struct Harness {
    room: Room,
    clients: Vec<u64>,
    reliable: HashMap<u64, ClientMirror>,
    datagram: HashMap<u64, DatagramMirror>,
    /// Parts in flight: (arrival tick, client, frame).
    air: Vec<(u32, u64, bytes::Bytes)>,
    /// Reliable frames of datagram clients: in order, each not before the last.
    stream: Vec<(u32, u64, bytes::Bytes)>,
    /// Acks in flight: (arrival tick, client, tick).
    acks: Vec<(u32, u64, u32)>,
    /// The server's wire state of every entity after each recent tick.
    truth: BTreeMap<u32, HashMap<u32, Wire>>,
    /// Per (client, entity), the tick its mirror entry was last seen at.
    seen_ticks: HashMap<(u64, u32), u32>,
    rng: Rng,
    loss: u64,
    next_client: u64,
    seq: u32,
}

impl Harness {
    fn step(&mut self) -> Result<(), TestCaseError> {
        let mut out: Vec<Outgoing> = Vec::new();
        self.room.step(&mut out);
        let now = self.room.tick();
        self.record_truth(now);
        for o in out {
            if let Some(m) = self.reliable.get_mut(&o.client) {
                if let Ok(ServerMsg::Delta(d)) = ServerMsg::decode(&o.frame) {
                    m.apply(&d)
                        .map_err(|e| TestCaseError::fail(format!("client {}: {e}", o.client)))?;
                }
                continue;
            }
            match o.kind {
                FrameKind::Datagram => {
                    if self.rng.chance(self.loss) {
                        continue;
                    }
                    let at = now + self.rng.below(5) as u32;
                    if self.rng.chance(5) {
                        self.air.push((at + 1, o.client, o.frame.clone()));
                    }
                    self.air.push((at, o.client, o.frame));
                }
                FrameKind::Delta => {
                    let last = self
                        .stream
                        .iter()
                        .filter(|s| s.1 == o.client)
                        .map(|s| s.0)
                        .max();
                    let at = (now + self.rng.below(3) as u32).max(last.unwrap_or(0));
                    self.stream.push((at, o.client, o.frame));
                }
                FrameKind::Chat | FrameKind::Event => {}
            }
        }
        self.deliver(now)
    }

    fn deliver(&mut self, now: u32) -> Result<(), TestCaseError> {
        let (due_acks, rest): (Vec<_>, Vec<_>) = self.acks.drain(..).partition(|a| a.0 <= now);
        self.acks = rest;
        for (_, client, tick) in due_acks {
            self.room.acknowledge(client, tick);
        }
        let (mut due, rest): (Vec<_>, Vec<_>) = self.air.drain(..).partition(|a| a.0 <= now);
        self.air = rest;
        // Arrivals of one tick come in any order.
        for i in (1..due.len()).rev() {
            due.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        let (stream, rest): (Vec<_>, Vec<_>) = self.stream.drain(..).partition(|a| a.0 <= now);
        self.stream = rest;
        for (_, client, frame) in stream.into_iter().chain(due) {
            let Some(m) = self.datagram.get_mut(&client) else {
                continue;
            };
            let Ok(ServerMsg::DeltaPart(part)) = ServerMsg::decode(&frame) else {
                return Err(TestCaseError::fail("a datagram client got something else"));
            };
            if let Some(tick) = m.apply(&part).completed
                && !self.rng.chance(self.loss)
            {
                self.acks
                    .push((now + self.rng.below(2) as u32, client, tick));
            }
        }
        self.check_no_stale_state()
    }

    fn record_truth(&mut self, now: u32) {
        let world = self.room.world_mut();
        let mut q = world.query::<&NetId>();
        let ids: Vec<u32> = q.iter(world).map(|n| n.0).collect();
        let state = ids
            .into_iter()
            .filter_map(|id| {
                let wire = self.room.wire_state(id)?;
                Some((id, wire.into_iter().map(|(k, v)| (k, v.to_vec())).collect()))
            })
            .collect();
        self.truth.insert(now, state);
        while self.truth.len() > 64 {
            self.truth.pop_first();
        }
    }

    /// Every entity a datagram mirror holds is exactly the server's state at
    /// the tick it was written at, and that tick never goes back.
    fn check_no_stale_state(&mut self) -> Result<(), TestCaseError> {
        for (client, m) in &self.datagram {
            for (id, seen) in &m.mirror.entities {
                let tick = m.entity_tick(*id).expect("every entity has a tick");
                let before = self.seen_ticks.insert((*client, *id), tick).unwrap_or(0);
                prop_assert!(
                    before <= tick,
                    "client {client}: entity {id} went back from tick {before} to {tick}"
                );
                let Some(truth) = self.truth.get(&tick).and_then(|t| t.get(id)) else {
                    continue;
                };
                let seen: Wire = seen
                    .iter()
                    .map(|(k, v)| (*k, v.as_bytes().to_vec()))
                    .collect();
                prop_assert_eq!(
                    &seen,
                    truth,
                    "client {} holds entity {} not as of tick {}",
                    client,
                    id,
                    tick
                );
            }
        }
        Ok(())
    }

    fn pick(&self, i: usize) -> Option<u64> {
        (!self.clients.is_empty()).then(|| self.clients[i % self.clients.len()])
    }

    fn position_of(&self, client: u64) -> Position {
        let entity = self.room.clients().get(client).expect("client").entity;
        *self.room.world().get::<Position>(entity).expect("position")
    }

    fn mirror(&self, client: u64) -> &ClientMirror {
        self.reliable
            .get(&client)
            .unwrap_or_else(|| &self.datagram[&client].mirror)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn datagram_mirrors_converge_through_loss(
        ops in prop::collection::vec(op(), 1..150),
        seed in 1u64..,
    ) {
        let config = RoomConfig { aoi_radius: RADIUS, aoi_margin: MARGIN, ..RoomConfig::default() };
        let mut h = Harness {
            room: Room::new(&Arena, config).expect("room"),
            clients: Vec::new(),
            reliable: HashMap::new(),
            datagram: HashMap::new(),
            air: Vec::new(),
            stream: Vec::new(),
            acks: Vec::new(),
            truth: BTreeMap::new(),
            seen_ticks: HashMap::new(),
            rng: Rng(seed),
            loss: 20,
            next_client: 1,
            seq: 0,
        };
        for op in ops {
            match op {
                Op::Join { x, y, datagram } => {
                    let c = h.next_client;
                    h.next_client += 1;
                    let mode = if datagram {
                        DeliveryMode::Datagram { max_datagram: MAX_DATAGRAM }
                    } else {
                        DeliveryMode::Reliable
                    };
                    let welcome = h.room.join_with(c, &RawValue::nil(), mode).expect("join");
                    let id = welcome.entity_id;
                    let world = h.room.world_mut();
                    let mut q = world.query::<(bevy_ecs::entity::Entity, &NetId)>();
                    let e = q.iter(world).find(|(_, n)| n.0 == id).map(|(e, _)| e).expect("entity");
                    world.entity_mut(e).insert(Position { x, y });
                    h.clients.push(c);
                    if datagram {
                        h.datagram.insert(c, DatagramMirror::default());
                    } else {
                        h.reliable.insert(c, ClientMirror::for_welcome(&welcome));
                    }
                }
                Op::Leave(i) => if let Some(c) = h.pick(i) {
                    h.room.leave(c);
                    h.clients.retain(|x| *x != c);
                    h.reliable.remove(&c);
                    h.datagram.remove(&c);
                },
                Op::Walk(i, dx, dy) => if let Some(c) = h.pick(i) {
                    h.seq += 1;
                    let intent = RawValue::encode(&Walk { dx, dy }).expect("encodes");
                    h.room.input(c, h.seq, &intent).expect("input");
                },
                Op::Tick => h.step()?,
            }
        }
        // Everyone stops; the network stays as lossy. A few ticks later
        // every mirror matches the server.
        for &c in &h.clients.clone() {
            h.seq += 1;
            let stop = RawValue::encode(&Walk::default()).expect("encodes");
            h.room.input(c, h.seq, &stop).expect("input");
        }
        for _ in 0..25 {
            h.step()?;
        }
        for &c in &h.clients {
            let me = h.position_of(c);
            let mirror = h.mirror(c);
            for &other in &h.clients {
                let p = h.position_of(other);
                let entity = h.room.clients().get(other).expect("client").entity;
                let id = h.room.world().get::<NetId>(entity).expect("net id").0;
                let d = ((p.x - me.x).powi(2) + (p.y - me.y).powi(2)).sqrt();
                let truth: Wire = h.room.wire_state(id).expect("state")
                    .into_iter().map(|(k, v)| (k, v.to_vec())).collect();
                match mirror.entities.get(&id) {
                    Some(seen) => {
                        prop_assert!(d <= RADIUS + MARGIN + 0.01, "client {c} still sees {id} at {d}");
                        let seen: Wire = seen.iter().map(|(k, v)| (*k, v.as_bytes().to_vec())).collect();
                        prop_assert_eq!(seen, truth, "client {} has stale state of {}", c, id);
                    }
                    None => prop_assert!(d > RADIUS, "client {c} misses {id} at {d}"),
                }
            }
            prop_assert!(mirror.entities.keys().all(|id| h.room.wire_state(*id).is_some()), "client {} sees a despawned entity", c);
        }
    }
}
