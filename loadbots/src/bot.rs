//! One bot: a session (WebSocket or QUIC) that walks, pings and checks
//! everything the server sends, reconnecting after churn or an unexpected
//! disconnect. How it gets in (redirects, resumes) is in
//! [`crate::handshake`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tessera_protocol::{ClientMsg, RawValue};
use tokio_util::sync::CancellationToken;

use crate::check::{Fault, Frame, LightCheck, MirrorCheck};
use crate::handshake::{Comeback, Joined, join_or_resume};
use crate::join::JoinError;
use crate::link::QuicClient;
use crate::scenario::{Scenario, Steering};
use crate::stats::{Stats, Traffic};

const INPUT_PERIOD: Duration = Duration::from_millis(100);
const PING_PERIOD: Duration = Duration::from_secs(1);
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// What every bot shares.
#[derive(Debug)]
pub struct BotContext {
    /// Where bots join, round-robin by id; never empty.
    pub urls: Vec<String>,
    pub room: String,
    /// Rooms the bots are spread over; at least 1.
    pub rooms: u64,
    pub scenario: Scenario,
    pub seed: u64,
    /// Overrides the margin of the server's Welcome.
    pub aoi_margin: Option<f32>,
    /// `Hello.version` of every bot.
    pub protocol_version: u16,
    /// Pause between a churned bot leaving and joining again.
    pub churn_pause: Duration,
    pub stats: Arc<Stats>,
    /// Set when bots connect over QUIC.
    pub quic: Option<QuicClient>,
}

impl BotContext {
    /// The room bot `id` joins.
    pub fn room_of(&self, id: u64) -> String {
        if self.rooms <= 1 {
            self.room.clone()
        } else {
            format!("{}-{}", self.room, id % self.rooms)
        }
    }

    /// The URL bot `id` joins through.
    fn entry(&self, id: u64) -> &str {
        &self.urls[(id % self.urls.len() as u64) as usize]
    }
}

/// How the swarm steers one bot. A connected bot looks at both after every
/// event (at least ten times a second, with its inputs) instead of keeping
/// a waiter on each: polling two waiters per event was 4 % of the swarm's
/// CPU, and a tenth of a second is soon enough to leave.
#[derive(Debug, Default)]
pub struct BotHandle {
    /// Leave for good (not counted as a disconnect).
    pub stop: CancellationToken,
    /// Leave and join again after the churn pause.
    pub churn: AtomicBool,
    /// Drop the connection without a close and resume at once.
    pub drop_link: AtomicBool,
}

/// How a session ended.
#[derive(Debug)]
enum Ended {
    Stopped,
    Churned,
    /// Dropped its connection on purpose, to resume.
    Dropped(Comeback),
    /// Never joined: refused, timed out or unreachable.
    JoinFailed(JoinError),
    /// Joined, then lost: counted as a disconnect.
    Lost(String),
}

