//! `tessera-bots`: a bot swarm that loads a Tessera server and reports what
//! the bots experienced, with pass/fail thresholds for CI.
//!
//! - [`config`]: the command line, checked before any bot connects;
//!   [`transport`]: the URL's scheme picks WebSocket or QUIC.
//! - [`plan`]: stages (`10s:500`), the settle pause and the measured window.
//! - [`scenario`]: how bots walk (`crowd`, `hotspot`, `churn`).
//! - `bot`: one bot's session: join, walk, ping, check every frame, rejoin;
//!   `handshake`: how it gets in, following a cluster's redirects and
//!   resuming on the node it was on; `link`: its connection, WebSocket or
//!   QUIC (acks sent as datagrams).
//! - [`check`]: the light checks every bot runs and the full mirror check of
//!   the sample bots.
//! - `stats`, `swarm`: shared measurements and the controller;
//!   [`join`]: why a join failed; [`fail_fast`]: when to stop a run that
//!   no bot can join.
//! - [`report`], [`threshold`]: the JSON report, the summary, the verdicts.
//! - `scrape`: the server's tick, CPU and memory from its `/metrics`;
//!   `own_cpu`: the bots' own CPU use, to tell which side was the limit.
//!
//! Bots share one runtime on one thread; most validate frames in place
//! without allocating, and one in `--sample-every` keeps a full mirror.

mod bot;
pub mod check;
pub mod config;
pub mod fail_fast;
mod handshake;
pub mod join;
mod link;
mod own_cpu;
pub mod plan;
pub mod report;
pub mod scenario;
mod scrape;
mod stats;
mod swarm;
pub mod threshold;
pub mod transport;

pub use config::{Args, ConfigError, SwarmConfig};
pub use join::{JoinError, NoBotJoined};
pub use report::Report;

/// What `tessera-bots` exits with. Scripts tell a regression (1) from a
/// run that could not measure anything (2, 3) by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every threshold held.
    Pass = 0,
    /// A threshold failed.
    Fail = 1,
    /// Bad usage: the command line cannot run (or the report cannot be
    /// written). Nothing was measured.
    Usage = 2,
    /// No bot could join the server: nothing listens, TLS failed, or the
    /// server refused. Nothing was measured.
    NoBotJoined = 3,
}

/// The exit codes, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  every threshold held
  1  a threshold failed (the report says which)
  2  bad usage (an option, threshold path, URL or transport, or an
     unwritable --json file): nothing was measured
  3  no bot could join: connection refused, TLS failure, the server's
     refusal code, or no answer within a few seconds (stderr says which)";

/// Runs a swarm to the end of its measured window and builds the report;
/// stops early when no bot can join.
pub async fn run(config: &SwarmConfig) -> Result<(Report, Verdict), NoBotJoined> {
    let finished = swarm::run(config).await?;
    let server = match &finished.server {
        Some(Ok((start, end))) => Some(scrape::between(start, end)),
        Some(Err(e)) => {
            eprintln!("tessera-bots: no server figures: {e}");
            None
        }
        None => None,
    };
    let mut report = Report::build(config, &finished, server);
    report.judge(config);
    let verdict = if report.thresholds_hold() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Ok((report, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_exit_code() {
        let help = <Args as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        for verdict in [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Usage,
            Verdict::NoBotJoined,
        ] {
            let line = format!("\n  {}  ", verdict as u8);
            assert!(help.contains(&line), "{verdict:?} in {help}");
        }
    }
}
