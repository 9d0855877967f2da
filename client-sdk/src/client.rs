//! [`Client`]: the async API over a [`Connection`] and a transport task.
//!
//! The socket lives in a background task (see the private `transport` module); the
//! [`Connection`], and with it the mirror, lives here, in the application's
//! task. A frame is applied to the mirror only when the application asks for
//! the next event and the previous frame's events are all taken, so between
//! two calls to [`Client::next_event`] the mirror holds exactly the state the
//! events so far describe, and [`Client::world`] borrows it without a lock.

use std::time::Instant;

use serde::Serialize;
use tessera_protocol::{Hello, Welcome};
use tokio::time::{Interval, MissedTickBehavior};

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::event::{DisconnectReason, Event};
use crate::rtt::Rtt;
use crate::transport::{self, CloseKind, Inbound, Outbound, Transport};
use crate::world_view::{Entity, WorldView};

/// A joined session with a Tessera server.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    welcome: Welcome,
    transport: Transport,
    pings: Option<Interval>,
    pings_skipped: u64,
    config: ClientConfig,
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
        let mut conn = Connection::new();
        // Checked before any network: a bad room name fails at once.
        let hello_frame = conn.hello(&hello)?;
        let limit = config.connect_timeout;
        tokio::time::timeout(limit, Self::handshake(url, conn, hello_frame, config))
            .await
            .unwrap_or(Err(ClientError::Timeout(limit)))
    }

    async fn handshake(
        url: &str,
        mut conn: Connection,
        hello_frame: bytes::Bytes,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let mut transport = transport::open(url, &config).await?;
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
                        return Ok(Self::joined(conn, welcome, transport, config));
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

    fn joined(
        conn: Connection,
        welcome: Welcome,
        transport: Transport,
        config: ClientConfig,
    ) -> Self {
        // The first tick fires at once, so the first RTT is known early.
        let pings = (!config.ping_interval.is_zero()).then(|| {
            let mut interval = tokio::time::interval(config.ping_interval);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            conn,
            welcome,
            transport,
            pings,
            pings_skipped: 0,
            config,
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
            if let Some(event) = self.conn.poll_event() {
                return Some(event);
            }
            if self.conn.is_closed() {
                return None;
            }
            // Only cancel-safe awaits here; everything after them is sync.
            let woke = tokio::select! {
                inbound = self.transport.inbound.recv() => Wake::Inbound(inbound),
                () = next_ping(&mut self.pings) => Wake::Ping,
            };
            match woke {
                Wake::Inbound(inbound) => handle_inbound(&mut self.conn, &self.transport, inbound),
                Wake::Ping => self.send_ping(),
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
