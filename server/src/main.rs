use std::path::Path;

use anyhow::Context;
use clap::Parser;
use tessera_server::cli::{Cli, Command};
use tessera_server::{Server, ServerConfig, admin, logging};

tessera_server::use_node_allocator!();

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let default_file = Path::new("tessera.toml");
            let file = args
                .config
                .clone()
                .or_else(|| default_file.exists().then(|| default_file.to_owned()));
            let config = ServerConfig::load(file.as_deref(), std::env::vars(), args.overrides())?;
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
                let server = Server::start(config).await?;
                server.run_until(shutdown_signal()).await;
                anyhow::Ok(())
            })
        }
        Command::Admin(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let mut stdout = std::io::stdout();
            if let Err(e) = runtime.block_on(admin::cli::run(args, &mut stdout)) {
                eprintln!("error: {}", e.line());
                std::process::exit(e.exit_code());
            }
            Ok(())
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
