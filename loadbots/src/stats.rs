//! What the swarm measures, shared by every bot.
//!
//! Latency and byte figures count only inside the measured window. Bots run
//! on one thread, so the lock is never contended; it costs a few tens of
//! nanoseconds per record.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::fail_fast::JoinProgress;
use crate::join::JoinError;

/// Microsecond histograms up to a minute, 3 significant digits.
fn micros() -> Histogram<u64> {
    Histogram::new_with_max(60_000_000, 3).expect("constant, valid histogram bounds")
}

/// Counts up to a million (visible entities).
fn counts() -> Histogram<u64> {
    Histogram::new_with_max(1_000_000, 3).expect("constant, valid histogram bounds")
}

/// The measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    /// The part of `[from, to)` inside the window.
    pub fn overlap(&self, from: Instant, to: Instant) -> Duration {
        let (a, b) = (from.max(self.start), to.min(self.end));
        b.saturating_duration_since(a)
    }
}

/// One bot's traffic inside the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    pub down: u64,
    pub up: u64,
    pub connected: Duration,
    /// Bytes of the delta frames among `down`, and the entity updates
    /// (entered, updated or moved) they carried.
    pub delta_bytes: u64,
    pub entity_updates: u64,
}

#[derive(Debug)]
struct Histograms {
    rtt_us: Histogram<u64>,
    snapshot_us: Histogram<u64>,
    visible: Histogram<u64>,
    /// From a dropped connection to the Welcome of its resume.
    resume_us: Histogram<u64>,
    /// From the start of a join to its Welcome, redirects included.
    join_us: Histogram<u64>,
    /// RTTs since the progress bar last looked, whatever the window.
    live_rtt_us: Histogram<u64>,
    traffic: Vec<Traffic>,
}

#[derive(Debug)]
pub struct Stats {
    pub window: Window,
    pub connected: AtomicUsize,
    pub join_failures: AtomicU64,
    /// Joins that succeeded (a rejoin counts again).
    pub joins: AtomicU64,
    /// Join failures that will not change by retrying.
    definite_join_failures: AtomicU64,
    /// Why joins fail, kept only until the first join: it is what the run
    /// says when no bot can join ([`JoinProgress::cause`]).
    join_failure_cause: Mutex<Option<JoinError>>,
    pub disconnects: AtomicU64,
    pub decode_errors: AtomicU64,
    pub protocol_violations: AtomicU64,
    pub deltas: AtomicU64,
    /// Dropped bots that got their player back, and those refused.
    pub resumes: AtomicU64,
    pub resume_failures: AtomicU64,
    /// Redirects followed to another node of a cluster, and seats a node
    /// refused (`seat_invalid`, the bot then joined again through its URL).
    pub redirects: AtomicU64,
    pub seat_refusals: AtomicU64,
    histograms: Mutex<Histograms>,
}

impl Stats {
    pub fn new(window: Window) -> Self {
        Self {
            window,
            connected: AtomicUsize::new(0),
            join_failures: AtomicU64::new(0),
            joins: AtomicU64::new(0),
            definite_join_failures: AtomicU64::new(0),
            join_failure_cause: Mutex::new(None),
            disconnects: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            protocol_violations: AtomicU64::new(0),
            deltas: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            resume_failures: AtomicU64::new(0),
            redirects: AtomicU64::new(0),
            seat_refusals: AtomicU64::new(0),
            histograms: Mutex::new(Histograms {
                rtt_us: micros(),
                snapshot_us: micros(),
                visible: counts(),
                resume_us: micros(),
                join_us: micros(),
                live_rtt_us: micros(),
                traffic: Vec::new(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Histograms) -> R) -> R {
        f(&mut self.histograms.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_join_failure(&self, why: &JoinError) {
        Self::bump(&self.join_failures);
        if why.is_definite() {
            Self::bump(&self.definite_join_failures);
        }
        if self.joins.load(Ordering::Relaxed) > 0 {
            return;
        }
        let mut cause = self
            .join_failure_cause
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if why.is_definite() || !cause.as_ref().is_some_and(JoinError::is_definite) {
            *cause = Some(why.clone());
        }
    }

    /// The joins so far, with `started` bots started.
    pub fn join_progress(&self, started: u64) -> JoinProgress {
        JoinProgress {
            started,
            joined: self.joins.load(Ordering::Relaxed),
            definite_failures: self.definite_join_failures.load(Ordering::Relaxed),
            cause: self
                .join_failure_cause
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    pub fn record_rtt(&self, now: Instant, rtt: Duration) {
        let us = rtt.as_micros().clamp(1, 60_000_000) as u64;
        let in_window = self.window.contains(now);
        self.with(|h| {
            let _ = h.live_rtt_us.record(us);
            if in_window {
                let _ = h.rtt_us.record(us);
            }
        });
    }

    /// A dropped bot got its player back, `took` after it dropped.
    pub fn record_resume(&self, took: Duration) {
        Self::bump(&self.resumes);
        let us = took.as_micros().clamp(1, 60_000_000) as u64;
        self.with(|h| {
            let _ = h.resume_us.record(us);
        });
    }

    /// A join got its Welcome, `took` after it started (every hop of it).
    /// Counted whatever the window: most joins happen during the ramp.
    pub fn record_join(&self, took: Duration) {
        let us = took.as_micros().clamp(1, 60_000_000) as u64;
        self.with(|h| {
            let _ = h.join_us.record(us);
        });
    }

    /// A delta arrived `since` after the previous one, with `visible`
    /// entities in view.
    pub fn record_delta(&self, now: Instant, since: Option<Duration>, visible: u64) {
        Self::bump(&self.deltas);
        if !self.window.contains(now) {
            return;
        }
        self.with(|h| {
            if let Some(gap) = since {
                let _ = h
                    .snapshot_us
                    .record(gap.as_micros().clamp(1, 60_000_000) as u64);
            }
            let _ = h.visible.record(visible.min(1_000_000));
        });
    }

    /// Adds a bot's traffic (called when a session ends).
    pub fn add_traffic(&self, bot: usize, t: Traffic) {
        self.with(|h| {
            if h.traffic.len() <= bot {
                h.traffic.resize(bot + 1, Traffic::default());
            }
            let slot = &mut h.traffic[bot];
            slot.down += t.down;
            slot.up += t.up;
            slot.connected += t.connected;
            slot.delta_bytes += t.delta_bytes;
            slot.entity_updates += t.entity_updates;
        });
    }

    /// The p99 RTT since the last call, in ms (for the progress bar).
    pub fn take_live_rtt_p99(&self) -> Option<f64> {
        self.with(|h| {
            let p = (!h.live_rtt_us.is_empty())
                .then(|| h.live_rtt_us.value_at_quantile(0.99) as f64 / 1000.0);
            h.live_rtt_us.reset();
            p
        })
    }

    pub fn summary(&self) -> Summary {
        self.with(|h| Summary {
            rtt_us: h.rtt_us.clone(),
            snapshot_us: h.snapshot_us.clone(),
            visible: h.visible.clone(),
            resume_us: h.resume_us.clone(),
            join_us: h.join_us.clone(),
            traffic: h.traffic.clone(),
        })
    }
}

/// A copy of the histograms at the end of a run.
#[derive(Debug)]
pub struct Summary {
    pub rtt_us: Histogram<u64>,
    pub snapshot_us: Histogram<u64>,
    pub visible: Histogram<u64>,
    pub resume_us: Histogram<u64>,
    pub join_us: Histogram<u64>,
    pub traffic: Vec<Traffic>,
}
