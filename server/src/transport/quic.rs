//! QUIC transport (quinn): one bidirectional control stream per connection,
//! carrying length-prefixed frames, and datagrams for state.
//!
//! The client opens the stream and sends `Hello` on it; everything but
//! state travels there. State goes out as datagrams, which the tick thread
//! queues directly through [`QuicDatagrams`] (quinn sends them with the
//! connection's next packets, so a tick's parts leave together). The
//! client's datagrams (its `Ack`s) arrive through the same [`QuicSource`]
//! as its stream frames. `PROTOCOL.md` §1.2 is the wire contract.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, ConnectionError, Endpoint, ReadError, RecvStream, SendStream, VarInt};
use tessera_protocol::limits::MAX_CLIENT_FRAME;
use tessera_protocol::stream::{LENGTH_PREFIX, frame_length, write_frame};

use super::admission::{AddressAdmission, AddressSlot};
use super::gate::{HandshakeGate, HandshakeSlot};
use super::tls::{Identity, TlsError, rustls_server_config};
use crate::frames::{DatagramRefused, DatagramSink, FrameSink, FrameSource, Inbound};
use crate::metrics;
use crate::session;
use crate::state::ServerState;

/// The ALPN protocol id of this protocol version.
pub const ALPN: &[u8] = b"tessera/1";
/// Bytes of client datagrams buffered before quinn drops them: the client
/// sends only `Ack`s (a few bytes, one per tick).
const DATAGRAM_RECEIVE_BUFFER: usize = 64 * 1024;
/// Bytes a client may send on its control stream ahead of what the session
/// has read. Quinn's default (1.25 MB) would let every connection park that
/// much while its session waits on a join; client frames are at most 4 KiB
/// and come a few a tick, so 64 KiB is still many ticks of slack.
const CONTROL_RECEIVE_WINDOW: u32 = 64 * 1024;
/// Bytes of datagrams queued per connection before a client counts as
/// lagging (several seconds of state at crowd rates).
const DATAGRAM_SEND_BUFFER: usize = 256 * 1024;
/// Connections that say nothing for this long are gone. The session's own
/// idle timeout (which counts only protocol messages) is the one clients
/// meet; this only reaps dead paths.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// The most bytes read from the control stream at once.
const READ_CHUNK: usize = 16 * 1024;
/// Kernel buffers of the one UDP socket every client shares. Each tick
/// every client answers with an ack at about the same moment, and a burst
/// of a thousand small datagrams takes about a megabyte of kernel memory;
/// at the 208 KiB default Linux drops most of it. The kernel caps the
/// request at `net.core.rmem_max` / `wmem_max`.
const UDP_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// A bound QUIC endpoint.
pub fn bind(addr: SocketAddr, identity: Identity) -> Result<Endpoint, BindError> {
    let tls = rustls_server_config(identity, ALPN)?;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| BindError::Crypto(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(CONTROL_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONTROL_RECEIVE_WINDOW))
        .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_SEND_BUFFER)
        .max_idle_timeout(MAX_IDLE.try_into().ok());
    config.transport_config(Arc::new(transport));
    let socket = udp_socket(addr).map_err(BindError::Io)?;
    Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(BindError::Io)
}

