//! A uniform spatial grid with incremental updates.
//!
//! Cells are squares whose side is a power of two. Each cell stores its
//! entities with their positions inline, so a radius query reads contiguous
//! memory. Only entities whose position changed move: a move inside a cell
//! rewrites the stored position, a move across cells is a swap-remove and a
//! push. Each cell also remembers the last tick anything in it changed, so a
//! client whose whole view is unchanged can skip its interest work.

use bevy_ecs::prelude::*;

use crate::boxed_resource::Boxed;
use crate::components::{ChangedReplicated, TickInfo};
use crate::game::SpatialPosition;
use crate::passes::RoomPasses;
use crate::room_state::RoomState;
use crate::schedule::TickSet;
use crate::scratch::grow_to;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    slot: u32,
    x: f32,
    y: f32,
    /// Last tick the entity's replicated state changed. Kept here because
    /// the interest pass reads the entry anyway: a separate per-slot array
    /// would cost a cache miss per visible entity per client.
    changed: u32,
}

/// An entity found by a radius query.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hit {
    pub slot: u32,
    /// Squared distance from the query point.
    pub d2: f32,
    /// Last tick the entity's replicated state changed.
    pub changed: u32,
}

#[derive(Debug, Clone, Copy)]
struct Location {
    entity: Entity,
    cell: u32,
    index: u32,
}

const NO_BUCKET: u32 = u32::MAX;

/// The room's grid (a world resource).
#[derive(Debug)]
pub struct SpatialGrid {
    shift: u32,
    cols: u32,
    /// Per cell, the index of its entries in `buckets`, or [`NO_BUCKET`]
    /// while nothing has entered it: the 1,024 cells of an arena room that
    /// holds one player cost 4 KB, not 24 KB of empty vectors.
    cell_buckets: Vec<u32>,
    /// The entries of the cells that have held an entity.
    buckets: Vec<Vec<Entry>>,
    /// Per slot, where the entity is stored.
    locations: Vec<Option<Location>>,
    /// Per cell, the last tick an entity entered, left, moved or changed in it.
    dirty_tick: Vec<u32>,
    len: usize,
}

