//! [`Client`]: the async API over a [`Connection`] and a transport task.
//!
//! The socket lives in a background task (see the private `transport` module); the
//! [`Connection`], and with it the mirror, lives here, in the application's
//! task. A frame is applied to the mirror only when the application asks for
//! the next event and the previous frame's events are all taken, so between
//! two calls to [`Client::next_event`] the mirror holds exactly the state the
//! events so far describe, and [`Client::world`] borrows it without a lock.

use std::time::{Duration, Instant};

use serde::Serialize;
use tessera_protocol::{ErrorCode, Hello, Welcome};
use tokio::time::{Interval, MissedTickBehavior};

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::event::{DisconnectReason, Event};
use crate::rtt::Rtt;
use crate::transport::{self, CloseKind, Inbound, Outbound, Transport};
use crate::world_view::{Entity, WorldView};

/// A joined session with a Tessera server.
///
/// When its connection fails (not a close by either side, nor an error or
/// a kick from the server), it connects again by itself, over the same
/// transport, and resumes its player with the server's resume token:
/// [`Event::Reconnecting`], then [`Event::Resumed`], or
/// [`Event::ResumeFailed`] and the end of the session. See
/// [`ClientConfig::reconnect_attempts`].
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    welcome: Welcome,
    transport: Transport,
    pings: Option<Interval>,
    pings_skipped: u64,
    config: ClientConfig,
    /// Where and how it joined, to join again.
    url: String,
    hello: Hello,
    /// When the last frame arrived, for [`ClientConfig::silence_timeout`].
    last_heard: tokio::time::Instant,
    /// Set while the client is connecting again.
    reconnecting: Option<Reconnecting>,
    /// Events to hand out before anything else.
    pending: std::collections::VecDeque<Event>,
    /// The server sent `Error` or `Kicked`: whatever follows, the session
    /// is over and is not tried again.
    sent_away: bool,
}

/// A reconnection under way.
#[derive(Debug)]
struct Reconnecting {
    /// The attempt to make next, from 1.
    attempt: u32,
    /// Why the connection was lost: the final reason if all attempts fail.
    reason: DisconnectReason,
    /// The resume token to come back with; `None`: join afresh.
    resume: Option<String>,
    /// The numbering of the inputs sent so far.
    last_input_seq: u32,
    /// When the attempt under way may connect (after its backoff).
    not_before: tokio::time::Instant,
    /// The attempt's handshake, once started: it runs in a task of its own,
    /// so that a cancelled [`Client::next_event`] neither repeats nor
    /// abandons it halfway (a dropped half-done resume would close the
    /// connection the server just gave the player to).
    handshake: Option<tokio::task::JoinHandle<Result<Joined, ClientError>>>,
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
    fn new(
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
            not_before: tokio::time::Instant::now() + backoff(config, 1),
            handshake: None,
        }
    }

    /// The next attempt, after its backoff.
    fn next_attempt(&mut self, config: &ClientConfig) {
        self.attempt += 1;
        self.not_before = tokio::time::Instant::now() + backoff(config, self.attempt);
        self.handshake = None;
    }
}

/// A joined connection, before it becomes (part of) a [`Client`].
#[derive(Debug)]
struct Joined {
    conn: Connection,
    welcome: Welcome,
    transport: Transport,
}

impl Client {
    /// Connects to `url` (`ws://host:port`, or `quic://host:port` with a
    /// trust set in [`ClientConfig`]), sends `hello` and waits for the
    /// server's welcome, with the default [`ClientConfig`].
    pub async fn connect(url: &str, hello: Hello) -> Result<Self, ClientError> {
        Self::connect_with(url, hello, ClientConfig::default()).await
    }

    /// [`Client::connect`] with a configuration. Resolves once the server
    /// welcomed the client; a refusal is [`ClientError::Refused`] with the
    /// server's code and message, and the whole handshake is bounded by
    /// [`ClientConfig::connect_timeout`].
    pub async fn connect_with(
        url: &str,
        hello: Hello,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let joined = Self::join(url, &hello, Connection::new(), &config).await?;
        Ok(Self::joined(joined, url, hello, config))
    }

