//! What a transport hands a session: a connection split into a
//! [`FrameSource`] and a [`FrameSink`], the [`Inbound`] events the source
//! yields, and, for transports that have one (QUIC), the [`DatagramSink`]
//! the room's tick thread sends state through. The session logic is the
//! same for every transport; the transports (`crate::transport`) implement
//! these traits and nothing else of the server depends on them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// Close codes (WebSocket numbering; other transports map them).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// What a transport read from the client.
#[derive(Debug)]
pub enum Inbound {
    /// One binary frame: one protocol message.
    Frame(Bytes),
    /// One frame that arrived as an unreliable datagram (QUIC).
    Datagram(Bytes),
    /// A frame kind the protocol does not use (a WebSocket text frame).
    Unsupported(&'static str),
    /// A frame over the transport's hard size limit, refused unread.
    TooLarge,
    /// The client's transport answered one of our round-trip probes
    /// ([`FrameSink::queue_probe`]) with this payload (or sent a pong of
    /// its own accord, which is then a [`Inbound::Control`]).
    ProbeAnswer(Bytes),
    /// A control frame the client's transport sent of its own accord (a
    /// WebSocket ping). It carries no message, but it costs a read and an
    /// answer, so it counts against the client's message rate.
    Control,
    /// The client's transport broke its own protocol (a WebSocket frame
    /// unmasked, with reserved bits, of an unknown opcode…): nothing more
    /// can be read.
    Violation(String),
    /// The client closed the connection.
    Closed,
    /// The connection failed.
    Failed(String),
}

/// The reading half of a connection.
pub trait FrameSource: Send + 'static {
    fn next(&mut self) -> impl Future<Output = Inbound> + Send;
}

/// The writing half of a connection.
pub trait FrameSink: Send + 'static {
    /// Writes every frame of `batch` and flushes once.
    fn send_batch(&mut self, batch: &[Bytes]) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Queues a round-trip probe carrying `payload` (a WebSocket ping) to
    /// leave with the next [`FrameSink::send_batch`], so probing costs no
    /// flush of its own. The client's transport answers it by itself; the
    /// answer comes back as [`Inbound::ProbeAnswer`].
    fn queue_probe(&mut self, payload: [u8; 8])
    -> impl Future<Output = std::io::Result<()>> + Send;
    /// Closes the connection with a code and a short reason.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = ()> + Send;
    /// The connection's datagram path, if it has one: state then travels
    /// there, against what the client acknowledged.
    fn datagrams(&self) -> Option<Arc<dyn DatagramSink>> {
        None
    }
    /// The round trip the transport measures by itself (QUIC does), used
    /// instead of probes when present.
    fn transport_rtt(&self) -> Option<Duration> {
        None
    }
}

/// Sends unreliable datagrams on a connection, without waiting: the tick
/// thread calls it directly.
pub trait DatagramSink: Send + Sync + std::fmt::Debug {
    /// The largest datagram the path takes now; `None` when the peer takes
    /// no datagrams.
    fn max_size(&self) -> Option<usize>;
    /// Queues one datagram to leave with the connection's next packets.
    fn try_send(&self, datagram: Bytes) -> Result<(), DatagramRefused>;
}

/// Why a datagram was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramRefused {
    /// The send buffer is full: the client does not keep up.
    #[error("datagram send buffer full")]
    Full,
    /// Larger than the path now takes (its MTU shrank).
    #[error("datagram over the path's limit of {max} bytes")]
    TooLarge { max: usize },
    /// The connection is gone, or never took datagrams.
    #[error("connection closed")]
    Closed,
}
