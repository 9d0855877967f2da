//! Starting and stopping a node: binds the listeners, starts the tick
//! threads, and shuts everything down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_protocol::GameSchema;
use tessera_sim::Game;
use tokio::net::TcpListener;

use crate::admin_token::{self, AdminToken, TokenError, TokenSource};
use crate::cluster::{self, Cluster};
use crate::config::ServerConfig;
use crate::identity::resume::ResumeSigner;
use crate::identity::{self, AuthMode, StudioJwt, Verifier};
use crate::room::RoomTable;
use crate::state::ServerState;
use crate::storage;
use crate::transport::admission::AddressAdmission;
use crate::transport::gate::HandshakeGate;
use crate::{admin, fds, metrics, transport};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("unknown game {0:?} (built in: {1})")]
    UnknownGame(String, String),
    #[error("game {game:?} cannot build a room: {message}")]
    InvalidGame { game: &'static str, message: String },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    AdminToken(#[from] TokenError),
    #[error("player tokens: {0}")]
    Identity(String),
    #[error("{0}")]
    Cluster(String),
    #[error("persistence: {0}")]
    Persistence(String),
    #[error("cannot start QUIC on {addr}: {source}")]
    Quic {
        addr: SocketAddr,
        source: transport::quic::BindError,
    },
}

/// The token checks `config.auth` asks for, with the keys they need:
/// the node's token secret (given, or generated into the data dir) and the
/// studio's key, if one is configured.
fn token_verifier(config: &ServerConfig, secret: &AdminToken) -> Result<Verifier, StartError> {
    if config.auth == AuthMode::Open {
        tracing::warn!(
            "auth = open: this node accepts anonymous players; set auth = \"token\" to require player tokens"
        );
        return Ok(Verifier::open());
    }
    let studio = if let Some(secret) = &config.jwt_secret {
        Some(StudioJwt::shared_secret(secret))
    } else if let Some(path) = &config.jwt_public_key {
        let pem = std::fs::read(path).map_err(|e| {
            StartError::Identity(format!(
                "cannot read jwt_public_key {}: {e}",
                path.display()
            ))
        })?;
        let key = StudioJwt::public_key(&pem)
            .map_err(|e| StartError::Identity(format!("jwt_public_key {}: {e}", path.display())))?;
        Some(key)
    } else {
        None
    };
    let studio = studio.map(|s| {
        s.issuer(config.jwt_issuer.clone())
            .audience(config.jwt_audience.clone())
    });
    tracing::info!(
        studio_jwt = studio.is_some(),
        "auth = token: players join with a token"
    );
    Ok(Verifier::tokens(secret, studio, config.token_leeway_s))
}

/// The secret of Tessera's own tokens: configured, or kept in the data dir.
pub(crate) fn token_secret(config: &ServerConfig) -> Result<AdminToken, StartError> {
    if let Some(path) = &config.token_secret_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StartError::Identity(format!(
                "cannot read token_secret_file {}: {e}",
                path.display()
            ))
        })?;
        let secret = text.lines().next().unwrap_or_default().trim();
        if secret.is_empty() {
            return Err(StartError::Identity(format!(
                "token_secret_file {} is empty",
                path.display()
            )));
        }
        return Ok(AdminToken::new(secret));
    }
    let file = config.data_dir.join(identity::SECRET_FILE);
    let (secret, source) =
        admin_token::resolve_secret(config.token_secret.as_ref(), &file, "token secret")?;
    if let TokenSource::Generated(path) = source {
        tracing::info!(file = %path.display(), "token secret: generated and stored (owner-only)");
    }
    Ok(secret)
}

/// Loads (or generates) the QUIC certificate, logs where it came from and
/// its fingerprint, and binds the QUIC endpoint.
fn start_quic(config: &ServerConfig) -> Result<(quinn::Endpoint, String), StartError> {
    let quic_error = |source| StartError::Quic {
        addr: config.quic_addr,
        source,
    };
    let identity = transport::tls::load_identity(
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
        &config.data_dir,
    )
    .map_err(|e| quic_error(e.into()))?;
    let fingerprint = identity.fingerprint();
    match &identity.origin {
        transport::tls::Origin::Configured => {
            tracing::info!(sha256 = %fingerprint, "quic certificate: as configured");
        }
        transport::tls::Origin::DevReused(path) | transport::tls::Origin::DevGenerated(path) => {
            tracing::warn!(
                file = %path.display(),
                "quic certificate: self-signed, for development; clients pin it (`tessera cert` prints the fingerprint)"
            );
            // Alone on its line, so that it can be read off and copied.
            tracing::info!(sha256 = %fingerprint, "quic fingerprint");
        }
    }
    let endpoint = transport::quic::bind(config.quic_addr, identity).map_err(quic_error)?;
    Ok((endpoint, fingerprint))
}

