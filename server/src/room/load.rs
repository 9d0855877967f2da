//! A room's recent load, kept by its tick thread and published once a second
//! for `GET /admin/rooms`: tick duration percentiles over the last ten
//! seconds and bytes sent per second over the last second.

use std::time::{Duration, Instant};

/// How often the numbers are recomputed and published.
const PUBLISH_PERIOD: Duration = Duration::from_secs(1);
/// Seconds of ticks the percentiles cover.
const WINDOW_SECONDS: usize = 10;

/// The published numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoomLoad {
    pub tick_p50_ms: f64,
    pub tick_p99_ms: f64,
    pub bytes_out_per_s: u64,
}

/// Recent tick durations (a ring) and bytes sent since the last publish.
#[derive(Debug)]
pub(super) struct LoadWindow {
    /// Tick durations in microseconds, oldest overwritten first.
    ticks: Vec<u32>,
    next: usize,
    scratch: Vec<u32>,
    bytes: u64,
    since: Instant,
}

impl LoadWindow {
    pub(super) fn new(tick_hz: u16, now: Instant) -> Self {
        let capacity = usize::from(tick_hz).max(1) * WINDOW_SECONDS;
        Self {
            ticks: Vec::with_capacity(capacity),
            next: 0,
            scratch: Vec::with_capacity(capacity),
            bytes: 0,
            since: now,
        }
    }

    /// Records one tick: how long it took and the bytes it queued.
    pub(super) fn record(&mut self, duration: Duration, bytes: u64) {
        let micros = u32::try_from(duration.as_micros()).unwrap_or(u32::MAX);
        if self.ticks.len() < self.ticks.capacity() {
            self.ticks.push(micros);
        } else {
            self.ticks[self.next] = micros;
            self.next = (self.next + 1) % self.ticks.len();
        }
        self.bytes += bytes;
    }

    /// The numbers, once per [`PUBLISH_PERIOD`] (and after the first tick).
    pub(super) fn publish(&mut self, now: Instant) -> Option<RoomLoad> {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < PUBLISH_PERIOD && self.ticks.len() != 1 {
            return None;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.ticks);
        let p50 = percentile(&mut self.scratch, 50);
        let p99 = percentile(&mut self.scratch, 99);
        let per_second = if elapsed.is_zero() {
            self.bytes
        } else {
            (self.bytes as f64 / elapsed.as_secs_f64()).round() as u64
        };
        self.bytes = 0;
        self.since = now;
        Some(RoomLoad {
            tick_p50_ms: f64::from(p50) / 1000.0,
            tick_p99_ms: f64::from(p99) / 1000.0,
            bytes_out_per_s: per_second,
        })
    }
}

/// The `p`th percentile (nearest rank) of `values`, reordering them.
fn percentile(values: &mut [u32], p: usize) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let rank = (values.len() * p).div_ceil(100).clamp(1, values.len()) - 1;
    *values.select_nth_unstable(rank).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_cover_the_window_and_bytes_are_per_second() {
        let start = Instant::now();
        let mut w = LoadWindow::new(10, start);
        w.record(Duration::from_millis(2), 100);
        assert!(w.publish(start).is_some(), "the first tick publishes");
        for i in 1..=100u64 {
            w.record(Duration::from_micros(i * 10), 10);
        }
        assert_eq!(w.publish(start + Duration::from_millis(500)), None);
        let load = w
            .publish(start + Duration::from_secs(2))
            .expect("published");
        // The ring holds the last 100 ticks: 10 us .. 1000 us.
        assert_eq!(load.tick_p50_ms, 0.5);
        assert_eq!(load.tick_p99_ms, 0.99);
        assert_eq!(load.bytes_out_per_s, 500);
    }

    #[test]
    fn percentile_of_few_values() {
        assert_eq!(percentile(&mut [], 99), 0);
        assert_eq!(percentile(&mut [7], 50), 7);
        assert_eq!(percentile(&mut [3, 1, 2], 50), 2);
        assert_eq!(percentile(&mut [3, 1, 2], 99), 3);
    }
}
