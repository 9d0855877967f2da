//! What this node saved lately: the newest player saves and room
//! checkpoints it queued, so that a player who comes back (or a room that
//! opens again) a moment after leaving gets its latest state even before
//! the worker has written it, and even while the store is down. Bounded:
//! the oldest entries make way.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::record::{Checkpoint, PlayerState, Record};

/// Player saves kept.
const PLAYERS: usize = 65_536;
/// Room checkpoints kept (they are the large ones).
const CHECKPOINTS: usize = 64;

/// A map that forgets its oldest keys past `cap`.
#[derive(Debug)]
struct Bounded<V> {
    cap: usize,
    map: HashMap<(String, String), V>,
    order: VecDeque<(String, String)>,
}

impl<V> Bounded<V> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Keeps `value` under `key` unless what is there is newer.
    fn keep(&mut self, key: (String, String), value: V, newer: impl Fn(&V, &V) -> bool) {
        match self.map.get_mut(&key) {
            Some(old) => {
                if newer(&value, old) {
                    *old = value;
                }
            }
            None => {
                if self.map.len() >= self.cap
                    && let Some(oldest) = self.order.pop_front()
                {
                    self.map.remove(&oldest);
                }
                self.order.push_back(key.clone());
                self.map.insert(key, value);
            }
        }
    }
}

#[derive(Debug)]
pub struct Recent {
    players: Mutex<Bounded<PlayerState>>,
    checkpoints: Mutex<Bounded<Checkpoint>>,
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            players: Mutex::new(Bounded::new(PLAYERS)),
            checkpoints: Mutex::new(Bounded::new(CHECKPOINTS)),
        }
    }
}

impl Recent {
    /// Remembers `record` if it is a save or a checkpoint.
    pub fn note(&self, record: &Record) {
        match record {
            Record::PlayerState(p) => self.players.lock().unwrap_or_else(|e| e.into_inner()).keep(
                (p.game.clone(), p.player.clone()),
                p.clone(),
                |a, b| a.version > b.version,
            ),
            Record::Checkpoint(c) => self
                .checkpoints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keep((c.game.clone(), c.room.clone()), c.clone(), |a, b| {
                    (a.epoch, a.taken_at_ms) > (b.epoch, b.taken_at_ms)
                }),
            Record::Event(_) => {}
        }
    }

    pub fn player(&self, game: &str, player: &str) -> Option<PlayerState> {
        let players = self.players.lock().unwrap_or_else(|e| e.into_inner());
        players
            .map
            .get(&(game.to_owned(), player.to_owned()))
            .cloned()
    }

    pub fn checkpoint(&self, game: &str, room: &str) -> Option<Checkpoint> {
        let checkpoints = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        checkpoints
            .map
            .get(&(game.to_owned(), room.to_owned()))
            .cloned()
    }
}
