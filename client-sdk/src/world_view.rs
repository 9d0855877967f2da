//! The local mirror of what the server lets this client see.
//!
//! [`WorldView`] is sans-IO: it is fed [`Delta`]s and never awaits, reads a
//! clock or touches a socket. Component values are kept as the server sent
//! them ([`RawValue`], quantized wire form) and decoded on access with
//! [`Entity::get`], so the mirror works for any game without knowing its
//! component types.
//!
//! # Validation
//!
//! A delta is checked in full before anything changes (validate, then
//! apply): when [`WorldView::apply`] returns an error, the view is exactly as
//! it was before the call. The checks follow the order the protocol applies
//! sections in (`left`, then `entered`, then `updated`, then `moved`), so an
//! entity may leave and re-enter in one delta, and an entity that entered may
//! be updated in the same delta, but an update for an entity that left in the
//! same delta is an error.
//!
//! # Moves
//!
//! A version-2 server names entering entities by slot and sends a change of
//! the motion component alone (`Welcome.motion`, set with
//! [`WorldView::with_motion`]) as a move against the position the client
//! predicts (`PROTOCOL.md` §6.3). The view keeps each entity's slot and
//! motion track and stores the moved value as the component's wire value,
//! so [`Entity::get`] reads a moved position like any other.
//!
//! # Ticks
//!
//! Ticks must strictly increase from one delta to the next: over a reliable,
//! ordered transport the server sends at most one delta per tick, so a repeated
//! tick means a duplicated or reordered frame. The one exception is the first
//! delta after the handshake: it may carry the very tick the `Welcome` named
//! (the join snapshot is built in the tick the player joined), so the first
//! delta only has to be at or after the view's start tick
//! ([`WorldView::from_tick`]). Tick wrap-around is not handled: a `u32` tick
//! at 10 Hz lasts 13 years.

use std::collections::{BTreeMap, HashMap, HashSet};

use tessera_protocol::motion::MotionTrack;
use tessera_protocol::part_receiver::{Mirror, PartReceiver};
use tessera_protocol::{
    ComponentValue, Delta, DeltaPart, EntityState, PayloadError, RawValue, WireComponent,
};

/// One entity the client can see, with the latest value of each of its
/// replicated components.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    id: u32,
    components: BTreeMap<u8, RawValue>,
    entered_at: u32,
    changed_at: u32,
    /// The slot the server's moves name this entity by (version 2).
    slot: Option<u32>,
    /// The motion component's last values, to apply moves.
    track: Option<MotionTrack>,
}

impl Entity {
    fn entered(id: u32, components: &[ComponentValue], tick: u32) -> Self {
        let mut entity = Self {
            id,
            components: BTreeMap::new(),
            entered_at: tick,
            changed_at: tick,
            slot: None,
            track: None,
        };
        entity.merge(components, tick);
        entity
    }

    /// Follows a value of the motion component `motion` that an entry
    /// carried: the first one starts the track.
    fn track_motion(&mut self, motion: u8, components: &[ComponentValue], tick: u32) {
        let Some(c) = components.iter().rev().find(|c| c.id == motion) else {
            return;
        };
        let packed = c.value.decode::<u32>().ok();
        self.track = match (packed, self.track) {
            (Some(value), Some(mut track)) => {
                track.set(value, tick);
                Some(track)
            }
            (Some(value), None) => Some(MotionTrack::new(value, tick)),
            (None, _) => None,
        };
    }

    /// Later values of the same component win, so an entry that repeats a
    /// component id behaves like two updates in a row.
    fn merge(&mut self, components: &[ComponentValue], tick: u32) {
        for c in components {
            self.components.insert(c.id, c.value.clone());
        }
        self.changed_at = tick;
    }

    /// The server's id for this entity.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Decodes component `C`: `None` when the entity does not carry it,
    /// `Some(Err(_))` when the bytes do not match `C` (a schema mismatch
    /// between client and server).
    pub fn get<C: WireComponent>(&self) -> Option<Result<C, PayloadError>> {
        self.raw(C::ID).map(RawValue::decode)
    }

    /// The encoded value of component `component_id`.
    pub fn raw(&self, component_id: u8) -> Option<&RawValue> {
        self.components.get(&component_id)
    }

