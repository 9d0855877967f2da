//! Whether a client address may open one more connection, decided the
//! moment it is accepted, before any handshake work: at most
//! `max_connections_per_ip` open at once from one address, and new ones at
//! most `new_connections_per_ip_per_second` (a burst of five seconds' worth).
//! Both transports share one [`AddressAdmission`], so the caps hold across
//! them.
//!
//! An IPv6 client is counted by its /64, which one host can fill with
//! addresses. The open counts hold only addresses with a connection open
//! now; the rate is a governor keyed limiter, swept of addresses that are
//! back to a full burst, so neither grows with the addresses a flood uses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::metrics;
use crate::rate::PassedClock;

/// Admissions between two sweeps of the rate limiter's idle addresses.
const SWEEP_EVERY: u64 = 1_024;

/// Why a connection was not admitted (each a `tessera_disconnects_total`
/// reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressRefused {
    #[error("too many connections open from this address")]
    TooMany,
    #[error("new connections from this address come too fast")]
    TooFast,
}

impl AddressRefused {
    pub fn label(self) -> &'static str {
        match self {
            Self::TooMany => metrics::end::ADDRESS_LIMIT,
            Self::TooFast => metrics::end::CONNECTION_RATE,
        }
    }
}

type KeyedLimiter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, PassedClock, NoOpMiddleware<Nanos>>;

pub struct AddressAdmission {
    max_open: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    new_connections: KeyedLimiter,
    clock: PassedClock,
    admitted: AtomicU64,
}

impl std::fmt::Debug for AddressAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressAdmission")
            .field("max_open", &self.max_open)
            .field("addresses_open", &self.lock().len())
            .finish_non_exhaustive()
    }
}

/// A connection's place in its address's count; given back on drop.
#[derive(Debug)]
pub struct AddressSlot {
    admission: Arc<AddressAdmission>,
    key: IpAddr,
}

impl AddressAdmission {
    /// Caps of `max_open` connections and `per_second` new ones per address;
    /// time starts at `origin`.
    pub fn new(max_open: usize, per_second: u32, origin: Instant) -> Arc<Self> {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        let clock = PassedClock::new(origin);
        Arc::new(Self {
            max_open,
            open: Mutex::default(),
            new_connections: RateLimiter::new(
                Quota::per_second(rate).allow_burst(burst),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            clock,
            admitted: AtomicU64::new(0),
        })
    }

    /// A slot for a connection from `address` accepted at `now`, or why
    /// not (the refusal is counted).
    pub fn admit(
        self: &Arc<Self>,
        address: IpAddr,
        now: Instant,
    ) -> Result<AddressSlot, AddressRefused> {
        let key = counted_as(address);
        let decided = self.decide(key, now);
        if let Err(refused) = decided {
            metrics::disconnected(refused.label());
        }
        decided
    }

    fn decide(self: &Arc<Self>, key: IpAddr, now: Instant) -> Result<AddressSlot, AddressRefused> {
        let mut open = self.lock();
        if open.get(&key).copied().unwrap_or(0) >= self.max_open {
            return Err(AddressRefused::TooMany);
        }
        self.clock.set(now);
        if self.new_connections.check_key(&key).is_err() {
            return Err(AddressRefused::TooFast);
        }
        *open.entry(key).or_insert(0) += 1;
        drop(open);
        if self.admitted.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.new_connections.retain_recent();
            self.new_connections.shrink_to_fit();
        }
        Ok(AddressSlot {
            admission: Arc::clone(self),
            key,
        })
    }

    /// Addresses the rate limiter remembers now.
    pub fn remembered(&self) -> usize {
        self.new_connections.len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The key an address is counted under: IPv4 as it is (also when mapped
/// into IPv6), IPv6 by its /64.
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn open_connections_are_capped_per_address_and_come_back() {
        let t0 = Instant::now();
        let admission = AddressAdmission::new(2, 100, t0);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let first = admission.admit(a, t0).expect("first");
        let _second = admission.admit(a, t0).expect("second");
        assert_eq!(admission.admit(a, t0).err(), Some(AddressRefused::TooMany));
        let _other = admission.admit(b, t0).expect("another address");
        drop(first);
        let _again = admission.admit(a, t0).expect("a slot came back");
    }

    #[test]
    fn new_connections_are_rate_limited_per_address_with_passed_time() {
        let t0 = Instant::now();
        // One a second, a burst of five.
        let admission = AddressAdmission::new(100, 1, t0);
        let a = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..5 {
            drop(admission.admit(a, t0).expect("within the burst"));
        }
        assert_eq!(admission.admit(a, t0).err(), Some(AddressRefused::TooFast));
        let b = IpAddr::from([10, 0, 0, 2]);
        assert!(admission.admit(b, t0).is_ok(), "others are not slowed");
        assert!(admission.admit(a, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_prefix() {
        let t0 = Instant::now();
        let admission = AddressAdmission::new(1, 100, t0);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("addr");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("addr");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("addr");
        let _held = admission.admit(one, t0).expect("first");
        assert_eq!(
            admission.admit(same_64, t0).err(),
            Some(AddressRefused::TooMany)
        );
        assert!(admission.admit(other_64, t0).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("addr");
        assert_eq!(counted_as(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn the_rate_limiter_forgets_idle_addresses() {
        let t0 = Instant::now();
        let admission = AddressAdmission::new(10, 1_000, t0);
        for i in 0..SWEEP_EVERY as u32 * 2 {
            let address = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            drop(admission.admit(address, t0));
        }
        // Long after, every address is back to a full burst.
        let later = t0 + Duration::from_secs(60);
        for i in 0..SWEEP_EVERY as u32 {
            let address = IpAddr::from((0x0b00_0000 + i).to_be_bytes());
            drop(admission.admit(address, later));
        }
        assert!(
            admission.remembered() <= SWEEP_EVERY as usize,
            "{} addresses remembered",
            admission.remembered()
        );
    }
}
