//! Messages the server sends to a client.

use bytes::Bytes;

use crate::delta::Delta;
use crate::delta_part::{DELTA_PART_LEN, DeltaPart};
use crate::error::{DecodeError, ErrorCode, KickReason};
use crate::frame;
use crate::limits::{
    MAX_CHAT, MAX_REASON, MAX_REDIRECT_URL, MAX_RESUME_TOKEN, MAX_SEAT, MAX_SERVER_FRAME,
};
use crate::msgpack::Writer;
use crate::raw::{RawValue, read_raw};

/// Message tags, server to client.
pub mod tag {
    pub const WELCOME: u8 = 1;
    pub const DELTA: u8 = 2;
    pub const CHAT: u8 = 3;
    pub const PONG: u8 = 4;
    pub const ERROR: u8 = 5;
    pub const KICKED: u8 = 6;
    pub const DELTA_PART: u8 = 7;
    pub const EVENT: u8 = 8;
    pub const REDIRECT: u8 = 9;
}

/// Elements each message has in this version, the tag included. Senders
/// write exactly this many; receivers accept more.
const WELCOME_LEN: usize = 7;
pub(crate) const DELTA_LEN: usize = 6;
const CHAT_LEN: usize = 3;
const PONG_LEN: usize = 3;
const ERROR_LEN: usize = 3;
const KICKED_LEN: usize = 3;
const EVENT_LEN: usize = 2;
const REDIRECT_LEN: usize = 3;

/// The answer to a successful `Hello`.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// Identifies this session on this server (logs, admin API).
    pub session_id: u64,
    /// The entity the player controls.
    pub entity_id: u32,
    /// Ticks per second of the room.
    pub tick_rate: u16,
    /// The room's tick when the player joined.
    pub tick: u32,
    /// Interest radius in world units: entities nearer than this are visible.
    pub aoi_radius: u32,
    /// Hysteresis in world units: a visible entity leaves view only once it
    /// is farther than `aoi_radius + aoi_margin`.
    pub aoi_margin: u32,
    /// A token to come back to the same player after the connection
    /// drops (`Hello.resume`), within the server's grace window; `None`
    /// when the server holds no dropped players. The 8th element on the
    /// wire, left out when `None` (and `motion` is 0).
    pub resume: Option<String>,
    /// The wire id of the game's motion component, whose changes may come
    /// as `moved` entries of a delta (`PROTOCOL.md` §6.3); 0 when the game
    /// has none. The 9th element on the wire, left out when 0.
    pub motion: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    Welcome(Welcome),
    Delta(Delta),
    /// Room chat. `from` is the sender's entity id, 0 for the server.
    Chat {
        from: u32,
        text: String,
    },
    Pong {
        nonce: u32,
        tick: u32,
    },
    /// A refused request. After an error the server closes the connection.
    /// `code` is an [`ErrorCode`] number; unknown numbers are kept as they are
    /// so that older clients survive newer servers.
    Error {
        code: u16,
        message: String,
    },
    /// The session was ended by the server; the connection closes next.
    /// `reason` is a [`KickReason`] number.
    Kicked {
        reason: u16,
        message: String,
    },
    /// State against an acknowledged tick, for unreliable transports
    /// (QUIC datagrams); see [`DeltaPart`].
    DeltaPart(DeltaPart),
    /// A game event for this client ("you scored"): something the game
    /// tells it that is not replicated state. Sent once, after the delta
    /// of the tick it happened in.
    Event {
        payload: RawValue,
    },
    /// Instead of a `Welcome`: another node of the cluster hosts the room.
    /// The client connects to `url` and sends its `Hello` again with `seat`
    /// in `Hello.seat`; the connection closes next.
    Redirect {
        url: String,
        seat: String,
    },
}