    /// Every component the entity carries, by ascending component id.
    pub fn components(&self) -> impl Iterator<Item = (u8, &RawValue)> {
        self.components.iter().map(|(id, value)| (*id, value))
    }

    /// Tick of the delta in which the entity (last) entered the view.
    pub fn entered_at(&self) -> u32 {
        self.entered_at
    }

    /// Tick of the delta that last entered or updated the entity.
    pub fn changed_at(&self) -> u32 {
        self.changed_at
    }
}

/// A delta that does not fit the mirror: the server and this client disagree
/// about what the client knows. Always a server bug or a corrupted stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    #[error("delta for tick {tick} after tick {last}: ticks must increase")]
    TickNotIncreasing { tick: u32, last: u32 },
    #[error("first delta is for tick {tick}, before the join tick {start}")]
    TickBeforeStart { tick: u32, start: u32 },
    #[error("tick {tick}: update for entity {id}, which the client does not know")]
    UpdateUnknown { tick: u32, id: u32 },
    #[error("tick {tick}: entity {id} entered but the client already knows it")]
    EnterKnown { tick: u32, id: u32 },
    #[error("tick {tick}: entity {id} left but the client did not know it")]
    LeaveUnknown { tick: u32, id: u32 },
    #[error("tick {tick}: entity {id} entered in slot {slot}, which another entity holds")]
    SlotTaken { tick: u32, id: u32, slot: u32 },
    #[error("tick {tick}: a move for slot {slot}, which holds no entity")]
    MoveUnknown { tick: u32, slot: u32 },
    #[error("tick {tick}: a move for entity {id}, which {why}")]
    MoveInvalid {
        tick: u32,
        id: u32,
        why: &'static str,
    },
}

/// What one applied delta changed, in the order it was applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    pub tick: u32,
    pub ack_input: u32,
    /// Entities that left, with their last known state: they are no longer in
    /// the view, and this is the only place their final values remain.
    pub left: Vec<Entity>,
    pub entered: Vec<u32>,
    /// Entities updated; an id appears once per entry the delta carried.
    pub updated: Vec<u32>,
}

/// The local mirror of the visible world, keyed by entity id.
///
/// Iteration is by ascending entity id, so two views fed the same deltas
/// iterate identically (handy for replays and tests).
#[derive(Debug, Clone, Default)]
pub struct WorldView {
    entities: BTreeMap<u32, Entity>,
    /// Entity id by slot (version 2).
    slots: HashMap<u32, u32>,
    /// The wire id of the motion component (`Welcome.motion`), 0 for none.
    motion: u8,
    start_tick: u32,
    last_tick: Option<u32>,
    ack_input: u32,
    /// Bookkeeping of `DeltaPart`s (QUIC); unused over WebSocket.
    parts: PartReceiver,
}

/// What applying one part changed, and the tick it completed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppliedPart {
    /// The changes, as for a delta. `tick` is the part's tick; a part of a
    /// tick older than one already applied changes only entities it is
    /// newer for.
    pub applied: Applied,
    /// The part raised the view's tick (it is the newest seen so far).
    pub newest: bool,
    /// The tick this part completed: acknowledge it.
    pub completed: Option<u32>,
}

impl WorldView {
    /// An empty view that accepts any tick for its first delta.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty view whose first delta must be for `start` or later: the
    /// tick a `Welcome` announced.
    pub fn from_tick(start: u32) -> Self {
        Self {
            start_tick: start,
            ..Self::default()
        }
    }

    /// The view of a client whose `Welcome` named `motion` as the motion
    /// component, to which moves apply.
    pub fn with_motion(self, motion: u8) -> Self {
        Self { motion, ..self }
    }