    /// Connects, says `hello` and waits for the welcome, within the
    /// connect timeout.
    async fn join(
        url: &str,
        hello: &Hello,
        mut conn: Connection,
        config: &ClientConfig,
    ) -> Result<Joined, ClientError> {
        // Checked before any network: a bad room name fails at once.
        let hello_frame = conn.hello(hello)?;
        let limit = config.connect_timeout;
        tokio::time::timeout(limit, Self::handshake(url, conn, hello_frame, config))
            .await
            .unwrap_or(Err(ClientError::Timeout(limit)))
    }

    async fn handshake(
        url: &str,
        mut conn: Connection,
        hello_frame: bytes::Bytes,
        config: &ClientConfig,
    ) -> Result<Joined, ClientError> {
        let mut transport = transport::open(url, config).await?;
        if transport
            .outbound
            .send(Outbound::Frame(hello_frame))
            .await
            .is_err()
        {
            return Err(ClientError::Disconnected(task_gone()));
        }
        loop {
            while let Some(event) = conn.poll_event() {
                match event {
                    Event::Welcome(welcome) => {
                        return Ok(Joined {
                            conn,
                            welcome,
                            transport,
                        });
                    }
                    Event::Error { code, message } => {
                        return Err(ClientError::Refused { code, message });
                    }
                    Event::Disconnected { reason } => return Err(reason.into()),
                    // Before the welcome a connection raises nothing else.
                    _ => {}
                }
            }
            let inbound = transport.inbound.recv().await;
            handle_inbound(&mut conn, &transport, inbound);
        }
    }

    fn joined(joined: Joined, url: &str, mut hello: Hello, config: ClientConfig) -> Self {
        // A later join comes back with the token of its own welcome.
        hello.resume = None;
        Self {
            pings: pings(&config),
            conn: joined.conn,
            welcome: joined.welcome,
            transport: joined.transport,
            pings_skipped: 0,
            config,
            url: url.to_owned(),
            hello,
            last_heard: tokio::time::Instant::now(),
            reconnecting: None,
            pending: std::collections::VecDeque::new(),
            sent_away: false,
        }
    }

    /// Whether a connection that ended for `reason` is tried again.
    fn reconnects_after(&self, reason: &DisconnectReason) -> bool {
        self.config.reconnect_attempts > 0
            && !self.sent_away
            && matches!(reason, DisconnectReason::Transport { .. })
            && (self.welcome.resume.is_some() || self.config.rejoin_if_resume_fails)
    }

    /// One attempt to get back: waits its backoff, connects, and says what
    /// came of it.
    async fn reconnect(&mut self) -> Event {
        let Some(r) = self.reconnecting.as_mut() else {
            return Event::Disconnected {
                reason: task_gone(),
            };
        };
        // Both waits are cancel-safe: the deadline and the task stay in
        // `r` across a cancelled call.
        tokio::time::sleep_until(r.not_before).await;
        let resuming = r.resume.is_some();
        let handshake = r.handshake.get_or_insert_with(|| {
            let mut hello = self.hello.clone();
            hello.resume = r.resume.clone();
            let conn = if resuming {
                Connection::resuming_after(r.last_input_seq)
            } else {
                Connection::new()
            };
            let (url, config) = (self.url.clone(), self.config.clone());
            tokio::spawn(async move { Self::join(&url, &hello, conn, &config).await })
        });
        let joined = handshake.await.unwrap_or_else(|e| {
            Err(ClientError::Disconnected(DisconnectReason::Transport {
                message: format!("the reconnect task failed: {e}"),
            }))
        });
        r.handshake = None;
        match joined {
            Ok(joined) => {
                self.reconnecting = None;
                self.conn = joined.conn;
                self.transport = joined.transport;
                self.welcome = joined.welcome.clone();
                self.pings = pings(&self.config);
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
                } else {
                    let reason = r.reason.clone();
                    self.reconnecting = None;
                    self.pending.push_back(Event::Disconnected { reason });
                }
                Event::ResumeFailed { reason: message }
            }
            // Refused for another reason (the room is full, the token
            // expired): trying again will not help. (The "try again later"
            // refusals fall through to the next attempt.)
            Err(ClientError::Refused { code, message })
                if !matches!(
                    ErrorCode::from_u16(code),
                    Some(ErrorCode::RoomBusy | ErrorCode::ServerFull | ErrorCode::ShuttingDown)
                ) =>
            {
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
        }
    }

