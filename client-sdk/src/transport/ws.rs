//! WebSocket transport (tokio-tungstenite): one binary message per frame.
//!
//! One task per connection drives a reader and a writer concurrently over
//! the two halves of the socket, so a slow write never stops reads (and the
//! other way round):
//!
//! - the reader stamps each binary message and hands it to the client,
//!   waiting when the client's queue is full (TCP then pushes back on the
//!   server, which is how a lagging client becomes visible to it);
//! - the writer takes a frame, feeds every other frame already queued (up to
//!   [`MAX_BATCH`]) and flushes once, so a burst costs one write.
//!
//! WebSocket pings and close replies are answered by tungstenite itself.

use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tessera_protocol::DecodeError;
use tessera_protocol::limits::MAX_SERVER_FRAME;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{CloseKind, Inbound, Outbound, Transport};
use crate::config::ClientConfig;
use crate::connection::ProtocolError;
use crate::error::ClientError;
use crate::event::DisconnectReason;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Most frames written before one flush.
pub(crate) const MAX_BATCH: usize = 32;

pub(crate) async fn open(url: &str, config: &ClientConfig) -> Result<Transport, ClientError> {
    // The protocol's own limit, so tungstenite refuses a hostile message
    // before buffering it.
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_SERVER_FRAME))
        .max_frame_size(Some(MAX_SERVER_FRAME))
        // tungstenite zeroes its read buffer eagerly; most deltas are well
        // under 16 KiB and larger ones still arrive (the buffer grows).
        .read_buffer_size(16 * 1024);
    // Nagle off: inputs are small and late inputs are worse than extra packets.
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true)
        .await
        .map_err(|err| ClientError::Connect {
            url: url.into(),
            source: Box::new(err),
        })?;
    let (out_tx, out_rx) = mpsc::channel(config.send_queue);
    let (in_tx, in_rx) = mpsc::channel(config.event_queue);
    tokio::spawn(drive(ws, in_tx, out_rx, config.close_timeout));
    Ok(Transport {
        outbound: out_tx,
        inbound: in_rx,
    })
}

/// How the writer stopped.
enum WriterEnd {
    /// We sent a close frame; the server should answer and hang up.
    Closing,
    Failed(WsError),
}

/// Runs the connection until it is over, then reports why.
async fn drive(
    ws: Ws,
    inbound: mpsc::Sender<Inbound>,
    outbound: mpsc::Receiver<Outbound>,
    linger: Duration,
) {
    let (sink, stream) = ws.split();
    let reader = read_frames(stream, &inbound);
    let writer = write_frames(sink, outbound);
    tokio::pin!(reader, writer);

    enum First {
        Reader(DisconnectReason),
        Writer(WriterEnd),
    }
    let first = tokio::select! {
        reason = &mut reader => First::Reader(reason),
        end = &mut writer => First::Writer(end),
    };
    let reason = match first {
        First::Reader(reason) => reason,
        First::Writer(WriterEnd::Failed(err)) => transport_error(err),
        First::Writer(WriterEnd::Closing) => {
            // Keep reading so the server's close answer (and anything it sent
            // before) is consumed, but not forever.
            if tokio::time::timeout(linger, &mut reader).await.is_err() {
                tracing::debug!("server did not answer the close in time");
            }
            DisconnectReason::LocalClose
        }
    };
    tracing::debug!(%reason, "websocket connection ended");
    // Fails only when the client is gone, and then nobody needs to know.
    let _ = inbound.send(Inbound::Closed(reason)).await;
}

async fn read_frames(
    mut stream: SplitStream<Ws>,
    inbound: &mpsc::Sender<Inbound>,
) -> DisconnectReason {
    let mut close_frame: Option<CloseFrame> = None;
    loop {
        let message = match stream.next().await {
            Some(Ok(message)) => message,
            // tungstenite ends the stream once the close handshake is done.
            None | Some(Err(WsError::ConnectionClosed)) => return server_closed(close_frame),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                return ProtocolError::Decode(DecodeError::FrameTooLarge {
                    len: size,
                    max: max_size,
                })
                .into();
            }
            Some(Err(err)) => return transport_error(err),
        };
        match message {
            Message::Binary(frame) => {
                let received_at = Instant::now();
                if inbound
                    .send(Inbound::Frame { frame, received_at })
                    .await
                    .is_err()
                {
                    // The client is gone; the writer closes the connection.
                    return DisconnectReason::LocalClose;
                }
            }
            Message::Text(_) => return ProtocolError::TextFrame.into(),
            Message::Close(frame) => close_frame = frame,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

async fn write_frames(
    mut sink: SplitSink<Ws, Message>,
    mut outbound: mpsc::Receiver<Outbound>,
) -> WriterEnd {
    while let Some(first) = outbound.recv().await {
        let mut next = Some(first);
        let mut fed = 0;
        let mut closing = false;
        while let Some(item) = next.take() {
            let message = match item {
                Outbound::Frame(frame) | Outbound::Datagram(frame) => Message::Binary(frame),
                Outbound::Close(kind) => {
                    closing = true;
                    close_message(kind)
                }
            };
            if let Err(err) = sink.feed(message).await {
                return WriterEnd::Failed(err);
            }
            fed += 1;
            if closing || fed == MAX_BATCH {
                break;
            }
            next = outbound.try_recv().ok();
        }
        if let Err(err) = sink.flush().await {
            return WriterEnd::Failed(err);
        }
        if closing {
            return WriterEnd::Closing;
        }
    }
    // The client dropped its end without closing: close politely for it.
    match sink.send(close_message(CloseKind::Normal)).await {
        Ok(()) => WriterEnd::Closing,
        Err(err) => WriterEnd::Failed(err),
    }
}

fn close_message(kind: CloseKind) -> Message {
    let (code, reason) = match kind {
        CloseKind::Normal => (CloseCode::Normal, "bye"),
        CloseKind::ProtocolError => (CloseCode::Protocol, "protocol violation"),
    };
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn server_closed(frame: Option<CloseFrame>) -> DisconnectReason {
    match frame {
        Some(frame) => DisconnectReason::ServerClosed {
            code: Some(u16::from(frame.code)),
            reason: frame.reason.to_string(),
        },
        None => DisconnectReason::ServerClosed {
            code: None,
            reason: String::new(),
        },
    }
}

fn transport_error(err: WsError) -> DisconnectReason {
    DisconnectReason::Transport {
        message: err.to_string(),
    }
}
