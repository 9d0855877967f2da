//! Prometheus metrics: every name in one place, the recorder, and the
//! cached handles the hot paths use.
//!
//! Metrics are process-wide (the `metrics` facade has one global recorder),
//! so several servers in one process (the integration tests) add up into
//! the same series. Gauges are therefore kept as each owner's contribution
//! ([`GaugeShare`]): a room, a session adds its own value and takes it back
//! when it ends, so the total is the live sum and never drifts.
//!
//! Labels are bounded: `transport` (`ws`, `quic`), `reason` (an `ErrorCode`,
//! `KickReason` or one of the fixed endings in [`end`]) and `kind`
//! (`delta`, `datagram`, `chat`, `pong`). No room or player ever becomes a
//! label.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Open client connections (gauge; label `transport`).
pub const CONNECTIONS: &str = "tessera_connections";
/// Client connections accepted since start (counter; label `transport`).
pub const CONNECTIONS_ACCEPTED: &str = "tessera_connections_accepted_total";
/// Rooms open on this node (gauge).
pub const ROOMS: &str = "tessera_rooms";
/// Players in all rooms (gauge).
pub const PLAYERS: &str = "tessera_players";
/// Replicated entities in all rooms (gauge).
pub const ENTITIES: &str = "tessera_entities";
/// Wall time of one room tick: commands, simulation, delivery (histogram,
/// seconds).
pub const TICK_DURATION: &str = "tessera_tick_duration_seconds";
/// Ticks that took longer than the tick period (counter).
pub const TICK_OVERRUNS: &str = "tessera_tick_overruns_total";
/// Bytes written to clients, frames only (counter; label `transport`).
pub const BYTES_SENT: &str = "tessera_bytes_sent_total";
/// Bytes of frames read from clients (counter; label `transport`).
pub const BYTES_RECEIVED: &str = "tessera_bytes_received_total";
/// Protocol messages written to clients (counter; label `transport`).
pub const MESSAGES_SENT: &str = "tessera_messages_sent_total";
/// Protocol frames read from clients (counter; label `transport`).
pub const MESSAGES_RECEIVED: &str = "tessera_messages_received_total";
/// Client messages refused (counter; label `reason`: an error code name).
pub const MESSAGES_REJECTED: &str = "tessera_messages_rejected_total";
/// Sessions ended (counter; label `reason`).
pub const DISCONNECTS: &str = "tessera_disconnects_total";
/// Frames not queued because a client's outbound queue was full (counter;
/// label `kind`).
pub const OUTBOUND_DROPS: &str = "tessera_outbound_queue_drops_total";
/// Pongs that found the client's outbound queue full, and whose session
/// stopped reading until there was room (counter).
pub const PONG_WAITS: &str = "tessera_pong_waits_total";
/// Game actions that found their room's command queue full, and whose
/// session stopped reading until there was room (counter).
pub const ACTION_WAITS: &str = "tessera_action_waits_total";
/// Entities each client sees, sampled once per second per client
/// (histogram).
pub const AOI_VISIBLE: &str = "tessera_aoi_visible_entities";
/// Round trip to clients measured by the server's transport probes
/// (histogram, seconds).
pub const RTT: &str = "tessera_rtt_seconds";
/// CPU time the process has used, user plus system (counter, in hundredths
/// of a second, the unit Linux counts in; Linux only).
pub const PROCESS_CPU: &str = "tessera_process_cpu_centiseconds_total";
/// Resident memory of the process (gauge, bytes; Linux only).
pub const PROCESS_RSS: &str = "tessera_process_resident_memory_bytes";

