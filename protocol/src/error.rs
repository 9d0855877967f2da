//! Error codes on the wire and the decoder's typed errors.

/// Why the server refused something. Sent in [`crate::ServerMsg::Error`];
/// the numeric values are part of the protocol and never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame was not a valid message (bad MessagePack, wrong shape).
    Malformed = 1,
    /// The message tag is not one this server knows.
    UnknownMessage = 2,
    /// The frame was larger than the protocol allows.
    FrameTooLarge = 3,
    /// The client speaks a protocol version the server does not.
    UnsupportedVersion = 4,
    /// A WebSocket text frame, or another frame type the protocol does not use.
    UnsupportedFrame = 5,
    /// A message other than `Hello` arrived before the handshake completed.
    HandshakeRequired = 6,
    /// The client did not complete the handshake in time.
    HandshakeTimeout = 7,
    /// A second `Hello` on a session that already joined.
    AlreadyJoined = 8,
    /// The room name is empty, too long, or uses characters outside the set.
    InvalidRoomName = 9,
    /// The room has reached its player cap.
    RoomFull = 10,
    /// Reserved: servers send the precise token codes (22 to 25) instead.
    Unauthorized = 11,
    /// The client sent messages faster than allowed.
    RateLimited = 12,
    /// The game rejected the intent payload.
    InvalidInput = 13,
    /// The server is at its connection cap.
    ServerFull = 14,
    /// The server is shutting down or draining and takes no new joins.
    ShuttingDown = 15,
    /// Something went wrong on the server; not the client's fault.
    Internal = 16,
    /// Chat text was empty or over the limit.
    InvalidChat = 17,
    /// The game refused the join (for example bad join options).
    JoinRejected = 18,
    /// The room is too busy to take the request right now; retry later.
    RoomBusy = 19,
    /// The client was built for another game's schema than the server runs.
    WrongGame = 20,
    /// The game could not decode an action, or takes none, or the client
    /// has too many actions waiting.
    InvalidAction = 21,
    /// The server admits players with a token only, and the `Hello` had none.
    AuthRequired = 22,
    /// The token's signature, shape, issuer or audience is wrong.
    TokenInvalid = 23,
    /// The token expired.
    TokenExpired = 24,
    /// The token admits another room only.
    TokenWrongRoom = 25,
    /// The resume token is bad or expired, or its player is no longer held.
    ResumeFailed = 26,
    /// The join needs the cluster (Redis), which cannot be reached now;
    /// retry shortly. Players already in rooms are not affected.
    ClusterUnavailable = 27,
    /// The `Hello.seat` is unknown, expired or used, or this node no longer
    /// hosts its room: join again through any node, without the seat.
    SeatInvalid = 28,
    /// The join needs the player's saved state or the room's checkpoint,
    /// and the store cannot be read now; retry shortly. Players already in
    /// rooms are not affected.
    StorageUnavailable = 29,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 29] = [
        Self::Malformed,
        Self::UnknownMessage,
        Self::FrameTooLarge,
        Self::UnsupportedVersion,
        Self::UnsupportedFrame,
        Self::HandshakeRequired,
        Self::HandshakeTimeout,
        Self::AlreadyJoined,
        Self::InvalidRoomName,
        Self::RoomFull,
        Self::Unauthorized,
        Self::RateLimited,
        Self::InvalidInput,
        Self::ServerFull,
        Self::ShuttingDown,
        Self::Internal,
        Self::InvalidChat,
        Self::JoinRejected,
        Self::RoomBusy,
        Self::WrongGame,
        Self::InvalidAction,
        Self::AuthRequired,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::TokenWrongRoom,
        Self::ResumeFailed,
        Self::ClusterUnavailable,
        Self::SeatInvalid,
        Self::StorageUnavailable,
    ];

    pub fn from_u16(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u16 == code)
    }

    /// Short snake_case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownMessage => "unknown_message",
            Self::FrameTooLarge => "frame_too_large",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnsupportedFrame => "unsupported_frame",
            Self::HandshakeRequired => "handshake_required",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::AlreadyJoined => "already_joined",
            Self::InvalidRoomName => "invalid_room_name",
            Self::RoomFull => "room_full",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::InvalidInput => "invalid_input",
            Self::ServerFull => "server_full",
            Self::ShuttingDown => "shutting_down",
            Self::Internal => "internal",
            Self::InvalidChat => "invalid_chat",
            Self::JoinRejected => "join_rejected",
            Self::RoomBusy => "room_busy",
            Self::WrongGame => "wrong_game",
            Self::InvalidAction => "invalid_action",
            Self::AuthRequired => "auth_required",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenWrongRoom => "token_wrong_room",
            Self::ResumeFailed => "resume_failed",
            Self::ClusterUnavailable => "cluster_unavailable",
            Self::SeatInvalid => "seat_invalid",
            Self::StorageUnavailable => "storage_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.as_str(), *self as u16)
    }
}

