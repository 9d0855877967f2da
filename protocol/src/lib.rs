//! Tessera's wire protocol.
//!
//! A connection carries binary frames, each one MessagePack array whose first
//! element is a message tag. `PROTOCOL.md` in this crate documents every
//! message byte by byte, with test vectors that `tests/vectors.rs` checks.
//!
//! - [`ClientMsg`] / [`ServerMsg`]: one enum per direction, encode and decode.
//! - [`Delta`]: the per-client state delta, and the writers the server uses
//!   to assemble it from pre-encoded entity entries ([`delta`]).
//! - [`DeltaPart`]: the state for unreliable transports (QUIC datagrams),
//!   against a tick the client acknowledged, split by entity ([`delta_part`]);
//!   [`stream`]: length-prefixed framing for byte streams;
//!   [`part_receiver`]: the client's rules for applying parts.
//! - [`RawValue`]: game-defined payloads (intents, join options, component
//!   values), checked for shape here and decoded by the game with serde.
//! - [`WireComponent`]: the trait a game's replicated component wire types
//!   implement; [`arena`] is the demo game's schema.
//! - [`limits`], [`ErrorCode`], [`KickReason`], [`DecodeError`].
//!
//! Decoding is total: any byte string gives a message or a [`DecodeError`],
//! and frames over the size limit are refused before parsing starts.
//! Receivers skip elements appended after the ones this version knows, so
//! fields can be added without breaking older peers; a `Hello` of another
//! version is refused before its layout is looked at.

pub mod arena;
mod client_msg;
pub mod delta;
pub mod delta_part;
pub mod delta_view;
mod error;
mod frame;
pub mod limits;
pub mod motion;
pub mod msgpack;
pub mod part_receiver;
pub mod quantize;
mod raw;
pub mod schema;
mod server_msg;
pub mod stream;
mod wire;

pub use client_msg::{ClientMsg, Hello, tag as client_tag};
pub use delta::{ComponentValue, Delta, EntityState, Move};
pub use delta_part::DeltaPart;
pub use delta_view::{DeltaView, EntryView};
pub use error::{DecodeError, ErrorCode, KickReason};
pub use raw::{PayloadError, RawValue};
pub use schema::GameSchema;
/// The serde a game's wire types derive with, so that a game crate needs
/// no serde of its own: `#[derive(Serialize, Deserialize)]` with
/// `#[serde(crate = "tessera_protocol::serde")]`.
pub use serde;
pub use server_msg::{ServerMsg, Welcome, tag as server_tag, truncate};
pub use wire::WireComponent;

/// The protocol version this crate speaks, and writes in its `Hello`.
/// [`ClientMsg::decode`] refuses a `Hello` with a version outside
/// [`OLDEST_PROTOCOL_VERSION`]`..=PROTOCOL_VERSION`
/// ([`DecodeError::UnsupportedVersion`], sent back as
/// [`ErrorCode::UnsupportedVersion`]).
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest version a server still serves. Version 1 is version 2
/// without the delta's `slots` and `moved` sections: a server sends a
/// version-1 client every change as an `updated` entry.
pub const OLDEST_PROTOCOL_VERSION: u16 = 1;
