//! Operating a node: the HTTP listener on `--admin-addr` and the
//! `tessera admin` command line that talks to it.
//!
//! - `api`: `/health`, `/ready`, `/metrics` (no auth) and `/admin/*`
//!   (bearer token): list and inspect rooms, kick, close, drain.
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

pub use crate::admin_token::AdminToken;
pub use crate::link::report;
pub use api::serve;
