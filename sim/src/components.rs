//! Components and resources the room itself puts in every world.

use bevy_ecs::prelude::*;

/// Identifies a client (a session) to the room. The server uses its session
/// id; tests use any number.
pub type ClientId = u64;

/// Marks an entity for replication. Put it on every entity clients should
/// see; the room gives it a [`NetId`] in the same tick.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Replicated;

/// Marks a static entity (a pickup, a door) that a client keeps knowing
/// once it has seen it, even after it is beyond the view radius: it leaves
/// the client's view only when it is despawned or loses this marker, and
/// its changes reach every client that knows it, near or far.
///
/// Each client that holds retained entities beyond its radius has its view
/// recomputed every tick; keep retained entities few and rarely changing.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Retained;

/// The id clients know an entity by. Assigned by the room, never reused
/// within a room.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[component(on_remove = crate::replication::forget_entity)]
pub struct NetId(pub u32);

/// The entity a connected client controls.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Player {
    pub client: ClientId,
}

/// Who a player's entity belongs to: the player id its token named (the
/// `sub`), set by the room at the join and kept in snapshots. Saves of
/// the player's state ([`crate::RoomRecord::PlayerSaved`]) are keyed by it.
#[derive(Component, Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlayerId(pub String);

/// Marks a player's entity while its connection is gone and the server
/// waits for it to come back ([`crate::Room::hold`]): a game may stop it,
/// hide it or let it be.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Held;

/// The latest intent a player sent, of the game's input type. Input is an
/// intent, never a position: game systems decide what it does.
#[derive(Component, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Intent<I: Send + Sync + 'static>(pub I);

/// The current tick and its length; read it instead of a clock.
#[derive(Resource, Debug, Clone, Copy)]
pub struct TickInfo {
    /// Number of the tick being simulated (the first step is tick 1).
    pub tick: u32,
    /// Seconds per tick.
    pub dt: f32,
}

/// The room's deterministic random number generator. Seeded from the room
/// config and saved in snapshots; game systems must use it (never a global
/// RNG) so that the same seed and inputs replay the same ticks.
#[derive(Resource, Debug, Clone)]
pub struct RoomRng(pub rand_pcg::Pcg64Mcg);

impl RoomRng {
    pub fn from_seed(seed: u64) -> Self {
        // Pcg64Mcg needs a non-trivial 128-bit state; spread the seed over it.
        let state = (u128::from(seed) << 64 | u128::from(seed ^ 0x9e37_79b9_7f4a_7c15)) | 1;
        Self(rand_pcg::Pcg64Mcg::new(state))
    }
}

/// Replicated entities whose `C` changed since the system last ran.
pub(crate) type ChangedReplicated<'w, 's, C> =
    Query<'w, 's, (Entity, &'static C), (With<NetId>, Changed<C>)>;
