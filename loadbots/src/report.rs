//! The run's report: JSON for machines (field names are a contract), a
//! summary for people, and the thresholds' verdicts.

use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::SwarmConfig;
use crate::swarm::Finished;
use crate::threshold::ThresholdResult;

/// Percentiles of a latency, in milliseconds (`null` without samples).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct MeanP99 {
    pub mean: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Mean {
    pub mean: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct MeanMax {
    pub mean: f64,
    pub max: u64,
}

/// What the server said about itself during the window (`--admin-url`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServerFigures {
    pub tick_ms: Latency,
    pub tick_overruns: u64,
    pub cpu_percent: Option<f64>,
    pub rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub transport: &'static str,
    /// Bots the plan holds after its last stage.
    pub bots_target: usize,
    /// Bots connected at the end of the measured window.
    pub bots_connected: usize,
    /// Fewest bots connected at any moment of the window.
    pub bots_connected_min: usize,
    pub join_failures: u64,
    pub disconnects: u64,
    pub decode_errors: u64,
    pub protocol_violations: u64,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    pub rtt_ms: Latency,
    /// Time between two deltas received by one bot.
    pub snapshot_interval_ms: Latency,
    /// Message payload bytes (no WebSocket, TCP or IP headers).
    pub down_bytes_per_bot_s: MeanP99,
    pub up_bytes_per_bot_s: Mean,
    /// Delta bytes per entity update (an entity entered, updated or moved):
    /// the delta's header and `left` share included, summed over every bot
    /// in the window.
    pub bytes_per_entity_update: Mean,
    pub visible_entities: MeanMax,
    pub sample_bots: usize,
    pub bots_started: u64,
    pub deltas_received: u64,
    /// Bots that dropped their connection (`--drop-rate`) and got their
    /// player back, and those the server refused (`resume_failed`).
    pub resumes: u64,
    pub resume_failures: u64,
    /// From a dropped connection to the Welcome of its resume.
    pub resume_ms: Latency,
    /// Redirects the bots followed to the node hosting the room (a cluster,
    /// PROTOCOL.md §10.5), and seats a node refused (`seat_invalid`; the
    /// bot then joined again through its URL).
    pub redirects: u64,
    pub seat_refusals: u64,
    /// From the start of a join to its Welcome, redirects and a refused
    /// resume included; every join of the run, the ramp's too.
    pub join_ms: Latency,
    pub thresholds: Vec<ThresholdResult>,
    /// The bots' own CPU use over the window, in percent of one core
    /// (`null` where the OS does not tell). Near 100 the bots, not the
    /// server, set the latencies.
    pub bots_cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFigures>,
}

fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0);
    Latency {
        p50: ms(0.50),
        p95: ms(0.95),
        p99: ms(0.99),
        max: (!h.is_empty()).then(|| h.max() as f64 / 1000.0),
    }
}

