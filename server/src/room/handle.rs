//! A room as the rest of the server sees it: its name, its bounded command
//! queue, and the numbers its tick thread publishes after every tick.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::load::RoomLoad;
use crate::link::RoomCommand;
use crate::link::report::RoomSummary;

/// A room as the rest of the server sees it: a name, a command queue and a
/// few live numbers. The room itself lives on its tick thread.
#[derive(Debug)]
pub struct RoomHandle {
    pub id: u64,
    pub name: String,
    commands: Sender<RoomCommand>,
    /// Sessions that joined or are joining; the room closes at zero.
    pub(super) members: AtomicUsize,
    /// The room's latest completed tick (for pongs).
    pub(super) tick: AtomicU32,
    pub(super) players: AtomicUsize,
    pub(super) entities: AtomicUsize,
    /// Published by the tick thread about once a second.
    pub(super) load: Mutex<RoomLoad>,
    pub(super) closed: AtomicBool,
    /// The client address whose join opened the room.
    pub(super) opener: IpAddr,
    /// The channels the room subscribes to.
    pub channels: Vec<String>,
}

impl RoomHandle {
    pub(super) fn new(
        id: u64,
        name: &str,
        opener: IpAddr,
        commands: Sender<RoomCommand>,
        channels: Vec<String>,
    ) -> Self {
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
            opener,
            channels,
        }
    }

    /// Queues a command without waiting; gives it back when the queue is
    /// full or the room has closed.
    pub fn send(&self, command: RoomCommand) -> Result<(), TrySendError<RoomCommand>> {
        self.commands.try_send(command)
    }

    /// Queues a command, waiting while the queue is full; gives it back
    /// if the room has closed.
    pub async fn send_waiting(
        &self,
        command: RoomCommand,
    ) -> Result<(), tokio::sync::mpsc::error::SendError<RoomCommand>> {
        self.commands.send(command).await
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
            node: None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
