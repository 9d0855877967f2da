//! Rate limits checked at the instant their caller passes in.
//!
//! governor's GCRA does the arithmetic; its clock is one that reads the
//! time the caller last gave it, so the session rules stay free of clocks
//! and a test steps them by hand.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// A clock that shows the last time it was set to, as nanoseconds since
/// its origin. Clones share the time: the limiter holds one, its owner
/// sets the other.
#[derive(Debug, Clone)]
pub struct PassedClock {
    origin: Instant,
    nanos: Arc<AtomicU64>,
}

impl PassedClock {
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sets the time; an instant before the origin reads as the origin.
    pub fn set(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        self.nanos
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Clock for PassedClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.nanos.load(Ordering::Relaxed))
    }
}

/// `per_second` cells a second, `burst` at once, on a [`PassedClock`].
#[derive(Debug)]
pub struct Limiter {
    cells: RateLimiter<NotKeyed, InMemoryState, PassedClock, NoOpMiddleware<Nanos>>,
    clock: PassedClock,
}

impl Limiter {
    /// A limiter whose time starts at `origin`. A zero rate or burst is
    /// taken as the smallest allowed.
    pub fn new(per_second: u32, burst: u32, origin: Instant) -> Self {
        let clock = PassedClock::new(origin);
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Self {
            cells: RateLimiter::direct_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            ),
            clock,
        }
    }

    /// Takes one cell at `now`; false when the rate is used up.
    pub fn allow(&self, now: Instant) -> bool {
        self.clock.set(now);
        self.cells.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate_refills_with_passed_time() {
        let t0 = Instant::now();
        let limiter = Limiter::new(10, 3, t0);
        assert!((0..3).all(|_| limiter.allow(t0)), "the burst");
        assert!(!limiter.allow(t0), "past the burst");
        assert!(!limiter.allow(t0 + Duration::from_millis(50)));
        assert!(limiter.allow(t0 + Duration::from_millis(100)), "one cell");
        assert!(!limiter.allow(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(5);
        assert!(
            (0..3).all(|_| limiter.allow(later)),
            "refilled to the burst"
        );
        assert!(!limiter.allow(later));
    }
}
