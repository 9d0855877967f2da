//! The Redis Stream between the nodes and the workers (cluster mode).
//!
//! A node appends its queued records to one stream ([`append`]); any
//! number of workers read it as one consumer group ([`StreamWorker`]),
//! write each batch to the store and acknowledge (and delete) its entries
//! only after the store committed them: delivery is at least once, and the
//! store's idempotent writes make it exactly once in the tables. Entries a
//! worker read and never acknowledged (it died) stay pending; after
//! `claim_idle` another worker claims them, and a worker restarted under
//! the same consumer name reads its own pending entries first.

use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use tokio_util::sync::CancellationToken;

use super::queue::{Queued, RecordQueue};
use super::record::Record;
use super::writer::BatchWriter;
use crate::metrics::persist as names;

/// The field of a stream entry that holds the encoded record.
const FIELD: &str = "r";
/// How long a read waits for new entries before the worker looks around
/// (pending entries to claim, a stop).
const BLOCK_MS: u64 = 500;

/// Where the records go: the stream's key and the workers' group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub key: String,
    pub group: String,
}

impl StreamSpec {
    /// The stream of the cluster whose keys start with `prefix`. The hash
    /// tag keeps it on one shard of a Redis Cluster.
    pub fn new(prefix: &str) -> Self {
        Self {
            key: format!("{prefix}:{{persist}}:records"),
            group: "tessera-workers".to_owned(),
        }
    }
}

/// Waits `wait` unless `stop` fires first (false then).
async fn pause(wait: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// Appends one batch in one pipeline.
async fn append_batch<C: ConnectionLike>(
    conn: &mut C,
    spec: &StreamSpec,
    batch: &[Queued],
    timeout: Duration,
) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for queued in batch {
        pipe.cmd("XADD")
            .arg(&spec.key)
            .arg("*")
            .arg(FIELD)
            .arg(queued.record.encode())
            .ignore();
    }
    match tokio::time::timeout(timeout, pipe.query_async::<()>(conn)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("redis did not answer within {timeout:?}")),
    }
}