/// Builds one room of `game` and drops it, returning the game's schema,
/// so that a game whose setup
/// panics or is invalid (two components with one wire id, no spatial
/// component) stops the start with its reason, instead of failing every
/// first join later.
fn check_game(game: &dyn Game, config: &ServerConfig) -> Result<GameSchema, StartError> {
    let invalid = |message: String| StartError::InvalidGame {
        game: game.name(),
        message,
    };
    // The panic is reported as the start-up error: the default hook would
    // print it (with a backtrace under RUST_BACKTRACE) on top.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tessera_sim::Room::new(game, config.room_config(0))
    }));
    std::panic::set_hook(hook);
    match built {
        Ok(Ok(room)) => Ok(room.schema()),
        Ok(Err(e)) => Err(invalid(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "its setup panicked".to_owned());
            Err(invalid(format!("setup panicked: {message}")))
        }
    }
}

/// Channel messages waiting for the task that fans them out; beyond it,
/// rooms' messages are dropped (counted).
const CHANNEL_QUEUE: usize = 4_096;

/// A running node.
#[derive(Debug)]
pub struct Server {
    state: Arc<ServerState>,
    ws_addr: SocketAddr,
    quic: quinn::Endpoint,
    quic_addr: SocketAddr,
    /// SHA-256 of the QUIC certificate, for clients to pin.
    quic_fingerprint: String,
    ws_gate: Arc<HandshakeGate>,
    admin_addr: SocketAddr,
}

impl Server {
    /// Starts a node running the built-in game named in `config.game`.
    pub async fn start(config: ServerConfig) -> Result<Self, StartError> {
        Self::start_with_games(config, tessera_sim::games::builtin()).await
    }

