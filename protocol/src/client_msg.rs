//! Messages a client sends to the server.
//!
//! Every message is a MessagePack array whose first element is a tag (see
//! `PROTOCOL.md`). Fields are positional and append-only: a receiver skips
//! elements after the ones it knows ([`crate::frame`]).

use bytes::Bytes;

use crate::error::DecodeError;
use crate::frame;
use crate::limits::{
    MAX_CHAT, MAX_CLIENT_FRAME, MAX_GAME_NAME, MAX_RESUME_TOKEN, MAX_ROOM_NAME, MAX_SEAT,
    MAX_TOKEN, is_valid_room_name,
};
use crate::msgpack::{Reader, Writer};
use crate::raw::{RawValue, read_raw};
use crate::schema::GameSchema;
use crate::{OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// Message tags, client to server.
pub mod tag {
    pub const HELLO: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const CHAT: u8 = 3;
    pub const PING: u8 = 4;
    pub const ACK: u8 = 5;
    pub const ACTION: u8 = 6;
}

/// Elements each message has in this version, the tag included. Senders
/// write exactly this many; receivers accept more.
const HELLO_LEN: usize = 6;
const INPUT_LEN: usize = 3;
const CHAT_LEN: usize = 2;
const PING_LEN: usize = 2;
const ACK_LEN: usize = 2;
const ACTION_LEN: usize = 2;

/// The handshake: the first message on every connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// [`crate::PROTOCOL_VERSION`] of the client. [`ClientMsg::decode`]
    /// refuses any other version, so a decoded `Hello` always has this one.
    pub version: u16,
    /// Room to join; created on first join. See [`is_valid_room_name`].
    pub room: String,
    /// Auth token, when the server requires one.
    pub token: Option<String>,
    /// Resume token from an earlier session, to take the same player back
    /// (at most [`MAX_RESUME_TOKEN`] bytes).
    pub resume: Option<String>,
    /// Game-defined join options (`nil` when the game needs none).
    pub options: RawValue,
    /// The game the client was built for. `None` (an old client, or a
    /// tool that speaks to any game) is not checked; the 7th element on
    /// the wire, left out when `None` (and `nil` when `seat` follows).
    pub schema: Option<GameSchema>,
    /// The seat a `Redirect` reserved on this node (at most [`MAX_SEAT`]
    /// bytes); the 8th element, left out when `None`.
    pub seat: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    Hello(Hello),
    /// A game intent. `seq` increases by one per input; the server echoes the
    /// last one it applied in every delta so the client can reconcile.
    Input {
        seq: u32,
        intent: RawValue,
    },
    /// A line of room chat.
    Chat {
        text: String,
    },
    /// Round-trip probe; the server answers `Pong` with the same nonce.
    Ping {
        nonce: u32,
    },
    /// The client holds every part of the state of `tick` (a
    /// [`crate::DeltaPart`]): the server may build later parts against it.
    Ack {
        tick: u32,
    },
    /// A one-shot game action (fire, use, buy): applied once, in order,
    /// never collapsed with other actions or with the intent.
    Action {
        action: RawValue,
    },
}

