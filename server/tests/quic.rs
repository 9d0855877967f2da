//! What only QUIC has: state through a lossy, reordering network;
//! certificate trust (a CA or a pinned fingerprint, nothing else); and bad
//! input on the control stream or in datagrams.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use tessera_client::protocol::arena::{self as wire, Walk};
use tessera_client::{Client, ClientConfig, ClientError, ErrorCode, Event};
use tessera_protocol::limits::MAX_SERVER_FRAME;
use tessera_protocol::stream::{LENGTH_PREFIX, frame_length, write_frame};
use tessera_protocol::{ClientMsg, Hello, ServerMsg};
use tessera_server::Server;
use tessera_server::ServerConfig;
use tokio::net::UdpSocket;

/// A certificate authority and a server certificate it signed, as files.
struct TestCa {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-ca-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("params")
            .signed_by(&leaf_key, &ca)
            .expect("signed");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, leaf.pem()).expect("write");
        std::fs::write(&key, leaf_key.serialize_pem()).expect("write");
        Self {
            ca_pem: ca.pem(),
            cert,
            key,
        }
    }

    async fn server(&self) -> Server {
        self.server_with(|_| {}).await
    }

    async fn server_with(&self, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
        let (cert, key) = (self.cert.clone(), self.key.clone());
        start(PlacedArena::default(), move |c| {
            c.tls_cert = Some(cert);
            c.tls_key = Some(key);
            tweak(c);
        })
        .await
    }
}

fn quic_url(server: &Server) -> String {
    format!("quic://{}", server.quic_addr())
}

async fn connect(url: &str, config: ClientConfig) -> Result<Client, ClientError> {
    Client::connect_with(url, hello("trust", "t", 10.0, 10.0), config).await
}

#[tokio::test]
async fn a_configured_ca_or_a_pinned_fingerprint_is_trusted_and_nothing_else() {
    let ca = TestCa::new("trusted");
    let server = ca.server().await;
    let url = quic_url(&server);
    let by_ca = connect(
        &url,
        ClientConfig::default().ca_certificate_pem(ca.ca_pem.clone()),
    )
    .await
    .expect("the CA vouches for the server");
    let by_pin = connect(
        &url,
        ClientConfig::default().pinned_certificate(server.quic_fingerprint()),
    )
    .await
    .expect("the pinned fingerprint matches");

    let wrong_pin = "00".repeat(32);
    let err = connect(&url, ClientConfig::default().pinned_certificate(wrong_pin))
        .await
        .expect_err("another certificate is pinned");
    assert!(
        matches!(&err, ClientError::UntrustedCertificate { reason, .. } if reason.contains(server.quic_fingerprint())),
        "{err}"
    );
    let stranger = TestCa::new("stranger");
    let err = connect(
        &url,
        ClientConfig::default().ca_certificate_pem(stranger.ca_pem),
    )
    .await
    .expect_err("another CA");
    assert!(
        matches!(err, ClientError::UntrustedCertificate { .. }),
        "{err}"
    );
    by_ca.close().await;
    by_pin.close().await;
    server.shutdown().await;
}

/// What the walk example does on the server's machine: pin the
/// development certificate's file itself, no fingerprint copied.
#[tokio::test]
async fn the_development_certificate_file_itself_can_be_pinned() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let url = quic_url(&server);
    let dev_cert = server.state().config.data_dir.join("quic-dev-cert.pem");
    let pem = std::fs::read(&dev_cert).expect("the server wrote its certificate");
    let client = connect(&url, ClientConfig::default().pinned_certificate_pem(pem))
        .await
        .expect("the file's certificate is the server's");
    let stranger = TestCa::new("stranger");
    let err = connect(
        &url,
        ClientConfig::default().pinned_certificate_pem(stranger.ca_pem),
    )
    .await
    .expect_err("another certificate");
    assert!(
        matches!(err, ClientError::UntrustedCertificate { .. }),
        "{err}"
    );
    client.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// A lossy relay.

