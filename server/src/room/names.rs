//! The names of a node's open rooms, shared by the table (which opens
//! rooms under them) and the tick threads (which close them).
//!
//! Membership and closing share this one lock, so a room can never close
//! while a session is on its way in: the table counts a session in under
//! the lock, and a tick thread closes a room only under the lock with no
//! members.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::handle::RoomHandle;

/// The names of the open rooms. The tick threads close rooms through it.
#[derive(Debug, Default)]
pub(super) struct Names {
    rooms: Mutex<HashMap<String, Arc<RoomHandle>>>,
}

impl Names {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<RoomHandle>>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every critical section is a single insert, remove or lookup).
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the room if nobody is in it or on the way in.
    pub(super) fn close_if_unused(&self, handle: &RoomHandle) -> bool {
        let mut rooms = self.lock();
        if handle.members.load(Ordering::Acquire) != 0 {
            return false;
        }
        Self::remove(&mut rooms, handle);
        tracing::info!(room = %handle.name, room_id = handle.id, "room closed");
        true
    }

    /// Closes a room whatever its members (it failed, or an operator
    /// closed it); their sessions end and release it, and a later join
    /// opens a fresh room under the name.
    pub(super) fn close(&self, handle: &RoomHandle) {
        Self::remove(&mut self.lock(), handle);
    }

    fn remove(rooms: &mut HashMap<String, Arc<RoomHandle>>, handle: &RoomHandle) {
        if rooms.get(&handle.name).is_some_and(|h| h.id == handle.id) {
            rooms.remove(&handle.name);
        }
        handle.closed.store(true, Ordering::Release);
    }
}
