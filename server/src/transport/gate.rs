//! Admission of connections into their transport handshake (WebSocket
//! upgrade, QUIC handshake and control stream), before any session counts
//! them.
//!
//! Two bounds: one on all pending handshakes of a transport, for memory,
//! and one per client address, so that a single host holding handshakes
//! open cannot use up the first. Each transport has its own gate: a flood
//! on one leaves the other open.
//!
//! When all slots are taken, a newcomer whose address is under its own
//! bound takes the slot of the oldest pending handshake, which is told to
//! give up ([`HandshakeSlot::evicted`]). A real client finishes its
//! handshake in a few round trips; the handshakes that are old are the ones
//! held open on purpose, so full slots never lock real clients out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::metrics;

#[derive(Debug)]
pub struct HandshakeGate {
    max_total: usize,
    max_per_address: usize,
    pending: Mutex<Pending>,
}

/// Handshakes under way: by admission order, and counted by address (an
/// address leaves the map when its last one ends).
#[derive(Debug, Default)]
struct Pending {
    next_id: u64,
    /// Oldest first: admission number → (address, eviction signal).
    by_age: BTreeMap<u64, (IpAddr, CancellationToken)>,
    by_address: HashMap<IpAddr, usize>,
}

impl Pending {
    /// Forgets handshake `id`, if it is still counted.
    fn remove(&mut self, id: u64) -> Option<CancellationToken> {
        let (address, evict) = self.by_age.remove(&id)?;
        if let Some(from_address) = self.by_address.get_mut(&address) {
            *from_address -= 1;
            if *from_address == 0 {
                self.by_address.remove(&address);
            }
        }
        Some(evict)
    }
}

/// A connection's place in its handshake; given back on drop.
#[derive(Debug)]
pub struct HandshakeSlot {
    gate: Arc<HandshakeGate>,
    id: u64,
    evict: CancellationToken,
}

impl HandshakeSlot {
    /// Completes when a newer handshake took this slot: the connection
    /// should give up its handshake.
    pub fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.evict.clone().cancelled_owned()
    }
}

impl HandshakeGate {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            pending: Mutex::default(),
        })
    }

    /// A slot for a handshake from `address`, or `None` (counted as a
    /// `handshake_limit` disconnect) when the address has its most. With
    /// every slot taken, the oldest handshake gives its slot up (counted as
    /// `handshake_evicted`).
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<HandshakeSlot> {
        let mut pending = self.pending();
        let from_address = pending.by_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.max_per_address || self.max_total == 0 {
            metrics::disconnected(metrics::end::HANDSHAKE_LIMIT);
            return None;
        }
        if pending.by_age.len() >= self.max_total {
            let oldest = pending.by_age.keys().next().copied();
            if let Some(evict) = oldest.and_then(|id| pending.remove(id)) {
                evict.cancel();
                metrics::disconnected(metrics::end::HANDSHAKE_EVICTED);
            }
        }
        let id = pending.next_id;
        pending.next_id += 1;
        let evict = CancellationToken::new();
        pending.by_age.insert(id, (address, evict.clone()));
        *pending.by_address.entry(address).or_insert(0) += 1;
        Some(HandshakeSlot {
            gate: Arc::clone(self),
            id,
            evict,
        })
    }

    /// More than half the slots are taken: time to make QUIC clients prove
    /// their address (a retry) before they may hold one.
    pub fn is_busy(&self) -> bool {
        self.pending().by_age.len() * 2 > self.max_total
    }

    /// Handshakes under way.
    pub fn pending_count(&self) -> usize {
        self.pending().by_age.len()
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        // Nothing to give back if a newer handshake already took the slot.
        self.gate.pending().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 3));

    fn counts(gate: &HandshakeGate) -> HashMap<IpAddr, usize> {
        gate.pending().by_address.clone()
    }

    #[test]
    fn bounds_per_address_and_gives_slots_back() {
        let gate = HandshakeGate::new(3, 2);
        let a1 = gate.admit(A).expect("first from a");
        let a2 = gate.admit(A).expect("second from a");
        assert!(gate.admit(A).is_none(), "a third from one address");
        assert!(gate.is_busy());
        let b1 = gate.admit(B).expect("another address still gets in");
        assert_eq!(counts(&gate), HashMap::from([(A, 2), (B, 1)]));
        drop((a1, a2, b1));
        assert!(counts(&gate).is_empty(), "no address left behind");
        assert!(!gate.is_busy());
    }

    #[test]
    fn when_full_the_oldest_handshake_gives_its_slot_to_the_newcomer() {
        let gate = HandshakeGate::new(3, 2);
        let a1 = gate.admit(A).expect("a1");
        let a2 = gate.admit(A).expect("a2");
        let b1 = gate.admit(B).expect("b1");
        let mut a1_evicted = std::pin::pin!(a1.evicted());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(a1_evicted.as_mut().poll(&mut cx).is_pending());
        let c1 = gate.admit(C).expect("c gets the oldest slot");
        assert!(a1_evicted.as_mut().poll(&mut cx).is_ready(), "a1 is told");
        assert_eq!(counts(&gate), HashMap::from([(A, 1), (B, 1), (C, 1)]));
        // The evicted slot gives nothing back a second time.
        drop(a1);
        assert_eq!(counts(&gate), HashMap::from([(A, 1), (B, 1), (C, 1)]));
        // Next oldest: a2.
        let _b2 = gate.admit(B).expect("b2");
        assert_eq!(counts(&gate), HashMap::from([(B, 2), (C, 1)]));
        assert!(gate.admit(B).is_none(), "b at its own bound evicts no one");
        drop((a2, b1, c1));
    }
}
