//! The receiving side of [`DeltaPart`]s: the rules of `PROTOCOL.md` §6.2,
//! in one place for every mirror (the Rust client's, the simulation's test
//! harness).
//!
//! [`PartReceiver`] keeps the bookkeeping (the `complete` watermark,
//! tombstones of entities that left, which parts of which ticks arrived)
//! and decides, entry by entry, what to do with a part; the mirror itself
//! stores entities behind the small [`Mirror`] trait. Everything is
//! bounded: at most [`MAX_PENDING_TICKS`] ticks of part bookkeeping and
//! [`MAX_TOMBSTONES`] tombstones.

use std::collections::{BTreeMap, HashMap};

use crate::delta::EntityState;
use crate::delta_part::DeltaPart;

/// Ticks whose parts are tracked at once; older ones are forgotten (they
/// can then no longer complete, and later ticks supersede them).
pub const MAX_PENDING_TICKS: usize = 64;
/// Tombstones kept; beyond it the oldest go first.
pub const MAX_TOMBSTONES: usize = 4096;

/// Where a [`PartReceiver`] keeps entities.
pub trait Mirror {
    /// Tick of the last part that entered or updated entity `id`, if the
    /// mirror holds it.
    fn entity_tick(&self, id: u32) -> Option<u32>;
    /// Inserts or replaces entity `entry.id` with exactly these components.
    fn replace(&mut self, entry: &EntityState, tick: u32);
    /// Merges `entry`'s components into the known entity `entry.id`.
    fn merge(&mut self, entry: &EntityState, tick: u32);
    /// Removes entity `id`.
    fn remove(&mut self, id: u32);
    /// Ids of the entities whose tick is below `tick`.
    fn ids_below(&self, tick: u32) -> Vec<u32>;
}

/// What became of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartOutcome {
    /// False: the part was older than the complete state and dropped whole.
    pub applied: bool,
    /// The tick this part completed: acknowledge it with `Ack`.
    pub completed: Option<u32>,
}

#[derive(Debug, Clone)]
struct PendingTick {
    baseline: u32,
    /// Index of the last part, once it arrived.
    last: Option<u16>,
    /// One bit per part index seen.
    seen: Vec<u64>,
    received: u32,
    /// An update was skipped because the entity may predate the baseline,
    /// or the parts disagree.
    incomplete: bool,
}

/// Applies parts to a [`Mirror`] by the rules of `PROTOCOL.md` §6.2.
#[derive(Debug, Clone, Default)]
pub struct PartReceiver {
    complete: u32,
    tombstones: HashMap<u32, u32>,
    pending: BTreeMap<u32, PendingTick>,
}

