//! Round-trip time from `Ping`/`Pong` nonces. Sans-IO: every call takes the
//! `now` of the event it describes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Pings remembered while waiting for their `Pong`. More than this in flight
/// means the server is not answering; the oldest are forgotten so the table
/// stays bounded, and their late pongs are ignored.
pub const MAX_PINGS_IN_FLIGHT: usize = 16;

/// Round-trip time estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtt {
    /// The most recent sample.
    pub latest: Duration,
    /// Exponentially smoothed (weight 1/8 per new sample, as TCP's SRTT in
    /// RFC 6298): steady enough to size an interpolation delay.
    pub smoothed: Duration,
    /// Lowest sample seen: the path's floor without queueing.
    pub min: Duration,
}

/// Issues ping nonces and turns matching pongs into [`Rtt`] samples.
#[derive(Debug, Clone)]
pub(crate) struct PingTracker {
    next_nonce: u32,
    in_flight: VecDeque<(u32, Instant)>,
    rtt: Option<Rtt>,
    unmatched_pongs: u64,
}

impl Default for PingTracker {
    fn default() -> Self {
        Self {
            next_nonce: 1,
            in_flight: VecDeque::with_capacity(MAX_PINGS_IN_FLIGHT),
            rtt: None,
            unmatched_pongs: 0,
        }
    }
}

impl PingTracker {
    /// A fresh nonce, remembered as sent at `now`.
    pub(crate) fn issue(&mut self, now: Instant) -> u32 {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        if self.in_flight.len() == MAX_PINGS_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back((nonce, now));
        nonce
    }

    /// Records the pong for `nonce` received at `now`; returns the sample, or
    /// `None` for a nonce that is not in flight (forgotten, or never sent).
    pub(crate) fn on_pong(&mut self, nonce: u32, now: Instant) -> Option<Duration> {
        let Some(index) = self.in_flight.iter().position(|(n, _)| *n == nonce) else {
            self.unmatched_pongs += 1;
            return None;
        };
        // Pongs come back in order, so pings older than this one were lost
        // (possible on an unreliable transport); forget them too.
        let mut sent_at = now;
        for _ in 0..=index {
            if let Some((_, at)) = self.in_flight.pop_front() {
                sent_at = at;
            }
        }
        let sample = now.saturating_duration_since(sent_at);
        self.rtt = Some(match self.rtt {
            None => Rtt {
                latest: sample,
                smoothed: sample,
                min: sample,
            },
            Some(prev) => Rtt {
                latest: sample,
                smoothed: (prev.smoothed * 7 + sample) / 8,
                min: prev.min.min(sample),
            },
        });
        Some(sample)
    }

    pub(crate) fn rtt(&self) -> Option<Rtt> {
        self.rtt
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub(crate) fn unmatched_pongs(&self) -> u64 {
        self.unmatched_pongs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn samples_smooth_and_keep_the_minimum() {
        let t0 = Instant::now();
        let mut p = PingTracker::default();
        let a = p.issue(t0);
        assert_eq!(p.on_pong(a, t0 + ms(80)), Some(ms(80)));
        let b = p.issue(t0 + ms(100));
        assert_eq!(p.on_pong(b, t0 + ms(140)), Some(ms(40)));
        let rtt = p.rtt().expect("has samples");
        assert_eq!(rtt.latest, ms(40));
        assert_eq!(rtt.smoothed, ms(75)); // (7 * 80 + 40) / 8
        assert_eq!(rtt.min, ms(40));
    }

    #[test]
    fn unknown_and_repeated_nonces_are_ignored() {
        let t0 = Instant::now();
        let mut p = PingTracker::default();
        let a = p.issue(t0);
        assert_eq!(p.on_pong(a + 100, t0), None);
        assert!(p.on_pong(a, t0 + ms(5)).is_some());
        assert_eq!(p.on_pong(a, t0 + ms(6)), None);
        assert_eq!(p.unmatched_pongs(), 2);
    }

    #[test]
    fn a_pong_forgets_older_pings_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut p = PingTracker::default();
        let first = p.issue(t0);
        let second = p.issue(t0 + ms(10));
        assert_eq!(p.on_pong(second, t0 + ms(30)), Some(ms(20)));
        assert_eq!(p.in_flight(), 0);
        assert_eq!(p.on_pong(first, t0 + ms(31)), None);

        for i in 0..(MAX_PINGS_IN_FLIGHT as u64 + 5) {
            p.issue(t0 + ms(i));
        }
        assert_eq!(p.in_flight(), MAX_PINGS_IN_FLIGHT);
    }
}
