//! [`ClientConfig`]: timeouts, ping interval and queue sizes of a [`crate::Client`].

use std::time::Duration;

/// How a [`crate::Client`] connects and runs. Start from
/// [`ClientConfig::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// let config = tessera_client::ClientConfig::default()
///     .connect_timeout(Duration::from_secs(3))
///     .ping_interval(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) event_queue: usize,
    pub(crate) send_queue: usize,
    pub(crate) close_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(1),
            event_queue: 256,
            send_queue: 64,
            close_timeout: Duration::from_secs(2),
        }
    }
}

impl ClientConfig {
    /// Longest wait for the whole handshake: TCP connect, WebSocket upgrade
    /// and the server's `Welcome`. Default 10 s: long enough for a slow
    /// mobile link, short enough that a dead server is reported while the
    /// player still waits.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often a ping is sent to measure the round trip. Default 1 s: a
    /// fresh RTT every second costs a few bytes. Zero turns pings off.
    /// Pings go out while the application waits in
    /// [`crate::Client::next_event`], which a live game always does.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// How many received frames may wait for the application to take their
    /// events. Default 256 (25 s of deltas at 10 Hz). When full, the client
    /// stops reading the socket, and a server that sees the client lagging
    /// may drop it: the bound makes a stalled game visible instead of
    /// growing memory. Values below 1 count as 1.
    pub fn event_queue(mut self, frames: usize) -> Self {
        self.event_queue = frames.max(1);
        self
    }

    /// How many outgoing frames may wait for the socket. Default 64 (6 s of
    /// inputs at 10 Hz). When full, [`crate::Client::send_input`] waits, and
    /// a ping due then is skipped. Values below 1 count as 1.
    pub fn send_queue(mut self, frames: usize) -> Self {
        self.send_queue = frames.max(1);
        self
    }

    /// How long [`crate::Client::close`] (and a dropped client) waits for the
    /// server to answer the close before dropping the connection. Default 2 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
}