impl PartReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// The greatest tick whose whole state the mirror holds (0: none yet).
    pub fn complete(&self) -> u32 {
        self.complete
    }

    /// Applies `part` to `mirror`.
    pub fn apply(&mut self, part: &DeltaPart, mirror: &mut impl Mirror) -> PartOutcome {
        let tick = part.tick;
        if tick <= self.complete {
            return PartOutcome::default();
        }
        let mut incomplete = false;
        for &id in &part.left {
            if mirror.entity_tick(id).is_some_and(|t| t < tick) {
                mirror.remove(id);
                self.tombstone(id, tick);
            }
        }
        for entry in &part.entered {
            let newer_known = mirror.entity_tick(entry.id).is_some_and(|t| t >= tick);
            let left_later = self.tombstones.get(&entry.id).is_some_and(|&t| t >= tick);
            if !newer_known && !left_later {
                self.tombstones.remove(&entry.id);
                mirror.replace(entry, tick);
            }
        }
        let baseline_held = self.complete >= part.baseline;
        for entry in &part.updated {
            match mirror.entity_tick(entry.id) {
                // Newer state is already here.
                Some(t) if t >= tick => {}
                Some(t) if baseline_held || t >= part.baseline => mirror.merge(entry, tick),
                // With the baseline held, an unknown entity left after `tick`.
                None if baseline_held => {}
                // The entity may predate the baseline, or be one that
                // entered in a tick that has not arrived yet.
                _ => incomplete = true,
            }
        }
        let completed = self.note_part(part, incomplete).then(|| {
            if part.is_full_state() {
                for id in mirror.ids_below(tick) {
                    mirror.remove(id);
                    self.tombstone(id, tick);
                }
            }
            self.complete_up_to(tick);
            tick
        });
        PartOutcome {
            applied: true,
            completed,
        }
    }

    /// Records that `part` arrived; true when its tick is now complete.
    fn note_part(&mut self, part: &DeltaPart, incomplete: bool) -> bool {
        if !self.pending.contains_key(&part.tick) && self.pending.len() >= MAX_PENDING_TICKS {
            self.pending.pop_first();
        }
        let pending = self
            .pending
            .entry(part.tick)
            .or_insert_with(|| PendingTick {
                baseline: part.baseline,
                last: None,
                seen: Vec::new(),
                received: 0,
                incomplete: false,
            });
        let beyond_last = pending.last.is_some_and(|last| part.part > last);
        let second_last = part.last && pending.last.is_some_and(|last| last != part.part);
        if pending.baseline != part.baseline || beyond_last || second_last {
            // Parts of one tick that disagree: none of them can complete it.
            pending.incomplete = true;
            return false;
        }
        pending.incomplete |= incomplete;
        if part.last {
            pending.last = Some(part.part);
        }
        let (word, bit) = (usize::from(part.part) / 64, 1u64 << (part.part % 64));
        if pending.seen.len() <= word {
            pending.seen.resize(word + 1, 0);
        }
        if pending.seen[word] & bit == 0 {
            pending.seen[word] |= bit;
            pending.received += 1;
        }
        let all_here = pending
            .last
            .is_some_and(|last| pending.received == u32::from(last) + 1);
        let baseline_held = pending.baseline == 0 || self.complete >= pending.baseline;
        all_here && !pending.incomplete && baseline_held
    }

    fn complete_up_to(&mut self, tick: u32) {
        self.complete = tick;
        self.pending = self.pending.split_off(&(tick + 1));
        self.tombstones.retain(|_, t| *t > tick);
    }

    fn tombstone(&mut self, id: u32, tick: u32) {
        if self.tombstones.len() >= MAX_TOMBSTONES
            && !self.tombstones.contains_key(&id)
            && let Some((&oldest, _)) = self.tombstones.iter().min_by_key(|(_, t)| **t)
        {
            self.tombstones.remove(&oldest);
        }
        self.tombstones.insert(id, tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ComponentValue, RawValue};

    #[derive(Debug, Default)]
    struct Map(BTreeMap<u32, (u32, Vec<(u8, u32)>)>);

    impl Mirror for Map {
        fn entity_tick(&self, id: u32) -> Option<u32> {
            self.0.get(&id).map(|e| e.0)
        }
        fn replace(&mut self, entry: &EntityState, tick: u32) {
            self.0.insert(entry.id, (tick, values(entry)));
        }
        fn merge(&mut self, entry: &EntityState, tick: u32) {
            if let Some(e) = self.0.get_mut(&entry.id) {
                e.0 = tick;
                for (k, v) in values(entry) {
                    e.1.retain(|(c, _)| *c != k);
                    e.1.push((k, v));
                }
                e.1.sort_unstable();
            }
        }
        fn remove(&mut self, id: u32) {
            self.0.remove(&id);
        }
        fn ids_below(&self, tick: u32) -> Vec<u32> {
            self.0
                .iter()
                .filter(|(_, e)| e.0 < tick)
                .map(|(id, _)| *id)
                .collect()
        }
    }

    fn values(entry: &EntityState) -> Vec<(u8, u32)> {
        entry
            .components
            .iter()
            .map(|c| (c.id, c.value.decode().expect("u32")))
            .collect()
    }

    fn entity(id: u32, components: &[(u8, u32)]) -> EntityState {
        EntityState {
            id,
            components: components
                .iter()
                .map(|&(id, v)| ComponentValue {
                    id,
                    value: RawValue::encode(&v).expect("encodes"),
                })
                .collect(),
        }
    }

    fn part(tick: u32, baseline: u32) -> DeltaPart {
        DeltaPart {
            tick,
            baseline,
            last: true,
            ..DeltaPart::default()
        }
    }

    #[test]
    fn a_full_state_completes_and_drops_what_it_does_not_hold() {
        let (mut rx, mut m) = (PartReceiver::new(), Map::default());
        m.replace(&entity(9, &[(1, 0)]), 1);
        let full = DeltaPart {
            entered: vec![entity(1, &[(1, 10), (2, 5)])],
            ..part(5, 0)
        };
        assert_eq!(rx.apply(&full, &mut m).completed, Some(5));
        assert_eq!(m.0.keys().copied().collect::<Vec<_>>(), vec![1]);
        // A late part of an older tick is dropped whole.
        let old = DeltaPart {
            entered: vec![entity(9, &[(1, 0)])],
            ..part(4, 0)
        };
        assert!(!rx.apply(&old, &mut m).applied);
        assert!(!m.0.contains_key(&9));
    }

    #[test]
    fn parts_complete_a_tick_only_together_and_never_overwrite_newer_state() {
        let (mut rx, mut m) = (PartReceiver::new(), Map::default());
        rx.apply(
            &DeltaPart {
                entered: vec![entity(1, &[(1, 10)]), entity(2, &[(1, 20)])],
                ..part(5, 0)
            },
            &mut m,
        );
        let newer = DeltaPart {
            updated: vec![entity(1, &[(1, 12)])],
            last: false,
            ..part(7, 5)
        };
        assert_eq!(rx.apply(&newer, &mut m).completed, None, "one of two parts");
        let older = DeltaPart {
            updated: vec![entity(1, &[(1, 11)]), entity(2, &[(1, 21)])],
            ..part(6, 5)
        };
        assert_eq!(rx.apply(&older, &mut m).completed, Some(6));
        assert_eq!(m.0[&1].1, vec![(1, 12)], "tick 7's value stays");
        assert_eq!(m.0[&2].1, vec![(1, 21)]);
        let rest = DeltaPart {
            left: vec![2],
            part: 1,
            ..part(7, 5)
        };
        assert_eq!(rx.apply(&rest, &mut m).completed, Some(7));
        assert!(!m.0.contains_key(&2));
        // A stale enter of 2 (from before it left) does not bring it back.
        let stale = DeltaPart {
            entered: vec![entity(2, &[(1, 20)])],
            last: false,
            ..part(8, 5)
        };
        rx.tombstone(2, 9);
        rx.apply(&stale, &mut m);
        assert!(!m.0.contains_key(&2));
    }

    #[test]
    fn updates_against_a_baseline_not_held_leave_the_tick_incomplete() {
        let (mut rx, mut m) = (PartReceiver::new(), Map::default());
        m.replace(&entity(1, &[(1, 10), (2, 1)]), 3);
        // Baseline 4 was never completed and entity 1 is from tick 3.
        let ahead = DeltaPart {
            updated: vec![entity(1, &[(1, 11)])],
            ..part(6, 4)
        };
        assert_eq!(
            rx.apply(&ahead, &mut m),
            PartOutcome {
                applied: true,
                completed: None
            }
        );
        assert_eq!(m.0[&1].1, vec![(1, 10), (2, 1)], "not merged");
    }
}
