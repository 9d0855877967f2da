//! Server configuration: typed, with documented defaults, loaded once.
//!
//! Sources, lowest precedence first: built-in defaults, the config file
//! (`tessera.toml`), `TESSERA_*` environment variables (one per field, e.g.
//! `TESSERA_TICK_HZ=20`), then command-line flags. A file or variable that
//! does not parse is a fatal error naming the problem, never a silent default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::admin_token::AdminToken;
use crate::identity::AuthMode;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when the output is a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Everything `tessera serve` can be told. Field docs give the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// WebSocket listener for game clients. Default `0.0.0.0:7700`. This
    /// and the other listen addresses take a bare port (every interface),
    /// an IP and port, or a host name and port.
    #[serde(deserialize_with = "crate::listen_addr::deserialize")]
    pub ws_addr: SocketAddr,
    /// QUIC listener (UDP) for game clients, ALPN `tessera/1`. Default
    /// `0.0.0.0:7701`, beside the WebSocket port.
    #[serde(deserialize_with = "crate::listen_addr::deserialize")]
    pub quic_addr: SocketAddr,
    /// PEM certificate chain of the QUIC listener. Default none: a
    /// self-signed development certificate is generated once into
    /// `<data_dir>/quic-dev-cert.pem` and its SHA-256 fingerprint logged, for
    /// clients to pin. Give it together with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`. Default none (see `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// HTTP listener for health, metrics and the admin API. Default
    /// `127.0.0.1:7780`: loopback only, put a proxy in front to expose it.
    #[serde(deserialize_with = "crate::listen_addr::deserialize")]
    pub admin_addr: SocketAddr,
    /// Where the server keeps its files. Default `./tessera-data`.
    pub data_dir: PathBuf,
    /// The game rooms run. Default `arena` (the built-in demo game).
    pub game: String,
    /// Room ticks per second. Default 10.
    pub tick_hz: u16,
    /// Threads that tick rooms. Default 0 = half the cores (at least one),
    /// leaving the rest to network I/O.
    pub tick_threads: usize,
    /// Interest radius in world units. Default 200.
    pub aoi_radius: f32,
    /// Hysteresis beyond the radius before an entity leaves view. Default 20.
    pub aoi_margin: f32,
    /// Players per room. Default 10,000.
    pub max_players_per_room: usize,
    /// Rooms per node; a join that would open one more is refused.
    /// Default 10,000.
    pub max_rooms: usize,
    /// Rooms open at once that joins from one client address opened; a
    /// join that would open one more is refused with `server_full` (joining
    /// an open room is always allowed). Each open room costs memory and a
    /// share of a tick thread. Default 64.
    pub max_rooms_per_ip: usize,
    /// Concurrent connections; more are refused with `server_full`.
    /// Default 20,000.
    pub max_connections: usize,
    /// Connections of one transport still in their handshake (WebSocket
    /// upgrade, or QUIC handshake and control stream), which no session
    /// counts yet; more are dropped unanswered. Bounds the memory a flood of
    /// half-open connections takes. Default 4,096.
    pub max_pending_handshakes: usize,
    /// The same, from one client address, so that one host cannot hold
    /// them all. Default 256.
    pub max_pending_handshakes_per_ip: usize,
    /// Connections open at once from one client address (an IPv6 client
    /// counts by its /64), counted from the moment each is accepted; more
    /// are closed at once, before any handshake. Default 256.
    pub max_connections_per_ip: usize,
    /// New connections a second from one client address, with a burst of
    /// five seconds' worth; faster ones are closed at once. Default 20.
    pub new_connections_per_ip_per_second: u32,
    /// Connections the admin HTTP listener keeps open at once; more wait
    /// in the kernel's backlog. Keeps the admin port from using up the
    /// descriptors game clients need. Default 64.
    pub max_admin_connections: usize,
    /// Time an admin request has to send its headers; a connection that
    /// dawdles is closed. Default 5,000 ms.
    pub admin_request_timeout_ms: u64,
    /// Time a new connection has to send its `Hello`. Default 5,000 ms.
    pub handshake_timeout_ms: u64,
    /// A joined client that sends nothing (not even a ping) for this long is
    /// disconnected. Default 30,000 ms.
    pub idle_timeout_ms: u64,
    /// Frames queued per client before it counts as lagging. Default 64
    /// (6.4 s of deltas at 10 Hz; chat and pongs share it).
    pub outbound_queue: usize,
    /// Kernel send buffer per client socket, in bytes. Bounds what a client
    /// that stops reading can pin in kernel memory (the OS default grows to
    /// 4 MiB per socket) and how long it takes to notice. 0 leaves the OS
    /// default. Default 262,144.
    pub socket_send_buffer: usize,
    /// A client that keeps its queue full this long is disconnected
    /// (`too_slow`). Default 5,000 ms.
    pub max_lag_ms: u64,
    /// Commands (inputs, joins, chat) queued per room between two ticks;
    /// beyond it inputs are dropped and joins refused with `room_busy`. The
    /// queue grows on demand up to this bound. Default 65,536.
    pub room_queue: usize,
    /// Messages per second a client may send, sustained. Default 40 (input
    /// at 10 Hz, pings and chat fit comfortably).
    pub messages_per_second: u32,
    /// Burst above the sustained rate. Default 80.
    pub message_burst: u32,
    /// Chat lines per second per client, sustained. Default 2, burst 5.
    pub chat_per_second: u32,
    /// Game actions per second per client, sustained. Default 20, burst
    /// twice the rate (at least 5).
    pub actions_per_second: u32,
    /// How long shutdown waits for clients to receive their goodbye.
    /// Default 5,000 ms.
    pub shutdown_grace_ms: u64,
    /// Log format. Default `pretty`.
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax. Default `info`; `RUST_LOG` wins.
    pub log_filter: String,
    /// Bearer token of the admin API. Default none: a token is generated on
    /// first start and kept in `<data_dir>/admin-token` (owner-only). Never
    /// logged, printed or serialized.
    #[serde(skip_serializing)]
    pub admin_token: Option<AdminToken>,
    /// Who may join: `open` (anyone, as an anonymous player; the default)
    /// or `token` (a `Hello` must carry a valid token).
    pub auth: AuthMode,
    /// Secret that signs and verifies Tessera's own player tokens (`token`
    /// mode). Default none: generated on first start into
    /// `<data_dir>/token-secret` (owner-only). Never logged or serialized.
    #[serde(skip_serializing)]
    pub token_secret: Option<AdminToken>,
    /// A file holding the token secret (its first line), for secrets kept
    /// by a secret manager; not with `token_secret`.
    pub token_secret_file: Option<PathBuf>,
    /// A studio's JWTs signed with this shared secret (HS256) are accepted
    /// too. Never logged or serialized.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<AdminToken>,
    /// A studio's JWTs signed with the private half of this public key
    /// (PEM; RSA: RS256, Ed25519: EdDSA) are accepted too.
    pub jwt_public_key: Option<PathBuf>,
    /// When set, a studio JWT must carry this `iss`.
    pub jwt_issuer: Option<String>,
    /// When set, a studio JWT's `aud` must hold this.
    pub jwt_audience: Option<String>,
    /// Seconds a token is still accepted past its `exp` (and before its
    /// `nbf`): clocks of different machines differ. Default 30.
    pub token_leeway_s: u64,
    /// How long a player whose connection dropped stays in its room,
    /// waiting to be resumed with its `Welcome.resume` token. 0: not at
    /// all (the player leaves with its connection). Default 10,000 ms.
    pub reconnect_grace_ms: u64,
    /// Redis of the cluster (`redis://host:6379`); setting it switches
    /// cluster mode on. Default none: a single node, nothing shared.
    pub redis_url: Option<String>,
    /// `redis_url` is a Redis Cluster: it lists seed nodes, comma-separated.
    /// Default false (one Redis).
    pub redis_cluster: bool,
    /// Prefix of every key and channel the cluster uses, so that several
    /// clusters (or other applications) share one Redis. Default `tessera`.
    pub redis_prefix: String,
    /// Deadline of one Redis call; a join that needs Redis gets
    /// `cluster_unavailable` beyond it. Default 1,000 ms.
    pub redis_timeout_ms: u64,
    /// This node's id in the cluster. Default none: generated once and kept
    /// in `<data_dir>/node-id`.
    pub node_id: Option<String>,
    /// The WebSocket URL other nodes send clients to (`ws://host:7700`,
    /// `wss://…` behind TLS). Default none: `ws://` and the bound address,
    /// which must then not be `0.0.0.0` in cluster mode.
    pub public_ws_url: Option<String>,
    /// The same for QUIC (`quic://host:7701`). Default none: from the bound
    /// address, as `public_ws_url`.
    pub public_quic_url: Option<String>,
    /// The admin API URL other nodes reach this node's admin API at.
    /// Default none: `http://` and the bound admin address.
    pub public_admin_url: Option<String>,
    /// How often a node writes its registry entry. Default 1,000 ms.
    pub heartbeat_ms: u64,
    /// A node whose entry is not refreshed for this long is gone. Default
    /// 5,000 ms.
    pub node_ttl_ms: u64,
    /// Lifetime of a room lease; its owner refreshes it three times in it.
    /// A dead node's rooms move after at most this. Default 5,000 ms.
    pub lease_ms: u64,
    /// How long a seat reserved for a redirected client stays valid.
    /// Default 5,000 ms.
    pub seat_ttl_ms: u64,
    /// Keep players' state, room checkpoints and game events in a
    /// database. Default true.
    pub persistence: bool,
    /// The database: `sqlite://path` or `postgres://user@host/db`. Default
    /// none: a SQLite file, `<data_dir>/tessera.db`. Its tables are created
    /// (migrated) at start.
    pub database_url: Option<String>,
    /// Save every player this often while it plays, besides when it
    /// leaves. Default 60 s; 0: only when it leaves.
    pub player_save_interval_s: u32,
    /// Checkpoint every room this often, besides when it closes. Default
    /// 30 s; 0: only when it closes.
    pub checkpoint_interval_s: u32,
    /// Checkpoints kept per room. Default 3.
    pub keep_checkpoints: usize,
    /// Records the node's persistence queue holds; past it records are
    /// dropped (and counted) rather than the tick waiting. Default 65,536.
    pub persist_queue: usize,
    /// In cluster mode, run a worker that writes the Redis Stream into the
    /// database inside this node (`tessera serve --no-worker` turns it
    /// off, for `tessera worker` processes to do it). Default true.
    pub persist_worker: bool,
    /// A stream entry a worker read and did not acknowledge for this long
    /// (its worker died) is taken over by another. Default 30,000 ms.
    pub persist_claim_idle_ms: u64,
    /// Tries of a record the database rejects before it becomes a dead
    /// letter. Default 5.
    pub persist_max_attempts: u32,
    /// At shutdown, how long the node waits for its queue to be written.
    /// Default 5,000 ms.
    pub persist_flush_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ws_addr: ([0, 0, 0, 0], 7700).into(),
            quic_addr: ([0, 0, 0, 0], 7701).into(),
            tls_cert: None,
            tls_key: None,
            admin_addr: ([127, 0, 0, 1], 7780).into(),
            data_dir: PathBuf::from("./tessera-data"),
            game: "arena".to_owned(),
            tick_hz: 10,
            tick_threads: 0,
            aoi_radius: 200.0,
            aoi_margin: 20.0,
            max_players_per_room: 10_000,
            max_rooms: 10_000,
            max_rooms_per_ip: 64,
            max_connections: 20_000,
            max_pending_handshakes: 4_096,
            max_pending_handshakes_per_ip: 256,
            max_connections_per_ip: 256,
            max_admin_connections: 64,
            admin_request_timeout_ms: 5_000,
            new_connections_per_ip_per_second: 20,
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            outbound_queue: 64,
            socket_send_buffer: 256 * 1024,
            max_lag_ms: 5_000,
            room_queue: 65_536,
            messages_per_second: 40,
            message_burst: 80,
            chat_per_second: 2,
            actions_per_second: 20,
            shutdown_grace_ms: 5_000,
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            admin_token: None,
            auth: AuthMode::Open,
            token_secret: None,
            token_secret_file: None,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            token_leeway_s: 30,
            reconnect_grace_ms: 10_000,
            redis_url: None,
            redis_cluster: false,
            redis_prefix: "tessera".to_owned(),
            redis_timeout_ms: 1_000,
            node_id: None,
            public_ws_url: None,
            public_quic_url: None,
            public_admin_url: None,
            heartbeat_ms: 1_000,
            node_ttl_ms: 5_000,
            lease_ms: 5_000,
            seat_ttl_ms: 5_000,
            persistence: true,
            database_url: None,
            player_save_interval_s: 60,
            checkpoint_interval_s: 30,
            keep_checkpoints: 3,
            persist_queue: 65_536,
            persist_worker: true,
            persist_claim_idle_ms: 30_000,
            persist_max_attempts: 5,
            persist_flush_ms: 5_000,
        }
    }
}

