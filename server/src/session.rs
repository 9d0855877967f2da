//! One client connection, whatever its transport: the handshake, the read
//! loop that turns frames into room commands, and the writer that drains the
//! session's bounded outbound queue in batches.
//!
//! A misbehaving client gets an `Error` frame with a code and its connection
//! is closed; nothing it sends can reach the room unchecked, and nothing it
//! fails to read can hold up the room (the room only ever `try_send`s).

mod live;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tessera_protocol::{ClientMsg, DecodeError, ErrorCode, Hello, KickReason, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use live::SessionLive;

use crate::metrics::{self, LinkMetrics, end};
use crate::room::{DatagramLink, Refusal, RoomCommand, RoomHandle, SessionLink};
use crate::server::ServerState;
use crate::transport::{FrameSink, FrameSource, Inbound, close_code};

/// Frames the writer sends per flush at most.
const WRITE_BATCH: usize = 64;
/// How long the goodbye (final frame and close) may take.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a session is to end: the last frame to send and the close code.
#[derive(Debug, Clone)]
pub struct CloseRequest {
    pub frame: Option<Bytes>,
    pub code: u16,
    pub reason: String,
    /// Why, as a bounded metric label ([`metrics::DISCONNECTS`]).
    pub label: &'static str,
}

impl CloseRequest {
    pub fn error(code: ErrorCode, message: &str) -> Self {
        let close = match code {
            ErrorCode::FrameTooLarge => close_code::TOO_BIG,
            ErrorCode::UnsupportedFrame => close_code::UNSUPPORTED_DATA,
            ErrorCode::Internal => close_code::INTERNAL,
            ErrorCode::ServerFull | ErrorCode::RoomBusy | ErrorCode::ShuttingDown => {
                close_code::TRY_AGAIN_LATER
            }
            _ => close_code::POLICY,
        };
        Self {
            frame: Some(Bytes::from(ServerMsg::error(code, message).encode())),
            code: close,
            reason: code.as_str().to_owned(),
            label: code.as_str(),
        }
    }

    pub fn kicked(reason: KickReason, message: &str) -> Self {
        let close = match reason {
            KickReason::Shutdown => close_code::GOING_AWAY,
            _ => close_code::POLICY,
        };
        Self {
            frame: Some(Bytes::from(ServerMsg::kicked(reason, message).encode())),
            code: close,
            reason: reason.as_str().to_owned(),
            label: reason.as_str(),
        }
    }

    /// A plain close, counted under `label` (one of [`metrics::end`]).
    fn normal(label: &'static str) -> Self {
        Self {
            frame: None,
            code: close_code::NORMAL,
            reason: String::new(),
            label,
        }
    }
}

/// Lets the room (or anyone) end a session: the first request wins.
#[derive(Debug)]
pub struct SessionControl {
    /// Cancelled once a close request is in place (the writer's signal).
    token: CancellationToken,
    /// Cancelled by a close request or by server shutdown: the read loop's
    /// one signal, so that it polls a single waiter per message.
    reader_wake: CancellationToken,
    request: Mutex<Option<CloseRequest>>,
    /// The first request's label, kept after the writer takes the request.
    label: OnceLock<&'static str>,
}

impl SessionControl {
    fn new(shutdown: &CancellationToken) -> Self {
        Self {
            token: CancellationToken::new(),
            reader_wake: shutdown.child_token(),
            request: Mutex::new(None),
            label: OnceLock::new(),
        }
    }

    pub fn close(&self, request: CloseRequest) {
        let mut slot = self.request.lock().unwrap_or_else(|p| p.into_inner());
        if self.label.set(request.label).is_ok() {
            *slot = Some(request);
        }
        drop(slot);
        self.token.cancel();
        self.reader_wake.cancel();
    }

    /// Why the session ended (its first close request's label).
    fn label(&self) -> &'static str {
        self.label.get().copied().unwrap_or(end::NORMAL)
    }

    pub fn is_closing(&self) -> bool {
        self.token.is_cancelled()
    }

    async fn closing(&self) {
        self.token.cancelled().await;
    }

