//! The fixed order of a tick.

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::ScheduleLabel;

/// The phases of a tick, run in this order every step. Games add their
/// systems to `ApplyInputs` and `Simulate`, which the room's `Schedule`
/// runs; the room runs the later phases itself (see `crate::passes`).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TickSet {
    /// Turn the latest [`crate::Intent`]s into game state (velocities, actions).
    ApplyInputs,
    /// Game rules and movement.
    Simulate,
    /// Room bookkeeping: forget despawned entities, give new ones a `NetId`.
    Track,
    /// Move entities whose position changed to their new grid cell.
    Spatial,
    /// Find replicated components whose wire value changed; encode each
    /// changed entity's update once.
    Replicate,
    /// Work out, per client, which entities entered, stayed in or left view.
    Interest,
    /// Assemble each client's delta from the pre-encoded pieces.
    Deltas,
}

impl TickSet {
    /// Whether a game's systems may go into this phase.
    pub(crate) fn is_for_games(self) -> bool {
        matches!(self, TickSet::ApplyInputs | TickSet::Simulate)
    }
}

/// Label of the room's schedule.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomTick;

pub(crate) fn new_schedule() -> Schedule {
    let mut schedule = Schedule::new(RoomTick);
    schedule.configure_sets((TickSet::ApplyInputs, TickSet::Simulate).chain());
    schedule
}
