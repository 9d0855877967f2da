//! Tessera's room simulation, free of I/O.
//!
//! A [`Room`] is a bevy_ecs `World` plus a `Schedule`, stepped one tick at a
//! time by its host; it never awaits, reads a clock or touches a socket, so
//! it can be driven and replayed in tests ([`testing`]).
//!
//! - [`game`]: the plugin API. A game registers replicated components
//!   ([`Replicate`]), its spatial component, intent type, systems and join
//!   hook; [`games::arena`] is the built-in example.
//! - [`schedule`]: the fixed phases of a tick ([`TickSet`]).
//! - [`replication`]: change detection on wire values and encode-once pieces.
//! - [`spatial_grid`]: the incremental uniform grid.
//! - [`interest`]: per-client visible sets with hysteresis.
//! - `delta`: per-client frames assembled from the shared pieces.
//! - [`datagram`]: state for datagram clients (QUIC), against the tick
//!   they acknowledged, split by entity into parts.
//! - [`snapshot`]: save and restore a room's state, and a player's.
//! - [`journal`]: what the room hands its host to persist.
//! - [`stats`]: counters of the last tick.

mod boxed_resource;
pub mod channels;
mod components;
mod config;
pub mod datagram;
mod delta;
pub mod game;
pub mod games;
pub mod interest;
pub mod journal;
pub mod messages;
mod passes;
pub mod replication;
mod room;
mod room_state;
pub mod schedule;
mod scratch;
pub mod snapshot;
pub mod spatial_grid;
pub mod stats;
pub mod testing;
mod wire_slots;
mod wire_value;

/// The ECS games are written in, at the version the room runs: a game
/// crate uses `tessera_sim::bevy_ecs` instead of pinning its own.
pub use bevy_ecs;
/// Random numbers for game systems: the generator in [`RoomRng`] (its
/// `.0`) is a `rand` RNG (`use tessera_sim::rand::RngExt` for
/// `random_range`), so a game crate needs no `rand` of its own.
pub use rand;
/// The wire side a game's schema crate builds on ([`tessera_protocol::WireComponent`]).
pub use tessera_protocol;

pub use components::{
    ClientId, Held, Intent, NetId, Player, PlayerId, Replicated, Retained, RoomRng, TickInfo,
};
pub use config::{CHAT_BACKLOG_TICKS, ConfigError, RoomConfig};
pub use datagram::DeliveryMode;
pub use game::{
    Game, JoinContext, JoinRefused, PlayerIdentity, Replicate, RoomBuilder, SpatialPosition,
};
pub use journal::{Journal, JournalError, RoomRecord};
pub use messages::{ActionContext, ActionError, EventError, EventTarget, GameEvents};
pub use room::{
    ChatError, FrameKind, HeldPlayer, InputError, JoinError, Outgoing, Room, check_chat,
};
pub use schedule::TickSet;
pub use snapshot::{SavedState, SnapshotError};
pub use stats::TickStats;
