//! Persistence: what leaves a room, and the database it lands in.
//!
//! The tick never waits on any of it. A room's host encodes its records
//! (player saves, checkpoints, game events) and offers them to a bounded
//! queue that never blocks ([`queue`]). One task of the node drains it:
//! without Redis, straight into the store ([`Persistence::start_local`]);
//! with Redis, into a Redis Stream that workers of a consumer group write
//! from ([`stream`]), in this node or in `tessera worker` processes.
//!
//! - [`record`]: `Record`, one thing to persist, as it
//!   travels through the queue.
//! - [`queue`]: the bounded queue out of the tick.
//! - [`writer`]: batches into the store, with retries and dead letters.
//! - [`dead_letters`]: dead letters tried again.
//! - [`stream`]: the Redis Stream and its consumer group.
//! - [`recent`]: what this node saved lately, for joins that come before
//!   the store has it (or while the store is down).
//! - [`store`]: `Store`, the SQLite or PostgreSQL tables
//!   the records are written into.

pub mod dead_letters;
pub mod queue;
pub mod recent;
pub mod record;
pub mod store;
pub mod stream;
pub mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionLike;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::queue::{Queued, RecordQueue, RecordSink};
use self::recent::Recent;
use self::record::{Checkpoint, PlayerState, Record};
use self::store::{Store, StoreError};
use self::stream::{StreamSpec, StreamWorker};
use self::writer::BatchWriter;
use crate::metrics::persist as names;

/// Most records one batch takes from the queue.
pub const BATCH: usize = 1_024;
/// How often the store is asked whether it answers, for `/ready`.
const PING_PERIOD: Duration = Duration::from_secs(2);

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Versions of player saves: microseconds of the clock, and always above
/// the last one this node gave, so that a later save of a player wins on
/// any node whose clock agrees to within the time between two sessions.
#[derive(Debug, Default)]
pub struct VersionClock {
    last: AtomicU64,
}

