//! The HTTP listener on `--admin-addr`: health and readiness probes.

mod api;

pub use api::serve;
