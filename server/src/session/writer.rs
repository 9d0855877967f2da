//! The writing half of a session: drains its bounded outbound queue in
//! batches (one flush per batch), probes the round trip now and then, and
//! carries out the close request with its last frame, then lingers.
//!
//! Lingering: a client refused mid-flood still has frames on their way. A
//! socket closed with unread input is reset by the kernel, and a reset can
//! overtake the error and the close frame still in flight, so the client
//! would never learn why. After the goodbye, the reading half is drained
//! and discarded until the client closes or [`LINGER`] passes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::frames::{FrameSink, FrameSource, Inbound};
use crate::link::{CloseRequest, SessionControl, SessionLive, live};
use crate::metrics::{LinkMetrics, end};

/// Frames the writer sends per flush at most.
const WRITE_BATCH: usize = 64;
/// How long the goodbye (final frame and close) may take.
pub const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the input is drained after the goodbye, at most.
pub const LINGER: Duration = Duration::from_secs(1);

/// The writing half of a session.
pub struct Writer {
    pub control: Arc<SessionControl>,
    pub live: Arc<SessionLive>,
    pub metrics: Arc<LinkMetrics>,
}

impl Writer {
    /// Sends queued frames in batches until the session closes, probing the
    /// round trip now and then, then sends the goodbye (if any) and the
    /// close. A due probe leaves with the next batch (no flush of its own);
    /// only a connection with nothing to send for a whole probe period gets
    /// one alone.
    /// `source` brings the reading half once the session is done with it,
    /// to linger on.
    pub async fn run<S: FrameSource>(
        self,
        mut sink: impl FrameSink,
        mut queue: mpsc::Receiver<Bytes>,
        source: oneshot::Receiver<S>,
    ) {
        let control = &self.control;
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        // Built once, not per batch (see `Session::run`).
        let closing = control.closing();
        tokio::pin!(closing);
        let mut probes =
            tokio::time::interval_at(Instant::now() + live::FIRST_PROBE, live::PROBE_PERIOD);
        probes.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut probe_due = false;
        loop {
            // Queued frames are polled first, as in `read_loop`; a write
            // that cannot finish at once waits on `closing` too, so a stuck
            // client cannot hold the writer past its close.
            let written = tokio::select! {
                biased;
                n = queue.recv_many(&mut batch, WRITE_BATCH) => {
                    if n == 0 || control.is_closing() {
                        break;
                    }
                    let written = tokio::select! {
                        biased;
                        written = self.write(&mut sink, &batch, &mut probe_due) => written,
                        () = &mut closing => break,
                    };
                    if written.is_ok() {
                        count_sent(&self.metrics, &batch);
                    }
                    batch.clear();
                    written
                }
                () = &mut closing => break,
                _ = probes.tick() => {
                    if !probe_due {
                        probe_due = true;
                        continue;
                    }
                    tokio::select! {
                        biased;
                        () = &mut closing => break,
                        written = self.write(&mut sink, &[], &mut probe_due) => written,
                    }
                }
            };
            if let Err(e) = written {
                tracing::debug!(error = %e, "write failed");
                control.close(CloseRequest::normal(end::WRITE_FAILED));
                return;
            }
        }
        let request = control
            .take()
            .unwrap_or_else(|| CloseRequest::normal(end::NORMAL));
        goodbye(&mut sink, request, &self.metrics).await;
        if let Ok(Ok(mut source)) = tokio::time::timeout(GOODBYE_TIMEOUT, source).await {
            linger(&mut source).await;
        }
    }

    /// Writes `batch` with one flush, preceded by a probe if one is due.
    async fn write(
        &self,
        sink: &mut impl FrameSink,
        batch: &[Bytes],
        probe_due: &mut bool,
    ) -> std::io::Result<()> {
        if std::mem::take(probe_due) {
            if let Some(rtt) = sink.transport_rtt() {
                self.live.set_rtt(rtt);
                self.metrics.rtt.record(rtt.as_secs_f64());
            } else {
                let payload = self.live.probe(std::time::Instant::now());
                sink.queue_probe(payload).await?;
            }
        }
        sink.send_batch(batch).await
    }
}

fn count_sent(metrics: &LinkMetrics, batch: &[Bytes]) {
    let bytes: usize = batch.iter().map(Bytes::len).sum();
    metrics.messages_sent.increment(batch.len() as u64);
    metrics.bytes_sent.increment(bytes as u64);
}

pub async fn goodbye(sink: &mut impl FrameSink, request: CloseRequest, metrics: &LinkMetrics) {
    let send = async {
        if let Some(frame) = request.frame {
            let last = std::slice::from_ref(&frame);
            if sink.send_batch(last).await.is_ok() {
                count_sent(metrics, last);
            }
        }
        sink.close(request.code, &request.reason).await;
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, send).await;
}

/// Reads and discards what the client still sends, until it closes, its
/// framing is lost, or [`LINGER`] passes.
pub async fn linger(source: &mut impl FrameSource) {
    let drain = async {
        loop {
            // A frame over the limit is refused unread: the source can
            // never read past it, and answers `TooLarge` again at once,
            // without waiting, which on a one-thread runtime would starve
            // the timeout below. Nothing after it, or after a violation of
            // the transport's protocol, can be drained anyway.
            if let Inbound::Closed
            | Inbound::Failed(_)
            | Inbound::TooLarge
            | Inbound::Violation(_) = source.next().await
            {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source stuck on an oversized frame, as the transports' are.
    struct StuckOnTooLarge {
        reads: usize,
    }

    impl FrameSource for StuckOnTooLarge {
        async fn next(&mut self) -> Inbound {
            self.reads += 1;
            assert!(
                self.reads < 100,
                "linger spins on a source that cannot move"
            );
            Inbound::TooLarge
        }
    }

    #[tokio::test]
    async fn linger_stops_at_a_frame_it_cannot_read_past() {
        let mut source = StuckOnTooLarge { reads: 0 };
        linger(&mut source).await;
        assert_eq!(source.reads, 1);
    }
}
