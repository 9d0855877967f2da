//! Tessera's server: transports, sessions, room hosting and operations.
//!
//! Data flows one way: transport → session → link → room → link → session
//! → transport. No two modules import each other (`tests/module_map.rs`
//! checks it); `docs/ARCHITECTURE.md` draws the map.
//!
//! - [`server`]: [`Server::start`] binds the listeners and starts the tick
//!   threads; [`Server::shutdown`] stops them in order. Tests start a
//!   [`Server`] on port 0 and talk to it over real sockets.
//! - [`state`]: [`ServerState`], what every task of a node shares.
//! - [`transport`]: WebSocket and QUIC, each behind its handshake gate.
//! - [`fds`]: the descriptor limit raised, and the caps fitted into it.
//! - [`files`]: data-dir files written whole or not at all.
//! - [`frames`]: the traits a transport implements for a session.
//! - [`session`]: one connection: sans-IO rules, the read loop, the writer.
//! - [`link`]: everything a session and a room say to each other.
//! - [`room`]: the name → room table, the hosted rooms, the tick threads.
//! - [`cluster`]: cluster mode: Redis leases, placement, redirects.
//! - [`persist`]: the queue out of the tick, the worker, the database.
//! - [`storage`]: the node's persistence started as its config says.
//! - [`admin`]: the HTTP listener (health, readiness, metrics, the admin
//!   API) and the `tessera admin` command line that talks to it.
//! - [`admin_token`]: the admin API's bearer token, configured or generated.
//! - [`alloc`]: [`use_node_allocator!`], the allocator that gives rooms'
//!   memory back.
//! - [`config`]: [`ServerConfig`], loaded from file, environment and flags.
//! - [`rate`]: governor rate limits on a clock the caller sets.
//! - [`metrics`]: every metric name, the Prometheus recorder, cached handles.
//! - [`cli`], [`logging`]: the `tessera` binary's front.

pub mod admin;
pub mod admin_token;
pub mod alloc;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod fds;
pub mod files;
pub mod frames;
pub mod identity;
pub mod link;
pub mod listen_addr;
pub mod logging;
pub mod metrics;
pub mod persist;
pub mod rate;
pub mod room;
pub mod server;
pub mod session;
pub mod state;
pub mod storage;
pub mod transport;

pub use config::ServerConfig;
pub use server::{Server, StartError};
pub use state::ServerState;
