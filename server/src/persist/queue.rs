//! The queue between the tick and the store: bounded, and never waited on.
//!
//! A tick thread offers each record with [`RecordSink::offer`], which never
//! blocks: when the queue is full the record is dropped, counted by kind
//! and logged (at most once a second), and the offer says so, for the room
//! to tell its game. One task of the node drains the queue in batches: the
//! local worker, or the appender to the Redis Stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use metrics::Counter;
use tokio::sync::mpsc;

use super::recent::Recent;
use super::record::Record;
use crate::metrics::persist as names;

/// A record and when it was queued (for the oldest-age gauge).
#[derive(Debug)]
pub struct Queued {
    pub record: Record,
    pub at: Instant,
}

/// Counters by record kind, in [`Record::kind`]'s order.
#[derive(Debug)]
struct ByKind([Counter; 3]);

impl ByKind {
    fn new(name: &'static str) -> Self {
        let kind = |k: &'static str| metrics::counter!(name, "kind" => k);
        Self([kind("player_state"), kind("checkpoint"), kind("event")])
    }

    fn index(record: &Record) -> usize {
        match record {
            Record::PlayerState(_) => 0,
            Record::Checkpoint(_) => 1,
            Record::Event(_) => 2,
        }
    }
}

#[derive(Debug)]
struct SinkMetrics {
    enqueued: ByKind,
    dropped: ByKind,
    /// Unix second of the last drop logged.
    last_logged: AtomicU64,
}

/// The tick's end of the queue; clone it into every room.
#[derive(Debug, Clone)]
pub struct RecordSink {
    tx: mpsc::Sender<Queued>,
    metrics: Arc<SinkMetrics>,
    /// Told of every save and checkpoint as it is offered (see
    /// [`Recent`]).
    recent: Option<Arc<Recent>>,
}

/// The draining end.
#[derive(Debug)]
pub struct RecordQueue {
    rx: mpsc::Receiver<Queued>,
}

/// A queue of at most `capacity` records.
pub fn channel(capacity: usize) -> (RecordSink, RecordQueue) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let metrics = Arc::new(SinkMetrics {
        enqueued: ByKind::new(names::ENQUEUED),
        dropped: ByKind::new(names::DROPPED),
        last_logged: AtomicU64::new(0),
    });
    let sink = RecordSink {
        tx,
        metrics,
        recent: None,
    };
    (sink, RecordQueue { rx })
}

impl RecordSink {
    /// The same sink, noting every save and checkpoint in `recent` as it
    /// is offered, queued or not: the latest state is known to this node
    /// from that moment, whatever the queue and the store are doing.
    pub fn noting(mut self, recent: Arc<Recent>) -> Self {
        self.recent = Some(recent);
        self
    }

    /// Queues `record` if there is room; false if it was dropped.
    pub fn offer(&self, record: Record) -> bool {
        if let Some(recent) = &self.recent {
            recent.note(&record);
        }
        let kind = ByKind::index(&record);
        let queued = Queued {
            record,
            at: Instant::now(),
        };
        match self.tx.try_send(queued) {
            Ok(()) => {
                self.metrics.enqueued.0[kind].increment(1);
                true
            }
            Err(mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q)) => {
                self.metrics.dropped.0[kind].increment(1);
                self.log_drop(&q.record);
                false
            }
        }
    }

    fn log_drop(&self, record: &Record) {
        let now = super::unix_ms() / 1_000;
        let last = self.metrics.last_logged.swap(now, Ordering::Relaxed);
        if last != now {
            tracing::warn!(
                kind = record.kind(),
                record = %record.key(),
                "persistence queue full: record dropped (see tessera_persist_dropped_total)"
            );
        }
    }

    /// Records waiting.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

impl RecordQueue {
    /// Waits for at least one record, then takes up to `max` into `out`.
    /// False once every sink is gone and the queue is empty.
    pub async fn next_batch(&mut self, max: usize, out: &mut Vec<Queued>) -> bool {
        self.rx.recv_many(out, max).await > 0
    }

    /// Takes what is waiting, up to `max`, without waiting.
    pub fn try_batch(&mut self, max: usize, out: &mut Vec<Queued>) -> usize {
        let mut n = 0;
        while n < max {
            match self.rx.try_recv() {
                Ok(q) => {
                    out.push(q);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}
