//! The admin API's view of a room, built on its tick thread between ticks
//! and sent back as owned data.

use std::time::Instant;

use tessera_sim::NetId;

use super::HostedRoom;
use crate::link::report::{PlayerReport, RoomDetail};
use crate::link::{EntityState, InspectedComponent};

impl HostedRoom {
    /// The room and each of its players, as of the last tick.
    pub(super) fn detail(&self, now: Instant) -> RoomDetail {
        let mut summary = self.handle.summary();
        summary.players = self.room.player_count();
        summary.entities = self.room.entity_count();
        let world = self.room.world();
        let players = self
            .room
            .clients()
            .iter()
            .filter_map(|view| {
                let session = self.sessions.get(&view.id)?;
                let link = &session.link;
                let outbound = &link.outbound;
                Some(PlayerReport {
                    session: view.id,
                    entity: world.get::<NetId>(view.entity).map(|n| n.0),
                    address: link.live.peer.to_string(),
                    transport: link.live.transport.to_owned(),
                    connected_s: now.saturating_duration_since(link.live.connected).as_secs(),
                    rtt_ms: link.live.rtt().map(|d| d.as_micros() as f64 / 1000.0),
                    queued_frames: outbound.max_capacity() - outbound.capacity(),
                    lag_ms: session
                        .lagging_since
                        .map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64),
                    visible: view.visible(),
                    last_input: view.last_input_seq(),
                })
            })
            .collect();
        RoomDetail { summary, players }
    }

    /// The replicated components of the entity clients know as `id`.
    pub(super) fn entity(&self, id: u32) -> Option<EntityState> {
        let values = self.room.wire_state(id)?;
        let names = self.room.replicated_components();
        let name_of = |wire: u8| {
            names
                .iter()
                .find(|(w, _)| *w == wire)
                .map_or("?", |(_, n)| *n)
        };
        let components = values
            .into_iter()
            .map(|(wire, bytes)| InspectedComponent {
                wire_id: wire,
                name: name_of(wire),
                bytes: bytes.to_vec(),
                readable: self
                    .room
                    .readable(wire, bytes)
                    .map(|r| r.as_bytes().to_vec()),
            })
            .collect();
        let world = self.room.world();
        let player = self
            .room
            .clients()
            .iter()
            .find(|view| world.get::<NetId>(view.entity).is_some_and(|n| n.0 == id))
            .map(|view| view.id);
        Some(EntityState { player, components })
    }
}
