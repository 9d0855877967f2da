//! The room's own passes of a tick: tracking, the grid, replication,
//! interest and deltas.
//!
//! They are bevy systems, but they do not go into the room's `Schedule`:
//! a system there costs about 5 KB per room (its node in the schedule graph
//! and its share of the built executor), against about 0.5 KB for the
//! system alone. Their order is fixed and they never run in parallel, so
//! the room runs them itself, one after the other, after the game's
//! systems.

use bevy_ecs::change_detection::CheckChangeTicks;
use bevy_ecs::prelude::*;
use bevy_ecs::system::BoxedSystem;

use crate::schedule::TickSet;

/// The room's passes, in the order they run.
#[derive(Default)]
pub(crate) struct RoomPasses {
    passes: Vec<(TickSet, BoxedSystem)>,
}

impl RoomPasses {
    /// Adds `system` to run in `phase`: after every pass of the phases
    /// before it and after the passes added to `phase` before it.
    pub(crate) fn add<M>(
        &mut self,
        world: &mut World,
        phase: TickSet,
        system: impl IntoSystem<(), (), M>,
    ) {
        let mut system: BoxedSystem = Box::new(IntoSystem::into_system(system));
        system.initialize(world);
        let at = self.passes.partition_point(|(p, _)| *p <= phase);
        self.passes.insert(at, (phase, system));
    }

    /// Runs every pass once, applying each one's deferred commands before
    /// the next starts.
    pub(crate) fn run(&mut self, world: &mut World) {
        for (_, pass) in &mut self.passes {
            // The passes read resources the room inserts before any of them
            // is added and never removes, so their parameters are always
            // valid; an error here would be a bug in the room, not in a
            // client's input, and the tick goes on without that pass.
            let ran = pass.run((), world);
            debug_assert!(ran.is_ok(), "room pass {}: {ran:?}", pass.name());
        }
    }

    /// Keeps the passes' change ticks from growing too old (see
    /// [`World::check_change_ticks`]).
    pub(crate) fn check_change_ticks(&mut self, check: CheckChangeTicks) {
        for (_, pass) in &mut self.passes {
            pass.check_change_tick(check);
        }
    }
}

impl std::fmt::Debug for RoomPasses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.passes.iter().map(|(phase, pass)| (phase, pass.name())))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Resource, Default)]
    struct Ran(Vec<&'static str>);

    fn pass(name: &'static str) -> impl FnMut(ResMut<'_, Ran>) {
        move |mut ran: ResMut<'_, Ran>| ran.0.push(name)
    }

    #[test]
    fn passes_run_in_phase_order_and_in_the_order_added_within_a_phase() {
        let mut world = World::new();
        world.init_resource::<Ran>();
        let mut passes = RoomPasses::default();
        passes.add(&mut world, TickSet::Deltas, pass("deltas"));
        passes.add(&mut world, TickSet::Replicate, pass("collect"));
        passes.add(&mut world, TickSet::Track, pass("track"));
        passes.add(&mut world, TickSet::Replicate, pass("encode"));
        passes.run(&mut world);
        assert_eq!(
            world.resource::<Ran>().0,
            ["track", "collect", "encode", "deltas"]
        );
    }

    #[test]
    fn a_pass_sees_only_the_changes_since_it_last_ran() {
        #[derive(Component)]
        struct Counter(u32);
        #[derive(Resource, Default)]
        struct Seen(Vec<usize>);
        let mut world = World::new();
        world.init_resource::<Seen>();
        let mut passes = RoomPasses::default();
        passes.add(
            &mut world,
            TickSet::Replicate,
            |changed: Query<'_, '_, &Counter, Changed<Counter>>, mut seen: ResMut<'_, Seen>| {
                seen.0.push(changed.iter().count());
            },
        );
        let a = world.spawn(Counter(0)).id();
        world.spawn(Counter(0));
        passes.run(&mut world);
        passes.run(&mut world);
        world.get_mut::<Counter>(a).expect("spawned").0 += 1;
        passes.run(&mut world);
        assert_eq!(world.resource::<Seen>().0, [2, 0, 1]);
    }

    #[test]
    #[should_panic(expected = "games add systems to ApplyInputs or Simulate")]
    fn a_game_system_in_a_phase_of_the_room_is_refused_when_the_room_is_built() {
        struct Meddler;
        impl crate::Game for Meddler {
            fn name(&self) -> &'static str {
                "meddler"
            }
            fn setup(&self, room: &mut crate::RoomBuilder<'_>) {
                room.add_systems(TickSet::Deltas, || {});
            }
        }
        let _ = crate::Room::new(&Meddler, crate::RoomConfig::default());
    }
}
