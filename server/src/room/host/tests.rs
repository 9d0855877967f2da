//! A hosted room stepped by hand: no sockets, no sleeps, the time moved by
//! the test. Sessions are their links alone: a bounded queue the test
//! reads (or leaves full), and a control handle whose close request the
//! test inspects.

use std::sync::Mutex;

use bytes::Bytes;
use tessera_protocol::{Delta, RawValue, ServerMsg, Welcome};
use tessera_sim::games::arena::{Arena, Position};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::frames::DatagramSink;
use crate::link::report::RoomDetail;
use crate::link::{DatagramLink, JoinRequest, SessionControl, SessionLive};

struct Harness {
    hosted: HostedRoom,
    commands: mpsc::Sender<RoomCommand>,
    now: Instant,
    period: Duration,
    metrics: TickMetrics,
}

/// One session as its room sees it, and the ends the test holds.
struct Client {
    id: ClientId,
    frames: mpsc::Receiver<Bytes>,
    control: Arc<SessionControl>,
    welcome: oneshot::Receiver<Result<Welcome, Refusal>>,
}

impl Harness {
    fn new(config: ServerConfig) -> Self {
        let now = Instant::now();
        let room = Room::new(&Arena, config.room_config(7)).expect("room");
        let (commands, inbox) = mpsc::channel(config.room_queue);
        let handle = Arc::new(RoomHandle::new(
            1,
            "test",
            [127, 0, 0, 1].into(),
            commands.clone(),
            Vec::new(),
        ));
        Self {
            hosted: HostedRoom::new(handle, room, inbox, &config, now),
            commands,
            now,
            period: config.tick_period(),
            metrics: TickMetrics::new(),
        }
    }

    fn send(&self, command: RoomCommand) {
        self.commands.try_send(command).expect("room queue");
    }

    /// Queues a join of session `id` with an outbound queue of `queue`
    /// frames (the join lands with the next step).
    fn join(&self, id: ClientId, queue: usize, datagrams: Option<Arc<dyn DatagramSink>>) -> Client {
        let request = JoinRequest {
            protocol_version: tessera_protocol::PROTOCOL_VERSION,
            player: tessera_sim::PlayerIdentity::anonymous(id),
            resuming: None,
            resume_key: [id as u8; 16],
            resume_token: None,
            saved: None,
        };
        self.join_as(id, queue, datagrams, request)
    }

    /// [`Harness::join`] with `request`: who joins, and whom it resumes.
    fn join_as(
        &self,
        id: ClientId,
        queue: usize,
        datagrams: Option<Arc<dyn DatagramSink>>,
        request: JoinRequest,
    ) -> Client {
        let (outbound, frames) = mpsc::channel(queue);
        let control = Arc::new(SessionControl::new(&CancellationToken::new()));
        let (reply, welcome) = oneshot::channel();
        let link = SessionLink {
            id,
            outbound,
            control: Arc::clone(&control),
            live: Arc::new(SessionLive::new(
                "127.0.0.1:9".parse().expect("addr"),
                "test",
            )),
            datagrams: datagrams.map(DatagramLink::new),
        };
        self.send(RoomCommand::Join {
            link,
            request: Box::new(request),
            options: RawValue::nil(),
            reply,
        });
        Client {
            id,
            frames,
            control,
            welcome,
        }
    }

    /// One tick, one period after the last.
    fn step(&mut self) -> Stepped {
        self.now += self.period;
        self.hosted.step(self.now, &self.metrics)
    }

    /// Puts every player at the same spot, so all see each other.
    fn gather(&mut self) {
        let entities: Vec<_> = self
            .hosted
            .room
            .clients()
            .iter()
            .map(|v| v.entity)
            .collect();
        let world = self.hosted.room.world_mut();
        for entity in entities {
            *world.get_mut::<Position>(entity).expect("a player") = Position { x: 500.0, y: 500.0 };
        }
    }

    fn lag_ms(&mut self, client: ClientId) -> u64 {
        let (reply, mut answer) = oneshot::channel();
        self.send(RoomCommand::Inspect { reply });
        self.step();
        let detail: RoomDetail = answer.try_recv().expect("answered");
        let player = detail.players.iter().find(|p| p.session == client);
        player.expect("in the room").lag_ms
    }
}

