//! The name → room table: finds a room by name, opening it on its first
//! join, and closes it when its tick thread finds nobody in it.
//!
//! The table owns the tick threads; they share only its [`Names`], through
//! which they close rooms, so nothing points back at the table.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use tessera_protocol::{ErrorCode, GameSchema};
use tessera_sim::channels::ChannelMessage;
use tessera_sim::{Game, Room};

use super::handle::RoomHandle;
use super::host::{HostedRoom, Restored, RoomPersistence, restore};
use super::names::{Names, OpenRooms};
use super::workers::TickWorkers;
use crate::config::ServerConfig;
use crate::link::{Refusal, RoomCommand};
use crate::persist::Persistence;
use crate::persist::record::Checkpoint;

/// Whether the node takes new joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Joins are welcome.
    Open,
    /// An operator started a drain: no new joins, the rooms keep running.
    Draining,
    /// The node is shutting down.
    Stopped,
}

/// All rooms of this node.
pub struct RoomTable {
    names: Arc<Names>,
    game: Arc<dyn Game>,
    /// What clients of `game` say in `Hello.schema`.
    schema: Arc<GameSchema>,
    config: Arc<ServerConfig>,
    workers: TickWorkers,
    next_id: AtomicU64,
    /// An [`Admission`], as its index.
    admission: AtomicU8,
    /// Where rooms' channel messages go (see [`RoomTable::new`]).
    channel_out: tokio::sync::mpsc::Sender<ChannelMessage>,
    /// Where rooms' saves, events and checkpoints go (none: nowhere).
    persistence: Option<Arc<Persistence>>,
}

/// How a room that is not open yet opens.
#[derive(Debug, Default)]
pub struct Opening {
    /// The checkpoints it may restart from, newest first: the first one
    /// that can be read is used.
    pub checkpoints: Vec<Checkpoint>,
    /// This node's lease epoch on it (cluster mode; 0 alone).
    pub epoch: u64,
}

impl std::fmt::Debug for RoomTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomTable")
            .field("game", &self.game.name())
            .field("rooms", &self.len())
            .finish_non_exhaustive()
    }
}

impl RoomTable {
    /// A table with no rooms yet, and its tick threads started. The
    /// messages its rooms publish on channels go to `channel_out`, for a
    /// task to fan out ([`RoomTable::deliver`] here, or across a cluster).
    pub fn new(
        game: Arc<dyn Game>,
        schema: GameSchema,
        config: Arc<ServerConfig>,
        channel_out: tokio::sync::mpsc::Sender<ChannelMessage>,
    ) -> Self {
        let names = Arc::new(Names::default());
        Self {
            workers: TickWorkers::start(
                config.tick_thread_count(),
                config.tick_period(),
                Arc::clone(&names),
            ),
            names,
            game,
            schema: Arc::new(schema),
            config,
            next_id: AtomicU64::new(1),
            admission: AtomicU8::new(Admission::Open as u8),
            channel_out,
            persistence: None,
        }
    }

    /// Rooms persist through `persistence` from now on.
    pub fn persist_with(&mut self, persistence: Arc<Persistence>) {
        self.persistence = Some(persistence);
    }

    /// Whether rooms persist (and joins should read saved state).
    pub fn persistence(&self) -> Option<&Arc<Persistence>> {
        self.persistence.as_ref()
    }

    /// Hands `message` to every open room that subscribes to its channel.
    pub fn deliver(&self, message: &ChannelMessage) {
        for room in self.rooms() {
            if room.channels.contains(&message.channel) {
                let _ = room.send(RoomCommand::Channel(message.clone()));
            }
        }
    }

    /// Counts a session from `address` in to room `name`, opening the room
    /// if needed (as `opening` says). Pair every success with
    /// [`RoomTable::release`].
    pub fn reserve(
        &self,
        name: &str,
        address: IpAddr,
        opening: Opening,
    ) -> Result<Arc<RoomHandle>, Refusal> {
        if let Some(handle) = self.join_if_open(name, address)? {
            return Ok(handle);
        }
        // Built outside the lock: a game's setup may take a while, and
        // every join and admin question of the node waits on the lock.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let seed = std::collections::hash_map::RandomState::new().hash_one((id, name));
        let (room, restored) = self.build_room(name, seed, &opening.checkpoints)?;
        let mut rooms = self.names.lock();
        // Another session may have opened it meanwhile: join that one.
        if let Some(handle) = rooms.by_name.get(name) {
            handle.members.fetch_add(1, Ordering::AcqRel);
            return Ok(Arc::clone(handle));
        }
        self.may_open(&rooms, address)?;
        // Tokio's channel grows block by block up to its bound: a quiet
        // room holds a few slots, not `room_queue` of them.
        let (commands, inbox) = tokio::sync::mpsc::channel(self.config.room_queue);
        let channels = room.channels().map(str::to_owned).collect();
        let handle = Arc::new(RoomHandle::new(id, name, address, commands, channels));
        let mut hosted = HostedRoom::new(
            Arc::clone(&handle),
            room,
            inbox,
            &self.config,
            Instant::now(),
        );
        hosted.carry_channels_to(self.channel_out.clone());
        if let Some(persistence) = &self.persistence {
            hosted.persist_with(RoomPersistence::new(
                Arc::clone(persistence),
                self.game.name(),
                opening.epoch,
                self.config.checkpoint_interval_ticks(),
                id,
            ));
        }
        if let Some(restored) = restored {
            hosted.hold_restored(restored, Instant::now());
        }
        self.workers
            .add(hosted)
            .map_err(|()| Refusal::new(ErrorCode::ShuttingDown, "room threads have stopped"))?;
        rooms.insert(Arc::clone(&handle));
        tracing::info!(room = name, room_id = id, "room opened");
        Ok(handle)
    }

