//! The names of a node's open rooms, shared by the table (which opens
//! rooms under them) and the tick threads (which close them).
//!
//! Membership and closing share this one lock, so a room can never close
//! while a session is on its way in: the table counts a session in under
//! the lock, and a tick thread closes a room only under the lock with no
//! members.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::handle::RoomHandle;

/// The names of the open rooms. The tick threads close rooms through it.
#[derive(Debug, Default)]
pub(super) struct Names {
    open: Mutex<OpenRooms>,
}

/// What the lock guards: the rooms by name, and how many of them each
/// client address opened (an address leaves the map with its last room, so
/// the map never holds more entries than there are rooms).
#[derive(Debug, Default)]
pub(super) struct OpenRooms {
    pub(super) by_name: HashMap<String, Arc<RoomHandle>>,
    opened_by: HashMap<IpAddr, usize>,
}

impl OpenRooms {
    /// Rooms open now that `address` opened.
    pub(super) fn opened_by(&self, address: IpAddr) -> usize {
        self.opened_by.get(&address).copied().unwrap_or(0)
    }

    /// Adds a room its opener's address opened.
    pub(super) fn insert(&mut self, handle: Arc<RoomHandle>) {
        *self.opened_by.entry(handle.opener).or_insert(0) += 1;
        self.by_name.insert(handle.name.clone(), handle);
    }

    fn remove(&mut self, handle: &RoomHandle) {
        if self
            .by_name
            .get(&handle.name)
            .is_some_and(|h| h.id == handle.id)
        {
            self.by_name.remove(&handle.name);
            if let Some(count) = self.opened_by.get_mut(&handle.opener) {
                *count -= 1;
                if *count == 0 {
                    self.opened_by.remove(&handle.opener);
                }
            }
        }
        handle.closed.store(true, Ordering::Release);
    }
}

impl Names {
    pub(super) fn lock(&self) -> MutexGuard<'_, OpenRooms> {
        // A panic while holding this lock cannot leave the maps half-updated
        // (every critical section is a single insert, remove or lookup).
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the room if nobody is in it or on the way in.
    pub(super) fn close_if_unused(&self, handle: &RoomHandle) -> bool {
        let mut open = self.lock();
        if handle.members.load(Ordering::Acquire) != 0 {
            return false;
        }
        open.remove(handle);
        tracing::info!(room = %handle.name, room_id = handle.id, "room closed");
        true
    }

    /// Closes a room whatever its members (it failed, or an operator
    /// closed it); their sessions end and release it, and a later join
    /// opens a fresh room under the name.
    pub(super) fn close(&self, handle: &RoomHandle) {
        self.lock().remove(handle);
    }
}
