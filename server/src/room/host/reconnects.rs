//! Who a room can take back: its connected players by resume key and
//! player id, and the players whose connection dropped, held until their
//! grace window ends. Bookkeeping only; the hosted room moves the entities.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tessera_sim::{ClientId, HeldPlayer, PlayerIdentity};

use crate::identity::resume::ResumeKey;

/// A player whose connection dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldEntry {
    pub held: HeldPlayer,
    pub identity: PlayerIdentity,
    /// The session it had.
    pub client: ClientId,
    pub until: Instant,
}

#[derive(Debug)]
struct Connected {
    key: ResumeKey,
    identity: PlayerIdentity,
}

#[derive(Debug, Default)]
pub(crate) struct Reconnects {
    /// How long a dropped player is held; zero: not at all.
    grace: Duration,
    connected: HashMap<ClientId, Connected>,
    connected_by_key: HashMap<ResumeKey, ClientId>,
    connected_by_player: HashMap<String, ClientId>,
    held: HashMap<ResumeKey, HeldEntry>,
    held_by_player: HashMap<String, ResumeKey>,
}

impl Reconnects {
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            ..Self::default()
        }
    }

    /// Whether dropped players are held at all.
    pub fn enabled(&self) -> bool {
        !self.grace.is_zero()
    }

    /// No player is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// `client` joined (or resumed) as `identity`, resumable with `key`.
    pub fn connected(&mut self, client: ClientId, key: ResumeKey, identity: PlayerIdentity) {
        self.connected_by_key.insert(key, client);
        self.connected_by_player
            .insert(identity.player.clone(), client);
        self.connected.insert(client, Connected { key, identity });
    }

    /// `client` is no longer connected; its key and identity, if it was.
    pub fn disconnected(&mut self, client: ClientId) -> Option<(ResumeKey, PlayerIdentity)> {
        let c = self.connected.remove(&client)?;
        self.connected_by_key.remove(&c.key);
        if self.connected_by_player.get(&c.identity.player) == Some(&client) {
            self.connected_by_player.remove(&c.identity.player);
        }
        Some((c.key, c.identity))
    }

    /// Holds the player of `client` (already [`Reconnects::disconnected`])
    /// from `now` for the grace window.
    pub fn hold(
        &mut self,
        key: ResumeKey,
        identity: PlayerIdentity,
        client: ClientId,
        held: HeldPlayer,
        now: Instant,
    ) {
        self.held_by_player.insert(identity.player.clone(), key);
        let until = now + self.grace;
        self.held.insert(
            key,
            HeldEntry {
                held,
                identity,
                client,
                until,
            },
        );
    }

    /// The held player resumable with `key`, taken out.
    pub fn take_held(&mut self, key: &ResumeKey) -> Option<HeldEntry> {
        let entry = self.held.remove(key)?;
        self.held_by_player.remove(&entry.identity.player);
        Some(entry)
    }

    /// The key of the held player with id `player`.
    pub fn held_player(&self, player: &str) -> Option<ResumeKey> {
        self.held_by_player.get(player).copied()
    }

    /// The connected session resumable with `key` (a stale connection
    /// still open).
    pub fn connected_with_key(&self, key: &ResumeKey) -> Option<ClientId> {
        self.connected_by_key.get(key).copied()
    }

    /// The connected session of player `player`.
    pub fn connected_player(&self, player: &str) -> Option<ClientId> {
        self.connected_by_player.get(player).copied()
    }

    /// The held player whose session was `client`, taken out (its session
    /// said, late, that it left for good).
    pub fn take_held_client(&mut self, client: ClientId) -> Option<HeldEntry> {
        let key = *self
            .held
            .iter()
            .find(|(_, e)| e.client == client)
            .map(|(k, _)| k)?;
        self.take_held(&key)
    }

    /// Every player the room can take back, connected or held, with its
    /// resume key: what a checkpoint keeps for them to come back.
    pub fn players(&self) -> Vec<(PlayerIdentity, ResumeKey)> {
        let connected = self.connected.values().map(|c| (c.identity.clone(), c.key));
        let held = self.held.iter().map(|(key, e)| (e.identity.clone(), *key));
        connected.chain(held).collect()
    }

    /// The held players whose window ended by `now`, taken out.
    pub fn expired(&mut self, now: Instant) -> Vec<HeldEntry> {
        let keys: Vec<ResumeKey> = self
            .held
            .iter()
            .filter(|(_, e)| e.until <= now)
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter_map(|k| self.take_held(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(player: &str) -> PlayerIdentity {
        PlayerIdentity {
            player: player.into(),
            display_name: None,
        }
    }

    const HELD: HeldPlayer = HeldPlayer {
        net_id: 5,
        last_input_seq: 3,
    };

    #[test]
    fn a_dropped_player_is_found_by_key_or_id_until_its_window_ends() {
        let t0 = Instant::now();
        let mut r = Reconnects::new(Duration::from_secs(10));
        r.connected(1, [1; 16], who("ann"));
        assert_eq!(r.connected_with_key(&[1; 16]), Some(1));
        assert_eq!(r.connected_player("ann"), Some(1));
        let (key, identity) = r.disconnected(1).expect("was connected");
        assert_eq!(r.connected_player("ann"), None);
        r.hold(key, identity, 1, HELD, t0);
        assert_eq!(r.held_player("ann"), Some([1; 16]));
        assert!(r.expired(t0 + Duration::from_millis(9_999)).is_empty());
        let gone = r.expired(t0 + Duration::from_secs(10));
        assert_eq!(gone.len(), 1);
        assert!(r.is_empty() && r.held_player("ann").is_none());
    }

    #[test]
    fn taking_a_held_player_forgets_it_everywhere() {
        let t0 = Instant::now();
        let mut r = Reconnects::new(Duration::from_secs(10));
        r.connected(1, [1; 16], who("ann"));
        let (key, identity) = r.disconnected(1).expect("was connected");
        r.hold(key, identity, 1, HELD, t0);
        assert_eq!(r.take_held_client(1).map(|e| e.held), Some(HELD));
        assert!(r.take_held(&[1; 16]).is_none());
        assert!(r.held_player("ann").is_none() && r.is_empty());
    }
}
