//! Writes batches of records into the store, whatever it takes: one
//! transaction per batch; failures the store may get over (connection
//! refused, pool timeout, deadlock) retried with exponential backoff for
//! as long as it takes; a batch the store rejects split in halves until the
//! records it rejects are found, and each of those tried a few times more,
//! then moved to the dead letters with the error, so that the records
//! behind a poison record still land.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::record::Record;
use super::store::{Store, StoreError};
use crate::metrics::persist as names;

/// How failed writes are tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Tries of a record the store rejects before it is a dead letter.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_attempts: 5,
        }
    }
}

/// The writer was stopped before every record was written; those not
/// written are not acknowledged, and another worker will write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped before the batch was written")]
pub struct Stopped;

/// What a batch came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub stored: usize,
    pub dead_letters: usize,
}

#[derive(Debug, Clone)]
pub struct BatchWriter {
    store: Arc<Store>,
    policy: RetryPolicy,
}

/// Doubles a backoff up to the policy's cap.
fn next_backoff(policy: &RetryPolicy, current: Duration) -> Duration {
    (current * 2).min(policy.max_backoff)
}

impl BatchWriter {
    pub fn new(store: Arc<Store>, policy: RetryPolicy) -> Self {
        Self { store, policy }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Writes `records` (see the module docs). Returns once every record is
    /// stored or a dead letter, or with [`Stopped`] when `stop` fires
    /// first.
    pub async fn write(
        &self,
        records: &[Record],
        stop: &CancellationToken,
    ) -> Result<Written, Stopped> {
        if records.is_empty() {
            return Ok(Written::default());
        }
        let mut written = Written::default();
        // Halves still to write, last first: a rejected batch is split
        // until the rejected records stand alone.
        let mut pending: Vec<&[Record]> = vec![records];
        while let Some(batch) = pending.pop() {
            match self.write_retrying(batch, stop).await? {
                Ok(()) => written.stored += batch.len(),
                Err(rejected) if batch.len() > 1 => {
                    tracing::debug!(error = %rejected, records = batch.len(), "batch rejected: splitting it");
                    let (first, second) = batch.split_at(batch.len() / 2);
                    pending.push(second);
                    pending.push(first);
                }
                Err(rejected) => {
                    self.reject(&batch[0], &rejected, stop).await?;
                    written.dead_letters += 1;
                }
            }
        }
        Ok(written)
    }

    /// Writes one batch, retrying transient failures until it is written
    /// or rejected (`Ok(Err)`).
    async fn write_retrying(
        &self,
        batch: &[Record],
        stop: &CancellationToken,
    ) -> Result<Result<(), StoreError>, Stopped> {
        let mut backoff = self.policy.first_backoff;
        loop {
            let started = Instant::now();
            let result = self.store.write_batch(batch).await;
            metrics::histogram!(names::WRITE_DURATION).record(started.elapsed().as_secs_f64());
            match result {
                Ok(()) => {
                    metrics::gauge!(names::STORE_UP).set(1.0);
                    metrics::histogram!(names::BATCH_SIZE).record(batch.len() as f64);
                    for record in batch {
                        metrics::counter!(names::WRITTEN, "kind" => record.kind()).increment(1);
                    }
                    return Ok(Ok(()));
                }
                Err(e) if e.is_transient() => {
                    metrics::gauge!(names::STORE_UP).set(0.0);
                    metrics::counter!(names::RETRIES).increment(1);
                    tracing::warn!(error = %e, records = batch.len(), retry_in_ms = backoff.as_millis() as u64, "store write failed; retrying");
                    self.pause(backoff, stop).await?;
                    backoff = next_backoff(&self.policy, backoff);
                }
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    /// A record the store rejected on its own: tried again up to the
    /// policy's attempts (a rejection may still pass, say after a
    /// migration), then made a dead letter.
    async fn reject(
        &self,
        record: &Record,
        first: &StoreError,
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        let mut error = first.to_string();
        let mut backoff = self.policy.first_backoff;
        for _ in 1..self.policy.max_attempts {
            metrics::counter!(names::RETRIES).increment(1);
            self.pause(backoff, stop).await?;
            backoff = next_backoff(&self.policy, backoff);
            match self
                .write_retrying(std::slice::from_ref(record), stop)
                .await?
            {
                Ok(()) => return Ok(()),
                Err(e) => error = e.to_string(),
            }
        }
        self.dead_letter(record, &error, stop).await
    }

    /// Stores `record` among the dead letters; retries while the store is
    /// unreachable.
    async fn dead_letter(
        &self,
        record: &Record,
        error: &str,
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        let mut backoff = self.policy.first_backoff;
        loop {
            let now = super::unix_ms();
            match self
                .store
                .add_dead_letter(record, error, self.policy.max_attempts, now)
                .await
            {
                Ok(()) => {
                    metrics::counter!(names::DEAD_LETTERS).increment(1);
                    tracing::error!(
                        record = %record.key(),
                        error,
                        "the store keeps refusing a record: moved to the dead letters"
                    );
                    return Ok(());
                }
                // The dead letters themselves refuse it: nothing is left
                // to keep it in. Said loudly, and the records behind it go
                // on.
                Err(e) if !e.is_transient() => {
                    metrics::counter!(names::DEAD_LETTERS).increment(1);
                    tracing::error!(
                        record = %record.key(),
                        error,
                        refused = %e,
                        "the store refuses a record and its dead letter alike: record dropped"
                    );
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot store a dead letter; retrying");
                    self.pause(backoff, stop).await?;
                    backoff = next_backoff(&self.policy, backoff);
                }
            }
        }
    }

    async fn pause(&self, wait: Duration, stop: &CancellationToken) -> Result<(), Stopped> {
        tokio::select! {
            () = stop.cancelled() => Err(Stopped),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }
}
