//! A bot's connection: WebSocket, or QUIC (one control stream with
//! length-prefixed frames, plus datagrams), behind one small interface.
//!
//! QUIC bots share a few quinn endpoints (one UDP socket each, with large
//! kernel buffers: each tick the server sends every bot its state at once,
//! and a thousand datagrams overflow a default-sized buffer), built with
//! the SDK's own configuration and trust rules
//! ([`tessera_client::quic_endpoint_config`]). The addresses of the
//! `--url`s are looked up once, before the run; a node a redirect names is
//! looked up when a bot goes there.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tessera_protocol::limits::MAX_SERVER_FRAME;
use tessera_protocol::stream::{LENGTH_PREFIX, frame_length, write_frame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::join::JoinError;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bots per UDP socket.
const BOTS_PER_ENDPOINT: u64 = 100;
/// Most endpoints (sockets) a swarm opens.
const MAX_ENDPOINTS: usize = 64;
/// Kernel buffers per socket (capped by `net.core.rmem_max`).
const UDP_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Where a QUIC connection goes: the address, and the name the server's
/// certificate is checked against (with a CA).
#[derive(Debug, Clone)]
pub struct QuicTarget {
    pub addr: SocketAddr,
    pub server_name: String,
}

impl QuicTarget {
    /// Looks up the `host:port` of `url` (`quic://host:port`).
    pub async fn resolve(url: &str) -> Result<Self, String> {
        let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = authority.split('/').next().unwrap_or_default();
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority} has no address"))?;
        let server_name = authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self { addr, server_name })
    }
}

/// Where QUIC bots connect from, and the `--url`s' addresses.
#[derive(Debug, Clone)]
pub struct QuicClient {
    endpoints: Vec<quinn::Endpoint>,
    /// The `--url`s, looked up.
    known: Vec<(String, QuicTarget)>,
}

impl QuicClient {
    /// Endpoints for up to `bots` bots aimed at `known` (never empty: its
    /// first address picks the sockets' family, IPv4 or IPv6).
    pub fn new(
        known: Vec<(String, QuicTarget)>,
        config: &quinn::ClientConfig,
        bots: usize,
    ) -> std::io::Result<Self> {
        let ipv4 = known.first().is_none_or(|(_, t)| t.addr.is_ipv4());
        let count = (bots as u64)
            .div_ceil(BOTS_PER_ENDPOINT)
            .clamp(1, MAX_ENDPOINTS as u64);
        let endpoints = (0..count)
            .map(|_| {
                let socket = udp_socket(ipv4)?;
                let mut endpoint = quinn::Endpoint::new(
                    quinn::EndpointConfig::default(),
                    None,
                    socket,
                    std::sync::Arc::new(quinn::TokioRuntime),
                )?;
                endpoint.set_default_client_config(config.clone());
                Ok(endpoint)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self { endpoints, known })
    }

    fn endpoint(&self, bot: u64) -> &quinn::Endpoint {
        &self.endpoints[(bot % self.endpoints.len() as u64) as usize]
    }

    async fn target(&self, url: &str) -> Result<QuicTarget, JoinError> {
        match self.known.iter().find(|(known, _)| known == url) {
            Some((_, target)) => Ok(target.clone()),
            None => QuicTarget::resolve(url).await.map_err(JoinError::Connect),
        }
    }
}

/// An unbound-port UDP socket of the server's family with large buffers.
fn udp_socket(ipv4: bool) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, local): (Domain, SocketAddr) = if ipv4 {
        (Domain::IPV4, ([0, 0, 0, 0], 0).into())
    } else {
        (Domain::IPV6, ([0u16; 8], 0).into())
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer only makes drops likelier.
    let _ = socket.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_SOCKET_BUFFER);
    socket.bind(&local.into())?;
    Ok(socket.into())
}

/// One bot's connection.
#[derive(Debug)]
pub enum Link {
    Ws(Box<Ws>),
    Quic(QuicLink),
}

/// The QUIC side of a [`Link`].
#[derive(Debug)]
pub struct QuicLink {
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// Stream bytes read but not yet returned as a frame.
    buffer: BytesMut,
    out: Vec<u8>,
    /// False once reading datagrams failed (the connection is ending; the
    /// stream reports the end once it is drained).
    datagrams_open: bool,
}

/// Bytes read from a WebSocket at most per read (see [`Link::open`]).
const READ_BUFFER: usize = 2 * 1024;

