//! The `tessera` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::admin::cli::AdminArgs;
use crate::config::LogFormat;

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
pub enum Command {
    /// Run a server node.
    Serve(ServeArgs),
    /// Inspect and operate a running node through its admin API.
    Admin(AdminArgs),
}

/// Flags override `TESSERA_*` variables, which override the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Default: `tessera.toml` if it exists.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// WebSocket listen address [default: 0.0.0.0:7700].
    #[arg(long)]
    pub ws_addr: Option<SocketAddr>,
    /// QUIC (UDP) listen address [default: 0.0.0.0:7701].
    #[arg(long)]
    pub quic_addr: Option<SocketAddr>,
    /// PEM certificate chain for QUIC [default: a development certificate
    /// generated once into DATA_DIR/quic-dev-cert.pem].
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Health / admin HTTP listen address [default: 127.0.0.1:7780].
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
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
        set("ws_addr", self.ws_addr.map(|a| a.to_string().into()));
        set("admin_addr", self.admin_addr.map(|a| a.to_string().into()));
        set("quic_addr", self.quic_addr.map(|a| a.to_string().into()));
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
