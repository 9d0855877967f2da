//! Hosting rooms: the registry that finds or opens a room by name, and the
//! tick threads that own and step them.
//!
//! Sessions talk to a room only through its bounded command queue; the room
//! talks to sessions only through their bounded outbound queues. Neither
//! side ever waits for the other.

mod host;
mod registry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};

use bytes::Bytes;
use tessera_protocol::{ErrorCode, RawValue, Welcome};
use tessera_sim::ClientId;
use tokio::sync::{mpsc, oneshot};

pub use registry::RoomRegistry;

use crate::session::SessionControl;

/// What a room needs to reach one session.
#[derive(Debug, Clone)]
pub struct SessionLink {
    pub id: ClientId,
    pub outbound: mpsc::Sender<Bytes>,
    pub control: Arc<SessionControl>,
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
    closed: AtomicBool,
}

impl RoomHandle {
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

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
