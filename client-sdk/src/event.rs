//! What a session reports to the game: [`Event`] and why it ended,
//! [`DisconnectReason`].

use serde::de::DeserializeOwned;
use tessera_protocol::{ErrorCode, KickReason, PayloadError, RawValue, Welcome};

use crate::connection::ProtocolError;
use crate::world_view::Entity;

/// Something that happened on the session, in the order it happened.
///
/// The events of one delta come together, in the order the delta was applied
/// (`EntityLeft`s, then `EntityEntered`s, then `EntityUpdated`s), and end
/// with [`Event::Delta`]. While you handle them the mirror already holds the
/// state after that delta, and no later one.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The server accepted the join.
    Welcome(Welcome),
    /// An entity became visible; read it from the mirror.
    EntityEntered { id: u32 },
    /// Some components of a visible entity changed; read them from the mirror.
    EntityUpdated { id: u32 },
    /// An entity is no longer visible. It is gone from the mirror; `last` is
    /// its final state (its name, where it was last seen).
    EntityLeft { id: u32, last: Entity },
    /// A delta was applied: the mirror is at `tick`, and the server has
    /// applied this client's inputs up to sequence number `ack_input`.
    Delta { tick: u32, ack_input: u32 },
    /// A line of room chat; `from` is the sender's entity id, 0 for the server.
    Chat { from: u32, text: String },
    /// A game event: something the game tells this client that is not
    /// replicated state, in the game's event type ([`Event::game_event`]
    /// decodes it). It comes after the delta of the tick it happened in
    /// (over QUIC, possibly before that tick's datagrams).
    Game(RawValue),
    /// The server refused something. It closes the connection next.
    /// `code` is an [`ErrorCode`] number, kept as is so that an older client
    /// survives a newer server; see [`Event::error_code`].
    Error { code: u16, message: String },
    /// The server ended the session. It closes the connection next.
    /// `reason` is a [`KickReason`] number; see [`Event::kick_reason`].
    Kicked { reason: u16, message: String },
    /// The connection was lost, and the client is connecting again (its
    /// `attempt`-th try, from 1, after a backoff). The mirror keeps the last
    /// state until the client is back.
    ///
    /// Also after [`Event::Kicked`] with [`KickReason::RoomMoved`]: another
    /// node of the cluster took the room over, and does not hold this
    /// player. The client then joins afresh, through the URL it was given
    /// to connect to, and an [`Event::Welcome`] for a new player follows
    /// (unless [`crate::ClientConfig::reconnect_attempts`] is 0: then the
    /// session ends, as after any kick).
    Reconnecting { attempt: u32 },
    /// A node of the server's cluster that does not host the room sent the
    /// client to `url`, the node that does, and the client is connecting
    /// there (PROTOCOL.md §10.5). Comes before the [`Event::Welcome`] or
    /// [`Event::Resumed`] of the join it belongs to; the redirects of the
    /// first join, inside [`crate::Client::connect`], are the first events
    /// [`crate::Client::next_event`] returns. At most
    /// [`crate::ClientConfig::max_redirects`] come in a row.
    Redirected { url: String },
    /// The client is back with the same player (the server held it): the
    /// mirror was emptied, and the next delta brings everything in view as
    /// [`Event::EntityEntered`]. Inputs keep their numbering.
    Resumed(Welcome),
    /// The server would not give the player back (`resume_failed`: the
    /// grace window ended, or the token was refused). Unless the client is
    /// configured to join afresh ([`crate::ClientConfig::rejoin_if_resume_fails`],
    /// then an [`Event::Welcome`] for a new player follows), the session
    /// ends next.
    ResumeFailed { reason: String },
    /// The connection is over; always the last event of a session.
    Disconnected { reason: DisconnectReason },
}

impl Event {
    /// An [`Event::Game`] decoded as the game's event type `E`; `None` for
    /// other events.
    pub fn game_event<E: DeserializeOwned>(&self) -> Option<Result<E, PayloadError>> {
        match self {
            Self::Game(payload) => Some(payload.decode()),
            _ => None,
        }
    }

    /// The typed code of an [`Event::Error`], when this client knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Error { code, .. } => ErrorCode::from_u16(*code),
            _ => None,
        }
    }

    /// The typed reason of an [`Event::Kicked`], when this client knows it.
    pub fn kick_reason(&self) -> Option<KickReason> {
        match self {
            Self::Kicked { reason, .. } => KickReason::from_u16(*reason),
            _ => None,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The server closed the connection, normally right after an
    /// [`Event::Error`] or [`Event::Kicked`]. `code` is the transport's close
    /// code when it sent one (a WebSocket close code).
    #[error("server closed the connection (code {code:?}: {reason:?})")]
    ServerClosed { code: Option<u16>, reason: String },
    /// This client closed the connection.
    #[error("closed by the client")]
    LocalClose,
    /// The connection failed underneath the protocol (reset, I/O error,
    /// server stopped answering).
    #[error("transport failed: {message}")]
    Transport { message: String },
    /// The server sent something the protocol does not allow; this client
    /// dropped the connection.
    #[error("server broke the protocol: {0}")]
    ProtocolViolation(#[from] ProtocolError),
    /// The server answered the hello with a `Redirect`: another node hosts
    /// the room, and keeps `seat` for this client there. Only a bare
    /// [`crate::Connection`] ends this way; a [`crate::Client`] follows
    /// the redirect ([`Event::Redirected`]).
    #[error("redirected to {url}")]
    Redirected { url: String, seat: String },
}

impl DisconnectReason {
    /// True when the connection ended the way the protocol intends (a close
    /// by either side), false when something broke.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            Self::ServerClosed { .. } | Self::LocalClose | Self::Redirected { .. }
        )
    }
}
