//! Async Rust client for Tessera game servers.
//!
//! ```no_run
//! # async fn run() -> Result<(), tessera_client::ClientError> {
//! use tessera_client::{Client, Event, Hello};
//! use tessera_client::protocol::arena::{Name, Walk};
//!
//! let mut client = Client::connect("ws://127.0.0.1:7700", Hello::new("lobby")).await?;
//! client.send_input(&Walk::from_direction(1.0, 0.0)).await?;
//! while let Some(event) = client.next_event().await {
//!     if let Event::EntityEntered { id } = event {
//!         let name = client.world().get(id).and_then(|e| e.get::<Name>());
//!         println!("{id} entered: {name:?}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Two sans-IO cores, driven by hand in their tests, and an async shell:
//!
//! - [`world_view`]: [`WorldView`], the local mirror of the entities the
//!   server lets this client see, fed deltas and validated against them.
//! - [`connection`]: [`Connection`], the session state machine (handshake,
//!   mirror, inputs with sequence numbers, ping/RTT, events). Fed frames and
//!   a `now`; never does I/O. Usable on its own over any transport.
//! - [`event`]: [`Event`], what the session reports, and [`DisconnectReason`].
//! - `rtt`: [`Rtt`] estimates from ping nonces.
//! - [`redirect`]: [`JoinRoute`], the nodes one join goes through as a
//!   cluster redirects it, with its hop limit.
//! - `transport`: the socket side, one background task per connection behind
//!   bounded channels: `ws` (WebSocket) and `quic` (a control stream, state
//!   in datagrams), with the certificate checks of `quic` in `trust`.
//! - [`client`]: [`Client`], the async API (`connect`, `next_event`,
//!   `world`, `send_input`, ...), configured by [`ClientConfig`], failing
//!   with [`ClientError`]. It follows a cluster's redirects, and
//!   reconnects, by itself.
//!
//! The protocol crate is re-exported as [`protocol`], so a game needs no
//! second dependency for [`Hello`], its component types and [`arena`].

pub mod client;
mod config;
pub mod connection;
mod error;
pub mod event;
pub mod redirect;
mod rtt;
mod transport;
pub mod world_view;

pub use client::Client;
pub use config::ClientConfig;
pub use connection::{Connection, ConnectionError, ProtocolError, State};
pub use error::ClientError;
pub use event::{DisconnectReason, Event};
pub use redirect::{JoinRoute, RedirectError};
pub use rtt::{MAX_PINGS_IN_FLIGHT, Rtt};
pub use transport::quic::quic_endpoint_config;
pub use world_view::{Applied, AppliedPart, Entity, MirrorError, WorldView};

pub use tessera_protocol as protocol;
pub use tessera_protocol::{ErrorCode, Hello, KickReason, RawValue, Welcome, WireComponent, arena};
