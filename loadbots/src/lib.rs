//! `tessera-bots`: a bot swarm that loads a Tessera server and reports what
//! the bots experienced, with pass/fail thresholds for CI.
//!
//! - [`plan`]: stages (`10s:500`), the settle pause and the measured window.
//! - [`scenario`]: how bots walk (`crowd`, `hotspot`, `churn`).
//! - `bot`: one bot's session: join, walk, ping, check every frame, rejoin;
//!   `link`: its connection, WebSocket or QUIC (acks sent as datagrams).
//! - [`check`]: the light checks every bot runs and the full mirror check of
//!   the sample bots.
//! - `stats`, `swarm`: shared measurements and the controller.
//! - [`report`], [`threshold`]: the JSON report, the summary, the verdicts.
//! - `scrape`: the server's tick, CPU and memory from its `/metrics`;
//!   `own_cpu`: the bots' own CPU use, to tell which side was the limit.
//!
//! Bots share one runtime on one thread; most validate frames in place
//! without allocating, and one in `--sample-every` keeps a full mirror.

mod bot;
pub mod check;
pub mod config;
mod link;
mod own_cpu;
pub mod plan;
pub mod report;
pub mod scenario;
mod scrape;
mod stats;
mod swarm;
pub mod threshold;

pub use config::{Args, SwarmConfig};
pub use report::Report;

/// What `tessera-bots` exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every threshold held.
    Pass = 0,
    /// A threshold failed.
    Fail = 1,
    /// Bad usage, or the server could not be reached at all.
    Error = 2,
}

/// Runs a swarm to the end of its measured window and builds the report.
pub async fn run(config: &SwarmConfig) -> (Report, Verdict) {
    let finished = swarm::run(config).await;
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
    let verdict =
        if report.bots_started > 0 && report.deltas_received == 0 && report.join_failures > 0 {
            Verdict::Error
        } else if report.thresholds_hold() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
    (report, verdict)
}
