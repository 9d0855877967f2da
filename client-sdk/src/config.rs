//! [`ClientConfig`]: timeouts, ping interval, queue sizes and (for QUIC)
//! certificate trust of a [`crate::Client`].

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
    pub(crate) trust: Trust,
    pub(crate) reconnect_attempts: u32,
    pub(crate) reconnect_backoff: (Duration, Duration),
    pub(crate) rejoin_if_resume_fails: bool,
    pub(crate) silence_timeout: Duration,
    pub(crate) max_redirects: u32,
}

/// Whom a QUIC (`quic://`) connection trusts to vouch for the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// Nobody: a `quic://` connection is refused before it starts.
    #[default]
    Unset,
    /// Certificates issued by these CAs (PEM, one or more certificates).
    CaPem(Vec<u8>),
    /// Exactly the certificate with this SHA-256 fingerprint, as the server
    /// logs it (`AB:CD:…`; colons and case do not matter).
    Pinned(String),
    /// Exactly the first certificate of this PEM (a self-signed one, such
    /// as the server's development certificate).
    PinnedPem(Vec<u8>),
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(1),
            event_queue: 256,
            send_queue: 64,
            close_timeout: Duration::from_secs(2),
            trust: Trust::Unset,
            reconnect_attempts: 5,
            reconnect_backoff: (Duration::from_millis(250), Duration::from_secs(4)),
            rejoin_if_resume_fails: false,
            silence_timeout: Duration::from_secs(5),
            max_redirects: crate::redirect::DEFAULT_MAX_REDIRECTS,
        }
    }
}

impl ClientConfig {
    /// How many times a lost connection is tried again before the session
    /// ends ([`crate::Event::Reconnecting`]). Default 5; 0: never. Only a
    /// connection that failed is tried again: a close by either side, an
    /// error or a kick from the server ends the session, except the kick
    /// `room_moved` (the room moved to another node of the cluster), after
    /// which the client joins afresh.
    ///
    /// Each attempt connects first to the node the client was joined to
    /// (the last node redirects took it to), and, when that node cannot be
    /// reached at all (refused, or no answer within
    /// [`ClientConfig::connect_timeout`]), to the URL given to
    /// [`crate::Client::connect`], which redirects. A rejoin after
    /// `room_moved` goes to that URL straight away. A refusal that says
    /// "try again later" (`room_busy`, `server_full`, `shutting_down`,
    /// `cluster_unavailable`) counts as a failed attempt; any other ends
    /// the session.
    pub fn reconnect_attempts(mut self, attempts: u32) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// The wait before the first attempt, doubled for each next one up to
    /// `max`, each with up to half of it added at random (so that the
    /// players of a failed node do not all come back at the same instant).
    /// Default 250 ms to 4 s.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_backoff = (initial, max.max(initial));
        self
    }

    /// When the server no longer holds the player (`resume_failed`), join
    /// afresh as a new player instead of ending the session. Default no.
    pub fn rejoin_if_resume_fails(mut self, rejoin: bool) -> Self {
        self.rejoin_if_resume_fails = rejoin;
        self
    }

    /// A joined connection on which nothing arrives for this long is taken
    /// as lost (the server sends a delta at least once a second, and a
    /// pong for every ping), and is tried again. Default 5 s; zero: wait
    /// for the transport to notice.
    pub fn silence_timeout(mut self, timeout: Duration) -> Self {
        self.silence_timeout = timeout;
        self
    }

    /// How many times in a row a join follows the cluster elsewhere: a
    /// `Redirect` to the node that hosts the room, or, when that node
    /// refuses the seat (`seat_invalid`), a join again through the entry
    /// URL (the one given to [`crate::Client::connect`]). Default 3, as
    /// PROTOCOL.md §10.5 advises: a room that changes hands more often than
    /// that is an operator's problem, and the join fails with
    /// [`crate::ClientError::Redirect`] instead of chasing it. 0: a
    /// redirect fails the join.
    pub fn max_redirects(mut self, hops: u32) -> Self {
        self.max_redirects = hops;
        self
    }

    /// Longest wait for the whole handshake: TCP connect, WebSocket upgrade
    /// and the server's `Welcome`, across the redirects a cluster sends
    /// (seats expire within seconds, so a join that takes longer would
    /// fail anyway). Default 10 s: long enough for a slow mobile link,
    /// short enough that a dead server is reported while the player still
    /// waits.
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

    /// Trusts, over QUIC, servers whose certificate chains to one of these
    /// CA certificates (PEM). WebSocket (`ws://`) does not use it.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trust = Trust::CaPem(pem.into());
        self
    }

    /// Trusts, over QUIC, exactly the server certificate with this SHA-256
    /// fingerprint: what `tessera serve` logs for its development
    /// certificate (or `openssl x509 -noout -fingerprint -sha256` prints).
    /// A malformed fingerprint fails the connect with
    /// [`crate::ClientError::InvalidFingerprint`]. Redirects are checked
    /// against the same fingerprint, so the nodes of a cluster would all
    /// need this one certificate; with one certificate per node, trust
    /// their CA ([`ClientConfig::ca_certificate_pem`]) instead.
    pub fn pinned_certificate(mut self, sha256: impl Into<String>) -> Self {
        self.trust = Trust::Pinned(sha256.into());
        self
    }

    /// Trusts, over QUIC, exactly the first certificate in this PEM: the
    /// file itself, such as the development certificate a server on this
    /// machine wrote (`tessera-data/quic-dev-cert.pem`). Same check as
    /// [`ClientConfig::pinned_certificate`] with its fingerprint; a PEM
    /// without a certificate fails the connect with
    /// [`crate::ClientError::InvalidCertificatePem`].
    pub fn pinned_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trust = Trust::PinnedPem(pem.into());
        self
    }

    /// How long [`crate::Client::close`] (and a dropped client) waits for the
    /// server to answer the close before dropping the connection. Default 2 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
}
