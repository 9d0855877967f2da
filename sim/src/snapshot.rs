//! Room snapshots: the persisted state of a world, to checkpoint a room and
//! recreate it elsewhere.
//!
//! A snapshot holds the tick, the random generator, the next net id and, for
//! every replicated entity, the components the game registered with
//! [`crate::RoomBuilder::persist`]. Clients are not part of it: after a
//! restore the player entities are still in the world, and a returning
//! client takes its entity back with [`Room::attach`].

use std::sync::Arc;

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::components::{NetId, Replicated, RoomRng};
use crate::config::{ConfigError, RoomConfig};
use crate::game::Game;
use crate::replication::{self, ReplicationState};
use crate::room::Room;

/// Version of the snapshot layout; bumped on incompatible changes.
const SNAPSHOT_FORMAT: u16 = 1;

type SaveFn =
    Box<dyn Fn(&World, Entity) -> Option<Result<Vec<u8>, rmp_serde::encode::Error>> + Send + Sync>;
type LoadFn = Box<
    dyn Fn(&mut EntityWorldMut<'_>, &[u8]) -> Result<(), rmp_serde::decode::Error> + Send + Sync,
>;

struct Persisted {
    key: u8,
    name: &'static str,
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
            save: Box::new(|world, entity| world.get::<C>(entity).map(rmp_serde::to_vec)),
            load: Box::new(|entity, bytes| {
                entity.insert(rmp_serde::from_slice::<C>(bytes)?);
                Ok(())
            }),
        });
        Ok(())
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
}

#[derive(Debug, Serialize, Deserialize)]
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
            let mut components = Vec::new();
            for p in &persist.entries {
                if let Some(value) = (p.save)(world, entity) {
                    components.push(SavedComponent {
                        key: p.key,
                        value: value?,
                    });
                }
            }
            entities.push(SavedEntity { net_id, components });
        }
        let snapshot = RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            game: self.game_name().to_owned(),
            tick: self.tick(),
            next_net_id: self.world().resource::<ReplicationState>().next_net_id(),
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
            for c in &saved.components {
                let p = persist
                    .entries
                    .iter()
                    .find(|p| p.key == c.key)
                    .ok_or(SnapshotError::UnknownKey(c.key))?;
                (p.load)(&mut entity, &c.value)?;
            }
            let id = entity.id();
            replication::register_net_id(world, id, saved.net_id);
        }
        world
            .resource_mut::<ReplicationState>()
            .set_next_net_id(snapshot.next_net_id);
        world.resource_mut::<RoomRng>().0 = snapshot.rng;
        room.set_tick(snapshot.tick);
        Ok(room)
    }
}
