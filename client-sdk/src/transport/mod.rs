//! Transports: how frames travel between a [`crate::Client`] and the server.
//!
//! Every transport has the same shape: `open` connects, spawns one
//! background task that owns the socket, and returns a [`Transport`], a pair
//! of bounded channels. The client never sees the socket.
//!
//! - [`ws`]: WebSocket (`ws://`), one binary message per frame.
//! - [`quic`]: QUIC (`quic://`), a length-prefixed control stream and
//!   datagrams (state in, acks out); [`trust`]: its certificate checks.

use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::event::DisconnectReason;

pub(crate) mod quic;
mod trust;
pub(crate) mod ws;

/// What the client asks the transport task to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send one protocol frame.
    Frame(Bytes),
    /// Send one frame as an unreliable datagram where the transport has
    /// them (an `Ack`); elsewhere it goes as a frame.
    Datagram(Bytes),
    /// Close the connection, then end the task.
    Close(CloseKind),
}

/// Why this side closes, for transports that carry a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseKind {
    Normal,
    /// The server broke the protocol.
    ProtocolError,
}

/// What the transport task reports to the client.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One protocol frame, stamped when it was read off the socket so that
    /// RTT does not include the time it waited for the application.
    Frame { frame: Bytes, received_at: Instant },
    /// The connection is over; the last message before the channel closes.
    Closed(DisconnectReason),
}

/// The client's end of an open transport. Dropping `outbound` asks the task
/// to close the connection politely.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) outbound: mpsc::Sender<Outbound>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
}

/// Opens the transport the URL's scheme names.
pub(crate) async fn open(url: &str, config: &ClientConfig) -> Result<Transport, ClientError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(ClientError::InvalidUrl {
            url: url.into(),
            reason: "expected scheme://host:port",
        });
    };
    if rest.is_empty() {
        return Err(ClientError::InvalidUrl {
            url: url.into(),
            reason: "no host",
        });
    }
    match scheme.to_ascii_lowercase().as_str() {
        "ws" => ws::open(url, config).await,
        "quic" => quic::open(url, rest, config).await,
        _ => Err(ClientError::UnsupportedScheme {
            scheme: scheme.into(),
            url: url.into(),
        }),
    }
}
