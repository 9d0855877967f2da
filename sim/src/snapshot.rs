//! Room snapshots: the persisted state of a world, to checkpoint a room and
//! recreate it elsewhere.
//!
//! A snapshot holds the tick, the random generator, the next net id and, for
//! every replicated entity, the components the game registered with
//! [`crate::RoomBuilder::persist`] and, for a player's entity, the player's
//! id ([`PlayerId`]). Clients are not part of it: after a restore the
//! player entities are in the world, held ([`crate::Held`]) as if their
//! connections had dropped, and a returning client takes its entity back
//! with [`Room::resume`] (or [`Room::attach`]).
//!
//! The same registry saves one player's components on their own
//! ([`SavedState`]): what a player keeps from one session to the next.

use std::sync::Arc;

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::boxed_resource::Boxed;
use crate::components::{Held, NetId, PlayerId, Replicated, RoomRng};
use crate::config::{ConfigError, RoomConfig};
use crate::game::Game;
use crate::replication::{self};
use crate::room::Room;
use crate::room_state::RoomState;

/// Version of the snapshot layout; bumped on incompatible changes.
const SNAPSHOT_FORMAT: u16 = 2;

/// Version of a player's saved state.
const PLAYER_STATE_FORMAT: u16 = 1;

type SaveFn =
    Box<dyn Fn(&World, Entity) -> Option<Result<Vec<u8>, rmp_serde::encode::Error>> + Send + Sync>;
type LoadFn = Box<
    dyn Fn(&mut EntityWorldMut<'_>, &[u8]) -> Result<(), rmp_serde::decode::Error> + Send + Sync,
>;

struct Persisted {
    key: u8,
    name: &'static str,
    type_id: std::any::TypeId,
    save: SaveFn,
    load: LoadFn,
}

/// The components a game saves in snapshots.
#[derive(Default)]
pub struct PersistRegistry {
    entries: Vec<Persisted>,
}

impl std::fmt::Debug for PersistRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (e.key, e.name)))
            .finish()
    }
}

impl PersistRegistry {
    pub(crate) fn register<C: Component + Serialize + DeserializeOwned + Clone>(
        &mut self,
        key: u8,
    ) -> Result<(), String> {
        let name = std::any::type_name::<C>();
        if let Some(other) = self.entries.iter().find(|e| e.key == key) {
            return Err(format!(
                "persisted components {} and {name} share key {key}",
                other.name
            ));
        }
        self.entries.push(Persisted {
            key,
            name,
            type_id: std::any::TypeId::of::<C>(),
            save: Box::new(|world, entity| world.get::<C>(entity).map(rmp_serde::to_vec)),
            load: Box::new(|entity, bytes| {
                entity.insert(rmp_serde::from_slice::<C>(bytes)?);
                Ok(())
            }),
        });
        Ok(())
    }

    /// Whether the game persists anything at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The persisted components of `entity`.
    fn save(
        &self,
        world: &World,
        entity: Entity,
    ) -> Result<Vec<SavedComponent>, rmp_serde::encode::Error> {
        let mut components = Vec::new();
        for p in &self.entries {
            if let Some(value) = (p.save)(world, entity) {
                components.push(SavedComponent {
                    key: p.key,
                    value: value?,
                });
            }
        }
        Ok(components)
    }

    /// Inserts saved components on `entity`.
    fn load(
        &self,
        entity: &mut EntityWorldMut<'_>,
        components: &[SavedComponent],
    ) -> Result<(), SnapshotError> {
        for c in components {
            let p = self
                .entries
                .iter()
                .find(|p| p.key == c.key)
                .ok_or(SnapshotError::UnknownKey(c.key))?;
            (p.load)(entity, &c.value)?;
        }
        Ok(())
    }
}

/// A player's persisted components, saved when it left (or on its save
/// interval) and handed back to the game's join hook when it joins again
/// ([`crate::JoinContext::saved`]).
#[derive(Clone)]
pub struct SavedState {
    components: Vec<SavedComponent>,
    registry: Arc<PersistRegistry>,
}

impl std::fmt::Debug for SavedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.components.iter().map(|c| c.key))
            .finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct PlayerStateData {
    format: u16,
    game: String,
    components: Vec<SavedComponent>,
}

impl SavedState {
    /// The saved value of component `C`, if it was saved and still
    /// decodes as `C`.
    pub fn get<C: Component + DeserializeOwned + 'static>(&self) -> Option<C> {
        let id = std::any::TypeId::of::<C>();
        let key = self.registry.entries.iter().find(|p| p.type_id == id)?.key;
        let saved = self.components.iter().find(|c| c.key == key)?;
        rmp_serde::from_slice(&saved.value).ok()
    }

    /// Inserts every saved component on the player's new entity (over what
    /// the join hook put there).
    pub fn restore(&self, entity: &mut EntityWorldMut<'_>) -> Result<(), SnapshotError> {
        self.registry.load(entity, &self.components)
    }
}