/// Drains `queue` into the stream until `finish` fires and the queue is
/// empty, or `abort` fires. A batch Redis refuses is held and tried again
/// (the queue fills meanwhile, and drops what it cannot take).
pub async fn append<C: ConnectionLike + Send>(
    mut conn: C,
    spec: StreamSpec,
    mut queue: RecordQueue,
    timeout: Duration,
    finish: CancellationToken,
    abort: CancellationToken,
) {
    let appended = metrics::counter!(names::STREAM_APPENDED);
    let depth = metrics::gauge!(names::QUEUE_DEPTH);
    let mut batch = Vec::new();
    loop {
        batch.clear();
        if finish.is_cancelled() {
            if queue.try_batch(512, &mut batch) == 0 {
                return;
            }
        } else {
            tokio::select! {
                () = finish.cancelled() => continue,
                more = queue.next_batch(512, &mut batch) => if !more { return },
            }
        }
        depth.set(queue.len() as f64);
        if let Some(first) = batch.first() {
            metrics::gauge!(names::OLDEST_AGE).set(first.at.elapsed().as_secs_f64());
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match append_batch(&mut conn, &spec, &batch, timeout).await {
                Ok(()) => {
                    appended.increment(batch.len() as u64);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = batch.len(), "cannot append to the persistence stream; retrying");
                    if !pause(backoff, &abort).await {
                        tracing::error!(
                            records = batch.len() + queue.len(),
                            "stopped with records not appended to the stream"
                        );
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Creates the consumer group (and the stream) unless it exists; a new
/// group starts from the stream's first entry, so nothing appended before
/// the first worker came is skipped.
pub async fn ensure_group<C: ConnectionLike>(
    conn: &mut C,
    spec: &StreamSpec,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&spec.key)
        .arg(&spec.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// A worker of the consumer group.
#[derive(Debug)]
pub struct StreamWorker<C> {
    pub conn: C,
    pub spec: StreamSpec,
    /// Its name in the group; keep it across restarts of one worker.
    pub consumer: String,
    pub writer: BatchWriter,
    /// Pending entries idle this long are taken over from their worker.
    pub claim_idle: Duration,
    /// Most entries read at once.
    pub batch: usize,
    /// Where the next `XAUTOCLAIM` scans from (start with "0-0").
    pub claim_from: String,
}

/// Which entries the worker reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Its own pending entries (after a restart).
    OwnPending,
    /// New entries.
    New,
}

impl<C: ConnectionLike + Send> StreamWorker<C> {
    /// Reads, writes and acknowledges until `stop` fires; an entry being
    /// written when it fires is left pending, for this worker or another.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = ensure_group(&mut self.conn, &self.spec).await {
            tracing::warn!(error = %e, "cannot create the persistence stream's group; retrying");
            if !pause(backoff, &stop).await {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        let mut reading = Reading::OwnPending;
        let mut last_claim = Instant::now();
        while !stop.is_cancelled() {
            let claiming = last_claim.elapsed() >= self.claim_idle / 2;
            let entries = if claiming {
                last_claim = Instant::now();
                self.claim().await
            } else {
                self.read(reading).await
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    // Redis lost the stream (restarted empty, or the key
                    // was deleted), and appends made a new one: the group
                    // must be made again.
                    if e.code() == Some("NOGROUP") {
                        let _ = ensure_group(&mut self.conn, &self.spec).await;
                    }
                    tracing::warn!(error = %e, "cannot read the persistence stream; retrying");
                    if !pause(backoff, &stop).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            if entries.is_empty() {
                if !claiming {
                    reading = Reading::New;
                }
                continue;
            }
            if self.process(&entries, &stop).await.is_err() {
                return;
            }
        }
    }

    async fn read(&mut self, reading: Reading) -> redis::RedisResult<Vec<StreamId>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.spec.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.batch);
        let from = match reading {
            Reading::OwnPending => "0",
            Reading::New => {
                cmd.arg("BLOCK").arg(BLOCK_MS);
                ">"
            }
        };
        cmd.arg("STREAMS").arg(&self.spec.key).arg(from);
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.conn).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Takes over entries other workers left pending for `claim_idle`.
    async fn claim(&mut self) -> redis::RedisResult<Vec<StreamId>> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.spec.key)
            .arg(&self.spec.group)
            .arg(&self.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg(&self.claim_from)
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.conn)
            .await?;
        // Where the next claim goes on scanning ("0-0" once it went round).
        self.claim_from = reply.next_stream_id;
        if !reply.claimed.is_empty() {
            metrics::counter!(names::STREAM_CLAIMED).increment(reply.claimed.len() as u64);
            tracing::info!(
                entries = reply.claimed.len(),
                "took over persistence entries a worker left pending"
            );
        }
        Ok(reply.claimed)
    }

    /// Writes the entries' records, then acknowledges and deletes them.
    async fn process(
        &mut self,
        entries: &[StreamId],
        stop: &CancellationToken,
    ) -> Result<(), super::writer::Stopped> {
        let mut records = Vec::with_capacity(entries.len());
        let oldest = entries.iter().filter_map(|e| entry_age(&e.id)).max();
        if let Some(age) = oldest {
            metrics::gauge!(names::STREAM_OLDEST_AGE).set(age.as_secs_f64());
        }
        for entry in entries {
            match entry.get::<Vec<u8>>(FIELD).map(|b| Record::decode(&b)) {
                Some(Ok(record)) => records.push(record),
                // Not a record of Tessera's: nothing can store it, and
                // leaving it pending would only block the group.
                _ => {
                    tracing::error!(entry = %entry.id, stream = %self.spec.key, "undecodable entry in the persistence stream: skipped")
                }
            }
        }
        self.writer.write(&records, stop).await?;
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("XACK")
                .arg(&self.spec.key)
                .arg(&self.spec.group)
                .arg(&ids)
                .ignore()
                .cmd("XDEL")
                .arg(&self.spec.key)
                .arg(&ids)
                .ignore();
            match pipe.query_async::<()>(&mut self.conn).await {
                Ok(()) => return Ok(()),
                // Written but not acknowledged: redelivered later and
                // written again, which the store's idempotence absorbs.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot acknowledge persistence entries; retrying");
                    if !pause(backoff, stop).await {
                        return Err(super::writer::Stopped);
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// How long ago an entry was appended: its id is `<unix ms>-<seq>`.
fn entry_age(id: &str) -> Option<Duration> {
    let ms: u64 = id.split('-').next()?.parse().ok()?;
    Some(Duration::from_millis(super::unix_ms().saturating_sub(ms)))
}
