//! The coins wire schema: what a client sends and receives.

use tessera_protocol::serde::{Deserialize, Serialize};
use tessera_protocol::{GameSchema, WireComponent, schema::component};

/// The field is `WORLD_SIZE` units on a side, origin at a corner.
pub const WORLD_SIZE: f32 = 1024.0;
/// Walking speed, in units per second.
pub const SPEED: f32 = 200.0;
/// How near a player must be to a coin to collect it.
pub const REACH: f32 = 24.0;
/// Coins on the field at any time.
pub const COINS: usize = 64;

/// Where an entity is, in whole units: `[x, y]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub struct Spot {
    pub x: u16,
    pub y: u16,
}

impl WireComponent for Spot {
    const ID: u8 = 1;
    const NAME: &'static str = "spot";
}

/// A player's score: the sum of the coins it collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde", transparent)]
pub struct Score(pub u32);

impl WireComponent for Score {
    const ID: u8 = 2;
    const NAME: &'static str = "score";
}

/// Marks a coin, with what it is worth (1 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde", transparent)]
pub struct Coin(pub u8);

impl WireComponent for Coin {
    const ID: u8 = 3;
    const NAME: &'static str = "coin";
}

/// The intent: walk in this direction, each axis -127..=127 (127 = full
/// speed); `[0, 0]` stops. Encoded `[dx, dy]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub struct Walk {
    pub dx: i8,
    pub dy: i8,
}

/// What a player does once. Encoded as the variant's name, `"Collect"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub enum Action {
    /// Picks up the nearest coin within [`REACH`].
    Collect,
}

/// What the room tells the collector. Encoded as a one-entry map from the
/// variant's name, `{"Scored": [points, total]}`, or its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub enum Event {
    /// The coin was worth `points`; the score is now `total`.
    Scored { points: u32, total: u32 },
    /// No coin was within reach.
    NothingInReach,
}

/// The schema a coins client sends in its `Hello`.
pub fn schema() -> GameSchema {
    let components = [
        component::<Spot>(),
        component::<Score>(),
        component::<Coin>(),
    ];
    GameSchema::new("coins", &components)
}

#[cfg(test)]
mod tests {
    use tessera_protocol::RawValue;

    use super::*;

    /// The bytes PROTOCOL.md's vectors `action-unit-variant` and `event`
    /// give for these values.
    #[test]
    fn actions_and_events_encode_as_the_protocol_document_shows() {
        let collect = RawValue::encode(&Action::Collect).expect("encodes");
        assert_eq!(collect.as_bytes(), b"\xa7Collect");
        let scored = RawValue::encode(&Event::Scored {
            points: 3,
            total: 15,
        })
        .expect("encodes");
        assert_eq!(scored.as_bytes(), b"\x81\xa6Scored\x92\x03\x0f");
    }
}
