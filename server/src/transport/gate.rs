//! Admission of connections into their transport handshake (WebSocket
//! upgrade, QUIC handshake and control stream), before any session counts
//! them.
//!
//! Two bounds: one on all pending handshakes of a transport, for memory,
//! and one per client address, so that a single host holding handshakes
//! open cannot use up the first and lock everyone else out. Each transport
//! has its own gate: a flood on one leaves the other open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::metrics;

#[derive(Debug)]
pub struct HandshakeGate {
    max_total: usize,
    max_per_address: usize,
    pending: Mutex<Pending>,
}

/// Handshakes under way, in all and by address (an address leaves the map
/// when its last one ends).
#[derive(Debug, Default)]
struct Pending {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection's place in its handshake; given back on drop.
#[derive(Debug)]
pub struct HandshakeSlot {
    gate: Arc<HandshakeGate>,
    address: IpAddr,
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
    /// `handshake_limit` disconnect) when either bound is reached.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<HandshakeSlot> {
        let mut pending = self.pending();
        let from_address = pending.by_address.get(&address).copied().unwrap_or(0);
        if pending.total >= self.max_total || from_address >= self.max_per_address {
            metrics::disconnected(metrics::end::HANDSHAKE_LIMIT);
            return None;
        }
        pending.total += 1;
        *pending.by_address.entry(address).or_insert(0) += 1;
        Some(HandshakeSlot {
            gate: Arc::clone(self),
            address,
        })
    }

    /// More than half the slots are taken: time to make QUIC clients prove
    /// their address (a retry) before they may hold one.
    pub fn is_busy(&self) -> bool {
        self.pending().total * 2 > self.max_total
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut pending = self.gate.pending();
        pending.total -= 1;
        if let Some(from_address) = pending.by_address.get_mut(&self.address) {
            *from_address -= 1;
            if *from_address == 0 {
                pending.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_address_and_in_all_and_gives_slots_back() {
        let gate = HandshakeGate::new(3, 2);
        let (a, b, c) = (
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 2]),
            IpAddr::from([10, 0, 0, 3]),
        );
        let a1 = gate.admit(a).expect("first from a");
        let a2 = gate.admit(a).expect("second from a");
        assert!(gate.admit(a).is_none(), "a third from one address");
        assert!(gate.is_busy());
        let b1 = gate.admit(b).expect("another address still gets in");
        assert!(gate.admit(c).is_none(), "all three slots taken");
        let counts = |gate: &HandshakeGate| gate.pending().by_address.clone();
        assert_eq!(counts(&gate), HashMap::from([(a, 2), (b, 1)]));
        drop(a1);
        let c1 = gate.admit(c).expect("a slot came back");
        assert!(gate.admit(a).is_none(), "full again");
        drop((c1, b1, a2));
        assert!(counts(&gate).is_empty(), "no address left behind");
        assert!(!gate.is_busy());
    }
}