    /// Starts a node that can run any of `games` (the one named in
    /// `config.game` is used). This is how a studio ships its own game.
    pub async fn start_with_games(
        config: ServerConfig,
        games: Vec<Arc<dyn Game>>,
    ) -> Result<Self, StartError> {
        let game = games
            .iter()
            .find(|g| g.name() == config.game)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = games.iter().map(|g| g.name()).collect();
                StartError::UnknownGame(config.game.clone(), names.join(", "))
            })?;
        let schema = check_game(game.as_ref(), &config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let (admin_token, token_source) =
            admin_token::resolve(config.admin_token.as_ref(), &config.data_dir)?;
        match &token_source {
            TokenSource::Configured => tracing::info!("admin token: as configured"),
            TokenSource::File(path) => {
                tracing::info!(file = %path.display(), "admin token: read from its file");
            }
            TokenSource::Generated(path) => tracing::info!(
                file = %path.display(),
                "admin token: generated and stored (owner-only) for `tessera admin --token`"
            ),
        }
        // The secret also signs resume tokens, in `open` mode too.
        let secret = token_secret(&config)?;
        let verifier = token_verifier(&config, &secret)?;
        let resume = ResumeSigner::new(&secret);
        let mut config = config;
        let fd_limit = fds::raise_limit();
        let (asked_connections, asked_pending) =
            (config.max_connections, config.max_pending_handshakes);
        if fds::fit_caps(&mut config, fd_limit) {
            tracing::warn!(
                fd_limit,
                max_connections = config.max_connections,
                max_pending_handshakes = config.max_pending_handshakes,
                asked_connections,
                asked_pending,
                "the file descriptor limit is below what the caps need: caps lowered to fit (raise `ulimit -n` for more)"
            );
        }
        metrics::install();
        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let ws = bind("websocket", config.ws_addr).await?;
        let admin = bind("admin http", config.admin_addr).await?;
        let local = |l: &TcpListener, what, addr| {
            l.local_addr()
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let ws_addr = local(&ws, "websocket", config.ws_addr)?;
        let admin_addr = local(&admin, "admin http", config.admin_addr)?;
        let (quic, quic_fingerprint) = start_quic(&config)?;
        let quic_addr = quic.local_addr().map_err(|source| StartError::Bind {
            what: "quic",
            addr: config.quic_addr,
            source,
        })?;

        let cluster = if config.is_clustered() {
            let bound = cluster::node::Bound {
                ws: ws_addr,
                quic: quic_addr,
                admin: admin_addr,
            };
            let urls = cluster::node::public_urls(&config, bound).map_err(StartError::Cluster)?;
            let id = cluster::node::node_id(&config).map_err(StartError::Cluster)?;
            let joined = Cluster::connect(&config, id, urls)
                .await
                .map_err(|e| StartError::Cluster(format!("cluster mode: {e}")))?;
            tracing::info!(
                node_id = joined.node_id,
                ws = joined.urls.ws,
                quic = joined.urls.quic,
                "cluster mode"
            );
            Some(Arc::new(joined))
        } else {
            None
        };
        let persistence = storage::start(&config)
            .await
            .map_err(StartError::Persistence)?;
        let config = Arc::new(config);
        let (channel_out, published) = tokio::sync::mpsc::channel(CHANNEL_QUEUE);
        let mut rooms = RoomTable::new(game, schema, Arc::clone(&config), channel_out);
        if let Some(persistence) = &persistence {
            rooms.persist_with(Arc::clone(persistence));
        }
        let state = Arc::new(ServerState::new(
            Arc::clone(&config),
            rooms,
            admin_token,
            verifier,
            resume,
            cluster.clone(),
        ));
        state.tasks.spawn(Cluster::carry_channels(
            cluster.clone(),
            Arc::clone(&state.rooms),
            published,
            state.shutdown.clone(),
        ));
        if let Some(cluster) = cluster {
            // Weak: the state holds the cluster, which holds this.
            let node = Arc::downgrade(&state);
            cluster.handle_commands(Arc::new(move |command| {
                let node = node.upgrade();
                Box::pin(async move {
                    match node {
                        Some(state) => admin::carry_out(&state, command).await,
                        None => cluster::Answer {
                            status: 503,
                            body: serde_json::json!({ "error": "the node is shutting down" }),
                        },
                    }
                })
            }));
            state
                .tasks
                .spawn(cluster.run(Arc::clone(&state.rooms), state.shutdown.clone()));
        }
        let gate = || {
            HandshakeGate::new(
                config.max_pending_handshakes,
                config.max_pending_handshakes_per_ip,
            )
        };
        // One per node: the caps per address hold across both transports.
        let addresses = AddressAdmission::new(
            config.max_connections_per_ip,
            config.new_connections_per_ip_per_second,
            std::time::Instant::now(),
        );
        let ws_gate = gate();
        state.tasks.spawn(transport::ws::serve(
            ws,
            Arc::clone(&addresses),
            Arc::clone(&ws_gate),
            Arc::clone(&state),
        ));
        state.tasks.spawn(transport::quic::serve(
            quic.clone(),
            addresses,
            gate(),
            Arc::clone(&state),
        ));
        state.tasks.spawn(admin::serve(admin, Arc::clone(&state)));
        state.start_serving();
        tracing::info!(
            game = state.rooms.game_name(),
            ws = %ws_addr,
            quic = %quic_addr,
            admin = %admin_addr,
            tick_hz = state.config.tick_hz,
            tick_threads = state.config.tick_thread_count(),
            fd_limit,
            "tessera is listening"
        );
        Ok(Self {
            state,
            ws_addr,
            quic,
            quic_addr,
            quic_fingerprint,
            ws_gate,
            admin_addr,
        })
    }

    /// The address game clients connect to (`ws://{ws_addr}`).
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    /// The QUIC address game clients connect to (`quic://{quic_addr}`).
    pub fn quic_addr(&self) -> SocketAddr {
        self.quic_addr
    }

    /// SHA-256 fingerprint of the QUIC certificate (`AB:CD:…`).
    pub fn quic_fingerprint(&self) -> &str {
        &self.quic_fingerprint
    }

    /// Connections in their WebSocket upgrade right now.
    pub fn pending_ws_handshakes(&self) -> usize {
        self.ws_gate.pending_count()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Runs until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops accepting, says goodbye to every client (`Kicked: shutdown`),
    /// waits up to the grace period, then stops the tick threads.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.state.rooms.stop_accepting();
        self.state.shutdown.cancel();
        self.state.tasks.close();
        let grace = Duration::from_millis(self.state.config.shutdown_grace_ms);
        if tokio::time::timeout(grace, self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.state.open_connections(),
                "grace period over; dropping the remaining connections"
            );
        }
        self.quic.close(quinn::VarInt::from_u32(1001), b"shutdown");
        let rooms = Arc::clone(&self.state.rooms);
        let _ = tokio::task::spawn_blocking(move || rooms.stop()).await;
        // After the rooms' last checkpoints and saves are queued.
        if let Some(persistence) = self.state.rooms.persistence() {
            let flush = Duration::from_millis(self.state.config.persist_flush_ms);
            persistence.stop(flush).await;
        }
        tracing::info!("shutdown complete");
    }
}