impl Link {
    /// Connects to `url`: over WebSocket, or over QUIC from `quic` (bot
    /// `bot` picks its endpoint).
    pub async fn open(url: &str, quic: Option<&QuicClient>, bot: u64) -> Result<Self, JoinError> {
        let Some(quic) = quic else {
            // Nagle's algorithm would hold a ping behind an unacknowledged
            // input. A small read buffer: tungstenite zeroes up to this much
            // before every read (twice per frame, counting the read that
            // finds the socket empty). At its 128 KiB default that `memset`
            // was most of the swarm's CPU time, and at 8 KiB still 6 % of it
            // with 3,000 bots. Deltas of a crowd are a few hundred bytes;
            // a larger one just takes more than one read.
            let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .map_err(JoinError::of_websocket)?;
            return Ok(Self::Ws(Box::new(ws)));
        };
        let target = quic.target(url).await?;
        let conn = quic
            .endpoint(bot)
            .connect(target.addr, &target.server_name)
            .map_err(|e| JoinError::Connect(e.to_string()))?
            .await
            .map_err(JoinError::of_quic)?;
        let (send, recv) = conn.open_bi().await.map_err(JoinError::of_quic)?;
        Ok(Self::Quic(QuicLink {
            conn,
            send,
            recv,
            buffer: BytesMut::new(),
            out: Vec::new(),
            datagrams_open: true,
        }))
    }

    /// The next frame from the server, stream or datagram; `Ok(None)` once
    /// the connection is over. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Self::Ws(ws) => loop {
                return match ws.next().await {
                    Some(Ok(Message::Binary(frame))) => Ok(Some(frame)),
                    Some(Ok(Message::Close(_))) | None => Ok(None),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => Err(e.to_string()),
                };
            },
            Self::Quic(q) => q.recv().await,
        }
    }

    /// Sends one frame reliably.
    pub async fn send(&mut self, frame: Vec<u8>) -> Result<(), String> {
        match self {
            Self::Ws(ws) => ws
                .send(Message::Binary(frame.into()))
                .await
                .map_err(|e| e.to_string()),
            Self::Quic(q) => {
                q.out.clear();
                write_frame(&mut q.out, &frame);
                q.send.write_all(&q.out).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Sends one frame as a datagram where the link has them (an `Ack`).
    pub async fn send_datagram(&mut self, frame: Vec<u8>) -> Result<(), String> {
        match self {
            Self::Quic(q) => {
                // A lost ack is superseded by the next one.
                let _ = q.conn.send_datagram(frame.into());
                Ok(())
            }
            Self::Ws(_) => self.send(frame).await,
        }
    }

    /// Lets the connection go without a word, as a lost network does: a
    /// WebSocket's TCP connection ends with no close frame; a QUIC
    /// connection is left open and unused for a while (its path looks
    /// alive to the server, which replaces it when the bot resumes).
    pub fn abandon(self) {
        match self {
            Self::Ws(ws) => drop(ws),
            Self::Quic(q) => {
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    drop(q);
                });
            }
        }
    }

    pub async fn close(&mut self) {
        match self {
            Self::Ws(ws) => {
                let _ = WebSocketStream::close(ws, None).await;
            }
            Self::Quic(q) => {
                let _ = q.send.finish();
                q.conn.close(quinn::VarInt::from_u32(1000), b"bye");
            }
        }
    }
}

impl QuicLink {
    async fn recv(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(prefix) = self.buffer.get(..LENGTH_PREFIX) {
                let prefix: [u8; LENGTH_PREFIX] = prefix.try_into().unwrap_or_default();
                let len = frame_length(prefix, MAX_SERVER_FRAME).map_err(|e| e.to_string())?;
                if self.buffer.len() >= LENGTH_PREFIX + len {
                    let _ = self.buffer.split_to(LENGTH_PREFIX);
                    return Ok(Some(self.buffer.split_to(len).freeze()));
                }
            }
            tokio::select! {
                chunk = self.recv.read_chunk(64 * 1024, true) => match chunk {
                    Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk.bytes),
                    Ok(None) => return Ok(None),
                    Err(quinn::ReadError::ConnectionLost(
                        quinn::ConnectionError::ApplicationClosed(_),
                    )) => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                },
                datagram = self.conn.read_datagram(), if self.datagrams_open => match datagram {
                    Ok(datagram) => return Ok(Some(datagram)),
                    Err(_) => self.datagrams_open = false,
                },
            }
        }
    }
}
