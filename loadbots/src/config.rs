//! A swarm run's settings, from the command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::plan::{Plan, PlanError, Stage, parse_duration};
use crate::scenario::Scenario;
use crate::threshold::Threshold;

/// Transports bots can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Ws,
    Quic,
}

/// `tessera-bots`: drive a swarm of bots at a Tessera server and report
/// what they experienced.
#[derive(Debug, Parser)]
#[command(name = "tessera-bots", version)]
pub struct Args {
    /// Server URL.
    #[arg(long, default_value = "ws://127.0.0.1:7700")]
    pub url: String,
    /// `ws`, or `quic` (with a `quic://` URL and `--pin-sha256` or `--ca-pem`).
    #[arg(long, value_enum, default_value = "ws")]
    pub transport: Transport,
    /// QUIC: trust exactly the server certificate with this SHA-256
    /// fingerprint (what `tessera serve` logs).
    #[arg(long)]
    pub pin_sha256: Option<String>,
    /// QUIC: trust server certificates issued by the CA in this PEM file.
    #[arg(long)]
    pub ca_pem: Option<PathBuf>,
    /// Room every bot joins.
    #[arg(long, default_value = "bench")]
    pub room: String,
    #[arg(long, value_enum, default_value = "crowd")]
    pub scenario: Scenario,
    /// Bots to reach with the short form (`--ramp`).
    #[arg(long, default_value_t = 100)]
    pub bots: usize,
    /// Time to ramp up to `--bots` (short form of one stage).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub ramp: Duration,
    /// Stages `DURATION:TARGET`, ramped linearly one after the other
    /// (replaces `--bots`/`--ramp`). May repeat.
    #[arg(long = "stage")]
    pub stages: Vec<Stage>,
    /// Length of the measured window.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Pause between the end of the ramp and the measured window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Seed of every random choice the bots make.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Server admin URL: adds the server's tick, CPU and memory figures.
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Pass/fail rule over a report field, e.g. 'rtt_ms.p99<100'. May repeat.
    #[arg(long = "threshold")]
    pub thresholds: Vec<Threshold>,
    /// One bot in this many keeps a full mirror and checks it.
    #[arg(long, default_value_t = 50)]
    pub sample_every: u64,
    /// Churn scenario: bots leaving (and rejoining) per second.
    #[arg(long, default_value_t = 10.0)]
    pub churn_rate: f64,
    /// Churn scenario: how long a churned bot stays away.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub churn_pause: Duration,
    /// Interest margin of the server (hysteresis beyond the radius), for the
    /// sample bots' visibility check.
    #[arg(long, default_value_t = 20.0)]
    pub aoi_margin: f32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Validated settings of a run.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub url: String,
    pub transport: Transport,
    /// The trust of QUIC bots (`None` over WebSocket).
    pub quic_trust: Option<tessera_client::ClientConfig>,
    pub room: String,
    pub scenario: Scenario,
    pub plan: Plan,
    pub seed: u64,
    pub admin_url: Option<String>,
    pub json: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    pub sample_every: u64,
    pub churn_per_second: f64,
    pub churn_pause: Duration,
    pub aoi_margin: f32,
    pub quiet: bool,
}

impl TryFrom<Args> for SwarmConfig {
    type Error = PlanError;

    fn try_from(a: Args) -> Result<Self, PlanError> {
        let stages = if a.stages.is_empty() {
            vec![Stage {
                over: a.ramp,
                target: a.bots,
            }]
        } else {
            a.stages
        };
        if stages.iter().all(|s| s.target == 0) {
            return Err(PlanError("the plan never starts a bot".into()));
        }
        let scheme = format!("{}://", a.transport.name());
        if !a.url.starts_with(&scheme) {
            return Err(PlanError(format!(
                "--url {:?} must start with {scheme} for --transport {}",
                a.url,
                a.transport.name()
            )));
        }
        let quic_trust = match (a.transport, &a.pin_sha256, &a.ca_pem) {
            (Transport::Ws, None, None) => None,
            (Transport::Ws, _, _) => {
                return Err(PlanError(
                    "--pin-sha256 and --ca-pem are for --transport quic".into(),
                ));
            }
            (Transport::Quic, Some(pin), None) => {
                Some(tessera_client::ClientConfig::default().pinned_certificate(pin.clone()))
            }
            (Transport::Quic, None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|e| PlanError(format!("--ca-pem {}: {e}", path.display())))?;
                Some(tessera_client::ClientConfig::default().ca_certificate_pem(pem))
            }
            (Transport::Quic, _, _) => {
                return Err(PlanError(
                    "--transport quic needs exactly one of --pin-sha256 and --ca-pem".into(),
                ));
            }
        };
        if a.sample_every == 0 {
            return Err(PlanError("--sample-every must be at least 1".into()));
        }
        if !(a.churn_rate.is_finite() && a.churn_rate >= 0.0) {
            return Err(PlanError("--churn-rate must be zero or positive".into()));
        }
        Ok(Self {
            url: a.url,
            transport: a.transport,
            quic_trust,
            room: a.room,
            churn_per_second: if a.scenario == crate::scenario::Scenario::Churn {
                a.churn_rate
            } else {
                0.0
            },
            scenario: a.scenario,
            plan: Plan {
                stages,
                settle: a.settle,
                duration: a.duration,
            },
            seed: a.seed,
            admin_url: a.admin_url,
            json: a.json,
            thresholds: a.thresholds,
            sample_every: a.sample_every,
            churn_pause: a.churn_pause,
            aoi_margin: a.aoi_margin,
            quiet: a.quiet,
        })
    }
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Quic => "quic",
        }
    }
}
