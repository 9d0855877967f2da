//! What a session decides about each thing its client sends: the handshake
//! checks, the rate limits, which messages go to the room, which are
//! answered in place, and which are refused with which code.
//!
//! No I/O and no clock. [`SessionRules::on_inbound`] is fed what the
//! transport read and the time it arrived and answers with a [`Decision`];
//! [`SessionRules::deadline`] says when the next timeout falls and
//! [`SessionRules::on_deadline`] whether it has. The async session
//! (`super`) carries the decisions out; tests step the rules by hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_protocol::{ClientMsg, ErrorCode, GameSchema, Hello, KickReason, RawValue};

use crate::config::ServerConfig;
use crate::frames::Inbound;
use crate::link::{CloseRequest, SessionLive};
use crate::metrics::end;
use crate::rate::Limiter;

/// The limits a session enforces, from the node's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLimits {
    /// For the `Hello`, and then for the room's answer to the join.
    pub handshake_timeout: Duration,
    /// How long a joined client may send no protocol message.
    pub idle_timeout: Duration,
    /// Messages (and WebSocket control frames) a second, acks aside.
    pub messages_per_second: u32,
    pub message_burst: u32,
    pub chat_per_second: u32,
    pub actions_per_second: u32,
    /// Acks come once a tick: their own limit is four a tick.
    pub tick_hz: u16,
}

impl RuleLimits {
    pub fn of(config: &ServerConfig) -> Self {
        Self {
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
            messages_per_second: config.messages_per_second,
            message_burst: config.message_burst,
            chat_per_second: config.chat_per_second,
            actions_per_second: config.actions_per_second,
            tick_hz: config.tick_hz,
        }
    }
}

/// What to do about one inbound event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing: a control frame within the rate.
    Nothing,
    /// The client's transport answered the outstanding probe.
    RoundTrip(Duration),
    /// A valid `Hello`: reserve a place in its room and join. Call
    /// [`SessionRules::join_sent`] once the room has the join, and
    /// [`SessionRules::joined`] once it welcomed the session.
    Join(Hello),
    /// An input for the room.
    Input { seq: u32, intent: RawValue },
    /// A chat line that passed the session's checks, for the room.
    Chat(String),
    /// A game action within its rate, for the room: it must not be lost,
    /// so the session waits for room in the room's queue.
    Action(RawValue),
    /// The client holds every part of `tick` (datagram baselines).
    Ack(u32),
    /// Answer a `Ping` with a `Pong` carrying this nonce, in place.
    Pong(u32),
    /// The session ends.
    End(End),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    ClientClosed,
    Transport(String),
    /// The client broke a rule; it gets this error and a close.
    Refused(ErrorCode, String),
    /// The client's transport broke its protocol (RFC 6455): it gets a
    /// `malformed` error saying what, and a close with 1002.
    Violation(String),
    IdleTimeout,
    Shutdown,
    /// The room or the writer ended it (kick, lag, failed write).
    ClosedByServer,
    /// Another node hosts the room: the client goes there with a seat.
    Redirected {
        url: String,
        seat: String,
    },
}

