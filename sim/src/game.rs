//! The game plugin API: how a game tells a room what it simulates, what
//! replicates, and what happens when players join, send input and leave.
//!
//! A game implements [`Game`] and registers everything in [`Game::setup`];
//! the room and the server never name a game's types. `games::arena` is the
//! model to copy.

use std::sync::Arc;

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::ScheduleConfigs;
use bevy_ecs::system::ScheduleSystem;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_protocol::{PayloadError, RawValue, WireComponent};

use crate::channels::{Subscription, is_valid_channel_name};
use crate::components::{ClientId, Intent};
use crate::messages::{ActionContext, ActionHook};
use crate::passes::RoomPasses;
use crate::replication::{self, ComponentRegistry};
use crate::schedule::TickSet;
use crate::snapshot::{PersistRegistry, SavedState};
use crate::spatial_grid;

/// A game that rooms can host.
pub trait Game: Send + Sync + 'static {
    /// Short name, used to pick the game (`tessera serve --game NAME`).
    fn name(&self) -> &'static str;
    /// Registers components, systems and hooks for a new room.
    fn setup(&self, room: &mut RoomBuilder<'_>);

    /// The side of the square world, in units from 0: the spatial grid
    /// covers it (positions outside fall in its edge cells). `None`: the
    /// room config's `world_size` (default 4096).
    fn world_size(&self) -> Option<f32> {
        None
    }
}

/// A simulation component that clients see, through its wire form.
pub trait Replicate: Component {
    type Wire: WireComponent;
    /// The quantized form sent to clients. Called only for components that
    /// changed this tick; an unchanged wire value sends nothing.
    fn to_wire(&self) -> Self::Wire;
}

/// The component that places an entity in the world for interest management.
pub trait SpatialPosition: Component {
    /// World coordinates `[x, y]`.
    fn position(&self) -> [f32; 2];
}

/// What a join hook gets to know about the joining client.
#[derive(Debug, Clone, Copy)]
pub struct JoinContext<'a> {
    pub client: ClientId,
    /// Who the player is: the `sub` of its token, or an anonymous id of
    /// the session when the server admits anyone.
    pub player: &'a str,
    /// The display name its token gives, if any; a game prefers it to a
    /// name in the join options, which nobody vouched for.
    pub display_name: Option<&'a str>,
    /// Game-defined join options sent in the handshake (`nil` if none).
    pub options: &'a RawValue,
    /// What the player kept from its last session, when the server
    /// persists players and has a save of it: the hook decides what to
    /// take back ([`SavedState::get`], or all of it with
    /// [`SavedState::restore`]).
    pub saved: Option<&'a SavedState>,
}

/// Who a joining client is, as the server verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerIdentity {
    pub player: String,
    pub display_name: Option<String>,
}

impl PlayerIdentity {
    /// An anonymous player, named after its client id (tests, tools).
    pub fn anonymous(client: ClientId) -> Self {
        Self {
            player: format!("client-{client}"),
            display_name: None,
        }
    }
}

/// A join the game refused; the message reaches the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct JoinRefused(pub String);

pub(crate) type JoinHook =
    Arc<dyn Fn(&mut World, JoinContext<'_>) -> Result<Entity, JoinRefused> + Send + Sync>;
pub(crate) type LeaveHook = Arc<dyn Fn(&mut World, Entity) + Send + Sync>;
pub(crate) type InputHook =
    Arc<dyn Fn(&mut World, Entity, &RawValue) -> Result<(), PayloadError> + Send + Sync>;

/// Collects a game's registrations for one room. Handed to [`Game::setup`].
pub struct RoomBuilder<'a> {
    pub(crate) world: &'a mut World,
    pub(crate) schedule: &'a mut Schedule,
    pub(crate) passes: &'a mut RoomPasses,
    pub(crate) components: ComponentRegistry,
    pub(crate) persist: PersistRegistry,
    pub(crate) join: Option<JoinHook>,
    pub(crate) leave: Option<LeaveHook>,
    pub(crate) input: Option<InputHook>,
    pub(crate) action: Option<ActionHook>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) has_spatial: bool,
}

impl std::fmt::Debug for RoomBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomBuilder")
            .field("components", &self.components)
            .field("has_spatial", &self.has_spatial)
            .finish_non_exhaustive()
    }
}

impl<'a> RoomBuilder<'a> {
    pub(crate) fn new(
        world: &'a mut World,
        schedule: &'a mut Schedule,
        passes: &'a mut RoomPasses,
    ) -> Self {
        Self {
            world,
            schedule,
            passes,
            components: ComponentRegistry::default(),
            persist: PersistRegistry::default(),
            join: None,
            leave: None,
            input: None,
            action: None,
            subscriptions: Vec::new(),
            has_spatial: false,
        }
    }

    /// The room's world, to insert resources or spawn the initial entities.
    pub fn world(&mut self) -> &mut World {
        self.world
    }

