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
//! → `Closed`. A `Redirect` answering the hello (a cluster node that does
//! not host the room, PROTOCOL.md §10.5) closes the connection at once,
//! with [`DisconnectReason::Redirected`]: the attempt is over, and the
//! caller connects to its `url` with a new connection whose hello carries
//! its `seat` ([`crate::redirect::JoinRoute`] keeps count). Anything the server sends that the protocol does not allow in
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
    ChatTextProblem, MAX_CHAT, MAX_CLIENT_FRAME, MAX_RESUME_TOKEN, MAX_SEAT, MAX_TOKEN,
    check_chat_text,
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
    /// `Hello` sent; waiting for `Welcome`, `Redirect` or `Error`.
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
            ("seat", &hello.seat, MAX_SEAT),
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
                self.world = WorldView::from_tick(welcome.tick).with_motion(welcome.motion);
                self.welcome = Some(welcome.clone());
                self.state = State::Joined;
                self.events.push_back(Event::Welcome(welcome));
            }
            // Not a refusal: the server closes next, and whoever drives this
            // connection connects to the node it names.
            (State::Handshaking, ServerMsg::Redirect { url, seat }) => {
                self.close_with(DisconnectReason::Redirected { url, seat });
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
mod tests;
