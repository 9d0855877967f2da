//! What every task of a node shares: the configuration, the room table,
//! the connection permits, the shutdown signal and a few node-wide counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin_token::AdminToken;
use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::identity::Verifier;
use crate::identity::resume::ResumeSigner;
use crate::room::{Admission, RoomTable};

/// What every task of a node shares.
#[derive(Debug)]
pub struct ServerState {
    pub config: Arc<ServerConfig>,
    pub rooms: Arc<RoomTable>,
    /// Cancelled when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Connection tasks, waited for on shutdown.
    pub tasks: TaskTracker,
    /// One permit per open client connection.
    pub connections: Arc<Semaphore>,
    pub started: Instant,
    /// The bearer token `/admin/*` requires.
    pub admin_token: AdminToken,
    /// Checks the players' tokens.
    pub identity: Verifier,
    /// Signs and checks resume tokens.
    pub resume: ResumeSigner,
    /// This node's part in the cluster; `None` for a node on its own.
    pub cluster: Option<Arc<Cluster>>,
    /// Set once the listeners are bound and the tick threads run.
    serving: AtomicBool,
    next_session: AtomicU64,
    dropped_inputs: AtomicU64,
}

impl ServerState {
    /// The state of a node that is not serving yet.
    pub fn new(
        config: Arc<ServerConfig>,
        rooms: RoomTable,
        admin_token: AdminToken,
        identity: Verifier,
        resume: ResumeSigner,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        Self {
            rooms: Arc::new(rooms),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: Instant::now(),
            admin_token,
            identity,
            resume,
            cluster,
            serving: AtomicBool::new(false),
            next_session: AtomicU64::new(1),
            dropped_inputs: AtomicU64::new(0),
        }
    }

    /// The listeners are bound: readiness now depends on the rooms.
    pub fn start_serving(&self) {
        self.serving.store(true, Ordering::Release);
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.config.handshake_timeout_ms)
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.config.max_connections - self.connections.available_permits()
    }

    pub fn count_dropped_input(&self) {
        self.dropped_inputs.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped_inputs(&self) -> u64 {
        self.dropped_inputs.load(Ordering::Relaxed)
    }

    /// Whether the node should get new players, and if not why: `starting`,
    /// the database cannot be reached, `draining` or `shutting down`.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.shutdown.is_cancelled() {
            return Err("shutting down");
        }
        if !self.serving.load(Ordering::Acquire) || self.rooms.tick_threads() == 0 {
            return Err("starting");
        }
        if let Some(p) = self.rooms.persistence()
            && !p.store_reachable()
        {
            return Err(
                "the database cannot be reached (rooms keep running; joins that need saved state are refused)",
            );
        }
        match self.rooms.admission() {
            Admission::Open => Ok(()),
            Admission::Draining => Err("draining"),
            Admission::Stopped => Err("shutting down"),
        }
    }
}
