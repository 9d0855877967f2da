//! Tessera's server: transports, sessions, room hosting and operations.
//!
//! - [`server`]: [`Server::start`] binds the listeners and starts the tick
//!   threads; [`Server::shutdown`] stops them in order. Tests start a
//!   [`Server`] on port 0 and talk to it over real sockets.
//! - [`config`]: [`ServerConfig`], loaded from file, environment and flags.
//! - [`transport`]: WebSocket (and the traits other transports implement).
//! - [`session`]: one connection's handshake, read loop and writer.
//! - [`room`]: the registry that opens and closes rooms by name, and the
//!   tick threads that own and step them.
//! - [`admin`]: the HTTP listener (health, readiness, metrics, the admin
//!   API) and the `tessera admin` command line that talks to it.
//! - [`metrics`]: every metric name, the Prometheus recorder, cached handles.
//! - [`cli`], [`logging`]: the `tessera` binary's front.

pub mod admin;
pub mod cli;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod room;
pub mod server;
pub mod session;
pub mod transport;

pub use config::ServerConfig;
pub use server::{Server, ServerState, StartError};
