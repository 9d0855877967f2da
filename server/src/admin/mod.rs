//! Operating a node: the HTTP listener on `--admin-addr` and the
//! `tessera admin` command line that talks to it.
//!
//! - `api`: `/health`, `/ready`, `/metrics` (no auth) and `/admin/*`
//!   (bearer token): list and inspect rooms, kick, close, drain, nodes,
//!   broadcast; a question about a room of another node goes to it.
//! - `ops`: what a command does on the room's own node.
//! - [`report`]: the JSON shapes both sides share (defined with the room
//!   questions they answer, in `crate::link::report`).
//! - `listener`: the admin port's accept loop, with its own connection cap
//!   and timeouts.
//! - [`cli`]: `tessera admin …`, tables or JSON.
//! - `http`: the CLI's small HTTP client.

mod api;
pub mod cli;
mod http;
mod listener;
mod ops;

pub use crate::admin_token::AdminToken;
pub use crate::link::report;
pub use api::serve;
pub use ops::carry_out;
