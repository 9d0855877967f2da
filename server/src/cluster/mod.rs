//! Cluster mode: rooms shared out over several nodes through Redis.
//!
//! - `keys`: where everything lives in Redis (prefix, hash tags).
//! - `scripts`: the atomic lease and seat changes (Lua).
//! - `leases`: the leases this node holds, sans-IO with `now` passed in.
//! - `registry`: what a node publishes about itself; placement.
//! - `conn`: the Redis connection, every call with a deadline.
//! - this file: [`Cluster`], which routes joins (admit here, or redirect
//!   with a seat) and runs the heartbeat and the lease refresher.
//!
//! Nothing here runs in a tick: the session awaits the routing before it
//! talks to a room, and the refresher closes a room it lost through the
//! room's command queue. Without `redis_url` a node has no [`Cluster`] and
//! admits every join itself.

pub mod conn;
mod keys;
pub mod leases;
pub mod node;
mod pubsub;
pub mod registry;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use tessera_protocol::{ErrorCode, KickReason};
use tokio::sync::oneshot;

pub use conn::{RedisFailure, RedisLink};
pub use keys::Keys;
use leases::Leases;
pub use pubsub::{Answer, ClusterMessage, CommandFailure, CommandHandler, NodeCommand};
pub use registry::NodeInfo;

use crate::admin_token::hex;
use crate::config::ServerConfig;
use crate::identity::resume::new_key;
use crate::link::report::RoomSummary;
use crate::link::{Refusal, RoomCommand};
use crate::metrics::cluster as names;
use crate::room::RoomTable;

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refreshed {
    /// Another node has, or had, the room since, or the lease is gone and
    /// may not be taken back: it is not ours.
    Lost,
    /// The seat given is unknown, used or expired; nothing changed.
    SeatInvalid,
    /// The lease is ours and extended, and the seat given (if any) used.
    Kept,
}

/// Where a join goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node hosts the room (or now does): admit the client here.
    Here,
    /// Another node does: send the client there with this seat.
    Elsewhere { url: String, seat: String },
}

/// The URLs this node's clients and peers reach it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrls {
    pub ws: String,
    pub quic: String,
    pub admin: String,
}

/// This node's part in the cluster.
pub struct Cluster {
    pub node_id: String,
    pub urls: PublicUrls,
    keys: Keys,
    redis: RedisLink,
    /// Deadline of every Redis call.
    timeout: Duration,
    lease: Duration,
    seat_ttl: Duration,
    heartbeat: Duration,
    node_ttl: Duration,
    max_players_per_room: usize,
    leases: Leases,
    /// The registry as last read (this node included), for placement and
    /// redirects; a placement bumps its pick's room count until the next
    /// read, so that a burst of new rooms spreads out.
    nodes: Mutex<Vec<NodeInfo>>,
    /// From when this node may take leases of rooms nobody holds: `None`
    /// while Redis is unreachable, and a lease's time after it returns.
    /// A Redis that restarted empty has forgotten every lease; the owners
    /// take theirs back within that time, before anyone may claim them.
    claims_open_at: Mutex<Option<Instant>>,
    /// Where to subscribe, tried in turn when one fails (a Redis Cluster
    /// relays PUBLISH to every one of its nodes, so any seed will do).
    pubsub_urls: Vec<String>,
    /// Commands sent to other nodes, waiting for their answers.
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_request: AtomicU64,
    handler: OnceLock<CommandHandler>,
    /// The cluster's boot marker as this node last saw it.
    boot_seen: Mutex<Option<String>>,
    /// Set when Redis was seen to lose its data: the run loop takes the
    /// leases back at once.
    lost_data: std::sync::atomic::AtomicBool,
    /// `redis_url` is a Redis Cluster.
    redis_cluster: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("urls", &self.urls)
            .field("leases", &self.leases.len())
            .finish_non_exhaustive()
    }
}

/// Closes room `name` with `room_moved`, waiting for room in its queue if
/// need be (off this task: the refresher must not wait on a room).
fn close_moved(rooms: &RoomTable, name: &str) {
    let Some(handle) = rooms.get(name) else {
        return;
    };
    tokio::spawn(async move {
        let (reply, _) = oneshot::channel();
        let close = RoomCommand::Close {
            reason: "another node took the room over; join again".into(),
            kick: KickReason::RoomMoved,
            reply,
        };
        let _ = handle.send_waiting(close).await;
    });
}