    /// Counts a session from `address` in to room `name` if it is open
    /// here; `None` if it is not (and `address` may open one more room).
    /// Pair every `Some` with [`RoomTable::release`]. Once counted in, the
    /// room stays open until the session leaves: what the join reads
    /// meanwhile (the player's save) is read against this room.
    pub fn join_if_open(
        &self,
        name: &str,
        address: IpAddr,
    ) -> Result<Option<Arc<RoomHandle>>, Refusal> {
        self.check_admission()?;
        self.join_open(name, address)
    }

    fn check_admission(&self) -> Result<(), Refusal> {
        match self.admission() {
            Admission::Open => Ok(()),
            Admission::Draining => Err(Refusal::new(
                ErrorCode::ShuttingDown,
                "this node is draining and takes no new joins; join another node",
            )),
            Admission::Stopped => Err(Refusal::new(
                ErrorCode::ShuttingDown,
                "the server is shutting down",
            )),
        }
    }

    /// A new room, from the newest of `checkpoints` that can be read
    /// (else fresh, and the failures logged: a room must open).
    fn build_room(
        &self,
        name: &str,
        seed: u64,
        checkpoints: &[Checkpoint],
    ) -> Result<(Room, Option<Restored>), Refusal> {
        let config = self.config.room_config(seed);
        for checkpoint in checkpoints {
            match restore(self.game.as_ref(), config.clone(), checkpoint) {
                Ok((room, players)) => return Ok((room, Some(players))),
                Err(e) => tracing::error!(
                    room = name,
                    tick = checkpoint.tick,
                    error = %e,
                    "cannot restore the room from its checkpoint; opening it fresh"
                ),
            }
        }
        let room = Room::new(self.game.as_ref(), config)
            .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
        Ok((room, None))
    }

    /// Counts a session in to room `name` if it is open; `None` if it is
    /// not (and `address` may open one more room).
    fn join_open(&self, name: &str, address: IpAddr) -> Result<Option<Arc<RoomHandle>>, Refusal> {
        let rooms = self.names.lock();
        if let Some(handle) = rooms.by_name.get(name) {
            handle.members.fetch_add(1, Ordering::AcqRel);
            return Ok(Some(Arc::clone(handle)));
        }
        self.may_open(&rooms, address)?;
        Ok(None)
    }

    /// Whether `address` may open a room now.
    fn may_open(&self, rooms: &OpenRooms, address: IpAddr) -> Result<(), Refusal> {
        if rooms.opened_by(address) >= self.config.max_rooms_per_ip {
            return Err(Refusal::new(
                ErrorCode::ServerFull,
                format!(
                    "your address has opened its maximum of {} rooms on this node; join an open room",
                    self.config.max_rooms_per_ip
                ),
            ));
        }
        if rooms.by_name.len() >= self.config.max_rooms {
            return Err(Refusal::new(
                ErrorCode::ServerFull,
                format!(
                    "this node hosts its maximum of {} rooms",
                    self.config.max_rooms
                ),
            ));
        }
        Ok(())
    }

    /// Counts a session out of a room it reserved.
    pub fn release(&self, handle: &RoomHandle) {
        handle.members.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn get(&self, name: &str) -> Option<Arc<RoomHandle>> {
        self.names.lock().by_name.get(name).cloned()
    }

    pub fn rooms(&self) -> Vec<Arc<RoomHandle>> {
        self.names.lock().by_name.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.names.lock().by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most rooms this node hosts.
    pub fn max_rooms(&self) -> usize {
        self.config.max_rooms
    }

    /// The most client connections this node takes.
    pub fn max_connections(&self) -> usize {
        self.config.max_connections
    }

    pub fn game_name(&self) -> &'static str {
        self.game.name()
    }

    /// The schema of the game the rooms run.
    pub fn schema(&self) -> &Arc<GameSchema> {
        &self.schema
    }

    pub fn admission(&self) -> Admission {
        match self.admission.load(Ordering::Acquire) {
            0 => Admission::Open,
            1 => Admission::Draining,
            _ => Admission::Stopped,
        }
    }

    /// Refuses new joins from now on while the rooms keep running (an
    /// operator's drain). Returns false if the node was already draining or
    /// stopping.
    pub fn drain(&self) -> bool {
        self.admission
            .compare_exchange(
                Admission::Open as u8,
                Admission::Draining as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Refuses new joins from now on (shutdown).
    pub fn stop_accepting(&self) {
        self.admission
            .store(Admission::Stopped as u8, Ordering::Release);
    }

    /// Tick threads running (0 after `stop`).
    pub fn tick_threads(&self) -> usize {
        self.workers.len()
    }

    /// Stops the tick threads after the rooms' last tick.
    pub fn stop(&self) {
        self.stop_accepting();
        self.workers.stop();
    }
}
