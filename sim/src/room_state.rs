//! What the room's own passes keep between ticks, in one world resource.
//!
//! Every resource type costs a room about 3 KB before it holds anything:
//! bevy keeps each one as an entity with its own archetype, a sparse set
//! reserved for 64 values, its change ticks and a component record. The
//! room's passes run one after the other (see [`crate::passes`]), so they
//! gain nothing from separate resources that could be borrowed in
//! parallel; together they cost the room one.

use crate::delta::{DeltaConfig, Outbox};
use crate::interest::{Clients, InterestConfig};
use crate::replication::ReplicationState;
use crate::spatial_grid::SpatialGrid;
use crate::stats::TickStats;

/// The room's state outside its entities; the world holds it as
/// `Boxed<RoomState>`. Games never see it: they read what they need
/// through [`crate::Room`].
#[derive(Debug)]
pub(crate) struct RoomState {
    pub clients: Clients,
    pub outbox: Outbox,
    pub grid: SpatialGrid,
    pub replication: ReplicationState,
    pub stats: TickStats,
    pub delta: DeltaConfig,
    pub interest: InterestConfig,
}