/// A UDP socket bound to `addr` with [`UDP_SOCKET_BUFFER`]-sized buffers
/// (as large as the kernel allows).
fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    for (what, set) in [
        (
            "receive",
            Socket::set_recv_buffer_size as fn(&Socket, usize) -> _,
        ),
        ("send", Socket::set_send_buffer_size),
    ] {
        if let Err(e) = set(&socket, UDP_SOCKET_BUFFER) {
            tracing::warn!(error = %e, "cannot size the QUIC socket's {what} buffer");
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Why the QUIC endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS configuration unusable for QUIC: {0}")]
    Crypto(String),
    #[error(transparent)]
    Io(std::io::Error),
}

/// Accepts connections until shutdown.
/// `addresses` decides per client address at accept; `gate` bounds the
/// handshakes under way.
pub async fn serve(
    endpoint: Endpoint,
    addresses: Arc<AddressAdmission>,
    gate: Arc<HandshakeGate>,
    state: Arc<ServerState>,
) {
    let shutdown = state.shutdown.clone();
    loop {
        let incoming = tokio::select! {
            () = shutdown.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        // Under pressure, a client first proves it owns its address (one
        // more round trip): forged-source packets then cannot hold slots.
        if gate.is_busy() && !incoming.remote_address_validated() && incoming.may_retry() {
            let _ = incoming.retry();
            continue;
        }
        let address = match addresses.admit(incoming.remote_address().ip(), Instant::now()) {
            Ok(slot) => slot,
            Err(refused) => {
                tracing::debug!(peer = %incoming.remote_address(), %refused, "connection refused at accept");
                incoming.refuse();
                continue;
            }
        };
        let Some(handshake) = gate.admit(incoming.remote_address().ip()) else {
            tracing::debug!(peer = %incoming.remote_address(), "too many pending handshakes; connection refused");
            incoming.refuse();
            continue;
        };
        let state = Arc::clone(&state);
        state
            .tasks
            .spawn(connection(incoming, address, handshake, state.clone()));
    }
    // Sessions say their goodbyes in their own tasks; the server closes
    // the endpoint once they are done.
}

/// One connection's life; `_address` holds its place in its address's
/// count until the session ends.
async fn connection(
    incoming: quinn::Incoming,
    _address: AddressSlot,
    handshake: HandshakeSlot,
    state: Arc<ServerState>,
) {
    let peer = incoming.remote_address();
    let limit = state.handshake_timeout();
    let handshaken = tokio::select! {
        handshaken = tokio::time::timeout(limit, incoming) => handshaken,
        () = handshake.evicted() => {
            tracing::debug!(%peer, "quic handshake gave its slot to a newer one");
            return;
        }
    };
    let conn = match handshaken {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "quic handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "quic handshake timed out");
            return;
        }
    };
    let opened = tokio::select! {
        opened = tokio::time::timeout(limit, conn.accept_bi()) => opened,
        () = handshake.evicted() => {
            conn.close(VarInt::from_u32(1008), b"handshake_evicted");
            return;
        }
    };
    let (send, recv) = match opened {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "no control stream");
            return;
        }
        Err(_) => {
            conn.close(VarInt::from_u32(1008), b"handshake_timeout");
            return;
        }
    };
    let source = QuicSource {
        recv,
        conn: conn.clone(),
        buffer: BytesMut::new(),
    };
    let sink = QuicSink {
        send,
        datagrams: Arc::new(QuicDatagrams::new(conn)),
        buffer: Vec::new(),
    };
    drop(handshake);
    session::run(source, sink, peer, "quic", state).await;
}

/// The reading half: stream frames and datagrams, as they come.
#[derive(Debug)]
pub struct QuicSource {
    recv: RecvStream,
    conn: Connection,
    /// Stream bytes read but not yet returned as a frame.
    buffer: BytesMut,
}

impl QuicSource {
    /// A whole frame from the buffer, or a refusal of its announced length.
    fn buffered_frame(&mut self) -> Option<Inbound> {
        let prefix: [u8; LENGTH_PREFIX] = self.buffer.get(..LENGTH_PREFIX)?.try_into().ok()?;
        let len = match frame_length(prefix, MAX_CLIENT_FRAME) {
            Ok(len) => len,
            // Refused unread: the session answers and closes.
            Err(_) => return Some(Inbound::TooLarge),
        };
        if self.buffer.len() < LENGTH_PREFIX + len {
            return None;
        }
        let _ = self.buffer.split_to(LENGTH_PREFIX);
        Some(Inbound::Frame(self.buffer.split_to(len).freeze()))
    }
}

