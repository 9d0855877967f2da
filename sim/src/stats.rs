//! What the last tick did, for metrics and benchmarks.

/// Counters of the last tick (a world resource, reset every step).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickStats {
    pub tick: u32,
    /// Replicated entities in the world.
    pub entities: u32,
    /// Entities whose wire state changed this tick.
    pub changed_entities: u32,
    pub clients: u32,
    /// Clients whose view was unchanged and skipped.
    pub skipped_views: u32,
    /// Sum and maximum of the clients' visible-set sizes (recomputed views).
    pub visible_total: u64,
    pub visible_max: u32,
    pub delta_frames: u32,
    pub delta_bytes: u64,
    pub entered: u64,
    pub updated: u64,
    /// Changes sent as moves (`updated` leaves them out).
    pub moved: u64,
    pub left: u64,
    /// Actions applied at the start of the tick.
    pub actions: u32,
    /// Game event frames sent (one per event and recipient).
    pub event_frames: u32,
    /// Replicated values that failed to encode (a bug in a game's wire type).
    pub encode_errors: u32,
}