/// Runs bot `id` until told to stop. `sample` bots keep a full mirror.
pub async fn run(id: u64, sample: bool, ctx: Arc<BotContext>, handle: Arc<BotHandle>) {
    let mut steering = Steering::new(ctx.scenario, ctx.seed, id);
    // Inputs keep their numbering across a resume, as the server's does.
    let mut seq = 0u32;
    let mut comeback = None;
    loop {
        let ended = session(
            id,
            sample,
            &ctx,
            &handle,
            &mut steering,
            &mut seq,
            comeback.take(),
        )
        .await;
        let pause = match ended {
            Ended::Stopped => return,
            Ended::Churned => ctx.churn_pause,
            Ended::Dropped(back) => {
                comeback = Some(back);
                continue;
            }
            Ended::JoinFailed(why) => {
                ctx.stats.record_join_failure(&why);
                tracing::debug!(bot = id, %why, "join failed");
                RECONNECT_PAUSE
            }
            Ended::Lost(why) => {
                Stats::bump(&ctx.stats.disconnects);
                tracing::debug!(bot = id, %why, "disconnected");
                RECONNECT_PAUSE
            }
        };
        tokio::select! {
            () = handle.stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

async fn session(
    id: u64,
    sample: bool,
    ctx: &BotContext,
    handle: &BotHandle,
    steering: &mut Steering,
    seq: &mut u32,
    comeback: Option<Comeback>,
) -> Ended {
    let joined = tokio::select! {
        () = handle.stop.cancelled() => return Ended::Stopped,
        joined = tokio::time::timeout(
            JOIN_TIMEOUT,
            join_or_resume(id, ctx, ctx.entry(id), comeback, seq),
        ) => joined,
    };
    let Joined {
        mut link,
        welcome,
        node,
    } = match joined {
        Ok(Ok(joined)) => joined,
        Ok(Err(why)) => return Ended::JoinFailed(why),
        Err(_) => return Ended::JoinFailed(JoinError::NoAnswer(JOIN_TIMEOUT)),
    };
    let stats = &ctx.stats;
    Stats::bump(&stats.joins);
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let steers = ctx.scenario == Scenario::Hotspot;
    let mut live = Live::new(welcome.entity_id, steers, Instant::now());
    let mut mirror = sample.then(|| {
        MirrorCheck::new(
            welcome.entity_id,
            welcome.tick,
            welcome.aoi_radius,
            ctx.aoi_margin.unwrap_or(welcome.aoi_margin as f32),
        )
    });
    // Spread inputs and pings evenly over their periods across bots.
    let phase = |period: Duration| period.mul_f64(spread(id));
    let start = tokio::time::Instant::now();
    let mut inputs = tokio::time::interval_at(start + phase(INPUT_PERIOD), INPUT_PERIOD);
    let mut pings = tokio::time::interval_at(start + phase(PING_PERIOD), PING_PERIOD);
    let mut nonce = 0u32;
    let ended = loop {
        if handle.stop.is_cancelled() {
            link.close().await;
            break Ended::Stopped;
        }
        if handle.churn.swap(false, Ordering::Relaxed) {
            link.close().await;
            break Ended::Churned;
        }
        if handle.drop_link.swap(false, Ordering::Relaxed) {
            link.abandon();
            break Ended::Dropped(Comeback {
                token: welcome.resume.clone(),
                node,
                dropped_at: Instant::now(),
            });
        }
        tokio::select! {
            biased;
            read = link.recv() => match read {
                Ok(Some(frame)) => {
                    if let Some(why) = live.on_frame(&frame, stats, mirror.as_mut()) {
                        break Ended::Lost(why);
                    }
                    if live.mirror_failed {
                        mirror = None;
                    }
                    if let Some(tick) = live.check.take_ack() {
                        let ack = ClientMsg::Ack { tick }.encode();
                        live.sent(ack.len(), stats);
                        if let Err(e) = link.send_datagram(ack).await {
                            break Ended::Lost(e);
                        }
                    }
                }
                Ok(None) => break Ended::Lost("closed by the server".into()),
                Err(e) => break Ended::Lost(e),
            },
            _ = inputs.tick() => {
                *seq += 1;
                let walk = steering.next(live.check.position());
                let Ok(intent) = RawValue::encode(&walk) else { continue };
                let frame = ClientMsg::Input { seq: *seq, intent }.encode();
                live.sent(frame.len(), stats);
                if let Err(e) = link.send(frame).await {
                    break Ended::Lost(e);
                }
            }
            _ = pings.tick() => {
                nonce = nonce.wrapping_add(1);
                live.pinged(nonce);
                let frame = ClientMsg::Ping { nonce }.encode();
                live.sent(frame.len(), stats);
                if let Err(e) = link.send(frame).await {
                    break Ended::Lost(e);
                }
            }
        }
    };
    stats.connected.fetch_sub(1, Ordering::Relaxed);
    stats.add_traffic(id as usize, live.traffic(stats));
    ended
}

/// Where in a period bot `id` acts: a low-discrepancy sequence, so any
/// number of bots spreads evenly.
fn spread(id: u64) -> f64 {
    (id as f64 * 0.618_033_988_749_895).fract()
}

/// A session's running state.
struct Live {
    check: LightCheck,
    since: Instant,
    last_delta: Option<Instant>,
    pings: VecDeque<(u32, Instant)>,
    down: u64,
    up: u64,
    delta_bytes: u64,
    entity_updates: u64,
    mirror_failed: bool,
}

impl Live {
    fn new(me: u32, track_position: bool, since: Instant) -> Self {
        Self {
            check: LightCheck::new(me, track_position),
            since,
            last_delta: None,
            pings: VecDeque::new(),
            down: 0,
            up: 0,
            delta_bytes: 0,
            entity_updates: 0,
            mirror_failed: false,
        }
    }

    /// Checks and records one frame; `Some(reason)` when the server ended
    /// the session.
    fn on_frame(
        &mut self,
        frame: &[u8],
        stats: &Stats,
        mirror: Option<&mut MirrorCheck>,
    ) -> Option<String> {
        let now = Instant::now();
        let in_window = stats.window.contains(now);
        if in_window {
            self.down += frame.len() as u64;
        }
        let mut flagged = true;
        match self.check.on_frame(frame) {
            Ok(Frame::Delta { entity_updates, .. }) => {
                flagged = false;
                if in_window {
                    self.delta_bytes += frame.len() as u64;
                    self.entity_updates += u64::from(entity_updates);
                }
                let gap = self.last_delta.map(|t| now - t);
                self.last_delta = Some(now);
                stats.record_delta(now, gap, self.check.visible());
            }
            Ok(Frame::Pong { nonce }) => {
                flagged = false;
                if let Some(i) = self.pings.iter().position(|(n, _)| *n == nonce) {
                    let (_, sent) = self.pings[i];
                    self.pings.drain(..=i);
                    stats.record_rtt(now, now - sent);
                }
            }
            Ok(Frame::Goodbye(why)) => return Some(why),
            Ok(Frame::Other) => flagged = false,
            Err(Fault::Decode(_)) => Stats::bump(&stats.decode_errors),
            Err(Fault::Violation(_)) => Stats::bump(&stats.protocol_violations),
        }
        if let Some(m) = mirror
            && let Err(fault) = m.on_frame(frame)
        {
            // One fault poisons a mirror: stop checking it. A frame the
            // light check already counted is not counted twice.
            tracing::warn!(%fault, "sample bot found a fault");
            if !flagged {
                Stats::bump(&stats.protocol_violations);
            }
            self.mirror_failed = true;
        }
        None
    }

    fn pinged(&mut self, nonce: u32) {
        if self.pings.len() >= 8 {
            self.pings.pop_front();
        }
        self.pings.push_back((nonce, Instant::now()));
    }

    fn sent(&mut self, bytes: usize, stats: &Stats) {
        if stats.window.contains(Instant::now()) {
            self.up += bytes as u64;
        }
    }

    fn traffic(&self, stats: &Stats) -> Traffic {
        Traffic {
            down: self.down,
            up: self.up,
            delta_bytes: self.delta_bytes,
            entity_updates: self.entity_updates,
            connected: stats.window.overlap(self.since, Instant::now()),
        }
    }
}
