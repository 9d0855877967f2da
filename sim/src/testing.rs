//! A harness to step a room by hand in tests, for Tessera and for games.
//!
//! [`TestRoom`] wraps a [`Room`], numbers inputs, steps ticks, decodes every
//! frame and keeps, per client, a mirror of what that client was told. Any
//! frame a real client could not apply (an update for an entity it never
//! saw, a tick that goes backwards) fails the test with a clear message.
//!
//! ```
//! use tessera_sim::games::arena::{Arena, Position};
//! use tessera_sim::testing::TestRoom;
//! use tessera_sim::RoomConfig;
//!
//! let mut t = TestRoom::new(&Arena, RoomConfig::default());
//! let a = t.join(1).entity_id;
//! let b = t.join(2).entity_id;
//! t.set(a, Position { x: 100.0, y: 100.0 });
//! t.set(b, Position { x: 150.0, y: 100.0 });
//! t.step();
//! assert!(t.view(1).entities.contains_key(&b));
//! ```

use std::collections::{BTreeMap, HashMap};

use bevy_ecs::prelude::*;
use bytes::Bytes;
use serde::Serialize;
use tessera_protocol::motion::MotionTrack;
use tessera_protocol::part_receiver::{Mirror, PartOutcome, PartReceiver};
use tessera_protocol::{
    Delta, DeltaPart, EntityState, RawValue, ServerMsg, Welcome, WireComponent,
};

use crate::boxed_resource::Boxed;
use crate::components::ClientId;
use crate::config::RoomConfig;
use crate::game::Game;
use crate::room::{JoinError, Outgoing, Room};
use crate::room_state::RoomState;

/// What one client was told: entity id to component id to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientMirror {
    pub entities: BTreeMap<u32, BTreeMap<u8, RawValue>>,
    pub tick: u32,
    pub ack_input: u32,
    pub chat: Vec<(u32, String)>,
    /// Game events, oldest first.
    pub events: Vec<RawValue>,
    /// The motion component (`Welcome.motion`), 0 for none.
    pub motion: u8,
    /// Entity id by slot, and the motion component's track per entity.
    slots: HashMap<u32, u32>,
    tracks: HashMap<u32, MotionTrack>,
}

impl ClientMirror {
    /// The mirror of a client that `welcome` welcomed.
    pub fn for_welcome(welcome: &Welcome) -> Self {
        Self {
            motion: welcome.motion,
            ..Self::default()
        }
    }

    /// Applies a delta the way a client must; an error names the violation.
    /// Unlike the SDK's mirror it stops at the first violation, leaving
    /// the mirror half-changed: a test fails there anyway.
    pub fn apply(&mut self, delta: &Delta) -> Result<(), String> {
        if delta.tick <= self.tick {
            return Err(format!("tick went from {} to {}", self.tick, delta.tick));
        }
        let tick = delta.tick;
        for id in &delta.left {
            if self.entities.remove(id).is_none() {
                return Err(format!("left for unknown entity {id}"));
            }
            self.tracks.remove(id);
            self.slots.retain(|_, held| held != id);
        }
        if !delta.slots.is_empty() && delta.slots.len() != delta.entered.len() {
            return Err("slots do not match entered".into());
        }
        for (i, e) in delta.entered.iter().enumerate() {
            let components = e
                .components
                .iter()
                .map(|c| (c.id, c.value.clone()))
                .collect();
            if self.entities.insert(e.id, components).is_some() {
                return Err(format!("entered for known entity {}", e.id));
            }
            if let Some(&slot) = delta.slots.get(i)
                && self.slots.insert(slot, e.id).is_some()
            {
                return Err(format!(
                    "entity {} entered in slot {slot}, which is held",
                    e.id
                ));
            }
            self.follow_motion(e, tick, true);
        }
        for e in &delta.updated {
            let known = self
                .entities
                .get_mut(&e.id)
                .ok_or_else(|| format!("update for unknown entity {}", e.id))?;
            for c in &e.components {
                known.insert(c.id, c.value.clone());
            }
            self.follow_motion(e, tick, false);
        }
        for m in &delta.moved {
            let id = *self
                .slots
                .get(&m.slot)
                .ok_or_else(|| format!("move for empty slot {}", m.slot))?;
            let track = self
                .tracks
                .get_mut(&id)
                .ok_or_else(|| format!("move for entity {id}, which has no position"))?;
            let value = track
                .apply(tick, m.dx, m.dy)
                .map_err(|e| format!("move of entity {id}: {e}"))?;
            let raw = RawValue::encode(&value).map_err(|e| e.to_string())?;
            if let Some(known) = self.entities.get_mut(&id) {
                known.insert(self.motion, raw);
            }
        }
        self.tick = tick;
        self.ack_input = delta.ack_input;
        Ok(())
    }