/// Fields without a default value: absent from the serialized defaults, but
/// still settable from the environment.
const OPTIONAL_FIELDS: &[&str] = &[
    "admin_token",
    "tls_cert",
    "tls_key",
    "token_secret",
    "token_secret_file",
    "jwt_secret",
    "jwt_public_key",
    "jwt_issuer",
    "jwt_audience",
    "redis_url",
    "node_id",
    "public_ws_url",
    "public_quic_url",
    "public_admin_url",
    "database_url",
];

/// `TESSERA_*` variables (without the prefix) that are not config fields but
/// belong to the command line, the admin CLI, the example client or the
/// benchmarks.
const OTHER_TOOLS_VARIABLES: &[&str] = &[
    "CONFIG",
    "ADMIN_URL",
    "PIN_SHA256",
    "CA_PEM",
    "BENCH_CELL",
    "TOKEN",
];

/// The config field a `TESSERA_<FIELD>` variable sets, if it names one.
fn field_of_variable(name: &str, defaults: &toml::Table) -> Option<String> {
    let key = name.strip_prefix("TESSERA_")?.to_ascii_lowercase();
    (defaults.contains_key(&key) || OPTIONAL_FIELDS.contains(&key.as_str())).then_some(key)
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Layers the file (if any), then `env` (`TESSERA_*` pairs), then `flags`
    /// (fields set on the command line) over the defaults, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: toml::Table,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Self::default()).unwrap_or_default();
        for (name, value) in env {
            let Some(key) = field_of_variable(&name, &defaults) else {
                continue;
            };
            // Checked alone first, so the error names the variable. A value
            // that looks like a number may still be meant as a string (a
            // token, a game name): then it is taken as written.
            let alone = |value: &toml::Value| {
                let mut alone = defaults.clone();
                alone.insert(key.clone(), value.clone());
                alone.try_into::<Self>()
            };
            let typed = env_value(&value);
            let value = match alone(&typed) {
                Ok(_) => typed,
                Err(e) => {
                    let text = toml::Value::String(value);
                    if alone(&text).is_err() {
                        return Err(ConfigError::Env {
                            name,
                            message: e.message().to_owned(),
                        });
                    }
                    text
                }
            };
            table.insert(key, value);
        }
        table.extend(flags);
        let config: Self = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string().trim().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// The `TESSERA_*` variables of `env` that [`ServerConfig::load`] passed
    /// over because they name no field, leaving out those of Tessera's other
    /// tools. A typo such as `TESSERA_TICKHZ` would otherwise change nothing
    /// without a word.
    pub fn ignored_variables(env: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        let defaults = toml::Table::try_from(Self::default()).unwrap_or_default();
        env.into_iter()
            .map(|(name, _)| name)
            .filter(|name| {
                name.strip_prefix("TESSERA_")
                    .is_some_and(|rest| !OTHER_TOOLS_VARIABLES.contains(&rest))
                    && field_of_variable(name, &defaults).is_none()
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.outbound_queue < 2 {
            return fail("outbound_queue must be at least 2");
        }
        if self.persistence && (self.persist_queue == 0 || self.keep_checkpoints == 0) {
            return fail("persist_queue and keep_checkpoints must be at least 1");
        }
        if self.persistence && self.persist_max_attempts == 0 {
            return fail("persist_max_attempts must be at least 1");
        }
        if self.room_queue == 0
            || self.max_connections == 0
            || self.max_pending_handshakes == 0
            || self.max_pending_handshakes_per_ip == 0
            || self.max_rooms == 0
            || self.max_rooms_per_ip == 0
            || self.max_connections_per_ip == 0
            || self.max_admin_connections == 0
            || self.new_connections_per_ip_per_second == 0
        {
            return fail(
                "room_queue, max_connections(_per_ip), new_connections_per_ip_per_second, max_pending_handshakes(_per_ip) and max_rooms(_per_ip) must be at least 1",
            );
        }
        if self.messages_per_second == 0
            || self.chat_per_second == 0
            || self.actions_per_second == 0
        {
            return fail(
                "messages_per_second, chat_per_second and actions_per_second must be at least 1",
            );
        }
        if self.handshake_timeout_ms == 0
            || self.idle_timeout_ms == 0
            || self.admin_request_timeout_ms == 0
        {
            return fail("timeouts must be above zero");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return fail("tls_cert and tls_key go together: give both or neither");
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return fail("admin_token must not be empty (leave it unset to have one generated)");
        }
        for (name, secret) in [
            ("token_secret", &self.token_secret),
            ("jwt_secret", &self.jwt_secret),
        ] {
            if secret
                .as_ref()
                .is_some_and(|t| t.expose().trim().is_empty())
            {
                return fail(&format!("{name} must not be empty"));
            }
        }
        if self.token_secret.is_some() && self.token_secret_file.is_some() {
            return fail("token_secret and token_secret_file: give the secret one way, not both");
        }
        if self.jwt_secret.is_some() && self.jwt_public_key.is_some() {
            return fail("jwt_secret and jwt_public_key: give one kind of studio key, not both");
        }
        self.validate_cluster()?;
        self.room_config(0)
            .validate()
            .map_err(|e| ConfigError::Invalid(e.0))
    }

    /// Whether the node runs as part of a cluster.
    pub fn is_clustered(&self) -> bool {
        self.redis_url.is_some()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError::Invalid(m));
        if !self.is_clustered() {
            return Ok(());
        }
        if self.redis_timeout_ms == 0
            || self.heartbeat_ms == 0
            || self.lease_ms == 0
            || self.seat_ttl_ms == 0
        {
            return fail(
                "redis_timeout_ms, heartbeat_ms, lease_ms and seat_ttl_ms must be above zero"
                    .into(),
            );
        }
        if self.node_ttl_ms <= self.heartbeat_ms {
            return fail(format!(
                "node_ttl_ms ({}) must be longer than heartbeat_ms ({}), or nodes vanish between heartbeats",
                self.node_ttl_ms, self.heartbeat_ms
            ));
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(['{', '}']) {
            return fail("redis_prefix must be non-empty and hold no braces".into());
        }
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return fail(format!(
                "node_id {id:?}: 1 to 64 characters of letters, digits, '-', '_' and '.'"
            ));
        }
        if self.token_secret.is_none() && self.token_secret_file.is_none() {
            return fail("cluster mode (redis_url) needs token_secret or token_secret_file, the same on every node: resume tokens must be valid on whichever node hosts the room".into());
        }
        Ok(())
    }

    /// The configuration of a new room, with its random seed.
    pub fn room_config(&self, seed: u64) -> tessera_sim::RoomConfig {
        tessera_sim::RoomConfig {
            tick_hz: self.tick_hz,
            aoi_radius: self.aoi_radius,
            aoi_margin: self.aoi_margin,
            max_players: self.max_players_per_room,
            seed,
            keepalive_ticks: u32::from(self.tick_hz),
            save_players: self.persistence,
            player_save_interval_ticks: self.player_save_interval_s * u32::from(self.tick_hz),
            ..tessera_sim::RoomConfig::default()
        }
    }

    /// Ticks between two checkpoints of a room (0: only when it closes).
    pub fn checkpoint_interval_ticks(&self) -> u32 {
        self.checkpoint_interval_s * u32::from(self.tick_hz)
    }

    /// The database persistence writes to.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("tessera.db").display()
            ),
        }
    }

    pub fn tick_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.tick_hz))
    }

    pub fn tick_thread_count(&self) -> usize {
        match self.tick_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            n => n,
        }
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parse_error = |e: toml::de::Error| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    };
    // Typed first: its errors carry the line and the key.
    toml::from_str::<ServerConfig>(&text).map_err(parse_error)?;
    text.parse::<toml::Table>().map_err(parse_error)
}

