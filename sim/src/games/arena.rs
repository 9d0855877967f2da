//! `arena`, the demo game: players walk around a 4096 x 4096 world and chat.
//!
//! It is also the model for writing a game: simulation components that
//! convert to wire types from the game's schema (`tessera_protocol::arena`),
//! an intent type, a join hook, and systems in the `Simulate` phase.

use bevy_ecs::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tessera_protocol::arena::{self as wire, MAX_NAME, PLAYER_SPEED, WORLD_SIZE, Walk};

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

    fn setup(&self, room: &mut RoomBuilder<'_>) {
        room.replicate::<Position>()
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
    let name = if ctx.options.is_nil() {
        format!("player-{}", ctx.client)
    } else {
        let options: wire::JoinOptions = ctx
            .options
            .decode()
            .map_err(|e| JoinRefused(format!("join options: {e}")))?;
        validate_name(&options.name)?;
        options.name
    };
    let mut rng = world.resource_mut::<RoomRng>();
    let position = Position {
        x: rng.0.random_range(0.0..WORLD_SIZE),
        y: rng.0.random_range(0.0..WORLD_SIZE),
    };
    Ok(world.spawn((position, Name(name))).id())
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
    fn bad_names_are_refused() {
        let mut t = TestRoom::new(&Arena, RoomConfig::default());
        let options = RawValue::encode(&wire::JoinOptions { name: " ".into() }).expect("encodes");
        assert!(t.room.join(1, &options).is_err());
        let options = RawValue::encode(&"not join options").expect("encodes");
        assert!(t.room.join(1, &options).is_err());
        // What chat refuses as unsafe to show, names refuse too.
        for unsafe_name in ["evil\u{202E}gnp", "a\u{2028}b", "\u{200B}", "\u{200D}"] {
            let name = wire::JoinOptions {
                name: unsafe_name.into(),
            };
            let options = RawValue::encode(&name).expect("encodes");
            assert!(t.room.join(1, &options).is_err(), "{unsafe_name:?}");
        }
        let options = RawValue::encode(&wire::JoinOptions { name: "ok".into() }).expect("encodes");
        assert!(t.room.join(1, &options).is_ok());
    }
}
