//! The `tessera` command line: its arguments here, the command itself in
//! `run` ([`main`]).

mod run;

pub use run::main;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::admin::cli::AdminArgs;
use crate::config::LogFormat;
use crate::identity::AuthMode;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Authoritative realtime multiplayer room server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only add noise"
)]
pub enum Command {
    /// Run a server node.
    Serve(ServeArgs),
    /// Inspect and operate a running node through its admin API.
    Admin(AdminArgs),
    /// Print the SHA-256 fingerprint of the node's QUIC certificate, for
    /// clients to pin (`TESSERA_PIN_SHA256=$(tessera cert)`). The
    /// development certificate is generated now if the node has none yet,
    /// and `serve` then uses the same one.
    Cert(CertArgs),
    /// Player tokens for this node's `auth = "token"` mode.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write the cluster's persistence stream (Redis) into the database,
    /// as one worker of its consumer group; run as many as needed. With
    /// `--replay-dead-letters`, try the dead letters again and exit.
    Worker(WorkerArgs),
}

/// A persistence worker: the same settings as `serve` where they apply.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub node: NodeFiles,
    /// The cluster's Redis (`TESSERA_REDIS_URL` works too).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// The database [default: DATA_DIR/tessera.db, SQLite]
    /// (`TESSERA_DATABASE_URL` works too).
    #[arg(long)]
    pub database_url: Option<String>,
    /// This worker's name in the consumer group; keep it across restarts,
    /// so that a restarted worker writes what it had read at once
    /// [default: worker-HOSTNAME-PID].
    #[arg(long)]
    pub consumer: Option<String>,
    /// Try every dead letter again, report, and exit.
    #[arg(long)]
    pub replay_dead_letters: bool,
}

impl WorkerArgs {
    /// The flags that were given, as config keys. `--redis-url` is not
    /// among them: a worker is no node, and needs none of the settings
    /// cluster mode asks of one (`worker` sets it after loading).
    pub fn overrides(&self) -> toml::Table {
        let mut t = self.node.overrides();
        if let Some(v) = &self.database_url {
            t.insert("database_url".to_owned(), v.clone().into());
        }
        t
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token for a player, signed with the node's token secret
    /// (generated into the data dir if there is none yet, as `serve` does).
    Issue(IssueArgs),
}

/// What the token says, and where the secret is.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The player id (the token's `sub`), 1 to 128 bytes.
    #[arg(long)]
    pub player: String,
    /// The name the player is shown under.
    #[arg(long)]
    pub name: Option<String>,
    /// The only room the token admits [default: any].
    #[arg(long)]
    pub room: Option<String>,
    /// How long the token is valid: 90s, 30m, 1h, 2d.
    #[arg(long, default_value = "1h", value_parser = crate::identity::parse_ttl)]
    pub ttl: u64,
    #[command(flatten)]
    pub node: NodeFiles,
}

/// Where the certificate is: the same settings `serve` reads.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(flatten)]
    pub node: NodeFiles,
}

/// Where a node's files are, for the commands that read them as `serve`
/// does (`cert`, `token issue`).
#[derive(Debug, Args)]
pub struct NodeFiles {
    /// Config file (TOML). Default: `tessera.toml` if it exists.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory holding the node's certificate and secrets
    /// [default: ./tessera-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl NodeFiles {
    /// The flags that were given, as config keys.
    pub fn overrides(&self) -> toml::Table {
        let mut t = toml::Table::new();
        if let Some(dir) = &self.data_dir {
            t.insert("data_dir".into(), dir.display().to_string().into());
        }
        t
    }
}

