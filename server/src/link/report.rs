//! What the admin API answers, as JSON. The server builds these and the
//! `tessera admin` CLI reads them back; the README documents each shape.

use serde::{Deserialize, Serialize};

/// One room in `GET /admin/rooms`. Read from numbers the room's tick
/// thread publishes, without asking the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub name: String,
    /// Unique on this node for the life of the process.
    pub id: u64,
    /// The room's last completed tick.
    pub tick: u32,
    pub players: usize,
    /// Replicated entities in the room's world.
    pub entities: usize,
    /// Tick duration percentiles over the last ten seconds, in ms.
    pub tick_p50_ms: f64,
    pub tick_p99_ms: f64,
    /// Bytes queued to the room's players per second, over the last second.
    pub bytes_out_per_s: u64,
}

/// `GET /admin/rooms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// `GET /admin/rooms/{room}`: the summary and every player, as the room's
/// tick thread saw them when it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomDetail {
    /// The same numbers as in the room list, fresh from the tick thread.
    pub summary: RoomSummary,
    pub players: Vec<PlayerReport>,
}

/// One player of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerReport {
    /// Session id: what `kick` takes, and the `id` in the session's logs.
    pub session: u64,
    /// The net id of the entity the player controls (what clients see).
    pub entity: Option<u32>,
    /// The client's address as the server sees it.
    pub address: String,
    /// `ws` or `quic`.
    pub transport: String,
    /// Seconds since the connection was accepted.
    pub connected_s: u64,
    /// Latest round trip measured by the server's transport probes; `null`
    /// until the first probe is answered (about half a second after connecting).
    pub rtt_ms: Option<f64>,
    /// Frames waiting in the player's outbound queue.
    pub queued_frames: usize,
    /// Milliseconds since the player's queue became full and it started
    /// missing deltas; 0 when it keeps up.
    pub lag_ms: u64,
    /// Entities the player currently sees.
    pub visible: usize,
    /// Sequence number of the player's last applied input.
    pub last_input: u32,
}

/// `GET /admin/rooms/{room}/entities/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityReport {
    pub room: String,
    /// The entity's net id.
    pub id: u32,
    /// The session controlling it, if a player does.
    pub player: Option<u64>,
    pub components: Vec<ComponentReport>,
}

/// One replicated component of an entity, as last encoded for the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentReport {
    /// Wire id (the component's number in deltas).
    pub id: u8,
    pub name: String,
    /// What the value stands for, as the game's schema reads it (the
    /// arena's position as `{"x", "y"}` in world units); the wire value
    /// if the game gives no reading of its own; `null` if it does not decode.
    pub value: serde_json::Value,
    /// The wire value as MessagePack data (`null` if it does not decode as
    /// plain data): a packed position is one integer here.
    pub wire: serde_json::Value,
    /// The encoded bytes, hex.
    pub bytes: String,
}

/// `POST /admin/rooms/{room}/kick` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KickRequest {
    /// Session id of the player.
    pub session: u64,
    /// Told to the client in its `Kicked` message.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /admin/rooms/{room}/close` body (optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloseRequest {
    /// Told to every player in their `Kicked` message.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer of `kick`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KickReport {
    pub room: String,
    pub session: u64,
    pub reason: String,
}

/// Answer of `close`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloseReport {
    pub room: String,
    /// Players told the room closed.
    pub kicked: usize,
}

/// Answer of `POST /admin/drain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainReport {
    pub draining: bool,
    /// Rooms and players still on the node, which keep playing.
    pub rooms: usize,
    pub players: usize,
}

/// Every error the admin API answers, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
