//! [`Client`]: the async API over a [`Connection`] and a transport task.
//!
//! The socket lives in a background task (see the private `transport` module); the
//! [`Connection`], and with it the mirror, lives here, in the application's
//! task. A frame is applied to the mirror only when the application asks for
//! the next event and the previous frame's events are all taken, so between
//! two calls to [`Client::next_event`] the mirror holds exactly the state the
//! events so far describe, and [`Client::world`] borrows it without a lock.
//!
//! - `join`: the handshake of one connection, and the hops of one join as
//!   a cluster redirects it;
//! - `reconnect`: getting back after a lost connection or a moved room,
//!   with backoff.

mod join;
mod reconnect;

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use tessera_protocol::{Hello, KickReason, Welcome};
use tokio::time::{Interval, MissedTickBehavior};

use self::join::Joined;
use self::reconnect::Reconnecting;
use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::event::{DisconnectReason, Event};
use crate::redirect::JoinRoute;
use crate::rtt::Rtt;
use crate::transport::{CloseKind, Inbound, Outbound, Transport};
use crate::world_view::{Entity, WorldView};

/// A joined session with a Tessera server.
///
/// When its connection fails (not a close by either side, nor an error or
/// a kick from the server), it connects again by itself, over the same
/// transport, and resumes its player with the server's resume token:
/// [`Event::Reconnecting`], then [`Event::Resumed`], or
/// [`Event::ResumeFailed`] and the end of the session. See
/// [`ClientConfig::reconnect_attempts`].
///
/// It follows a cluster by itself too (PROTOCOL.md §10.5): a node that
/// does not host the room answers the hello with a redirect to the one
/// that does, and the client connects there with the seat it was given
/// ([`Event::Redirected`], at most [`ClientConfig::max_redirects`] in a
/// row). A reconnect goes back to the node it was joined to
/// ([`Client::node_url`]) first, and through the URL it was given
/// ([`Client::entry_url`]) when that node is gone; after the kick
/// `room_moved` it joins afresh through that URL.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    welcome: Welcome,
    transport: Transport,
    pings: Option<Interval>,
    pings_skipped: u64,
    config: ClientConfig,
    /// The URL given to connect: any node of a cluster, which redirects.
    entry_url: String,
    /// The node the client is joined to (or was, while reconnecting).
    node_url: String,
    /// How it joined, to join again (without resume token or seat).
    hello: Hello,
    /// When the last frame arrived, for [`ClientConfig::silence_timeout`].
    last_heard: tokio::time::Instant,
    /// Set while the client is connecting again.
    reconnecting: Option<Reconnecting>,
    /// Events to hand out before anything else.
    pending: VecDeque<Event>,
    /// What the server said before closing, if it said anything.
    farewell: Farewell,
}

/// Whether what the server sent before closing ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Farewell {
    /// Nothing (yet): a failed connection is tried again.
    None,
    /// `Error` or `Kicked`: whatever follows, the session is over.
    Final,
    /// `Kicked` `room_moved`: the room lives on another node; join afresh.
    RoomMoved,
}

impl Client {
    /// Connects to `url` (`ws://host:port`, or `quic://host:port` with a
    /// trust set in [`ClientConfig`]), sends `hello` and waits for the
    /// server's welcome, with the default [`ClientConfig`].
    pub async fn connect(url: &str, hello: Hello) -> Result<Self, ClientError> {
        Self::connect_with(url, hello, ClientConfig::default()).await
    }

    /// [`Client::connect`] with a configuration. Resolves once the server
    /// welcomed the client, following redirects on the way; a refusal is
    /// [`ClientError::Refused`] with the server's code and message, too
    /// many redirects [`ClientError::Redirect`], and the whole handshake is
    /// bounded by [`ClientConfig::connect_timeout`].
    ///
    /// A `hello` with a [`Hello::seat`] offers it to `url`; when refused,
    /// the client joins again through `url` without it.
    pub async fn connect_with(
        url: &str,
        hello: Hello,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let route = JoinRoute::new(url, url, config.max_redirects, hello.seat.clone());
        let followed = join::follow(route, &hello, 0, &config).await;
        let joined = followed.result?;
        let mut client = Self::joined(joined, url, hello, config);
        let redirected = followed.redirects.into_iter();
        client
            .pending
            .extend(redirected.map(|url| Event::Redirected { url }));
        Ok(client)
    }

    fn joined(joined: Joined, entry_url: &str, mut hello: Hello, config: ClientConfig) -> Self {
        // A later join comes back with the token of its own welcome, and
        // with the seat of its own redirect.
        hello.resume = None;
        hello.seat = None;
        Self {
            pings: pings(&config),
            conn: joined.conn,
            welcome: joined.welcome,
            transport: joined.transport,
            pings_skipped: 0,
            config,
            entry_url: entry_url.to_owned(),
            node_url: joined.url,
            hello,
            last_heard: tokio::time::Instant::now(),
            reconnecting: None,
            pending: VecDeque::new(),
            farewell: Farewell::None,
        }
    }

    /// Whether a connection that ended for `reason` is tried again, and how.
    fn reconnection_after(&self, reason: &DisconnectReason) -> Option<Reconnecting> {
        if self.config.reconnect_attempts == 0 {
            return None;
        }
        match self.farewell {
            Farewell::RoomMoved => {
                Some(Reconnecting::after_room_moved(&self.config, reason.clone()))
            }
            Farewell::Final => None,
            Farewell::None => (matches!(reason, DisconnectReason::Transport { .. })
                && (self.welcome.resume.is_some() || self.config.rejoin_if_resume_fails))
                .then(|| {
                    Reconnecting::after_drop(
                        &self.config,
                        reason.clone(),
                        self.welcome.resume.clone(),
                        self.conn.last_input_seq(),
                    )
                }),
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
                self.reconnect().await;
                continue;
            }
            if let Some(event) = self.conn.poll_event() {
                if let Event::Disconnected { reason } = &event
                    && let Some(reconnecting) = self.reconnection_after(reason)
                {
                    tracing::info!(%reason, "connection over; connecting again");
                    self.reconnecting = Some(reconnecting);
                    return Some(Event::Reconnecting { attempt: 1 });
                }
                if event.kick_reason() == Some(KickReason::RoomMoved) {
                    self.farewell = Farewell::RoomMoved;
                } else if matches!(event, Event::Error { .. } | Event::Kicked { .. }) {
                    self.farewell = Farewell::Final;
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

    /// The URL given to [`Client::connect`]: where a join goes when the
    /// node the client was on is gone or lost the room.
    pub fn entry_url(&self) -> &str {
        &self.entry_url
    }

    /// The URL of the node the client is joined to: the one it was given,
    /// or where redirects took it. While reconnecting, the node it was on.
    pub fn node_url(&self) -> &str {
        &self.node_url
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