/// `reason` values of [`DISCONNECTS`] that are neither an error code nor a
/// kick reason.
pub mod end {
    /// The client closed the connection.
    pub const CLIENT_CLOSED: &str = "client_closed";
    /// The connection failed under us (reset, broken pipe).
    pub const TRANSPORT_ERROR: &str = "transport_error";
    /// Writing to the client failed.
    pub const WRITE_FAILED: &str = "write_failed";
    /// Ended without a more specific reason.
    pub const NORMAL: &str = "normal";
    /// Dropped before its transport handshake: its address had
    /// `max_pending_handshakes_per_ip` others in theirs.
    pub const HANDSHAKE_LIMIT: &str = "handshake_limit";
    /// Gave its handshake slot, the oldest of all, to a newer connection
    /// while all `max_pending_handshakes` were taken.
    pub const HANDSHAKE_EVICTED: &str = "handshake_evicted";
    /// Refused at accept: the address has `max_connections_per_ip` open.
    pub const ADDRESS_LIMIT: &str = "address_limit";
    /// Refused at accept: the address opens connections faster than
    /// `new_connections_per_ip_per_second`.
    pub const CONNECTION_RATE: &str = "connection_rate";
    /// Sent to the node that hosts its room (cluster mode).
    pub const REDIRECTED: &str = "redirected";
}

/// Cluster mode (all counters unless said): Redis round-trip time
/// (histogram, seconds; label `call`), failed Redis calls (label `call`),
/// leases held (gauge), lost (another node took the room) and refused (a
/// join found the room owned elsewhere), redirects sent, seats reserved,
/// used and expired (presented late, unknown or used), and cluster messages
/// received.
pub mod cluster {
    pub const REDIS_RTT: &str = "tessera_redis_rtt_seconds";
    pub const REDIS_FAILURES: &str = "tessera_redis_failures_total";
    pub const LEASES_HELD: &str = "tessera_leases_held";
    pub const LEASES_LOST: &str = "tessera_leases_lost_total";
    pub const LEASES_REFUSED: &str = "tessera_leases_refused_total";
    pub const REDIRECTS: &str = "tessera_redirects_total";
    pub const SEATS_RESERVED: &str = "tessera_seats_reserved_total";
    pub const SEATS_USED: &str = "tessera_seats_used_total";
    pub const SEATS_EXPIRED: &str = "tessera_seats_expired_total";
    pub const PUBSUB_MESSAGES: &str = "tessera_pubsub_messages_total";
    /// Channel messages a room published that the node's queue could not
    /// take, or that Redis could not carry.
    pub const CHANNEL_DROPS: &str = "tessera_channel_drops_total";
}

/// Persistence: the queue out of the tick, the worker, the store.
pub mod persist {
    /// Records the rooms handed to the queue, by `kind`.
    pub const ENQUEUED: &str = "tessera_persist_enqueued_total";
    /// Records the queue was too full to take (the game sees them in
    /// `Journal::dropped`), by `kind`.
    pub const DROPPED: &str = "tessera_persist_dropped_total";
    /// Records waiting in the node's queue.
    pub const QUEUE_DEPTH: &str = "tessera_persist_queue_depth";
    /// Age of the oldest record of the last batch taken, queue or stream.
    pub const OLDEST_AGE: &str = "tessera_persist_oldest_age_seconds";
    /// Records per batch written to the store.
    pub const BATCH_SIZE: &str = "tessera_persist_batch_size";
    /// Time to write one batch (one transaction).
    pub const WRITE_DURATION: &str = "tessera_persist_write_seconds";
    /// Records written, by `kind`.
    pub const WRITTEN: &str = "tessera_persist_written_total";
    /// Failed writes that are tried again.
    pub const RETRIES: &str = "tessera_persist_retries_total";
    /// Records the store kept refusing, moved to the dead letters.
    pub const DEAD_LETTERS: &str = "tessera_persist_dead_letters_total";
    /// Records appended to the Redis Stream.
    pub const STREAM_APPENDED: &str = "tessera_persist_stream_appended_total";
    /// Age of the oldest entry of the last batch a stream worker read.
    pub const STREAM_OLDEST_AGE: &str = "tessera_persist_stream_oldest_age_seconds";
    /// Stream entries taken over from a worker that stopped answering.
    pub const STREAM_CLAIMED: &str = "tessera_persist_stream_claimed_total";
    /// 1 while the store answers, 0 while it does not.
    pub const STORE_UP: &str = "tessera_persist_store_up";
}

/// The process's CPU time so far, in 1/100 s (Linux; `None` elsewhere).
pub fn process_cpu_centiseconds() -> Option<u64> {
    process::sample().map(|u| u.cpu_centiseconds)
}

