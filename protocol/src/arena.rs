//! Wire schema of `arena`, the demo game: what its clients send and receive.
//!
//! The simulation side lives in `tessera-sim` (`games::arena`); this module
//! is the part a client needs, so it depends on nothing but the protocol.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::quantize::{coord_to_u16, i8_to_unit, u16_to_coord, unit_to_i8};
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

/// Join options of the arena: `[name]`. `nil` options give a generated name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JoinOptions {
    pub name: String,
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
    fn walk_and_join_are_arrays() {
        let walk = RawValue::encode(&Walk::from_direction(1.0, -1.0)).expect("encodes");
        assert_eq!(walk.as_bytes(), [0x92, 0x7f, 0xd0, 0x81]);
        let join = RawValue::encode(&JoinOptions { name: "ab".into() }).expect("encodes");
        assert_eq!(join.as_bytes(), [0x91, 0xa2, b'a', b'b']);
    }
}
