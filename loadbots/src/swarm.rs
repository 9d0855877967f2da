//! The swarm: starts and stops bots to follow the plan, churns them, shows
//! progress, and stops itself at the end of the measured window, or early
//! when no bot can join at all ([`crate::fail_fast`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg32;
use tokio::task::JoinSet;

use crate::bot::{self, BotContext, BotHandle};
use crate::config::SwarmConfig;
use crate::fail_fast::{FIRST_JOIN_DEADLINE, FirstJoinWatch};
use crate::join::{JoinError, NoBotJoined};
use crate::link::{QuicClient, QuicTarget};
use crate::own_cpu::CpuSample;
use crate::plan::Plan;
use crate::scrape::{self, Snapshot};
use crate::stats::{Stats, Window};

/// How often the controller adjusts the swarm.
const STEP: Duration = Duration::from_millis(50);
/// How long stopping bots may take before their tasks are dropped.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a finished run hands to the report.
#[derive(Debug)]
pub struct Finished {
    pub stats: Arc<Stats>,
    /// Bots connected at the end of the measured window.
    pub connected_at_end: usize,
    /// Fewest bots connected at any moment of the measured window.
    pub connected_min: usize,
    pub sample_bots: usize,
    pub bots_started: u64,
    /// The server's metrics at the start and the end of the window
    /// (`--admin-url`), or why they could not be read.
    pub server: Option<Result<(Snapshot, Snapshot), String>>,
    /// The bots' own CPU use over the window, in percent of one core.
    pub own_cpu_percent: Option<f64>,
}

/// Runs the whole plan. Returns when the measured window is over, or as
/// soon as it is clear that no bot can join.
pub async fn run(config: &SwarmConfig) -> Result<Finished, NoBotJoined> {
    let plan = &config.plan;
    let no_bot_joined = |cause| NoBotJoined {
        url: config.urls.join(", "),
        cause,
    };
    let quic = match &config.quic_trust {
        Some(trust) => Some(
            quic_client(&config.urls, trust, plan.peak())
                .await
                .map_err(|e| no_bot_joined(JoinError::Connect(e)))?,
        ),
        None => None,
    };
    let started = Instant::now();
    let (from, to) = plan.window();
    let stats = Arc::new(Stats::new(Window {
        start: started + from,
        end: started + to,
    }));
    let ctx = Arc::new(BotContext {
        quic,
        urls: config.urls.clone(),
        room: config.room.clone(),
        rooms: config.rooms,
        scenario: config.scenario,
        seed: config.seed,
        aoi_margin: config.aoi_margin,
        protocol_version: config.protocol_version,
        churn_pause: config.churn_pause,
        stats: Arc::clone(&stats),
    });
    let progress = progress_bar(plan, config.quiet);
    let mut rng = Pcg32::seed_from_u64(config.seed);
    let mut tasks = JoinSet::new();
    let mut active: Vec<Arc<BotHandle>> = Vec::new();
    let mut next_id = 0u64;
    let mut sample_bots = 0;
    let mut connected_min = usize::MAX;
    let mut churn_credit = 0.0f64;
    let mut drop_credit = 0.0f64;
    let mut last_progress = Instant::now();
    let mut ticker = tokio::time::interval(STEP);
    let mut first_scrape = None;
    let mut own_cpu_at_start = None;
    let mut first_join = FirstJoinWatch::new(FIRST_JOIN_DEADLINE);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let elapsed = now - started;
        let run_over = elapsed >= to;
        if first_join.is_watching()
            && let Some(cause) = first_join.check(now, &stats.join_progress(next_id), run_over)
        {
            progress.finish_and_clear();
            stop(&active, tasks).await;
            return Err(no_bot_joined(cause));
        }
        if run_over {
            break;
        }
        let target = plan.target_at(elapsed);
        while active.len() < target {
            let handle = Arc::new(BotHandle::default());
            let sample = next_id.is_multiple_of(config.sample_every);
            sample_bots += usize::from(sample);
            tasks.spawn(bot::run(
                next_id,
                sample,
                Arc::clone(&ctx),
                Arc::clone(&handle),
            ));
            active.push(handle);
            next_id += 1;
        }
        while active.len() > target {
            if let Some(handle) = active.pop() {
                handle.stop.cancel();
            }
        }
        if elapsed >= plan.stages.first().map_or(Duration::ZERO, |s| s.over) {
            let mut pick =
                |credit: &mut f64, per_second: f64, flag: fn(&BotHandle) -> &AtomicBool| {
                    *credit += per_second * STEP.as_secs_f64();
                    while *credit >= 1.0 && !active.is_empty() {
                        *credit -= 1.0;
                        let i = rng.random_range(0..active.len());
                        flag(&active[i]).store(true, Ordering::Relaxed);
                    }
                };
            pick(&mut churn_credit, config.churn_per_second, |h| &h.churn);
            pick(&mut drop_credit, config.drop_per_second, |h| &h.drop_link);
        }
        if stats.window.contains(now) {
            connected_min = connected_min.min(stats.connected.load(Ordering::Relaxed));
            if own_cpu_at_start.is_none() {
                own_cpu_at_start = Some(CpuSample::now());
            }
            if first_scrape.is_none()
                && let Some(url) = config.admin_url.clone()
            {
                first_scrape = Some(tokio::spawn(async move { scrape::scrape(&url).await }));
            }
        }
        if now - last_progress >= Duration::from_millis(250) {
            last_progress = now;
            update_progress(&progress, &stats, target, elapsed, plan);
        }
    }
    let connected_at_end = stats.connected.load(Ordering::Relaxed);
    let own_cpu_percent = own_cpu_at_start
        .flatten()
        .zip(CpuSample::now())
        .and_then(|(start, end)| start.percent_until(&end));
    let server = match (&config.admin_url, first_scrape) {
        (Some(url), Some(first)) => Some(match (first.await, scrape::scrape(url).await) {
            (Ok(Ok(start)), Ok(end)) => Ok((start, end)),
            (Ok(Err(e)), _) | (_, Err(e)) => Err(e),
            (Err(e), _) => Err(e.to_string()),
        }),
        (Some(_), None) => Some(Err("the measured window never started".into())),
        (None, _) => None,
    };
    progress.finish_and_clear();
    stop(&active, tasks).await;
    Ok(Finished {
        stats,
        connected_at_end,
        connected_min: if connected_min == usize::MAX {
            0
        } else {
            connected_min
        },
        sample_bots,
        bots_started: next_id,
        server,
        own_cpu_percent,
    })
}