    /// Follows the motion component's value an entry carries.
    fn follow_motion(&mut self, entry: &EntityState, tick: u32, entered: bool) {
        if entered {
            self.tracks.remove(&entry.id);
        }
        let value = entry
            .components
            .iter()
            .rev()
            .find(|c| c.id == self.motion && self.motion != 0)
            .and_then(|c| c.value.decode::<u32>().ok());
        if let Some(value) = value {
            match self.tracks.get_mut(&entry.id) {
                Some(track) => track.set(value, tick),
                None => {
                    self.tracks.insert(entry.id, MotionTrack::new(value, tick));
                }
            }
        }
    }

    /// Every game event so far, decoded as the game's event type `E`.
    ///
    /// # Panics
    /// If one does not decode as `E`.
    pub fn events_as<E: serde::de::DeserializeOwned>(&self) -> Vec<E> {
        self.events
            .iter()
            .map(|e| e.decode().unwrap_or_else(|err| panic!("event: {err}")))
            .collect()
    }

    /// Decodes component `C` of entity `id`.
    pub fn get<C: WireComponent>(&self, id: u32) -> Option<C> {
        self.entities.get(&id)?.get(&C::ID)?.decode().ok()
    }
}

/// What a datagram client was told, kept by the rules of `PROTOCOL.md`
/// §6.2 ([`PartReceiver`]): each entity with the tick of the part that
/// last entered or updated it.
#[derive(Debug, Clone, Default)]
pub struct DatagramMirror {
    pub mirror: ClientMirror,
    ticks: BTreeMap<u32, u32>,
    receiver: PartReceiver,
}

impl DatagramMirror {
    /// Applies one part; the outcome says which tick (if any) to acknowledge.
    pub fn apply(&mut self, part: &DeltaPart) -> PartOutcome {
        let mut store = Store {
            mirror: &mut self.mirror,
            ticks: &mut self.ticks,
        };
        let outcome = self.receiver.apply(part, &mut store);
        if outcome.applied {
            self.mirror.tick = self.mirror.tick.max(part.tick);
            self.mirror.ack_input = self.mirror.ack_input.max(part.ack_input);
        }
        outcome
    }

    /// Tick of the part that last entered or updated entity `id`.
    pub fn entity_tick(&self, id: u32) -> Option<u32> {
        self.ticks.get(&id).copied()
    }

    /// The greatest tick whose whole state the mirror holds.
    pub fn complete(&self) -> u32 {
        self.receiver.complete()
    }
}

/// The entity storage of a [`DatagramMirror`], for its receiver.
struct Store<'a> {
    mirror: &'a mut ClientMirror,
    ticks: &'a mut BTreeMap<u32, u32>,
}