impl FrameSource for QuicSource {
    /// Cancel-safe: quinn's reads are, and a partial frame stays buffered.
    async fn next(&mut self) -> Inbound {
        loop {
            if let Some(inbound) = self.buffered_frame() {
                return inbound;
            }
            tokio::select! {
                chunk = self.recv.read_chunk(READ_CHUNK, true) => match chunk {
                    Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk.bytes),
                    Ok(None) => return Inbound::Closed,
                    Err(ReadError::ConnectionLost(e)) => return lost(e),
                    Err(ReadError::Reset(_) | ReadError::ClosedStream) => return Inbound::Closed,
                    Err(e) => return Inbound::Failed(e.to_string()),
                },
                datagram = self.conn.read_datagram() => match datagram {
                    Ok(datagram) => return Inbound::Datagram(datagram),
                    Err(e) => return lost(e),
                },
            }
        }
    }
}

fn lost(e: ConnectionError) -> Inbound {
    match e {
        ConnectionError::ApplicationClosed(_)
        | ConnectionError::ConnectionClosed(_)
        | ConnectionError::LocallyClosed => Inbound::Closed,
        // A dead path or a peer that lost its state: the connection
        // dropped, and its player may come back.
        other => Inbound::Failed(other.to_string()),
    }
}

/// The writing half: the control stream, and the datagram path.
#[derive(Debug)]
pub struct QuicSink {
    send: SendStream,
    datagrams: Arc<QuicDatagrams>,
    /// One batch of length-prefixed frames, written at once.
    buffer: Vec<u8>,
}

impl FrameSink for QuicSink {
    async fn send_batch(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        self.buffer.clear();
        for frame in batch {
            write_frame(&mut self.buffer, frame);
        }
        self.send
            .write_all(&self.buffer)
            .await
            .map_err(std::io::Error::other)
    }

    /// QUIC measures the round trip itself ([`FrameSink::transport_rtt`]).
    async fn queue_probe(&mut self, _payload: [u8; 8]) -> std::io::Result<()> {
        Ok(())
    }

    /// Finishes the stream, waits (within the caller's goodbye timeout)
    /// until the client has the final frame, then closes the connection.
    async fn close(&mut self, code: u16, reason: &str) {
        if self.send.finish().is_ok() {
            let _ = self.send.stopped().await;
        }
        self.datagrams
            .conn
            .close(VarInt::from(code), reason.as_bytes());
    }

    fn datagrams(&self) -> Option<Arc<dyn DatagramSink>> {
        Some(Arc::clone(&self.datagrams) as Arc<dyn DatagramSink>)
    }

    fn transport_rtt(&self) -> Option<Duration> {
        Some(self.datagrams.conn.rtt())
    }
}

/// Queues datagrams on a connection from any thread, without waiting.
#[derive(Debug)]
pub struct QuicDatagrams {
    conn: Connection,
    bytes_sent: ::metrics::Counter,
    messages_sent: ::metrics::Counter,
}

impl QuicDatagrams {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            bytes_sent: ::metrics::counter!(metrics::BYTES_SENT, "transport" => "quic"),
            messages_sent: ::metrics::counter!(metrics::MESSAGES_SENT, "transport" => "quic"),
        }
    }
}

impl DatagramSink for QuicDatagrams {
    fn max_size(&self) -> Option<usize> {
        self.conn.max_datagram_size()
    }

    fn try_send(&self, datagram: Bytes) -> Result<(), DatagramRefused> {
        // quinn makes room by dropping the oldest queued datagrams; refuse
        // instead, so a client that does not keep up is seen lagging.
        if self.conn.datagram_send_buffer_space() < datagram.len() {
            return Err(DatagramRefused::Full);
        }
        let len = datagram.len() as u64;
        match self.conn.send_datagram(datagram) {
            Ok(()) => {
                self.bytes_sent.increment(len);
                self.messages_sent.increment(1);
                Ok(())
            }
            Err(quinn::SendDatagramError::TooLarge) => Err(DatagramRefused::TooLarge {
                max: self.conn.max_datagram_size().unwrap_or(0),
            }),
            Err(_) => Err(DatagramRefused::Closed),
        }
    }
}
