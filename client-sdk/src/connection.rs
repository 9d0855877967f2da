//! The client session as a sans-IO state machine.
//!
//! [`Connection`] never touches a socket, spawns, or reads a clock; a
//! transport drives it (the pattern of quinn-proto's `Connection`):
//!
//! - frames the server sent go in through [`Connection::handle_frame`] (with
//!   the `now` they arrived at), and the end of the transport through
//!   [`Connection::handle_close`];
//! - what happened comes out through [`Connection::poll_event`], which the
//!   caller drains after each `handle_*` call;
//! - frames to send come out of the commands [`Connection::hello`],
//!   [`Connection::input`], [`Connection::chat`] and [`Connection::ping`],
//!   as bytes the caller writes as one binary frame each;
//! - getters ([`Connection::world`], [`Connection::rtt`], ...) read state.
//!
//! The session goes `New` → `Handshaking` (hello sent) → `Joined` (welcome
//! received) → `Ending` (the server sent `Error` or `Kicked` and will close)
//! → `Closed`. Anything the server sends that the protocol does not allow in
//! the current state — an undecodable frame, a delta that does not fit the
//! mirror, a message out of place, even a frame after `Kicked` — is a
//! [`ProtocolError`]: the connection reports it as the reason of its
//! [`Event::Disconnected`] and is closed from then on.
//!
//! The event queue holds what the frames handled so far produced and is
//! drained by the caller between frames, so it is bounded by what one frame
//! can carry.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use tessera_protocol::limits::{
    ChatTextProblem, MAX_CHAT, MAX_CLIENT_FRAME, MAX_RESUME_TOKEN, MAX_TOKEN, check_chat_text,
};
use tessera_protocol::{
    ClientMsg, DecodeError, Delta, DeltaPart, Hello, PayloadError, RawValue, ServerMsg, Welcome,
};

use crate::event::{DisconnectReason, Event};
use crate::rtt::{PingTracker, Rtt};
use crate::world_view::{Applied, MirrorError, WorldView};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing sent yet.
    New,
    /// `Hello` sent; waiting for `Welcome` or `Error`.
    Handshaking,
    /// Joined: deltas, chat and pongs flow; inputs may be sent.
    Joined,
    /// The server sent `Error` or `Kicked`; only the close may follow.
    Ending,
    /// Over; [`Event::Disconnected`] has been queued.
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Handshaking => "handshaking",
            Self::Joined => "joined",
            Self::Ending => "ending",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the server sent that the protocol does not allow. The