impl SpatialGrid {
    /// A grid covering `[0, world_size)` on both axes with cells of
    /// `cell_size` (a power of two) units.
    pub fn new(world_size: f32, cell_size: u32) -> Self {
        debug_assert!(cell_size.is_power_of_two());
        let shift = cell_size.trailing_zeros();
        let cols = ((world_size.ceil() as u64).div_ceil(u64::from(cell_size))).max(1) as u32;
        let cells = (cols as usize) * (cols as usize);
        Self {
            shift,
            cols,
            cell_buckets: vec![NO_BUCKET; cells],
            buckets: Vec::new(),
            locations: Vec::new(),
            dirty_tick: vec![u32::MAX; cells],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the highest slot the grid has seen.
    pub fn slot_capacity(&self) -> usize {
        self.locations.len()
    }

    /// Cells in the grid (its side in cells, squared).
    pub fn cell_count(&self) -> usize {
        self.cell_buckets.len()
    }

    /// The entries of `cell`.
    fn entries(&self, cell: usize) -> &[Entry] {
        match self.cell_buckets[cell] {
            NO_BUCKET => &[],
            bucket => &self.buckets[bucket as usize],
        }
    }

    /// The entries of `cell`, given a bucket if it has none yet.
    fn entries_mut(&mut self, cell: usize) -> &mut Vec<Entry> {
        if self.cell_buckets[cell] == NO_BUCKET {
            self.cell_buckets[cell] = self.buckets.len() as u32;
            self.buckets.push(Vec::new());
        }
        &mut self.buckets[self.cell_buckets[cell] as usize]
    }

    pub fn cell_size(&self) -> u32 {
        1 << self.shift
    }

    fn axis_cell(&self, v: f32) -> u32 {
        // Saturating float-to-int cast: NaN and negatives land in cell 0.
        ((v as i64).max(0) >> self.shift).min(i64::from(self.cols) - 1) as u32
    }

    fn cell_of(&self, x: f32, y: f32) -> u32 {
        self.axis_cell(y) * self.cols + self.axis_cell(x)
    }

    fn mark(&mut self, cell: u32, tick: u32) {
        self.dirty_tick[cell as usize] = tick;
    }

    /// Inserts or moves the entity in `entity`'s slot to `(x, y)`.
    pub fn upsert(&mut self, entity: Entity, x: f32, y: f32, tick: u32) {
        let slot = entity.index_u32();
        let cell = self.cell_of(x, y);
        let i = slot as usize;
        if i >= self.locations.len() {
            self.locations.resize(i + 1, None);
        }
        let mut changed = 0;
        match self.locations[i] {
            Some(loc) if loc.entity == entity && loc.cell == cell => {
                let e = &mut self.entries_mut(cell as usize)[loc.index as usize];
                e.x = x;
                e.y = y;
                self.mark(cell, tick);
                return;
            }
            Some(loc) => {
                if loc.entity == entity {
                    changed = self.entries(loc.cell as usize)[loc.index as usize].changed;
                }
                self.remove_at(loc, tick);
            }
            None => {}
        }
        let entries = self.entries_mut(cell as usize);
        entries.push(Entry {
            slot,
            x,
            y,
            changed,
        });
        self.locations[i] = Some(Location {
            entity,
            cell,
            index: (entries.len() - 1) as u32,
        });
        self.len += 1;
        self.mark(cell, tick);
    }

    /// Removes `entity` if the grid holds it.
    pub fn remove_entity(&mut self, entity: Entity, tick: u32) {
        if let Some(Some(loc)) = self.locations.get(entity.index_u32() as usize).copied()
            && loc.entity == entity
        {
            self.remove_at(loc, tick);
        }
    }

    fn remove_at(&mut self, loc: Location, tick: u32) {
        let entries = self.entries_mut(loc.cell as usize);
        let removed = entries.swap_remove(loc.index as usize);
        let moved = entries.get(loc.index as usize).copied();
        if let Some(moved) = moved
            && let Some(Some(l)) = self.locations.get_mut(moved.slot as usize)
        {
            l.index = loc.index;
        }
        self.locations[removed.slot as usize] = None;
        self.len -= 1;
        self.mark(loc.cell, tick);
    }

    /// Position of the entity in `slot`.
    pub fn position(&self, slot: u32) -> Option<[f32; 2]> {
        let loc = self.locations.get(slot as usize).copied().flatten()?;
        let e = self.entries(loc.cell as usize)[loc.index as usize];
        Some([e.x, e.y])
    }

    /// Records that the entity in `slot` changed in `tick` (its entry and
    /// its cell).
    pub fn mark_changed(&mut self, slot: u32, tick: u32) {
        if let Some(Some(loc)) = self.locations.get(slot as usize).copied() {
            self.entries_mut(loc.cell as usize)[loc.index as usize].changed = tick;
            self.mark(loc.cell, tick);
        }
    }

    /// Inclusive cell ranges `(x0, x1, y0, y1)` covering the square around a point.
    fn cell_span(&self, x: f32, y: f32, r: f32) -> (u32, u32, u32, u32) {
        (
            self.axis_cell(x - r),
            self.axis_cell(x + r),
            self.axis_cell(y - r),
            self.axis_cell(y + r),
        )
    }

    /// Calls `visit(slot, squared distance)` for every entity within `r` of
    /// `(x, y)`. Cells wholly outside the circle are not read.
    pub fn query(&self, x: f32, y: f32, r: f32, mut visit: impl FnMut(u32, f32)) {
        let mut scratch = Vec::new();
        for hit in self.query_into(x, y, r, &mut scratch) {
            visit(hit.slot, hit.d2);
        }
    }

    /// Every entity within `r` of `(x, y)`, written into `scratch`, which is
    /// only ever grown: a caller that keeps it across queries pays for no
    /// allocation and no clearing.
    ///
    /// The distance test does not branch: every entry of a cell is written
    /// and the write cursor advances only for hits. Whether a crowd member is
    /// inside the circle is a coin toss, and mispredicted branches cost more
    /// than the extra stores.
    pub fn query_into<'s>(&self, x: f32, y: f32, r: f32, scratch: &'s mut Vec<Hit>) -> &'s [Hit] {
        let r2 = r * r;
        let (x0, x1, y0, y1) = self.cell_span(x, y, r);
        // The span is at most a few cells wide: each column's gap is worked
        // out once, not once per row.
        let mut column_gap2 = [0.0_f32; 16];
        let columns = ((x1 - x0 + 1) as usize).min(column_gap2.len());
        for (i, gap2) in column_gap2[..columns].iter_mut().enumerate() {
            let dx = self.axis_gap(x0 + i as u32, x);
            *gap2 = dx * dx;
        }
        let mut n = 0;
        for cy in y0..=y1 {
            let dy = self.axis_gap(cy, y);
            let row = (cy * self.cols) as usize;
            for cx in x0..=x1 {
                let i = (cx - x0) as usize;
                let dx2 = if i < columns {
                    column_gap2[i]
                } else {
                    self.axis_gap(cx, x).powi(2)
                };
                if dx2 + dy * dy > r2 {
                    continue;
                }
                let entries = self.entries(row + cx as usize);
                let end = n + entries.len();
                grow_to(scratch, end);
                let window = &mut scratch[n..end];
                let mut kept = 0;
                for e in entries {
                    let (ex, ey) = (e.x - x, e.y - y);
                    let d2 = ex * ex + ey * ey;
                    window[kept.min(window.len() - 1)] = Hit {
                        slot: e.slot,
                        d2,
                        changed: e.changed,
                    };
                    kept += usize::from(d2 <= r2);
                }
                n += kept;
            }
        }
        &scratch[..n]
    }

