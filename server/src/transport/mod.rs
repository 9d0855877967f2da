//! The transports: each accepts connections, runs its own handshake
//! behind its own [`gate::HandshakeGate`], splits the connection into the
//! [`crate::frames`] traits and hands it to `crate::session::run`.
//!
//! - [`ws`]: WebSocket, one binary message per frame.
//! - [`quic`]: QUIC, a length-prefixed control stream plus datagrams;
//!   [`tls`]: its certificate (configured, or a generated development one).
//! - [`admission`]: open connections and new ones per client address,
//!   decided at accept.
//! - [`gate`]: the bound on pending handshakes, in all and per address.

pub mod admission;
pub mod gate;
pub mod quic;
pub mod tls;
pub mod ws;
