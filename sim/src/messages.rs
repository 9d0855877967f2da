//! Game messages: one-shot actions from a client to its room, and game
//! events from the room to clients.
//!
//! An intent ([`crate::Intent`]) says what a player keeps wanting, and the
//! latest one wins. An action says something to do once (fire, use, buy):
//! the room keeps every action in arrival order, applies at most
//! `RoomConfig::max_actions_per_tick` of one client's at the start of a
//! tick, and keeps the rest for the next ticks. An event tells clients
//! something that is not replicated state ("you scored"): systems queue it
//! in [`GameEvents`], and the room sends it once, after that tick's delta.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bevy_ecs::prelude::*;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_protocol::{PayloadError, RawValue, ServerMsg};

use crate::boxed_resource::Boxed;
use crate::channels::{ChannelMessage, is_valid_channel_name};
use crate::components::{ClientId, NetId};
use crate::room::{FrameKind, Outgoing};
use crate::room_state::RoomState;

/// Who sent an action, handed to the game's action handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionContext {
    pub client: ClientId,
    /// The player's entity.
    pub entity: Entity,
}

/// Why the room refused an action.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("client {0} is not in this room")]
    UnknownClient(ClientId),
    #[error("the game takes no actions")]
    NoActionType,
    #[error("invalid action: {0}")]
    Invalid(#[from] PayloadError),
    /// The client has more actions waiting than the room applies in
    /// `ACTION_BACKLOG_TICKS` ticks.
    #[error("more than {0} actions are waiting to be applied")]
    Backlog(usize),
}

/// How many ticks' worth of a client's actions may wait before new ones
/// are refused.
pub const ACTION_BACKLOG_TICKS: usize = 8;

type Decoded = Box<dyn Any + Send + Sync>;
type DecodeFn = dyn Fn(&RawValue) -> Result<Decoded, PayloadError> + Send + Sync;
type ApplyFn = dyn Fn(&mut World, ActionContext, Decoded) + Send + Sync;

/// The game's action type, as the room sees it: a decoder from the wire and
/// the handler that applies a decoded action.
#[derive(Clone)]
pub(crate) struct ActionHook {
    decode: Arc<DecodeFn>,
    apply: Arc<ApplyFn>,
}

impl ActionHook {
    pub(crate) fn new<A: DeserializeOwned + Send + Sync + 'static>(
        handler: impl Fn(&mut World, ActionContext, A) + Send + Sync + 'static,
    ) -> Self {
        Self {
            decode: Arc::new(|raw| Ok(Box::new(raw.decode::<A>()?) as Decoded)),
            apply: Arc::new(move |world, ctx, decoded| {
                if let Ok(action) = decoded.downcast::<A>() {
                    handler(world, ctx, *action);
                }
            }),
        }
    }
}

/// Actions waiting for their tick, in arrival order.
#[derive(Default)]
pub(crate) struct ActionQueue {
    pending: VecDeque<(ClientId, Decoded)>,
    /// Actions waiting per client.
    waiting: HashMap<ClientId, usize>,
}

