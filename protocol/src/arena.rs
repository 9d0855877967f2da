//! Wire schema of `arena`, the demo game: what its clients send and receive.
//!
//! The simulation side lives in `tessera-sim` (`games::arena`); this module
//! is the part a client needs, so it depends on nothing but the protocol.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::quantize::{coord_to_u16, i8_to_unit, u16_to_coord, unit_to_i8};
use crate::raw::{PayloadError, RawValue};
use crate::wire::WireComponent;

/// The world is a square `WORLD_SIZE` units on a side, origin at a corner.
pub const WORLD_SIZE: f32 = 4096.0;
/// Player speed in units per second.
pub const PLAYER_SPEED: f32 = 100.0;
/// Position resolution: 16 steps per unit (1/16 unit), so the 4096-unit world
/// fits 16 bits per axis.
pub const POSITION_STEPS_PER_UNIT: f32 = 16.0;
/// Longest player name, in bytes.
pub const MAX_NAME: usize = 32;

/// A position quantized to 1/16 unit per axis.
///
/// On the wire it is one unsigned integer `x << 16 | y` (5 bytes in
/// MessagePack instead of 7 for a two-element array): position changes are
/// most of a crowd's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub x: u16,
    pub y: u16,
}

impl Position {
    pub fn from_units(x: f32, y: f32) -> Self {
        Self {
            x: coord_to_u16(x, POSITION_STEPS_PER_UNIT),
            y: coord_to_u16(y, POSITION_STEPS_PER_UNIT),
        }
    }

    pub fn to_units(self) -> (f32, f32) {
        (
            u16_to_coord(self.x, POSITION_STEPS_PER_UNIT),
            u16_to_coord(self.y, POSITION_STEPS_PER_UNIT),
        )
    }

    pub fn packed(self) -> u32 {
        (u32::from(self.x) << 16) | u32::from(self.y)
    }

    pub fn from_packed(packed: u32) -> Self {
        Self {
            x: (packed >> 16) as u16,
            y: packed as u16,
        }
    }
}

impl Serialize for Position {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.packed())
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Self::from_packed)
    }
}

impl WireComponent for Position {
    const ID: u8 = 1;
    const NAME: &'static str = "position";

    /// World units, not the packed integer.
    fn readable(&self) -> Result<RawValue, PayloadError> {
        let (x, y) = self.to_units();
        RawValue::encode(&std::collections::BTreeMap::from([("x", x), ("y", y)]))
    }
}

/// A player's display name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(pub String);

impl WireComponent for Name {
    const ID: u8 = 2;
    const NAME: &'static str = "name";
}

/// The arena's intent: the direction the player wants to walk, each axis in
/// -127..=127 (127 = full speed). Encoded as `[dx, dy]`. A vector longer than
/// 1 is normalised by the server; zero stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Walk {
    pub dx: i8,
    pub dy: i8,
}

impl Walk {
    pub fn from_direction(x: f32, y: f32) -> Self {
        Self {
            dx: unit_to_i8(x),
            dy: unit_to_i8(y),
        }
    }

    pub fn direction(self) -> (f32, f32) {
        (i8_to_unit(self.dx), i8_to_unit(self.dy))
    }
}

/// The arena's schema, for [`crate::Hello::for_game`]: a server running
/// another game refuses the join with `wrong_game`.
pub fn schema() -> crate::GameSchema {
    use crate::schema::component;
    crate::GameSchema::new("arena", &[component::<Position>(), component::<Name>()])
}

/// Join options of the arena: `[name]`, or `[name, spawn_near]` to start
/// next to someone or somewhere. `nil` options give a generated name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JoinOptions {
    pub name: String,
    /// Where to spawn; `None` (left out on the wire) spawns at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_near: Option<SpawnNear>,
}

impl JoinOptions {
    /// Options with this name, spawning at random.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            spawn_near: None,
        }
    }

    /// Spawns next to `spawn_near` instead of at random.
    pub fn near(mut self, spawn_near: SpawnNear) -> Self {
        self.spawn_near = Some(spawn_near);
        self
    }
}

/// Where a joining player starts: next to a player of the room, by display
/// name (a string on the wire), or at a point in world units (`[x, y]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpawnNear {
    Player(String),
    Point(f32, f32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RawValue;

    #[test]
    fn position_is_one_packed_integer() {
        let p = Position::from_units(1.0, 2.0);
        let raw = RawValue::encode(&p).expect("encodes");
        // 16 << 16 | 32 = 0x0010_0020 as a uint32.
        assert_eq!(raw.as_bytes(), [0xce, 0x00, 0x10, 0x00, 0x20]);
        assert_eq!(raw.decode::<Position>().expect("decodes"), p);
    }

    #[test]
    fn a_position_reads_as_units() {
        let readable = Position::from_units(1.5, 2.0).readable().expect("encodes");
        let units: std::collections::BTreeMap<String, f32> = readable.decode().expect("a map");
        assert_eq!(units, [("x".into(), 1.5), ("y".into(), 2.0)].into());
        let name = Name("ann".into()).readable().expect("encodes");
        assert_eq!(name.as_bytes(), [0xa3, b'a', b'n', b'n']);
    }

    #[test]
    fn walk_and_join_are_arrays() {
        let walk = RawValue::encode(&Walk::from_direction(1.0, -1.0)).expect("encodes");
        assert_eq!(walk.as_bytes(), [0x92, 0x7f, 0xd0, 0x81]);
        let join = RawValue::encode(&JoinOptions::named("ab")).expect("encodes");
        assert_eq!(join.as_bytes(), [0x91, 0xa2, b'a', b'b']);
    }

    #[test]
    fn spawn_near_is_a_name_or_a_point_after_the_name() {
        let near_ann = JoinOptions::named("ab").near(SpawnNear::Player("ann".into()));
        let raw = RawValue::encode(&near_ann).expect("encodes");
        assert_eq!(
            raw.as_bytes(),
            [0x92, 0xa2, b'a', b'b', 0xa3, b'a', b'n', b'n']
        );
        assert_eq!(raw.decode::<JoinOptions>().expect("decodes"), near_ann);
        // A point: two numbers, integers or floats alike.
        let raw = RawValue::from_bytes(bytes::Bytes::from_static(&[
            0x92, 0xa2, b'a', b'b', 0x92, 0x64, 0xcb, 0x40, 0x69, 0, 0, 0, 0, 0, 0,
        ]))
        .expect("one value");
        assert_eq!(
            raw.decode::<JoinOptions>().expect("decodes"),
            JoinOptions::named("ab").near(SpawnNear::Point(100.0, 200.0))
        );
        // PROTOCOL.md §11.3's examples.
        let bob_at = RawValue::from_bytes(bytes::Bytes::from_static(&[
            0x92, 0xa3, b'b', b'o', b'b', 0x92, 0x64, 0xcd, 0x07, 0xd0,
        ]))
        .expect("one value");
        assert_eq!(
            bob_at.decode::<JoinOptions>().expect("decodes"),
            JoinOptions::named("bob").near(SpawnNear::Point(100.0, 2000.0))
        );
        // A point of one number is neither form.
        let raw = RawValue::from_bytes(bytes::Bytes::from_static(&[
            0x92, 0xa2, b'a', b'b', 0x91, 0x64,
        ]))
        .expect("one value");
        assert!(raw.decode::<JoinOptions>().is_err());
    }
}
