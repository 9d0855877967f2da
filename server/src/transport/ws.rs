//! WebSocket transport (tokio-tungstenite): one protocol message per binary
//! frame.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::admission::{AddressAdmission, AddressSlot};
use super::gate::{HandshakeGate, HandshakeSlot};
use crate::frames::{FrameSink, FrameSource, Inbound};
use crate::session;
use crate::state::ServerState;

/// Frames larger than this are refused by the WebSocket layer before they
/// are read. Frames between `MAX_CLIENT_FRAME` and this are read and
/// refused by the session, with the same `frame_too_large` error. It stays
/// close to the protocol limit because a client may keep a frame this large
/// half-sent, and buffered, until its idle timeout: at 20,000 connections
/// 8 KiB each is 160 MiB.
const WS_HARD_LIMIT: usize = 2 * tessera_protocol::limits::MAX_CLIENT_FRAME;

/// Per-connection read buffer. Client frames are small, and tungstenite
/// zeroes up to this much before every read: its 128 KiB default made
/// `memset` the largest cost of a busy server (and 2.5 GiB at 20,000
/// connections). Inputs and pings are tens of bytes; the rare larger frame
/// (up to `MAX_CLIENT_FRAME`) takes a few reads.
const READ_BUFFER: usize = 1024;

/// Accepts connections until shutdown.
/// `addresses` decides per client address at accept; `gate` bounds the
/// upgrades under way.
pub async fn serve(
    listener: TcpListener,
    addresses: Arc<AddressAdmission>,
    gate: Arc<HandshakeGate>,
    state: Arc<ServerState>,
) {
    let shutdown = state.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Closed at once: before the upgrade there is no way to
                // send an error, and a flood must cost nothing more.
                let address = match addresses.admit(peer.ip(), Instant::now()) {
                    Ok(slot) => slot,
                    Err(refused) => {
                        tracing::debug!(%peer, %refused, "connection closed at accept");
                        continue;
                    }
                };
                // Dropped unanswered: a flood of half-open connections must
                // not cost a task and buffers each.
                let Some(handshake) = gate.admit(peer.ip()) else {
                    tracing::debug!(%peer, "too many pending handshakes; connection dropped");
                    continue;
                };
                let state = Arc::clone(&state);
                state
                    .tasks
                    .spawn(connection(stream, peer, address, handshake, state.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// One connection's life; `_address` holds its place in its address's
/// count until the session ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    _address: AddressSlot,
    handshake: HandshakeSlot,
    state: Arc<ServerState>,
) {
    // Deltas are small and latency-bound: never wait to coalesce them.
    let _ = stream.set_nodelay(true);
    let send_buffer = state.config.socket_send_buffer;
    if send_buffer > 0
        && let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer)
    {
        tracing::debug!(%peer, error = %e, "cannot set the socket send buffer");
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(WS_HARD_LIMIT))
        .max_frame_size(Some(WS_HARD_LIMIT))
        .read_buffer_size(READ_BUFFER);
    let upgrade =
        tokio_tungstenite::accept_async_with_config(HeaderCapped::new(stream), Some(config));
    let upgraded = tokio::select! {
        upgraded = tokio::time::timeout(state.handshake_timeout(), upgrade) => upgraded,
        () = handshake.evicted() => {
            tracing::debug!(%peer, "websocket upgrade gave its slot to a newer one");
            return;
        }
    };
    let mut ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "websocket upgrade failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "websocket upgrade timed out");
            return;
        }
    };
    ws.get_mut().upgraded();
    drop(handshake);
    let (sink, source) = ws.split();
    session::run(WsSource(source), WsSink(sink), peer, "ws", state).await;
}

/// The most bytes an upgrade request may take before its headers end. A
/// browser's is under 1 KiB, with cookies a few; a connection that keeps
/// sending headers would otherwise hold a growing buffer until its
/// handshake timeout.
pub const MAX_UPGRADE_REQUEST: usize = 8 * 1024;

/// A TCP stream that refuses to read more than [`MAX_UPGRADE_REQUEST`]
/// bytes until the upgrade is done. The client speaks only after the
/// server's 101, so everything read before it is the request.
#[derive(Debug)]
pub struct HeaderCapped {
    stream: TcpStream,
    /// Bytes the request may still take; `None` once upgraded.
    left: Option<usize>,
}

impl HeaderCapped {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            left: Some(MAX_UPGRADE_REQUEST),
        }
    }

    /// The upgrade is done: from here on, the WebSocket layer's own frame
    /// limits apply.
    fn upgraded(&mut self) {
        self.left = None;
    }
}

impl tokio::io::AsyncRead for HeaderCapped {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let Some(left) = self.left else {
            return std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        };
        if left == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("upgrade request over {MAX_UPGRADE_REQUEST} bytes"),
            )));
        }
        // Read no more than the request may still take. Through a small
        // copy: the handshake is read once, and this needs no unsafe.
        let mut chunk = [0_u8; 1024];
        let want = left.min(buf.remaining()).min(chunk.len());
        let mut small = tokio::io::ReadBuf::new(&mut chunk[..want]);
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, &mut small);
        if let std::task::Poll::Ready(Ok(())) = polled {
            let read = small.filled();
            buf.put_slice(read);
            self.left = Some(left - read.len());
        }
        polled
    }
}

impl tokio::io::AsyncWrite for HeaderCapped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[derive(Debug)]
pub struct WsSource(SplitStream<WebSocketStream<HeaderCapped>>);

impl FrameSource for WsSource {
    async fn next(&mut self) -> Inbound {
        loop {
            return match self.0.next().await {
                Some(Ok(Message::Binary(bytes))) => Inbound::Frame(bytes),
                Some(Ok(Message::Text(_))) => Inbound::Unsupported("text frame"),
                Some(Ok(Message::Close(_))) | None => Inbound::Closed,
                Some(Ok(Message::Pong(payload))) => Inbound::ProbeAnswer(payload),
                // Answered by tungstenite itself.
                Some(Ok(Message::Ping(_))) => Inbound::Control,
                // Only produced when writing.
                Some(Ok(Message::Frame(_))) => continue,
                Some(Err(WsError::Capacity(_))) => Inbound::TooLarge,
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Inbound::Closed,
                // The connection dropped (no close frame): its player may
                // come back, unlike after a close or a violation.
                Some(Err(WsError::Protocol(
                    tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ))) => Inbound::Failed("connection lost without a close".into()),
                Some(Err(WsError::Protocol(violation))) => {
                    Inbound::Violation(violation.to_string())
                }
                Some(Err(e)) => Inbound::Failed(e.to_string()),
            };
        }
    }
}

#[derive(Debug)]
pub struct WsSink(SplitSink<WebSocketStream<HeaderCapped>, Message>);

impl FrameSink for WsSink {
    async fn send_batch(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        for frame in batch {
            self.0
                .feed(Message::Binary(frame.clone()))
                .await
                .map_err(std::io::Error::other)?;
        }
        self.0.flush().await.map_err(std::io::Error::other)
    }

    async fn queue_probe(&mut self, payload: [u8; 8]) -> std::io::Result<()> {
        self.0
            .feed(Message::Ping(Bytes::copy_from_slice(&payload)))
            .await
            .map_err(std::io::Error::other)
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: tessera_protocol::truncate(reason.to_owned(), 120).into(),
        };
        let _ = self.0.send(Message::Close(Some(frame))).await;
        let _ = self.0.close().await;
    }
}
