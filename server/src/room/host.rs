//! A hosted room: the sim's [`Room`] with its command inbox, the links to
//! its sessions, and everything one tick does around the simulation
//! (commands in, acks read, frames handed to sessions, laggards dropped,
//! numbers published, admin questions answered).
//!
//! Every decision and every published number runs on the `now`
//! [`HostedRoom::step`] is given, so tests step it by hand
//! (`host/tests.rs`) and the tick threads (`super::workers`) step it on
//! their schedule. It reads the clock only to time its own tick.

mod inspect;
mod join;
mod persisting;
mod reconnects;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tessera_protocol::{ErrorCode, KickReason};
use tessera_sim::channels::ChannelMessage;
use tessera_sim::{ActionError, ChatError, ClientId, FrameKind, InputError, Outgoing, Room};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{self, Receiver};

use super::handle::RoomHandle;
use super::load::LoadWindow;
use crate::config::ServerConfig;
use crate::frames::DatagramRefused;
use crate::link::{CloseRequest, Refusal, RoomCommand, SessionLink};
use crate::metrics::{self, RoomGauges, TickMetrics};

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stepped {
    /// The room ticked.
    Ticked,
    /// An operator closed the room: its players were told, and it must not
    /// tick again.
    CloseRequested,
}

struct HostedSession {
    link: SessionLink,
    /// Since when its outbound queue has been full.
    lagging_since: Option<Instant>,
}

/// A room together with everything its tick thread needs.
pub(crate) struct HostedRoom {
    handle: Arc<RoomHandle>,
    room: Room,
    inbox: Receiver<RoomCommand>,
    sessions: HashMap<ClientId, HostedSession>,
    /// Sessions whose state goes out as datagrams: their acks are read
    /// before every tick.
    datagram_sessions: Vec<ClientId>,
    out: Vec<Outgoing>,
    max_commands_per_tick: usize,
    max_lag: Duration,
    tick_hz: u32,
    /// The tick period, for counting overruns.
    period: Duration,
    load: LoadWindow,
    gauges: RoomGauges,
    /// Bytes handed to sessions this tick.
    bytes_out: u64,
    /// An operator closed the room; its thread drops it instead of ticking.
    close_requested: bool,
    /// Where the game's channel messages go (none: nowhere, in unit tests).
    channel_out: Option<mpsc::Sender<ChannelMessage>>,
    /// Players who can come back, and those held until they do.
    reconnects: reconnects::Reconnects,
    /// Where its saves, events and checkpoints go (none: not persisted).
    persistence: Option<persisting::RoomPersistence>,
    /// It closed because another node owns it now.
    moved: bool,
}

pub(crate) use persisting::{Restored, RoomPersistence, restore};

impl HostedRoom {
    pub(super) fn new(
        handle: Arc<RoomHandle>,
        room: Room,
        inbox: Receiver<RoomCommand>,
        config: &ServerConfig,
        now: Instant,
    ) -> Self {
        Self {
            handle,
            room,
            inbox,
            sessions: HashMap::new(),
            datagram_sessions: Vec::new(),
            out: Vec::new(),
            max_commands_per_tick: config.room_queue,
            max_lag: Duration::from_millis(config.max_lag_ms),
            tick_hz: u32::from(config.tick_hz),
            period: config.tick_period(),
            load: LoadWindow::new(config.tick_hz, now),
            gauges: RoomGauges::new(),
            bytes_out: 0,
            close_requested: false,
            channel_out: None,
            reconnects: reconnects::Reconnects::new(Duration::from_millis(
                config.reconnect_grace_ms,
            )),
            persistence: None,
            moved: false,
        }
    }

    /// Persists the room's records and checkpoints through `persistence`.
    pub(super) fn persist_with(&mut self, persistence: RoomPersistence) {
        self.persistence = Some(persistence);
    }

    /// Where the messages the game publishes on channels go: a bounded
    /// queue to the task that fans them out to the subscribed rooms.
    pub(super) fn carry_channels_to(&mut self, out: mpsc::Sender<ChannelMessage>) {
        self.channel_out = Some(out);
    }

    /// Hands the tick's channel messages on without waiting: a full queue
    /// drops them (counted), as channels promise at most once.
    fn carry_published(&mut self) {
        let published = self.room.take_published();
        let Some(out) = &self.channel_out else {
            return;
        };
        for message in published {
            if out.try_send(message).is_err() {
                ::metrics::counter!(metrics::cluster::CHANNEL_DROPS).increment(1);
            }
        }
    }

    pub(super) fn handle(&self) -> &RoomHandle {
        &self.handle
    }