/// Stops every bot, giving them [`STOP_GRACE`] to leave politely.
async fn stop(active: &[Arc<BotHandle>], mut tasks: JoinSet<()>) {
    for handle in active {
        handle.stop.cancel();
    }
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
}

/// The endpoints (UDP sockets) QUIC bots share, aimed at `urls`.
async fn quic_client(
    urls: &[String],
    trust: &tessera_client::ClientConfig,
    bots: usize,
) -> Result<QuicClient, String> {
    let mut known = Vec::with_capacity(urls.len());
    for url in urls {
        known.push((url.clone(), QuicTarget::resolve(url).await?));
    }
    let client_config = tessera_client::quic_endpoint_config(trust).map_err(|e| e.to_string())?;
    QuicClient::new(known, &client_config, bots).map_err(|e| e.to_string())
}

fn progress_bar(plan: &Plan, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(plan.window().1.as_secs());
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn update_progress(
    bar: &ProgressBar,
    stats: &Stats,
    target: usize,
    elapsed: Duration,
    plan: &Plan,
) {
    let (from, _) = plan.window();
    let phase = if elapsed < plan.ramp_end() {
        "ramping"
    } else if elapsed < from {
        "settling"
    } else {
        "measuring"
    };
    let rtt = stats
        .take_live_rtt_p99()
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
    let errors = stats.join_failures.load(Ordering::Relaxed)
        + stats.disconnects.load(Ordering::Relaxed)
        + stats.decode_errors.load(Ordering::Relaxed)
        + stats.protocol_violations.load(Ordering::Relaxed);
    bar.set_position(elapsed.as_secs());
    bar.set_message(format!(
        "{phase}: {}/{target} bots connected, rtt p99 {rtt}, errors {errors}",
        stats.connected.load(Ordering::Relaxed)
    ));
}