impl Report {
    pub fn build(config: &SwarmConfig, run: &Finished, server: Option<ServerFigures>) -> Self {
        let s = run.summary();
        let stats = &run.stats;
        // Per-bot rates, over the time each bot was connected in the window;
        // bots connected less than a second are too noisy to count.
        let mut down: Vec<f64> = Vec::new();
        let mut up: Vec<f64> = Vec::new();
        for t in &s.traffic {
            let secs = t.connected.as_secs_f64();
            if secs >= 1.0 {
                down.push(t.down as f64 / secs);
                up.push(t.up as f64 / secs);
            }
        }
        down.sort_by(f64::total_cmp);
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let p99 = down
            .get(((down.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0);
        Self {
            scenario: config.scenario.name(),
            transport: config.transport.name(),
            bots_target: config.plan.final_target(),
            bots_connected: run.connected_at_end,
            bots_connected_min: run.connected_min,
            join_failures: stats.join_failures.load(Ordering::Relaxed),
            disconnects: stats.disconnects.load(Ordering::Relaxed),
            decode_errors: stats.decode_errors.load(Ordering::Relaxed),
            protocol_violations: stats.protocol_violations.load(Ordering::Relaxed),
            duration_s: config.plan.duration.as_secs_f64(),
            rtt_ms: latency(&s.rtt_us),
            snapshot_interval_ms: latency(&s.snapshot_us),
            down_bytes_per_bot_s: MeanP99 {
                mean: mean(&down),
                p99,
            },
            up_bytes_per_bot_s: Mean { mean: mean(&up) },
            bytes_per_entity_update: Mean {
                mean: {
                    let bytes: u64 = s.traffic.iter().map(|t| t.delta_bytes).sum();
                    let updates: u64 = s.traffic.iter().map(|t| t.entity_updates).sum();
                    if updates == 0 {
                        0.0
                    } else {
                        bytes as f64 / updates as f64
                    }
                },
            },
            visible_entities: MeanMax {
                mean: if s.visible.is_empty() {
                    0.0
                } else {
                    s.visible.mean()
                },
                max: if s.visible.is_empty() {
                    0
                } else {
                    s.visible.max()
                },
            },
            sample_bots: run.sample_bots,
            bots_started: run.bots_started,
            deltas_received: stats.deltas.load(Ordering::Relaxed),
            resumes: stats.resumes.load(Ordering::Relaxed),
            resume_failures: stats.resume_failures.load(Ordering::Relaxed),
            resume_ms: latency(&s.resume_us),
            redirects: stats.redirects.load(Ordering::Relaxed),
            seat_refusals: stats.seat_refusals.load(Ordering::Relaxed),
            join_ms: latency(&s.join_us),
            thresholds: Vec::new(),
            bots_cpu_percent: run.own_cpu_percent,
            server,
        }
    }

    /// Every path a threshold can name: the report's numbers, those that
    /// may be `null` included, sorted; `server.*` too (see
    /// [`Report::needs_admin_url`]). Read off a report with every optional
    /// part present, so a new field is listed without being listed here.
    pub fn threshold_fields() -> Vec<String> {
        let full = Self {
            server: Some(ServerFigures::default()),
            ..Self::default()
        };
        let mut paths = Vec::new();
        if let Ok(json) = serde_json::to_value(&full) {
            number_paths(&json, "", &mut paths);
        }
        paths.sort();
        paths
    }

    /// Whether a report has `path` only with `--admin-url`.
    pub fn needs_admin_url(path: &str) -> bool {
        path.split('.').next() == Some("server")
    }

    /// Evaluates the thresholds against this report and records them.
    pub fn judge(&mut self, config: &SwarmConfig) {
        let json = serde_json::to_value(&*self).unwrap_or_default();
        self.thresholds = config
            .thresholds
            .iter()
            .map(|t| t.evaluate(&json))
            .collect();
    }

    pub fn thresholds_hold(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    /// A summary for people.
    pub fn human(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let lat = |l: &Latency| {
            format!(
                "p50 {} / p95 {} / p99 {} / max {} ms",
                ms(l.p50),
                ms(l.p95),
                ms(l.p99),
                ms(l.max)
            )
        };
        let mut out = format!(
            "scenario {} over {}: {} of {} bots connected at the end (min {} in the window), {:.0} s measured\n\
             errors: {} join failures, {} disconnects, {} decode errors, {} protocol violations ({} sample bots)\n\
             rtt:               {}\n\
             snapshot interval: {}\n\
             down: {:.0} B/s per bot (p99 {:.0}), up: {:.0} B/s per bot, {:.2} B per entity update\n\
             visible entities: mean {:.1}, max {}\n\
             joins: {}\n\
             bots' own cpu: {}%\n",
            self.scenario,
            self.transport,
            self.bots_connected,
            self.bots_target,
            self.bots_connected_min,
            self.duration_s,
            self.join_failures,
            self.disconnects,
            self.decode_errors,
            self.protocol_violations,
            self.sample_bots,
            lat(&self.rtt_ms),
            lat(&self.snapshot_interval_ms),
            self.down_bytes_per_bot_s.mean,
            self.down_bytes_per_bot_s.p99,
            self.up_bytes_per_bot_s.mean,
            self.bytes_per_entity_update.mean,
            self.visible_entities.mean,
            self.visible_entities.max,
            lat(&self.join_ms),
            ms(self.bots_cpu_percent),
        );
        if self.redirects + self.seat_refusals > 0 {
            out += &format!(
                "redirects: {} followed, {} seats refused\n",
                self.redirects, self.seat_refusals
            );
        }
        if self.resumes + self.resume_failures > 0 {
            out += &format!(
                "resumes: {} ({} refused), {}\n",
                self.resumes,
                self.resume_failures,
                lat(&self.resume_ms)
            );
        }
        if let Some(s) = &self.server {
            out += &format!(
                "server: tick {}, {} overruns, cpu {}%, rss {} MB\n",
                lat(&s.tick_ms),
                s.tick_overruns,
                ms(s.cpu_percent),
                ms(s.rss_mb)
            );
        }
        for t in &self.thresholds {
            let value = t
                .value
                .map_or_else(|| "missing".to_owned(), |v| format!("{v:.2}"));
            let verdict = if t.passed { "pass" } else { "FAIL" };
            out += &format!("threshold {verdict}: {} (value {value})\n", t.expr);
        }
        out
    }
}

/// Collects the paths of the numbers (or `null`s) in `value` under `prefix`.
fn number_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            for (name, inner) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                number_paths(inner, &path, out);
            }
        }
        Value::Number(_) | Value::Null => out.push(prefix.to_owned()),
        // Names (scenario, transport) and the thresholds' own results are
        // nothing to compare with a number.
        Value::String(_) | Value::Bool(_) | Value::Array(_) => {}
    }
}

impl Finished {
    fn summary(&self) -> crate::stats::Summary {
        self.stats.summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_fields_are_the_reports_numbers() {
        let fields = Report::threshold_fields();
        for field in [
            "rtt_ms.p99",
            "snapshot_interval_ms.p50",
            "disconnects",
            "bots_cpu_percent",
            "down_bytes_per_bot_s.p99",
            "bytes_per_entity_update.mean",
            "redirects",
            "seat_refusals",
            "join_ms.p99",
            "server.tick_ms.max",
            "server.rss_mb",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
        for not_a_number in ["scenario", "transport", "thresholds", "rtt_ms", "server"] {
            assert!(!fields.iter().any(|f| f == not_a_number), "{not_a_number}");
        }
        assert!(Report::needs_admin_url("server.tick_ms.p99"));
        assert!(!Report::needs_admin_url("rtt_ms.p99"));
    }
}
