//! A room: one game world stepped one tick at a time.
//!
//! The room is sans-IO. The host calls [`Room::join`], [`Room::input`],
//! [`Room::chat`] and [`Room::leave`] as client messages arrive, then
//! [`Room::step`] once per tick, and delivers the frames it returns. If a
//! client's delta cannot be delivered (its queue is full), the host calls
//! [`Room::delivery_failed`] and the room sends that client a catch-up delta
//! later instead of assuming it knows what it never got.

use std::collections::VecDeque;
use std::sync::Arc;

use bevy_ecs::prelude::*;
use bytes::Bytes;
use tessera_protocol::limits::{ChatTextProblem, MAX_CHAT, check_chat_text};
use tessera_protocol::{ErrorCode, PayloadError, RawValue, ServerMsg, Welcome};

use crate::boxed_resource::Boxed;
use crate::channels::{ChannelError, ChannelMessage, Subscription};
use crate::components::{ClientId, Held, NetId, Player, PlayerId, Replicated, RoomRng, TickInfo};
use crate::config::{CHAT_BACKLOG_TICKS, ConfigError, RoomConfig};
use crate::datagram::{DatagramView, DeliveryMode};
use crate::delta::{DeltaConfig, Outbox, build_deltas};
use crate::game::{Game, InputHook, JoinContext, JoinHook, LeaveHook, PlayerIdentity, RoomBuilder};
use crate::interest::{ClientView, Clients, InterestConfig, update_interest};
use crate::journal::{Journal, RoomRecord};
use crate::messages::{
    ACTION_BACKLOG_TICKS, ActionError, ActionHook, ActionQueue, GameEvents, dispatch_events,
};
use crate::passes::RoomPasses;
use crate::replication::{self, ReplicationState, assign_net_ids, encode_pieces};
use crate::room_state::RoomState;
use crate::schedule::{TickSet, new_schedule};
use crate::snapshot::{PersistRegistry, SavedState, SnapshotError};
use crate::spatial_grid::SpatialGrid;
use crate::stats::TickStats;

/// Default cap on entities entering one client's view per tick.
const MAX_ENTERS_PER_TICK: usize = 1024;

/// A frame for one client.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub client: ClientId,
    pub frame: Bytes,
    pub kind: FrameKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// State for the reliable path (a `Delta`, or a datagram client's full
    /// state): report a failed delivery with [`Room::delivery_failed`].
    Delta,
    /// A `DeltaPart` to send as one unreliable datagram. Its loss needs no
    /// report: the client will not acknowledge the tick, and later parts
    /// repeat what it missed.
    Datagram,
    /// A chat line; losing one loses only that line.
    Chat,
    /// A game event, after the tick's delta; losing one loses only it.
    Event,
}

/// What the room keeps of a player whose connection dropped, to resume it
/// ([`Room::hold`], [`Room::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldPlayer {
    /// Its entity.
    pub net_id: u32,
    /// The last input of it that was applied.
    pub last_input_seq: u32,
}

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JoinError {
    #[error("the room is full ({0} players)")]
    RoomFull(usize),
    #[error("client {0} has already joined")]
    AlreadyJoined(ClientId),
    #[error("{0}")]
    Refused(String),
    #[error("the game takes no players (it registered no join hook)")]
    NoJoinHook,
    #[error("no entity with net id {0}")]
    NoSuchEntity(u32),
    /// The player's saved state is not one this game's rooms can read.
    #[error("the player's saved state cannot be read: {0}")]
    SavedState(String),
}

impl JoinError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RoomFull(_) => ErrorCode::RoomFull,
            Self::AlreadyJoined(_) => ErrorCode::AlreadyJoined,
            Self::Refused(_) | Self::NoSuchEntity(_) => ErrorCode::JoinRejected,
            Self::NoJoinHook | Self::SavedState(_) => ErrorCode::Internal,
        }
    }
}

/// Why an input was refused.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("client {0} is not in this room")]
    UnknownClient(ClientId),
    #[error("the game takes no input")]
    NoInputType,
    #[error("invalid intent: {0}")]
    Invalid(#[from] PayloadError),
}

