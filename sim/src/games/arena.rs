//! `arena`, the demo game: players walk around a 4096 x 4096 world and chat.
//!
//! It is also the model for writing a game: simulation components that
//! convert to wire types from the game's schema (`tessera_protocol::arena`),
//! an intent type, a join hook, and systems in the `Simulate` phase.

use bevy_ecs::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tessera_protocol::arena::{self as wire, MAX_NAME, PLAYER_SPEED, SpawnNear, WORLD_SIZE, Walk};

use crate::components::{Intent, RoomRng, TickInfo};
use crate::game::{Game, JoinContext, JoinRefused, Replicate, RoomBuilder, SpatialPosition};
use crate::schedule::TickSet;

/// The arena game. Register it with the server, or create rooms of it with
/// [`crate::Room::new`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Arena;

/// Where an entity is, in world units.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Position {
    pub x: f32,
    pub y: f32,
}

impl Replicate for Position {
    type Wire = wire::Position;
    fn to_wire(&self) -> wire::Position {
        wire::Position::from_units(self.x, self.y)
    }
}

impl SpatialPosition for Position {
    fn position(&self) -> [f32; 2] {
        [self.x, self.y]
    }
}

/// A player's display name.
#[derive(Component, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Name(pub String);

impl Replicate for Name {
    type Wire = wire::Name;
    fn to_wire(&self) -> wire::Name {
        wire::Name(self.0.clone())
    }
}

impl Game for Arena {
    fn name(&self) -> &'static str {
        "arena"
    }

    fn world_size(&self) -> Option<f32> {
        Some(WORLD_SIZE)
    }

    fn setup(&self, room: &mut RoomBuilder<'_>) {
        room.replicate_motion::<Position>()
            .replicate::<Name>()
            .spatial::<Position>()
            .input::<Walk>()
            .persist::<Position>(1)
            .persist::<Name>(2)
            .persist::<Intent<Walk>>(3)
            .on_join(join)
            .add_systems(TickSet::Simulate, walk);
    }
}

fn join(world: &mut World, ctx: JoinContext<'_>) -> Result<Entity, JoinRefused> {
    let mut options = if ctx.options.is_nil() {
        wire::JoinOptions::named(format!("player-{}", ctx.client))
    } else {
        let options: wire::JoinOptions = ctx
            .options
            .decode()
            .map_err(|e| JoinRefused(format!("join options: {e}")))?;
        validate_name(&options.name)?;
        options
    };
    // A name from the player's token wins over one it chose itself.
    if let Some(name) = ctx.display_name {
        validate_name(name)?;
        options.name = name.to_owned();
    }
    // A returning player comes back where it left, unless it asks for a
    // place.
    let saved_position = ctx.saved.and_then(|saved| saved.get::<Position>());
    let position = match (&options.spawn_near, saved_position) {
        (None, Some(saved)) => saved,
        (None, None) => {
            let mut rng = world.resource_mut::<RoomRng>();
            Position {
                x: rng.0.random_range(0.0..WORLD_SIZE),
                y: rng.0.random_range(0.0..WORLD_SIZE),
            }
        }
        (Some(SpawnNear::Point(x, y)), _) => point_in_world(*x, *y)?,
        (Some(SpawnNear::Player(name)), _) => next_to_player(world, name)?,
    };
    Ok(world.spawn((position, Name(options.name))).id())
}

/// How far from the named player a player spawned next to it starts: well
/// inside the 200-unit view, not on top of it.
const SPAWN_NEAR_DISTANCE: f32 = 40.0;

fn point_in_world(x: f32, y: f32) -> Result<Position, JoinRefused> {
    if !(x.is_finite() && y.is_finite()) {
        return Err(JoinRefused(
            "spawn point: x and y must be finite world units".into(),
        ));
    }
    Ok(Position {
        x: x.clamp(0.0, WORLD_SIZE),
        y: y.clamp(0.0, WORLD_SIZE),
    })
}