    /// No session is linked and no player is in the world.
    pub(super) fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.room.player_count() == 0 && self.reconnects.is_empty()
    }

    /// Applies the queued commands, then (unless they closed the room)
    /// runs one tick at `now` and hands its frames to the sessions.
    pub(super) fn step(&mut self, now: Instant, metrics: &TickMetrics) -> Stepped {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "room",
            room = %self.handle.name,
            room_id = self.handle.id,
            tick = self.room.tick() + 1
        );
        let _entered = span.enter();
        self.apply_commands(now);
        if self.close_requested {
            return Stepped::CloseRequested;
        }
        self.release_expired(now);
        self.read_acks();
        self.out.clear();
        self.room.step(&mut self.out);
        self.carry_published();
        self.persist_tick();
        self.deliver(now, metrics);
        self.drop_laggards(now);
        self.publish(now, started, metrics);
        Stepped::Ticked
    }

    /// Hands the room what each datagram client acknowledged since the
    /// last tick.
    fn read_acks(&mut self) {
        for &client in &self.datagram_sessions {
            if let Some(link) = self
                .sessions
                .get(&client)
                .and_then(|s| s.link.datagrams.as_ref())
            {
                let acked = link.acked.load(Ordering::Relaxed);
                self.room.acknowledge(client, acked);
            }
        }
    }

    /// Publishes the tick's numbers: to the handle (pongs, admin API) and
    /// to the metrics.
    fn publish(&mut self, now: Instant, started: Instant, metrics: &TickMetrics) {
        let players = self.room.player_count();
        let entities = self.room.entity_count();
        self.handle.tick.store(self.room.tick(), Ordering::Relaxed);
        self.handle.players.store(players, Ordering::Relaxed);
        self.handle.entities.store(entities, Ordering::Relaxed);
        self.gauges.players.set(players as f64);
        self.gauges.entities.set(entities as f64);
        if self.room.tick().is_multiple_of(self.tick_hz) {
            for view in self.room.clients().iter() {
                metrics.aoi_visible.record(view.visible() as f64);
            }
        }
        let took = started.elapsed();
        metrics.tick_duration.record(took.as_secs_f64());
        if took > self.period {
            metrics.overruns.increment(1);
        }
        self.load.record(took, std::mem::take(&mut self.bytes_out));
        if let Some(load) = self.load.publish(now) {
            *self.handle.load.lock().unwrap_or_else(|p| p.into_inner()) = load;
        }
    }

    /// Ends every session with the request `end` makes, and refuses the
    /// joins still queued: the room is going away. Returns how many
    /// sessions were ended.
    pub(super) fn end_all(&mut self, end: impl Fn() -> CloseRequest) -> usize {
        let ended = self.sessions.len();
        self.datagram_sessions.clear();
        for (_, s) in self.sessions.drain() {
            s.link.control.close(end());
        }
        while let Ok(command) = self.inbox.try_recv() {
            if let RoomCommand::Join { reply, .. } = command {
                let _ = reply.send(Err(Refusal::new(
                    ErrorCode::RoomBusy,
                    "the room closed; join again to open a new one",
                )));
            }
        }
        ended
    }

    fn apply_commands(&mut self, now: Instant) {
        for _ in 0..self.max_commands_per_tick {
            match self.inbox.try_recv() {
                Ok(command) => self.apply(command, now),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
            if self.close_requested {
                return;
            }
        }
    }

    fn apply(&mut self, command: RoomCommand, now: Instant) {
        match command {
            RoomCommand::Join {
                link,
                request,
                options,
                reply,
            } => self.join(link, *request, &options, reply, now),
            RoomCommand::Input {
                client,
                seq,
                intent,
            } => match self.room.input(client, seq, &intent) {
                Ok(()) | Err(InputError::UnknownClient(_)) => {}
                Err(e) => self.reject(client, ErrorCode::InvalidInput, &e.to_string()),
            },
            RoomCommand::Chat { client, text } => match self.room.chat(client, &text) {
                Ok(()) | Err(ChatError::UnknownClient(_)) => {}
                // The room, not the sender, is over its chat budget.
                Err(ChatError::Backlog) => metrics::rejected("chat_backlog"),
                Err(e) => self.reject(client, ErrorCode::InvalidChat, &e.to_string()),
            },
            RoomCommand::Action { client, action } => match self.room.action(client, &action) {
                Ok(()) | Err(ActionError::UnknownClient(_)) => {}
                Err(e @ ActionError::Backlog(_)) => {
                    self.reject(client, ErrorCode::RateLimited, &e.to_string());
                }
                Err(e) => self.reject(client, ErrorCode::InvalidAction, &e.to_string()),
            },
            RoomCommand::Leave { client, hold } => self.session_ended(client, hold, now),
            RoomCommand::Inspect { reply } => {
                let _ = reply.send(self.detail(now));
            }
            RoomCommand::InspectEntity { id, reply } => {
                let _ = reply.send(self.entity(id));
            }
            RoomCommand::Kick {
                client,
                reason,
                reply,
            } => {
                let _ = reply.send(self.kick(client, &reason));
            }
            RoomCommand::Channel(message) => {
                if let Err(e) = self.room.receive(&message.channel, &message.payload) {
                    tracing::debug!(error = %e, "channel message not handled");
                }
            }
            RoomCommand::Announce { text } => {
                if self.room.broadcast_chat(0, &text).is_err() {
                    metrics::rejected("chat_backlog");
                }
            }
            RoomCommand::Close {
                reason,
                kick,
                reply,
            } => {
                self.moved = kick == KickReason::RoomMoved;
                let told = self.end_all(|| CloseRequest::kicked(kick, &reason));
                tracing::info!(players = told, reason, "closing the room");
                self.close_requested = true;
                let _ = reply.send(told);
            }
        }
    }

    /// Removes a player on an operator's request, telling it why.
    fn kick(&mut self, client: ClientId, reason: &str) -> bool {
        let Some(s) = self.forget(client) else {
            return false;
        };
        self.room.leave(client);
        tracing::info!(session = client, reason, "player kicked by an operator");
        s.link
            .control
            .close(CloseRequest::kicked(KickReason::Admin, reason));
        true
    }

    /// Removes a client that sent something the game refuses, telling it why.
    fn reject(&mut self, client: ClientId, code: ErrorCode, message: &str) {
        self.room.leave(client);
        metrics::rejected(code.as_str());
        if let Some(s) = self.forget(client) {
            tracing::info!(
                session = client,
                code = code.as_str(),
                message,
                "client input refused"
            );
            s.link.control.close(CloseRequest::error(code, message));
        }
    }

    fn deliver(&mut self, now: Instant, metrics: &TickMetrics) {
        let mut gone = Vec::new();
        for out in self.out.drain(..) {
            let Some(session) = self.sessions.get_mut(&out.client) else {
                continue;
            };
            let len = out.frame.len() as u64;
            if out.kind == FrameKind::Datagram {
                let Some(link) = &session.link.datagrams else {
                    continue;
                };
                match link.sink.try_send(out.frame) {
                    Ok(()) => {
                        self.bytes_out += len;
                        session.lagging_since = None;
                    }
                    Err(DatagramRefused::Full) => {
                        metrics.datagram_drops.increment(1);
                        session.lagging_since.get_or_insert(now);
                    }
                    // The path shrank: later parts are cut smaller, and they
                    // repeat what this one carried.
                    Err(DatagramRefused::TooLarge { max }) => {
                        self.room.set_max_datagram(out.client, max);
                    }
                    Err(DatagramRefused::Closed) => gone.push(out.client),
                }
                continue;
            }
            match session.link.outbound.try_send(out.frame) {
                Ok(()) => {
                    self.bytes_out += len;
                    if out.kind == FrameKind::Delta {
                        session.lagging_since = None;
                    }
                }
                Err(TrySendError::Full(_)) => {
                    // Only state tells lag: chat and events come after the
                    // delta, so a reader that keeps up may still miss one,
                    // and a client that stops reading misses its deltas (at
                    // least the keepalive) soon enough.
                    match out.kind {
                        FrameKind::Delta | FrameKind::Datagram => {
                            metrics.delta_drops.increment(1);
                            self.room.delivery_failed(out.client);
                            session.lagging_since.get_or_insert(now);
                        }
                        FrameKind::Chat => metrics.chat_drops.increment(1),
                        FrameKind::Event => metrics.event_drops.increment(1),
                    }
                }
                // The session is gone. Its Leave normally follows, but
                // it may have been dropped by a full queue: go on as for a
                // dropped connection now.
                Err(TrySendError::Closed(_)) => gone.push(out.client),
            }
        }
        for client in gone {
            self.session_ended(client, true, now);
        }
    }

    /// Drops the room's handle on a session that left.
    fn forget(&mut self, client: ClientId) -> Option<HostedSession> {
        self.datagram_sessions.retain(|c| *c != client);
        self.reconnects.disconnected(client);
        self.sessions.remove(&client)
    }

    fn drop_laggards(&mut self, now: Instant) {
        let max_lag = self.max_lag;
        let laggards: Vec<ClientId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.lagging_since.is_some_and(|t| now - t >= max_lag))
            .map(|(id, _)| *id)
            .collect();
        for client in laggards {
            self.room.leave(client);
            if let Some(s) = self.forget(client) {
                tracing::info!(
                    session = client,
                    "client too slow to read its deltas, disconnecting"
                );
                s.link.control.close(CloseRequest::kicked(
                    KickReason::TooSlow,
                    "too slow reading state updates",
                ));
            }
        }
    }
}