/// Why a chat line was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    #[error("client {0} is not in this room")]
    UnknownClient(ClientId),
    #[error("chat text is empty")]
    Empty,
    #[error("chat text is over {MAX_CHAT} bytes")]
    TooLong,
    /// Control characters, line separators or bidirectional overrides
    /// (`tessera_protocol::limits::is_forbidden_in_chat`).
    #[error("chat text has control, invisible or bidirectional characters, or line separators")]
    ControlCharacter,
    /// The room has more chat lines waiting than it sends in
    /// `CHAT_BACKLOG_TICKS` ticks: the line is dropped. Not the sender's
    /// fault alone; the room is too chatty.
    #[error("the room's chat is backed up; line dropped")]
    Backlog,
}

/// What a chat line must be to reach the room: some visible text, at most
/// `MAX_CHAT` bytes, no control characters, line separators or
/// bidirectional overrides.
pub fn check_chat(text: &str) -> Result<(), ChatError> {
    check_chat_text(text).map_err(|problem| match problem {
        ChatTextProblem::Empty => ChatError::Empty,
        ChatTextProblem::TooLong => ChatError::TooLong,
        ChatTextProblem::ForbiddenCharacter => ChatError::ControlCharacter,
    })
}

pub struct Room {
    world: World,
    schedule: Schedule,
    passes: RoomPasses,
    config: RoomConfig,
    game_name: &'static str,
    join_hook: Option<JoinHook>,
    leave_hook: Option<LeaveHook>,
    input_hook: Option<InputHook>,
    action_hook: Option<ActionHook>,
    subscriptions: Vec<Subscription>,
    actions: ActionQueue,
    pub(crate) persist: Arc<PersistRegistry>,
    tick: u32,
    /// Chat frames waiting to be sent, oldest first.
    broadcasts: VecDeque<Bytes>,
    /// Player saves since the host last took the records.
    saves: Vec<RoomRecord>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("game", &self.game_name)
            .field("tick", &self.tick)
            .field("players", &self.player_count())
            .finish_non_exhaustive()
    }
}

impl Room {
    /// A new, empty room of `game`.
    /// The game's own world size ([`Game::world_size`]) wins over the
    /// config's.
    pub fn new(game: &dyn Game, config: RoomConfig) -> Result<Self, ConfigError> {
        let mut config = config;
        if let Some(world_size) = game.world_size() {
            config.world_size = world_size;
        }
        config.validate()?;
        let mut world = World::new();
        let mut schedule = new_schedule();
        world.insert_resource(TickInfo {
            tick: 1,
            dt: config.dt(),
        });
        world.insert_resource(RoomRng::from_seed(config.seed));
        world.insert_resource(GameEvents::new(config.max_events_per_tick));
        world.insert_resource(Journal::new(config.max_events_per_tick));
        let mut passes = RoomPasses::default();
        let mut builder = RoomBuilder::new(&mut world, &mut schedule, &mut passes);
        game.setup(&mut builder);
        let RoomBuilder {
            components,
            persist,
            join,
            leave,
            input,
            action,
            subscriptions,
            ..
        } = builder;
        // The passes the game added during setup find it when they first run.
        world.insert_resource(Boxed::new(RoomState {
            clients: Clients::default(),
            outbox: Outbox::default(),
            grid: SpatialGrid::new(config.world_size, config.effective_cell_size()),
            replication: ReplicationState::new(components),
            stats: TickStats::default(),
            delta: DeltaConfig {
                keepalive_ticks: config.keepalive_ticks,
            },
            interest: InterestConfig {
                radius: config.aoi_radius,
                margin: config.aoi_margin,
                max_enters_per_tick: MAX_ENTERS_PER_TICK,
            },
        }));
        passes.add(&mut world, TickSet::Track, assign_net_ids);
        passes.add(&mut world, TickSet::Replicate, encode_pieces);
        passes.add(&mut world, TickSet::Interest, update_interest);
        passes.add(&mut world, TickSet::Deltas, build_deltas);
        Ok(Self {
            world,
            schedule,
            passes,
            config,
            game_name: game.name(),
            join_hook: join,
            leave_hook: leave,
            input_hook: input,
            action_hook: action,
            subscriptions,
            actions: ActionQueue::default(),
            persist: Arc::new(persist),
            tick: 0,
            broadcasts: VecDeque::new(),
            saves: Vec::new(),
        })
    }