/// A point `SPAWN_NEAR_DISTANCE` from the player named `name`, in a random
/// direction, kept inside the world.
fn next_to_player(world: &mut World, name: &str) -> Result<Position, JoinRefused> {
    let mut players = world.query::<(&Name, &Position)>();
    let target = players
        .iter(world)
        .find(|(n, _)| n.0 == name)
        .map(|(_, position)| *position)
        .ok_or_else(|| {
            JoinRefused(format!(
                "no player named {name:?} in this room to spawn near"
            ))
        })?;
    let angle = world
        .resource_mut::<RoomRng>()
        .0
        .random_range(0.0..std::f32::consts::TAU);
    point_in_world(
        target.x + SPAWN_NEAR_DISTANCE * angle.cos(),
        target.y + SPAWN_NEAR_DISTANCE * angle.sin(),
    )
}

/// Names are shown to every neighbour: the rule of chat applies.
fn validate_name(name: &str) -> Result<(), JoinRefused> {
    tessera_protocol::limits::check_shown_text(name, MAX_NAME).map_err(|_| {
        JoinRefused(format!(
            "name must be 1 to {MAX_NAME} bytes of visible text, without control, invisible or bidirectional characters"
        ))
    })
}

/// Moves every walking player at `PLAYER_SPEED` in its intent's direction,
/// clamped to the world. Diagonal intents longer than 1 are normalised.
fn walk(mut walkers: Query<'_, '_, (&Intent<Walk>, &mut Position)>, info: Res<'_, TickInfo>) {
    let step = PLAYER_SPEED * info.dt;
    for (intent, mut position) in &mut walkers {
        let (mut dx, mut dy) = intent.0.direction();
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            continue;
        }
        if len > 1.0 {
            dx /= len;
            dy /= len;
        }
        let next = Position {
            x: (position.x + dx * step).clamp(0.0, WORLD_SIZE),
            y: (position.y + dy * step).clamp(0.0, WORLD_SIZE),
        };
        position.set_if_neq(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RoomConfig;
    use crate::boxed_resource::Boxed;
    use crate::testing::TestRoom;
    use tessera_protocol::RawValue;

    #[test]
    fn walking_moves_at_player_speed_and_clamps() {
        let mut t = TestRoom::new(&Arena, RoomConfig::default());
        let me = t.join(1).entity_id;
        t.set(me, Position { x: 10.0, y: 100.0 });
        t.input(1, &Walk::from_direction(-1.0, 0.0));
        t.step();
        assert_eq!(t.get::<Position>(me), Some(Position { x: 0.0, y: 100.0 }));
        t.input(1, &Walk::from_direction(0.0, 1.0));
        t.step();
        assert_eq!(t.get::<Position>(me), Some(Position { x: 0.0, y: 110.0 }));
        assert_eq!(
            t.view(1).get::<wire::Position>(me),
            Some(wire::Position::from_units(0.0, 110.0))
        );
    }

    #[test]
    fn an_input_numbered_0_is_stale_and_1_is_the_first() {
        let mut t = TestRoom::new(&Arena, RoomConfig::default());
        let me = t.join(1).entity_id;
        t.set(me, Position { x: 100.0, y: 100.0 });
        let east = RawValue::encode(&Walk::from_direction(1.0, 0.0)).expect("encodes");
        t.room.input(1, 0, &east).expect("accepted, and ignored");
        t.step();
        assert_eq!(t.get::<Position>(me), Some(Position { x: 100.0, y: 100.0 }));
        t.room.input(1, 1, &east).expect("applied");
        t.step();
        assert_eq!(t.get::<Position>(me), Some(Position { x: 110.0, y: 100.0 }));
    }

    /// A game of another size gets a grid of that size.
    struct SmallArena;

    impl Game for SmallArena {
        fn name(&self) -> &'static str {
            "small"
        }
        fn world_size(&self) -> Option<f32> {
            Some(512.0)
        }
        fn setup(&self, room: &mut RoomBuilder<'_>) {
            Arena.setup(room);
        }
    }

    #[test]
    fn the_game_says_how_large_its_world_is() {
        use crate::room_state::RoomState;
        let cells = |room: &crate::Room| {
            room.world()
                .resource::<Boxed<RoomState>>()
                .grid
                .cell_count()
        };
        let arena = crate::Room::new(&Arena, RoomConfig::default()).expect("room");
        let small = crate::Room::new(&SmallArena, RoomConfig::default()).expect("room");
        // 128-unit cells: 32 x 32 for 4096 units, 4 x 4 for 512.
        assert_eq!((cells(&arena), cells(&small)), (32 * 32, 4 * 4));
    }

    #[test]
    fn the_room_and_the_schema_crate_agree_on_the_schema() {
        let t = TestRoom::new(&Arena, RoomConfig::default());
        assert_eq!(t.room.schema(), wire::schema());
    }

    #[test]
    fn bad_names_are_refused() {
        let mut t = TestRoom::new(&Arena, RoomConfig::default());
        let options = RawValue::encode(&wire::JoinOptions::named(" ")).expect("encodes");
        assert!(t.room.join(1, &options).is_err());
        let options = RawValue::encode(&"not join options").expect("encodes");
        assert!(t.room.join(1, &options).is_err());
        // What chat refuses as unsafe to show, names refuse too.
        for unsafe_name in ["evil\u{202E}gnp", "a\u{2028}b", "\u{200B}", "\u{200D}"] {
            let name = wire::JoinOptions::named(unsafe_name);
            let options = RawValue::encode(&name).expect("encodes");
            assert!(t.room.join(1, &options).is_err(), "{unsafe_name:?}");
        }
        let options = RawValue::encode(&wire::JoinOptions::named("ok")).expect("encodes");
        assert!(t.room.join(1, &options).is_ok());
    }

    fn join_with(
        t: &mut TestRoom,
        client: u64,
        options: &wire::JoinOptions,
    ) -> Result<u32, String> {
        let options = RawValue::encode(options).expect("encodes");
        t.try_join(client, &options)
            .map(|joined| joined.entity_id)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_player_can_spawn_next_to_another_or_at_a_point() {
        let mut t = TestRoom::new(&Arena, RoomConfig::default());
        let ann = join_with(&mut t, 1, &wire::JoinOptions::named("ann")).expect("joins");
        let ann_at = t.get::<Position>(ann).expect("ann is placed");
        let near = SpawnNear::Player("ann".into());
        let bob = join_with(&mut t, 2, &wire::JoinOptions::named("bob").near(near)).expect("joins");
        let bob_at = t.get::<Position>(bob).expect("bob is placed");
        let distance = ((bob_at.x - ann_at.x).powi(2) + (bob_at.y - ann_at.y).powi(2)).sqrt();
        assert!(distance <= SPAWN_NEAR_DISTANCE + 0.01, "{distance}");
        t.step();
        assert!(
            t.view(2).get::<wire::Name>(ann).is_some(),
            "bob sees ann at once"
        );

        let corner = SpawnNear::Point(-5.0, 100.0);
        let cy = join_with(&mut t, 3, &wire::JoinOptions::named("cy").near(corner)).expect("joins");
        assert_eq!(t.get::<Position>(cy), Some(Position { x: 0.0, y: 100.0 }));
    }

    #[test]
    fn spawning_near_nobody_or_nowhere_is_refused_with_the_reason() {
        let mut t = TestRoom::new(&Arena, RoomConfig::default());
        let ghost = wire::JoinOptions::named("bob").near(SpawnNear::Player("ghost".into()));
        let refused = join_with(&mut t, 1, &ghost).expect_err("nobody is called ghost");
        assert!(refused.contains("no player named \"ghost\""), "{refused}");
        let nowhere = wire::JoinOptions::named("bob").near(SpawnNear::Point(f32::NAN, 1.0));
        assert!(join_with(&mut t, 1, &nowhere).is_err());
    }
}