    /// Applies `delta` (left, then entered, then updated, then moved), or
    /// changes nothing and says why it does not fit.
    pub fn apply(&mut self, delta: &Delta) -> Result<Applied, MirrorError> {
        self.validate(delta)?;

        let tick = delta.tick;
        let mut applied = Applied {
            tick,
            ack_input: delta.ack_input,
            left: Vec::with_capacity(delta.left.len()),
            entered: Vec::with_capacity(delta.entered.len()),
            updated: Vec::with_capacity(delta.updated.len()),
        };
        for id in &delta.left {
            // Validation proved every id is present; `if let` keeps this
            // infallible without a panic path.
            if let Some(entity) = self.entities.remove(id) {
                if let Some(slot) = entity.slot {
                    self.slots.remove(&slot);
                }
                applied.left.push(entity);
            }
        }
        for (i, entry) in delta.entered.iter().enumerate() {
            let mut entity = Entity::entered(entry.id, &entry.components, tick);
            entity.track_motion(self.motion, &entry.components, tick);
            entity.slot = delta.slots.get(i).copied();
            if let Some(slot) = entity.slot {
                self.slots.insert(slot, entry.id);
            }
            self.entities.insert(entry.id, entity);
            applied.entered.push(entry.id);
        }
        for entry in &delta.updated {
            if let Some(entity) = self.entities.get_mut(&entry.id) {
                entity.merge(&entry.components, tick);
                entity.track_motion(self.motion, &entry.components, tick);
                applied.updated.push(entry.id);
            }
        }
        for m in &delta.moved {
            let entity = self
                .slots
                .get(&m.slot)
                .and_then(|id| self.entities.get_mut(id));
            // Validation proved the move lands.
            if let Some(entity) = entity
                && let Some(track) = &mut entity.track
                && let Ok(value) = track.apply(tick, m.dx, m.dy)
                && let Ok(raw) = RawValue::encode(&value)
            {
                entity.components.insert(self.motion, raw);
                entity.changed_at = tick;
                applied.updated.push(entity.id);
            }
        }
        self.last_tick = Some(tick);
        self.ack_input = delta.ack_input;
        Ok(applied)
    }

    /// Checks `delta` against the view as if its sections were applied in
    /// order, without changing anything. The sets stay empty (and do not
    /// allocate) for the common delta that only carries updates.
    fn validate(&self, delta: &Delta) -> Result<(), MirrorError> {
        let tick = delta.tick;
        match self.last_tick {
            Some(last) if tick <= last => {
                return Err(MirrorError::TickNotIncreasing { tick, last });
            }
            None if tick < self.start_tick => {
                return Err(MirrorError::TickBeforeStart {
                    tick,
                    start: self.start_tick,
                });
            }
            _ => {}
        }

        let mut gone: HashSet<u32> = HashSet::new();
        let mut added: HashSet<u32> = HashSet::new();
        let known = |id: u32, gone: &HashSet<u32>, added: &HashSet<u32>| {
            added.contains(&id) || (self.entities.contains_key(&id) && !gone.contains(&id))
        };
        for &id in &delta.left {
            if !known(id, &gone, &added) {
                return Err(MirrorError::LeaveUnknown { tick, id });
            }
            gone.insert(id);
        }
        for entry in &delta.entered {
            if known(entry.id, &gone, &added) {
                return Err(MirrorError::EnterKnown { tick, id: entry.id });
            }
            added.insert(entry.id);
        }
        for entry in &delta.updated {
            if !known(entry.id, &gone, &added) {
                return Err(MirrorError::UpdateUnknown { tick, id: entry.id });
            }
        }
        if !delta.slots.is_empty() || !delta.moved.is_empty() {
            self.validate_slots(delta, &gone)?;
        }
        Ok(())
    }