    /// Adds a player: the game spawns its entity, which gets a net id at
    /// once. Its first delta (next step) holds everything it can see.
    pub fn join(&mut self, client: ClientId, options: &RawValue) -> Result<Welcome, JoinError> {
        self.join_with(client, options, DeliveryMode::Reliable)
    }

    /// [`Room::join`] for a client that receives its state as `mode` says:
    /// datagram clients get `DeltaPart`s against the tick they last
    /// acknowledged ([`Room::acknowledge`]).
    pub fn join_with(
        &mut self,
        client: ClientId,
        options: &RawValue,
        mode: DeliveryMode,
    ) -> Result<Welcome, JoinError> {
        self.join_as(client, &PlayerIdentity::anonymous(client), options, mode)
    }

    /// [`Room::join_with`] for the player `identity` names (the server's
    /// verified token), which the game's join hook sees.
    pub fn join_as(
        &mut self,
        client: ClientId,
        identity: &PlayerIdentity,
        options: &RawValue,
        mode: DeliveryMode,
    ) -> Result<Welcome, JoinError> {
        self.join_saved(client, identity, options, mode, None)
    }

    /// [`Room::join_as`] for a player that kept `saved` from its last
    /// session (the bytes of a [`RoomRecord::PlayerSaved`]), which the
    /// game's join hook receives ([`JoinContext::saved`]).
    pub fn join_saved(
        &mut self,
        client: ClientId,
        identity: &PlayerIdentity,
        options: &RawValue,
        mode: DeliveryMode,
        saved: Option<&[u8]>,
    ) -> Result<Welcome, JoinError> {
        self.check_can_join(client)?;
        let hook = self.join_hook.clone().ok_or(JoinError::NoJoinHook)?;
        let saved: Option<SavedState> = saved
            .map(|bytes| self.decode_player_state(bytes))
            .transpose()
            .map_err(|e: SnapshotError| JoinError::SavedState(e.to_string()))?;
        let context = JoinContext {
            client,
            player: &identity.player,
            display_name: identity.display_name.as_deref(),
            options,
            saved: saved.as_ref(),
        };
        let entity =
            hook(&mut self.world, context).map_err(|refused| JoinError::Refused(refused.0))?;
        let id = self.next_net_id();
        self.world.entity_mut(entity).insert((
            Replicated,
            Player { client },
            PlayerId(identity.player.clone()),
        ));
        replication::register_net_id(&mut self.world, entity, id);
        Ok(self.admit(client, entity, id, mode))
    }

    /// Puts a client in control of an existing entity (one restored from a
    /// snapshot, say) instead of spawning a new one.
    pub fn attach(&mut self, client: ClientId, net_id: u32) -> Result<Welcome, JoinError> {
        self.check_can_join(client)?;
        let entity = self.entity_of(net_id)?;
        self.world
            .entity_mut(entity)
            .remove::<Held>()
            .insert(Player { client });
        Ok(self.admit(client, entity, net_id, DeliveryMode::Reliable))
    }

    fn entity_of(&self, net_id: u32) -> Result<Entity, JoinError> {
        let replication = self.replication();
        replication
            .slot_of(net_id)
            .and_then(|slot| replication.entity(slot))
            .ok_or(JoinError::NoSuchEntity(net_id))
    }

    /// The client's connection dropped, and the server keeps its player for
    /// a while: the entity stays in the world (the other players see no
    /// change, and game systems go on with it) and gets [`Held`]; the
    /// client's view goes. `None` if the client was not in the room.
    pub fn hold(&mut self, client: ClientId) -> Option<HeldPlayer> {
        let last_input_seq = self.clients().get(client)?.last_input_seq;
        let entity = self.clients_mut().remove(client)?;
        let net_id = self.world.get::<NetId>(entity).map_or(0, |n| n.0);
        self.world.entity_mut(entity).insert(Held);
        // Saved now, as it was when its player last controlled it: a held
        // entity is not saved again (its player may be playing elsewhere
        // meanwhile, and a later save of this one would win over that).
        if self.config.save_players {
            self.save_player(entity, true);
        }
        Some(HeldPlayer {
            net_id,
            last_input_seq,
        })
    }