/// Fine between 1 and 50 ms, where a 10 Hz tick lives and where load tests
/// read percentiles from the buckets.
const TICK_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.02, 0.025,
    0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
];
const VISIBLE_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];
const RTT_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Records per batch, from one to the largest batch a worker takes.
const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];
/// How often histograms are folded when nobody scrapes, so they stay small.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);
/// How often the process's CPU time and memory are sampled.
const PROCESS_PERIOD: Duration = Duration::from_secs(1);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls
/// return the same handle). `None` if another recorder was installed first
/// (an embedding application's): then `/metrics` says so.
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let handle = build().and_then(|b| b.install_recorder().map_err(|e| e.to_string()));
            match handle {
                Ok(handle) => {
                    describe();
                    start_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// The installed recorder's handle, if [`install`] succeeded.
pub fn handle() -> Option<&'static PrometheusHandle> {
    RECORDER.get().and_then(Option::as_ref)
}

fn build() -> Result<PrometheusBuilder, String> {
    let buckets = |b: PrometheusBuilder, name: &str, values: &[f64]| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), values)
            .map_err(|e| e.to_string())
    };
    let b = buckets(PrometheusBuilder::new(), TICK_DURATION, TICK_BUCKETS)?;
    let b = buckets(b, AOI_VISIBLE, VISIBLE_BUCKETS)?;
    let b = buckets(b, cluster::REDIS_RTT, RTT_BUCKETS)?;
    let b = buckets(b, persist::WRITE_DURATION, RTT_BUCKETS)?;
    let b = buckets(b, persist::BATCH_SIZE, BATCH_BUCKETS)?;
    buckets(b, RTT, RTT_BUCKETS)
}

fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("tessera-metrics".into())
        .spawn(move || {
            let per_upkeep = (UPKEEP_PERIOD.as_secs() / PROCESS_PERIOD.as_secs()).max(1);
            let (cpu, rss) = (
                ::metrics::counter!(PROCESS_CPU),
                ::metrics::gauge!(PROCESS_RSS),
            );
            for n in 1u64.. {
                std::thread::sleep(PROCESS_PERIOD);
                if let Some(usage) = process::sample() {
                    cpu.absolute(usage.cpu_centiseconds);
                    rss.set(usage.rss_bytes as f64);
                }
                if n % per_upkeep == 0 {
                    handle.run_upkeep();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
    }
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(CONNECTIONS, "Open client connections, by transport.");
    describe_counter!(CONNECTIONS_ACCEPTED, "Client connections accepted.");
    describe_gauge!(ROOMS, "Rooms open on this node.");
    describe_gauge!(PLAYERS, "Players in all rooms.");
    describe_gauge!(ENTITIES, "Replicated entities in all rooms.");
    describe_histogram!(
        TICK_DURATION,
        Unit::Seconds,
        "Wall time of one room tick (commands, simulation, delivery)."
    );
    describe_counter!(
        TICK_OVERRUNS,
        "Ticks that took longer than the tick period."
    );
    describe_counter!(BYTES_SENT, Unit::Bytes, "Frame bytes written to clients.");
    describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "Frame bytes read from clients."
    );
    describe_counter!(MESSAGES_SENT, "Protocol messages written to clients.");
    describe_counter!(MESSAGES_RECEIVED, "Protocol frames read from clients.");
    describe_counter!(MESSAGES_REJECTED, "Client messages refused, by reason.");
    describe_counter!(DISCONNECTS, "Sessions ended, by reason.");
    describe_counter!(
        OUTBOUND_DROPS,
        "Frames not queued because a client's outbound queue was full."
    );
    describe_counter!(
        PONG_WAITS,
        "Pongs that waited for room in a client's full outbound queue."
    );
    describe_counter!(
        ACTION_WAITS,
        "Game actions that waited for room in their room's full command queue."
    );
    describe_histogram!(
        AOI_VISIBLE,
        "Entities in a client's view, sampled once per second per client."
    );
    describe_histogram!(
        RTT,
        Unit::Seconds,
        "Round trip to clients (transport probes)."
    );
    describe_counter!(
        PROCESS_CPU,
        "CPU time used by the process, in hundredths of a second (user + system)."
    );
    describe_gauge!(PROCESS_RSS, Unit::Bytes, "Resident memory of the process.");
    describe_histogram!(
        cluster::REDIS_RTT,
        Unit::Seconds,
        "Round trip of Redis calls, by call."
    );
    describe_counter!(
        cluster::REDIS_FAILURES,
        "Redis calls that failed or timed out, by call."
    );
    describe_gauge!(cluster::LEASES_HELD, "Room leases this node holds.");
    describe_counter!(
        cluster::LEASES_LOST,
        "Room leases lost to another node (the room closed with room_moved)."
    );
    describe_counter!(
        cluster::LEASES_REFUSED,
        "Joins that found their room owned by another node."
    );
    describe_counter!(cluster::REDIRECTS, "Clients redirected to another node.");
    describe_counter!(cluster::SEATS_RESERVED, "Seats reserved on other nodes.");
    describe_counter!(cluster::SEATS_USED, "Seats used by redirected clients.");
    describe_counter!(
        cluster::SEATS_EXPIRED,
        "Seats that expired unused, or were presented late, unknown or used already."
    );
    describe_counter!(cluster::PUBSUB_MESSAGES, "Cluster messages received.");
    describe_counter!(
        cluster::CHANNEL_DROPS,
        "Channel messages dropped: the node's queue was full, or Redis could not carry them."
    );
    describe_counter!(persist::ENQUEUED, "Records queued for the store, by kind.");
    describe_counter!(
        persist::DROPPED,
        "Records dropped because the persistence queue was full, by kind."
    );
    describe_gauge!(
        persist::QUEUE_DEPTH,
        "Records waiting in the node's persistence queue."
    );
    describe_gauge!(
        persist::OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest record in the last batch taken from the queue or the stream."
    );
    describe_histogram!(
        persist::BATCH_SIZE,
        "Records per batch written to the store."
    );
    describe_histogram!(
        persist::WRITE_DURATION,
        Unit::Seconds,
        "Time to write one batch to the store."
    );
    describe_counter!(persist::WRITTEN, "Records written to the store, by kind.");
    describe_counter!(
        persist::RETRIES,
        "Store writes tried again after a failure."
    );
    describe_counter!(
        persist::DEAD_LETTERS,
        "Records the store kept refusing, moved to the dead letters."
    );
    describe_counter!(
        persist::STREAM_APPENDED,
        "Records appended to the Redis Stream."
    );
    describe_counter!(
        persist::STREAM_CLAIMED,
        "Stream entries taken over from a worker that stopped answering."
    );
    describe_gauge!(
        persist::STORE_UP,
        "1 while the store answers, 0 while it does not."
    );
}

/// The process's own CPU time and memory, from `/proc` (Linux).
mod process {
    pub(super) struct Usage {
        /// User plus system time, in clock ticks of 1/100 s.
        pub cpu_centiseconds: u64,
        pub rss_bytes: u64,
    }

    pub(super) fn sample() -> Option<Usage> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces; fields after it are
        // counted from the closing parenthesis. utime and stime are fields
        // 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(Usage {
            cpu_centiseconds: utime + stime,
            rss_bytes: rss_kb * 1024,
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        #[cfg(target_os = "linux")]
        fn reads_its_own_usage() {
            let usage = super::sample().expect("/proc is readable");
            assert!(usage.rss_bytes > 1024 * 1024);
        }
    }
}

/// Counts one refused client message.
pub fn rejected(reason: &'static str) {
    ::metrics::counter!(MESSAGES_REJECTED, "reason" => reason).increment(1);
}

/// Counts one ended session.
pub fn disconnected(reason: &'static str) {
    ::metrics::counter!(DISCONNECTS, "reason" => reason).increment(1);
}

/// One owner's part of a gauge: [`GaugeShare::set`] moves the gauge by the
/// change, and dropping the share takes its value back out.
#[derive(Debug)]
pub struct GaugeShare {
    gauge: Gauge,
    value: f64,
}

impl GaugeShare {
    pub fn new(gauge: Gauge, value: f64) -> Self {
        gauge.increment(value);
        Self { gauge, value }
    }

    pub fn set(&mut self, value: f64) {
        if value != self.value {
            self.gauge.increment(value - self.value);
            self.value = value;
        }
    }
}

impl Drop for GaugeShare {
    fn drop(&mut self) {
        self.gauge.decrement(self.value);
    }
}