impl Client {
    fn entity(&mut self) -> u32 {
        match self.welcome.try_recv() {
            Ok(Ok(welcome)) => welcome.entity_id,
            other => panic!("not welcomed: {other:?}"),
        }
    }

    /// The frames queued so far, decoded.
    fn drain(&mut self) -> Vec<ServerMsg> {
        std::iter::from_fn(|| self.frames.try_recv().ok())
            .map(|frame| ServerMsg::decode(&frame).expect("a server frame"))
            .collect()
    }
}

fn config(max_lag_ms: u64) -> ServerConfig {
    ServerConfig {
        room_queue: 256,
        max_lag_ms,
        ..ServerConfig::default()
    }
}

fn deltas(msgs: &[ServerMsg]) -> Vec<&Delta> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Delta(d) => Some(d),
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_queue_marks_the_delta_undelivered_and_the_next_carries_full_state() {
    let mut h = Harness::new(config(5_000));
    // The welcome alone fills a one-frame queue: the first delta is lost.
    let mut client = h.join(1, 1, None);
    assert_eq!(h.step(), Stepped::Ticked);
    let me = client.entity();
    let first = client.drain();
    assert!(
        matches!(first.as_slice(), [ServerMsg::Welcome(_)]),
        "{first:?}"
    );
    h.step();
    let next = client.drain();
    let [delta] = deltas(&next)[..] else {
        panic!("one delta: {next:?}");
    };
    assert!(
        delta.entered.iter().any(|e| e.id == me),
        "the lost delta's state comes again: {delta:?}"
    );
}

#[test]
fn a_client_lagging_past_max_lag_is_kicked_too_slow() {
    let mut h = Harness::new(config(500));
    let mut client = h.join(1, 1, None);
    h.step();
    let lagging_since = h.now;
    client.entity();
    // Nobody reads the queue: every delta from here on is refused.
    while h.now < lagging_since + Duration::from_millis(300) {
        h.step();
        assert!(!client.control.is_closing(), "kicked early");
    }
    // The question takes a step of its own, up to 400 ms of lag.
    assert_eq!(h.lag_ms(1), 400, "the admin API sees the lag");
    assert!(!client.control.is_closing(), "kicked early");
    h.step();
    assert_eq!(h.now, lagging_since + Duration::from_millis(500));
    assert!(client.control.is_closing(), "kicked at max_lag");
    assert_eq!(client.control.label(), "too_slow");
    assert!(h.hosted.sessions.is_empty(), "the room let go of it");
    assert_eq!(h.hosted.room.player_count(), 0);
}

#[test]
fn dropped_chat_does_not_start_the_lag_clock() {
    let mut h = Harness::new(config(300));
    // Room for the delta and one line each tick; three lines are sent.
    let mut talker = h.join(1, 2, None);
    h.step();
    talker.entity();
    talker.drain();
    let mut chat_seen = 0;
    for _ in 0..10 {
        for line in ["one", "two", "three"] {
            h.send(RoomCommand::Chat {
                client: 1,
                text: line.into(),
            });
        }
        h.step();
        chat_seen += talker
            .drain()
            .iter()
            .filter(|m| matches!(m, ServerMsg::Chat { .. }))
            .count();
        assert!(!talker.control.is_closing(), "kicked for dropped chat");
    }
    assert!(chat_seen >= 10, "lines got through: {chat_seen}");
    assert!(chat_seen < 30, "lines were dropped: {chat_seen}");
    assert_eq!(h.lag_ms(1), 0);
}

/// A datagram path whose limit falls to `shrunk` after its first datagram.
#[derive(Debug)]
struct ShrinkingPath {
    shrunk: usize,
    limit: Mutex<Option<usize>>,
    sent: Mutex<Vec<usize>>,
    refused: Mutex<usize>,
}

impl DatagramSink for ShrinkingPath {
    fn max_size(&self) -> Option<usize> {
        Some(1_200)
    }

