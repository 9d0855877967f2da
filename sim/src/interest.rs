//! Per-client interest: which entities each client sees, with hysteresis.
//!
//! An entity enters a client's view inside `aoi_radius` of the client's
//! entity and leaves only beyond `aoi_radius + aoi_margin`. Each tick the
//! view is diffed against what the client already knows, in time linear in
//! the candidates: known entities are stamped in a per-slot scratch array,
//! the grid is queried once, and the stamps tell enter, stay and leave apart
//! without sorting or hashing. A client none of whose nearby cells changed
//! this tick is skipped outright.

use std::collections::HashMap;

use bevy_ecs::prelude::*;

use crate::boxed_resource::Boxed;
use crate::components::{ClientId, Retained, TickInfo};
use crate::datagram::DatagramView;
use crate::replication::ReplicationState;
use crate::room_state::RoomState;
use crate::scratch::grow_to;
use crate::spatial_grid::{Hit, SpatialGrid};
use crate::wire_slots::WireSlots;

/// An entity a client knows: its slot and the net id it had when the client
/// learnt of it (a reused slot holds another net id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    pub slot: u32,
    pub net_id: u32,
    /// The slot the client's moves name it by ([`WireSlots`]); set when
    /// the delta that enters it is written.
    pub wire_slot: u32,
    /// The tick it entered the client's view.
    pub since: u32,
}

impl Known {
    pub fn new(slot: u32, net_id: u32, since: u32) -> Self {
        Self {
            slot,
            net_id,
            wire_slot: u32::MAX,
            since,
        }
    }

    /// What a stay's entry in `stay_wire_slots` is in `tick`: its wire
    /// slot, or [`NO_MOVE`] when it entered in the tick before (the
    /// client's track of it has no step yet, so its change goes as an entry).
    fn move_slot(&self, tick: u32) -> u32 {
        if self.since == tick.wrapping_sub(1) {
            NO_MOVE
        } else {
            self.wire_slot
        }
    }
}

/// A slot's stamp for the diff, and, for a client that takes moves, what
/// its `stay_wire_slots` gets for the entity (valid while the stamp says the
/// client knew it). Side by side, because a stay reads both.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mark {
    pub stamp: u32,
    wire: u32,
}

/// In `stay_wire_slots`: the stay's change goes as an entry.
pub(crate) const NO_MOVE: u32 = u32::MAX;

/// What the room keeps per connected client.
#[derive(Debug)]
pub struct ClientView {
    pub id: ClientId,
    /// The entity whose position is the client's point of view.
    pub entity: Entity,
    pub(crate) known: Vec<Known>,
    /// `known` before this tick, to roll back a delta that was not delivered.
    pub(crate) prev_known: Vec<Known>,
    /// This tick's diff: slots that entered, slots that stayed and must be
    /// sent, net ids that left.
    pub(crate) enters: Vec<u32>,
    pub(crate) stays: Vec<u32>,
    pub(crate) left: Vec<u32>,
    /// For a client that takes moves: per stay, [`Known::move_slot`].
    pub(crate) stay_wire_slots: Vec<u32>,
    /// The client takes the motion component's changes as moves
    /// (protocol version 2 over a reliable transport).
    pub(crate) compact: bool,
    pub(crate) wire_slots: WireSlots,
    /// The last tick whose delta resent the whole view: the predictions
    /// the client makes from it are not the server's, so the next tick
    /// sends no moves.
    pub(crate) resynced_tick: u32,
    /// The view was recomputed this tick (else it is unchanged).
    pub(crate) recomputed: bool,
    /// The next delta sends full state for every known entity, because an
    /// earlier delta was not delivered.
    pub(crate) resync: bool,
    /// The view must be recomputed next tick even if nothing nearby changed:
    /// the client is new, or entities were held back by the per-tick caps.
    pub(crate) incomplete: bool,
    /// Known entities kept beyond the radius because they are
    /// [`Retained`]: while there are any, the view is recomputed every tick
    /// (their changes and despawns are not in the nearby cells).
    retained_far: u32,
    /// `ReplicationState::untracked_count` when the view was last computed:
    /// while it has not moved, every known slot still holds its entity.
    untracked_seen: u64,
    pub(crate) last_input_seq: u32,
    pub(crate) sent_ack: u32,
    pub(crate) last_sent_tick: u32,
    /// Set for clients that get their state in datagrams.
    pub(crate) datagram: Option<Box<DatagramView>>,
    /// The client left; the view goes at the next [`Clients::compact`].
    departed: bool,
}

