//! Log output: `pretty` for people, `json` for log shippers.
//!
//! Lines are written to stdout by a background thread. Tick threads log
//! (kicks, refusals, overruns), and a blocking write to a slow or full
//! stdout pipe would stall every room on the thread; instead, lines past a
//! full buffer are dropped.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Lines buffered for the writer thread before new ones are dropped.
const BUFFERED_LINES: usize = 128 * 1024;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `filter`.
/// Keep the returned guard until exit: dropping it flushes what is buffered.
pub fn init(format: LogFormat, filter: &str) -> Result<WorkerGuard, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(filter),
    }
    .map_err(|e| format!("invalid log filter: {e}"))?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("tessera-log")
        .finish(std::io::stdout());
    // Colour only for a person at a terminal: escape codes in a pipe or a
    // file break `grep` and log shippers.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install logger: {e}"))?;
    Ok(guard)
}