    /// Distance along one axis from `v` to cell column (or row) `c`. Edge
    /// cells reach to infinity because positions outside the world are
    /// clamped into them.
    fn axis_gap(&self, c: u32, v: f32) -> f32 {
        let size = self.cell_size() as f32;
        let lo = if c == 0 {
            f32::NEG_INFINITY
        } else {
            c as f32 * size
        };
        let hi = if c + 1 == self.cols {
            f32::INFINITY
        } else {
            (c + 1) as f32 * size
        };
        (lo - v).max(v - hi).max(0.0)
    }

    /// True when a cell within `r` of `(x, y)` changed in `tick`.
    pub fn any_dirty(&self, x: f32, y: f32, r: f32, tick: u32) -> bool {
        let (x0, x1, y0, y1) = self.cell_span(x, y, r);
        (y0..=y1).any(|cy| {
            let row = (cy * self.cols) as usize;
            self.dirty_tick[row + x0 as usize..=row + x1 as usize].contains(&tick)
        })
    }
}

/// Adds the system that keeps the grid in step with component `P`.
pub(crate) fn add_sync_system<P: SpatialPosition>(passes: &mut RoomPasses, world: &mut World) {
    let sync = |moved: ChangedReplicated<'_, '_, P>,
                mut removed: RemovedComponents<'_, '_, P>,
                mut room: ResMut<'_, Boxed<RoomState>>,
                info: Res<'_, TickInfo>| {
        let grid = &mut room.grid;
        for entity in removed.read() {
            grid.remove_entity(entity, info.tick);
        }
        for (entity, p) in &moved {
            let [x, y] = p.position();
            grid.upsert(entity, x, y, info.tick);
        }
    };
    passes.add(world, TickSet::Spatial, sync);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entity(index: u32) -> Entity {
        Entity::from_raw_u32(index).expect("valid index")
    }

    fn brute_force(points: &[(f32, f32)], x: f32, y: f32, r: f32) -> Vec<u32> {
        let mut v: Vec<u32> = points
            .iter()
            .enumerate()
            .filter(|(_, (px, py))| (px - x).powi(2) + (py - y).powi(2) <= r * r)
            .map(|(i, _)| i as u32)
            .collect();
        v.sort_unstable();
        v
    }

    fn query(grid: &SpatialGrid, x: f32, y: f32, r: f32) -> Vec<u32> {
        let mut v = Vec::new();
        grid.query(x, y, r, |slot, _| v.push(slot));
        v.sort_unstable();
        v
    }

    proptest! {
        #[test]
        fn query_equals_brute_force(
            points in prop::collection::vec((-50.0f32..1100.0, -50.0f32..1100.0), 0..200),
            moves in prop::collection::vec((0usize..200, -50.0f32..1100.0, -50.0f32..1100.0), 0..100),
            removals in prop::collection::vec(0usize..200, 0..20),
            center in (-100.0f32..1100.0, -100.0f32..1100.0),
            r in 0.0f32..400.0,
            shift in 4u32..9,
        ) {
            let mut grid = SpatialGrid::new(1024.0, 1 << shift);
            let mut points = points;
            for (i, (x, y)) in points.iter().enumerate() {
                grid.upsert(entity(i as u32), *x, *y, 1);
            }
            for (i, x, y) in moves {
                if i < points.len() {
                    points[i] = (x, y);
                    grid.upsert(entity(i as u32), x, y, 2);
                }
            }
            let mut alive = points.clone();
            for i in removals {
                if i < points.len() {
                    grid.remove_entity(entity(i as u32), 3);
                    alive[i] = (f32::INFINITY, f32::INFINITY);
                }
            }
            prop_assert_eq!(query(&grid, center.0, center.1, r), brute_force(&alive, center.0, center.1, r));
            let live = alive.iter().filter(|p| p.0.is_finite()).count();
            prop_assert_eq!(grid.len(), live);
        }
    }

    #[test]
    fn moving_within_a_cell_updates_in_place_and_marks_dirty() {
        let mut grid = SpatialGrid::new(1024.0, 128);
        grid.upsert(entity(0), 10.0, 10.0, 1);
        grid.upsert(entity(0), 20.0, 10.0, 2);
        assert_eq!(grid.position(0), Some([20.0, 10.0]));
        assert!(grid.any_dirty(0.0, 0.0, 5.0, 2));
        assert!(!grid.any_dirty(900.0, 900.0, 5.0, 2));
    }

    #[test]
    fn stale_entity_does_not_remove_the_slots_new_owner() {
        let mut grid = SpatialGrid::new(1024.0, 128);
        let old = entity(3);
        grid.upsert(old, 10.0, 10.0, 1);
        grid.remove_entity(old, 2);
        let new =
            Entity::from_index_and_generation(old.index(), old.generation().after_versions(1));
        grid.upsert(new, 50.0, 50.0, 2);
        grid.remove_entity(old, 3);
        assert_eq!(grid.position(3), Some([50.0, 50.0]));
    }
}
