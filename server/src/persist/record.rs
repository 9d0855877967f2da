//! What leaves a room for the store: a player's saved state, a room
//! checkpoint, a game event. Encoded as MessagePack (positional) to travel
//! through the queue and the Redis Stream; the store keeps each in its
//! own table.

use serde::{Deserialize, Serialize};

/// One thing to persist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    PlayerState(PlayerState),
    Checkpoint(Checkpoint),
    Event(GameEvent),
}

/// A player's persisted components, as the sim saved them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerState {
    pub game: String,
    pub player: String,
    /// Grows with every save of the player, on any node: the store never
    /// replaces a version with a lower one.
    pub version: u64,
    /// The room it was saved in.
    pub room: String,
    pub saved_at_ms: u64,
    /// The sim's encoding of the components (`Room::save_player`).
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
}

/// A room's state at one tick: the sim's snapshot and who can come back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub game: String,
    pub room: String,
    /// The room's lease epoch in cluster mode (0 on a node on its own):
    /// a checkpoint of a later owner always wins over an earlier owner's.
    pub epoch: u64,
    pub tick: u32,
    pub taken_at_ms: u64,
    /// The host's encoding: the sim snapshot plus the players to hold.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Something the game said happened, with a game-defined payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameEvent {
    /// Unique over all rooms and all time: delivered twice, written once.
    pub id: String,
    pub game: String,
    pub room: String,
    /// The game's name for it ("coin_collected"); 1 to 64 bytes.
    pub kind: String,
    pub tick: u32,
    pub at_ms: u64,
    /// The game's payload, as JSON (queryable in both databases).
    pub payload: serde_json::Value,
}

impl GameEvent {
    /// The JSON form of a game's MessagePack payload: what the store keeps.
    /// Fails for what JSON cannot say (maps with keys that are not strings,
    /// say).
    pub fn json_payload(msgpack: &[u8]) -> Result<serde_json::Value, rmp_serde::decode::Error> {
        rmp_serde::from_slice(msgpack)
    }
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        // Plain data of owned strings, bytes and JSON: encoding cannot fail.
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }

    /// Which table it goes to, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PlayerState(_) => "player_state",
            Self::Checkpoint(_) => "checkpoint",
            Self::Event(_) => "event",
        }
    }

    /// The name it goes by in logs and dead letters.
    pub fn key(&self) -> String {
        match self {
            Self::PlayerState(p) => format!("player:{}:{}:v{}", p.game, p.player, p.version),
            Self::Checkpoint(c) => {
                format!(
                    "checkpoint:{}:{}:e{}:t{}",
                    c.game, c.room, c.epoch, c.taken_at_ms
                )
            }
            Self::Event(e) => format!("event:{}", e.id),
        }
    }
}