/// Flags override `TESSERA_*` variables, which override the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Default: `tessera.toml` if it exists.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// WebSocket listen address: a port, IP:port or host:port [default:
    /// 0.0.0.0:7700].
    #[arg(long)]
    pub ws_addr: Option<String>,
    /// QUIC (UDP) listen address [default: 0.0.0.0:7701].
    #[arg(long)]
    pub quic_addr: Option<String>,
    /// PEM certificate chain for QUIC [default: a development certificate
    /// generated once into DATA_DIR/quic-dev-cert.pem].
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Health / admin HTTP listen address [default: 127.0.0.1:7780].
    #[arg(long)]
    pub admin_addr: Option<String>,
    /// Data directory [default: ./tessera-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Room ticks per second [default: 10].
    #[arg(long)]
    pub tick_hz: Option<u16>,
    /// Game to run [default: arena].
    #[arg(long)]
    pub game: Option<String>,
    /// Log format [default: pretty].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Bearer token of the admin API [default: generated once and kept in
    /// DATA_DIR/admin-token]. `TESSERA_ADMIN_TOKEN` works too.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Who may join: anyone (`open`, the default) or holders of a valid
    /// token (`token`). `TESSERA_AUTH` works too.
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// Secret of Tessera's player tokens [default: generated once and kept
    /// in DATA_DIR/token-secret]. `TESSERA_TOKEN_SECRET` works too.
    #[arg(long)]
    pub token_secret: Option<String>,
    /// Redis of the cluster (`redis://host:6379`): switches cluster mode
    /// on. `TESSERA_REDIS_URL` works too.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// This node's id in the cluster [default: generated once and kept in
    /// DATA_DIR/node-id].
    #[arg(long)]
    pub node_id: Option<String>,
    /// WebSocket URL other nodes send clients to [default: ws:// and the
    /// bound address; required in cluster mode when bound to 0.0.0.0].
    #[arg(long)]
    pub public_ws_url: Option<String>,
    /// QUIC URL other nodes send clients to (quic://host:port) [default:
    /// from the bound address, as --public-ws-url].
    #[arg(long)]
    pub public_quic_url: Option<String>,
    /// The database (default: DATA_DIR/tessera.db, SQLite;
    /// postgres://user@host/db for PostgreSQL).
    #[arg(long)]
    pub database_url: Option<String>,
    /// In cluster mode, run no persistence worker in this node (run
    /// `tessera worker` processes instead).
    #[arg(long)]
    pub no_worker: bool,
}

impl ServeArgs {
    /// The flags that were given, as config keys.
    pub fn overrides(&self) -> toml::Table {
        let mut t = toml::Table::new();
        let mut set = |k: &str, v: Option<toml::Value>| {
            if let Some(v) = v {
                t.insert(k.to_owned(), v);
            }
        };
        set("ws_addr", self.ws_addr.clone().map(Into::into));
        set("admin_addr", self.admin_addr.clone().map(Into::into));
        set("quic_addr", self.quic_addr.clone().map(Into::into));
        for (key, path) in [("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
            set(key, path.as_ref().map(|p| p.display().to_string().into()));
        }
        set(
            "data_dir",
            self.data_dir
                .as_ref()
                .map(|p| p.display().to_string().into()),
        );
        set("tick_hz", self.tick_hz.map(|h| i64::from(h).into()));
        set("game", self.game.clone().map(Into::into));
        set("admin_token", self.admin_token.clone().map(Into::into));
        set("token_secret", self.token_secret.clone().map(Into::into));
        for (key, value) in [
            ("redis_url", &self.redis_url),
            ("node_id", &self.node_id),
            ("public_ws_url", &self.public_ws_url),
            ("public_quic_url", &self.public_quic_url),
            ("database_url", &self.database_url),
        ] {
            set(key, value.clone().map(Into::into));
        }
        set("persist_worker", self.no_worker.then_some(false.into()));
        set(
            "auth",
            self.auth.map(|a| match a {
                AuthMode::Open => "open".into(),
                AuthMode::Token => "token".into(),
            }),
        );
        set(
            "log_format",
            self.log_format.map(|f| match f {
                LogFormat::Pretty => "pretty".into(),
                LogFormat::Json => "json".into(),
            }),
        );
        t
    }
}

/// An error and its causes on one line, each cause said once: error types
/// that print their source in their own message (`cannot listen on …:
/// Address already in use`) and also return it as `source()` would
/// otherwise say it twice.
pub fn one_line<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 0.0.0.0:7700 (websocket): {source}")]
    struct Bind {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("starting the node")]
    struct Start(#[source] std::io::Error);

    #[test]
    fn each_cause_is_said_once() {
        let in_use =
            || std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let bind = Bind { source: in_use() };
        let chain: Vec<&(dyn std::error::Error + 'static)> = vec![&bind, &bind.source];
        assert_eq!(
            one_line(chain),
            "cannot listen on 0.0.0.0:7700 (websocket): Address already in use"
        );
        let start = Start(in_use());
        let chain: Vec<&(dyn std::error::Error + 'static)> = vec![&start, &start.0];
        assert_eq!(one_line(chain), "starting the node: Address already in use");
    }
}