impl std::fmt::Debug for ActionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionQueue")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ActionQueue {
    /// Decodes `raw` and queues it, unless `client` already has `backlog`
    /// actions waiting (a payload that does not decode is refused first).
    pub(crate) fn push(
        &mut self,
        hook: &ActionHook,
        client: ClientId,
        raw: &RawValue,
        backlog: usize,
    ) -> Result<(), ActionError> {
        let action = (hook.decode)(raw)?;
        let waiting = self.waiting.entry(client).or_default();
        if *waiting >= backlog {
            return Err(ActionError::Backlog(backlog));
        }
        *waiting += 1;
        self.pending.push_back((client, action));
        Ok(())
    }

    /// Applies, in arrival order, up to `per_client` waiting actions of
    /// each client still in the room; the actions of clients that left are
    /// dropped.
    /// Returns how many it applied.
    pub(crate) fn apply_tick(
        &mut self,
        hook: &ActionHook,
        world: &mut World,
        per_client: usize,
    ) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        let mut applied = 0;
        let mut taken: HashMap<ClientId, usize> = HashMap::new();
        let mut later = VecDeque::new();
        for (client, action) in std::mem::take(&mut self.pending) {
            let n = taken.entry(client).or_default();
            if *n >= per_client {
                later.push_back((client, action));
                continue;
            }
            *n += 1;
            let entity = world
                .resource::<Boxed<RoomState>>()
                .clients
                .get(client)
                .map(|v| v.entity);
            if let Some(entity) = entity {
                (hook.apply)(world, ActionContext { client, entity }, action);
                applied += 1;
            }
        }
        self.pending = later;
        for (client, n) in taken {
            if let Some(waiting) = self.waiting.get_mut(&client) {
                *waiting -= n;
                if *waiting == 0 {
                    self.waiting.remove(&client);
                }
            }
        }
        applied
    }
}

/// Who receives a game event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTarget {
    /// One client (ignored if it is not in the room).
    Client(ClientId),
    /// Each of these clients that is in the room.
    Clients(Vec<ClientId>),
    /// Every client that knows the entity after this tick's delta (sees it,
    /// or retains it), or, if it was despawned this tick, every client this
    /// tick's delta told it left: a thing that happened at that entity.
    ViewersOf(Entity),
    /// Every client in the room.
    Everyone,
}

/// Why an event was not queued.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// It does not encode, or is over `limits::MAX_GAME_VALUE` bytes.
    #[error("event payload: {0}")]
    Payload(#[from] PayloadError),
    /// The room queued `RoomConfig::max_events_per_tick` events this tick.
    #[error("more than {0} game events in one tick")]
    TooMany(usize),
    /// A channel name must be 1 to 64 bytes of `A-Z a-z 0-9 _ . : -`.
    #[error("invalid channel name {0:?}")]
    InvalidChannel(String),
}

/// Game events to send after this tick's delta (a world resource). Game
/// systems and action handlers queue them; every event goes out once, to
/// its targets, in the order queued.
#[derive(Resource, Debug)]
pub struct GameEvents {
    queued: Vec<(EventTarget, Bytes)>,
    /// Messages for other rooms (channels), handed to the host after the
    /// tick.
    published: Vec<ChannelMessage>,
    limit: usize,
}

impl GameEvents {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            queued: Vec::new(),
            published: Vec::new(),
            limit,
        }
    }

    /// Publishes `message` on `channel`, for every room that subscribes to
    /// it ([`crate::RoomBuilder::on_channel`]), this one included if it
    /// does, on this node or another of the cluster. It leaves after the
    /// tick; delivery is at most once (see [`crate::channels`]). At most
    /// `RoomConfig::max_events_per_tick` a tick, as for events.
    pub fn publish<M: Serialize + ?Sized>(
        &mut self,
        channel: &str,
        message: &M,
    ) -> Result<(), EventError> {
        if !is_valid_channel_name(channel) {
            return Err(EventError::InvalidChannel(channel.to_owned()));
        }
        if self.published.len() >= self.limit {
            return Err(EventError::TooMany(self.limit));
        }
        self.published.push(ChannelMessage {
            channel: channel.to_owned(),
            payload: RawValue::encode(message)?,
        });
        Ok(())
    }

    /// The tick's channel messages, for the host to carry.
    pub(crate) fn take_published(&mut self) -> Vec<ChannelMessage> {
        std::mem::take(&mut self.published)
    }

    /// Queues `event` (the game's type, encoded like every game payload)
    /// for `to`.
    pub fn send<E: Serialize + ?Sized>(
        &mut self,
        to: EventTarget,
        event: &E,
    ) -> Result<(), EventError> {
        if self.queued.len() >= self.limit {
            return Err(EventError::TooMany(self.limit));
        }
        let payload = RawValue::encode(event)?;
        let frame = Bytes::from(ServerMsg::Event { payload }.encode());
        self.queued.push((to, frame));
        Ok(())
    }

    pub fn to_client<E: Serialize + ?Sized>(
        &mut self,
        client: ClientId,
        event: &E,
    ) -> Result<(), EventError> {
        self.send(EventTarget::Client(client), event)
    }

    pub fn to_viewers_of<E: Serialize + ?Sized>(
        &mut self,
        entity: Entity,
        event: &E,
    ) -> Result<(), EventError> {
        self.send(EventTarget::ViewersOf(entity), event)
    }

    pub fn to_everyone<E: Serialize + ?Sized>(&mut self, event: &E) -> Result<(), EventError> {
        self.send(EventTarget::Everyone, event)
    }

    /// Events queued and not yet sent.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