impl Mirror for Store<'_> {
    fn entity_tick(&self, id: u32) -> Option<u32> {
        self.ticks.get(&id).copied()
    }

    fn replace(&mut self, entry: &EntityState, tick: u32) {
        let components = entry
            .components
            .iter()
            .map(|c| (c.id, c.value.clone()))
            .collect();
        self.mirror.entities.insert(entry.id, components);
        self.ticks.insert(entry.id, tick);
    }

    fn merge(&mut self, entry: &EntityState, tick: u32) {
        if let Some(known) = self.mirror.entities.get_mut(&entry.id) {
            for c in &entry.components {
                known.insert(c.id, c.value.clone());
            }
            self.ticks.insert(entry.id, tick);
        }
    }

    fn remove(&mut self, id: u32) {
        self.mirror.entities.remove(&id);
        self.ticks.remove(&id);
    }

    fn ids_below(&self, tick: u32) -> Vec<u32> {
        self.ticks
            .iter()
            .filter(|(_, t)| **t < tick)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// A room under test. See the module docs.
#[derive(Debug)]
pub struct TestRoom {
    pub room: Room,
    seqs: HashMap<ClientId, u32>,
    last: Vec<Outgoing>,
    mirrors: HashMap<ClientId, ClientMirror>,
    datagram_mirrors: HashMap<ClientId, DatagramMirror>,
}

impl TestRoom {
    /// # Panics
    /// If `config` is invalid.
    pub fn new(game: &dyn Game, config: RoomConfig) -> Self {
        let room = Room::new(game, config).unwrap_or_else(|e| panic!("{e}"));
        Self::from_room(room)
    }

    pub fn from_room(room: Room) -> Self {
        Self {
            room,
            seqs: HashMap::new(),
            last: Vec::new(),
            mirrors: HashMap::new(),
            datagram_mirrors: HashMap::new(),
        }
    }

    /// Joins `client` with no join options.
    ///
    /// # Panics
    /// If the room refuses the join.
    pub fn join(&mut self, client: ClientId) -> Welcome {
        self.try_join(client, &RawValue::nil())
            .unwrap_or_else(|e| panic!("join of client {client} failed: {e}"))
    }

    /// Joins `client` with `options`.
    pub fn try_join(&mut self, client: ClientId, options: &RawValue) -> Result<Welcome, JoinError> {
        let welcome = self.room.join(client, options)?;
        self.mirrors
            .insert(client, ClientMirror::for_welcome(&welcome));
        Ok(welcome)
    }

    /// Joins `client` as player `player`, with the state it saved last
    /// time (see [`Room::join_saved`]).
    pub fn join_saved(
        &mut self,
        client: ClientId,
        player: &str,
        saved: Option<&[u8]>,
    ) -> Result<Welcome, JoinError> {
        let identity = crate::PlayerIdentity {
            player: player.to_owned(),
            display_name: None,
        };
        let mode = crate::DeliveryMode::Reliable;
        let welcome = self
            .room
            .join_saved(client, &identity, &RawValue::nil(), mode, saved)?;
        self.mirrors
            .insert(client, ClientMirror::for_welcome(&welcome));
        Ok(welcome)
    }

    /// Joins `client` as a datagram client (parts of at most `max_datagram`
    /// bytes), with no join options. Every part reaches it, and it
    /// acknowledges each tick it completes.
    ///
    /// # Panics
    /// If the room refuses the join.
    pub fn join_datagram(&mut self, client: ClientId, max_datagram: usize) -> Welcome {
        let mode = crate::DeliveryMode::Datagram { max_datagram };
        let welcome = self
            .room
            .join_with(client, &RawValue::nil(), mode)
            .unwrap_or_else(|e| panic!("join of client {client} failed: {e}"));
        self.datagram_mirrors
            .insert(client, DatagramMirror::default());
        welcome
    }

    /// Gives `client` control of the existing entity `net_id`.
    pub fn attach(&mut self, client: ClientId, net_id: u32) -> Result<Welcome, JoinError> {
        let welcome = self.room.attach(client, net_id)?;
        self.mirrors
            .insert(client, ClientMirror::for_welcome(&welcome));
        Ok(welcome)
    }

    pub fn leave(&mut self, client: ClientId) {
        self.room.leave(client);
        self.mirrors.remove(&client);
        self.datagram_mirrors.remove(&client);
    }

    /// Sends `intent` from `client` with the next sequence number.
    ///
    /// # Panics
    /// If the room refuses the input.
    pub fn input<T: Serialize>(&mut self, client: ClientId, intent: &T) {
        let seq = self.seqs.entry(client).or_insert(0);
        *seq += 1;
        let raw = RawValue::encode(intent).unwrap_or_else(|e| panic!("intent: {e}"));
        self.room
            .input(client, *seq, &raw)
            .unwrap_or_else(|e| panic!("input from client {client} refused: {e}"));
    }

    /// Sends a one-shot `action` from `client`.
    ///
    /// # Panics
    /// If the room refuses it.
    pub fn action<T: Serialize>(&mut self, client: ClientId, action: &T) {
        let raw = RawValue::encode(action).unwrap_or_else(|e| panic!("action: {e}"));
        self.room
            .action(client, &raw)
            .unwrap_or_else(|e| panic!("action from client {client} refused: {e}"));
    }

    /// Steps one tick and applies every frame to the clients' mirrors.
    ///
    /// # Panics
    /// If a frame does not decode or a client could not apply it.
    pub fn step(&mut self) -> &[Outgoing] {
        self.last.clear();
        self.room.step(&mut self.last);
        for out in &self.last {
            let msg = ServerMsg::decode(&out.frame)
                .unwrap_or_else(|e| panic!("frame for client {} does not decode: {e}", out.client));
            if let ServerMsg::DeltaPart(part) = &msg {
                let dm = self
                    .datagram_mirrors
                    .get_mut(&out.client)
                    .unwrap_or_else(|| panic!("a part for reliable client {}", out.client));
                if let Some(tick) = dm.apply(part).completed {
                    self.room.acknowledge(out.client, tick);
                }
                continue;
            }
            let mirror = match self.mirrors.get_mut(&out.client) {
                Some(mirror) => mirror,
                None => match self.datagram_mirrors.get_mut(&out.client) {
                    Some(dm) => &mut dm.mirror,
                    None => continue,
                },
            };
            match msg {
                ServerMsg::Delta(delta) => mirror
                    .apply(&delta)
                    .unwrap_or_else(|e| panic!("client {}: {e}", out.client)),
                ServerMsg::Chat { from, text } => mirror.chat.push((from, text)),
                ServerMsg::Event { payload } => mirror.events.push(payload),
                other => panic!("unexpected {} frame in a tick", other.kind()),
            }
        }
        &self.last
    }

    pub fn step_n(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Every frame of the last step, in order.
    pub fn last_frames(&self) -> &[Outgoing] {
        &self.last
    }

    /// Frames of the last step for `client`, in order.
    pub fn frames(&self, client: ClientId) -> Vec<Bytes> {
        self.last
            .iter()
            .filter(|o| o.client == client)
            .map(|o| o.frame.clone())
            .collect()
    }

    /// The delta `client` got in the last step, if any.
    pub fn delta(&self, client: ClientId) -> Option<Delta> {
        self.frames(client)
            .iter()
            .find_map(|f| match ServerMsg::decode(f) {
                Ok(ServerMsg::Delta(d)) => Some(d),
                _ => None,
            })
    }

    /// What `client` has been told so far.
    ///
    /// # Panics
    /// If `client` has not joined.
    pub fn view(&self, client: ClientId) -> &ClientMirror {
        self.mirrors
            .get(&client)
            .or_else(|| self.datagram_mirrors.get(&client).map(|d| &d.mirror))
            .unwrap_or_else(|| panic!("client {client} has not joined"))
    }

    /// The entity clients know as `net_id`.
    pub fn entity(&self, net_id: u32) -> Option<Entity> {
        let replication = &self.room.world().resource::<Boxed<RoomState>>().replication;
        replication.entity(replication.slot_of(net_id)?)
    }

    /// Inserts (or replaces) a component on entity `net_id`.
    ///
    /// # Panics
    /// If there is no such entity.
    pub fn set<C: Component>(&mut self, net_id: u32, component: C) {
        let entity = self
            .entity(net_id)
            .unwrap_or_else(|| panic!("no entity with net id {net_id}"));
        self.room.world_mut().entity_mut(entity).insert(component);
    }

    /// A copy of a component of entity `net_id`.
    pub fn get<C: Component + Clone>(&self, net_id: u32) -> Option<C> {
        self.room.world().get::<C>(self.entity(net_id)?).cloned()
    }
}
