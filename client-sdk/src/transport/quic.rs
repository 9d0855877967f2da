//! QUIC transport (quinn): one bidirectional control stream with
//! length-prefixed frames, and datagrams (`DeltaPart`s in, `Ack`s out).
//!
//! One task per connection runs three loops concurrently: the stream
//! reader, the datagram reader (both hand frames to the client, waiting
//! when its queue is full; quinn then drops datagrams that do not fit its
//! receive buffer, which the protocol expects), and the writer, which
//! writes every queued frame in one go and sends acks as datagrams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, SendStream, VarInt};
use tessera_protocol::limits::MAX_SERVER_FRAME;
use tessera_protocol::stream::{LENGTH_PREFIX, frame_length, write_frame};
use tokio::sync::mpsc;

use super::trust::{ALPN, Refusal, Verifier};
use super::{CloseKind, Inbound, Outbound, Transport};
use crate::config::ClientConfig;
use crate::connection::ProtocolError;
use crate::error::ClientError;
use crate::event::DisconnectReason;

/// Port of `quic://host` without one.
const DEFAULT_PORT: u16 = 7701;
/// Bytes of datagrams quinn buffers before it drops them: several seconds
/// of a crowd's state, so that a busy application loses none.
const DATAGRAM_RECEIVE_BUFFER: usize = 1024 * 1024;
/// Keeps NAT bindings and the server's idle timer alive.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const MAX_IDLE: Duration = Duration::from_secs(30);
const READ_CHUNK: usize = 64 * 1024;
/// Most frames written in one go.
const MAX_BATCH: usize = 32;

/// Connects to `quic://{authority}` (`url` is the whole URL, for errors).
pub(crate) async fn open(
    url: &str,
    authority: &str,
    config: &ClientConfig,
) -> Result<Transport, ClientError> {
    let (client_config, refusal) = endpoint_config(config, url)?;
    let (host, addr) = resolve(url, authority).await?;
    let connect_error = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Connect {
        url: url.into(),
        source,
    };
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let endpoint = Endpoint::client(local).map_err(|e| connect_error(Box::new(e)))?;
    let connecting = endpoint
        .connect_with(client_config, addr, &host)
        .map_err(|e| connect_error(Box::new(e)))?;
    let conn = match connecting.await {
        Ok(conn) => conn,
        Err(e) => return Err(handshake_error(url, e, &refusal)),
    };
    let (send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| connect_error(Box::new(e)))?;
    let (out_tx, out_rx) = mpsc::channel(config.send_queue);
    let (in_tx, in_rx) = mpsc::channel(config.event_queue);
    tokio::spawn(drive(
        endpoint,
        conn,
        send,
        recv,
        in_tx,
        out_rx,
        config.close_timeout,
    ));
    Ok(Transport {
        outbound: out_tx,
        inbound: in_rx,
    })
}