    fn try_send(&self, datagram: Bytes) -> Result<(), DatagramRefused> {
        let mut limit = self.limit.lock().expect("lock");
        if let Some(max) = *limit
            && datagram.len() > max
        {
            *self.refused.lock().expect("lock") += 1;
            return Err(DatagramRefused::TooLarge { max });
        }
        *limit = Some(self.shrunk);
        self.sent.lock().expect("lock").push(datagram.len());
        Ok(())
    }
}

#[test]
fn a_datagram_too_large_shrinks_the_clients_part_size() {
    let mut h = Harness::new(config(5_000));
    let path = Arc::new(ShrinkingPath {
        shrunk: 300,
        limit: Mutex::new(None),
        sent: Mutex::new(Vec::new()),
        refused: Mutex::new(0),
    });
    let mut quic = h.join(1, 64, Some(Arc::clone(&path) as Arc<dyn DatagramSink>));
    let mut others: Vec<Client> = (2..40).map(|id| h.join(id, 64, None)).collect();
    h.step();
    h.gather();
    quic.entity();
    // Everyone but the QUIC client walks: each tick has news for it.
    let walk = RawValue::encode(&tessera_protocol::arena::Walk::from_direction(1.0, 0.0))
        .expect("an intent");
    for other in &others {
        h.send(RoomCommand::Input {
            client: other.id,
            seq: 1,
            intent: walk.clone(),
        });
    }
    let mut refused_by_step = Vec::new();
    for _ in 0..5 {
        h.step();
        refused_by_step.push(*path.refused.lock().expect("lock"));
        // The client holds every tick: parts are built against the last.
        let link = h.hosted.sessions[&quic.id].link.datagrams.as_ref();
        link.expect("a datagram link")
            .acknowledge(h.hosted.room.tick(), h.hosted.room.tick());
        quic.drain();
        for other in &mut others {
            other.drain();
        }
    }
    let sent = path.sent.lock().expect("lock").clone();
    assert!(sent.len() > 3, "parts keep coming: {sent:?}");
    // Parts are refused in one step only: from the next, they are cut to
    // the smaller size.
    let first = refused_by_step.iter().position(|&n| n > 0);
    let first = first.expect("a part was too large");
    assert!(
        refused_by_step[first..]
            .iter()
            .all(|&n| n == refused_by_step[first]),
        "refusals went on: {refused_by_step:?}"
    );
}

#[test]
fn a_join_whose_session_has_gone_is_released() {
    let mut h = Harness::new(config(5_000));
    let gone = h.join(1, 8, None);
    drop(gone.welcome);
    let mut stays = h.join(2, 8, None);
    h.step();
    stays.entity();
    assert_eq!(h.hosted.room.player_count(), 1, "only the waiting session");
    assert!(!h.hosted.sessions.contains_key(&gone.id));
    assert!(h.hosted.sessions.contains_key(&stays.id));
}

#[test]
fn an_admin_question_is_answered_between_ticks() {
    let mut h = Harness::new(config(5_000));
    let mut client = h.join(1, 8, None);
    h.step();
    let me = client.entity();
    let (reply, mut answer) = oneshot::channel();
    h.send(RoomCommand::Inspect { reply });
    assert!(answer.try_recv().is_err(), "the room answers when it runs");
    h.step();
    let detail = answer.try_recv().expect("answered at the next step");
    assert_eq!(detail.summary.players, 1);
    assert_eq!(detail.players[0].session, 1);
    assert_eq!(detail.players[0].entity, Some(me));

    let (reply, mut answer) = oneshot::channel();
    h.send(RoomCommand::Kick {
        client: 1,
        reason: "cheating".into(),
        reply,
    });
    h.step();
    assert_eq!(answer.try_recv(), Ok(true));
    assert_eq!(client.control.label(), "admin");

    let (reply, mut answer) = oneshot::channel();
    h.send(RoomCommand::Close {
        reason: "maintenance".into(),
        kick: KickReason::RoomClosed,
        reply,
    });
    assert_eq!(h.step(), Stepped::CloseRequested);
    assert_eq!(answer.try_recv(), Ok(0), "nobody was left to tell");
}