    /// A held player comes back as `client`: it controls the same entity
    /// again, its first delta holds everything it can see, and inputs
    /// numbered up to `held.last_input_seq` stay stale.
    pub fn resume(
        &mut self,
        client: ClientId,
        held: HeldPlayer,
        mode: DeliveryMode,
    ) -> Result<Welcome, JoinError> {
        self.check_can_join(client)?;
        let entity = self.entity_of(held.net_id)?;
        if self.world.get::<Held>(entity).is_none() {
            return Err(JoinError::NoSuchEntity(held.net_id));
        }
        self.world
            .entity_mut(entity)
            .remove::<Held>()
            .insert(Player { client });
        let welcome = self.admit(client, entity, held.net_id, mode);
        if let Some(view) = self.clients_mut().get_mut(client) {
            view.last_input_seq = held.last_input_seq;
            view.sent_ack = held.last_input_seq;
        }
        Ok(welcome)
    }

    /// A held player's time is up: it leaves as [`Room::leave`] would (the
    /// game's leave hook runs), but is not saved again: it was saved when
    /// it was held (and one restored from a snapshot, never controlled
    /// here, is not this room's to save). False if `net_id` is no held
    /// player.
    pub fn release(&mut self, net_id: u32) -> bool {
        let Ok(entity) = self.entity_of(net_id) else {
            return false;
        };
        if self.world.entity_mut(entity).take::<Held>().is_none() {
            return false;
        }
        self.run_leave_hook(entity, false);
        true
    }

    fn check_can_join(&self, client: ClientId) -> Result<(), JoinError> {
        let clients = self.clients();
        if clients.get(client).is_some() {
            return Err(JoinError::AlreadyJoined(client));
        }
        if clients.len() >= self.config.max_players {
            return Err(JoinError::RoomFull(self.config.max_players));
        }
        Ok(())
    }

    fn next_net_id(&mut self) -> u32 {
        self.state_mut().replication.allocate_net_id()
    }

    fn admit(
        &mut self,
        client: ClientId,
        entity: Entity,
        net_id: u32,
        mode: DeliveryMode,
    ) -> Welcome {
        let mut view = ClientView::new(client, entity);
        match mode {
            DeliveryMode::Datagram { max_datagram } => {
                view.datagram = Some(Box::new(DatagramView::new(max_datagram)));
            }
            DeliveryMode::Reliable => view.compact = true,
            DeliveryMode::ReliableWithoutMoves => {}
        }
        let motion = if view.compact {
            self.replication().registry().motion_wire_id()
        } else {
            0
        };
        self.clients_mut().insert(view);
        Welcome {
            session_id: client,
            entity_id: net_id,
            tick_rate: self.config.tick_hz,
            tick: self.tick,
            aoi_radius: self.config.aoi_radius.round() as u32,
            aoi_margin: self.config.aoi_margin.round() as u32,
            resume: None,
            motion,
        }
    }

    /// Removes a player and lets the game clean up (by default its entity is
    /// despawned). Returns false if the client was not in the room.
    pub fn leave(&mut self, client: ClientId) -> bool {
        let Some(entity) = self.clients_mut().remove(client) else {
            return false;
        };
        self.run_leave_hook(entity, true);
        true
    }

    /// Lets the game clean up after a player (by default its entity is
    /// despawned).
    /// Saves the player first (`save`) unless it was saved when it was
    /// held. An entity the hook keeps is no player's any more.
    fn run_leave_hook(&mut self, entity: Entity, save: bool) {
        if save && self.config.save_players {
            self.save_player(entity, true);
        }
        match &self.leave_hook {
            Some(hook) => hook(&mut self.world, entity),
            None => {
                self.world.despawn(entity);
            }
        }
        if let Ok(mut kept) = self.world.get_entity_mut(entity) {
            kept.remove::<PlayerId>();
        }
    }