    /// The next event, or `None` once the session is over (after
    /// [`Event::Disconnected`] was returned). Pings are sent from here, at
    /// the configured interval, while this waits.
    ///
    /// Cancel-safe: it can be a branch of `tokio::select!`, and a cancelled
    /// call loses nothing.
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.reconnecting.is_some() {
                // Cancelled here, the attempt is made again from its wait.
                return Some(self.reconnect().await);
            }
            if let Some(event) = self.conn.poll_event() {
                if let Event::Disconnected { reason } = &event
                    && self.reconnects_after(reason)
                {
                    tracing::info!(%reason, "connection lost; connecting again");
                    self.reconnecting = Some(Reconnecting::new(
                        &self.config,
                        reason.clone(),
                        self.welcome.resume.clone(),
                        self.conn.last_input_seq(),
                    ));
                    return Some(Event::Reconnecting { attempt: 1 });
                }
                if matches!(event, Event::Error { .. } | Event::Kicked { .. }) {
                    self.sent_away = true;
                }
                return Some(event);
            }
            if self.conn.is_closed() {
                return None;
            }
            let silence = self.config.silence_timeout;
            let silent_until = self.last_heard + silence;
            // Only cancel-safe awaits here; everything after them is sync.
            let woke = tokio::select! {
                // What arrived comes first: only a quiet link is silent.
                biased;
                inbound = self.transport.inbound.recv() => Wake::Inbound(inbound),
                () = next_ping(&mut self.pings) => Wake::Ping,
                () = tokio::time::sleep_until(silent_until), if !silence.is_zero() => Wake::Silence,
            };
            match woke {
                Wake::Inbound(inbound) => {
                    self.last_heard = tokio::time::Instant::now();
                    handle_inbound(&mut self.conn, &self.transport, inbound);
                }
                Wake::Ping => self.send_ping(),
                Wake::Silence => self.conn.handle_close(DisconnectReason::Transport {
                    message: format!("nothing from the server for {silence:?}"),
                }),
            }
        }
    }

    fn send_ping(&mut self) {
        // A ping that cannot be queued is skipped, not awaited: a full send
        // queue already says the link is slow, and a late ping would only
        // measure the queue.
        let Ok(permit) = self.transport.outbound.try_reserve() else {
            self.pings_skipped += 1;
            return;
        };
        if let Ok(frame) = self.conn.ping(Instant::now()) {
            permit.send(Outbound::Frame(frame));
        }
    }

    /// Sends a game intent; returns its sequence number, which later
    /// [`Event::Delta`]s acknowledge in `ack_input`. Waits while the send
    /// queue is full.
    pub async fn send_input<T: Serialize + ?Sized>(
        &mut self,
        intent: &T,
    ) -> Result<u32, ClientError> {
        // Reserve before framing so that a sequence number is used only by
        // a frame that is really sent.
        let Ok(permit) = self.transport.outbound.reserve().await else {
            return Err(self.gone());
        };
        let (seq, frame) = self.conn.input(intent)?;
        permit.send(Outbound::Frame(frame));
        Ok(seq)
    }

    /// Sends a one-shot game action (fire, use, buy). Unlike inputs, the
    /// room applies every action, once and in order; its answers, if the
    /// game gives any, come as [`Event::Game`]. Waits while the send queue
    /// is full.
    pub async fn send_action<T: Serialize + ?Sized>(
        &mut self,
        action: &T,
    ) -> Result<(), ClientError> {
        let Ok(permit) = self.transport.outbound.reserve().await else {
            return Err(self.gone());
        };
        permit.send(Outbound::Frame(self.conn.action(action)?));
        Ok(())
    }

    /// Sends a line of room chat (1 to 512 bytes).
    pub async fn send_chat(&mut self, text: &str) -> Result<(), ClientError> {
        let Ok(permit) = self.transport.outbound.reserve().await else {
            return Err(self.gone());
        };
        permit.send(Outbound::Frame(self.conn.chat(text)?));
        Ok(())
    }

    /// Closes the session: sends a close and waits (up to
    /// [`ClientConfig::close_timeout`]) for the server to answer.
    pub async fn close(mut self) {
        self.reconnecting = None;
        if self.conn.is_closed() {
            return;
        }
        self.conn.close();
        let transport = &mut self.transport;
        let close = async {
            if transport
                .outbound
                .send(Outbound::Close(CloseKind::Normal))
                .await
                .is_err()
            {
                return;
            }
            // Frames still arriving are dropped: the session is over.
            while let Some(inbound) = transport.inbound.recv().await {
                if matches!(inbound, Inbound::Closed(_)) {
                    break;
                }
            }
        };
        // The transport task bounds its own wait by the same timeout; this
        // one also covers a send queue that never drains.
        let limit = self.config.close_timeout * 2;
        if tokio::time::timeout(limit, close).await.is_err() {
            tracing::debug!("close did not complete in time; dropping the connection");
        }
    }

    /// The mirror of the visible world, as of the last event returned.
    pub fn world(&self) -> &WorldView {
        self.conn.world()
    }

    /// The entity this client controls, if it is in the mirror.
    pub fn me(&self) -> Option<&Entity> {
        self.conn.world().get(self.welcome.entity_id)
    }

    /// The server's welcome.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Round-trip time (latest, smoothed, minimum), once a pong came back.
    pub fn rtt(&self) -> Option<Rtt> {
        self.conn.rtt()
    }

    /// The session state machine, for what the shortcuts above do not show.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Pings skipped because the send queue was full.
    pub fn pings_skipped(&self) -> u64 {
        self.pings_skipped
    }

    /// The error for a command on a connection whose transport is gone.
    fn gone(&self) -> ClientError {
        self.conn
            .disconnect_reason()
            .cloned()
            .unwrap_or_else(task_gone)
            .into()
    }
}