/// Session `id` resuming the player held under `key`.
fn resuming(id: ClientId, key: u8) -> JoinRequest {
    JoinRequest {
        protocol_version: tessera_protocol::PROTOCOL_VERSION,
        player: tessera_sim::PlayerIdentity::anonymous(id),
        resuming: Some([key; 16]),
        resume_key: [id as u8; 16],
        resume_token: Some(format!("token-{id}")),
        saved: None,
    }
}

/// Ann (session 1) and bob (session 2) joined and see each other; ann's
/// client, and bob's entity.
fn ann_sees_bob(h: &mut Harness) -> (Client, u32) {
    let mut ann = h.join(1, 64, None);
    let mut bob = h.join(2, 64, None);
    h.step();
    h.gather();
    let bob_entity = bob.entity();
    ann.entity();
    h.step();
    (ann, bob_entity)
}

fn assert_resume_failed(client: &mut Client) {
    let refused = client
        .welcome
        .try_recv()
        .expect("answered")
        .expect_err("refused");
    assert_eq!(refused.code, ErrorCode::ResumeFailed);
}

fn left_ids(msgs: &[ServerMsg]) -> Vec<u32> {
    deltas(msgs).iter().flat_map(|d| d.left.clone()).collect()
}

#[test]
fn a_dropped_player_is_held_unseen_to_leave_and_resumed_by_a_new_session() {
    let mut h = Harness::new(config(5_000));
    let (mut ann, bob_entity) = ann_sees_bob(&mut h);
    ann.drain();
    h.send(RoomCommand::Leave {
        client: 2,
        hold: true,
    });
    for _ in 0..20 {
        h.step();
    }
    assert!(left_ids(&ann.drain()).is_empty(), "ann never saw bob leave");
    assert!(!h.hosted.is_empty(), "a held player keeps the room open");

    let mut back = h.join_as(3, 64, None, resuming(3, 2));
    h.step();
    let welcome = match back.welcome.try_recv() {
        Ok(Ok(welcome)) => welcome,
        other => panic!("not welcomed: {other:?}"),
    };
    assert_eq!(welcome.entity_id, bob_entity, "the same entity");
    assert_eq!(welcome.resume.as_deref(), Some("token-3"), "a new token");
    h.step();
    let state = back.drain();
    let entered: Vec<u32> = deltas(&state)
        .iter()
        .flat_map(|d| d.entered.iter().map(|e| e.id))
        .collect();
    assert!(entered.contains(&bob_entity), "a full state: {entered:?}");
    // The old key took the player back once; it does not again.
    let mut again = h.join_as(4, 64, None, resuming(4, 2));
    h.step();
    assert_resume_failed(&mut again);
}

#[test]
fn the_grace_window_ends_and_the_held_player_leaves() {
    let mut h = Harness::new(ServerConfig {
        reconnect_grace_ms: 1_000,
        ..config(5_000)
    });
    let (mut ann, bob_entity) = ann_sees_bob(&mut h);
    h.send(RoomCommand::Leave {
        client: 2,
        hold: true,
    });
    h.step();
    let dropped_at = h.now;
    ann.drain();
    while h.now < dropped_at + Duration::from_millis(900) {
        h.step();
    }
    assert!(left_ids(&ann.drain()).is_empty(), "still held");
    while h.now <= dropped_at + Duration::from_millis(1_100) {
        h.step();
    }
    assert_eq!(left_ids(&ann.drain()), vec![bob_entity], "released");
    let mut late = h.join_as(3, 64, None, resuming(3, 2));
    h.step();
    assert_resume_failed(&mut late);
}

