//! The replication registry and per-tick change collection.
//!
//! For every registered component the room keeps the last wire value it
//! encoded per entity. Each tick, components that bevy reports as changed are
//! re-encoded; only those whose bytes differ count as changed (a move smaller
//! than the quantum sends nothing). Each changed entity's `updated` entry is
//! then encoded once into the tick's piece buffer and shared by every client
//! that sees the entity (encode once, copy many). Full entries for clients
//! that just started seeing an entity are encoded lazily, at most once per
//! entity per tick.

use std::collections::HashMap;
use std::ops::Range;

use bevy_ecs::prelude::*;
use tessera_protocol::delta::{
    write_entry_component, write_entry_head, write_move_slot, write_residual,
};
use tessera_protocol::motion::MotionTrack;
use tessera_protocol::{RawValue, WireComponent};

use crate::boxed_resource::Boxed;
use crate::components::{ChangedReplicated, NetId, TickInfo};
use crate::game::Replicate;
use crate::passes::RoomPasses;
use crate::room_state::RoomState;
use crate::schedule::TickSet;
use crate::scratch::grow_to;
use crate::wire_value::WireValue;

/// `(wire id, encoded value)` pairs of one entity.
pub type WireValues<'a> = Vec<(u8, &'a [u8])>;

/// Zero bytes kept after every piece so that a short piece can be copied as
/// one fixed-size chunk (a couple of moves) instead of a `memcpy` call: most
/// update entries are 8 to 14 bytes and a client's delta is mostly them.
const PIECE_PAD: usize = 32;

/// Appends `len` bytes of `pieces` from `start`; `pieces` is padded so a
/// fixed `PIECE_PAD`-byte read from `start` stays in bounds.
fn copy_piece(out: &mut Vec<u8>, pieces: &[u8], start: usize, len: usize) {
    let chunk: Option<&[u8; PIECE_PAD]> = pieces
        .get(start..start + PIECE_PAD)
        .and_then(|c| c.try_into().ok());
    match chunk {
        // A fixed-size array: the copy compiles to a few vector moves.
        Some(chunk) if len <= PIECE_PAD => {
            out.extend_from_slice(chunk);
            out.truncate(out.len() - (PIECE_PAD - len));
        }
        _ => out.extend_from_slice(&pieces[start..start + len]),
    }
}

/// Writes an entity entry holding the components whose bit is set in `mask`.
fn write_entry(
    out: &mut Vec<u8>,
    registry: &ComponentRegistry,
    net_id: u32,
    mask: u64,
    values: &[WireValue],
) {
    write_entry_head(out, net_id, mask.count_ones() as usize);
    for (k, (wire_id, _)) in registry.entries.iter().enumerate() {
        if mask & (1u64 << k) != 0 {
            write_entry_component(out, *wire_id, values[k].as_slice());
        }
    }
}

/// Most replicated components a game may register.
pub const MAX_REPLICATED_COMPONENTS: usize = 64;

/// Wire ids and names of the registered components, in registration order.
#[derive(Debug, Clone, Default)]
pub struct ComponentRegistry {
    entries: Vec<(u8, &'static str)>,
    /// Per entry: its encoded wire value as a person reads it.
    readable: Vec<ReadableFn>,
    /// Index of the motion component, whose changes go to clients as
    /// moves (`tessera_protocol::motion`).
    motion: Option<usize>,
}

/// Decodes one component's wire bytes into what a person reads.
type ReadableFn = fn(&[u8]) -> Option<RawValue>;

/// [`WireComponent::readable`] of the value `bytes` encode, if they decode.
fn readable_of<W: WireComponent>(bytes: &[u8]) -> Option<RawValue> {
    let value: W = rmp_serde::from_slice(bytes).ok()?;
    value.readable().ok()
}

impl ComponentRegistry {
    pub(crate) fn register<W: WireComponent>(&mut self) -> Result<usize, String> {
        let (id, name) = (W::ID, W::NAME);
        if let Some((_, other)) = self.entries.iter().find(|(i, _)| *i == id) {
            return Err(format!(
                "replicated components {other} and {name} share wire id {id}"
            ));
        }
        if self.entries.len() == MAX_REPLICATED_COMPONENTS {
            return Err(format!(
                "more than {MAX_REPLICATED_COMPONENTS} replicated components"
            ));
        }
        self.entries.push((id, name));
        self.readable.push(readable_of::<W>);
        Ok(self.entries.len() - 1)
    }