    /// Queues a save of the player whose entity `entity` is.
    fn save_player(&mut self, entity: Entity, left: bool) {
        let Some(player) = self.world.get::<PlayerId>(entity).map(|p| p.0.clone()) else {
            return;
        };
        match self.encode_player_state(entity) {
            Ok(state) => self.saves.push(RoomRecord::PlayerSaved {
                player,
                state,
                left,
            }),
            // A component the game registered failed to encode: a bug of
            // the game, counted where the game can see it.
            Err(_) => self.world.resource_mut::<Journal>().add_dropped(1),
        }
    }

    /// Saves the players whose turn it is this tick (see
    /// `RoomConfig::player_save_interval_ticks`).
    fn save_players_due(&mut self) {
        let interval = self.config.player_save_interval_ticks;
        if !self.config.save_players || interval == 0 {
            return;
        }
        let turn = self.tick % interval;
        let mut query = self
            .world
            .query_filtered::<(Entity, &NetId), (With<PlayerId>, Without<Held>)>();
        let due: Vec<Entity> = query
            .iter(&self.world)
            .filter(|(_, id)| id.0 % interval == turn)
            .map(|(e, _)| e)
            .collect();
        for entity in due {
            self.save_player(entity, false);
        }
    }

    /// Saves every connected player now (the room is closing; held ones
    /// were saved when they were held).
    pub fn save_all_players(&mut self) {
        if !self.config.save_players {
            return;
        }
        let mut query = self
            .world
            .query_filtered::<Entity, (With<PlayerId>, Without<Held>)>();
        let players: Vec<Entity> = query.iter(&self.world).collect();
        for entity in players {
            self.save_player(entity, true);
        }
    }

    /// The records to persist since the last call: player saves and the
    /// game's journal events. The host takes them after every step.
    pub fn take_records(&mut self) -> Vec<RoomRecord> {
        let mut records = std::mem::take(&mut self.saves);
        let tick = self.tick;
        self.world
            .resource_mut::<Journal>()
            .take(tick, &mut records);
        records
    }

    /// The host could not queue `n` records: the game sees the count in
    /// [`Journal::dropped`].
    pub fn records_dropped(&mut self, n: u64) {
        self.world.resource_mut::<Journal>().add_dropped(n);
    }

    /// The held players (after a restore: every player of the snapshot),
    /// by player id.
    pub fn held_players(&mut self) -> Vec<(String, HeldPlayer)> {
        let mut query = self
            .world
            .query_filtered::<(&PlayerId, &NetId), With<Held>>();
        query
            .iter(&self.world)
            .map(|(player, net_id)| {
                (
                    player.0.clone(),
                    HeldPlayer {
                        net_id: net_id.0,
                        last_input_seq: 0,
                    },
                )
            })
            .collect()
    }

    /// Applies a client's intent. The latest intent before a step wins.
    /// Inputs with a sequence number not above the last one applied are
    /// stale (duplicated or reordered) and ignored. Before the first, the
    /// last applied is 0, so an input numbered 0 is never applied
    /// (PROTOCOL.md §4: clients number inputs from 1).
    pub fn input(
        &mut self,
        client: ClientId,
        seq: u32,
        intent: &RawValue,
    ) -> Result<(), InputError> {
        let view = self
            .clients()
            .get(client)
            .ok_or(InputError::UnknownClient(client))?;
        if seq <= view.last_input_seq {
            return Ok(());
        }
        let entity = view.entity;
        let hook = self.input_hook.as_ref().ok_or(InputError::NoInputType)?;
        hook(&mut self.world, entity, intent)?;
        if let Some(view) = self.clients_mut().get_mut(client) {
            view.last_input_seq = seq;
        }
        Ok(())
    }