/// A UDP relay between one client and the server that drops `loss_percent`
/// of the datagrams each way and holds back a tenth of the rest for 30 to
/// 250 ms, so they arrive after later ones (often a tick or two later).
/// With no loss it only watches: it counts the server's Retry packets.
struct LossyRelay {
    addr: SocketAddr,
    dropped: Arc<AtomicU64>,
    delayed: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// A QUIC version 1 Retry packet: long header (bit 7), packet type 3
/// (bits 5-4), version 1 (RFC 9000 §17.2.5).
fn is_retry(packet: &[u8]) -> bool {
    packet.len() > 5 && packet[0] & 0xb0 == 0xb0 && packet[1..5] == [0, 0, 0, 1]
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LossyRelay {
    async fn start(server: SocketAddr, loss_percent: u64) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        back.connect(server).await.expect("connect");
        let addr = front.local_addr().expect("addr");
        let (dropped, delayed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let retries = Arc::new(AtomicU64::new(0));
        let counters = (
            Arc::clone(&dropped),
            Arc::clone(&delayed),
            Arc::clone(&retries),
        );
        let task = tokio::spawn(async move {
            let mut rng = 0x2545_f491_4f6c_dd1d_u64;
            let mut roll = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let mut client = None;
            let (mut up, mut down) = (vec![0u8; 2048], vec![0u8; 2048]);
            loop {
                // (bytes, towards the server?)
                let (packet, to_server) = tokio::select! {
                    got = front.recv_from(&mut up) => match got {
                        Ok((n, from)) => {
                            client = Some(from);
                            (up[..n].to_vec(), true)
                        }
                        Err(_) => continue,
                    },
                    got = back.recv(&mut down) => match got {
                        Ok(n) => (down[..n].to_vec(), false),
                        Err(_) => continue,
                    },
                };
                if !to_server && is_retry(&packet) {
                    counters.2.fetch_add(1, Ordering::Relaxed);
                }
                if loss_percent == 0 {
                    let _ = match client {
                        _ if to_server => back.send(&packet).await,
                        Some(client) => front.send_to(&packet, client).await,
                        None => continue,
                    };
                    continue;
                }
                if roll(100) < loss_percent {
                    counters.0.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let delay = (roll(10) == 0).then(|| Duration::from_millis(30 + roll(220)));
                let (front, back) = (Arc::clone(&front), Arc::clone(&back));
                let send = async move {
                    if to_server {
                        let _ = back.send(&packet).await;
                    } else if let Some(client) = client {
                        let _ = front.send_to(&packet, client).await;
                    }
                };
                match delay {
                    Some(delay) => {
                        counters.1.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            send.await;
                        });
                    }
                    None => send.await,
                }
            }
        });
        Self {
            addr,
            dropped,
            delayed,
            retries,
            task,
        }
    }
}

fn x_of(client: &Client, id: u32) -> Option<f32> {
    let position = client.world().get(id)?.get::<wire::Position>()?.ok()?;
    Some(position.to_units().0)
}

#[tokio::test]
async fn state_through_a_lossy_reordering_relay_converges_and_never_goes_back() {
    let server = start(PlacedArena::default(), |_| {}).await;
    let relay = LossyRelay::start(server.quic_addr(), 20).await;
    // The walker's own WebSocket mirror is the truth to compare with.
    let mut walker = join(&server, "lossy", "walker", 1000.0, 1000.0).await;
    let walker_id = walker.welcome().entity_id;
    let config = Transport::Quic.config(&server);
    let url = format!("quic://{}", relay.addr);
    let mut watcher = Client::connect_with(&url, hello("lossy", "watcher", 1060.0, 1000.0), config)
        .await
        .expect("joins through the relay");
    until(&mut watcher, 5 * SECOND, |w, _| {
        w.world().contains(walker_id)
    })
    .await;

    // The walker walks east: through the loss, the watcher's view of it
    // only ever moves east (an older state never comes back). It walks
    // until the relay has both dropped and reordered enough on the way.
    input_acked(&mut walker, Walk::from_direction(1.0, 0.0)).await;
    let mut last_x = x_of(&watcher, walker_id).expect("seen");
    let mut updates = 0;
    let enough = |updates| {
        updates >= 8
            && relay.dropped.load(Ordering::Relaxed) > 10
            && relay.delayed.load(Ordering::Relaxed) > 3
    };
    until(&mut watcher, PATIENCE, |w, event| {
        if matches!(event, Event::EntityUpdated { id } if *id == walker_id) {
            let x = x_of(w, walker_id).expect("seen");
            assert!(x >= last_x, "the walker went back from x = {last_x} to {x}");
            last_x = x;
            updates += 1;
        }
        enough(updates)
    })
    .await;

    // It stops; soon the watcher holds exactly where it is.
    input_acked(&mut walker, Walk::default()).await;
    let truth = x_of(&walker, walker_id).expect("the walker sees itself");
    // The watcher may hold the last position already: when the stop lands
    // in the tick right after the last update it read, no event is left to
    // wait for (about one run in six did, before this check).
    if x_of(&watcher, walker_id) != Some(truth) {
        until(&mut watcher, PATIENCE, |w, _| {
            x_of(w, walker_id) == Some(truth)
        })
        .await;
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Bad input, on a raw QUIC connection.

/// A raw connection to the server: the control stream's two halves, and a
/// buffer of stream bytes read but not yet decoded.
struct Raw {
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    buffer: BytesMut,
    _endpoint: quinn::Endpoint,
}

impl Raw {
    async fn connect(server: &Server, ca_pem: &str) -> Self {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("tls 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"tessera/1".to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic crypto");
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let conn = endpoint
            .connect(server.quic_addr(), "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let (send, recv) = conn.open_bi().await.expect("stream");
        Self {
            conn,
            send,
            recv,
            buffer: BytesMut::new(),
            _endpoint: endpoint,
        }
    }

    /// Connects and joins far from everyone, returning once welcomed.
    async fn joined(server: &Server, ca_pem: &str) -> Self {
        let mut raw = Self::connect(server, ca_pem).await;
        let hello = ClientMsg::Hello(hello("abuse", "bad", 3500.0, 3500.0)).encode();
        raw.send_frame(&hello).await;
        loop {
            match raw.next_msg().await {
                Some(ServerMsg::Welcome(_)) => return raw,
                Some(_) => {}
                None => panic!("closed before the welcome"),
            }
        }
    }

    async fn send_frame(&mut self, frame: &[u8]) {
        let mut out = Vec::new();
        write_frame(&mut out, frame);
        self.send.write_all(&out).await.expect("write");
    }

    /// The next message on the control stream; `None` once it ends.
    async fn next_msg(&mut self) -> Option<ServerMsg> {
        loop {
            if let Some(prefix) = self.buffer.get(..LENGTH_PREFIX) {
                let prefix: [u8; LENGTH_PREFIX] = prefix.try_into().expect("four bytes");
                let len = frame_length(prefix, MAX_SERVER_FRAME).expect("within the limit");
                if self.buffer.len() >= LENGTH_PREFIX + len {
                    let _ = self.buffer.split_to(LENGTH_PREFIX);
                    let frame = self.buffer.split_to(len).freeze();
                    return Some(ServerMsg::decode(&frame).expect("server frames decode"));
                }
            }
            let chunk = tokio::time::timeout(5 * SECOND, self.recv.read_chunk(64 * 1024, true))
                .await
                .expect("the server answers");
            match chunk {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk.bytes),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Expects an error with `code` on the stream, then the close.
    async fn expect_refusal(mut self, code: ErrorCode) {
        loop {
            match self.next_msg().await {
                Some(ServerMsg::Error { code: got, message }) => {
                    assert_eq!(ErrorCode::from_u16(got), Some(code), "{message}");
                    break;
                }
                Some(ServerMsg::DeltaPart(_) | ServerMsg::Pong { .. }) => {}
                Some(other) => panic!("expected an error, got {other:?}"),
                None => panic!("closed without an error (expected {code})"),
            }
        }
        assert!(self.next_msg().await.is_none(), "the stream ends");
        let closed = tokio::time::timeout(5 * SECOND, self.conn.closed())
            .await
            .expect("the connection closes");
        assert!(
            matches!(closed, quinn::ConnectionError::ApplicationClosed(_)),
            "{closed}"
        );
    }
}

#[tokio::test]
async fn garbage_on_the_stream_or_in_datagrams_closes_only_that_connection() {
    let ca = TestCa::new("abuse");
    let server = ca.server().await;
    let mut victim = join_over(&server, Transport::Quic, "abuse", "victim", 1000.0, 1000.0).await;
    input_acked(&mut victim, Walk::from_direction(1.0, 0.0)).await;
    let pem = ca.ca_pem.clone();
    let abuser = async {
        // Before the handshake: garbage, a length over the limit. (A
        // datagram before any stream byte has no stream to be answered on;
        // such a connection is closed at the handshake timeout.)
        let mut raw = Raw::connect(&server, &pem).await;
        raw.send_frame(&[0xc1, 0xff, 0x00]).await;
        raw.expect_refusal(ErrorCode::Malformed).await;
        let mut raw = Raw::connect(&server, &pem).await;
        raw.send
            .write_all(&[0x00, 0x01, 0x00, 0x00])
            .await
            .expect("write");
        raw.expect_refusal(ErrorCode::FrameTooLarge).await;
        let mut raw = Raw::connect(&server, &pem).await;
        raw.send_frame(&ClientMsg::Ack { tick: 1 }.encode()).await;
        raw.expect_refusal(ErrorCode::HandshakeRequired).await;
        // After joining: garbage on the stream, a garbage datagram, a
        // valid message that may not travel in a datagram, an old version.
        let mut raw = Raw::joined(&server, &pem).await;
        raw.send_frame(&[0xde, 0xad, 0xbe, 0xef]).await;
        raw.expect_refusal(ErrorCode::Malformed).await;
        let raw = Raw::joined(&server, &pem).await;
        raw.conn
            .send_datagram(Bytes::from_static(&[0x92, 0x05, 0xc1]))
            .expect("datagram");
        raw.expect_refusal(ErrorCode::Malformed).await;
        let raw = Raw::joined(&server, &pem).await;
        let ping = Bytes::from(ClientMsg::Ping { nonce: 1 }.encode());
        raw.conn.send_datagram(ping).expect("datagram");
        raw.expect_refusal(ErrorCode::UnsupportedFrame).await;
        let mut raw = Raw::connect(&server, &pem).await;
        let mut old = Hello::new("abuse");
        old.version = 99;
        raw.send_frame(&ClientMsg::Hello(old).encode()).await;
        raw.expect_refusal(ErrorCode::UnsupportedVersion).await;
    };
    let (mut events, ()) = events_during(&mut victim, abuser).await;
    events.extend(next_deltas(&mut victim, 8).await);
    // The victim kept walking and kept getting state throughout: never a
    // second (ten ticks) without a delta, lossy as datagrams are.
    let ticks = delta_ticks(&events);
    assert!(
        ticks.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 10),
        "{ticks:?}"
    );
    wait_for_players(&server, "abuse", 1).await;
    assert!(!victim.connection().is_closed());
    server.shutdown().await;
}

#[tokio::test]
async fn under_handshake_pressure_a_client_proves_its_address_and_still_gets_in() {
    let ca = TestCa::new("pressure");
    let server = ca
        .server_with(|c| {
            c.max_pending_handshakes = 3;
            c.handshake_timeout_ms = 30_000;
        })
        .await;
    // Two connections that never use their control stream hold two of the
    // three handshake slots: more than half, so new clients get a retry.
    let _stalled = [
        Raw::connect(&server, &ca.ca_pem).await,
        Raw::connect(&server, &ca.ca_pem).await,
    ];
    // The late client comes through a relay that sees the server's Retry.
    let relay = LossyRelay::start(server.quic_addr(), 0).await;
    let url = format!("quic://{}", relay.addr);
    let config = Transport::Quic.config(&server);
    let mut late = Client::connect_with(&url, hello("pressure", "late", 100.0, 100.0), config)
        .await
        .expect("joins after proving its address");
    assert!(
        relay.retries.load(Ordering::Relaxed) >= 1,
        "the server sent a Retry first"
    );
    input_acked(&mut late, Walk::from_direction(1.0, 0.0)).await;
    server.shutdown().await;
}
