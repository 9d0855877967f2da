//! A swarm run's settings, from the command line, checked before the first
//! bot connects: anything wrong here is a usage error, not a slow failure.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::plan::{Plan, PlanError, Stage, parse_duration};
use crate::report::Report;
use crate::scenario::Scenario;
use crate::threshold::{Threshold, UnknownThresholdPath};
pub use crate::transport::{Transport, TransportError};

/// `tessera-bots`: drive a swarm of bots at a Tessera server and report
/// what they experienced.
#[derive(Debug, Parser)]
#[command(name = "tessera-bots", version, after_help = crate::EXIT_STATUS_HELP)]
pub struct Args {
    /// Server URL; its scheme picks the transport: ws:// (WebSocket) or
    /// quic:// (QUIC, with --pin-sha256 or --ca-pem). May repeat (nodes of
    /// a cluster, all of one transport): bots are spread over the URLs
    /// round-robin, and follow the cluster's redirects from there.
    /// [default: ws://127.0.0.1:7700, or quic://127.0.0.1:7701 with
    /// --transport quic]
    #[arg(long)]
    pub url: Vec<String>,
    /// `ws` or `quic`. The URL's scheme already says which; this picks the
    /// default URL, and one that contradicts the URL is an error.
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    /// QUIC: trust exactly the server certificate with this SHA-256
    /// fingerprint (what `tessera serve` logs). Every node a bot is sent to
    /// is held to it; a cluster whose nodes have certificates of their own
    /// needs --ca-pem.
    #[arg(long)]
    pub pin_sha256: Option<String>,
    /// QUIC: trust server certificates issued by the CA in this PEM file.
    #[arg(long)]
    pub ca_pem: Option<PathBuf>,
    /// Room every bot joins.
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// Spread the bots over this many rooms: bot `i` joins `ROOM-(i mod
    /// N)`. 1: every bot joins `--room` itself.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub rooms: u64,
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
    /// A field the report does not have is refused before the run, with
    /// the list of fields it has.
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
    /// Bots per second that drop their connection abruptly (no close, as a
    /// lost network does) and resume their player at once with the
    /// server's resume token. Any scenario; default none.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Interest margin (hysteresis beyond the radius) for the sample bots'
    /// visibility check, instead of the one the server's Welcome gives.
    #[arg(long)]
    pub aoi_margin: Option<f32>,
    /// The protocol version the bots' `Hello` says: 2 (the default) takes
    /// positions as moves, 1 gets every change as an entry (to compare the
    /// two encodings against one server).
    #[arg(long, default_value_t = tessera_protocol::PROTOCOL_VERSION,
          value_parser = clap::value_parser!(u16).range(i64::from(tessera_protocol::OLDEST_PROTOCOL_VERSION)..=i64::from(tessera_protocol::PROTOCOL_VERSION)))]
    pub protocol_version: u16,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Validated settings of a run.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// Where bots join, round-robin (bot `i` at `urls[i % len]`); never
    /// empty.
    pub urls: Vec<String>,
    pub transport: Transport,
    /// The trust of QUIC bots (`None` over WebSocket).
    pub quic_trust: Option<tessera_client::ClientConfig>,
    pub room: String,
    /// Rooms the bots are spread over (see `--rooms`); at least 1.
    pub rooms: u64,
    pub scenario: Scenario,
    pub plan: Plan,
    pub seed: u64,
    pub admin_url: Option<String>,
    pub json: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    pub sample_every: u64,
    pub churn_per_second: f64,
    pub churn_pause: Duration,
    pub drop_per_second: f64,
    /// `None`: the margin the server's Welcome gives.
    pub aoi_margin: Option<f32>,
    pub protocol_version: u16,
    pub quiet: bool,
}

/// Why the command line cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    ThresholdPath(#[from] UnknownThresholdPath),
    #[error("--threshold {expr:?}: the server's figures are only in the report with --admin-url")]
    ThresholdNeedsAdminUrl { expr: String },
    #[error("--pin-sha256 and --ca-pem are for QUIC (a quic:// URL), not {url}")]
    TrustWithoutQuic { url: String },
    #[error("QUIC ({url}) needs exactly one of --pin-sha256 and --ca-pem")]
    QuicTrust { url: String },
    #[error("--ca-pem {}: {source}", path.display())]
    CaPem {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A fingerprint or CA file the QUIC client cannot use.
    #[error("--pin-sha256/--ca-pem: {0}")]
    BadTrust(tessera_client::ClientError),
    #[error("--sample-every must be at least 1")]
    SampleEvery,
    #[error("--churn-rate must be zero or positive")]
    ChurnRate,
    #[error("--drop-rate must be zero or positive")]
    DropRate,
}

impl TryFrom<Args> for SwarmConfig {
    type Error = ConfigError;

