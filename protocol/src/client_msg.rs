//! Messages a client sends to the server.
//!
//! Every message is a MessagePack array whose first element is a tag (see
//! `PROTOCOL.md`). Fields are positional and append-only.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::limits::{MAX_CHAT, MAX_CLIENT_FRAME, MAX_ROOM_NAME, MAX_TOKEN, is_valid_room_name};
use crate::msgpack::{Reader, Writer};
use crate::raw::{RawValue, read_raw};

/// Message tags, client to server.
pub mod tag {
    pub const HELLO: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const CHAT: u8 = 3;
    pub const PING: u8 = 4;
}

/// The handshake: the first message on every connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// [`crate::PROTOCOL_VERSION`] of the client.
    pub version: u16,
    /// Room to join; created on first join. See [`is_valid_room_name`].
    pub room: String,
    /// Auth token, when the server requires one.
    pub token: Option<String>,
    /// Resume token from an earlier session, to take the same player back.
    pub resume: Option<String>,
    /// Game-defined join options (`nil` when the game needs none).
    pub options: RawValue,
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
}

impl ClientMsg {
    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        match self {
            Self::Hello(h) => {
                w.array_len(6);
                w.uint(tag::HELLO.into());
                w.uint(h.version.into());
                w.str(&h.room);
                w.opt_str(h.token.as_deref());
                w.opt_str(h.resume.as_deref());
                w.raw(h.options.as_bytes());
            }
            Self::Input { seq, intent } => {
                w.array_len(3);
                w.uint(tag::INPUT.into());
                w.uint((*seq).into());
                w.raw(intent.as_bytes());
            }
            Self::Chat { text } => {
                w.array_len(2);
                w.uint(tag::CHAT.into());
                w.str(text);
            }
            Self::Ping { nonce } => {
                w.array_len(2);
                w.uint(tag::PING.into());
                w.uint((*nonce).into());
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode_into(&mut out);
        out
    }

    /// Decodes one frame. The size limit is checked before anything else.
    pub fn decode(frame: &Bytes) -> Result<Self, DecodeError> {
        if frame.len() > MAX_CLIENT_FRAME {
            return Err(DecodeError::FrameTooLarge {
                len: frame.len(),
                max: MAX_CLIENT_FRAME,
            });
        }
        if frame.is_empty() {
            return Err(DecodeError::Empty);
        }
        let mut r = Reader::new(frame);
        let len = r.array_len()?;
        if len == 0 {
            return Err(DecodeError::WrongArity {
                expected: 1,
                found: 0,
                at: 0,
            });
        }
        let tag = r.uint()?;
        let arity = |expected: usize| {
            if len == expected {
                Ok(())
            } else {
                Err(DecodeError::WrongArity {
                    expected,
                    found: len,
                    at: 0,
                })
            }
        };
        let msg = match u8::try_from(tag).unwrap_or(u8::MAX) {
            tag::HELLO => {
                arity(6)?;
                let version = r.uint_as("version")?;
                let room = r.str("room", MAX_ROOM_NAME)?.to_owned();
                let token = r.opt_str("token", MAX_TOKEN)?.map(str::to_owned);
                let resume = r.opt_str("resume", MAX_TOKEN)?.map(str::to_owned);
                let options = read_raw(&mut r, frame)?;
                Self::Hello(Hello {
                    version,
                    room,
                    token,
                    resume,
                    options,
                })
            }
            tag::INPUT => {
                arity(3)?;
                let seq = r.uint_as("seq")?;
                let intent = read_raw(&mut r, frame)?;
                Self::Input { seq, intent }
            }
            tag::CHAT => {
                arity(2)?;
                Self::Chat {
                    text: r.str("chat text", MAX_CHAT)?.to_owned(),
                }
            }
            tag::PING => {
                arity(2)?;
                Self::Ping {
                    nonce: r.uint_as("nonce")?,
                }
            }
            _ => return Err(DecodeError::UnknownTag { tag }),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Short name of the message kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Input { .. } => "input",
            Self::Chat { .. } => "chat",
            Self::Ping { .. } => "ping",
        }
    }
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
        }
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
        }));
        roundtrip(ClientMsg::Input {
            seq: 70_000,
            intent: RawValue::encode(&(1i8, -1i8)).expect("encodes"),
        });
        roundtrip(ClientMsg::Chat { text: "hi".into() });
        roundtrip(ClientMsg::Ping { nonce: 9 });
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
    fn unknown_tag_and_wrong_arity() {
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
}
