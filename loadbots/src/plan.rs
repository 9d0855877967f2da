//! The load plan: how many bots should be connected at each moment, and the
//! window in which the report measures.
//!
//! Stages work like k6's: `10s:500` ramps linearly from the previous target
//! (0 at the start) to 500 bots over 10 seconds. After the last stage the
//! target holds; the measured window starts `settle` after that and lasts
//! `duration`.

use std::time::Duration;

/// One ramp: reach `target` bots over `over`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub over: Duration,
    pub target: usize,
}

/// A stage or duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

impl std::str::FromStr for Stage {
    type Err = PlanError;

    /// `DURATION:TARGET`, e.g. `30s:2000`.
    fn from_str(s: &str) -> Result<Self, PlanError> {
        let (over, target) = s.split_once(':').ok_or_else(|| {
            PlanError(format!("stage {s:?} is not DURATION:TARGET (e.g. 10s:500)"))
        })?;
        let target = target
            .trim()
            .parse()
            .map_err(|_| PlanError(format!("stage {s:?}: {target:?} is not a bot count")))?;
        Ok(Self {
            over: parse_duration(over)?,
            target,
        })
    }
}

/// Parses `500ms`, `10s`, `1.5s`, `2m`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, PlanError> {
    let s = s.trim();
    let bad = || PlanError(format!("{s:?} is not a duration (e.g. 500ms, 10s, 2m)"));
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The whole plan of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Pause between the end of the ramp and the measured window.
    pub settle: Duration,
    /// Length of the measured window.
    pub duration: Duration,
}

impl Plan {
    /// Bots that should be connected `elapsed` after the start.
    pub fn target_at(&self, elapsed: Duration) -> usize {
        let mut from = 0usize;
        let mut start = Duration::ZERO;
        for stage in &self.stages {
            let end = start + stage.over;
            if elapsed < end {
                let f = (elapsed - start).as_secs_f64() / stage.over.as_secs_f64().max(1e-9);
                let delta = stage.target as f64 - from as f64;
                return (from as f64 + delta * f).round().max(0.0) as usize;
            }
            from = stage.target;
            start = end;
        }
        from
    }

    /// The largest target of any stage.
    pub fn peak(&self) -> usize {
        self.stages.iter().map(|s| s.target).max().unwrap_or(0)
    }

    /// The target after the last stage.
    pub fn final_target(&self) -> usize {
        self.stages.last().map_or(0, |s| s.target)
    }

    pub fn ramp_end(&self) -> Duration {
        self.stages.iter().map(|s| s.over).sum()
    }

    /// Start and end of the measured window, from the start of the run.
    pub fn window(&self) -> (Duration, Duration) {
        let start = self.ramp_end() + self.settle;
        (start, start + self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(stages: &[&str]) -> Plan {
        Plan {
            stages: stages.iter().map(|s| s.parse().expect("stage")).collect(),
            settle: Duration::from_secs(5),
            duration: Duration::from_secs(30),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn stages_ramp_linearly_and_hold() {
        let p = plan(&["10s:500", "30s:2000", "10s:1000"]);
        assert_eq!(p.target_at(Duration::ZERO), 0);
        assert_eq!(p.target_at(Duration::from_secs(5)), 250);
        assert_eq!(p.target_at(Duration::from_secs(10)), 500);
        assert_eq!(p.target_at(Duration::from_secs(25)), 1250);
        assert_eq!(p.target_at(Duration::from_secs(45)), 1500);
        assert_eq!(p.target_at(Duration::from_secs(500)), 1000);
        assert_eq!((p.peak(), p.final_target()), (2000, 1000));
        assert_eq!(
            p.window(),
            (Duration::from_secs(55), Duration::from_secs(85))
        );
        assert!("10s".parse::<Stage>().is_err());
        assert!("10s:lots".parse::<Stage>().is_err());
    }
}