impl VersionClock {
    pub fn next(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// The node's persistence: the queue's sink for the rooms, the reads a
/// join needs, and the tasks that drain the queue.
#[derive(Debug)]
pub struct Persistence {
    store: Arc<Store>,
    sink: RecordSink,
    recent: Arc<Recent>,
    versions: VersionClock,
    store_up: Arc<AtomicBool>,
    /// Drain what is queued, then stop.
    finish: CancellationToken,
    /// Stop retrying: whatever is not written by now stays unwritten (or,
    /// in the stream, pending for another worker).
    abort: CancellationToken,
    /// The task that drains the queue (into the store or the stream).
    drain: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The others: the pinger, the in-node stream worker.
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Persistence {
    fn new(store: Arc<Store>, sink: RecordSink) -> Self {
        let recent = Arc::new(Recent::default());
        Self {
            store,
            sink: sink.noting(Arc::clone(&recent)),
            recent,
            versions: VersionClock::default(),
            store_up: Arc::new(AtomicBool::new(true)),
            finish: CancellationToken::new(),
            abort: CancellationToken::new(),
            drain: std::sync::Mutex::new(None),
            tasks: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    fn spawn_drain(&self, task: impl Future<Output = ()> + Send + 'static) {
        *self.drain.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::spawn(task));
    }

    /// Asks the store whether it answers, and samples the queue's depth,
    /// every `PING_PERIOD` until the node stops.
    fn start_pinging(&self) {
        let (store, up, stop, sink) = (
            Arc::clone(&self.store),
            Arc::clone(&self.store_up),
            self.finish.clone(),
            self.sink.clone(),
        );
        self.spawn(async move {
            let gauge = metrics::gauge!(names::STORE_UP);
            let depth = metrics::gauge!(names::QUEUE_DEPTH);
            loop {
                let answered = matches!(
                    tokio::time::timeout(PING_PERIOD, store.ping()).await,
                    Ok(Ok(()))
                );
                up.store(answered, Ordering::Relaxed);
                gauge.set(if answered { 1.0 } else { 0.0 });
                depth.set(sink.depth() as f64);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(PING_PERIOD) => {}
                }
            }
        });
    }

    /// The embedded default: a queue of `capacity` records in this process,
    /// drained by a task into `store`.
    pub fn start_local(store: Arc<Store>, writer: BatchWriter, capacity: usize) -> Arc<Self> {
        let (sink, queue) = queue::channel(capacity);
        let this = Arc::new(Self::new(store, sink));
        this.start_pinging();
        this.spawn_drain(drain_into_store(
            queue,
            writer,
            this.finish.clone(),
            this.abort.clone(),
        ));
        this
    }

    /// Cluster mode: the queue drains into the Redis Stream `spec` through
    /// `conn`; `worker`, if given, writes from the stream into the store in
    /// this process.
    pub fn start_stream<C, W>(
        store: Arc<Store>,
        conn: C,
        spec: StreamSpec,
        worker: Option<StreamWorker<W>>,
        capacity: usize,
        timeout: Duration,
    ) -> Arc<Self>
    where
        C: ConnectionLike + Send + 'static,
        W: ConnectionLike + Send + 'static,
    {
        let (sink, queue) = queue::channel(capacity);
        let this = Arc::new(Self::new(store, sink));
        this.start_pinging();
        this.spawn_drain(stream::append(
            conn,
            spec,
            queue,
            timeout,
            this.finish.clone(),
            this.abort.clone(),
        ));
        if let Some(worker) = worker {
            this.spawn(worker.run(this.abort.clone()));
        }
        this
    }

    /// Where rooms offer their records.
    pub fn sink(&self) -> &RecordSink {
        &self.sink
    }

    /// The version for a new save of a player.
    pub fn next_version(&self) -> u64 {
        self.versions.next()
    }

    /// Whether the store answered its last ping.
    pub fn store_reachable(&self) -> bool {
        self.store_up.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The latest save of `player`: this node's own if it is newer than
    /// the store's (or the store cannot be read and this node has one).
    pub async fn player(
        &self,
        game: &str,
        player: &str,
    ) -> Result<Option<PlayerState>, StoreError> {
        let mine = self.recent.player(game, player);
        match self.store.load_player(game, player).await {
            Ok(stored) => Ok(newer_player(mine, stored)),
            Err(_) if mine.is_some() => Ok(mine),
            Err(e) => Err(e),
        }
    }

    /// The checkpoints room `room` may restart from, newest first: this
    /// node's latest (if the store does not have it yet, or cannot be read)
    /// and the store's.
    pub async fn checkpoints(&self, game: &str, room: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let mine = self.recent.checkpoint(game, room);
        let mut all = match self.store.checkpoints(game, room).await {
            Ok(stored) => stored,
            Err(_) if mine.is_some() => Vec::new(),
            Err(e) => return Err(e),
        };
        all.extend(mine);
        all.sort_by_key(|c| std::cmp::Reverse((c.epoch, c.taken_at_ms)));
        all.dedup_by_key(|c| (c.epoch, c.taken_at_ms));
        Ok(all)
    }

    /// Writes what is queued (for at most `flush`), then stops the tasks
    /// (an in-node stream worker leaves what it has not written pending,
    /// for the other workers).
    pub async fn stop(&self, flush: Duration) {
        self.finish.cancel();
        let drain = self.drain.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut drain) = drain {
            tokio::select! {
                _ = &mut drain => {}
                () = tokio::time::sleep(flush) => {
                    tracing::warn!(waited_ms = flush.as_millis() as u64, "persistence did not finish writing in time; stopping it");
                    self.abort.cancel();
                    let _ = drain.await;
                }
            }
        }
        self.abort.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        futures_util::future::join_all(tasks).await;
        self.store.close().await;
    }
}

fn newer_player(a: Option<PlayerState>, b: Option<PlayerState>) -> Option<PlayerState> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.version >= b.version { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Drains `queue` into the store until `finish` fires and the queue is
/// empty (or `abort` fires).
async fn drain_into_store(
    mut queue: RecordQueue,
    writer: BatchWriter,
    finish: CancellationToken,
    abort: CancellationToken,
) {
    let depth = metrics::gauge!(names::QUEUE_DEPTH);
    let mut batch: Vec<Queued> = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    loop {
        batch.clear();
        if finish.is_cancelled() {
            if queue.try_batch(BATCH, &mut batch) == 0 {
                return;
            }
        } else {
            tokio::select! {
                () = finish.cancelled() => continue,
                more = queue.next_batch(BATCH, &mut batch) => if !more { return },
            }
        }
        depth.set(queue.len() as f64);
        if let Some(first) = batch.first() {
            metrics::gauge!(names::OLDEST_AGE).set(first.at.elapsed().as_secs_f64());
        }
        records.clear();
        records.extend(batch.drain(..).map(|q| q.record));
        if writer.write(&records, &abort).await.is_err() {
            tracing::error!(
                records = records.len() + queue.len(),
                "persistence stopped before these records were written"
            );
            return;
        }
    }
}
