//! What a session knows about its connection right now, shared (read-only)
//! with its room so the admin API can show it: the address, the transport,
//! and the round trip measured by the server itself.
//!
//! The round trip is measured with transport-level probes: every
//! [`PROBE_PERIOD`] the writer sends one (a WebSocket ping whose payload is
//! the send time, flushed with the next batch of frames), the client's
//! WebSocket layer answers it by itself (RFC 6455 requires it; browsers and
//! every client library do), and the reader takes the time back out of the
//! answer. Only an answer to the latest probe counts, so a client cannot
//! report a round trip of its choosing by sending unsolicited pongs. The
//! protocol's own `Ping`/`Pong` is the client's measurement; the server
//! never sees its result.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Time between two round-trip probes.
pub const PROBE_PERIOD: Duration = Duration::from_secs(2);
/// Delay before the first probe.
pub const FIRST_PROBE: Duration = Duration::from_millis(500);

/// No value yet.
const UNKNOWN: u64 = u64::MAX;

/// A connection's live numbers.
#[derive(Debug)]
pub struct SessionLive {
    pub peer: SocketAddr,
    pub transport: &'static str,
    pub connected: Instant,
    /// Latest round trip in microseconds.
    rtt_us: AtomicU64,
    /// Send time of the outstanding probe, in microseconds since `connected`.
    probe_sent_us: AtomicU64,
}

impl SessionLive {
    pub fn new(peer: SocketAddr, transport: &'static str) -> Self {
        Self {
            peer,
            transport,
            connected: Instant::now(),
            rtt_us: AtomicU64::new(UNKNOWN),
            probe_sent_us: AtomicU64::new(UNKNOWN),
        }
    }

    /// The latest measured round trip, if a probe was answered yet.
    pub fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Ordering::Relaxed) {
            UNKNOWN => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Records a round trip the transport measured itself (QUIC).
    pub fn set_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(UNKNOWN - 1);
        self.rtt_us.store(us.min(UNKNOWN - 1), Ordering::Relaxed);
    }

    /// Payload of a new probe sent at `now`; it replaces any outstanding one.
    pub fn probe(&self, now: Instant) -> [u8; 8] {
        let sent = self.micros(now);
        self.probe_sent_us.store(sent, Ordering::Relaxed);
        sent.to_be_bytes()
    }

    /// Takes an answer to a probe received at `now`. Returns the round trip
    /// when it answers the outstanding probe.
    pub fn probe_answered(&self, payload: &[u8], now: Instant) -> Option<Duration> {
        let sent = u64::from_be_bytes(payload.try_into().ok()?);
        if sent == UNKNOWN {
            return None;
        }
        // Each probe is answered once.
        self.probe_sent_us
            .compare_exchange(sent, UNKNOWN, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        let rtt = self.micros(now).checked_sub(sent)?;
        self.rtt_us.store(rtt, Ordering::Relaxed);
        Some(Duration::from_micros(rtt))
    }

    fn micros(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.connected).as_micros())
            .unwrap_or(UNKNOWN - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_outstanding_probe_counts_once() {
        let live = SessionLive::new("127.0.0.1:1".parse().expect("addr"), "ws");
        assert_eq!(live.rtt(), None);
        let t0 = live.connected + Duration::from_millis(10);
        let old = live.probe(t0);
        let payload = live.probe(t0 + Duration::from_millis(5));
        let later = t0 + Duration::from_millis(25);
        assert_eq!(live.probe_answered(&old, later), None, "superseded");
        assert_eq!(live.probe_answered(b"forged!!", later), None);
        assert_eq!(live.probe_answered(b"short", later), None);
        assert_eq!(
            live.probe_answered(&payload, later),
            Some(Duration::from_millis(20))
        );
        assert_eq!(live.probe_answered(&payload, later), None, "answered once");
        assert_eq!(live.rtt(), Some(Duration::from_millis(20)));
    }
}
