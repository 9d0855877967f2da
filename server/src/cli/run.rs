//! The whole `tessera` command (serve, cert, admin) as a function, so that
//! a game crate's `main` is a few lines:
//!
//! ```no_run
//! tessera_server::use_node_allocator!();
//!
//! fn main() -> std::process::ExitCode {
//!     tessera_server::cli::main(vec![std::sync::Arc::new(tessera_sim::games::arena::Arena)])
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tessera_sim::Game;

use super::{Cli, Command, IssueArgs, TokenCommand, one_line};
use crate::transport::tls;
use crate::{Server, ServerConfig, admin, identity, logging};

/// Runs the `tessera` command line over `games`: `serve` runs the one that
/// `game` names (by default the first of `games`, when none of them is
/// called what the default names), `cert` and `admin` as in `tessera`.
/// Start-up errors are printed in one line; the exit code says how it went.
pub fn main(games: Vec<Arc<dyn Game>>) -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.command {
        Command::Serve(args) => serve(args.config.clone(), args.overrides(), games),
        Command::Cert(args) => cert(args.node.config.clone(), args.node.overrides()),
        Command::Token(TokenCommand::Issue(args)) => issue_token(&args),
        Command::Worker(args) => worker(&args),
        Command::Admin(args) => return admin(args),
    };
    // One line, whatever RUST_BACKTRACE says: a start-up error is about
    // the configuration or the machine, and a stack trace only hides it.
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(e.chain()));
            ExitCode::FAILURE
        }
    }
}

/// The configuration `serve` and `cert` run on: the file, then `TESSERA_*`
/// variables, then the flags.
fn load_config(
    file: Option<PathBuf>,
    flags: toml::Table,
) -> anyhow::Result<(ServerConfig, Option<PathBuf>)> {
    let default_file = Path::new("tessera.toml");
    let file = file.or_else(|| default_file.exists().then(|| default_file.to_owned()));
    let config = ServerConfig::load(file.as_deref(), std::env::vars(), flags)?;
    Ok((config, file))
}

fn serve(
    file: Option<PathBuf>,
    flags: toml::Table,
    games: Vec<Arc<dyn Game>>,
) -> anyhow::Result<()> {
    let (mut config, file) = load_config(file, flags)?;
    // A node built for its own games runs the first of them unless told
    // otherwise: the default names the built-in demo game.
    let default_game = ServerConfig::default().game;
    if config.game == default_game
        && !games.iter().any(|g| g.name() == default_game)
        && let Some(first) = games.first()
    {
        config.game = first.name().to_owned();
    }
    let _log_writer =
        logging::init(config.log_format, &config.log_filter).map_err(anyhow::Error::msg)?;
    if let Some(file) = &file {
        tracing::info!(file = %file.display(), "configuration loaded");
    }
    for variable in ServerConfig::ignored_variables(std::env::vars()) {
        tracing::warn!(%variable, "ignored: no configuration field of that name");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tessera-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::start_with_games(config, games).await?;
        server.run_until(shutdown_signal()).await;
        anyhow::Ok(())
    })
}

/// Runs a persistence worker until SIGINT or SIGTERM, or replays the dead
/// letters once.
fn worker(args: &super::WorkerArgs) -> anyhow::Result<()> {
    let (mut config, _) = load_config(args.node.config.clone(), args.overrides())?;
    if let Some(url) = &args.redis_url {
        config.redis_url = Some(url.clone());
    }
    let _log_writer =
        logging::init(config.log_format, &config.log_filter).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tessera-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = if args.replay_dead_letters {
            crate::storage::open_store(&config)
                .await
                .map_err(anyhow::Error::msg)?
        } else {
            // A worker outlives a database that is away: it waits for it.
            let mut wait = std::time::Duration::from_millis(200);
            loop {
                match crate::storage::open_store(&config).await {
                    Ok(store) => break store,
                    Err(e) => {
                        tracing::warn!(
                            error = e,
                            retry_in_ms = wait.as_millis() as u64,
                            "cannot open the database yet"
                        );
                        tokio::select! {
                            () = shutdown_signal() => return anyhow::Ok(()),
                            () = tokio::time::sleep(wait) => {}
                        }
                        wait = (wait * 2).min(std::time::Duration::from_secs(5));
                    }
                }
            }
        };
        if args.replay_dead_letters {
            let replayed = crate::persist::dead_letters::replay(&store, usize::MAX)
                .await
                .context("replaying the dead letters")?;
            println!(
                "dead letters: {} written, {} refused again, {} unreadable",
                replayed.written, replayed.refused, replayed.unreadable
            );
            store.close().await;
            return anyhow::Ok(());
        }
        let consumer = args.consumer.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "host".to_owned());
            format!("worker-{host}-{}", std::process::id())
        });
        let worker = crate::storage::worker(&config, &store, consumer.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        let stop = tokio_util::sync::CancellationToken::new();
        let running = tokio::spawn(worker.run(stop.clone()));
        tracing::info!(consumer, "persistence worker running");
        shutdown_signal().await;
        stop.cancel();
        let _ = running.await;
        store.close().await;
        tracing::info!("persistence worker stopped");
        anyhow::Ok(())
    })
}

/// Prints the fingerprint alone on stdout, so that it can be pinned with
/// `$(tessera cert)`; where the certificate is goes to stderr.
fn cert(file: Option<PathBuf>, flags: toml::Table) -> anyhow::Result<()> {
    let (config, _) = load_config(file, flags)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let identity = tls::load_identity(
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
        &config.data_dir,
    )?;
    println!("{}", identity.fingerprint());
    match &identity.origin {
        tls::Origin::Configured => {
            if let Some(cert) = &config.tls_cert {
                eprintln!("certificate: {} (as configured)", cert.display());
            }
        }
        tls::Origin::DevReused(path) => {
            eprintln!(
                "certificate: {} (self-signed, for development)",
                path.display()
            );
        }
        tls::Origin::DevGenerated(path) => {
            eprintln!(
                "certificate: {} (self-signed, for development; generated now, `tessera serve` uses it)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Prints a player token, alone on stdout.
fn issue_token(args: &IssueArgs) -> anyhow::Result<()> {
    let (config, _) = load_config(args.node.config.clone(), args.node.overrides())?;
    if args.player.is_empty() || args.player.len() > identity::MAX_PLAYER_ID {
        anyhow::bail!("--player must be 1 to {} bytes", identity::MAX_PLAYER_ID);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let secret = crate::server::token_secret(&config)?;
    let request = identity::TokenRequest {
        player: args.player.clone(),
        name: args.name.clone(),
        room: args.room.clone(),
        ttl_s: args.ttl,
    };
    println!(
        "{}",
        identity::issue(&secret, &request, identity::unix_now())
    );
    Ok(())
}

fn admin(args: admin::cli::AdminArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(admin::cli::run(args, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.line());
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