/// The quinn configuration of a connection with `config`'s trust, and
/// where its verifier writes why it refused a certificate.
fn endpoint_config(
    config: &ClientConfig,
    url: &str,
) -> Result<(quinn::ClientConfig, Refusal), ClientError> {
    let (verifier, refusal) = Verifier::new(&config.trust, url)?;
    let config_error = |e: &dyn std::error::Error| ClientError::InvalidCa(e.to_string());
    let mut tls = rustls::ClientConfig::builder_with_provider(verifier.provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_error(&e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| config_error(&e))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(MAX_IDLE.try_into().ok());
    client_config.transport_config(Arc::new(transport));
    Ok((client_config, refusal))
}

/// The quinn client configuration this client uses for `quic://` (ALPN,
/// datagram buffer, keep-alive) with `config`'s trust, for tools that drive
/// many raw QUIC connections from one endpoint (load generators).
pub fn quic_endpoint_config(config: &ClientConfig) -> Result<quinn::ClientConfig, ClientError> {
    endpoint_config(config, "quic://").map(|(c, _)| c)
}

/// The host name (for the certificate) and the address of `authority`.
async fn resolve(url: &str, authority: &str) -> Result<(String, SocketAddr), ClientError> {
    let invalid = |reason| ClientError::InvalidUrl {
        url: url.into(),
        reason,
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => {
            (host, port.parse().map_err(|_| invalid("bad port"))?)
        }
        _ => (authority, DEFAULT_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ClientError::Connect {
            url: url.into(),
            source: Box::new(e),
        })?
        .next()
        .ok_or_else(|| invalid("the host has no address"))?;
    Ok((host.to_owned(), addr))
}

fn handshake_error(url: &str, error: ConnectionError, refusal: &Refusal) -> ClientError {
    match refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(reason) => ClientError::UntrustedCertificate {
            url: url.into(),
            reason,
        },
        None => ClientError::Connect {
            url: url.into(),
            source: Box::new(error),
        },
    }
}

/// Runs the connection until it is over, then reports why.
async fn drive(
    endpoint: Endpoint,
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
    inbound: mpsc::Sender<Inbound>,
    outbound: mpsc::Receiver<Outbound>,
    linger: Duration,
) {
    let reason = tokio::select! {
        reason = read_stream(recv, &conn, &inbound) => reason,
        reason = read_datagrams(&conn, &inbound) => reason,
        closing = write_frames(send, &conn, outbound) => match closing {
            Ok(()) => {
                // Give the close a moment to reach the server.
                let _ = tokio::time::timeout(linger, endpoint.wait_idle()).await;
                DisconnectReason::LocalClose
            }
            Err(reason) => reason,
        },
    };
    tracing::debug!(%reason, "quic connection ended");
    conn.close(VarInt::from_u32(1000), b"bye");
    let _ = inbound.send(Inbound::Closed(reason)).await;
}

/// Reads length-prefixed frames off the control stream.
async fn read_stream(
    mut recv: RecvStream,
    conn: &Connection,
    inbound: &mpsc::Sender<Inbound>,
) -> DisconnectReason {
    let mut buffer = BytesMut::new();
    loop {
        while let Some(prefix) = buffer.get(..LENGTH_PREFIX) {
            let prefix: [u8; LENGTH_PREFIX] = prefix.try_into().unwrap_or_default();
            let len = match frame_length(prefix, MAX_SERVER_FRAME) {
                Ok(len) => len,
                Err(e) => return ProtocolError::Decode(e).into(),
            };
            if buffer.len() < LENGTH_PREFIX + len {
                break;
            }
            let _ = buffer.split_to(LENGTH_PREFIX);
            let frame = buffer.split_to(len).freeze();
            if deliver(inbound, frame).await.is_err() {
                return DisconnectReason::LocalClose;
            }
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => buffer.extend_from_slice(&chunk.bytes),
            // The server finished the stream: its close follows.
            Ok(None) | Err(_) => return closed(conn.closed().await),
        }
    }
}

/// Reads datagrams until the client is gone. When the connection ends it
/// waits: the stream reader reports the end once it has handed over the
/// frames the server sent before closing (its `Error` or `Kicked`).
async fn read_datagrams(conn: &Connection, inbound: &mpsc::Sender<Inbound>) -> DisconnectReason {
    while let Ok(datagram) = conn.read_datagram().await {
        if deliver(inbound, datagram).await.is_err() {
            return DisconnectReason::LocalClose;
        }
    }
    std::future::pending().await
}

async fn deliver(inbound: &mpsc::Sender<Inbound>, frame: Bytes) -> Result<(), ()> {
    let received_at = Instant::now();
    inbound
        .send(Inbound::Frame { frame, received_at })
        .await
        .map_err(drop)
}

/// Writes queued frames to the stream (all that are waiting, at once) and
/// acks as datagrams. `Ok` when this side closed.
async fn write_frames(
    mut send: SendStream,
    conn: &Connection,
    mut outbound: mpsc::Receiver<Outbound>,
) -> Result<(), DisconnectReason> {
    let mut buffer = Vec::new();
    while let Some(first) = outbound.recv().await {
        buffer.clear();
        let mut next = Some(first);
        let mut close = None;
        let mut taken = 0;
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(frame) => write_frame(&mut buffer, &frame),
                // A lost ack is superseded by the next one.
                Outbound::Datagram(frame) => {
                    let _ = conn.send_datagram(frame);
                }
                Outbound::Close(kind) => close = Some(kind),
            }
            taken += 1;
            if close.is_some() || taken == MAX_BATCH {
                break;
            }
            next = outbound.try_recv().ok();
        }
        if !buffer.is_empty() {
            send.write_all(&buffer).await.map_err(|e| transport(&e))?;
        }
        if let Some(kind) = close {
            close_with(&mut send, conn, kind);
            return Ok(());
        }
    }
    // The client dropped its end without closing: close politely for it.
    close_with(&mut send, conn, CloseKind::Normal);
    Ok(())
}

fn close_with(send: &mut SendStream, conn: &Connection, kind: CloseKind) {
    let _ = send.finish();
    let (code, reason): (u32, &[u8]) = match kind {
        CloseKind::Normal => (1000, b"bye"),
        CloseKind::ProtocolError => (1002, b"protocol violation"),
    };
    conn.close(VarInt::from_u32(code), reason);
}

fn closed(error: ConnectionError) -> DisconnectReason {
    match error {
        ConnectionError::ApplicationClosed(close) => DisconnectReason::ServerClosed {
            code: u16::try_from(close.error_code.into_inner()).ok(),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        ConnectionError::LocallyClosed => DisconnectReason::LocalClose,
        other => DisconnectReason::Transport {
            message: other.to_string(),
        },
    }
}

fn transport(error: &dyn std::error::Error) -> DisconnectReason {
    DisconnectReason::Transport {
        message: error.to_string(),
    }
}