    /// Checks the `slots` and `moved` sections: an entering entity takes a
    /// free slot (or one an entity that left in this delta gave back), and
    /// a move names an entity the client held before this delta, which the
    /// delta neither entered nor updated, moves it once, and lands inside
    /// the axes' range.
    fn validate_slots(&self, delta: &Delta, gone: &HashSet<u32>) -> Result<(), MirrorError> {
        let tick = delta.tick;
        let holder = |slot: u32| {
            self.slots
                .get(&slot)
                .copied()
                .filter(|id| !gone.contains(id))
        };
        let mut taken: HashSet<u32> = HashSet::new();
        for (entry, &slot) in delta.entered.iter().zip(&delta.slots) {
            if holder(slot).is_some() || !taken.insert(slot) {
                return Err(MirrorError::SlotTaken {
                    tick,
                    id: entry.id,
                    slot,
                });
            }
        }
        let entered: HashSet<u32> = delta.entered.iter().map(|e| e.id).collect();
        let updated: HashSet<u32> = delta.updated.iter().map(|e| e.id).collect();
        let mut moved: HashSet<u32> = HashSet::new();
        for m in &delta.moved {
            let invalid = |id: u32, why: &'static str| MirrorError::MoveInvalid { tick, id, why };
            let Some(id) = holder(m.slot) else {
                return Err(MirrorError::MoveUnknown { tick, slot: m.slot });
            };
            if entered.contains(&id) || taken.contains(&m.slot) {
                return Err(invalid(id, "entered in the same delta"));
            }
            if updated.contains(&id) {
                return Err(invalid(id, "the same delta updated"));
            }
            if !moved.insert(id) {
                return Err(invalid(id, "the same delta moved already"));
            }
            let Some(mut track) = self.entities.get(&id).and_then(|e| e.track) else {
                return Err(invalid(id, "has no position to move"));
            };
            if track.apply(tick, m.dx, m.dy).is_err() {
                return Err(invalid(id, "would leave the axes' range"));
            }
        }
        Ok(())
    }

    /// Applies one [`DeltaPart`] by the rules of `PROTOCOL.md` §6.2: each
    /// entity is written only by parts newer than what the view holds of
    /// it, and a part older than the last complete tick changes nothing.
    /// Parts come from an unreliable path, so they are never a violation.
    pub fn apply_part(&mut self, part: &DeltaPart) -> AppliedPart {
        let mut applied = Applied {
            tick: part.tick,
            ack_input: part.ack_input,
            ..Applied::default()
        };
        let mut target = PartTarget {
            entities: &mut self.entities,
            applied: &mut applied,
        };
        let outcome = self.parts.apply(part, &mut target);
        let newest = outcome.applied && self.last_tick.is_none_or(|t| part.tick > t);
        if newest {
            self.last_tick = Some(part.tick);
        }
        self.ack_input = self.ack_input.max(part.ack_input);
        applied.ack_input = self.ack_input;
        AppliedPart {
            applied,
            newest,
            completed: outcome.completed,
        }
    }

    /// The entity `id`, if the client can see it.
    pub fn get(&self, id: u32) -> Option<&Entity> {
        self.entities.get(&id)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.entities.contains_key(&id)
    }

    /// Number of entities the client can see.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every visible entity, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = &Entity> {
        self.entities.values()
    }

    /// Tick of the last applied delta; `None` before the first.
    pub fn last_tick(&self) -> Option<u32> {
        self.last_tick
    }

    /// The earliest tick the first delta may carry.
    pub fn start_tick(&self) -> u32 {
        self.start_tick
    }

    /// Sequence number of the last input the server applied, as of the last
    /// delta; 0 until the server has applied one (sequence numbers start at 1).
    pub fn ack_input(&self) -> u32 {
        self.ack_input
    }
}

/// The view's entities as a [`PartReceiver`] sees them, recording what
/// changed.
struct PartTarget<'a> {
    entities: &'a mut BTreeMap<u32, Entity>,
    applied: &'a mut Applied,
}

impl Mirror for PartTarget<'_> {
    fn entity_tick(&self, id: u32) -> Option<u32> {
        self.entities.get(&id).map(Entity::changed_at)
    }

    /// Parts repeat what was not acknowledged yet, so a known entity is
    /// reported updated only when a value really changed.
    fn replace(&mut self, entry: &EntityState, tick: u32) {
        let mut fresh = Entity::entered(entry.id, &entry.components, tick);
        match self.entities.get_mut(&entry.id) {
            Some(known) => {
                let changed = known.components != fresh.components;
                fresh.entered_at = known.entered_at;
                *known = fresh;
                if changed {
                    self.applied.updated.push(entry.id);
                }
            }
            None => {
                self.entities.insert(entry.id, fresh);
                self.applied.entered.push(entry.id);
            }
        }
    }

    fn merge(&mut self, entry: &EntityState, tick: u32) {
        if let Some(entity) = self.entities.get_mut(&entry.id) {
            let changed = entry
                .components
                .iter()
                .any(|c| entity.components.get(&c.id) != Some(&c.value));
            entity.merge(&entry.components, tick);
            if changed {
                self.applied.updated.push(entry.id);
            }
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(entity) = self.entities.remove(&id) {
            self.applied.left.push(entity);
        }
    }

    fn ids_below(&self, tick: u32) -> Vec<u32> {
        self.entities
            .values()
            .filter(|e| e.changed_at < tick)
            .map(Entity::id)
            .collect()
    }
}