impl ClientMsg {
    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        match self {
            Self::Hello(h) => {
                let len = if h.seat.is_some() {
                    HELLO_LEN + 2
                } else {
                    HELLO_LEN + usize::from(h.schema.is_some())
                };
                w.array_len(len as u32);
                w.uint(tag::HELLO.into());
                w.uint(h.version.into());
                w.str(&h.room);
                w.opt_str(h.token.as_deref());
                w.opt_str(h.resume.as_deref());
                w.raw(h.options.as_bytes());
                match &h.schema {
                    Some(schema) => {
                        w.array_len(2);
                        w.str(&schema.game);
                        w.uint(schema.fingerprint);
                    }
                    None if h.seat.is_some() => w.nil(),
                    None => {}
                }
                if let Some(seat) = &h.seat {
                    w.str(seat);
                }
            }
            Self::Input { seq, intent } => {
                w.array_len(INPUT_LEN as u32);
                w.uint(tag::INPUT.into());
                w.uint((*seq).into());
                w.raw(intent.as_bytes());
            }
            Self::Chat { text } => {
                w.array_len(CHAT_LEN as u32);
                w.uint(tag::CHAT.into());
                w.str(text);
            }
            Self::Ping { nonce } => {
                w.array_len(PING_LEN as u32);
                w.uint(tag::PING.into());
                w.uint((*nonce).into());
            }
            Self::Ack { tick } => {
                w.array_len(ACK_LEN as u32);
                w.uint(tag::ACK.into());
                w.uint((*tick).into());
            }
            Self::Action { action } => {
                w.array_len(ACTION_LEN as u32);
                w.uint(tag::ACTION.into());
                w.raw(action.as_bytes());
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode_into(&mut out);
        out
    }

    /// Decodes one frame. The size limit is checked before anything else.
    ///
    /// A `Hello` is checked for its version right after the tag, before the
    /// rest of its layout: a `Hello` of another version fails with
    /// [`DecodeError::UnsupportedVersion`] whatever its other elements are.
    pub fn decode(frame: &Bytes) -> Result<Self, DecodeError> {
        let (mut r, head) = frame::open(frame, MAX_CLIENT_FRAME)?;
        let (msg, known) = match u8::try_from(head.tag).unwrap_or(u8::MAX) {
            tag::HELLO => {
                head.require(2)?;
                let version = r.uint_as("version")?;
                if !(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
                    return Err(DecodeError::UnsupportedVersion { found: version });
                }
                head.require(HELLO_LEN)?;
                let room = r.str("room", MAX_ROOM_NAME)?.to_owned();
                let token = r.opt_str("token", MAX_TOKEN)?.map(str::to_owned);
                let resume = r.opt_str("resume", MAX_RESUME_TOKEN)?.map(str::to_owned);
                let options = read_raw(&mut r, frame)?;
                let has_schema = head.len > HELLO_LEN;
                let schema = if has_schema {
                    read_schema(&mut r)?
                } else {
                    None
                };
                let has_seat = head.len > HELLO_LEN + 1;
                let seat = if has_seat {
                    r.opt_str("seat", MAX_SEAT)?.map(str::to_owned)
                } else {
                    None
                };
                let hello = Hello {
                    version,
                    room,
                    token,
                    resume,
                    options,
                    schema,
                    seat,
                };
                let known = HELLO_LEN + usize::from(has_schema) + usize::from(has_seat);
                (Self::Hello(hello), known)
            }
            tag::INPUT => {
                head.require(INPUT_LEN)?;
                let seq = r.uint_as("seq")?;
                let intent = read_raw(&mut r, frame)?;
                (Self::Input { seq, intent }, INPUT_LEN)
            }
            tag::CHAT => {
                head.require(CHAT_LEN)?;
                let text = r.str("chat text", MAX_CHAT)?.to_owned();
                (Self::Chat { text }, CHAT_LEN)
            }
            tag::PING => {
                head.require(PING_LEN)?;
                let nonce = r.uint_as("nonce")?;
                (Self::Ping { nonce }, PING_LEN)
            }
            tag::ACK => {
                head.require(ACK_LEN)?;
                let tick = r.uint_as("tick")?;
                (Self::Ack { tick }, ACK_LEN)
            }
            tag::ACTION => {
                head.require(ACTION_LEN)?;
                let action = read_raw(&mut r, frame)?;
                (Self::Action { action }, ACTION_LEN)
            }
            _ => return Err(DecodeError::UnknownTag { tag: head.tag }),
        };
        head.finish(&mut r, known)?;
        Ok(msg)
    }

    /// Short name of the message kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Input { .. } => "input",
            Self::Chat { .. } => "chat",
            Self::Ping { .. } => "ping",
            Self::Ack { .. } => "ack",
            Self::Action { .. } => "action",
        }
    }
}

/// `Hello.schema`: `nil`, or `[game, fingerprint]`.
fn read_schema(r: &mut Reader<'_>) -> Result<Option<GameSchema>, DecodeError> {
    if r.take_nil()? {
        return Ok(None);
    }
    r.array_exact(2)?;
    let game = r.str("game", MAX_GAME_NAME)?.to_owned();
    let fingerprint = r.uint()?;
    Ok(Some(GameSchema { game, fingerprint }))
}

impl Hello {
    /// A handshake for `room` at this crate's protocol version.
    pub fn new(room: impl Into<String>) -> Self {
        Self {
            version: crate::PROTOCOL_VERSION,
            room: room.into(),
            token: None,
            resume: None,
            options: RawValue::nil(),
            schema: None,
            seat: None,
        }
    }