/// Why the server ended a session that had joined. Sent in
/// [`crate::ServerMsg::Kicked`] just before the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum KickReason {
    /// An operator removed the player.
    Admin = 1,
    /// The client did not read its deltas fast enough for too long.
    TooSlow = 2,
    /// The server is shutting down.
    Shutdown = 3,
    /// The room was closed.
    RoomClosed = 4,
    /// The client sent nothing for too long.
    IdleTimeout = 5,
    /// A newer connection took over this player.
    Replaced = 6,
    /// Another node of the cluster took the room over: join it again
    /// (through any node) to reach the room's new host.
    RoomMoved = 7,
}

impl KickReason {
    pub const ALL: [KickReason; 7] = [
        Self::Admin,
        Self::TooSlow,
        Self::Shutdown,
        Self::RoomClosed,
        Self::IdleTimeout,
        Self::Replaced,
        Self::RoomMoved,
    ];

    pub fn from_u16(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u16 == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::TooSlow => "too_slow",
            Self::Shutdown => "shutdown",
            Self::RoomClosed => "room_closed",
            Self::IdleTimeout => "idle_timeout",
            Self::Replaced => "replaced",
            Self::RoomMoved => "room_moved",
        }
    }
}

impl std::fmt::Display for KickReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.as_str(), *self as u16)
    }
}

/// Why a frame could not be decoded. Every byte string decodes to a message
/// or to one of these; the decoder never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    #[error("frame is empty")]
    Empty,
    #[error("frame ends early at byte {at}")]
    Truncated { at: usize },
    #[error("expected {expected} at byte {at}")]
    UnexpectedType { expected: &'static str, at: usize },
    #[error("expected an array of {expected} elements at byte {at}, found {found}")]
    WrongArity {
        expected: usize,
        found: usize,
        at: usize,
    },
    #[error("unknown message tag {tag}")]
    UnknownTag { tag: u64 },
    /// A `Hello` of another protocol version. Checked right after the tag,
    /// before the rest of the `Hello`, whose layout may differ by version.
    #[error(
        "protocol version {found} is not supported; this side speaks {} to {}",
        crate::OLDEST_PROTOCOL_VERSION,
        crate::PROTOCOL_VERSION
    )]
    UnsupportedVersion { found: u16 },
    #[error("{field} is {len} bytes, more than {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{field} is out of range")]
    OutOfRange { field: &'static str },
    #[error("value nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes { extra: usize },
}

impl DecodeError {
    /// The code a server sends back for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Self::UnknownTag { .. } => ErrorCode::UnknownMessage,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip_and_are_unique() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u16(code as u16), Some(code));
        }
        let mut numbers: Vec<u16> = ErrorCode::ALL.iter().map(|c| *c as u16).collect();
        numbers.dedup();
        assert_eq!(numbers.len(), ErrorCode::ALL.len());
        for reason in KickReason::ALL {
            assert_eq!(KickReason::from_u16(reason as u16), Some(reason));
        }
        assert_eq!(ErrorCode::from_u16(0), None);
    }
}