/// Milliseconds since 1970 by this machine's clock.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unavailable(e: &RedisFailure) -> Refusal {
    Refusal::new(
        ErrorCode::ClusterUnavailable,
        format!("the cluster cannot be reached ({e}); try again in a moment"),
    )
}

fn seat_invalid(why: &str) -> Refusal {
    Refusal::new(
        ErrorCode::SeatInvalid,
        format!("{why}; join again without the seat"),
    )
}

/// Epochs stay below 2^53, where Lua's numbers are still exact.
const MAX_EPOCH: u64 = 1 << 53;

/// A seat token: `epoch "." hex(16 random bytes)`, also its member in the
/// room's seat set.
fn parse_seat(seat: &str) -> Option<(u64, &str)> {
    let (epoch, id) = seat.split_once('.')?;
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let epoch: u64 = epoch.parse().ok()?;
    Some((epoch, id)).filter(|_| valid && epoch < MAX_EPOCH)
}

impl Cluster {
    /// Connects to Redis as `config` says. `urls` are this node's public
    /// URLs, already checked.
    pub async fn connect(
        config: &ServerConfig,
        node_id: String,
        urls: PublicUrls,
    ) -> Result<Self, RedisFailure> {
        let url = config.redis_url.as_deref().unwrap_or_default();
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let redis = RedisLink::open(url, config.redis_cluster, timeout).await?;
        let lease = Duration::from_millis(config.lease_ms);
        let seat_ttl = Duration::from_millis(config.seat_ttl_ms);
        Ok(Self {
            node_id,
            urls,
            keys: Keys::new(&config.redis_prefix),
            redis,
            timeout,
            lease,
            seat_ttl,
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            node_ttl: Duration::from_millis(config.node_ttl_ms),
            max_players_per_room: config.max_players_per_room,
            // A room placed here waits a seat's lifetime for its player.
            leases: Leases::new(lease, seat_ttl * 2),
            nodes: Mutex::new(Vec::new()),
            claims_open_at: Mutex::new(Some(Instant::now())),
            pubsub_urls: url.split(',').map(|u| u.trim().to_owned()).collect(),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            handler: OnceLock::new(),
            boot_seen: Mutex::new(None),
            lost_data: std::sync::atomic::AtomicBool::new(false),
            redis_cluster: config.redis_cluster,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection to run commands on (cheap: it shares one socket).
    pub fn redis(&self) -> RedisLink {
        self.redis.clone()
    }

    fn lease_ms(&self) -> u64 {
        self.lease.as_millis() as u64
    }

    /// The epoch of this node's lease on `room`, if it holds one: the
    /// fencing token its checkpoints carry.
    pub fn epoch_of(&self, room: &str) -> Option<u64> {
        self.leases.valid(room, Instant::now()).map(|l| l.epoch)
    }

    /// Decides where a join of `room` goes: here, or to the node that hosts
    /// it (or that it is placed on) with a seat there. `seat` is the
    /// `Hello.seat` the client brought; `transport` is `ws` or `quic`.
    pub async fn route(
        &self,
        room: &str,
        seat: Option<&str>,
        transport: &str,
        rooms: &RoomTable,
    ) -> Result<Route, Refusal> {
        if let Some(seat) = seat {
            self.take_seat(room, seat, rooms).await?;
            return Ok(Route::Here);
        }
        if let Some(lease) = self.leases.valid(room, Instant::now()) {
            // Seats reserved for redirected clients count toward the cap.
            let players = rooms.get(room).map_or(0, |h| h.players());
            if lease.pending_seats > 0 && players + lease.pending_seats >= self.max_players_per_room
            {
                return Err(Refusal::new(
                    ErrorCode::RoomFull,
                    "the room is full (some places are kept for players on their way)",
                ));
            }
            self.leases.touch(room, Instant::now());
            return Ok(Route::Here);
        }
        let claims_open_at = *self
            .claims_open_at
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if claims_open_at.is_none_or(|at| Instant::now() < at) {
            return Err(Refusal::new(
                ErrorCode::ClusterUnavailable,
                "the cluster is recovering from a redis outage; try again in a moment",
            ));
        }
        let target = self.place(rooms);
        let asked = Instant::now();
        let seat_id = hex(&new_key());
        let mut redis = self.redis();
        let mut claim = scripts::CLAIM.prepare_invoke();
        claim
            .key(self.keys.lease(room))
            .key(self.keys.epoch(room))
            .key(self.keys.seats(room))
            .arg(&target)
            .arg(self.lease_ms())
            .arg(&self.node_id)
            .arg(&seat_id)
            .arg(self.seat_ttl.as_millis() as u64)
            .arg(self.max_players_per_room);
        let (owner, epoch, seat): (String, u64, i64) = self
            .redis
            .within("claim", self.timeout, claim.invoke_async(&mut redis))
            .await
            .map_err(|e| unavailable(&e))?;
        if owner == self.node_id {
            self.leases.granted(room, epoch, 0, asked);
            self.publish_lease_count();
            return Ok(Route::Here);
        }
        ::metrics::counter!(names::LEASES_REFUSED).increment(1);
        if seat != 1 {
            return Err(Refusal::new(ErrorCode::RoomFull, "the room is full"));
        }
        ::metrics::counter!(names::SEATS_RESERVED).increment(1);
        if self.is_draining(&owner) {
            return Err(Refusal::new(
                ErrorCode::ShuttingDown,
                "the room's node is draining and takes no new players; try again once the room has moved or closed",
            ));
        }
        let url = self.url_of(&owner, transport).await?;
        ::metrics::counter!(names::REDIRECTS).increment(1);
        tracing::debug!(room, owner, epoch, url, "redirecting to the room's node");
        Ok(Route::Elsewhere {
            url,
            seat: format!("{epoch}.{seat_id}"),
        })
    }

    /// Checks and uses the seat a redirected client brought, in one step
    /// with the lease: extended if this node holds it under the seat's
    /// epoch, taken here if another node placed the room here under it.
    async fn take_seat(&self, room: &str, seat: &str, rooms: &RoomTable) -> Result<(), Refusal> {
        let Some((epoch, _)) = parse_seat(seat) else {
            return Err(seat_invalid("the seat is not one a node issued"));
        };
        let players = rooms.get(room).map_or(0, |h| h.players());
        // Never a take-back here: a seat exists only under a lease that
        // exists, and a client chose the epoch it names.
        match self.refresh(room, epoch, players, Some(seat), false).await {
            Ok(Refreshed::Lost) => Err(seat_invalid(
                "this node no longer hosts the room the seat is for",
            )),
            Ok(Refreshed::SeatInvalid) => {
                ::metrics::counter!(names::SEATS_EXPIRED).increment(1);
                Err(seat_invalid("the seat is unknown, used already or expired"))
            }
            Ok(Refreshed::Kept) => {
                ::metrics::counter!(names::SEATS_USED).increment(1);
                self.leases.touch(room, Instant::now());
                self.publish_lease_count();
                Ok(())
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// Extends this node's lease of `room` under `epoch` (or, with
    /// `take_back`, takes it back if Redis lost it), and uses `seat` if one
    /// is given.
    async fn refresh(
        &self,
        room: &str,
        epoch: u64,
        players: usize,
        seat: Option<&str>,
        take_back: bool,
    ) -> Result<Refreshed, RedisFailure> {
        let asked = Instant::now();
        let mut redis = self.redis();
        let mut refresh = scripts::REFRESH.prepare_invoke();
        refresh
            .key(self.keys.lease(room))
            .key(self.keys.epoch(room))
            .key(self.keys.seats(room))
            .arg(&self.node_id)
            .arg(epoch)
            .arg(self.lease_ms())
            .arg(players)
            .arg(seat.unwrap_or_default())
            .arg(if take_back { "1" } else { "0" });
        let answer: Vec<i64> = self
            .redis
            .within("refresh", self.timeout, refresh.invoke_async(&mut redis))
            .await?;
        let (status, seats, expired) = match answer[..] {
            [status, seats, expired] => (status, seats, expired),
            [status, seats] => (status, seats, 0),
            _ => return Ok(Refreshed::Lost),
        };
        if expired > 0 {
            ::metrics::counter!(names::SEATS_EXPIRED).increment(expired.unsigned_abs());
        }
        let seats = usize::try_from(seats).unwrap_or(0);
        match status {
            0 => return Ok(Refreshed::Lost),
            3 => return Ok(Refreshed::SeatInvalid),
            2 => {
                // Redis lost the lease without anyone taking the room: it
                // restarted empty. Until every owner has taken its leases
                // back, nobody may claim a room that looks free.
                tracing::warn!(room, epoch, "lease taken back: redis had lost it");
                self.open_claims_at(Some(Instant::now() + self.lease));
            }
            _ => {}
        }
        self.leases.granted(room, epoch, seats, asked);
        Ok(Refreshed::Kept)
    }

    /// The node a new room goes to: the least loaded that takes rooms, as
    /// the registry was last read; this node if it knows no better.
    fn place(&self, rooms: &RoomTable) -> String {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(me) = nodes.iter_mut().find(|n| n.id == self.node_id) {
            *me = self.describe(rooms, me.cpu_percent);
        }
        let Some(pick) = registry::least_loaded(&nodes, &self.node_id).map(|n| n.id.clone()) else {
            return self.node_id.clone();
        };
        if let Some(n) = nodes.iter_mut().find(|n| n.id == pick) {
            n.rooms += 1;
        }
        pick
    }

    /// Whether node `id` was draining when the registry was last read.
    fn is_draining(&self, id: &str) -> bool {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .any(|n| n.id == id && n.state == NodeInfo::DRAINING)
    }

    /// The URL of node `id` for `transport`, from the last registry read or
    /// else from Redis.
    async fn url_of(&self, id: &str, transport: &str) -> Result<String, Refusal> {
        let cached = {
            let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
            nodes
                .iter()
                .find(|n| n.id == id)
                .map(|n| n.url_for(transport).to_owned())
        };
        if let Some(url) = cached {
            return Ok(url);
        }
        let node = self.read_node(id).await.map_err(|e| unavailable(&e))?;
        node.map(|n| n.url_for(transport).to_owned()).ok_or_else(|| {
            Refusal::new(
                ErrorCode::ClusterUnavailable,
                format!(
                    "the room's node {id} has stopped answering; the room moves once its lease expires, try again in a few seconds"
                ),
            )
        })
    }

    async fn read_node(&self, id: &str) -> Result<Option<NodeInfo>, RedisFailure> {
        let mut redis = self.redis();
        let json: Option<String> = self
            .redis
            .within("read_node", self.timeout, redis.get(self.keys.node(id)))
            .await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// The node whose lease holds `room` now, if any.
    pub async fn owner_of(&self, room: &str) -> Result<Option<String>, RedisFailure> {
        let mut redis = self.redis();
        self.redis
            .within(
                "owner_of",
                self.timeout,
                redis.hget(self.keys.lease(room), "node"),
            )
            .await
    }

    /// Every node in the registry now, this one included.
    pub async fn read_nodes(&self) -> Result<Vec<NodeInfo>, RedisFailure> {
        let mut redis = self.redis();
        let ids: Vec<String> = self
            .redis
            .within(
                "list_nodes",
                self.timeout,
                redis.zrange(self.keys.nodes(), 0, -1),
            )
            .await?;
        let reads = ids.iter().map(|id| self.read_node(id));
        let nodes = futures_util::future::join_all(reads).await;
        Ok(nodes.into_iter().filter_map(|n| n.ok().flatten()).collect())
    }

    /// The rooms node `id` last published (at its last heartbeat).
    pub async fn read_rooms(&self, id: &str) -> Result<Vec<RoomSummary>, RedisFailure> {
        let mut redis = self.redis();
        let json: Option<String> = self
            .redis
            .within(
                "read_rooms",
                self.timeout,
                redis.get(self.keys.node_rooms(id)),
            )
            .await?;
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    /// This node's registry entry now.
    fn describe(&self, rooms: &RoomTable, cpu_percent: f64) -> NodeInfo {
        NodeInfo::of(&self.node_id, &self.urls, rooms, cpu_percent)
    }

    /// Writes this node's entry and its rooms, then reads the registry.
    async fn beat(&self, rooms: &RoomTable, cpu_percent: f64) -> Result<(), RedisFailure> {
        let me = self.describe(rooms, cpu_percent);
        let listed: Vec<RoomSummary> = rooms
            .rooms()
            .iter()
            .filter(|h| !h.is_closed())
            .map(|h| RoomSummary {
                node: Some(self.node_id.clone()),
                ..h.summary()
            })
            .collect();
        let ttl = self.node_ttl.as_millis() as u64;
        let now = unix_ms();
        let entry = serde_json::to_string(&me).unwrap_or_default();
        let rooms_json = serde_json::to_string(&listed).unwrap_or_default();
        // One call per command (sent at once, on the one multiplexed
        // connection), so that the metrics count Redis commands.
        let (mut a, mut b, mut c, mut d) = (self.redis(), self.redis(), self.redis(), self.redis());
        let timeout = self.timeout;
        tokio::try_join!(
            self.redis.within("heartbeat_entry", timeout, async {
                a.pset_ex::<_, _, ()>(self.keys.node(&self.node_id), entry, ttl)
                    .await
            }),
            self.redis.within("heartbeat_rooms", timeout, async {
                b.pset_ex::<_, _, ()>(self.keys.node_rooms(&self.node_id), rooms_json, ttl)
                    .await
            }),
            self.redis.within("heartbeat_index", timeout, async {
                c.zadd::<_, _, _, i64>(self.keys.nodes(), &self.node_id, now)
                    .await
            }),
            self.redis.within("heartbeat_prune", timeout, async {
                d.zrembyscore::<_, _, _, i64>(self.keys.nodes(), "-inf", now.saturating_sub(ttl))
                    .await
            }),
        )?;
        self.check_boot().await?;
        let nodes = self.read_nodes().await?;
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
        Ok(())
    }

    /// Tells the cluster which rooms opened and closed here since `listed`.
    async fn announce_rooms(
        &self,
        rooms: &RoomTable,
        listed: &mut std::collections::BTreeSet<String>,
    ) {
        let open: std::collections::BTreeSet<String> = rooms
            .rooms()
            .iter()
            .filter(|h| !h.is_closed())
            .map(|h| h.name.clone())
            .collect();
        let node = || self.node_id.clone();
        let opened = open
            .difference(listed)
            .map(|room| ClusterMessage::RoomOpened {
                node: node(),
                room: room.clone(),
            });
        let closed = listed
            .difference(&open)
            .map(|room| ClusterMessage::RoomClosed {
                node: node(),
                room: room.clone(),
            });
        let events: Vec<_> = opened.chain(closed).collect();
        for event in &events {
            if self.tell_all(event).await.is_err() {
                return;
            }
        }
        *listed = open;
    }

    /// Notices a Redis that lost its data (restarted empty) between two
    /// heartbeats: the cluster's boot marker is gone or another one. Until
    /// every owner has taken its leases back, nobody may claim a room that
    /// looks free; this node takes its own back at once.
    async fn check_boot(&self) -> Result<(), RedisFailure> {
        let mine = hex(&new_key()[..8]);
        let mut redis = self.redis();
        let mut set = redis::cmd("SET");
        set.arg(self.keys.boot()).arg(&mine).arg("NX").arg("GET");
        let found: Option<String> = self
            .redis
            .within("boot_marker", self.timeout, set.query_async(&mut redis))
            .await?;
        let now = found.unwrap_or(mine);
        let before = self
            .boot_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(now.clone());
        if before.is_some_and(|b| b != now) {
            tracing::warn!("redis lost its data (restarted empty?): taking the leases back");
            self.open_claims_at(Some(Instant::now() + self.lease));
            self.lost_data
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }

    fn open_claims_at(&self, at: Option<Instant>) {
        *self
            .claims_open_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = at;
    }

    fn publish_lease_count(&self) {
        ::metrics::gauge!(names::LEASES_HELD).set(self.leases.len() as f64);
    }

    /// Refreshes every lease that is due; closes the rooms whose lease
    /// another node took.
    async fn refresh_leases(&self, rooms: &RoomTable) {
        let open = |room: &str| rooms.get(room).is_some_and(|h| !h.is_closed());
        let due = self.leases.due(open, Instant::now());
        let refreshes = due.iter().map(|d| async move {
            let players = rooms.get(&d.room).map_or(0, |h| h.players());
            // A lapsed lease too may be taken back: after an outage longer
            // than a lease, the room stays here if nobody took it since.
            (d, self.refresh(&d.room, d.epoch, players, None, true).await)
        });
        for (due, result) in futures_util::future::join_all(refreshes).await {
            match result {
                Ok(Refreshed::Kept | Refreshed::SeatInvalid) => {}
                Ok(Refreshed::Lost) => {
                    if self.leases.lost(&due.room, due.epoch) {
                        ::metrics::counter!(names::LEASES_LOST).increment(1);
                        tracing::warn!(
                            room = due.room,
                            epoch = due.epoch,
                            "lease lost to another node: closing the room"
                        );
                        close_moved(rooms, &due.room);
                    }
                }
                // The lease runs out here by itself: the room stops
                // admitting players, and its players keep playing.
                Err(e) => tracing::debug!(room = due.room, error = %e, "lease refresh failed"),
            }
        }
        // A room open here without a lease (it lost it between a join's
        // routing and its opening) must not go on as a second copy.
        for handle in rooms.rooms() {
            if !handle.is_closed() && !self.leases.holds(&handle.name) {
                tracing::warn!(room = handle.name, "room open without a lease: closing it");
                close_moved(rooms, &handle.name);
            }
        }
        self.publish_lease_count();
    }

    /// Runs the heartbeat and the lease refresher until `stop`.
    pub async fn run(
        self: Arc<Self>,
        rooms: Arc<RoomTable>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let refresh_every = (self.lease / 3).max(Duration::from_millis(50));
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(Arc::clone(&self).listen(Arc::clone(&rooms), stop.clone()));
        // Its own task: a slow heartbeat (registry reads, announcements)
        // must never delay a lease refresh.
        let refresher = {
            let (cluster, rooms, stop) = (Arc::clone(&self), Arc::clone(&rooms), stop.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(refresh_every);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = every.tick() => cluster.refresh_leases(&rooms).await,
                    }
                }
            })
        };
        let mut cpu = (Instant::now(), crate::metrics::process_cpu_centiseconds());
        let mut reachable = true;
        let mut announced = false;
        let mut listed = std::collections::BTreeSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = heartbeat.tick() => {
                    let now = (Instant::now(), crate::metrics::process_cpu_centiseconds());
                    let percent = match (cpu.1, now.1) {
                        (Some(a), Some(b)) => {
                            let wall = now.0.duration_since(cpu.0).as_secs_f64().max(0.001);
                            (b.saturating_sub(a) as f64 / 100.0) / wall * 100.0
                        }
                        _ => 0.0,
                    };
                    cpu = now;
                    match self.beat(&rooms, percent).await {
                        Ok(()) if !reachable => {
                            reachable = true;
                            self.open_claims_at(Some(Instant::now() + self.lease));
                            tracing::info!("redis reachable again: registered, taking the leases back");
                            self.refresh_leases(&rooms).await;
                        }
                        Ok(()) => {
                            if self.lost_data.swap(false, std::sync::atomic::Ordering::AcqRel) {
                                self.refresh_leases(&rooms).await;
                            }
                        }
                        Err(e) => {
                            announced = false;
                            self.open_claims_at(None);
                            if reachable {
                                reachable = false;
                                tracing::warn!(error = %e, "cannot reach redis: rooms keep running, joins that need the cluster are refused");
                            }
                        }
                    }
                }
            }
            if reachable {
                if !announced {
                    let up = ClusterMessage::NodeUp {
                        node: self.node_id.clone(),
                    };
                    announced = self.tell_all(&up).await.is_ok();
                }
                self.announce_rooms(&rooms, &mut listed).await;
            }
        }
        // No refresh may follow the release below.
        let _ = refresher.await;
        let _ = self
            .tell_all(&ClusterMessage::NodeDown {
                node: self.node_id.clone(),
            })
            .await;
        // Let this node's rooms move at once rather than after their
        // leases expire, and leave the registry.
        let this = &self;
        let releases = self.leases.all().into_iter().map(|lease| async move {
            let this = this;
            let mut redis = this.redis();
            let mut release = scripts::RELEASE.prepare_invoke();
            release
                .key(this.keys.lease(&lease.room))
                .arg(&this.node_id)
                .arg(lease.epoch);
            let _: Result<i64, _> = this
                .redis
                .within("release", this.timeout, release.invoke_async(&mut redis))
                .await;
        });
        futures_util::future::join_all(releases).await;
        let mut redis = self.redis();
        let leave = async {
            let _: i64 = redis.del(self.keys.node(&self.node_id)).await?;
            let _: i64 = redis.del(self.keys.node_rooms(&self.node_id)).await?;
            redis.zrem(self.keys.nodes(), &self.node_id).await
        };
        let _: Result<i64, _> = self.redis.within("leave", self.timeout, leave).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_parse_only_in_their_own_form() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_seat(&format!("7.{id}")), Some((7, id)));
        assert_eq!(parse_seat(id), None);
        assert_eq!(parse_seat(&format!("x.{id}")), None);
        assert_eq!(parse_seat("7.abc"), None);
        assert_eq!(parse_seat(&format!("7.{}", "z".repeat(32))), None);
    }
}