/// Turns the tick's queued events into frames for their targets, appended
/// to `out`. Returns how many frames it added.
pub(crate) fn dispatch_events(world: &mut World, out: &mut Vec<Outgoing>) -> usize {
    let queued = std::mem::take(&mut world.resource_mut::<GameEvents>().queued);
    if queued.is_empty() {
        return 0;
    }
    let viewers = viewers_of_targets(world, &queued);
    let clients = &world.resource::<Boxed<RoomState>>().clients;
    let before = out.len();
    let mut push = |client: ClientId, frame: &Bytes| {
        out.push(Outgoing {
            client,
            frame: frame.clone(),
            kind: FrameKind::Event,
        });
    };
    for (target, frame) in &queued {
        match target {
            EventTarget::Client(client) => {
                if clients.get(*client).is_some() {
                    push(*client, frame);
                }
            }
            EventTarget::Clients(list) => {
                // Once per client, however often the list names it.
                let mut once = list.clone();
                once.sort_unstable();
                once.dedup();
                for client in once {
                    if clients.get(client).is_some() {
                        push(client, frame);
                    }
                }
            }
            EventTarget::ViewersOf(entity) => {
                for client in viewers.get(entity).into_iter().flatten() {
                    push(*client, frame);
                }
            }
            EventTarget::Everyone => {
                for view in clients.iter() {
                    push(view.id, frame);
                }
            }
        }
    }
    out.len() - before
}

/// For each entity some event targets the viewers of, the clients that know
/// it (or were told this tick that it left), in join order: one pass over
/// every view, and only on ticks with such events.
fn viewers_of_targets(
    world: &World,
    queued: &[(EventTarget, Bytes)],
) -> HashMap<Entity, Vec<ClientId>> {
    let replication = &world.resource::<Boxed<RoomState>>().replication;
    // Live targets by slot, with the net id a known entry must still carry;
    // despawned ones by the net id they had.
    let mut live: HashMap<u32, (Entity, u32)> = HashMap::new();
    let mut gone: HashMap<u32, Entity> = HashMap::new();
    for (target, _) in queued {
        let EventTarget::ViewersOf(entity) = target else {
            continue;
        };
        if let Some(net_id) = world.get::<NetId>(*entity) {
            live.insert(entity.index_u32(), (*entity, net_id.0));
        } else if let Some(net_id) = replication.recent_net_id(*entity) {
            gone.insert(net_id, *entity);
        }
    }
    let mut viewers: HashMap<Entity, Vec<ClientId>> = HashMap::new();
    if live.is_empty() && gone.is_empty() {
        return viewers;
    }
    for view in world.resource::<Boxed<RoomState>>().clients.iter() {
        if !live.is_empty() {
            for k in &view.known {
                if let Some(&(entity, net_id)) = live.get(&k.slot)
                    && k.net_id == net_id
                {
                    viewers.entry(entity).or_default().push(view.id);
                }
            }
        }
        if !gone.is_empty() {
            for net_id in &view.left {
                if let Some(&entity) = gone.get(net_id) {
                    viewers.entry(entity).or_default().push(view.id);
                }
            }
        }
    }
    viewers
}