/// What woke [`Client::next_event`].
enum Wake {
    Inbound(Option<Inbound>),
    Ping,
    /// Nothing arrived for the silence timeout.
    Silence,
}

/// The ping timer of a new connection; its first tick fires at once, so
/// the first RTT is known early.
fn pings(config: &ClientConfig) -> Option<Interval> {
    (!config.ping_interval.is_zero()).then(|| {
        let mut interval = tokio::time::interval(config.ping_interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    })
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

/// Feeds one report of the transport task to the connection.
fn handle_inbound(conn: &mut Connection, transport: &Transport, inbound: Option<Inbound>) {
    match inbound {
        Some(Inbound::Frame { frame, received_at }) => {
            let result = conn.handle_frame(received_at, frame);
            // An ack that cannot be queued now is superseded by the next.
            if let Some(ack) = conn.take_ack() {
                let _ = transport.outbound.try_send(Outbound::Datagram(ack));
            }
            if let Err(err) = result {
                tracing::warn!(%err, "server broke the protocol; closing the connection");
                // If the queue is full the close waits for the client to be
                // dropped, which also closes; the session is over either way.
                let _ = transport
                    .outbound
                    .try_send(Outbound::Close(CloseKind::ProtocolError));
            }
        }
        Some(Inbound::Closed(reason)) => conn.handle_close(reason),
        None => conn.handle_close(task_gone()),
    }
}

fn task_gone() -> DisconnectReason {
    DisconnectReason::Transport {
        message: "the connection task ended".into(),
    }
}

/// Waits for the next ping, or forever when pings are off.
async fn next_ping(pings: &mut Option<Interval>) {
    match pings {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    /// A client must be movable into a spawned task.
    #[test]
    fn client_is_send() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<super::Client>();
    }
}