    /// Says which game the client was built for; a server running another
    /// refuses the join with `wrong_game`.
    pub fn for_game(mut self, schema: GameSchema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// True when the room name is acceptable (the server checks this too).
    pub fn has_valid_room(&self) -> bool {
        is_valid_room_name(&self.room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(msg: ClientMsg) {
        let bytes = Bytes::from(msg.encode());
        assert_eq!(ClientMsg::decode(&bytes), Ok(msg));
    }

    #[test]
    fn every_message_roundtrips() {
        roundtrip(ClientMsg::Hello(Hello::new("lobby")));
        roundtrip(ClientMsg::Hello(Hello {
            version: 1,
            room: "r".into(),
            token: Some("t".into()),
            resume: Some("s".into()),
            options: RawValue::encode(&("bob",)).expect("encodes"),
            schema: Some(crate::arena::schema()),
            seat: None,
        }));
        roundtrip(ClientMsg::Hello(Hello {
            seat: Some("seat".into()),
            ..Hello::new("r")
        }));
        roundtrip(ClientMsg::Input {
            seq: 70_000,
            intent: RawValue::encode(&(1i8, -1i8)).expect("encodes"),
        });
        roundtrip(ClientMsg::Chat { text: "hi".into() });
        roundtrip(ClientMsg::Ping { nonce: 9 });
        roundtrip(ClientMsg::Ack { tick: 70_000 });
        roundtrip(ClientMsg::Action {
            action: RawValue::encode(&("buy", 3u8)).expect("encodes"),
        });
    }

    #[test]
    fn oversized_frame_is_refused_before_decoding() {
        let frame = Bytes::from(vec![0u8; MAX_CLIENT_FRAME + 1]);
        assert_eq!(
            ClientMsg::decode(&frame).map_err(|e| e.code()),
            Err(crate::ErrorCode::FrameTooLarge)
        );
    }

    #[test]
    fn unknown_tag_and_missing_elements() {
        let unknown = Bytes::from_static(&[0x91, 0x63]);
        assert_eq!(
            ClientMsg::decode(&unknown),
            Err(DecodeError::UnknownTag { tag: 0x63 })
        );
        let short_ping = Bytes::from_static(&[0x91, 0x04]);
        assert!(matches!(
            ClientMsg::decode(&short_ping),
            Err(DecodeError::WrongArity { .. })
        ));
    }

    #[test]
    fn extra_trailing_elements_are_skipped() {
        // Ping [4, 9] with two appended values: nil and [1, {}].
        let frame = Bytes::from_static(&[0x94, 0x04, 0x09, 0xc0, 0x92, 0x01, 0x80]);
        assert_eq!(ClientMsg::decode(&frame), Ok(ClientMsg::Ping { nonce: 9 }));
        // An appended value must still be one well-formed value.
        let truncated = Bytes::from_static(&[0x93, 0x04, 0x09, 0x92, 0x01]);
        assert!(ClientMsg::decode(&truncated).is_err());
    }

    #[test]
    fn hello_version_is_checked_before_the_layout() {
        // [1, 3]: a version-3 Hello whose layout this version cannot know.
        let v3 = Bytes::from_static(&[0x92, 0x01, 0x03]);
        assert_eq!(
            ClientMsg::decode(&v3),
            Err(DecodeError::UnsupportedVersion { found: 3 })
        );
        let v0 = Bytes::from_static(&[0x92, 0x01, 0x00]);
        assert_eq!(
            ClientMsg::decode(&v0),
            Err(DecodeError::UnsupportedVersion { found: 0 })
        );
        assert_eq!(
            ClientMsg::decode(&v3).map_err(|e| e.code()),
            Err(crate::ErrorCode::UnsupportedVersion)
        );
        // [1, 1]: version 1, whose layout needs six elements.
        let short = Bytes::from_static(&[0x92, 0x01, 0x01]);
        assert!(matches!(
            ClientMsg::decode(&short),
            Err(DecodeError::WrongArity { expected: 6, .. })
        ));
        // [1]: no version at all.
        let bare = Bytes::from_static(&[0x91, 0x01]);
        assert!(matches!(
            ClientMsg::decode(&bare),
            Err(DecodeError::WrongArity { expected: 2, .. })
        ));
        // A version too large for u16 is malformed, not another version.
        let wide = Bytes::from_static(&[0x92, 0x01, 0xce, 0x00, 0x01, 0x00, 0x01]);
        assert!(matches!(
            ClientMsg::decode(&wide),
            Err(DecodeError::OutOfRange { field: "version" })
        ));
    }

    #[test]
    fn resume_token_has_its_own_limit() {
        let mut hello = Hello::new("r");
        hello.resume = Some("s".repeat(MAX_RESUME_TOKEN));
        roundtrip(ClientMsg::Hello(hello.clone()));
        hello.resume = Some("s".repeat(MAX_RESUME_TOKEN + 1));
        let frame = Bytes::from(ClientMsg::Hello(hello).encode());
        assert!(matches!(
            ClientMsg::decode(&frame),
            Err(DecodeError::TooLong {
                field: "resume",
                ..
            })
        ));
    }
}