    /// Adds game systems to a tick phase: [`TickSet::ApplyInputs`] or
    /// [`TickSet::Simulate`].
    ///
    /// # Panics
    /// For a later phase: those are the room's own, and it runs them
    /// itself. That is a bug in the game, found the first time a room is
    /// built.
    pub fn add_systems<M>(
        &mut self,
        set: TickSet,
        systems: impl IntoScheduleConfigs<ScheduleSystem, M>,
    ) -> &mut Self {
        assert!(
            set.is_for_games(),
            "games add systems to ApplyInputs or Simulate, not {set:?}: the room runs the later phases itself"
        );
        let configs: ScheduleConfigs<ScheduleSystem> = systems.into_configs();
        self.schedule.add_systems(configs.in_set(set));
        self
    }

    /// Replicates component `C` to clients that can see its entity.
    ///
    /// # Panics
    /// If another registered component uses the same wire id: that is a bug
    /// in the game, found the first time a room is built.
    pub fn replicate<C: Replicate>(&mut self) -> &mut Self {
        let index = self
            .components
            .register::<C::Wire>()
            .unwrap_or_else(|e| panic!("{e}"));
        replication::add_collect_system::<C>(self.passes, self.world, index);
        self
    }

    /// Replicates component `C` as the game's *motion component*: a
    /// change of it alone goes to the clients that had the previous value
    /// as a move, its residual against the position they predict (two small
    /// integers), instead of an entry with the whole value. `C`'s wire form
    /// must be a position packed as `x << 16 | y` in a uint32, each axis an
    /// unsigned 16-bit count (the arena's `position`); a value of another
    /// form is sent as a plain update.
    ///
    /// # Panics
    /// As [`Self::replicate`], and if the game names a second motion
    /// component.
    pub fn replicate_motion<C: Replicate>(&mut self) -> &mut Self {
        self.replicate::<C>();
        let index = self.components.len() - 1;
        self.components
            .set_motion(index)
            .unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// Uses component `P` as the entity position for interest management.
    /// Exactly one spatial component per game.
    pub fn spatial<P: SpatialPosition>(&mut self) -> &mut Self {
        assert!(!self.has_spatial, "a game registers one spatial component");
        self.has_spatial = true;
        spatial_grid::add_sync_system::<P>(self.passes, self.world);
        self
    }

    /// Saves component `C` in room snapshots under `key` (unique per game).
    pub fn persist<C: Component + Serialize + DeserializeOwned + Clone>(
        &mut self,
        key: u8,
    ) -> &mut Self {
        self.persist
            .register::<C>(key)
            .unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// Declares the game's intent type. Each input a client sends is decoded
    /// as `I` and stored as [`Intent<I>`] on the player's entity (the latest
    /// one wins), for game systems to act on.
    pub fn input<I: DeserializeOwned + Send + Sync + 'static>(&mut self) -> &mut Self {
        self.input = Some(Arc::new(|world, entity, raw| {
            let intent: I = raw.decode()?;
            if let Ok(mut e) = world.get_entity_mut(entity) {
                e.insert(Intent(intent));
            }
            Ok(())
        }));
        self
    }

    /// Declares the game's action type and what an action does. Each action
    /// a client sends is decoded as `A` when it arrives (a payload that
    /// does not decode ends the session with `invalid_action`) and handed
    /// to `handler` once, in arrival order, at the start of a tick, before
    /// the game's systems run (at most `RoomConfig::max_actions_per_tick`
    /// of one client's a tick; the rest wait). Unlike intents, actions are
    /// never collapsed. Use an enum for several kinds of action.
    pub fn on_action<A: DeserializeOwned + Send + Sync + 'static>(
        &mut self,
        handler: impl Fn(&mut World, ActionContext, A) + Send + Sync + 'static,
    ) -> &mut Self {
        self.action = Some(ActionHook::new(handler));
        self
    }

    /// Subscribes the room to `channel`: each message another room (or
    /// this one) publishes there ([`crate::GameEvents::publish`]) is
    /// decoded as `M` and handed to `handler` between two ticks. A message
    /// that does not decode is dropped (the host logs it). See
    /// [`crate::channels`] for what delivery promises.
    ///
    /// # Panics
    ///
    /// When `channel` is not a valid channel name
    /// ([`crate::channels::is_valid_channel_name`]): a programming error
    /// of the game, found at its first room.
    pub fn on_channel<M: DeserializeOwned + 'static>(
        &mut self,
        channel: &str,
        handler: impl Fn(&mut World, M) + Send + Sync + 'static,
    ) -> &mut Self {
        assert!(
            is_valid_channel_name(channel),
            "invalid channel name {channel:?}"
        );
        self.subscriptions.push(Subscription::new(channel, handler));
        self
    }

    /// Spawns the player's entity for a joining client. The entity must hold
    /// the spatial component; the room adds `Replicated` and `Player`.
    pub fn on_join(
        &mut self,
        hook: impl Fn(&mut World, JoinContext<'_>) -> Result<Entity, JoinRefused>
        + Send
        + Sync
        + 'static,
    ) -> &mut Self {
        self.join = Some(Arc::new(hook));
        self
    }

    /// Runs when a player leaves; the default despawns the player's entity.
    pub fn on_leave(
        &mut self,
        hook: impl Fn(&mut World, Entity) + Send + Sync + 'static,
    ) -> &mut Self {
        self.leave = Some(Arc::new(hook));
        self
    }
}
