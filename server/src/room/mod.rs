//! Hosting rooms: the registry that finds or opens a room by name, and the
//! tick threads that own and step them.
//!
//! Sessions talk to a room only through its bounded command queue; the room
//! talks to sessions only through their bounded outbound queues. Neither
//! side ever waits for the other.

mod host;
mod load;
mod registry;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tessera_protocol::{ErrorCode, RawValue, Welcome};
use tessera_sim::ClientId;
use tokio::sync::{mpsc, oneshot};

pub use load::RoomLoad;
pub use registry::{Admission, RoomRegistry};

use crate::admin::report::{RoomDetail, RoomSummary};
use crate::session::{SessionControl, SessionLive};
use crate::transport::DatagramSink;

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
    Leave {
        client: ClientId,
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
    /// Closes the room: every player receives `Kicked` (`room_closed`) with
    /// `reason`, and the name is free again. Answers how many were told.
    Close {
        reason: String,
        reply: oneshot::Sender<usize>,
    },
}

/// An entity's replicated state, owned, as the tick thread read it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityState {
    /// The session controlling it, if a player does.
    pub player: Option<ClientId>,
    /// `(wire id, component name, encoded value)` per component it has.
    pub components: Vec<(u8, &'static str, Vec<u8>)>,
}

/// A room as the rest of the server sees it: a name, a command queue and a
/// few live numbers. The room itself lives on its tick thread.
#[derive(Debug)]
pub struct RoomHandle {
    pub id: u64,
    pub name: String,
    commands: SyncSender<RoomCommand>,
    /// Sessions that joined or are joining; the room closes at zero.
    members: AtomicUsize,
    /// The room's latest completed tick (for pongs).
    tick: AtomicU32,
    players: AtomicUsize,
    entities: AtomicUsize,
    /// Published by the tick thread about once a second.
    load: Mutex<RoomLoad>,
    closed: AtomicBool,
}

impl RoomHandle {
    fn new(id: u64, name: &str, commands: SyncSender<RoomCommand>) -> Self {
        Self {
            id,
            name: name.to_owned(),
            commands,
            members: AtomicUsize::new(1),
            tick: AtomicU32::new(0),
            players: AtomicUsize::new(0),
            entities: AtomicUsize::new(0),
            load: Mutex::new(RoomLoad::default()),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues a command without waiting; gives it back when the queue is
    /// full or the room has closed.
    pub fn send(&self, command: RoomCommand) -> Result<(), TrySendError<RoomCommand>> {
        self.commands.try_send(command)
    }

    pub fn tick(&self) -> u32 {
        self.tick.load(Ordering::Relaxed)
    }

    pub fn players(&self) -> usize {
        self.players.load(Ordering::Relaxed)
    }

    pub fn entities(&self) -> usize {
        self.entities.load(Ordering::Relaxed)
    }

    /// The room's numbers as its tick thread last published them.
    pub fn summary(&self) -> RoomSummary {
        let load = *self.load.lock().unwrap_or_else(|p| p.into_inner());
        RoomSummary {
            name: self.name.clone(),
            id: self.id,
            tick: self.tick(),
            players: self.players(),
            entities: self.entities(),
            tick_p50_ms: load.tick_p50_ms,
            tick_p99_ms: load.tick_p99_ms,
            bytes_out_per_s: load.bytes_out_per_s,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::DatagramRefused;

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
