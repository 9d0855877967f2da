//! Everything a session and a room say to each other, in one leaf module
//! that both sides import (and the admin API, which asks rooms questions):
//!
//! - [`SessionLink`]: what a room holds to reach one session: its bounded
//!   outbound queue, its [`SessionControl`], its [`SessionLive`] numbers
//!   and, over QUIC, its [`DatagramLink`].
//! - [`RoomCommand`]: what sessions (and the admin API) send a room, and
//!   the [`Refusal`]s and [`report`]s it answers with.
//! - [`control`]: [`CloseRequest`] and [`SessionControl`], how anyone ends
//!   a session with the right last frame and close code.
//! - [`live`]: a connection's address, transport and round trip.
//!
//! Sessions talk to a room only through its bounded command queue; the room
//! talks to sessions only through their bounded outbound queues and their
//! control handle. Neither side ever waits for the other.

pub mod control;
pub mod live;
pub mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use tessera_protocol::{ErrorCode, RawValue, Welcome};
use tessera_sim::{ClientId, PlayerIdentity};
use tokio::sync::{mpsc, oneshot};

pub use control::{CloseRequest, SessionControl};
pub use live::SessionLive;

use crate::frames::DatagramSink;
use crate::identity::resume::ResumeKey;
use report::RoomDetail;

/// What a room needs to reach one session.
#[derive(Debug, Clone)]
pub struct SessionLink {
    pub id: ClientId,
    pub outbound: mpsc::Sender<Bytes>,
    pub control: Arc<SessionControl>,
    /// The connection's live numbers (address, transport, round trip).
    pub live: Arc<SessionLive>,
    /// Set when state goes out as datagrams (QUIC).
    pub datagrams: Option<DatagramLink>,
}

/// A session's datagram path as its room sees it: where to send parts, and
/// the greatest tick the client acknowledged (written by the session, read
/// by the tick thread before each tick).
#[derive(Debug, Clone)]
pub struct DatagramLink {
    pub sink: Arc<dyn DatagramSink>,
    pub acked: Arc<AtomicU32>,
}

impl DatagramLink {
    pub fn new(sink: Arc<dyn DatagramSink>) -> Self {
        Self {
            sink,
            acked: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Takes the client's acknowledgement of `tick` while the room is at
    /// `room_tick`. A tick the room has not reached is ignored: kept as the
    /// maximum, it would hide every true acknowledgement after it. The
    /// room publishes its tick after sending it, so one ahead is allowed.
    pub fn acknowledge(&self, tick: u32, room_tick: u32) {
        if tick <= room_tick.saturating_add(1) {
            self.acked.fetch_max(tick, Ordering::Relaxed);
        }
    }
}

/// A request the room refused, with the code the client receives.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Messages from sessions to their room's tick thread.
#[derive(Debug)]
pub enum RoomCommand {
    Join {
        link: SessionLink,
        /// Who joins, and how it can come back. Boxed: a join is rare, and
        /// every command pays for the largest one.
        request: Box<JoinRequest>,
        options: RawValue,
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    },
    Input {
        client: ClientId,
        seq: u32,
        intent: RawValue,
    },
    Chat {
        client: ClientId,
        text: String,
    },
    /// A one-shot game action.
    Action {
        client: ClientId,
        action: RawValue,
    },
    /// The session ended. `hold`: its connection dropped (rather than the
    /// player leaving, or being sent away), so its player is held for the
    /// grace window.
    Leave {
        client: ClientId,
        hold: bool,
    },
    /// The room and every player in it, for the admin API.
    Inspect {
        reply: oneshot::Sender<RoomDetail>,
    },
    /// One entity's replicated components (`None`: no such entity).
    InspectEntity {
        id: u32,
        reply: oneshot::Sender<Option<EntityState>>,
    },
    /// Removes a player; it receives `Kicked` (`admin`) with `reason`.
    /// Answers whether the player was in the room.
    Kick {
        client: ClientId,
        reason: String,
        reply: oneshot::Sender<bool>,
    },
    /// A message on a channel the room subscribes to, from a room of this
    /// node or another.
    Channel(tessera_sim::channels::ChannelMessage),
    /// A server chat line (`from` 0) to every player (an operator's
    /// broadcast).
    Announce {
        text: String,
    },
    /// Closes the room: every player receives `Kicked` with `kick`
    /// (`room_closed` for an operator, `room_moved` when another node took
    /// the room) and `reason`, and the name is free again. Answers how many
    /// were told.
    Close {
        reason: String,
        kick: tessera_protocol::KickReason,
        reply: oneshot::Sender<usize>,
    },
}

/// Who a joining session is and how it can come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Who the player is, as its token says (or anonymous). Ignored when
    /// resuming: the held player is who it was.
    pub player: PlayerIdentity,
    /// The key of the held player this session takes back (its
    /// `Hello.resume`), if any.
    pub resuming: Option<ResumeKey>,
    /// The key this session's player can later be resumed with.
    pub resume_key: ResumeKey,
    /// That key as a signed token, for the `Welcome` (`None`: the node
    /// holds no dropped players).
    pub resume_token: Option<String>,
    /// What the player saved last time, as the store (or this node) has
    /// it, for the game's join hook.
    pub saved: Option<crate::persist::record::PlayerState>,
    /// The `Hello.version` of the client: version 1 gets no moves.
    pub protocol_version: u16,
}

/// An entity's replicated state, owned, as the tick thread read it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityState {
    /// The session controlling it, if a player does.
    pub player: Option<ClientId>,
    /// Each component it has.
    pub components: Vec<InspectedComponent>,
}

/// One component of an inspected entity.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectedComponent {
    pub wire_id: u8,
    pub name: &'static str,
    /// The encoded wire value.
    pub bytes: Vec<u8>,
    /// What it stands for, as the game's schema reads it (MessagePack);
    /// `None` if the bytes do not decode as the component.
    pub readable: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::DatagramRefused;

    #[derive(Debug)]
    struct NoPath;

    impl DatagramSink for NoPath {
        fn max_size(&self) -> Option<usize> {
            None
        }
        fn try_send(&self, _: bytes::Bytes) -> Result<(), DatagramRefused> {
            Err(DatagramRefused::Closed)
        }
    }

    #[test]
    fn an_ack_from_the_future_does_not_hide_later_acks() {
        let link = DatagramLink::new(Arc::new(NoPath));
        link.acknowledge(u32::MAX, 100);
        link.acknowledge(1_000, 100);
        assert_eq!(link.acked.load(Ordering::Relaxed), 0, "ahead of the room");
        link.acknowledge(101, 100);
        link.acknowledge(99, 100);
        assert_eq!(
            link.acked.load(Ordering::Relaxed),
            101,
            "one ahead, and never back"
        );
    }
}
