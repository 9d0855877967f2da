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
    /// The node that hosts it (cluster mode; absent on a node on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `GET /admin/rooms`: on a cluster, every node's rooms as each last
/// published them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
    /// Set when the cluster could not be read: `rooms` are this node's only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_unavailable: Option<String>,
}

/// `GET /admin/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeList {
    /// False for a node on its own: it lists itself only, as `standalone`.
    pub clustered: bool,
    pub nodes: Vec<NodeReport>,
}

/// A node's registry entry (cluster mode), as it publishes it in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    /// Where WebSocket clients are sent (`ws://…` or `wss://…`).
    pub ws_url: String,
    /// Where QUIC clients are sent (`quic://host:port`).
    pub quic_url: String,
    /// Its admin API (`http://…`), for admin questions about its rooms.
    pub admin_url: String,
    /// `active` or `draining`.
    pub state: String,
    pub rooms: usize,
    pub players: usize,
    /// Its process's CPU use over the last heartbeat, in percent of one core.
    pub cpu_percent: f64,
    /// Its caps: placement skips a node at either.
    pub max_rooms: usize,
    pub max_players: usize,
    /// When it wrote this entry (ms since 1970, its own clock).
    pub heartbeat_unix_ms: u64,
}

/// One node: its registry entry and how old it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    #[serde(flatten)]
    pub info: NodeInfo,
    /// Since its last heartbeat, by this node's clock.
    pub heartbeat_age_ms: u64,
}

/// `POST /admin/broadcast` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastRequest {
    /// Sent as a server chat line (`from` 0); chat's rules apply.
    pub text: String,
    /// Only this room's players (on whichever node it is).
    #[serde(default)]
    pub room: Option<String>,
}

/// Answer of `broadcast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastReport {
    pub text: String,
    pub room: Option<String>,
    /// Nodes it was sent to.
    pub nodes: usize,
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

/// The records the database kept refusing (`/admin/dead-letters`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<crate::persist::store::DeadLetter>,
}
