//! One client connection, whatever its transport.
//!
//! - [`rules`]: what the session decides about each inbound frame, with no
//!   I/O and the time passed in ([`SessionRules`]).
//! - this file: the thin async loop that reads frames, asks the rules, and
//!   carries out their decisions (join the room, queue a command, answer a
//!   ping, end the session).
//! - `writer`: drains the session's bounded outbound queue in batches.
//!
//! A misbehaving client gets an `Error` frame with a code and its connection
//! is closed; nothing it sends can reach the room unchecked, and nothing it
//! fails to read can hold up the room (the room only ever `try_send`s).

pub mod rules;
mod writer;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_protocol::{ErrorCode, Hello, ServerMsg};
use tessera_sim::PlayerIdentity;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::admin_token::hex;
use crate::cluster::Route;
use crate::frames::{FrameSink, FrameSource, Inbound};
use crate::identity::resume::{ResumeRefusal, ResumeTicket, new_key};
use crate::identity::unix_now;
use crate::link::{
    CloseRequest, DatagramLink, JoinRequest, Refusal, RoomCommand, SessionControl, SessionLink,
    SessionLive,
};
use crate::metrics::{self, LinkMetrics};
use crate::room::{Opening, RoomHandle};
use crate::state::ServerState;
use rules::{Decision, End, RuleLimits, SessionRules};
use writer::{GOODBYE_TIMEOUT, LINGER, Writer, goodbye, linger};

