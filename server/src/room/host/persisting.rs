//! What a hosted room hands to persistence after each tick: its players'
//! saves and the game's events as the sim recorded them, and a checkpoint
//! on its interval and when it closes. All of it is encoded here, on the
//! tick thread, and offered to the queue without waiting; a full queue
//! drops the record (counted there) and the game is told.
//!
//! A checkpoint is the sim's snapshot plus, for every player the room can
//! take back, its identity and resume key: a room restored from it on any
//! node holds those players for their clients to resume.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tessera_sim::{PlayerIdentity, Room, RoomRecord};

use super::HostedRoom;
use crate::identity::resume::ResumeKey;
use crate::persist::record::{Checkpoint, GameEvent, PlayerState, Record};
use crate::persist::{Persistence, unix_ms};

/// The session id restored players are held under: no session has it.
const NO_SESSION: u64 = u64::MAX;

/// A hosted room's link to persistence.
#[derive(Debug)]
pub(crate) struct RoomPersistence {
    persistence: Arc<Persistence>,
    game: &'static str,
    /// Distinguishes this opening of the room from every other, in event
    /// ids: a room reopened (here or elsewhere) starts its ticks again.
    incarnation: String,
    /// The lease epoch under which this node hosts the room (0 alone).
    epoch: u64,
    /// Ticks between checkpoints (0: only at close).
    every: u32,
    /// This room's tick within the interval, so that rooms do not all
    /// checkpoint on the same tick.
    phase: u32,
    /// The saves of players who left lately, by player id, with the tick
    /// they left on: a player who comes straight back gets this one, even
    /// if its join read the store before the save was written.
    left: HashMap<String, (u32, PlayerState)>,
    /// A payload without a JSON form was logged already.
    warned_json: bool,
}

/// How long, in ticks, a room remembers the save of a player that left.
const REMEMBER_LEFT_TICKS: u32 = 600;

impl RoomPersistence {
    pub(crate) fn new(
        persistence: Arc<Persistence>,
        game: &'static str,
        epoch: u64,
        every: u32,
        room_id: u64,
    ) -> Self {
        let incarnation = crate::admin_token::hex(&crate::identity::resume::new_key()[..8]);
        Self {
            persistence,
            game,
            incarnation,
            epoch,
            every,
            phase: if every == 0 {
                0
            } else {
                (room_id % u64::from(every)) as u32
            },
            left: HashMap::new(),
            warned_json: false,
        }
    }
}

/// A player a checkpoint keeps for its client to resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptPlayer {
    player: String,
    display_name: Option<String>,
    key: ResumeKey,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointData {
    #[serde(with = "serde_bytes")]
    snapshot: Vec<u8>,
    players: Vec<KeptPlayer>,
}

/// The players a checkpoint keeps, for the room restored from it to hold.
#[derive(Debug)]
pub(crate) struct Restored(Vec<KeptPlayer>);

#[cfg(test)]
impl Restored {
    /// The resume keys of the players it holds.
    pub(crate) fn keys(&self) -> Vec<ResumeKey> {
        self.0.iter().map(|p| p.key).collect()
    }
}

/// Rebuilds a room of `game` from `checkpoint`.
pub(crate) fn restore(
    game: &dyn tessera_sim::Game,
    config: tessera_sim::RoomConfig,
    checkpoint: &Checkpoint,
) -> Result<(Room, Restored), String> {
    let data: CheckpointData = rmp_serde::from_slice(&checkpoint.data)
        .map_err(|e| format!("checkpoint does not decode: {e}"))?;
    let room = Room::restore(game, config, &data.snapshot).map_err(|e| e.to_string())?;
    Ok((room, Restored(data.players)))
}

impl HostedRoom {
    /// Holds the players of a room restored from a checkpoint for their
    /// grace window, from `now`; those who cannot resume (no resume key,
    /// or the node holds nobody) leave at once, and are saved.
    pub(in crate::room) fn hold_restored(&mut self, players: Restored, now: Instant) {
        let kept = players.0;
        for (player, held) in self.room.held_players() {
            let entry = kept.iter().find(|k| k.player == player);
            match entry {
                Some(k) if self.reconnects.enabled() => {
                    let identity = PlayerIdentity {
                        player: k.player.clone(),
                        display_name: k.display_name.clone(),
                    };
                    self.reconnects.hold(k.key, identity, NO_SESSION, held, now);
                }
                _ => {
                    self.room.release(held.net_id);
                }
            }
        }
        tracing::info!(
            room = %self.handle.name,
            held = self.room.held_players().len(),
            "room restored from its checkpoint"
        );
    }