impl End {
    fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused(code, message.into())
    }

    /// The goodbye this ending gets. `joined` says whether the room had
    /// welcomed the session: `Kicked` is for players, an error for the rest.
    pub fn close_request(self, joined: bool) -> CloseRequest {
        match self {
            Self::ClientClosed => CloseRequest::normal(end::CLIENT_CLOSED),
            Self::Transport(_) => CloseRequest::normal(end::TRANSPORT_ERROR),
            Self::Refused(code, message) => CloseRequest::error(code, &message),
            Self::Violation(what) => CloseRequest::violation(&what),
            Self::IdleTimeout => {
                CloseRequest::kicked(KickReason::IdleTimeout, "no message for too long")
            }
            Self::Shutdown if joined => {
                CloseRequest::kicked(KickReason::Shutdown, "the server is shutting down")
            }
            Self::Shutdown => {
                CloseRequest::error(ErrorCode::ShuttingDown, "the server is shutting down")
            }
            Self::ClosedByServer => CloseRequest::normal(end::NORMAL),
            Self::Redirected { url, seat } => CloseRequest::redirect(&url, &seat),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Until `deadline`, the first message must be a `Hello`.
    AwaitingHello {
        deadline: Instant,
    },
    /// The room has until `deadline` to answer the join.
    Joining {
        deadline: Instant,
    },
    Joined,
}

/// One session's rules and the state they keep.
#[derive(Debug)]
pub struct SessionRules {
    limits: RuleLimits,
    schema: Arc<GameSchema>,
    live: Arc<SessionLive>,
    phase: Phase,
    /// When the client last sent a protocol message (control frames and
    /// probe answers come from its WebSocket layer, not from the client).
    last_heard: Instant,
    messages: Limiter,
    chat: Limiter,
    actions: Limiter,
    acks: Limiter,
}

impl SessionRules {
    /// The rules of a connection opened at `now`, whose probes `live`
    /// tracks.
    /// `schema` is the node's game, which a `Hello` naming a schema must
    /// match.
    pub fn new(
        limits: RuleLimits,
        schema: Arc<GameSchema>,
        live: Arc<SessionLive>,
        now: Instant,
    ) -> Self {
        let hz = u32::from(limits.tick_hz);
        Self {
            phase: Phase::AwaitingHello {
                deadline: now + limits.handshake_timeout,
            },
            last_heard: now,
            messages: Limiter::new(limits.messages_per_second, limits.message_burst, now),
            chat: Limiter::new(
                limits.chat_per_second,
                limits.chat_per_second.saturating_mul(2).max(5),
                now,
            ),
            actions: Limiter::new(
                limits.actions_per_second,
                limits.actions_per_second.saturating_mul(2).max(5),
                now,
            ),
            // Four a tick, two seconds of burst.
            acks: Limiter::new(hz * 4, hz * 8, now),
            limits,
            schema,
            live,
        }
    }

    /// Whether the room welcomed this session.
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// The room got the join at `now`: it has the handshake timeout to
    /// answer.
    pub fn join_sent(&mut self, now: Instant) {
        self.phase = Phase::Joining {
            deadline: now + self.limits.handshake_timeout,
        };
    }

    /// The room went away without answering the join.
    pub fn join_unanswered(&self) -> End {
        End::refused(
            ErrorCode::RoomBusy,
            "the room did not answer in time; try again",
        )
    }

    /// The room welcomed the session at `now`: the idle clock starts.
    pub fn joined(&mut self, now: Instant) {
        self.phase = Phase::Joined;
        self.last_heard = now;
    }

    /// When [`SessionRules::on_deadline`] should next be asked.
    pub fn deadline(&self) -> Instant {
        match self.phase {
            Phase::AwaitingHello { deadline } | Phase::Joining { deadline } => deadline,
            Phase::Joined => self.last_heard + self.limits.idle_timeout,
        }
    }

    /// The ending due at `now`, if a timeout has passed.
    pub fn on_deadline(&self, now: Instant) -> Option<End> {
        if now < self.deadline() {
            return None;
        }
        Some(match self.phase {
            Phase::AwaitingHello { .. } => End::refused(
                ErrorCode::HandshakeTimeout,
                "no Hello within the handshake timeout",
            ),
            Phase::Joining { .. } => self.join_unanswered(),
            Phase::Joined => End::IdleTimeout,
        })
    }

    /// Decides about one thing the transport read, at `now`.
    pub fn on_inbound(&mut self, inbound: Inbound, now: Instant) -> Decision {
        match inbound {
            Inbound::Frame(frame) => self.on_message(&frame, false, now),
            Inbound::Datagram(frame) => self.on_message(&frame, true, now),
            Inbound::ProbeAnswer(payload) => match self.live.probe_answered(&payload, now) {
                Some(rtt) => Decision::RoundTrip(rtt),
                // A pong that answers no probe is just another control frame.
                None => self.on_control_frame(now),
            },
            Inbound::Control => self.on_control_frame(now),
            Inbound::Unsupported(what) => Decision::End(End::refused(
                ErrorCode::UnsupportedFrame,
                format!("{what}s are not part of the protocol; send binary frames"),
            )),
            Inbound::TooLarge => Decision::End(End::refused(
                ErrorCode::FrameTooLarge,
                "frame exceeds the transport limit",
            )),
            Inbound::Violation(what) => Decision::End(End::Violation(what)),
            Inbound::Closed => Decision::End(End::ClientClosed),
            Inbound::Failed(e) => Decision::End(End::Transport(e)),
        }
    }

    /// Control frames carry no message, but each costs a read and an
    /// answer, so they use up the message rate.
    fn on_control_frame(&self, now: Instant) -> Decision {
        if self.messages.allow(now) {
            Decision::Nothing
        } else {
            Decision::End(End::refused(
                ErrorCode::RateLimited,
                "too many WebSocket control frames",
            ))
        }
    }

    fn on_message(&mut self, frame: &Bytes, via_datagram: bool, now: Instant) -> Decision {
        self.last_heard = now;
        match self.phase {
            Phase::AwaitingHello { .. } => self.on_first_message(frame, via_datagram, now),
            // The session reads nothing while it waits for the room, so
            // this is for messages sent after the Hello.
            Phase::Joining { .. } | Phase::Joined => {
                self.on_later_message(frame, via_datagram, now)
            }
        }
    }

    fn on_first_message(&mut self, frame: &Bytes, via_datagram: bool, now: Instant) -> Decision {
        if via_datagram {
            return Decision::End(End::refused(
                ErrorCode::HandshakeRequired,
                "send Hello on the control stream first",
            ));
        }
        // The decoder already refused other protocol versions.
        match ClientMsg::decode(frame) {
            Err(e) => Decision::End(End::Refused(e.code(), e.to_string())),
            Ok(ClientMsg::Hello(hello)) if !hello.has_valid_room() => Decision::End(End::refused(
                ErrorCode::InvalidRoomName,
                "room names are 1 to 64 characters of A-Z a-z 0-9 _ . : -",
            )),
            Ok(ClientMsg::Hello(hello))
                if hello
                    .schema
                    .as_ref()
                    .is_some_and(|theirs| *theirs != *self.schema) =>
            {
                Decision::End(self.wrong_game(hello.schema.as_ref()))
            }
            Ok(ClientMsg::Hello(hello)) => {
                self.phase = Phase::Joining {
                    deadline: now + self.limits.handshake_timeout,
                };
                Decision::Join(hello)
            }
            Ok(other) => Decision::End(End::refused(
                ErrorCode::HandshakeRequired,
                format!("expected Hello, got {}", other.kind()),
            )),
        }
    }

    /// The refusal of a client built for another game than `self.schema`.
    fn wrong_game(&self, theirs: Option<&GameSchema>) -> End {
        let ours = &self.schema;
        let theirs = theirs.map_or_else(String::new, |t| {
            format!(
                "; the client was built for {:?} (schema {:016x})",
                t.game, t.fingerprint
            )
        });
        End::refused(
            ErrorCode::WrongGame,
            format!(
                "this server runs {:?} (schema {:016x}){theirs}",
                ours.game, ours.fingerprint
            ),
        )
    }

    fn on_later_message(&self, frame: &Bytes, via_datagram: bool, now: Instant) -> Decision {
        let msg = match ClientMsg::decode(frame) {
            Ok(msg) => msg,
            Err(e) => return Decision::End(End::Refused(e.code(), e.to_string())),
        };
        let is_ack = matches!(msg, ClientMsg::Ack { .. });
        if via_datagram && !is_ack {
            return Decision::End(End::refused(
                ErrorCode::UnsupportedFrame,
                format!("{} in a datagram; only Ack may be", msg.kind()),
            ));
        }
        let limiter = if is_ack { &self.acks } else { &self.messages };
        if !limiter.allow(now) {
            return Decision::End(End::refused(ErrorCode::RateLimited, "too many messages"));
        }
        match msg {
            ClientMsg::Hello(_) => Decision::End(End::refused(
                ErrorCode::AlreadyJoined,
                "this session has already joined",
            )),
            ClientMsg::Input { seq, intent } => Decision::Input { seq, intent },
            ClientMsg::Chat { text } => {
                if !self.chat.allow(now) {
                    return Decision::End(End::refused(
                        ErrorCode::RateLimited,
                        "too many chat messages",
                    ));
                }
                match tessera_sim::check_chat(&text) {
                    Ok(()) => Decision::Chat(text),
                    Err(e) => Decision::End(End::Refused(ErrorCode::InvalidChat, e.to_string())),
                }
            }
            ClientMsg::Action { action } => {
                if self.actions.allow(now) {
                    Decision::Action(action)
                } else {
                    Decision::End(End::refused(ErrorCode::RateLimited, "too many actions"))
                }
            }
            ClientMsg::Ack { tick } => Decision::Ack(tick),
            ClientMsg::Ping { nonce } => Decision::Pong(nonce),
        }
    }
}

#[cfg(test)]
mod tests;
