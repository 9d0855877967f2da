//! The node registry: what each node publishes about itself, with a TTL,
//! and what this node last read of the others (for placement, redirects
//! and `tessera admin nodes`).

pub use crate::link::report::NodeInfo;

use super::{PublicUrls, unix_ms};
use crate::room::{Admission, RoomTable};

impl NodeInfo {
    pub const ACTIVE: &'static str = "active";
    pub const DRAINING: &'static str = "draining";

    /// The entry of node `id`, reached at `urls`, hosting `rooms`, now.
    pub fn of(id: &str, urls: &PublicUrls, rooms: &RoomTable, cpu_percent: f64) -> Self {
        let handles = rooms.rooms();
        Self {
            id: id.to_owned(),
            ws_url: urls.ws.clone(),
            quic_url: urls.quic.clone(),
            admin_url: urls.admin.clone(),
            state: match rooms.admission() {
                Admission::Open => Self::ACTIVE,
                Admission::Draining | Admission::Stopped => Self::DRAINING,
            }
            .to_owned(),
            rooms: handles.len(),
            players: handles.iter().map(|h| h.players()).sum(),
            cpu_percent,
            max_rooms: rooms.max_rooms(),
            max_players: rooms.max_connections(),
            heartbeat_unix_ms: unix_ms(),
        }
    }

    /// Whether a new room may be placed on this node.
    pub fn takes_rooms(&self) -> bool {
        self.state == Self::ACTIVE && self.rooms < self.max_rooms && self.players < self.max_players
    }

    /// The URL clients of `transport` (`ws` or `quic`) are sent to.
    pub fn url_for(&self, transport: &str) -> &str {
        if transport == "quic" {
            &self.quic_url
        } else {
            &self.ws_url
        }
    }
}

/// The least loaded of `nodes` that takes rooms: fewest players, then
/// fewest rooms. Among equals `me` wins (the room then needs no redirect,
/// and entry nodes that read the registry at the same moment spread a
/// burst of new rooms over themselves), else the lowest id.
pub fn least_loaded<'a>(nodes: &'a [NodeInfo], me: &str) -> Option<&'a NodeInfo> {
    nodes.iter().filter(|n| n.takes_rooms()).min_by(|a, b| {
        (a.players, a.rooms, a.id != me, &a.id).cmp(&(b.players, b.rooms, b.id != me, &b.id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, players: usize, rooms: usize) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            ws_url: format!("ws://{id}"),
            quic_url: format!("quic://{id}"),
            admin_url: String::new(),
            state: NodeInfo::ACTIVE.into(),
            rooms,
            players,
            cpu_percent: 0.0,
            max_rooms: 10,
            max_players: 100,
            heartbeat_unix_ms: 0,
        }
    }

    #[test]
    fn placement_skips_draining_and_full_nodes() {
        let mut draining = node("a", 0, 0);
        draining.state = NodeInfo::DRAINING.into();
        let full = node("b", 5, 10);
        let busy = node("c", 50, 1);
        let idle = node("d", 10, 3);
        let nodes = [draining, full, busy, idle];
        assert_eq!(least_loaded(&nodes, "c").map(|n| n.id.as_str()), Some("d"));
        assert_eq!(least_loaded(&nodes[..2], "a"), None);
    }

    #[test]
    fn ties_go_to_this_node_then_to_the_lowest_id() {
        let nodes = [node("c", 1, 1), node("b", 1, 1), node("a", 1, 1)];
        assert_eq!(least_loaded(&nodes, "b").map(|n| n.id.as_str()), Some("b"));
        assert_eq!(least_loaded(&nodes, "x").map(|n| n.id.as_str()), Some("a"));
        assert_eq!(node("x", 0, 0).url_for("quic"), "quic://x");
        assert_eq!(node("x", 0, 0).url_for("ws"), "ws://x");
    }
}