    /// Offers the tick's records, and a checkpoint when one is due.
    pub(super) fn persist_tick(&mut self) {
        let Some(p) = &self.persistence else {
            return;
        };
        let tick = self.room.tick();
        let checkpoint_due = p.every != 0 && tick % p.every == p.phase;
        self.offer_records();
        if checkpoint_due {
            self.checkpoint();
        }
    }

    /// Hands the sim's records (saves, events) to the queue.
    fn offer_records(&mut self) {
        if self.persistence.is_none() {
            return;
        }
        let records = self.room.take_records();
        if records.is_empty() {
            return;
        }
        let now = unix_ms();
        let tick = self.room.tick();
        let mut dropped = 0;
        let Some(p) = &mut self.persistence else {
            return;
        };
        p.left
            .retain(|_, (at, _)| tick.wrapping_sub(*at) < REMEMBER_LEFT_TICKS);
        for record in records {
            let record = match record {
                RoomRecord::PlayerSaved {
                    player,
                    state,
                    left,
                } => {
                    let saved = PlayerState {
                        game: p.game.to_owned(),
                        player,
                        version: p.persistence.next_version(),
                        room: self.handle.name.clone(),
                        saved_at_ms: now,
                        state,
                    };
                    if left {
                        p.left.insert(saved.player.clone(), (tick, saved.clone()));
                    }
                    Record::PlayerState(saved)
                }
                RoomRecord::Event {
                    kind,
                    payload,
                    tick,
                    seq,
                } => {
                    let Ok(payload) = GameEvent::json_payload(payload.as_bytes()) else {
                        // A bug of the game's, said once per room, not per
                        // event: the game sees the count in its journal.
                        if !std::mem::replace(&mut p.warned_json, true) {
                            tracing::warn!(
                                kind,
                                "game event payload has no JSON form (maps need string keys): dropped (said once per room)"
                            );
                        }
                        dropped += 1;
                        continue;
                    };
                    Record::Event(GameEvent {
                        id: format!("{}:{}:{tick}:{seq}", self.handle.name, p.incarnation),
                        game: p.game.to_owned(),
                        room: self.handle.name.clone(),
                        kind,
                        tick,
                        at_ms: now,
                        payload,
                    })
                }
            };
            if !p.persistence.sink().offer(record) {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.room.records_dropped(dropped);
        }
    }

    /// The newer of `from_store` and this room's save of `player`, if it
    /// left lately (in this very tick, too: the saves not offered yet are
    /// offered first).
    pub(super) fn freshest_save(
        &mut self,
        player: &str,
        from_store: Option<PlayerState>,
    ) -> Option<PlayerState> {
        self.offer_records();
        let mine = self
            .persistence
            .as_ref()
            .and_then(|p| p.left.get(player))
            .map(|(_, s)| s);
        match (mine, from_store) {
            (Some(mine), Some(stored)) if stored.version >= mine.version => Some(stored),
            (Some(mine), _) => Some(mine.clone()),
            (None, stored) => stored,
        }
    }

    /// Whether this room's game can read `state`, a save of `player`. One
    /// it cannot (damaged, or of a format this version does not know) is
    /// logged, and the player joins as new rather than never: its next
    /// save replaces it.
    pub(super) fn readable_save(&self, player: &str, state: &[u8]) -> bool {
        match self.room.decode_player_state(state) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(
                    player,
                    error = %e,
                    "the player's saved state cannot be read: it joins without it"
                );
                false
            }
        }
    }

    /// Offers a checkpoint of the room as it is now.
    pub(super) fn checkpoint(&mut self) {
        let Some(p) = &self.persistence else {
            return;
        };
        let snapshot = match self.room.snapshot() {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::error!(room = %self.handle.name, error = %e, "room snapshot failed: no checkpoint");
                return;
            }
        };
        let players = self
            .reconnects
            .players()
            .into_iter()
            .map(|(identity, key)| KeptPlayer {
                player: identity.player,
                display_name: identity.display_name,
                key,
            })
            .collect();
        let data = CheckpointData { snapshot, players };
        let Ok(data) = rmp_serde::to_vec(&data) else {
            return;
        };
        let record = Record::Checkpoint(Checkpoint {
            game: p.game.to_owned(),
            room: self.handle.name.clone(),
            epoch: p.epoch,
            tick: self.room.tick(),
            taken_at_ms: unix_ms(),
            data,
        });
        if !p.persistence.sink().offer(record) {
            self.room.records_dropped(1);
        }
    }

    /// The room closes: every player saved, what it recorded last, and a
    /// last checkpoint; unless the room moved to another node, which is
    /// the authority on it now.
    pub(in crate::room) fn persist_closing(&mut self) {
        if self.persistence.is_none() || self.moved {
            return;
        }
        self.room.save_all_players();
        self.offer_records();
        self.checkpoint();
    }
}