    fn try_from(a: Args) -> Result<Self, ConfigError> {
        let stages = if a.stages.is_empty() {
            vec![Stage {
                over: a.ramp,
                target: a.bots,
            }]
        } else {
            a.stages
        };
        if stages.iter().all(|s| s.target == 0) {
            return Err(PlanError("the plan never starts a bot".into()).into());
        }
        let (transport, urls) = Transport::resolve(a.url, a.transport)?;
        let quic_trust = quic_trust(transport, &urls[0], a.pin_sha256, a.ca_pem)?;
        if a.sample_every == 0 {
            return Err(ConfigError::SampleEvery);
        }
        if !(a.churn_rate.is_finite() && a.churn_rate >= 0.0) {
            return Err(ConfigError::ChurnRate);
        }
        if !(a.drop_rate.is_finite() && a.drop_rate >= 0.0) {
            return Err(ConfigError::DropRate);
        }
        let fields = Report::threshold_fields();
        for threshold in &a.thresholds {
            threshold.check_path(&fields)?;
            if a.admin_url.is_none() && Report::needs_admin_url(&threshold.field()) {
                return Err(ConfigError::ThresholdNeedsAdminUrl {
                    expr: threshold.expr.clone(),
                });
            }
        }
        Ok(Self {
            urls,
            transport,
            quic_trust,
            room: a.room,
            rooms: a.rooms,
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
            drop_per_second: a.drop_rate,
            aoi_margin: a.aoi_margin,
            protocol_version: a.protocol_version,
            quiet: a.quiet,
        })
    }
}

/// The trust of QUIC bots, checked as the QUIC client will use it; `None`
/// over WebSocket.
fn quic_trust(
    transport: Transport,
    url: &str,
    pin_sha256: Option<String>,
    ca_pem: Option<PathBuf>,
) -> Result<Option<tessera_client::ClientConfig>, ConfigError> {
    let trust = match (transport, pin_sha256, ca_pem) {
        (Transport::Ws, None, None) => return Ok(None),
        (Transport::Ws, _, _) => return Err(ConfigError::TrustWithoutQuic { url: url.into() }),
        (Transport::Quic, Some(pin), None) => {
            tessera_client::ClientConfig::default().pinned_certificate(pin)
        }
        (Transport::Quic, None, Some(path)) => {
            let pem = std::fs::read(&path).map_err(|source| ConfigError::CaPem { path, source })?;
            tessera_client::ClientConfig::default().ca_certificate_pem(pem)
        }
        (Transport::Quic, _, _) => return Err(ConfigError::QuicTrust { url: url.into() }),
    };
    tessera_client::quic_endpoint_config(&trust).map_err(ConfigError::BadTrust)?;
    Ok(Some(trust))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(argv: &[&str]) -> Result<SwarmConfig, ConfigError> {
        let argv = std::iter::once("tessera-bots").chain(argv.iter().copied());
        SwarmConfig::try_from(Args::try_parse_from(argv).expect("args parse"))
    }

    const PIN: &str = "sha256:abababababababababababababababababababababababababababababababab";

    #[test]
    fn the_url_scheme_picks_the_transport() {
        let quic = config(&["--url", "quic://127.0.0.1:7701", "--pin-sha256", PIN]).expect("valid");
        assert_eq!(quic.transport, Transport::Quic);
        assert!(quic.quic_trust.is_some());
        let default = config(&["--transport", "quic", "--pin-sha256", PIN]).expect("valid");
        assert_eq!(default.urls, ["quic://127.0.0.1:7701"]);
        let ws = config(&[]).expect("valid");
        assert_eq!(
            (ws.transport, ws.urls.as_slice()),
            (Transport::Ws, &["ws://127.0.0.1:7700".to_owned()][..])
        );
        let cluster = config(&["--url", "ws://a:7700", "--url", "ws://b:7700"]).expect("valid");
        assert_eq!(cluster.urls, ["ws://a:7700", "ws://b:7700"]);
    }

    #[test]
    fn usage_errors_say_what_to_change() {
        let contradiction = config(&[
            "--url",
            "quic://h:1",
            "--transport",
            "ws",
            "--pin-sha256",
            PIN,
        ])
        .expect_err("contradicts");
        assert!(
            matches!(
                contradiction,
                ConfigError::Transport(TransportError::Contradiction { .. })
            ),
            "{contradiction}"
        );
        let pin_over_ws = config(&["--pin-sha256", PIN]).expect_err("ws has no pin");
        assert!(matches!(pin_over_ws, ConfigError::TrustWithoutQuic { .. }));
        let bad_pin =
            config(&["--url", "quic://h:1", "--pin-sha256", "AB:CD"]).expect_err("short pin");
        assert!(matches!(bad_pin, ConfigError::BadTrust(_)), "{bad_pin}");
        let bad_path = config(&["--threshold", "rtt.p99<100"]).expect_err("no such field");
        assert!(
            matches!(bad_path, ConfigError::ThresholdPath(_)),
            "{bad_path}"
        );
        config(&["--threshold", "rtt_ms.p99<100"]).expect("a field the report has");
        let server = ["--threshold", "server.tick_ms.p99<50"];
        assert!(matches!(
            config(&server),
            Err(ConfigError::ThresholdNeedsAdminUrl { .. })
        ));
        let with_admin = [&server[..], &["--admin-url", "http://127.0.0.1:7780"]].concat();
        config(&with_admin).expect("server figures with --admin-url");
    }
}