impl<'a> IntoIterator for &'a WorldView {
    type Item = &'a Entity;
    type IntoIter = std::collections::btree_map::Values<'a, u32, Entity>;

    fn into_iter(self) -> Self::IntoIter {
        self.entities.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::EntityState;
    use tessera_protocol::arena::{Name, Position};

    fn value<T: serde::Serialize>(v: &T) -> RawValue {
        RawValue::encode(v).expect("encodes")
    }

    fn player(id: u32, x: f32, y: f32, name: &str) -> EntityState {
        EntityState {
            id,
            components: vec![
                ComponentValue {
                    id: Position::ID,
                    value: value(&Position::from_units(x, y)),
                },
                ComponentValue {
                    id: Name::ID,
                    value: value(&Name(name.into())),
                },
            ],
        }
    }

    fn moved(id: u32, x: f32, y: f32) -> EntityState {
        EntityState {
            id,
            components: vec![ComponentValue {
                id: Position::ID,
                value: value(&Position::from_units(x, y)),
            }],
        }
    }

    fn delta(tick: u32) -> Delta {
        Delta {
            tick,
            ..Delta::default()
        }
    }

    fn position(view: &WorldView, id: u32) -> Position {
        view.get(id)
            .expect("entity is visible")
            .get::<Position>()
            .expect("carries a position")
            .expect("decodes")
    }

    /// A view with entities 1 ("a" at 10,10) and 2 ("b" at 20,20) at tick 5.
    fn populated() -> WorldView {
        let mut view = WorldView::from_tick(5);
        let mut d = delta(5);
        d.entered = vec![player(1, 10.0, 10.0, "a"), player(2, 20.0, 20.0, "b")];
        view.apply(&d).expect("applies");
        view
    }

    #[test]
    fn entering_updating_and_leaving() {
        let mut view = populated();
        assert_eq!(view.len(), 2);
        assert_eq!(view.last_tick(), Some(5));
        assert_eq!(position(&view, 1), Position::from_units(10.0, 10.0));

        let mut d = delta(6);
        d.ack_input = 3;
        d.left = vec![2];
        d.entered = vec![player(3, 30.0, 30.0, "c")];
        d.updated = vec![moved(1, 11.0, 10.0)];
        let applied = view.apply(&d).expect("applies");

        assert_eq!(applied.entered, vec![3]);
        assert_eq!(applied.updated, vec![1]);
        assert_eq!(applied.left.len(), 1);
        // The entity that left keeps its final state in `Applied`.
        let gone = &applied.left[0];
        assert_eq!(gone.id(), 2);
        assert_eq!(
            gone.get::<Name>().expect("has a name").expect("decodes"),
            Name("b".into())
        );

        assert_eq!(view.ids(), vec![1, 3]);
        assert_eq!(position(&view, 1), Position::from_units(11.0, 10.0));
        // An update leaves the components it does not carry untouched.
        let one = view.get(1).expect("visible");
        assert_eq!(
            one.get::<Name>().expect("has a name").expect("decodes"),
            Name("a".into())
        );
        assert_eq!((one.entered_at(), one.changed_at()), (5, 6));
        assert_eq!(view.ack_input(), 3);
        assert_eq!(view.last_tick(), Some(6));
    }

    #[test]
    fn leave_then_reenter_in_one_delta_replaces_the_entity() {
        let mut view = populated();
        let mut d = delta(6);
        d.left = vec![1];
        d.entered = vec![moved(1, 50.0, 50.0)];
        view.apply(&d).expect("applies");
        let one = view.get(1).expect("visible again");
        assert_eq!(position(&view, 1), Position::from_units(50.0, 50.0));
        // The old name went with the old incarnation.
        assert!(one.get::<Name>().is_none());
        assert_eq!(one.entered_at(), 6);
    }

    #[test]
    fn enter_then_update_in_one_delta() {
        let mut view = populated();
        let mut d = delta(6);
        d.entered = vec![player(9, 1.0, 1.0, "n")];
        d.updated = vec![moved(9, 2.0, 2.0)];
        view.apply(&d).expect("applies");
        assert_eq!(position(&view, 9), Position::from_units(2.0, 2.0));
    }

    #[test]
    fn first_delta_may_repeat_the_start_tick_later_ones_may_not() {
        let mut view = WorldView::from_tick(5);
        assert_eq!(
            view.apply(&delta(4)),
            Err(MirrorError::TickBeforeStart { tick: 4, start: 5 })
        );
        view.apply(&delta(5)).expect("the join tick itself is fine");
        assert_eq!(
            view.apply(&delta(5)),
            Err(MirrorError::TickNotIncreasing { tick: 5, last: 5 })
        );
        assert_eq!(
            view.apply(&delta(3)),
            Err(MirrorError::TickNotIncreasing { tick: 3, last: 5 })
        );
        // Gaps are normal: the server skips ticks where nothing changed.
        view.apply(&delta(9)).expect("applies");
        assert_eq!(view.last_tick(), Some(9));
    }

    #[test]
    fn update_for_unknown_entity() {
        let mut view = populated();
        let mut d = delta(6);
        d.updated = vec![moved(7, 0.0, 0.0)];
        assert_eq!(
            view.apply(&d),
            Err(MirrorError::UpdateUnknown { tick: 6, id: 7 })
        );
    }

    #[test]
    fn update_for_entity_that_left_in_the_same_delta() {
        let mut view = populated();
        let mut d = delta(6);
        d.left = vec![1];
        d.updated = vec![moved(1, 0.0, 0.0)];
        assert_eq!(
            view.apply(&d),
            Err(MirrorError::UpdateUnknown { tick: 6, id: 1 })
        );
    }

    #[test]
    fn enter_for_known_entity() {
        let mut view = populated();
        let mut d = delta(6);
        d.entered = vec![player(2, 0.0, 0.0, "again")];
        assert_eq!(
            view.apply(&d),
            Err(MirrorError::EnterKnown { tick: 6, id: 2 })
        );

        let mut twice = delta(6);
        twice.entered = vec![player(8, 0.0, 0.0, "x"), player(8, 1.0, 1.0, "y")];
        assert_eq!(
            view.apply(&twice),
            Err(MirrorError::EnterKnown { tick: 6, id: 8 })
        );
    }

    #[test]
    fn leave_for_unknown_entity() {
        let mut view = populated();
        let mut d = delta(6);
        d.left = vec![1, 1];
        assert_eq!(
            view.apply(&d),
            Err(MirrorError::LeaveUnknown { tick: 6, id: 1 })
        );
    }

    #[test]
    fn a_rejected_delta_changes_nothing() {
        let mut view = populated();
        let before: Vec<Entity> = view.iter().cloned().collect();
        // Valid left and entered sections, then a bad update at the end:
        // none of it may land.
        let mut d = delta(6);
        d.ack_input = 9;
        d.left = vec![2];
        d.entered = vec![player(3, 3.0, 3.0, "c")];
        d.updated = vec![moved(1, 99.0, 99.0), moved(4, 0.0, 0.0)];
        assert!(view.apply(&d).is_err());

        let after: Vec<Entity> = view.iter().cloned().collect();
        assert_eq!(before, after);
        assert_eq!(view.last_tick(), Some(5));
        assert_eq!(view.ack_input(), 0);
    }

    #[test]
    fn undecodable_component_is_reported_on_access() {
        let mut view = WorldView::new();
        let mut d = delta(1);
        d.entered = vec![EntityState {
            id: 1,
            components: vec![ComponentValue {
                id: Position::ID,
                value: value(&"not a position"),
            }],
        }];
        view.apply(&d).expect("the mirror does not decode values");
        let entity = view.get(1).expect("visible");
        assert!(matches!(entity.get::<Position>(), Some(Err(_))));
        assert!(entity.get::<Name>().is_none());
        assert_eq!(entity.components().count(), 1);
    }

    impl WorldView {
        fn ids(&self) -> Vec<u32> {
            self.iter().map(Entity::id).collect()
        }
    }
}