impl ServerMsg {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code: code as u16,
            message: truncate(message.into(), MAX_REASON),
        }
    }

    pub fn kicked(reason: KickReason, message: impl Into<String>) -> Self {
        Self::Kicked {
            reason: reason as u16,
            message: truncate(message.into(), MAX_REASON),
        }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        match self {
            Self::Welcome(m) => {
                let len = if m.motion != 0 {
                    WELCOME_LEN + 2
                } else {
                    WELCOME_LEN + usize::from(m.resume.is_some())
                };
                w.array_len(len as u32);
                w.uint(tag::WELCOME.into());
                w.uint(m.session_id);
                w.uint(m.entity_id.into());
                w.uint(m.tick_rate.into());
                w.uint(m.tick.into());
                w.uint(m.aoi_radius.into());
                w.uint(m.aoi_margin.into());
                if m.motion != 0 {
                    w.opt_str(m.resume.as_deref());
                    w.uint(m.motion.into());
                } else if let Some(resume) = &m.resume {
                    w.str(resume);
                }
            }
            Self::Delta(d) => d.encode_into(out),
            Self::Chat { from, text } => {
                w.array_len(CHAT_LEN as u32);
                w.uint(tag::CHAT.into());
                w.uint((*from).into());
                w.str(text);
            }
            Self::Pong { nonce, tick } => {
                w.array_len(PONG_LEN as u32);
                w.uint(tag::PONG.into());
                w.uint((*nonce).into());
                w.uint((*tick).into());
            }
            Self::Error { code, message } => {
                w.array_len(ERROR_LEN as u32);
                w.uint(tag::ERROR.into());
                w.uint((*code).into());
                w.str(message);
            }
            Self::Kicked { reason, message } => {
                w.array_len(KICKED_LEN as u32);
                w.uint(tag::KICKED.into());
                w.uint((*reason).into());
                w.str(message);
            }
            Self::DeltaPart(p) => p.encode_into(out),
            Self::Event { payload } => {
                w.array_len(EVENT_LEN as u32);
                w.uint(tag::EVENT.into());
                w.raw(payload.as_bytes());
            }
            Self::Redirect { url, seat } => {
                w.array_len(REDIRECT_LEN as u32);
                w.uint(tag::REDIRECT.into());
                w.str(url);
                w.str(seat);
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// Decodes one frame. Game values inside it are zero-copy slices of `frame`.
    pub fn decode(frame: &Bytes) -> Result<Self, DecodeError> {
        let (mut r, head) = frame::open(frame, MAX_SERVER_FRAME)?;
        let (msg, known) = match u8::try_from(head.tag).unwrap_or(u8::MAX) {
            tag::WELCOME => {
                head.require(WELCOME_LEN)?;
                let welcome = Welcome {
                    session_id: r.uint()?,
                    entity_id: r.uint_as("entity id")?,
                    tick_rate: r.uint_as("tick rate")?,
                    tick: r.uint_as("tick")?,
                    aoi_radius: r.uint_as("aoi radius")?,
                    aoi_margin: r.uint_as("aoi margin")?,
                    resume: None,
                    motion: 0,
                };
                let known = head.len.min(WELCOME_LEN + 2);
                let resume = if known > WELCOME_LEN {
                    r.opt_str("resume", MAX_RESUME_TOKEN)?.map(str::to_owned)
                } else {
                    None
                };
                let motion = if known > WELCOME_LEN + 1 {
                    r.uint_as("motion component")?
                } else {
                    0
                };
                (
                    Self::Welcome(Welcome {
                        resume,
                        motion,
                        ..welcome
                    }),
                    known,
                )
            }
            tag::DELTA => {
                head.require(DELTA_LEN)?;
                let (delta, known) = Delta::decode_body(&mut r, frame, head.len)?;
                (Self::Delta(delta), known)
            }
            tag::CHAT => {
                head.require(CHAT_LEN)?;
                let from = r.uint_as("sender")?;
                let text = r.str("chat text", MAX_CHAT)?.to_owned();
                (Self::Chat { from, text }, CHAT_LEN)
            }
            tag::PONG => {
                head.require(PONG_LEN)?;
                let nonce = r.uint_as("nonce")?;
                let tick = r.uint_as("tick")?;
                (Self::Pong { nonce, tick }, PONG_LEN)
            }
            tag::ERROR => {
                head.require(ERROR_LEN)?;
                let code = r.uint_as("error code")?;
                let message = r.str("error message", MAX_REASON)?.to_owned();
                (Self::Error { code, message }, ERROR_LEN)
            }
            tag::KICKED => {
                head.require(KICKED_LEN)?;
                let reason = r.uint_as("kick reason")?;
                let message = r.str("kick message", MAX_REASON)?.to_owned();
                (Self::Kicked { reason, message }, KICKED_LEN)
            }
            tag::DELTA_PART => {
                head.require(DELTA_PART_LEN)?;
                let part = DeltaPart::decode_body(&mut r, frame)?;
                (Self::DeltaPart(part), DELTA_PART_LEN)
            }
            tag::EVENT => {
                head.require(EVENT_LEN)?;
                let payload = read_raw(&mut r, frame)?;
                (Self::Event { payload }, EVENT_LEN)
            }
            tag::REDIRECT => {
                head.require(REDIRECT_LEN)?;
                let url = r.str("redirect url", MAX_REDIRECT_URL)?.to_owned();
                let seat = r.str("seat", MAX_SEAT)?.to_owned();
                (Self::Redirect { url, seat }, REDIRECT_LEN)
            }
            _ => return Err(DecodeError::UnknownTag { tag: head.tag }),
        };
        head.finish(&mut r, known)?;
        Ok(msg)
    }

    /// Short name of the message kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome(_) => "welcome",
            Self::Delta(_) => "delta",
            Self::Chat { .. } => "chat",
            Self::Pong { .. } => "pong",
            Self::Error { .. } => "error",
            Self::Kicked { .. } => "kicked",
            Self::DeltaPart(_) => "delta_part",
            Self::Event { .. } => "event",
            Self::Redirect { .. } => "redirect",
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::{ComponentValue, EntityState};

    fn roundtrip(msg: ServerMsg) {
        let bytes = Bytes::from(msg.encode());
        assert_eq!(ServerMsg::decode(&bytes), Ok(msg));
    }

    #[test]
    fn every_message_roundtrips() {
        roundtrip(ServerMsg::Welcome(Welcome {
            session_id: u64::MAX,
            entity_id: 7,
            tick_rate: 10,
            tick: 123_456,
            aoi_radius: 200,
            aoi_margin: 20,
            resume: None,
            motion: 0,
        }));
        for resume in [None, Some("r".to_string())] {
            roundtrip(ServerMsg::Welcome(Welcome {
                session_id: 1,
                entity_id: 7,
                tick_rate: 10,
                tick: 1,
                aoi_radius: 200,
                aoi_margin: 20,
                resume,
                motion: 1,
            }));
        }
        roundtrip(ServerMsg::Welcome(Welcome {
            session_id: 1,
            entity_id: 7,
            tick_rate: 10,
            tick: 1,
            aoi_radius: 200,
            aoi_margin: 20,
            resume: Some("r.token".into()),
            motion: 0,
        }));
        roundtrip(ServerMsg::Delta(Delta {
            tick: 5,
            ack_input: 3,
            entered: vec![EntityState {
                id: 300,
                components: vec![ComponentValue {
                    id: 1,
                    value: RawValue::encode(&70_000u32).expect("encodes"),
                }],
            }],
            updated: vec![EntityState {
                id: 2,
                components: vec![],
            }],
            left: vec![9, 100_000],
            ..Delta::default()
        }));
        roundtrip(ServerMsg::Delta(Delta {
            tick: 5,
            slots: vec![],
            moved: vec![crate::Move {
                slot: 70_000,
                dx: i32::MIN,
                dy: i32::MAX,
            }],
            ..Delta::default()
        }));
        roundtrip(ServerMsg::Chat {
            from: 0,
            text: "héllo".into(),
        });
        roundtrip(ServerMsg::Pong { nonce: 1, tick: 2 });
        roundtrip(ServerMsg::error(ErrorCode::RoomFull, "full"));
        roundtrip(ServerMsg::kicked(KickReason::Admin, "bye"));
        roundtrip(ServerMsg::Event {
            payload: RawValue::encode(&("scored", 10u8)).expect("encodes"),
        });
    }

    #[test]
    fn long_reasons_are_cut_on_char_boundaries() {
        let msg = ServerMsg::error(ErrorCode::Internal, "é".repeat(MAX_REASON));
        let ServerMsg::Error { message, .. } = msg else {
            unreachable!()
        };
        assert!(message.len() <= MAX_REASON);
    }

    #[test]
    fn entity_entry_must_pair_ids_and_values() {
        // Delta whose single entered entry has an even length (id + one id, no value).
        let frame =
            Bytes::from_static(&[0x96, 0x02, 0x01, 0x00, 0x91, 0x92, 0x05, 0x01, 0x90, 0x90]);
        assert!(matches!(
            ServerMsg::decode(&frame),
            Err(DecodeError::WrongArity { .. })
        ));
    }

    #[test]
    fn extra_trailing_elements_are_skipped() {
        // Pong [4, 1, 2] with an appended string, and an empty delta with an
        // appended map {0: nil}.
        let pong = Bytes::from_static(&[0x94, 0x04, 0x01, 0x02, 0xa1, b'x']);
        assert_eq!(
            ServerMsg::decode(&pong),
            Ok(ServerMsg::Pong { nonce: 1, tick: 2 })
        );
        let delta =
            Bytes::from_static(&[0x97, 0x02, 0x01, 0x00, 0x90, 0x90, 0x90, 0x81, 0x00, 0xc0]);
        assert_eq!(
            ServerMsg::decode(&delta),
            Ok(ServerMsg::Delta(Delta {
                tick: 1,
                ..Delta::default()
            }))
        );
        // Fewer elements than this version knows stays malformed.
        let short = Bytes::from_static(&[0x92, 0x04, 0x01]);
        assert!(matches!(
            ServerMsg::decode(&short),
            Err(DecodeError::WrongArity { expected: 3, .. })
        ));
    }
}