/// The handles a tick thread uses (one set per thread).
#[derive(Debug, Clone)]
pub struct TickMetrics {
    pub tick_duration: Histogram,
    pub overruns: Counter,
    pub aoi_visible: Histogram,
    pub delta_drops: Counter,
    pub chat_drops: Counter,
    pub event_drops: Counter,
    pub datagram_drops: Counter,
}

impl TickMetrics {
    pub fn new() -> Self {
        Self {
            tick_duration: ::metrics::histogram!(TICK_DURATION),
            overruns: ::metrics::counter!(TICK_OVERRUNS),
            aoi_visible: ::metrics::histogram!(AOI_VISIBLE),
            delta_drops: ::metrics::counter!(OUTBOUND_DROPS, "kind" => "delta"),
            chat_drops: ::metrics::counter!(OUTBOUND_DROPS, "kind" => "chat"),
            event_drops: ::metrics::counter!(OUTBOUND_DROPS, "kind" => "event"),
            datagram_drops: ::metrics::counter!(OUTBOUND_DROPS, "kind" => "datagram"),
        }
    }
}

impl Default for TickMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A room's parts of the room, player and entity gauges.
#[derive(Debug)]
pub struct RoomGauges {
    _room: GaugeShare,
    pub players: GaugeShare,
    pub entities: GaugeShare,
}

impl RoomGauges {
    pub fn new() -> Self {
        Self {
            _room: GaugeShare::new(::metrics::gauge!(ROOMS), 1.0),
            players: GaugeShare::new(::metrics::gauge!(PLAYERS), 0.0),
            entities: GaugeShare::new(::metrics::gauge!(ENTITIES), 0.0),
        }
    }
}

impl Default for RoomGauges {
    fn default() -> Self {
        Self::new()
    }
}

/// The handles a connection uses, labelled with its transport.
#[derive(Debug)]
pub struct LinkMetrics {
    _open: GaugeShare,
    pub bytes_sent: Counter,
    pub messages_sent: Counter,
    pub bytes_received: Counter,
    pub messages_received: Counter,
    pub pong_waits: Counter,
    pub action_waits: Counter,
    pub rtt: Histogram,
}

impl LinkMetrics {
    /// Counts the connection in (accepted, open) until dropped.
    pub fn open(transport: &'static str) -> Self {
        ::metrics::counter!(CONNECTIONS_ACCEPTED, "transport" => transport).increment(1);
        Self {
            _open: GaugeShare::new(
                ::metrics::gauge!(CONNECTIONS, "transport" => transport),
                1.0,
            ),
            bytes_sent: ::metrics::counter!(BYTES_SENT, "transport" => transport),
            messages_sent: ::metrics::counter!(MESSAGES_SENT, "transport" => transport),
            bytes_received: ::metrics::counter!(BYTES_RECEIVED, "transport" => transport),
            messages_received: ::metrics::counter!(MESSAGES_RECEIVED, "transport" => transport),
            pong_waits: ::metrics::counter!(PONG_WAITS),
            action_waits: ::metrics::counter!(ACTION_WAITS),
            rtt: ::metrics::histogram!(RTT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_unique() {
        let names = [
            CONNECTIONS,
            CONNECTIONS_ACCEPTED,
            ROOMS,
            PLAYERS,
            ENTITIES,
            TICK_DURATION,
            TICK_OVERRUNS,
            BYTES_SENT,
            BYTES_RECEIVED,
            MESSAGES_SENT,
            MESSAGES_RECEIVED,
            MESSAGES_REJECTED,
            DISCONNECTS,
            OUTBOUND_DROPS,
            PONG_WAITS,
            ACTION_WAITS,
            AOI_VISIBLE,
            RTT,
        ];
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| n.starts_with("tessera_")));
    }

    #[test]
    fn gauge_shares_add_up_and_leave_nothing_behind() {
        let handle = install().expect("recorder installs");
        let name = "tessera_test_share";
        {
            let mut a = GaugeShare::new(::metrics::gauge!(name), 2.0);
            let _b = GaugeShare::new(::metrics::gauge!(name), 3.0);
            a.set(4.0);
            assert!(handle.render().contains("tessera_test_share 7"));
        }
        assert!(handle.render().contains("tessera_test_share 0"));
    }
}