#[test]
fn a_newer_connection_replaces_a_stale_one_at_once_and_one_entity_remains() {
    let mut h = Harness::new(config(5_000));
    let mut stale = h.join(1, 64, None);
    h.step();
    let entity = stale.entity();
    let mut newer = h.join_as(2, 64, None, resuming(2, 1));
    h.step();
    assert_eq!(stale.control.label(), "replaced");
    assert_eq!(newer.entity(), entity);
    assert_eq!(h.hosted.room.player_count(), 1);
    assert_eq!(h.hosted.room.entity_count(), 1, "never two entities");

    // The same player id from a token, while connected, replaces too.
    let named = |id: ClientId| JoinRequest {
        protocol_version: tessera_protocol::PROTOCOL_VERSION,
        player: tessera_sim::PlayerIdentity {
            player: "ann".into(),
            display_name: None,
        },
        resuming: None,
        resume_key: [id as u8; 16],
        resume_token: None,
        saved: None,
    };
    let mut first = h.join_as(3, 64, None, named(3));
    h.step();
    let ann = first.entity();
    let mut second = h.join_as(4, 64, None, named(4));
    h.step();
    assert_eq!(first.control.label(), "replaced");
    assert_eq!(second.entity(), ann);
    assert_eq!(h.hosted.room.entity_count(), 2);
}

#[test]
fn a_player_who_closed_or_was_sent_away_is_not_held() {
    let mut h = Harness::new(config(5_000));
    let mut ann = h.join(1, 64, None);
    h.step();
    ann.entity();
    h.send(RoomCommand::Leave {
        client: 1,
        hold: false,
    });
    h.step();
    assert_eq!(h.hosted.room.entity_count(), 0);
    assert!(h.hosted.is_empty());
    let no_grace = Harness::new(ServerConfig {
        reconnect_grace_ms: 0,
        ..config(5_000)
    });
    let mut h = no_grace;
    let mut bob = h.join(1, 64, None);
    h.step();
    bob.entity();
    h.send(RoomCommand::Leave {
        client: 1,
        hold: true,
    });
    h.step();
    assert_eq!(h.hosted.room.entity_count(), 0, "grace 0: nobody is held");
}

/// A checkpoint the host takes brings the room back as it was (players,
/// positions, intents, the random generator) with its players held under
/// their resume keys; stepped on, the restored room and the one that never
/// stopped stay the same.
#[tokio::test]
async fn a_checkpoint_restores_the_room_and_it_goes_on_as_if_it_never_stopped() {
    use crate::persist::store::Store;
    use crate::persist::writer::{BatchWriter, RetryPolicy};
    let store = Arc::new(Store::connect("sqlite::memory:").await.expect("store"));
    let writer = BatchWriter::new(Arc::clone(&store), RetryPolicy::default());
    let persistence = crate::persist::Persistence::start_local(store, writer, 1_024);
    let config = config(5_000);
    let mut h = Harness::new(config.clone());
    h.hosted.persist_with(RoomPersistence::new(
        Arc::clone(&persistence),
        "arena",
        3,
        0,
        1,
    ));
    let (ann, bob) = (h.join(1, 64, None), h.join(2, 64, None));
    h.step();
    let walk = RawValue::encode(&tessera_protocol::arena::Walk { dx: 90, dy: -40 }).expect("walk");
    h.send(RoomCommand::Input {
        client: ann.id,
        seq: 1,
        intent: walk,
    });
    for _ in 0..5 {
        h.step();
    }
    h.hosted.checkpoint();
    let checkpoints = persistence
        .checkpoints("arena", "test")
        .await
        .expect("checkpoints");
    let checkpoint = checkpoints.first().expect("the checkpoint");
    assert_eq!(
        (checkpoint.epoch, checkpoint.tick),
        (3, h.hosted.room.tick())
    );
    let (mut restored, players) =
        restore(&Arena, config.room_config(7), checkpoint).expect("restore");
    let mut keys = players.keys();
    keys.sort_unstable();
    assert_eq!(keys, [[ann.id as u8; 16], [bob.id as u8; 16]]);
    assert_eq!(restored.held_players().len(), 2);
    assert_eq!(restored.snapshot().ok(), h.hosted.room.snapshot().ok());
    let mut out = Vec::new();
    for _ in 0..10 {
        h.step();
        restored.step(&mut out);
    }
    assert_eq!(restored.snapshot().ok(), h.hosted.room.snapshot().ok());
    persistence.stop(Duration::from_secs(1)).await;
}