/// Runs a session to its end. Never fails: every ending is logged.
pub async fn run(
    source: impl FrameSource,
    sink: impl FrameSink,
    peer: SocketAddr,
    transport: &'static str,
    state: Arc<ServerState>,
) {
    let id = state.next_session_id();
    let span = tracing::info_span!("session", id, %peer, transport, room = tracing::field::Empty, player = tracing::field::Empty);
    let link_metrics = Arc::new(LinkMetrics::open(transport));
    let Ok(_permit) = Arc::clone(&state.connections).try_acquire_owned() else {
        let mut sink = sink;
        let refusal = CloseRequest::error(
            ErrorCode::ServerFull,
            "the server is at its connection limit",
        );
        metrics::disconnected(refusal.label);
        goodbye(&mut sink, refusal, &link_metrics).await;
        let mut source = source;
        linger(&mut source).await;
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
    let (hand_over, source_for_writer) = oneshot::channel();
    let writer = tokio::spawn(writer.run(sink, queue, source_for_writer));
    let mut session = Session {
        id,
        source,
        rules: SessionRules::new(
            RuleLimits::of(&state.config),
            Arc::clone(state.rooms.schema()),
            Arc::clone(&live),
            Instant::now(),
        ),
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
    };
    let end = session.run(&span).await;
    let joined = session.rules.is_joined();
    if let Some(room) = session.room.take() {
        // A connection that dropped (rather than closed, or was sent away)
        // leaves its player held, for the client to resume.
        // (A write that failed is the same loss, seen by the writer.)
        let write_failed = control.is_closing() && control.label() == metrics::end::WRITE_FAILED;
        let hold = write_failed || matches!(end, End::Transport(_) | End::IdleTimeout);
        let _ = room.send(RoomCommand::Leave { client: id, hold });
        state.rooms.release(&room);
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
    control.close(end.close_request(joined));
    metrics::disconnected(control.label());
    // The writer lingers on the reading half after its goodbye.
    let _ = hand_over.send(session.source);
    let mut writer = writer;
    if tokio::time::timeout(GOODBYE_TIMEOUT * 2 + LINGER, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// Longest a join waits for the store (saved state, checkpoint).
const STORE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs a store read for a join; a store that fails or is slow refuses
/// the join with `storage_unavailable`, never lets it go on without what
/// the player saved (its next save would overwrite it).
async fn within_store<T>(
    read: impl Future<Output = Result<T, crate::persist::store::StoreError>>,
) -> Result<T, Refusal> {
    let unavailable = |why: String| {
        tracing::warn!(error = why, "join refused: the store cannot be read");
        Refusal::new(
            ErrorCode::StorageUnavailable,
            "the server cannot read saved state now; try again in a moment",
        )
    };
    match tokio::time::timeout(STORE_READ_TIMEOUT, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unavailable(e.to_string())),
        Err(_) => Err(unavailable(format!("no answer in {STORE_READ_TIMEOUT:?}"))),
    }
}

/// Longest a resume token is accepted after its session joined.
const RESUME_TOKEN_LIFETIME_S: u64 = 24 * 3_600;

/// A player id for a session of an `open` node: random, so that it names
/// no one and cannot be guessed.
fn anonymous_player() -> String {
    format!("anon-{}", hex(&new_key()[..8]))
}

/// Why the reader was woken: the session is being closed, or the server
/// shuts down.
fn woken_end(control: &SessionControl) -> End {
    if control.is_closing() {
        End::ClosedByServer
    } else {
        End::Shutdown
    }
}

/// Waits until `sent` (a send into a full queue) completes, unless the
/// reader is woken first; the session's ending if it must end.
async fn wait_for_room<T, E>(
    woken: Pin<&mut impl Future<Output = ()>>,
    control: &SessionControl,
    sent: impl Future<Output = Result<T, E>>,
) -> Result<(), End> {
    tokio::select! {
        biased;
        () = woken => Err(woken_end(control)),
        sent = sent => sent.map(drop).map_err(|_| End::ClosedByServer),
    }
}

struct Session<S> {
    id: u64,
    source: S,
    rules: SessionRules,
    state: Arc<ServerState>,
    metrics: Arc<LinkMetrics>,
    link: SessionLink,
    /// The room this session reserved a place in, once it has.
    room: Option<Arc<RoomHandle>>,
}

impl<S: FrameSource> Session<S> {
    /// Reads frames and carries out what the rules decide until the
    /// session ends. Only the join runs inside the session's span: entering
    /// a span on every poll cost 2 % of a busy server's CPU.
    async fn run(&mut self, span: &tracing::Span) -> End {
        let control = Arc::clone(&self.link.control);
        // Built once, not per frame: registering a waiter or a timer for
        // every message cost more than handling the message.
        let woken = control.reader_woken();
        let timer = tokio::time::sleep_until(self.rules.deadline().into());
        tokio::pin!(woken, timer);
        loop {
            // The next frame is polled first: a frame that is already there
            // then costs no poll of the other two. They are polled (and
            // their wake-ups registered) whenever the socket has nothing,
            // which between a client's messages is always.
            let decision = tokio::select! {
                biased;
                inbound = self.source.next() => {
                    if let Inbound::Frame(frame) | Inbound::Datagram(frame) = &inbound {
                        self.metrics.messages_received.increment(1);
                        self.metrics.bytes_received.increment(frame.len() as u64);
                    }
                    self.rules.on_inbound(inbound, Instant::now())
                }
                () = &mut woken => return woken_end(&control),
                () = &mut timer => {
                    if let Some(end) = self.rules.on_deadline(Instant::now()) {
                        return end;
                    }
                    // The timer is pushed back lazily, only when it fires.
                    timer.as_mut().reset(self.rules.deadline().into());
                    continue;
                }
            };
            match decision {
                Decision::Join(hello) => {
                    if let Err(end) = self.join(hello).instrument(span.clone()).await {
                        return end;
                    }
                    timer.as_mut().reset(self.rules.deadline().into());
                }
                Decision::Pong(nonce) => {
                    // Every ping is answered (PROTOCOL.md §4.4): with the
                    // outbound queue full, reading waits for room instead
                    // of dropping the pong. A client that reads nothing at
                    // all is dropped for that by its room (`too_slow`),
                    // which wakes this wait.
                    let Some(pong) = self.pong(nonce) else {
                        continue;
                    };
                    if let Err(TrySendError::Full(pong)) = self.link.outbound.try_send(pong) {
                        self.metrics.pong_waits.increment(1);
                        let sent = self.link.outbound.send(pong);
                        if let Err(end) = wait_for_room(woken.as_mut(), &control, sent).await {
                            return end;
                        }
                    }
                }
                Decision::Action(action) => {
                    // An action must not be lost (PROTOCOL.md §4.6): with the
                    // room's queue full, reading waits for room.
                    let Some(room) = self.room.clone() else {
                        continue;
                    };
                    let command = RoomCommand::Action {
                        client: self.id,
                        action,
                    };
                    if let Err(TrySendError::Full(command)) = room.send(command) {
                        self.metrics.action_waits.increment(1);
                        let sent = room.send_waiting(command);
                        if let Err(end) = wait_for_room(woken.as_mut(), &control, sent).await {
                            return end;
                        }
                    }
                }
                other => {
                    if let Err(end) = self.carry_out(other) {
                        return end;
                    }
                }
            }
        }
    }

    /// The answer to a `Ping`; `None` before the join (the rules let pings
    /// through only after the `Hello`, when the room is reserved).
    fn pong(&self, nonce: u32) -> Option<Bytes> {
        let room = self.room.as_ref()?;
        let pong = ServerMsg::Pong {
            nonce,
            tick: room.tick(),
        };
        Some(Bytes::from(pong.encode()))
    }

    /// Who the `Hello` says joins: the player its resume token takes back,
    /// or the one its token (or, on an open node, nobody) vouches for; and
    /// the key and token to resume this session's player later.
    fn join_request(&self, hello: &Hello) -> Result<(JoinRequest, bool), End> {
        let now = unix_now();
        let config = &self.state.config;
        let resuming = match &hello.resume {
            Some(token) => {
                let failed =
                    |e: ResumeRefusal| End::Refused(ErrorCode::ResumeFailed, e.to_string());
                let ticket = self.state.resume.open(token, now).map_err(failed)?;
                if ticket.room != hello.room {
                    return Err(failed(ResumeRefusal::WrongRoom {
                        token_room: ticket.room,
                        room: hello.room.clone(),
                    }));
                }
                Some(ticket.key)
            }
            None => None,
        };
        // An anonymous player has nothing saved: nobody can be it again.
        let anonymous = std::cell::Cell::new(resuming.is_some());
        let player = if resuming.is_some() {
            // The held player is who it was; this names the session only.
            PlayerIdentity::anonymous(self.id)
        } else {
            let named_by_nobody = || {
                anonymous.set(true);
                anonymous_player()
            };
            let identity = self
                .state
                .identity
                .verify(hello.token.as_deref(), &hello.room, now, named_by_nobody)
                .map_err(|e| End::Refused(e.code(), e.to_string()))?;
            PlayerIdentity {
                player: identity.player,
                display_name: identity.name,
            }
        };
        let resume_key = new_key();
        // The room holds the player only for the grace window after its
        // connection drops, however long the session lasted; the token's
        // own expiry only bounds how long a stolen one is worth trying.
        let resume_token = (config.reconnect_grace_ms > 0).then(|| {
            self.state.resume.sign(&ResumeTicket {
                room: hello.room.clone(),
                key: resume_key,
                expires: now + RESUME_TOKEN_LIFETIME_S,
            })
        });
        Ok(JoinRequest {
            saved: None,
            protocol_version: hello.version,
            player,
            resuming,
            resume_key,
            resume_token,
        })
        .map(|request| (request, !anonymous.get()))
    }

    /// Reserves a place in the room, sends it the join and waits for its
    /// answer (within the rules' join deadline, or until shutdown).
    async fn join(&mut self, hello: Hello) -> Result<(), End> {
        let refused = |r: Refusal| End::Refused(r.code, r.message);
        let (mut request, may_have_saved) = self.join_request(&hello)?;
        tracing::Span::current().record("player", request.player.player.as_str());
        if let Some(cluster) = &self.state.cluster {
            let route = cluster
                .route(
                    &hello.room,
                    hello.seat.as_deref(),
                    self.link.live.transport,
                    &self.state.rooms,
                )
                .await
                .map_err(refused)?;
            if let Route::Elsewhere { url, seat } = route {
                tracing::info!(url, "redirected to the room's node");
                return Err(End::Redirected { url, seat });
            }
        } else if hello.seat.is_some() {
            return Err(End::Refused(
                ErrorCode::SeatInvalid,
                "this node is not part of a cluster and issues no seats; join again without the seat".into(),
            ));
        }
        let room = self.reserve(&hello.room).await.map_err(refused)?;
        if may_have_saved {
            match self.saved_state(&request.player.player).await {
                Ok(saved) => request.saved = saved,
                Err(refusal) => {
                    self.state.rooms.release(&room);
                    return Err(refused(refusal));
                }
            }
        }
        tracing::Span::current().record("room", room.name.as_str());
        let (reply, answer) = oneshot::channel();
        let command = RoomCommand::Join {
            link: self.link.clone(),
            request: Box::new(request),
            options: hello.options,
            reply,
        };
        if room.send(command).is_err() {
            self.state.rooms.release(&room);
            return Err(End::Refused(
                ErrorCode::RoomBusy,
                "the room is too busy; try again".into(),
            ));
        }
        // From here on the room may hold us: leave it whatever happens.
        self.room = Some(room);
        self.rules.join_sent(Instant::now());
        let deadline = self.rules.deadline();
        let answer = tokio::select! {
            () = self.state.shutdown.cancelled() => return Err(End::Shutdown),
            answer = tokio::time::timeout_at(deadline.into(), answer) => answer,
        };
        match answer {
            Ok(Ok(Ok(welcome))) => {
                self.rules.joined(Instant::now());
                tracing::info!(entity = welcome.entity_id, "joined");
                Ok(())
            }
            Ok(Ok(Err(refusal))) => Err(refused(refusal)),
            // The room went away without answering, or did not answer in
            // time.
            Ok(Err(_)) | Err(_) => Err(self.rules.join_unanswered()),
        }
    }

    /// Counts this session in to room `name`: the open one, or one opened
    /// now from its checkpoint. Counted in, the room cannot close under
    /// the join.
    async fn reserve(&self, name: &str) -> Result<Arc<RoomHandle>, Refusal> {
        let peer = self.link.live.peer.ip();
        if let Some(room) = self.state.rooms.join_if_open(name, peer)? {
            return Ok(room);
        }
        let opening = self.opening(name).await?;
        self.state.rooms.reserve(name, peer, opening)
    }

    /// How room `name` opens (it is not open here): from its checkpoint,
    /// under this node's lease epoch.
    async fn opening(&self, name: &str) -> Result<Opening, Refusal> {
        let Some(persistence) = self.state.rooms.persistence() else {
            return Ok(Opening::default());
        };
        let epoch = self
            .state
            .cluster
            .as_ref()
            .and_then(|c| c.epoch_of(name))
            .unwrap_or(0);
        let game = self.state.rooms.game_name();
        let checkpoints = within_store(persistence.checkpoints(game, name)).await?;
        Ok(Opening { checkpoints, epoch })
    }

    /// What `player` saved last time, if persistence is on.
    async fn saved_state(
        &self,
        player: &str,
    ) -> Result<Option<crate::persist::record::PlayerState>, Refusal> {
        let Some(persistence) = self.state.rooms.persistence() else {
            return Ok(None);
        };
        let game = self.state.rooms.game_name();
        within_store(persistence.player(game, player)).await
    }

    /// Carries out a decision that needs no waiting.
    fn carry_out(&mut self, decision: Decision) -> Result<(), End> {
        match decision {
            // The rules answer a second Hello with an End.
            Decision::Nothing | Decision::Join(_) => {}
            Decision::RoundTrip(rtt) => self.metrics.rtt.record(rtt.as_secs_f64()),
            Decision::End(end) => return Err(end),
            // The rules let these through only after the Hello, and the
            // room is reserved by then.
            for_room => {
                if let Some(room) = &self.room {
                    self.send_to_room(room, for_room);
                }
            }
        }
        Ok(())
    }

    fn send_to_room(&self, room: &RoomHandle, decision: Decision) {
        match decision {
            Decision::Input { seq, intent } => {
                // A full room queue drops the input: the client's next one
                // supersedes it, and the ack tells the client what landed.
                let input = RoomCommand::Input {
                    client: self.id,
                    seq,
                    intent,
                };
                if room.send(input).is_err() {
                    self.state.count_dropped_input();
                    metrics::rejected(ErrorCode::RoomBusy.as_str());
                }
            }
            Decision::Chat(text) => {
                let _ = room.send(RoomCommand::Chat {
                    client: self.id,
                    text,
                });
            }
            // Read by the tick thread before its next tick; reliable
            // transports have no use for it.
            Decision::Ack(tick) => {
                if let Some(datagrams) = &self.link.datagrams {
                    datagrams.acknowledge(tick, room.tick());
                }
            }
            // Carried out by the read loop, which may wait for room.
            Decision::Pong(_)
            | Decision::Action(_)
            | Decision::Nothing
            | Decision::RoundTrip(_)
            | Decision::Join(_)
            | Decision::End(_) => {}
        }
    }
}
