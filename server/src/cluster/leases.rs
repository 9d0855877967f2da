//! The leases this node holds, as it last heard from Redis, with the time
//! passed in. No I/O: the refresher and the join path tell it what Redis
//! said and when they asked.
//!
//! A lease is trusted until `asked + lease − margin`, where `asked` is when
//! the call that granted or extended it was sent. Redis starts its TTL when
//! it runs the script, which is later, so this node stops admitting players
//! before any other node can take the room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One lease, as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub epoch: u64,
    /// Until when this node may admit players under it.
    pub valid_until: Instant,
    /// When it was taken, or last seen in use.
    pub used_at: Instant,
    /// Seats reserved in the room and not yet used, at the last refresh.
    pub pending_seats: usize,
}

/// A lease the refresher should refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub room: String,
    pub epoch: u64,
}

/// The leases of this node.
#[derive(Debug)]
pub struct Leases {
    lease: Duration,
    /// How long a lease of a room that is not open is kept (the room was
    /// placed here and its first player is on the way, or it just closed).
    idle: Duration,
    by_room: Mutex<HashMap<String, Lease>>,
}

impl Leases {
    pub fn new(lease: Duration, idle: Duration) -> Self {
        Self {
            lease,
            idle,
            by_room: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.by_room.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A tenth of the lease, at least 100 ms: how long before Redis would
    /// expire a lease this node stops trusting it.
    fn margin(&self) -> Duration {
        (self.lease / 10).max(Duration::from_millis(100))
    }

    /// The lease of `room`, if this node may admit players under it now.
    pub fn valid(&self, room: &str, now: Instant) -> Option<Lease> {
        self.lock()
            .get(room)
            .copied()
            .filter(|lease| now < lease.valid_until)
    }

    /// Redis granted or extended the lease of `room` under `epoch`, in
    /// answer to a call sent at `asked`.
    pub fn granted(&self, room: &str, epoch: u64, pending_seats: usize, asked: Instant) {
        let valid_until = asked + self.lease.saturating_sub(self.margin());
        let mut leases = self.lock();
        let lease = leases.entry(room.to_owned()).or_insert(Lease {
            epoch,
            valid_until,
            used_at: asked,
            pending_seats,
        });
        if lease.epoch != epoch {
            lease.used_at = asked;
        }
        lease.epoch = epoch;
        lease.valid_until = lease.valid_until.max(valid_until);
        lease.pending_seats = pending_seats;
    }

    /// Marks the lease of `room` in use now (a join was admitted under it),
    /// so that it is not dropped as idle before the room opens.
    pub fn touch(&self, room: &str, now: Instant) {
        if let Some(lease) = self.lock().get_mut(room) {
            lease.used_at = now;
        }
    }

    /// Whether this node holds a lease of `room` (trusted or not).
    pub fn holds(&self, room: &str) -> bool {
        self.lock().contains_key(room)
    }

    /// Every lease held, to release them when the node stops.
    pub fn all(&self) -> Vec<Due> {
        self.lock()
            .iter()
            .map(|(room, lease)| Due {
                room: room.clone(),
                epoch: lease.epoch,
            })
            .collect()
    }

    /// Forgets the lease of `room` if it is still `epoch` (Redis said
    /// another node has the room). Returns whether it was held.
    pub fn lost(&self, room: &str, epoch: u64) -> bool {
        let mut leases = self.lock();
        if leases.get(room).is_some_and(|l| l.epoch == epoch) {
            leases.remove(room);
            return true;
        }
        false
    }

    /// The leases to refresh now. A lease whose room is not open here
    /// (`is_open` says), with no seat pending and unused for the idle time,
    /// is dropped instead: it then expires in Redis by itself, and the
    /// room's next join places it afresh.
    pub fn due(&self, is_open: impl Fn(&str) -> bool, now: Instant) -> Vec<Due> {
        let mut leases = self.lock();
        leases.retain(|room, lease| {
            if is_open(room) {
                lease.used_at = now;
                return true;
            }
            lease.pending_seats > 0 || now.saturating_duration_since(lease.used_at) < self.idle
        });
        leases
            .iter()
            .map(|(room, lease)| Due {
                room: room.clone(),
                epoch: lease.epoch,
            })
            .collect()
    }

    /// Leases held now (for the metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(10);

    #[test]
    fn a_lease_is_trusted_until_a_margin_before_redis_expires_it() {
        let leases = Leases::new(LEASE, IDLE);
        let t0 = Instant::now();
        leases.granted("r", 3, 0, t0);
        assert_eq!(leases.valid("r", t0).map(|l| l.epoch), Some(3));
        let edge = t0 + LEASE - LEASE / 10;
        assert!(leases.valid("r", edge - Duration::from_millis(1)).is_some());
        assert!(leases.valid("r", edge).is_none());
        assert!(leases.valid("other", t0).is_none());
    }

    #[test]
    fn a_refresh_extends_and_an_old_answer_never_shortens() {
        let leases = Leases::new(LEASE, IDLE);
        let t0 = Instant::now();
        leases.granted("r", 3, 0, t0 + Duration::from_secs(2));
        leases.granted("r", 3, 0, t0);
        let lease = leases.valid("r", t0).expect("held");
        assert_eq!(
            lease.valid_until,
            t0 + Duration::from_secs(2) + LEASE - LEASE / 10
        );
    }

    #[test]
    fn a_lost_lease_is_forgotten_only_for_its_own_epoch() {
        let leases = Leases::new(LEASE, IDLE);
        let t0 = Instant::now();
        leases.granted("r", 4, 0, t0);
        assert!(!leases.lost("r", 3));
        assert!(leases.valid("r", t0).is_some());
        assert!(leases.lost("r", 4));
        assert!(leases.valid("r", t0).is_none());
    }

    #[test]
    fn leases_of_closed_rooms_are_dropped_after_the_idle_time_unless_seats_wait() {
        let leases = Leases::new(LEASE, IDLE);
        let t0 = Instant::now();
        leases.granted("open", 1, 0, t0);
        leases.granted("placed", 1, 0, t0);
        leases.granted("awaited", 1, 2, t0);
        let is_open = |room: &str| room == "open";
        let due = leases.due(is_open, t0 + Duration::from_secs(1));
        assert_eq!(due.len(), 3);
        let mut due: Vec<_> = leases
            .due(is_open, t0 + IDLE)
            .into_iter()
            .map(|d| d.room)
            .collect();
        due.sort();
        assert_eq!(due, ["awaited", "open"]);
    }
}
