//! The server's own figures for the measured window, from the Prometheus
//! text its admin port serves at `/metrics` (`--admin-url`).
//!
//! Two scrapes, at the start and the end of the window; the report shows
//! the difference. Tick percentiles are interpolated within histogram
//! buckets (as Prometheus' `histogram_quantile` does) and the maximum is the
//! upper bound of the highest bucket that filled.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::report::{Latency, ServerFigures};

const TIMEOUT: Duration = Duration::from_secs(5);
const TICK: &str = "tessera_tick_duration_seconds";
const OVERRUNS: &str = "tessera_tick_overruns_total";
const CPU: &str = "tessera_process_cpu_centiseconds_total";
const RSS: &str = "tessera_process_resident_memory_bytes";

/// One scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    at: Option<Instant>,
    /// Cumulative tick histogram: `(upper bound in seconds, count)`.
    tick_buckets: Vec<(f64, f64)>,
    overruns: f64,
    cpu_centiseconds: Option<f64>,
    rss_bytes: Option<f64>,
}

/// GETs `{admin_url}/metrics` and parses it.
pub async fn scrape(admin_url: &str) -> Result<Snapshot, String> {
    let text = tokio::time::timeout(
        TIMEOUT,
        get(&format!("{}/metrics", admin_url.trim_end_matches('/'))),
    )
    .await
    .map_err(|_| format!("{admin_url} did not answer within {TIMEOUT:?}"))??;
    let mut snapshot = parse(&text);
    snapshot.at = Some(Instant::now());
    Ok(snapshot)
}

async fn get(url: &str) -> Result<String, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url}: the admin URL must be http://"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url}: no host"))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::get(uri.path())
        .header(hyper::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
}

/// Reads the few series the report needs; everything else is skipped.
fn parse(text: &str) -> Snapshot {
    let mut s = Snapshot::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            n if n == format!("{TICK}_bucket") => {
                let le = labels
                    .split(',')
                    .find_map(|l| l.trim().strip_prefix("le=\""))
                    .map(|v| v.trim_end_matches(['"', '}']));
                let bound = match le {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => match v.parse() {
                        Ok(b) => b,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                s.tick_buckets.push((bound, value));
            }
            OVERRUNS => s.overruns += value,
            CPU => s.cpu_centiseconds = Some(value),
            RSS => s.rss_bytes = Some(value),
            _ => {}
        }
    }
    s.tick_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}

/// The server's figures between two scrapes.
pub fn between(start: &Snapshot, end: &Snapshot) -> ServerFigures {
    // Per-bucket counts of the window (cumulative at each bound).
    let window: Vec<(f64, f64)> = end
        .tick_buckets
        .iter()
        .map(|(bound, count)| {
            let before = start
                .tick_buckets
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            (*bound, (count - before).max(0.0))
        })
        .collect();
    let total = window.last().map_or(0.0, |(_, c)| *c);
    let ms = |q: f64| quantile(&window, total, q).map(|s| s * 1000.0);
    let max = window
        .iter()
        .scan(0.0, |below, (bound, cumulative)| {
            let filled = *cumulative > *below;
            *below = *cumulative;
            Some((*bound, filled))
        })
        .filter(|(_, filled)| *filled)
        .map(|(bound, _)| bound)
        .last();
    let elapsed = match (start.at, end.at) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let cpu_percent = match (start.cpu_centiseconds, end.cpu_centiseconds) {
        (Some(a), Some(b)) if elapsed > 0.0 => Some((b - a) / 100.0 / elapsed * 100.0),
        _ => None,
    };
    ServerFigures {
        tick_ms: Latency {
            p50: ms(0.50),
            p95: ms(0.95),
            p99: ms(0.99),
            max: max.filter(|b| b.is_finite()).map(|s| s * 1000.0),
        },
        tick_overruns: (end.overruns - start.overruns).max(0.0) as u64,
        cpu_percent,
        rss_mb: end.rss_bytes.map(|b| b / (1024.0 * 1024.0)),
    }
}

/// Quantile `q` of a cumulative histogram, interpolated linearly within the
/// bucket it falls in.
fn quantile(buckets: &[(f64, f64)], total: f64, q: f64) -> Option<f64> {
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, cumulative) in buckets {
        if cumulative >= rank {
            if !bound.is_finite() {
                return Some(lower.0);
            }
            let span = cumulative - lower.1;
            let f = if span > 0.0 {
                (rank - lower.1) / span
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * f);
        }
        lower = (bound, cumulative);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE tessera_tick_duration_seconds histogram
tessera_tick_duration_seconds_bucket{le=\"0.001\"} 10
tessera_tick_duration_seconds_bucket{le=\"0.005\"} 90
tessera_tick_duration_seconds_bucket{le=\"0.01\"} 100
tessera_tick_duration_seconds_bucket{le=\"+Inf\"} 100
tessera_tick_duration_seconds_sum 0.3
tessera_tick_duration_seconds_count 100
tessera_tick_overruns_total 2
tessera_process_cpu_centiseconds_total 150
tessera_process_resident_memory_bytes 104857600
";

    #[test]
    fn reads_the_series_and_takes_differences() {
        let end = parse(TEXT);
        assert_eq!(end.tick_buckets.len(), 4);
        let start = Snapshot {
            overruns: 1.0,
            ..Snapshot::default()
        };
        let f = between(&start, &end);
        let p50 = f.tick_ms.p50.expect("p50");
        assert!((1.0..5.0).contains(&p50), "{p50}");
        assert_eq!(f.tick_ms.max, Some(10.0));
        assert_eq!(f.tick_overruns, 1);
        assert_eq!(f.rss_mb, Some(100.0));
        assert_eq!(f.cpu_percent, None, "no elapsed time between the two");
    }

    #[test]
    fn quantiles_interpolate() {
        let buckets = [(1.0, 50.0), (2.0, 100.0)];
        assert_eq!(quantile(&buckets, 100.0, 0.5), Some(1.0));
        assert_eq!(quantile(&buckets, 100.0, 0.75), Some(1.5));
        assert_eq!(quantile(&buckets, 0.0, 0.5), None);
    }
}
