//! Room configuration.

/// How a room simulates and replicates. Every field documents its default.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomConfig {
    /// Ticks per second. Default 10: enough for movement games with client
    /// interpolation, and it keeps per-client bandwidth low.
    pub tick_hz: u16,
    /// Interest radius in world units: an entity closer than this to a
    /// player's entity is visible to that player. Default 200.
    pub aoi_radius: f32,
    /// Hysteresis: a visible entity leaves only once it is farther than
    /// `aoi_radius + aoi_margin`, so an entity on the boundary does not flap
    /// between entered and left. Default 20.
    pub aoi_margin: f32,
    /// Side of a spatial grid cell, a power of two. Default 0 = derived from
    /// the radius (the power of two nearest to `aoi_radius / 2`).
    pub cell_size: u32,
    /// World bounds used by the spatial grid: `[0, world_size)` on both axes.
    /// Positions outside are clamped into the edge cells. Default 4096.
    pub world_size: f32,
    /// Most players the room admits. Default 10,000.
    pub max_players: usize,
    /// Seed of the room's random number generator; the same seed and inputs
    /// give the same ticks. Default 0 (the server derives one per room).
    pub seed: u64,
    /// A client that received nothing for this many ticks gets an empty
    /// delta, so it sees the tick advance and its inputs acknowledged.
    /// Default 10 (one second at 10 Hz).
    pub keepalive_ticks: u32,
    /// Most chat lines sent to the room's players in one tick, so that chat
    /// never crowds the deltas out of a client's outbound queue. Later lines
    /// wait for the next ticks; while `CHAT_BACKLOG_TICKS` ticks' worth are
    /// waiting, new lines are refused (`ChatError::Backlog`). Default 16.
    pub max_chat_per_tick: usize,
    /// Most actions of one client applied in one tick. Later ones wait, in
    /// order, for the next ticks; while `ACTION_BACKLOG_TICKS` ticks' worth
    /// are waiting, new ones are refused (`ActionError::Backlog`).
    /// Default 8.
    pub max_actions_per_tick: usize,
    /// Most game events the room's systems may queue in one tick (each may
    /// go to many clients); past it `GameEvents::send` fails with
    /// `EventError::TooMany`. Default 256.
    pub max_events_per_tick: usize,
    /// Save a player's persisted components when it leaves (or its held
    /// entity is released), as a [`crate::RoomRecord::PlayerSaved`] for the
    /// host to store. Default false (the sim's tests and tools store
    /// nothing); the server turns it on when persistence is.
    pub save_players: bool,
    /// Also save every player this often, in ticks, while it plays; the
    /// saves are spread over the interval (a player is saved on the tick
    /// where `tick % interval == net_id % interval`). Default 0: only when
    /// it leaves.
    pub player_save_interval_ticks: u32,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            tick_hz: 10,
            aoi_radius: 200.0,
            aoi_margin: 20.0,
            cell_size: 0,
            world_size: 4096.0,
            max_players: 10_000,
            seed: 0,
            keepalive_ticks: 10,
            max_chat_per_tick: 16,
            max_actions_per_tick: 8,
            max_events_per_tick: 256,
            save_players: false,
            player_save_interval_ticks: 0,
        }
    }
}

/// How many ticks' worth of chat lines (`max_chat_per_tick` each) may wait
/// to be sent before new lines are refused.
pub const CHAT_BACKLOG_TICKS: usize = 4;

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid room config: {0}")]
pub struct ConfigError(pub String);

impl RoomConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError(msg.to_owned()));
        if !(1..=120).contains(&self.tick_hz) {
            return fail("tick_hz must be between 1 and 120");
        }
        if !(self.aoi_radius.is_finite() && self.aoi_radius > 0.0) {
            return fail("aoi_radius must be a positive number");
        }
        if !(self.aoi_margin.is_finite() && self.aoi_margin >= 0.0) {
            return fail("aoi_margin must be zero or positive");
        }
        if self.cell_size != 0 && !self.cell_size.is_power_of_two() {
            return fail("cell_size must be a power of two (or 0 for automatic)");
        }
        if !(self.world_size.is_finite() && self.world_size >= 1.0 && self.world_size <= 1.0e7) {
            return fail("world_size must be between 1 and 10,000,000");
        }
        if self.max_players == 0 {
            return fail("max_players must be at least 1");
        }
        if self.keepalive_ticks == 0 {
            return fail("keepalive_ticks must be at least 1");
        }
        if self.max_chat_per_tick == 0 {
            return fail("max_chat_per_tick must be at least 1");
        }
        if self.max_actions_per_tick == 0 {
            return fail("max_actions_per_tick must be at least 1");
        }
        if self.max_events_per_tick == 0 {
            return fail("max_events_per_tick must be at least 1");
        }
        Ok(())
    }

    /// The grid cell side actually used.
    pub fn effective_cell_size(&self) -> u32 {
        if self.cell_size != 0 {
            return self.cell_size;
        }
        let half = (self.aoi_radius / 2.0).max(1.0);
        let below = 1u32 << (half.log2().floor() as u32).min(30);
        let above = below.saturating_mul(2);
        if half - below as f32 <= above as f32 - half {
            below
        } else {
            above
        }
    }

    /// Seconds per tick.
    pub fn dt(&self) -> f32 {
        1.0 / f32::from(self.tick_hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_cell_follows_radius() {
        let c = RoomConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.effective_cell_size(), 128);
        let small = RoomConfig {
            aoi_radius: 50.0,
            ..c.clone()
        };
        assert_eq!(small.effective_cell_size(), 32);
        assert!(
            RoomConfig {
                cell_size: 100,
                ..c
            }
            .validate()
            .is_err()
        );
    }
}
