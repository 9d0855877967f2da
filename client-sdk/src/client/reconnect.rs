//! Getting back after a lost connection, or after the room moved to another
//! node: [`Reconnecting`], its backoff, and what each attempt comes to.

use std::time::Duration;

use tessera_protocol::ErrorCode;

use super::Client;
use super::join::{self, Followed};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::event::{DisconnectReason, Event};

/// A reconnection under way.
#[derive(Debug)]
pub(super) struct Reconnecting {
    /// The attempt to make next, from 1.
    attempt: u32,
    /// Why the connection was lost: the final reason if all attempts fail.
    reason: DisconnectReason,
    /// The resume token to come back with; `None`: join afresh.
    resume: Option<String>,
    /// The numbering of the inputs sent so far.
    last_input_seq: u32,
    /// Join through the entry URL, not the node the client was on: that
    /// node no longer hosts the room.
    via_entry: bool,
    /// When the attempt under way may connect (after its backoff).
    not_before: tokio::time::Instant,
    /// The attempt's handshake, once started: it runs in a task of its own,
    /// so that a cancelled [`Client::next_event`] neither repeats nor
    /// abandons it halfway (a dropped half-done resume would close the
    /// connection the server just gave the player to).
    handshake: Option<tokio::task::JoinHandle<Followed>>,
}

impl Drop for Reconnecting {
    /// A client closed or dropped while reconnecting does not join again
    /// behind its back.
    fn drop(&mut self) {
        if let Some(handshake) = &self.handshake {
            handshake.abort();
        }
    }
}

impl Reconnecting {
    /// After a failed connection: back to the same player if `resume`, on
    /// the node the client was joined to first.
    pub(super) fn after_drop(
        config: &ClientConfig,
        reason: DisconnectReason,
        resume: Option<String>,
        last_input_seq: u32,
    ) -> Self {
        Self {
            attempt: 1,
            reason,
            resume,
            last_input_seq,
            via_entry: false,
            not_before: tokio::time::Instant::now() + backoff(config, 1),
            handshake: None,
        }
    }

    /// After `room_moved`: a new player, through the entry URL (the new
    /// host does not hold the old one). Backed off like a drop, so that the
    /// players of a lost room do not all arrive at once.
    pub(super) fn after_room_moved(config: &ClientConfig, reason: DisconnectReason) -> Self {
        let mut reconnecting = Self::after_drop(config, reason, None, 0);
        reconnecting.via_entry = true;
        reconnecting
    }

    /// The next attempt, after its backoff.
    fn next_attempt(&mut self, config: &ClientConfig) {
        self.attempt += 1;
        self.not_before = tokio::time::Instant::now() + backoff(config, self.attempt);
        self.handshake = None;
    }
}

/// The refusals that say "try again later": a failed attempt, not the end.
fn is_retryable(code: u16) -> bool {
    matches!(
        ErrorCode::from_u16(code),
        Some(
            ErrorCode::RoomBusy
                | ErrorCode::ServerFull
                | ErrorCode::ShuttingDown
                | ErrorCode::ClusterUnavailable
                | ErrorCode::StorageUnavailable
        )
    )
}

impl Client {
    /// One attempt to get back: waits its backoff, joins, and queues in
    /// `pending` what came of it (at least one event).
    pub(super) async fn reconnect(&mut self) {
        let Some(r) = self.reconnecting.as_mut() else {
            return;
        };
        // Both waits are cancel-safe: the deadline and the task stay in
        // `r` across a cancelled call.
        tokio::time::sleep_until(r.not_before).await;
        let resuming = r.resume.is_some();
        let handshake = r.handshake.get_or_insert_with(|| {
            let mut hello = self.hello.clone();
            hello.resume = r.resume.clone();
            let node = (!r.via_entry).then(|| self.node_url.clone());
            let (entry, config) = (self.entry_url.clone(), self.config.clone());
            let last_input_seq = if resuming { r.last_input_seq } else { 0 };
            tokio::spawn(join::rejoin(node, entry, hello, last_input_seq, config))
        });
        let followed = handshake.await.unwrap_or_else(|e| {
            Followed::failed(ClientError::Disconnected(DisconnectReason::Transport {
                message: format!("the reconnect task failed: {e}"),
            }))
        });
        r.handshake = None;
        let redirected = followed.redirects.into_iter();
        self.pending
            .extend(redirected.map(|url| Event::Redirected { url }));
        let outcome = match followed.result {
            Ok(joined) => {
                self.reconnecting = None;
                self.conn = joined.conn;
                self.transport = joined.transport;
                self.welcome = joined.welcome.clone();
                self.node_url = joined.url;
                self.farewell = super::Farewell::None;
                self.pings = super::pings(&self.config);
                self.last_heard = tokio::time::Instant::now();
                if resuming {
                    Event::Resumed(joined.welcome)
                } else {
                    Event::Welcome(joined.welcome)
                }
            }
            Err(ClientError::Refused { code, message })
                if ErrorCode::from_u16(code) == Some(ErrorCode::ResumeFailed) =>
            {
                if self.config.rejoin_if_resume_fails {
                    r.resume = None;
                    r.attempt = 1;
                    r.not_before = tokio::time::Instant::now();
                    self.pending
                        .push_back(Event::ResumeFailed { reason: message });
                } else {
                    let reason = r.reason.clone();
                    self.reconnecting = None;
                    self.pending
                        .push_back(Event::ResumeFailed { reason: message });
                    self.pending.push_back(Event::Disconnected { reason });
                }
                return;
            }
            // Refused for another reason (the room is full, the token
            // expired): trying again will not help.
            Err(ClientError::Refused { code, message }) if !is_retryable(code) => {
                self.reconnecting = None;
                Event::Disconnected {
                    reason: DisconnectReason::ServerClosed {
                        code: None,
                        reason: format!("rejoin refused (code {code}): {message}"),
                    },
                }
            }
            Err(e) => {
                tracing::debug!(attempt = r.attempt, error = %e, "reconnect failed");
                r.next_attempt(&self.config);
                if r.attempt > self.config.reconnect_attempts {
                    let reason = r.reason.clone();
                    self.reconnecting = None;
                    Event::Disconnected { reason }
                } else {
                    Event::Reconnecting { attempt: r.attempt }
                }
            }
        };
        self.pending.push_back(outcome);
    }
}

/// The wait before reconnect attempt `attempt` (from 1): the initial
/// backoff doubled per attempt up to the maximum, plus up to half of it at
/// random.
fn backoff(config: &ClientConfig, attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    let (initial, max) = config.reconnect_backoff;
    let doubled = initial.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let base = doubled.min(max);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let jitter = base.mul_f64((random % 1_000) as f64 / 2_000.0);
    base + jitter
}