    /// Queues a one-shot action from `client`, decoded as the game's action
    /// type; it is applied at a coming tick (see [`RoomBuilder::on_action`]).
    pub fn action(&mut self, client: ClientId, action: &RawValue) -> Result<(), ActionError> {
        if self.clients().get(client).is_none() {
            return Err(ActionError::UnknownClient(client));
        }
        let hook = self.action_hook.as_ref().ok_or(ActionError::NoActionType)?;
        let backlog = self.config.max_actions_per_tick * ACTION_BACKLOG_TICKS;
        self.actions.push(hook, client, action, backlog)
    }

    /// Queues a chat line from `client` for everyone in the room.
    pub fn chat(&mut self, client: ClientId, text: &str) -> Result<(), ChatError> {
        let entity = self
            .clients()
            .get(client)
            .ok_or(ChatError::UnknownClient(client))?
            .entity;
        check_chat(text)?;
        let from = self.world.get::<NetId>(entity).map_or(0, |n| n.0);
        self.broadcast_chat(from, text)
    }

    /// The channels this room subscribes to.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.iter().map(|s| s.channel.as_str())
    }

    /// The messages the game published on channels in the last tick, for
    /// the host to carry to the subscribed rooms.
    pub fn take_published(&mut self) -> Vec<ChannelMessage> {
        self.world.resource_mut::<GameEvents>().take_published()
    }

    /// Hands a message on `channel` to the game's handler, now (call it
    /// between ticks).
    pub fn receive(&mut self, channel: &str, payload: &RawValue) -> Result<(), ChannelError> {
        let Some(subscription) = self.subscriptions.iter().find(|s| s.channel == channel) else {
            return Err(ChannelError::NotSubscribed(channel.to_owned()));
        };
        let subscription = subscription.clone();
        subscription.deliver(&mut self.world, payload)
    }

    /// Queues a chat line for everyone, from net id `from` (0 = the server).
    /// Lines go out in order, at most `max_chat_per_tick` a tick.
    pub fn broadcast_chat(&mut self, from: u32, text: &str) -> Result<(), ChatError> {
        if self.broadcasts.len() >= self.config.max_chat_per_tick * CHAT_BACKLOG_TICKS {
            return Err(ChatError::Backlog);
        }
        let msg = ServerMsg::Chat {
            from,
            text: tessera_protocol::truncate(text.to_owned(), MAX_CHAT),
        };
        self.broadcasts.push_back(Bytes::from(msg.encode()));
        Ok(())
    }

    /// Simulates one tick and appends every frame to send to `out`.
    pub fn step(&mut self, out: &mut Vec<Outgoing>) {
        let tick = self.tick.wrapping_add(1);
        self.clients_mut().compact();
        self.world.resource_mut::<TickInfo>().tick = tick;
        self.state_mut().replication.begin_tick(tick);
        *self.stats_mut() = TickStats {
            tick,
            clients: self.player_count() as u32,
            ..TickStats::default()
        };
        if let Some(hook) = &self.action_hook {
            let applied =
                self.actions
                    .apply_tick(hook, &mut self.world, self.config.max_actions_per_tick);
            self.stats_mut().actions = applied as u32;
        }
        self.schedule.run(&mut self.world);
        self.passes.run(&mut self.world);
        self.tick = tick;
        self.save_players_due();
        self.world.clear_trackers();
        if tick.is_multiple_of(1024)
            && let Some(check) = self.world.check_change_ticks()
        {
            // The room owns its schedule and passes (they are not in the
            // world's `Schedules`), so it tells them itself.
            self.schedule.check_change_ticks(check);
            self.passes.check_change_ticks(check);
        }
        // Between steps, changes (joins, despawns) belong to the next tick.
        self.world.resource_mut::<TickInfo>().tick = tick.wrapping_add(1);
        let entities = self.replication().len() as u32;
        self.stats_mut().entities = entities;

        // State first, then the game's events, then chat: when a client's
        // queue is short of room, chat is what waits, not the deltas.
        let outbox = &mut self.state_mut().outbox;
        let buffer = Bytes::from(std::mem::take(&mut outbox.buffer));
        for (client, range, kind) in outbox.frames.drain(..) {
            out.push(Outgoing {
                client,
                frame: buffer.slice(range),
                kind,
            });
        }
        let events = dispatch_events(&mut self.world, out);
        self.stats_mut().event_frames = events as u32;
        self.state_mut().replication.clear_recently_untracked();
        let lines = self.broadcasts.len().min(self.config.max_chat_per_tick);
        for frame in self.broadcasts.drain(..lines) {
            for view in self.world.resource::<Boxed<RoomState>>().clients.iter() {
                out.push(Outgoing {
                    client: view.id,
                    frame: frame.clone(),
                    kind: FrameKind::Chat,
                });
            }
        }
    }

    /// The last delta for `client` was not delivered: roll its view back so
    /// the next delta brings it up to date.
    pub fn delivery_failed(&mut self, client: ClientId) {
        if let Some(view) = self.clients_mut().get_mut(client) {
            view.roll_back();
        }
    }

    /// A datagram client holds the whole state of `tick`: later parts may
    /// be built against it. Ticks from the future, and acknowledgements of
    /// reliable clients, are ignored.
    pub fn acknowledge(&mut self, client: ClientId, tick: u32) {
        let now = self.tick;
        if let Some(dg) = self
            .clients_mut()
            .get_mut(client)
            .and_then(|v| v.datagram.as_deref_mut())
            && tick <= now
        {
            dg.acknowledge(tick);
        }
    }

    /// Changes the largest datagram a datagram client's parts may take
    /// (the path's MTU changed).
    pub fn set_max_datagram(&mut self, client: ClientId, bytes: usize) {
        if let Some(dg) = self
            .clients_mut()
            .get_mut(client)
            .and_then(|v| v.datagram.as_deref_mut())
        {
            dg.max_datagram = bytes;
        }
    }

    /// Number of completed ticks.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    pub fn game_name(&self) -> &'static str {
        self.game_name
    }

    pub fn player_count(&self) -> usize {
        self.clients().len()
    }

    /// Replicated entities in the world.
    pub fn entity_count(&self) -> usize {
        self.replication().len()
    }

    /// Counters of the last step.
    pub fn stats(&self) -> &TickStats {
        &self.state().stats
    }

    pub fn clients(&self) -> &Clients {
        &self.state().clients
    }

    fn clients_mut(&mut self) -> &mut Clients {
        &mut self.state_mut().clients
    }

    fn replication(&self) -> &ReplicationState {
        &self.state().replication
    }

    fn stats_mut(&mut self) -> &mut TickStats {
        &mut self.state_mut().stats
    }

    fn state(&self) -> &RoomState {
        self.world.resource::<Boxed<RoomState>>()
    }

    fn state_mut(&mut self) -> &mut RoomState {
        self.world.resource_mut::<Boxed<RoomState>>().into_inner()
    }

    /// The replicated components of the entity clients know as `net_id`,
    /// as `(wire id, encoded value)` pairs.
    pub fn wire_state(&self, net_id: u32) -> Option<crate::replication::WireValues<'_>> {
        let replication = self.replication();
        let slot = replication.slot_of(net_id)?;
        replication.wire_state(slot).map(|(_, values)| values)
    }

    /// The encoded value `bytes` of component `wire_id`, as a person reads
    /// it (the game's [`tessera_protocol::WireComponent::readable`]).
    pub fn readable(&self, wire_id: u8, bytes: &[u8]) -> Option<RawValue> {
        self.replication().registry().readable(wire_id, bytes)
    }

    /// The game's schema as its clients know it: its name and the
    /// fingerprint of its replicated components.
    pub fn schema(&self) -> tessera_protocol::GameSchema {
        tessera_protocol::GameSchema::new(self.game_name, &self.replicated_components())
    }

    /// Wire ids and names of the replicated components.
    pub fn replicated_components(&self) -> Vec<(u8, &'static str)> {
        self.replication().registry().iter().collect()
    }

    /// The world, for games and tests to inspect.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The world, for games and tests to change between steps.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    pub(crate) fn set_tick(&mut self, tick: u32) {
        self.tick = tick;
        self.world.resource_mut::<TickInfo>().tick = tick.wrapping_add(1);
    }
}