    fn take(&self) -> Option<CloseRequest> {
        self.request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Runs a session to its end. Never fails: every ending is logged.
pub async fn run(
    source: impl FrameSource,
    sink: impl FrameSink,
    peer: SocketAddr,
    transport: &'static str,
    state: Arc<ServerState>,
) {
    let id = state.next_session_id();
    let span = tracing::info_span!("session", id, %peer, transport, room = tracing::field::Empty);
    let link_metrics = Arc::new(LinkMetrics::open(transport));
    let Ok(_permit) = Arc::clone(&state.connections).try_acquire_owned() else {
        let mut sink = sink;
        let refusal = CloseRequest::error(
            ErrorCode::ServerFull,
            "the server is at its connection limit",
        );
        metrics::disconnected(refusal.label);
        goodbye(&mut sink, refusal, &link_metrics).await;
        return;
    };
    let control = Arc::new(SessionControl::new(&state.shutdown));
    let live = Arc::new(SessionLive::new(peer, transport));
    let datagrams = sink.datagrams().map(DatagramLink::new);
    let (outbound, queue) = mpsc::channel(state.config.outbound_queue);
    let writer = Writer {
        control: Arc::clone(&control),
        live: Arc::clone(&live),
        metrics: Arc::clone(&link_metrics),
    };
    let writer = tokio::spawn(writer.run(sink, queue));
    let mut session = Session {
        id,
        source,
        state: Arc::clone(&state),
        metrics: link_metrics,
        link: SessionLink {
            id,
            outbound,
            control: Arc::clone(&control),
            live,
            datagrams,
        },
        room: None,
        joined: false,
        limiter: limiter(state.config.messages_per_second, state.config.message_burst),
        chat_limiter: limiter(
            state.config.chat_per_second,
            state.config.chat_per_second.saturating_mul(2).max(5),
        ),
        // Acks come once per tick; four per tick, two seconds of burst.
        ack_limiter: limiter(
            u32::from(state.config.tick_hz) * 4,
            u32::from(state.config.tick_hz) * 8,
        ),
    };
    let end = session.run(&span).await;
    let joined = session.joined;
    if let Some(room) = session.room.take() {
        let _ = room.send(RoomCommand::Leave { client: id });
        state.registry.release(&room);
    }
    let _entered = span.enter();
    match &end {
        End::ClientClosed => tracing::debug!("client closed the connection"),
        End::Refused(code, msg) => {
            metrics::rejected(code.as_str());
            tracing::info!(code = code.as_str(), reason = %msg, "client refused")
        }
        End::Transport(e) => tracing::info!(error = %e, "connection failed"),
        other => tracing::info!(end = ?other, "session ended"),
    }
    control.close(match end {
        End::ClientClosed => CloseRequest::normal(end::CLIENT_CLOSED),
        End::Transport(_) => CloseRequest::normal(end::TRANSPORT_ERROR),
        End::Refused(code, msg) => CloseRequest::error(code, &msg),
        End::IdleTimeout => {
            CloseRequest::kicked(KickReason::IdleTimeout, "no message for too long")
        }
        // Kicked is for sessions that joined; before that it is an error.
        End::Shutdown if joined => {
            CloseRequest::kicked(KickReason::Shutdown, "the server is shutting down")
        }
        End::Shutdown => {
            CloseRequest::error(ErrorCode::ShuttingDown, "the server is shutting down")
        }
        End::ClosedByServer => CloseRequest::normal(end::NORMAL),
    });
    metrics::disconnected(control.label());
    drop(session);
    let mut writer = writer;
    if tokio::time::timeout(GOODBYE_TIMEOUT * 2, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

fn limiter(per_second: u32, burst: u32) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    ClientClosed,
    Transport(String),
    /// The client broke a rule; it gets this error and a close.
    Refused(ErrorCode, String),
    IdleTimeout,
    Shutdown,
    /// The room or the writer ended it (kick, lag, failed write).
    ClosedByServer,
}

struct Session<S> {
    id: u64,
    source: S,
    state: Arc<ServerState>,
    metrics: Arc<LinkMetrics>,
    link: SessionLink,
    room: Option<Arc<RoomHandle>>,
    /// The room welcomed this session.
    joined: bool,
    limiter: DefaultDirectRateLimiter,
    chat_limiter: DefaultDirectRateLimiter,
    ack_limiter: DefaultDirectRateLimiter,
}

impl<S: FrameSource> Session<S> {
    /// The handshake runs inside the session's span; the read loop logs
    /// nothing, and entering a span on every poll cost 2 % of a busy
    /// server's CPU, so it runs outside.
    async fn run(&mut self, span: &tracing::Span) -> End {
        let handshake = async {
            let hello = self.read_hello().await?;
            self.join(hello).await
        };
        if let Err(end) = handshake.instrument(span.clone()).await {
            return end;
        }
        self.read_loop().await
    }

    /// Waits for the first frame, which must be a valid `Hello`.
    async fn read_hello(&mut self) -> Result<Hello, End> {
        let deadline = Instant::now() + self.state.handshake_timeout();
        let first = tokio::select! {
            () = self.state.shutdown.cancelled() => return Err(End::Shutdown),
            read = next_inbound(&mut self.source, &self.link.live, &self.metrics, &self.limiter, deadline) => read,
        };
        let frame = match first {
            None => {
                return Err(End::Refused(
                    ErrorCode::HandshakeTimeout,
                    "no Hello within the handshake timeout".into(),
                ));
            }
            Some(Inbound::Datagram(_)) => {
                return Err(End::Refused(
                    ErrorCode::HandshakeRequired,
                    "send Hello on the control stream first".into(),
                ));
            }
            Some(inbound) => frame_of(inbound)?,
        };
        match decode(&frame)? {
            // The decoder already refused other protocol versions.
            ClientMsg::Hello(hello) => {
                if !hello.has_valid_room() {
                    return Err(End::Refused(
                        ErrorCode::InvalidRoomName,
                        "room names are 1 to 64 characters of A-Z a-z 0-9 _ . : -".into(),
                    ));
                }
                Ok(hello)
            }
            other => Err(End::Refused(
                ErrorCode::HandshakeRequired,
                format!("expected Hello, got {}", other.kind()),
            )),
        }
    }

    async fn join(&mut self, hello: Hello) -> Result<(), End> {
        let refused = |r: Refusal| End::Refused(r.code, r.message);
        let room = self.state.registry.reserve(&hello.room).map_err(refused)?;
        tracing::Span::current().record("room", room.name.as_str());
        let (reply, answer) = oneshot::channel();
        let command = RoomCommand::Join {
            link: self.link.clone(),
            options: hello.options,
            reply,
        };
        if room.send(command).is_err() {
            self.state.registry.release(&room);
            return Err(End::Refused(
                ErrorCode::RoomBusy,
                "the room is too busy; try again".into(),
            ));
        }
        // From here on the room may hold us: leave it whatever happens.
        self.room = Some(Arc::clone(&room));
        let answer = tokio::select! {
            () = self.state.shutdown.cancelled() => return Err(End::Shutdown),
            answer = tokio::time::timeout(self.state.handshake_timeout(), answer) => answer,
        };
        match answer {
            Ok(Ok(Ok(welcome))) => {
                self.joined = true;
                tracing::info!(entity = welcome.entity_id, "joined");
                Ok(())
            }
            Ok(Ok(Err(refusal))) => Err(refused(refusal)),
            Ok(Err(_)) | Err(_) => Err(End::Refused(
                ErrorCode::RoomBusy,
                "the room did not answer in time; try again".into(),
            )),
        }
    }

    async fn read_loop(&mut self) -> End {
        let idle = Duration::from_millis(self.state.config.idle_timeout_ms);
        let control = Arc::clone(&self.link.control);
        let live = Arc::clone(&self.link.live);
        // Built once, not per frame: registering a waiter or a timer for
        // every message cost more than handling the message.
        let woken = control.reader_wake.cancelled();
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(woken, idle_timer);
        let mut last_heard = Instant::now();
        loop {
            // The next frame is polled first: a frame that is already there
            // then costs no poll of the other two. They are polled (and
            // their wake-ups registered) whenever the socket has nothing,
            // which between a client's messages is always.
            let inbound = tokio::select! {
                biased;
                inbound = self.source.next() => inbound,
                () = &mut woken => {
                    return if control.is_closing() {
                        End::ClosedByServer
                    } else {
                        End::Shutdown
                    };
                }
                () = &mut idle_timer => {
                    // The timer is pushed back lazily, only when it fires.
                    let deadline = last_heard + idle;
                    if Instant::now() >= deadline {
                        return End::IdleTimeout;
                    }
                    idle_timer.as_mut().reset(deadline);
                    continue;
                }
            };
            let Some(inbound) = note_inbound(inbound, &live, &self.metrics, &self.limiter) else {
                // A probe answer or a control frame: from the client's
                // WebSocket layer, so it does not keep the client from
                // idling out.
                continue;
            };
            last_heard = Instant::now();
            let via_datagram = matches!(inbound, Inbound::Datagram(_));
            let msg = match frame_of(inbound).and_then(|frame| decode(&frame)) {
                Ok(msg) => msg,
                Err(end) => return end,
            };
            if let Err(end) = self.check_rates(&msg, via_datagram) {
                return end;
            }
            if let Err(end) = self.dispatch(msg) {
                return end;
            }
        }
    }

    /// Acks have their own limit (they come with every tick); only they may
    /// travel in datagrams.
    fn check_rates(&self, msg: &ClientMsg, via_datagram: bool) -> Result<(), End> {
        let is_ack = matches!(msg, ClientMsg::Ack { .. });
        if via_datagram && !is_ack {
            return Err(End::Refused(
                ErrorCode::UnsupportedFrame,
                format!("{} in a datagram; only Ack may be", msg.kind()),
            ));
        }
        let limiter = if is_ack {
            &self.ack_limiter
        } else {
            &self.limiter
        };
        if limiter.check().is_err() {
            return Err(End::Refused(
                ErrorCode::RateLimited,
                "too many messages".into(),
            ));
        }
        Ok(())
    }

    fn dispatch(&mut self, msg: ClientMsg) -> Result<(), End> {
        let Some(room) = &self.room else {
            return Err(End::ClosedByServer);
        };
        match msg {
            ClientMsg::Hello(_) => {
                return Err(End::Refused(
                    ErrorCode::AlreadyJoined,
                    "this session has already joined".into(),
                ));
            }
            ClientMsg::Input { seq, intent } => {
                // A full room queue drops the input: the client's next one
                // supersedes it, and the ack tells the client what landed.
                if room
                    .send(RoomCommand::Input {
                        client: self.id,
                        seq,
                        intent,
                    })
                    .is_err()
                {
                    self.state.count_dropped_input();
                    metrics::rejected(ErrorCode::RoomBusy.as_str());
                }
            }
            ClientMsg::Chat { text } => {
                if self.chat_limiter.check().is_err() {
                    return Err(End::Refused(
                        ErrorCode::RateLimited,
                        "too many chat messages".into(),
                    ));
                }
                if let Err(e) = tessera_sim::check_chat(&text) {
                    return Err(End::Refused(ErrorCode::InvalidChat, e.to_string()));
                }
                let _ = room.send(RoomCommand::Chat {
                    client: self.id,
                    text,
                });
            }
            // Read by the tick thread before its next tick; reliable
            // transports have no use for it.
            ClientMsg::Ack { tick } => {
                if let Some(datagrams) = &self.link.datagrams {
                    datagrams.acknowledge(tick, room.tick());
                }
            }
            ClientMsg::Ping { nonce } => {
                let pong = ServerMsg::Pong {
                    nonce,
                    tick: room.tick(),
                };
                if self
                    .link
                    .outbound
                    .try_send(Bytes::from(pong.encode()))
                    .is_err()
                {
                    self.metrics.pong_drops.increment(1);
                }
            }
        }
        Ok(())
    }
}

/// The next thing the client sent, or `None` at `deadline`. Answers to our
/// round-trip probes are taken here and never returned.
/// The next message before `deadline` (`None` when it passed), taking
/// probe answers and control frames on the way. For the handshake; the
/// read loop keeps one timer for the whole session instead.
async fn next_inbound(
    source: &mut impl FrameSource,
    live: &SessionLive,
    metrics: &LinkMetrics,
    limiter: &DefaultDirectRateLimiter,
    deadline: Instant,
) -> Option<Inbound> {
    loop {
        let inbound = tokio::time::timeout_at(deadline, source.next())
            .await
            .ok()?;
        if let Some(inbound) = note_inbound(inbound, live, metrics, limiter) {
            return Some(inbound);
        }
    }
}

/// Records what arrived; `None` for a probe answer or a control frame,
/// which are consumed here. Control frames (and pongs that answer no probe)
/// use up the message rate; past it, they come back as
/// [`Inbound::Control`] for the caller to refuse.
fn note_inbound(
    inbound: Inbound,
    live: &SessionLive,
    metrics: &LinkMetrics,
    limiter: &DefaultDirectRateLimiter,
) -> Option<Inbound> {
    match inbound {
        Inbound::ProbeAnswer(payload) => {
            match live.probe_answered(&payload, std::time::Instant::now()) {
                Some(rtt) => {
                    metrics.rtt.record(rtt.as_secs_f64());
                    None
                }
                None => limiter.check().is_err().then_some(Inbound::Control),
            }
        }
        Inbound::Control => limiter.check().is_err().then_some(Inbound::Control),
        Inbound::Frame(ref frame) | Inbound::Datagram(ref frame) => {
            metrics.messages_received.increment(1);
            metrics.bytes_received.increment(frame.len() as u64);
            Some(inbound)
        }
        other => Some(other),
    }
}

fn frame_of(inbound: Inbound) -> Result<Bytes, End> {
    match inbound {
        Inbound::Frame(frame) | Inbound::Datagram(frame) => Ok(frame),
        // Taken by `next_inbound`; never a protocol message.
        Inbound::ProbeAnswer(_) => Err(End::Transport("unexpected probe answer".into())),
        // Returned by `note_inbound` only past the message rate.
        Inbound::Control => Err(End::Refused(
            ErrorCode::RateLimited,
            "too many WebSocket control frames".into(),
        )),
        Inbound::Unsupported(what) => Err(End::Refused(
            ErrorCode::UnsupportedFrame,
            format!("{what}s are not part of the protocol; send binary frames"),
        )),
        Inbound::TooLarge => Err(End::Refused(
            ErrorCode::FrameTooLarge,
            "frame exceeds the transport limit".into(),
        )),
        Inbound::Closed => Err(End::ClientClosed),
        Inbound::Failed(e) => Err(End::Transport(e)),
    }
}

fn decode(frame: &Bytes) -> Result<ClientMsg, End> {
    ClientMsg::decode(frame).map_err(|e: DecodeError| End::Refused(e.code(), e.to_string()))
}

/// The writing half of a session.
struct Writer {
    control: Arc<SessionControl>,
    live: Arc<SessionLive>,
    metrics: Arc<LinkMetrics>,
}

impl Writer {
    /// Sends queued frames in batches until the session closes, probing the
    /// round trip now and then, then sends the goodbye (if any) and the
    /// close. A due probe leaves with the next batch (no flush of its own);
    /// only a connection with nothing to send for a whole probe period gets
    /// one alone.
    async fn run(self, mut sink: impl FrameSink, mut queue: mpsc::Receiver<Bytes>) {
        let control = &self.control;
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        // Built once, not per batch (see `read_loop`).
        let closing = control.closing();
        tokio::pin!(closing);
        let mut probes =
            tokio::time::interval_at(Instant::now() + live::FIRST_PROBE, live::PROBE_PERIOD);
        probes.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut probe_due = false;
        loop {
            // Queued frames are polled first, as in `read_loop`; a write
            // that cannot finish at once waits on `closing` too, so a stuck
            // client cannot hold the writer past its close.
            let written = tokio::select! {
                biased;
                n = queue.recv_many(&mut batch, WRITE_BATCH) => {
                    if n == 0 || control.is_closing() {
                        break;
                    }
                    let written = tokio::select! {
                        biased;
                        written = self.write(&mut sink, &batch, &mut probe_due) => written,
                        () = &mut closing => break,
                    };
                    if written.is_ok() {
                        count_sent(&self.metrics, &batch);
                    }
                    batch.clear();
                    written
                }
                () = &mut closing => break,
                _ = probes.tick() => {
                    if !probe_due {
                        probe_due = true;
                        continue;
                    }
                    tokio::select! {
                        biased;
                        () = &mut closing => break,
                        written = self.write(&mut sink, &[], &mut probe_due) => written,
                    }
                }
            };
            if let Err(e) = written {
                tracing::debug!(error = %e, "write failed");
                control.close(CloseRequest::normal(end::WRITE_FAILED));
                return;
            }
        }
        let request = control
            .take()
            .unwrap_or_else(|| CloseRequest::normal(end::NORMAL));
        goodbye(&mut sink, request, &self.metrics).await;
    }

    /// Writes `batch` with one flush, preceded by a probe if one is due.
    async fn write(
        &self,
        sink: &mut impl FrameSink,
        batch: &[Bytes],
        probe_due: &mut bool,
    ) -> std::io::Result<()> {
        if std::mem::take(probe_due) {
            if let Some(rtt) = sink.transport_rtt() {
                self.live.set_rtt(rtt);
                self.metrics.rtt.record(rtt.as_secs_f64());
            } else {
                let payload = self.live.probe(std::time::Instant::now());
                sink.queue_probe(payload).await?;
            }
        }
        sink.send_batch(batch).await
    }
}

fn count_sent(metrics: &LinkMetrics, batch: &[Bytes]) {
    let bytes: usize = batch.iter().map(Bytes::len).sum();
    metrics.messages_sent.increment(batch.len() as u64);
    metrics.bytes_sent.increment(bytes as u64);
}

async fn goodbye(sink: &mut impl FrameSink, request: CloseRequest, metrics: &LinkMetrics) {
    let send = async {
        if let Some(frame) = request.frame {
            let last = std::slice::from_ref(&frame);
            if sink.send_batch(last).await.is_ok() {
                count_sent(metrics, last);
            }
        }
        sink.close(request.code, &request.reason).await;
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, send).await;
}
