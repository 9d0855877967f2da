//! Operating a node: the HTTP listener on `--admin-addr` and the
//! `tessera admin` command line that talks to it.
//!
//! - [`api`]: `/health`, `/ready`, `/metrics` (no auth) and `/admin/*`
//!   (bearer token): list and inspect rooms, kick, close, drain.
//! - [`auth`]: the admin token: configured or generated, stored, checked.
//! - [`report`]: the JSON shapes both sides share.
//! - [`cli`]: `tessera admin …`, tables or JSON.
//! - [`http`]: the CLI's small HTTP client.

mod api;
pub mod auth;
pub mod cli;
mod http;
pub mod report;

pub use api::serve;
pub use auth::{AdminToken, TokenError, TokenSource, resolve as resolve_token};

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