/// Environment values are untyped: numbers and booleans become numbers and
/// booleans, everything else a string, and serde checks the type.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = raw.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, toml::Value)]) -> toml::Table {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let c = ServerConfig::load(None, [], toml::Table::new()).expect("loads");
        assert_eq!(c, ServerConfig::default());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("tessera-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tessera.toml");
        std::fs::write(
            &path,
            "tick_hz = 20\naoi_radius = 300.0\ngame = \"arena\"\n",
        )
        .expect("write");
        let env = [
            ("TESSERA_AOI_RADIUS".to_owned(), "250".to_owned()),
            ("TESSERA_ADMIN_URL".to_owned(), "ignored".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let c =
            ServerConfig::load(Some(&path), env, flags(&[("tick_hz", 30.into())])).expect("loads");
        assert_eq!((c.tick_hz, c.aoi_radius), (30, 250.0));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn misspelt_variables_are_named() {
        let env = [
            ("TESSERA_TICKHZ", "20"),
            ("TESSERA_TICK_HZ", "20"),
            ("TESSERA_ADMIN_TOKEN", "t"),
            ("TESSERA_ADMIN_URL", "http://127.0.0.1:7780"),
            ("TESSERA_CONFIG", "tessera.toml"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(ServerConfig::ignored_variables(env), ["TESSERA_TICKHZ"]);
    }

    #[test]
    fn the_admin_token_comes_from_env_or_flag_and_never_prints() {
        let env = [("TESSERA_ADMIN_TOKEN".to_owned(), "123456".to_owned())];
        let c = ServerConfig::load(None, env, toml::Table::new()).expect("loads");
        assert_eq!(c.admin_token, Some(AdminToken::new("123456")));
        assert!(!format!("{c:?}").contains("123456"));
        let serialized = toml::to_string(&c).expect("serializes");
        assert!(!serialized.contains("123456"), "{serialized}");
        let c = ServerConfig::load(
            None,
            [("TESSERA_ADMIN_TOKEN".to_owned(), "from-env".to_owned())],
            flags(&[("admin_token", "from-flag".into())]),
        )
        .expect("loads");
        assert_eq!(c.admin_token, Some(AdminToken::new("from-flag")));
        let err = ServerConfig::load(None, [], flags(&[("admin_token", " ".into())]))
            .expect_err("refused");
        assert!(err.to_string().contains("admin_token"), "{err}");
    }

    #[test]
    fn the_quic_certificate_and_key_come_together() {
        let c = ServerConfig::load(
            None,
            [("TESSERA_QUIC_ADDR".to_owned(), "127.0.0.1:9701".to_owned())],
            flags(&[
                ("tls_cert", "cert.pem".into()),
                ("tls_key", "key.pem".into()),
            ]),
        )
        .expect("loads");
        assert_eq!(c.quic_addr, "127.0.0.1:9701".parse().expect("addr"));
        assert_eq!(c.tls_key, Some(PathBuf::from("key.pem")));
        let err = ServerConfig::load(None, [], flags(&[("tls_cert", "cert.pem".into())]))
            .expect_err("a certificate without its key");
        assert!(err.to_string().contains("tls_key"), "{err}");
    }

    #[test]
    fn bad_values_are_fatal_and_named() {
        let err = ServerConfig::load(
            None,
            [("TESSERA_TICK_HZ".to_owned(), "fast".to_owned())],
            toml::Table::new(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("TESSERA_TICK_HZ"), "{err}");
        let err =
            ServerConfig::load(None, [], flags(&[("tick_hz", 0.into())])).expect_err("refused");
        assert!(err.to_string().contains("tick_hz"), "{err}");
        let dir = std::env::temp_dir().join(format!("tessera-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tessera.toml");
        std::fs::write(&path, "tick_hz = 10\nunknown_key = 1\n").expect("write");
        let err = ServerConfig::load(Some(&path), [], toml::Table::new()).expect_err("refused");
        assert!(err.to_string().contains("unknown_key"), "{err}");
        std::fs::write(&path, "tick_hz = [").expect("write");
        let err = ServerConfig::load(Some(&path), [], toml::Table::new()).expect_err("refused");
        assert!(err.to_string().contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