    /// Makes the component at `index` the motion component.
    pub(crate) fn set_motion(&mut self, index: usize) -> Result<(), String> {
        if let Some(other) = self.motion {
            return Err(format!(
                "{} and {} are both the motion component",
                self.entries[other].1, self.entries[index].1
            ));
        }
        self.motion = Some(index);
        Ok(())
    }

    /// The wire id of the motion component, 0 when there is none.
    pub fn motion_wire_id(&self) -> u8 {
        self.motion.map_or(0, |k| self.entries[k].0)
    }

    /// The value `bytes` of component `id` encode, as a person reads it
    /// ([`WireComponent::readable`]); `None` for an unknown id or bytes that
    /// do not decode.
    pub fn readable(&self, id: u8, bytes: &[u8]) -> Option<RawValue> {
        let index = self.entries.iter().position(|(i, _)| *i == id)?;
        (self.readable[index])(bytes)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(wire id, name)` pairs in registration order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'static str)> + '_ {
        self.entries.iter().copied()
    }
}

/// Where a slot's `updated` entry of this tick is in the piece buffer (valid
/// when the entity changed this tick, which its grid entry records). Kept
/// apart from [`Slot`], like the net ids: delta assembly reads it for every
/// visible changed entity, and small dense arrays stay in cache.
#[derive(Debug, Clone, Copy, Default)]
struct UpdateRef {
    start: u32,
    end: u32,
}

/// A move's residual, encoded: two signed integers take at most 10 bytes.
/// Kept in place, per slot, rather than in the piece buffer: delta assembly
/// reads one per visible moving entity and client, and one look-up is
/// cheaper than two.
#[derive(Debug, Clone, Copy, Default)]
pub struct MovePiece {
    bytes: [u8; 15],
    len: u8,
}

impl MovePiece {
    /// Appends the move for a client that holds the entity in `wire_slot`:
    /// the slot, then the residual encoded once this tick. The residual is
    /// copied as its whole fixed-size array (a couple of vector moves, not a
    /// `memcpy` call) and the tail cut off.
    pub fn write(&self, wire_slot: u32, out: &mut Vec<u8>) {
        write_move_slot(out, wire_slot);
        out.extend_from_slice(&self.bytes);
        out.truncate(out.len() - (self.bytes.len() - usize::from(self.len)));
    }
}

/// What the room knows about one replicated entity, indexed by the entity's
/// index in the world (its "slot").
#[derive(Debug, Clone, Default)]
struct Slot {
    entity: Option<Entity>,
    net_id: u32,
    /// Bit `k` set: component `k` has a value in `values`.
    present: u64,
    /// Bit `k` set: component `k` changed in `changed_tick`.
    changed: u64,
    changed_tick: u32,
    /// The full entry, valid when `full_tick` is the current tick.
    full_tick: u32,
    full_piece: Range<u32>,
    /// The motion component's last values, as clients that got every
    /// change predict from them.
    motion: Option<MotionTrack>,
    /// The residual of this tick's move against that prediction, valid
    /// when `residual_tick` is the current tick.
    residual: (i32, i32),
    residual_tick: u32,
}

impl Slot {
    /// Follows the motion component's new value, and keeps its residual
    /// when there is a value to predict from. A value that is not a packed
    /// position (a game's mistake) is sent as a plain update.
    fn track_motion(&mut self, encoded: &[u8], tick: u32) {
        let mut reader = tessera_protocol::msgpack::Reader::new(encoded);
        let packed = reader
            .uint_as::<u32>("motion")
            .ok()
            .filter(|_| reader.finish().is_ok());
        match (packed, &mut self.motion) {
            (Some(value), Some(track)) => {
                self.residual = track.residual(tick, value);
                self.residual_tick = tick;
                track.set(value, tick);
            }
            (Some(value), None) => self.motion = Some(MotionTrack::new(value, tick)),
            (None, _) => self.motion = None,
        }
    }
}

/// Per-room replication state (a world resource).
#[derive(Debug)]
pub struct ReplicationState {
    registry: ComponentRegistry,
    slots: Vec<Slot>,
    /// Net id per slot, 0 when free.
    net_ids: Vec<u32>,
    updates: Vec<UpdateRef>,
    /// A slot's move of this tick: valid, like `updates`, when the entity
    /// changed this tick, and empty unless the motion component was all
    /// that changed.
    moves: Vec<MovePiece>,
    /// Bumped whenever a slot is freed, so a client's known set needs its
    /// net ids re-checked only if this moved since the client last looked.
    untracked: u64,
    /// Entities untracked since the room last sent events, with the net id
    /// they had: the viewers of a despawned entity are those told it left.
    recently_untracked: Vec<(Entity, u32)>,
    /// Longest encoded value seen per component, to bound entry sizes.
    widest_value: Vec<usize>,
    /// Last encoded wire value per (slot, component): `slot * n + k`.
    values: Vec<WireValue>,
    /// Tick each value last changed, indexed like `values`: datagram
    /// clients get the components changed after the tick they acknowledged.
    changed_at: Vec<u32>,
    /// Slots with a change this tick, in the order they were first seen.
    changed_slots: Vec<u32>,
    /// Encoded entries of this tick.
    pieces: Vec<u8>,
    scratch: Vec<u8>,
    next_net_id: u32,
    tick: u32,
    /// Net id to slot, for look-ups by the id clients know.
    by_net_id: HashMap<u32, u32>,
}

impl ReplicationState {
    pub(crate) fn new(registry: ComponentRegistry) -> Self {
        Self {
            registry,
            slots: Vec::new(),
            net_ids: Vec::new(),
            updates: Vec::new(),
            moves: Vec::new(),
            widest_value: Vec::new(),
            untracked: 0,
            recently_untracked: Vec::new(),
            values: Vec::new(),
            changed_at: Vec::new(),
            changed_slots: Vec::new(),
            pieces: Vec::new(),
            scratch: Vec::new(),
            next_net_id: 1,
            tick: 0,
            by_net_id: HashMap::new(),
        }
    }

    pub fn registry(&self) -> &ComponentRegistry {
        &self.registry
    }

    pub(crate) fn next_net_id(&self) -> u32 {
        self.next_net_id
    }

    pub(crate) fn set_next_net_id(&mut self, next: u32) {
        self.next_net_id = self.next_net_id.max(next);
    }

    pub(crate) fn allocate_net_id(&mut self) -> u32 {
        let id = self.next_net_id;
        self.next_net_id = self.next_net_id.wrapping_add(1).max(1);
        id
    }

    /// Starts a tick: forgets the previous tick's pieces.
    pub(crate) fn begin_tick(&mut self, tick: u32) {
        self.tick = tick;
        self.changed_slots.clear();
        self.pieces.clear();
    }

    fn slot_mut(&mut self, slot: u32) -> &mut Slot {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, Slot::default());
            self.net_ids.resize(i + 1, 0);
            self.updates.resize(i + 1, UpdateRef::default());
            self.moves.resize(i + 1, MovePiece::default());
            self.values
                .resize_with((i + 1) * self.registry.len(), WireValue::default);
            self.changed_at.resize((i + 1) * self.registry.len(), 0);
        }
        &mut self.slots[i]
    }

    /// Starts tracking `entity` under `net_id`.
    pub(crate) fn track(&mut self, entity: Entity, net_id: u32) {
        let n = self.registry.len();
        let slot = entity.index_u32();
        self.by_net_id.insert(net_id, slot);
        let s = self.slot_mut(slot);
        *s = Slot {
            entity: Some(entity),
            net_id,
            ..Slot::default()
        };
        self.net_ids[slot as usize] = net_id;
        self.updates[slot as usize] = UpdateRef::default();
        self.moves[slot as usize] = MovePiece::default();
        let base = slot as usize * n;
        for v in &mut self.values[base..base + n] {
            v.clear();
        }
        self.changed_at[base..base + n].fill(0);
    }

    /// Stops tracking `entity` if it still owns its slot.
    pub(crate) fn untrack(&mut self, entity: Entity) -> bool {
        match self.slots.get_mut(entity.index_u32() as usize) {
            Some(s) if s.entity == Some(entity) => {
                self.by_net_id.remove(&s.net_id);
                self.recently_untracked.push((entity, s.net_id));
                *s = Slot::default();
                self.untracked += 1;
                self.net_ids[entity.index_u32() as usize] = 0;
                self.updates[entity.index_u32() as usize] = UpdateRef::default();
                self.moves[entity.index_u32() as usize] = MovePiece::default();
                true
            }
            _ => false,
        }
    }

    /// The net id `entity` had, if it was untracked since the last
    /// [`ReplicationState::clear_recently_untracked`].
    pub(crate) fn recent_net_id(&self, entity: Entity) -> Option<u32> {
        self.recently_untracked
            .iter()
            .find(|(e, _)| *e == entity)
            .map(|(_, id)| *id)
    }

    pub(crate) fn clear_recently_untracked(&mut self) {
        self.recently_untracked.clear();
    }

    /// How many slots have been freed so far.
    pub fn untracked_count(&self) -> u64 {
        self.untracked
    }

    /// One past the highest slot ever tracked.
    pub fn slot_capacity(&self) -> usize {
        self.slots.len()
    }

    /// The net id of the entity in `slot`, 0 when the slot is free.
    pub fn net_id(&self, slot: u32) -> u32 {
        self.net_ids.get(slot as usize).copied().unwrap_or(0)
    }

    /// Number of replicated entities.
    pub fn len(&self) -> usize {
        self.by_net_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_net_id.is_empty()
    }

    /// The slot of the entity clients know as `net_id`.
    pub fn slot_of(&self, net_id: u32) -> Option<u32> {
        self.by_net_id.get(&net_id).copied()
    }

    pub fn entity(&self, slot: u32) -> Option<Entity> {
        self.slots.get(slot as usize).and_then(|s| s.entity)
    }

    pub fn changed_slots(&self) -> &[u32] {
        &self.changed_slots
    }

    /// Records a freshly encoded value of component `k` for `entity`; returns
    /// true when it differs from the last one.
    fn record(&mut self, entity: Entity, k: usize, encoded: &[u8]) -> bool {
        let slot = entity.index_u32();
        let tick = self.tick;
        let n = self.registry.len();
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        if s.entity != Some(entity) {
            return false;
        }
        let bit = 1u64 << k;
        let value = &mut self.values[slot as usize * n + k];
        if s.present & bit != 0 && value.as_slice() == encoded {
            return false;
        }
        value.set(encoded);
        if self.registry.motion == Some(k) {
            s.track_motion(encoded, tick);
        }
        self.changed_at[slot as usize * n + k] = tick;
        if self.widest_value.len() <= k {
            self.widest_value.resize(k + 1, 0);
        }
        self.widest_value[k] = self.widest_value[k].max(encoded.len());
        s.present |= bit;
        if s.changed_tick != tick {
            s.changed_tick = tick;
            s.changed = 0;
            self.changed_slots.push(slot);
        }
        s.changed |= bit;
        true
    }

    /// Encodes the `updated` entry of every entity that changed this tick.
    pub(crate) fn encode_update_pieces(&mut self) {
        let n = self.registry.len();
        for &slot in &self.changed_slots {
            let s = &self.slots[slot as usize];
            let start = self.pieces.len() as u32;
            let values = &self.values[slot as usize * n..(slot as usize + 1) * n];
            write_entry(
                &mut self.pieces,
                &self.registry,
                s.net_id,
                s.changed,
                values,
            );
            self.updates[slot as usize] = UpdateRef {
                start,
                end: self.pieces.len() as u32,
            };
            let motion_bit = self.registry.motion.map_or(0, |k| 1u64 << k);
            let mut piece = MovePiece::default();
            if s.changed == motion_bit && s.residual_tick == self.tick {
                let (dx, dy) = s.residual;
                self.scratch.clear();
                write_residual(&mut self.scratch, dx, dy);
                piece.len = self.scratch.len() as u8;
                piece.bytes[..self.scratch.len()].copy_from_slice(&self.scratch);
            }
            self.moves[slot as usize] = piece;
        }
        self.pieces.resize(self.pieces.len() + PIECE_PAD, 0);
    }

    /// The residual of `slot`'s move, if it changed this tick in its
    /// motion component alone. For a slot that did not change this tick the
    /// answer is its last change's: callers ask only about this tick's stays.
    pub fn move_piece(&self, slot: u32) -> Option<MovePiece> {
        let m = self.moves[slot as usize];
        (m.len > 0).then_some(m)
    }

    /// The full entry of `slot` (every replicated component), encoded at
    /// most once per tick.
    pub fn full_piece(&mut self, slot: u32) -> &[u8] {
        let tick = self.tick;
        let n = self.registry.len();
        let s = &mut self.slots[slot as usize];
        if s.full_tick != tick || s.full_piece.is_empty() {
            let start = self.pieces.len() as u32;
            let values = &self.values[slot as usize * n..(slot as usize + 1) * n];
            write_entry(
                &mut self.pieces,
                &self.registry,
                s.net_id,
                s.present,
                values,
            );
            s.full_tick = tick;
            s.full_piece = start..self.pieces.len() as u32;
            self.pieces.resize(self.pieces.len() + PIECE_PAD, 0);
        }
        let r = s.full_piece.clone();
        &self.pieces[r.start as usize..r.end as usize]
    }

    /// An upper bound of the bytes `count` full entries take: each is at
    /// most an array header and an id (5 bytes each) plus, per component, an
    /// id byte and the widest value seen.
    pub fn full_pieces_bound(&self, count: usize) -> usize {
        let per_entry: usize = 10 + self.widest_value.iter().map(|w| w + 1).sum::<usize>();
        count.saturating_mul(per_entry)
    }

    /// Appends the `updated` entry of `slot` to `out`.
    pub fn copy_update_piece(&self, slot: u32, out: &mut Vec<u8>) {
        let u = &self.updates[slot as usize];
        let (start, end) = (u.start as usize, u.end as usize);
        copy_piece(out, &self.pieces, start, end - start);
    }

    /// Appends the `updated` entries of `slots` to `out`, in order.
    ///
    /// Every visible pair costs one of these copies each tick. The pieces
    /// are laid side by side in `scratch` (grown, never shrunk, so never
    /// zeroed again) at a running offset, each a bounds check and a fixed
    /// `PIECE_PAD`-byte move, and `out` takes them in one copy: appending
    /// piece by piece paid a capacity check and two length updates each.
    pub fn copy_update_pieces(&self, slots: &[u32], out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
        grow_to(scratch, slots.len() * PIECE_PAD);
        let mut at = 0;
        for (i, &slot) in slots.iter().enumerate() {
            let u = &self.updates[slot as usize];
            let (start, len) = (u.start as usize, (u.end - u.start) as usize);
            match self.pieces.get(start..start + PIECE_PAD) {
                Some(chunk) if len <= PIECE_PAD => {
                    scratch[at..at + PIECE_PAD].copy_from_slice(chunk);
                }
                _ => {
                    // Longer than a chunk: room for it, and still for a
                    // chunk per slot after it.
                    grow_to(scratch, at + len + (slots.len() - i - 1) * PIECE_PAD);
                    scratch[at..at + len].copy_from_slice(&self.pieces[start..start + len]);
                }
            }
            at += len;
        }
        out.extend_from_slice(&scratch[..at]);
    }

    /// Appends the full entry of `slot` to `out`.
    pub fn copy_full_piece(&mut self, slot: u32, out: &mut Vec<u8>) {
        let len = self.full_piece(slot).len();
        let start = self.slots[slot as usize].full_piece.start as usize;
        copy_piece(out, &self.pieces, start, len);
    }

    /// The last tick the entity in `slot` changed (0: never).
    pub fn last_change(&self, slot: u32) -> u32 {
        self.slots.get(slot as usize).map_or(0, |s| s.changed_tick)
    }

    /// The components of `slot` that changed after tick `since`, as a mask.
    fn changed_since(&self, slot: u32, since: u32) -> u64 {
        let n = self.registry.len();
        let base = slot as usize * n;
        self.changed_at[base..base + n]
            .iter()
            .enumerate()
            .filter(|(_, at)| **at > since)
            .fold(0, |mask, (k, _)| mask | (1u64 << k))
    }

    /// Appends an `updated` entry of `slot` holding the components that
    /// changed after tick `since`; returns false (writing nothing) when none
    /// did. When exactly this tick's changes are wanted, the shared piece
    /// encoded once this tick is copied.
    pub fn copy_changes_since(&self, slot: u32, since: u32, out: &mut Vec<u8>) -> bool {
        let s = &self.slots[slot as usize];
        if s.changed_tick <= since {
            return false;
        }
        let mask = self.changed_since(slot, since);
        if s.changed_tick == self.tick && mask == s.changed {
            self.copy_update_piece(slot, out);
        } else {
            let n = self.registry.len();
            let values = &self.values[slot as usize * n..(slot as usize + 1) * n];
            write_entry(out, &self.registry, s.net_id, mask, values);
        }
        true
    }

    /// Every tracked entity's `(net id, [(wire id, value bytes)])`, for tools.
    pub fn wire_state(&self, slot: u32) -> Option<(u32, WireValues<'_>)> {
        let s = self.slots.get(slot as usize)?;
        s.entity?;
        let n = self.registry.len();
        let values = self
            .registry
            .entries
            .iter()
            .enumerate()
            .filter(|(k, _)| s.present & (1u64 << k) != 0)
            .map(|(k, (id, _))| (*id, self.values[slot as usize * n + k].as_slice()))
            .collect();
        Some((s.net_id, values))
    }
}

/// Adds the system that collects changes of `C` (component index `k`).
pub(crate) fn add_collect_system<C: Replicate>(
    passes: &mut RoomPasses,
    world: &mut World,
    k: usize,
) {
    let collect = move |changed: ChangedReplicated<'_, '_, C>,
                        mut room: ResMut<'_, Boxed<RoomState>>| {
        let RoomState {
            replication: state,
            stats,
            ..
        } = &mut **room;
        for (entity, component) in &changed {
            let wire = component.to_wire();
            let mut scratch = std::mem::take(&mut state.scratch);
            scratch.clear();
            if rmp_serde::encode::write(&mut scratch, &wire).is_err() {
                stats.encode_errors += 1;
            } else {
                state.record(entity, k, &scratch);
            }
            state.scratch = scratch;
        }
    };
    // Added during the game's setup, before the room adds `encode_pieces`
    // to the same phase, so it runs first.
    passes.add(world, TickSet::Replicate, collect);
}

/// Encodes update pieces and marks the grid cells of changed entities, so
/// clients whose view holds none of them can skip the tick.
pub(crate) fn encode_pieces(mut room: ResMut<'_, Boxed<RoomState>>, info: Res<'_, TickInfo>) {
    let RoomState {
        replication: state,
        grid,
        stats,
        ..
    } = &mut **room;
    state.encode_update_pieces();
    for &slot in state.changed_slots() {
        grid.mark_changed(slot, info.tick);
    }
    stats.changed_entities = state.changed_slots().len() as u32;
}

/// Numbers replicated entities spawned since the last tick (exclusive system).
pub(crate) fn assign_net_ids(world: &mut World) {
    let mut fresh = world.query_filtered::<Entity, (With<crate::Replicated>, Without<NetId>)>();
    let fresh: Vec<Entity> = fresh.iter(world).collect();
    for entity in fresh {
        let id = world
            .resource_mut::<Boxed<RoomState>>()
            .replication
            .allocate_net_id();
        register_net_id(world, entity, id);
    }
}

/// Gives `entity` the net id `id` and starts replicating it.
pub(crate) fn register_net_id(world: &mut World, entity: Entity, id: u32) {
    world
        .resource_mut::<Boxed<RoomState>>()
        .replication
        .track(entity, id);
    world.entity_mut(entity).insert(NetId(id));
}

/// `NetId`'s remove hook: a despawned (or un-replicated) entity is forgotten
/// at once, so its slot can be reused in the same tick and every client that
/// knew it gets it in `left`.
pub(crate) fn forget_entity(
    mut world: bevy_ecs::world::DeferredWorld<'_>,
    ctx: bevy_ecs::lifecycle::HookContext,
) {
    let tick = world.get_resource::<TickInfo>().map_or(0, |t| t.tick);
    if let Some(mut room) = world.get_resource_mut::<Boxed<RoomState>>() {
        room.replication.untrack(ctx.entity);
        room.grid.remove_entity(ctx.entity, tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces of the given lengths laid out as the tick lays them out (each
    /// followed by `PIECE_PAD` zeros), filled with distinct non-zero bytes.
    fn state_with_pieces(lengths: &[usize]) -> ReplicationState {
        let mut state = ReplicationState::new(ComponentRegistry::default());
        for (i, &len) in lengths.iter().enumerate() {
            let start = state.pieces.len() as u32;
            state
                .pieces
                .extend((0..len).map(|b| (i * 37 + b) as u8 | 1));
            state.updates.push(UpdateRef {
                start,
                end: state.pieces.len() as u32,
            });
            state.pieces.resize(state.pieces.len() + PIECE_PAD, 0);
        }
        state
    }

    #[test]
    fn update_pieces_copy_as_one_by_one_whatever_their_lengths() {
        // Short, empty, exactly a chunk, longer than a chunk (first, in the
        // middle and last), so that every path and the growth are taken.
        let lengths = [40, 9, 0, PIECE_PAD, 14, 100, 1, PIECE_PAD + 1];
        let state = state_with_pieces(&lengths);
        let orders: [&[u32]; 4] = [
            &[0, 1, 2, 3, 4, 5, 6, 7],
            &[7, 6, 5, 4, 3, 2, 1, 0],
            &[1, 4, 1, 6],
            &[],
        ];
        // One scratch for all, as the tick reuses it: left-overs of a
        // longer earlier copy must not leak into a later one.
        let mut scratch = Vec::new();
        for slots in orders {
            let mut expected = vec![0xEE; 3];
            for &slot in slots {
                state.copy_update_piece(slot, &mut expected);
            }
            let mut batched = vec![0xEE; 3];
            state.copy_update_pieces(slots, &mut batched, &mut scratch);
            assert_eq!(batched, expected, "slots {slots:?}");
        }
    }
}
