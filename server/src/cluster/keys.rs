//! Where the cluster keeps things in Redis. Every key starts with the
//! configured prefix and carries a hash tag (`{room:NAME}`, `{node:ID}`,
//! `{nodes}`), so that the keys one script touches share a slot on a Redis
//! Cluster. Room names cannot hold braces (PROTOCOL.md §3), so a name never
//! breaks out of its tag.

/// The key names of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A hash `{node, epoch, players}` with the lease's TTL: who owns the
    /// room, under which epoch, and how many players it has.
    pub fn lease(&self, room: &str) -> String {
        format!("{}:{{room:{room}}}:lease", self.prefix)
    }

    /// The room's epoch counter: each new lease takes the next number.
    pub fn epoch(&self, room: &str) -> String {
        format!("{}:{{room:{room}}}:epoch", self.prefix)
    }

    /// A sorted set of the room's reserved seats, scored by expiry (ms).
    pub fn seats(&self, room: &str) -> String {
        format!("{}:{{room:{room}}}:seats", self.prefix)
    }

    /// The node's registry entry (JSON, with the node TTL).
    pub fn node(&self, id: &str) -> String {
        format!("{}:{{node:{id}}}", self.prefix)
    }

    /// The rooms the node hosts and their players (JSON, with the node TTL).
    pub fn node_rooms(&self, id: &str) -> String {
        format!("{}:{{node:{id}}}:rooms", self.prefix)
    }

    /// A sorted set of node ids, scored by their last heartbeat (ms since
    /// 1970): an index to find the registry entries by.
    pub fn nodes(&self) -> String {
        format!("{}:{{nodes}}", self.prefix)
    }

    /// A random marker the first node writes (without TTL): when it is
    /// gone or changed, Redis lost its data.
    pub fn boot(&self) -> String {
        format!("{}:{{cluster}}:boot", self.prefix)
    }

    /// The channel that reaches every node.
    pub fn cluster_channel(&self) -> String {
        format!("{}:cluster", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_of_one_room_share_a_hash_tag() {
        let keys = Keys::new("game-a");
        for key in [keys.lease("r:1"), keys.epoch("r:1"), keys.seats("r:1")] {
            assert!(key.starts_with("game-a:{room:r:1}:"), "{key}");
        }
        assert_eq!(keys.node("n1"), "game-a:{node:n1}");
        assert_eq!(keys.node_rooms("n1"), "game-a:{node:n1}:rooms");
    }
}