/// connection cannot go on after one: the mirror would no longer match what
/// the server believes the client knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("undecodable frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("delta does not fit the mirror: {0}")]
    Mirror(#[from] MirrorError),
    #[error("{kind} message while the session is {state}")]
    UnexpectedMessage { kind: &'static str, state: State },
    #[error("text frame; the protocol uses binary frames only")]
    TextFrame,
}

/// A command the session cannot carry out; nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    #[error("the hello was already sent")]
    HelloAlreadySent,
    #[error("room name {0:?} is not valid (1 to 64 bytes of A-Z a-z 0-9 _ . : -)")]
    InvalidRoomName(String),
    #[error("{field} is {len} bytes, more than {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the session has not joined yet")]
    NotJoined,
    #[error("the session is over")]
    Closed,
    #[error("intent could not be encoded: {0}")]
    Payload(#[from] PayloadError),
    #[error("chat text is empty")]
    EmptyChat,
    #[error("chat text has control, invisible or bidirectional characters, or line separators")]
    ChatControlCharacter,
}

/// One client session, without I/O. See the module documentation.
#[derive(Debug, Clone)]
pub struct Connection {
    state: State,
    welcome: Option<Welcome>,
    world: WorldView,
    events: VecDeque<Event>,
    last_input_seq: u32,
    pings: PingTracker,
    last_pong_tick: Option<u32>,
    disconnect_reason: Option<DisconnectReason>,
    /// A tick completed by delta parts and not yet acknowledged.
    pending_ack: Option<u32>,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

impl Connection {
    pub fn new() -> Self {
        Self {
            state: State::New,
            welcome: None,
            world: WorldView::new(),
            events: VecDeque::new(),
            last_input_seq: 0,
            pings: PingTracker::default(),
            last_pong_tick: None,
            disconnect_reason: None,
            pending_ack: None,
        }
    }

    /// A connection that resumes a player whose inputs were numbered up to
    /// `last_input_seq`: its inputs go on from there, as the server's
    /// numbering does (PROTOCOL.md §10.4).
    pub fn resuming_after(last_input_seq: u32) -> Self {
        Self {
            last_input_seq,
            ..Self::new()
        }
    }

    /// The handshake frame; the first frame of every connection.
    pub fn hello(&mut self, hello: &Hello) -> Result<Bytes, ConnectionError> {
        if self.state != State::New {
            return Err(ConnectionError::HelloAlreadySent);
        }
        // The server checks all of this too; checking here turns a round
        // trip and a refusal into an immediate, precise error.
        if !hello.has_valid_room() {
            return Err(ConnectionError::InvalidRoomName(hello.room.clone()));
        }
        for (field, value, max) in [
            ("token", &hello.token, MAX_TOKEN),
            ("resume token", &hello.resume, MAX_RESUME_TOKEN),
        ] {
            let len = value.as_deref().map_or(0, str::len);
            if len > max {
                return Err(ConnectionError::TooLong { field, len, max });
            }
        }
        let frame = encode("hello frame", &ClientMsg::Hello(hello.clone()))?;
        self.state = State::Handshaking;
        Ok(frame)
    }

    /// Handles one binary frame the server sent, received at `now`.
    ///
    /// On `Err` the connection is closed and has queued
    /// [`Event::Disconnected`] with the same error; the caller should drop
    /// the transport. Frames after the connection closed are ignored.
    pub fn handle_frame(&mut self, now: Instant, frame: Bytes) -> Result<(), ProtocolError> {
        if self.state == State::Closed {
            return Ok(());
        }
        let result = ServerMsg::decode(&frame)
            .map_err(ProtocolError::from)
            .and_then(|msg| self.dispatch(now, msg));
        if let Err(err) = &result {
            self.close_with(DisconnectReason::ProtocolViolation(err.clone()));
        }
        result
    }

    fn dispatch(&mut self, now: Instant, msg: ServerMsg) -> Result<(), ProtocolError> {
        let kind = msg.kind();
        match (self.state, msg) {
            (State::Handshaking, ServerMsg::Welcome(welcome)) => {
                self.world = WorldView::from_tick(welcome.tick);
                self.welcome = Some(welcome.clone());
                self.state = State::Joined;
                self.events.push_back(Event::Welcome(welcome));
            }
            (State::Joined, ServerMsg::Delta(delta)) => self.apply_delta(&delta)?,
            (State::Joined, ServerMsg::DeltaPart(part)) => self.apply_part(&part),
            (State::Joined, ServerMsg::Chat { from, text }) => {
                self.events.push_back(Event::Chat { from, text });
            }
            (State::Joined, ServerMsg::Event { payload }) => {
                self.events.push_back(Event::Game(payload));
            }
            (State::Joined, ServerMsg::Pong { nonce, tick }) => {
                if self.pings.on_pong(nonce, now).is_some() {
                    self.last_pong_tick = Some(tick);
                } else {
                    // A pong for a ping forgotten after too long in flight;
                    // harmless, so not a violation.
                    tracing::debug!(nonce, "pong for a ping not in flight");
                }
            }
            (State::Handshaking | State::Joined, ServerMsg::Error { code, message }) => {
                self.state = State::Ending;
                self.events.push_back(Event::Error { code, message });
            }
            (State::Joined, ServerMsg::Kicked { reason, message }) => {
                self.state = State::Ending;
                self.events.push_back(Event::Kicked { reason, message });
            }
            (state, _) => return Err(ProtocolError::UnexpectedMessage { kind, state }),
        }
        Ok(())
    }

    fn apply_delta(&mut self, delta: &Delta) -> Result<(), ProtocolError> {
        let applied = self.world.apply(delta)?;
        self.push_applied(applied, true);
        Ok(())
    }

    /// A part may be late or a repeat; it raises the same events as a delta
    /// for what it changed, and [`Event::Delta`] only when it is the newest
    /// tick so far (so those ticks keep increasing).
    fn apply_part(&mut self, part: &DeltaPart) {
        let result = self.world.apply_part(part);
        if let Some(tick) = result.completed {
            self.pending_ack = Some(self.pending_ack.map_or(tick, |t| t.max(tick)));
        }
        self.push_applied(result.applied, result.newest);
    }

    /// The `Ack` frame for the latest tick completed by delta parts since
    /// the last call; the transport sends it as a datagram.
    pub fn take_ack(&mut self) -> Option<Bytes> {
        let tick = self.pending_ack.take()?;
        (self.state == State::Joined).then(|| Bytes::from(ClientMsg::Ack { tick }.encode()))
    }

    fn push_applied(&mut self, applied: Applied, with_delta_event: bool) {
        let events = applied
            .left
            .into_iter()
            .map(|last| Event::EntityLeft {
                id: last.id(),
                last,
            })
            .chain(
                applied
                    .entered
                    .into_iter()
                    .map(|id| Event::EntityEntered { id }),
            )
            .chain(
                applied
                    .updated
                    .into_iter()
                    .map(|id| Event::EntityUpdated { id }),
            )
            .chain(with_delta_event.then_some(Event::Delta {
                tick: applied.tick,
                ack_input: applied.ack_input,
            }));
        self.events.extend(events);
    }

    /// The transport ended (or the caller gave up on it). Queues
    /// [`Event::Disconnected`] unless the connection is already closed, in
    /// which case the first reason stands.
    pub fn handle_close(&mut self, reason: DisconnectReason) {
        if self.state != State::Closed {
            self.close_with(reason);
        }
    }

    /// Closes the session from this side; the caller closes the transport.
    pub fn close(&mut self) {
        self.handle_close(DisconnectReason::LocalClose);
    }

    fn close_with(&mut self, reason: DisconnectReason) {
        self.state = State::Closed;
        self.disconnect_reason = Some(reason.clone());
        self.events.push_back(Event::Disconnected { reason });
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// An input frame carrying `intent`, and its sequence number. Numbers
    /// start at 1 and increase by one per input, so `ack_input` 0 in a delta
    /// means "none applied yet".
    pub fn input<T: Serialize + ?Sized>(
        &mut self,
        intent: &T,
    ) -> Result<(u32, Bytes), ConnectionError> {
        self.require_joined()?;
        let intent = RawValue::encode(intent)?;
        let seq = self.last_input_seq.wrapping_add(1);
        let frame = encode("input frame", &ClientMsg::Input { seq, intent })?;
        // Only a frame that will be sent consumes a number, so the server
        // sees no gaps.
        self.last_input_seq = seq;
        Ok((seq, frame))
    }

    /// A chat frame. Text the server would refuse (and end the session for:
    /// empty, over-long, or with a forbidden character) is refused here.
    pub fn chat(&mut self, text: &str) -> Result<Bytes, ConnectionError> {
        self.require_joined()?;
        // The server's rules: refused here, the line would cost the client
        // its connection there.
        check_chat_text(text).map_err(|problem| match problem {
            ChatTextProblem::Empty => ConnectionError::EmptyChat,
            ChatTextProblem::TooLong => ConnectionError::TooLong {
                field: "chat text",
                len: text.len(),
                max: MAX_CHAT,
            },
            ChatTextProblem::ForbiddenCharacter => ConnectionError::ChatControlCharacter,
        })?;
        encode("chat frame", &ClientMsg::Chat { text: text.into() })
    }

    /// An action frame carrying `action`, the game's one-shot action type:
    /// the server applies each action once, in the order sent.
    pub fn action<T: Serialize + ?Sized>(&mut self, action: &T) -> Result<Bytes, ConnectionError> {
        self.require_joined()?;
        let action = RawValue::encode(action)?;
        encode("action frame", &ClientMsg::Action { action })
    }

    /// A ping frame, remembered as sent at `now`; its pong updates
    /// [`Connection::rtt`].
    pub fn ping(&mut self, now: Instant) -> Result<Bytes, ConnectionError> {
        self.require_joined()?;
        let nonce = self.pings.issue(now);
        encode("ping frame", &ClientMsg::Ping { nonce })
    }

    fn require_joined(&self) -> Result<(), ConnectionError> {
        match self.state {
            State::Joined => Ok(()),
            State::New | State::Handshaking => Err(ConnectionError::NotJoined),
            State::Ending | State::Closed => Err(ConnectionError::Closed),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why the session ended, once it has.
    pub fn disconnect_reason(&self) -> Option<&DisconnectReason> {
        self.disconnect_reason.as_ref()
    }

    /// The server's welcome, once joined.
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// The mirror of the visible world.
    pub fn world(&self) -> &WorldView {
        &self.world
    }

    /// Round-trip time, once a pong has come back.
    pub fn rtt(&self) -> Option<Rtt> {
        self.pings.rtt()
    }

    /// The server tick carried by the latest matched pong.
    pub fn last_pong_tick(&self) -> Option<u32> {
        self.last_pong_tick
    }

    /// Sequence number of the last input framed; 0 before the first.
    pub fn last_input_seq(&self) -> u32 {
        self.last_input_seq
    }

    /// Pings sent whose pong has not come back yet (at most
    /// [`crate::MAX_PINGS_IN_FLIGHT`]).
    pub fn pings_in_flight(&self) -> usize {
        self.pings.in_flight()
    }

    /// Pongs that matched no ping in flight, since the session began.
    pub fn unmatched_pongs(&self) -> u64 {
        self.pings.unmatched_pongs()
    }
}

fn encode(field: &'static str, msg: &ClientMsg) -> Result<Bytes, ConnectionError> {
    let bytes = msg.encode();
    // A frame over the limit would get the session closed by the server
    // (FrameTooLarge); refuse to send it instead.
    if bytes.len() > MAX_CLIENT_FRAME {
        return Err(ConnectionError::TooLong {
            field,
            len: bytes.len(),
            max: MAX_CLIENT_FRAME,
        });
    }
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use tessera_protocol::arena::{Position, Walk};
    use tessera_protocol::{ComponentValue, EntityState, ErrorCode, KickReason, WireComponent};

    fn frame(msg: &ServerMsg) -> Bytes {
        Bytes::from(msg.encode())
    }

    fn welcome() -> Welcome {
        Welcome {
            session_id: 42,
            entity_id: 1,
            tick_rate: 10,
            tick: 100,
            aoi_radius: 200,
            aoi_margin: 20,
            resume: None,
        }
    }

    fn entity(id: u32, x: f32) -> EntityState {
        EntityState {
            id,
            components: vec![ComponentValue {
                id: Position::ID,
                value: RawValue::encode(&Position::from_units(x, 0.0)).expect("encodes"),
            }],
        }
    }

    fn drain(conn: &mut Connection) -> Vec<Event> {
        std::iter::from_fn(|| conn.poll_event()).collect()
    }

    /// A connection that has sent its hello and received the welcome.
    fn joined(now: Instant) -> Connection {
        let mut conn = Connection::new();
        conn.hello(&Hello::new("lobby")).expect("hello");
        conn.handle_frame(now, frame(&ServerMsg::Welcome(welcome())))
            .expect("welcome");
        assert_eq!(drain(&mut conn), vec![Event::Welcome(welcome())]);
        conn
    }

    fn expect_violation(conn: &mut Connection, now: Instant, msg: Bytes) -> ProtocolError {
        let err = conn.handle_frame(now, msg).expect_err("is a violation");
        assert!(conn.is_closed());
        assert_eq!(
            drain(conn).last(),
            Some(&Event::Disconnected {
                reason: DisconnectReason::ProtocolViolation(err.clone())
            })
        );
        err
    }

    #[test]
    fn hello_is_the_first_frame_and_only_once() {
        let mut conn = Connection::new();
        let bytes = conn.hello(&Hello::new("lobby")).expect("hello");
        assert_eq!(
            ClientMsg::decode(&bytes).expect("decodes"),
            ClientMsg::Hello(Hello::new("lobby"))
        );
        assert_eq!(conn.state(), State::Handshaking);
        assert!(matches!(
            conn.hello(&Hello::new("lobby")),
            Err(ConnectionError::HelloAlreadySent)
        ));
        assert!(matches!(
            Connection::new().hello(&Hello::new("no spaces")),
            Err(ConnectionError::InvalidRoomName(_))
        ));
    }

    #[test]
    fn welcome_joins_and_deltas_raise_events_in_apply_order() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        assert_eq!(conn.state(), State::Joined);
        assert_eq!(conn.welcome(), Some(&welcome()));

        // The join snapshot may carry the welcome's own tick.
        let snapshot = Delta {
            tick: 100,
            ack_input: 0,
            entered: vec![entity(1, 1.0), entity(2, 2.0)],
            ..Delta::default()
        };
        conn.handle_frame(t0, frame(&ServerMsg::Delta(snapshot)))
            .expect("delta");
        assert_eq!(
            drain(&mut conn),
            vec![
                Event::EntityEntered { id: 1 },
                Event::EntityEntered { id: 2 },
                Event::Delta {
                    tick: 100,
                    ack_input: 0
                },
            ]
        );

        let last_of_2 = conn.world().get(2).expect("visible").clone();
        let next = Delta {
            tick: 101,
            ack_input: 4,
            entered: vec![entity(3, 3.0)],
            updated: vec![entity(1, 1.5)],
            left: vec![2],
        };
        conn.handle_frame(t0, frame(&ServerMsg::Delta(next)))
            .expect("delta");
        assert_eq!(
            drain(&mut conn),
            vec![
                Event::EntityLeft {
                    id: 2,
                    last: last_of_2
                },
                Event::EntityEntered { id: 3 },
                Event::EntityUpdated { id: 1 },
                Event::Delta {
                    tick: 101,
                    ack_input: 4
                },
            ]
        );
        let one = conn.world().get(1).expect("visible");
        assert_eq!(
            one.get::<Position>().expect("has").expect("decodes"),
            Position::from_units(1.5, 0.0)
        );
        assert_eq!(conn.world().len(), 2);
        assert_eq!(conn.world().ack_input(), 4);
    }

    #[test]
    fn chat_is_an_event() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        let chat = ServerMsg::Chat {
            from: 0,
            text: "hi".into(),
        };
        conn.handle_frame(t0, frame(&chat)).expect("chat");
        assert_eq!(
            drain(&mut conn),
            vec![Event::Chat {
                from: 0,
                text: "hi".into()
            }]
        );
    }

    #[test]
    fn rtt_comes_from_pong_nonces() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        assert_eq!(conn.rtt(), None);

        let ping = conn.ping(t0).expect("ping");
        let ClientMsg::Ping { nonce } = ClientMsg::decode(&ping).expect("decodes") else {
            panic!("not a ping");
        };
        let pong = ServerMsg::Pong { nonce, tick: 130 };
        conn.handle_frame(t0 + Duration::from_millis(30), frame(&pong))
            .expect("pong");

        let rtt = conn.rtt().expect("measured");
        assert_eq!(rtt.latest, Duration::from_millis(30));
        assert_eq!(rtt.smoothed, Duration::from_millis(30));
        assert_eq!(conn.last_pong_tick(), Some(130));
        // Pongs raise no event of their own.
        assert!(drain(&mut conn).is_empty());

        // A pong nobody asked for is counted, not fatal.
        let stray = ServerMsg::Pong {
            nonce: nonce + 50,
            tick: 131,
        };
        conn.handle_frame(t0, frame(&stray)).expect("ignored");
        assert_eq!(conn.unmatched_pongs(), 1);
        assert_eq!(conn.state(), State::Joined);
    }

    #[test]
    fn inputs_get_increasing_sequence_numbers() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        for expected in 1..=3 {
            let (seq, bytes) = conn.input(&Walk { dx: 1, dy: -1 }).expect("input");
            assert_eq!(seq, expected);
            let ClientMsg::Input {
                seq: on_wire,
                intent,
            } = ClientMsg::decode(&bytes).expect("decodes")
            else {
                panic!("not an input");
            };
            assert_eq!(on_wire, expected);
            assert_eq!(
                intent.decode::<Walk>().expect("decodes"),
                Walk { dx: 1, dy: -1 }
            );
        }
        assert_eq!(conn.last_input_seq(), 3);
    }

    #[test]
    fn commands_need_a_joined_session() {
        let mut conn = Connection::new();
        assert!(matches!(conn.input(&1u8), Err(ConnectionError::NotJoined)));
        assert!(matches!(
            conn.ping(Instant::now()),
            Err(ConnectionError::NotJoined)
        ));

        let mut conn = joined(Instant::now());
        assert!(matches!(conn.chat(""), Err(ConnectionError::EmptyChat)));
        assert!(matches!(conn.chat(" \t "), Err(ConnectionError::EmptyChat)));
        assert!(matches!(
            conn.chat("two\nlines"),
            Err(ConnectionError::ChatControlCharacter)
        ));
        assert!(matches!(
            conn.chat(&"x".repeat(MAX_CHAT + 1)),
            Err(ConnectionError::TooLong { .. })
        ));
        // A refused command does not use up a sequence number.
        let too_big = vec![0u8; 4096];
        assert!(matches!(
            conn.input(&too_big),
            Err(ConnectionError::Payload(_))
        ));
        assert_eq!(conn.input(&1u8).expect("input").0, 1);

        conn.close();
        assert!(matches!(conn.chat("hi"), Err(ConnectionError::Closed)));
        assert_eq!(
            drain(&mut conn),
            vec![Event::Disconnected {
                reason: DisconnectReason::LocalClose
            }]
        );
    }

    #[test]
    fn refusal_during_handshake_is_an_error_event() {
        let t0 = Instant::now();
        let mut conn = Connection::new();
        conn.hello(&Hello::new("lobby")).expect("hello");
        conn.handle_frame(t0, frame(&ServerMsg::error(ErrorCode::RoomFull, "full")))
            .expect("error");
        let events = drain(&mut conn);
        assert_eq!(
            events,
            vec![Event::Error {
                code: ErrorCode::RoomFull as u16,
                message: "full".into()
            }]
        );
        assert_eq!(events[0].error_code(), Some(ErrorCode::RoomFull));
        assert_eq!(conn.state(), State::Ending);

        conn.handle_close(DisconnectReason::ServerClosed {
            code: Some(1000),
            reason: String::new(),
        });
        assert!(matches!(
            drain(&mut conn).as_slice(),
            [Event::Disconnected {
                reason: DisconnectReason::ServerClosed { .. }
            }]
        ));
        // The first reason stands.
        conn.handle_close(DisconnectReason::LocalClose);
        assert!(drain(&mut conn).is_empty());
    }

    #[test]
    fn unknown_error_codes_are_kept() {
        let mut conn = joined(Instant::now());
        let msg = ServerMsg::Error {
            code: 999,
            message: "new".into(),
        };
        conn.handle_frame(Instant::now(), frame(&msg))
            .expect("error");
        let events = drain(&mut conn);
        assert_eq!(events[0].error_code(), None);
        assert!(matches!(events[0], Event::Error { code: 999, .. }));
    }

    #[test]
    fn kicked_is_an_event_and_nothing_may_follow_it() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        conn.handle_frame(t0, frame(&ServerMsg::kicked(KickReason::Admin, "bye")))
            .expect("kicked");
        let events = drain(&mut conn);
        assert_eq!(
            events,
            vec![Event::Kicked {
                reason: KickReason::Admin as u16,
                message: "bye".into()
            }]
        );
        assert_eq!(events[0].kick_reason(), Some(KickReason::Admin));
        assert!(matches!(conn.input(&1u8), Err(ConnectionError::Closed)));

        let late = frame(&ServerMsg::Chat {
            from: 0,
            text: "late".into(),
        });
        assert_eq!(
            expect_violation(&mut conn, t0, late),
            ProtocolError::UnexpectedMessage {
                kind: "chat",
                state: State::Ending
            }
        );
    }

    #[test]
    fn undecodable_frame_breaks_the_connection() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        let err = expect_violation(&mut conn, t0, Bytes::from_static(&[0x91, 0x63]));
        assert_eq!(
            err,
            ProtocolError::Decode(DecodeError::UnknownTag { tag: 0x63 })
        );
        // Once closed, further frames are ignored.
        conn.handle_frame(t0, frame(&ServerMsg::Pong { nonce: 1, tick: 1 }))
            .expect("ignored");
        assert!(drain(&mut conn).is_empty());
    }

    #[test]
    fn mirror_violation_breaks_the_connection() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        let bad = Delta {
            tick: 101,
            updated: vec![entity(9, 0.0)],
            ..Delta::default()
        };
        assert_eq!(
            expect_violation(&mut conn, t0, frame(&ServerMsg::Delta(bad))),
            ProtocolError::Mirror(MirrorError::UpdateUnknown { tick: 101, id: 9 })
        );
    }

    #[test]
    fn delta_before_welcome_is_a_violation() {
        let t0 = Instant::now();
        let mut conn = Connection::new();
        conn.hello(&Hello::new("lobby")).expect("hello");
        let err = expect_violation(&mut conn, t0, frame(&ServerMsg::Delta(Delta::default())));
        assert_eq!(
            err,
            ProtocolError::UnexpectedMessage {
                kind: "delta",
                state: State::Handshaking
            }
        );
    }

    #[test]
    fn second_welcome_is_a_violation() {
        let t0 = Instant::now();
        let mut conn = joined(t0);
        expect_violation(&mut conn, t0, frame(&ServerMsg::Welcome(welcome())));
    }
}