impl ClientView {
    pub(crate) fn new(id: ClientId, entity: Entity) -> Self {
        Self {
            id,
            entity,
            known: Vec::new(),
            prev_known: Vec::new(),
            enters: Vec::new(),
            stays: Vec::new(),
            left: Vec::new(),
            stay_wire_slots: Vec::new(),
            compact: false,
            wire_slots: WireSlots::default(),
            resynced_tick: 0,
            recomputed: false,
            resync: false,
            incomplete: true,
            retained_far: 0,
            untracked_seen: u64::MAX,
            last_input_seq: 0,
            sent_ack: 0,
            last_sent_tick: 0,
            datagram: None,
            departed: false,
        }
    }

    /// Number of entities the client currently sees.
    pub fn visible(&self) -> usize {
        self.known.len()
    }

    /// Sequence number of the last input applied for this client.
    pub fn last_input_seq(&self) -> u32 {
        self.last_input_seq
    }

    /// Undoes this tick's view change: the client did not get the delta.
    /// A datagram client needs no roll-back (its state is against what it
    /// acknowledged); only a full state that was not handed over is resent.
    pub(crate) fn roll_back(&mut self) {
        if let Some(dg) = &mut self.datagram {
            dg.full_state_lost();
            return;
        }
        if self.recomputed {
            std::mem::swap(&mut self.known, &mut self.prev_known);
            self.recomputed = false;
            // The restored set predates the last check of its net ids.
            self.untracked_seen = u64::MAX;
            if self.compact {
                self.wire_slots
                    .reset_to(self.known.iter().map(|k| k.wire_slot));
            }
        }
        self.resync = true;
        self.sent_ack = 0;
    }
}

/// The clients of a room, in join order (part of the room's state).
#[derive(Debug, Default)]
pub struct Clients {
    /// Join order, which is the order of the tick's output. Between ticks
    /// it may hold departed views (see [`Clients::remove`]).
    pub(crate) list: Vec<ClientView>,
    index: HashMap<ClientId, usize>,
    /// Departed views still in `list`.
    departed: usize,
    /// Scratch for grid query results, reused across clients and ticks
    /// (see [`SpatialGrid::query_into`]).
    hits: Vec<Hit>,
    /// Scratch for a client's stays, grown and never shrunk: see
    /// `update_interest`.
    stays: Vec<u32>,
    /// Per slot stamps for the diff; see the module comment.
    marks: Vec<Mark>,
    /// Scratch for a client's `stay_wire_slots`, like `stays`.
    stay_wire_slots: Vec<u32>,
    generation: u32,
}