impl Room {
    /// Encodes the persisted components of `entity`, the state a player
    /// keeps between sessions.
    pub(crate) fn encode_player_state(&self, entity: Entity) -> Result<Vec<u8>, SnapshotError> {
        let data = PlayerStateData {
            format: PLAYER_STATE_FORMAT,
            game: self.game_name().to_owned(),
            components: self.persist.save(self.world(), entity)?,
        };
        Ok(rmp_serde::to_vec(&data)?)
    }

    /// Decodes a player's state saved by a room of this game.
    pub fn decode_player_state(&self, bytes: &[u8]) -> Result<SavedState, SnapshotError> {
        let data: PlayerStateData = rmp_serde::from_slice(bytes)?;
        if data.format != PLAYER_STATE_FORMAT {
            return Err(SnapshotError::Format { found: data.format });
        }
        if data.game != self.game_name() {
            return Err(SnapshotError::WrongGame {
                found: data.game,
                expected: self.game_name().to_owned(),
            });
        }
        Ok(SavedState {
            components: data.components,
            registry: Arc::clone(&self.persist),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RoomSnapshot {
    format: u16,
    game: String,
    tick: u32,
    next_net_id: u32,
    rng: rand_pcg::Pcg64Mcg,
    entities: Vec<SavedEntity>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedEntity {
    net_id: u32,
    components: Vec<SavedComponent>,
    /// The player whose entity it is.
    player: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedComponent {
    key: u8,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot could not be encoded: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("snapshot could not be decoded: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("snapshot format {found} is not supported (expected {SNAPSHOT_FORMAT})")]
    Format { found: u16 },
    #[error("snapshot is of game {found}, not {expected}")]
    WrongGame { found: String, expected: String },
    #[error("snapshot has an unknown component key {0}")]
    UnknownKey(u8),
    #[error("snapshot has net id {0} twice")]
    DuplicateNetId(u32),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Room {
    /// Serializes the room's persisted state (see the module docs).
    pub fn snapshot(&mut self) -> Result<Vec<u8>, SnapshotError> {
        let persist = Arc::clone(&self.persist);
        let world = self.world_mut();
        let mut query = world.query::<(Entity, &NetId)>();
        let mut ids: Vec<(u32, Entity)> = query.iter(world).map(|(e, n)| (n.0, e)).collect();
        ids.sort_unstable_by_key(|(id, _)| *id);
        let mut entities = Vec::with_capacity(ids.len());
        for (net_id, entity) in ids {
            entities.push(SavedEntity {
                net_id,
                components: persist.save(world, entity)?,
                player: world.get::<PlayerId>(entity).map(|p| p.0.clone()),
            });
        }
        let snapshot = RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            game: self.game_name().to_owned(),
            tick: self.tick(),
            next_net_id: self
                .world()
                .resource::<Boxed<RoomState>>()
                .replication
                .next_net_id(),
            rng: self.world().resource::<RoomRng>().0.clone(),
            entities,
        };
        Ok(rmp_serde::to_vec(&snapshot)?)
    }

    /// Builds a room of `game` from a snapshot taken with [`Room::snapshot`].
    pub fn restore(
        game: &dyn Game,
        config: RoomConfig,
        bytes: &[u8],
    ) -> Result<Room, SnapshotError> {
        let snapshot: RoomSnapshot = rmp_serde::from_slice(bytes)?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format {
                found: snapshot.format,
            });
        }
        if snapshot.game != game.name() {
            return Err(SnapshotError::WrongGame {
                found: snapshot.game,
                expected: game.name().to_owned(),
            });
        }
        let mut room = Room::new(game, config)?;
        let persist = Arc::clone(&room.persist);
        let world = room.world_mut();
        // A game's setup may spawn entities; the snapshot replaces them.
        let mut existing = world.query_filtered::<Entity, With<Replicated>>();
        let existing: Vec<Entity> = existing.iter(world).collect();
        for entity in existing {
            world.despawn(entity);
        }
        let mut seen = std::collections::HashSet::new();
        for saved in &snapshot.entities {
            if !seen.insert(saved.net_id) {
                return Err(SnapshotError::DuplicateNetId(saved.net_id));
            }
            let mut entity = world.spawn(Replicated);
            persist.load(&mut entity, &saved.components)?;
            if let Some(player) = &saved.player {
                entity.insert((PlayerId(player.clone()), Held));
            }
            let id = entity.id();
            replication::register_net_id(world, id, saved.net_id);
        }
        world
            .resource_mut::<Boxed<RoomState>>()
            .replication
            .set_next_net_id(snapshot.next_net_id);
        world.resource_mut::<RoomRng>().0 = snapshot.rng;
        room.set_tick(snapshot.tick);
        Ok(room)
    }
}