impl Clients {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, id: ClientId) -> Option<&ClientView> {
        self.index.get(&id).map(|i| &self.list[*i])
    }

    pub(crate) fn get_mut(&mut self, id: ClientId) -> Option<&mut ClientView> {
        self.index.get(&id).map(|i| &mut self.list[*i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &ClientView> {
        self.list.iter().filter(|v| !v.departed)
    }

    pub(crate) fn insert(&mut self, view: ClientView) {
        self.index.insert(view.id, self.list.len());
        self.list.push(view);
    }

    /// Takes the client out and returns its entity. The view itself is only
    /// marked: shifting the list and the index at every leave would make a
    /// mass disconnect of K players from a room of N cost K·N, where
    /// [`Clients::compact`] once a tick costs N.
    pub(crate) fn remove(&mut self, id: ClientId) -> Option<Entity> {
        let i = self.index.remove(&id)?;
        let view = &mut self.list[i];
        view.departed = true;
        self.departed += 1;
        Some(view.entity)
    }

    /// Drops the departed views, keeping join order (the order of the
    /// tick's output, so that it stays deterministic).
    pub(crate) fn compact(&mut self) {
        if self.departed == 0 {
            return;
        }
        self.list.retain(|v| !v.departed);
        self.index.clear();
        self.index
            .extend(self.list.iter().enumerate().map(|(i, v)| (v.id, i)));
        self.departed = 0;
    }

    /// Three fresh stamp values: `g` = known before this tick, `g + 1` =
    /// known and still visible, `g + 2` = entering now.
    fn next_generation(&mut self, slots: usize) -> u32 {
        grow_to(&mut self.marks, slots);
        if self.generation >= u32::MAX - 6 {
            self.marks.fill(Mark::default());
            self.generation = 0;
        }
        self.generation += 3;
        self.generation
    }
}

/// Radii and caps of interest management (part of the room's state).
#[derive(Resource, Debug, Clone, Copy)]
pub(crate) struct InterestConfig {
    pub radius: f32,
    pub margin: f32,
    /// Most entities that may enter one client's view in one tick; the rest
    /// enter in later ticks. Bounds the join snapshot and any burst.
    pub max_enters_per_tick: usize,
}

/// Computes every client's enter / stay / leave lists for this tick.
pub(crate) fn update_interest(
    mut room: ResMut<'_, Boxed<RoomState>>,
    info: Res<'_, TickInfo>,
    retained: Query<'_, '_, (), With<Retained>>,
) {
    let RoomState {
        clients,
        grid,
        replication,
        interest: config,
        stats,
        ..
    } = &mut **room;
    // Most games retain nothing: then no leaving entity is looked up.
    let any_retained = !retained.is_empty();
    let is_retained = |slot: u32| {
        any_retained
            && replication
                .entity(slot)
                .is_some_and(|e| retained.contains(e))
    };
    let outer = config.radius + config.margin;
    let inner2 = config.radius * config.radius;
    let slots = grid_slots(grid, replication);
    let mut hits = std::mem::take(&mut clients.hits);
    let mut stay_scratch = std::mem::take(&mut clients.stays);
    let mut wire_scratch = std::mem::take(&mut clients.stay_wire_slots);
    for i in 0..clients.list.len() {
        let viewer = clients.list[i].entity;
        let position = grid
            .position(viewer.index_u32())
            .filter(|_| replication.entity(viewer.index_u32()) == Some(viewer));
        let view = &clients.list[i];
        if let Some([x, y]) = position
            && !view.resync
            && !view.incomplete
            && view.retained_far == 0
            && view
                .datagram
                .as_ref()
                .is_none_or(|d| d.caught_up(info.tick))
            && !grid.any_dirty(x, y, outer, info.tick)
        {
            let view = &mut clients.list[i];
            view.enters.clear();
            view.stays.clear();
            view.stay_wire_slots.clear();
            view.left.clear();
            view.recomputed = false;
            stats.skipped_views += 1;
            continue;
        }
        let g = clients.next_generation(slots);
        let marks = &mut clients.marks;
        let view = &mut clients.list[i];
        std::mem::swap(&mut view.known, &mut view.prev_known);
        view.known.clear();
        view.enters.clear();
        view.stays.clear();
        view.stay_wire_slots.clear();
        view.left.clear();
        view.recomputed = true;
        let untracked = replication.untracked_count();
        let compact = view.compact;
        let mark_of = |k: &Known| Mark {
            stamp: g,
            wire: if compact {
                k.move_slot(info.tick)
            } else {
                NO_MOVE
            },
        };
        if view.untracked_seen == untracked {
            for k in &view.prev_known {
                marks[k.slot as usize] = mark_of(k);
            }
        } else {
            for k in &view.prev_known {
                if replication.net_id(k.slot) == k.net_id {
                    marks[k.slot as usize] = mark_of(k);
                }
            }
        }
        view.untracked_seen = untracked;
        let mut held_back = false;
        if let Some([x, y]) = position {
            // The player's own entity comes first, whatever the caps.
            let own = viewer.index_u32();
            if marks[own as usize].stamp != g {
                marks[own as usize].stamp = g + 2;
                view.enters.push(own);
            }
            let (enters, stays) = (&mut view.enters, &mut view.stays);
            let resync = view.resync;
            // Datagram clients take their changes against their baseline
            // when the state is written, not from this tick's stays.
            let stay_tick = if view.datagram.is_some() {
                u32::MAX
            } else {
                info.tick
            };
            let found = grid.query_into(x, y, outer, &mut hits);
            // Most hits are stays. They are written at a running index into
            // a scratch with room for one per hit and join the view in one
            // copy: a store and an add each instead of a push.
            grow_to(&mut stay_scratch, found.len());
            if compact {
                grow_to(&mut wire_scratch, found.len());
            }
            let mut stay_count = 0;
            for &Hit { slot, d2, changed } in found {
                let mark = &mut marks[slot as usize];
                if mark.stamp == g {
                    mark.stamp = g + 1;
                    stay_scratch[stay_count] = slot;
                    if compact {
                        wire_scratch[stay_count] = mark.wire;
                    }
                    stay_count += usize::from(resync || changed == stay_tick);
                } else if mark.stamp != g + 2 && d2 <= inner2 {
                    if enters.len() < config.max_enters_per_tick {
                        mark.stamp = g + 2;
                        enters.push(slot);
                    } else {
                        held_back = true;
                    }
                }
            }
            stays.extend_from_slice(&stay_scratch[..stay_count]);
            if compact {
                view.stay_wire_slots
                    .extend_from_slice(&wire_scratch[..stay_count]);
            }
        }
        view.incomplete = held_back;
        if let Some(dg) = view.datagram.as_deref_mut() {
            view.retained_far = dg.rebuild_known(
                &view.prev_known,
                marks,
                g + 1,
                &is_retained,
                &view.enters,
                replication,
                info.tick,
                &mut view.known,
                &mut view.left,
            );
            stats.visible_total += view.known.len() as u64;
            stats.visible_max = stats.visible_max.max(view.known.len() as u32);
            continue;
        }
        let mut retained_far = 0;
        for k in &view.prev_known {
            // Only entries whose net id still matched were stamped `g`;
            // those still stamped `g` are beyond the view now.
            let mark = marks[k.slot as usize].stamp;
            if mark == g + 1 {
                view.known.push(*k);
            } else if mark == g && is_retained(k.slot) {
                view.known.push(*k);
                retained_far += 1;
                if view.resync || replication.last_change(k.slot) == info.tick {
                    view.stays.push(k.slot);
                    if compact {
                        view.stay_wire_slots.push(k.move_slot(info.tick));
                    }
                }
            } else {
                view.left.push(k.net_id);
                if compact {
                    view.wire_slots.give_back(k.wire_slot);
                }
            }
        }
        view.retained_far = retained_far;
        for &slot in &view.enters {
            view.known
                .push(Known::new(slot, replication.net_id(slot), info.tick));
        }
        stats.visible_total += view.known.len() as u64;
        stats.visible_max = stats.visible_max.max(view.known.len() as u32);
    }
    clients.hits = hits;
    clients.stays = stay_scratch;
    clients.stay_wire_slots = wire_scratch;
}

/// Size the stamp array must have: one past the highest slot in use.
fn grid_slots(grid: &SpatialGrid, replication: &ReplicationState) -> usize {
    grid.slot_capacity().max(replication.slot_capacity())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(ids: impl IntoIterator<Item = u64>) -> Clients {
        let mut clients = Clients::default();
        for id in ids {
            clients.insert(ClientView::new(
                id,
                Entity::from_raw_u32(id as u32).expect("index"),
            ));
        }
        clients
    }

    fn ids(clients: &Clients) -> Vec<u64> {
        clients.iter().map(|v| v.id).collect()
    }

    #[test]
    fn removal_keeps_join_order_before_and_after_compaction() {
        let mut c = clients(1..=6);
        assert_eq!(c.remove(2), Some(Entity::from_raw_u32(2).expect("index")));
        assert_eq!(c.remove(2), None, "gone once");
        c.remove(5);
        // A client id may come back before the departed view is dropped.
        c.insert(ClientView::new(2, Entity::from_raw_u32(20).expect("index")));
        let expected = [1, 3, 4, 6, 2];
        assert_eq!((ids(&c), c.len()), (expected.to_vec(), 5));
        assert!(c.get(5).is_none());
        assert_eq!(c.get(2).map(|v| v.entity.index_u32()), Some(20));
        c.compact();
        assert_eq!((ids(&c), c.list.len()), (expected.to_vec(), 5));
        for id in expected {
            assert_eq!(c.get(id).map(|v| v.id), Some(id), "index after compaction");
        }
    }
}
