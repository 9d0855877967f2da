//! Giving up early on a server no bot can join, instead of measuring
//! nothing for the whole run.
//!
//! Until the first bot joins, the swarm asks [`FirstJoinWatch`] after every
//! step. It gives up when every bot started so far has failed in a way that
//! will not change (connection refused, TLS, a refusal that is no "retry
//! later"), or when no bot has joined [`FIRST_JOIN_DEADLINE`] after the
//! first one started (a silent port, a server that stays busy), or at the
//! end of the run. Once one bot has joined, failures are measurements, not
//! a reason to stop. Time is passed in, so the rules are tested by hand.

use std::time::{Duration, Instant};

use crate::join::JoinError;

/// How long the first bots may take to join. A server that is up welcomes
/// its first bot in milliseconds, even across the world; five seconds is
/// "a few seconds" to a person waiting, and leaves a server that answers
/// "busy, retry" time to recover.
pub const FIRST_JOIN_DEADLINE: Duration = Duration::from_secs(5);

/// What the bots have done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinProgress {
    /// Bots the swarm has started.
    pub started: u64,
    /// Joins that succeeded.
    pub joined: u64,
    /// Failed joins whose cause [`JoinError::is_definite`].
    pub definite_failures: u64,
    /// The most telling failure so far: the latest definite one, else the
    /// latest.
    pub cause: Option<JoinError>,
}

/// Watches the first joins of a run. See the module documentation.
#[derive(Debug)]
pub struct FirstJoinWatch {
    deadline: Duration,
    first_start: Option<Instant>,
    someone_joined: bool,
}

impl FirstJoinWatch {
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            first_start: None,
            someone_joined: false,
        }
    }

    /// Whether the watch still matters (no bot has joined yet).
    pub fn is_watching(&self) -> bool {
        !self.someone_joined
    }

    /// Why to give up now, if the run should: `run_over` at the end of the
    /// run, when even a slow verdict is due.
    pub fn check(
        &mut self,
        now: Instant,
        progress: &JoinProgress,
        run_over: bool,
    ) -> Option<JoinError> {
        if self.someone_joined || progress.joined > 0 {
            self.someone_joined = true;
            return None;
        }
        if progress.started == 0 {
            return None;
        }
        let first_start = *self.first_start.get_or_insert(now);
        let waited = now.saturating_duration_since(first_start);
        let all_failed_for_good =
            progress.definite_failures > 0 && progress.definite_failures >= progress.started;
        if all_failed_for_good || waited >= self.deadline || run_over {
            return Some(
                progress
                    .cause
                    .clone()
                    .unwrap_or(JoinError::NoAnswer(waited.min(self.deadline))),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::ErrorCode;

    fn refused() -> JoinError {
        JoinError::Connect("Connection refused (os error 111)".into())
    }

    fn progress(started: u64, joined: u64, definite_failures: u64) -> JoinProgress {
        JoinProgress {
            started,
            joined,
            definite_failures,
            cause: (definite_failures > 0).then(refused),
        }
    }

    #[test]
    fn gives_up_once_every_started_bot_failed_for_good() {
        let t0 = Instant::now();
        let mut watch = FirstJoinWatch::new(FIRST_JOIN_DEADLINE);
        assert_eq!(watch.check(t0, &progress(0, 0, 0), false), None);
        assert_eq!(watch.check(t0, &progress(3, 0, 2), false), None);
        assert_eq!(watch.check(t0, &progress(3, 0, 3), false), Some(refused()));
    }

    #[test]
    fn a_joined_bot_disarms_it_for_good() {
        let t0 = Instant::now();
        let mut watch = FirstJoinWatch::new(FIRST_JOIN_DEADLINE);
        assert_eq!(watch.check(t0, &progress(150, 1, 3), false), None);
        assert!(!watch.is_watching());
        // Later failures, even all of them, are measurements.
        let late = t0 + Duration::from_secs(60);
        assert_eq!(watch.check(late, &progress(150, 0, 500), true), None);
    }

    #[test]
    fn silence_and_busy_servers_get_the_deadline_from_the_first_start() {
        let t0 = Instant::now();
        let mut watch = FirstJoinWatch::new(FIRST_JOIN_DEADLINE);
        // The first bot starts late in the run; the deadline counts from it.
        assert_eq!(watch.check(t0, &progress(1, 0, 0), false), None);
        let almost = t0 + FIRST_JOIN_DEADLINE - Duration::from_millis(1);
        assert_eq!(watch.check(almost, &progress(40, 0, 0), false), None);
        assert_eq!(
            watch.check(t0 + FIRST_JOIN_DEADLINE, &progress(50, 0, 0), false),
            Some(JoinError::NoAnswer(FIRST_JOIN_DEADLINE))
        );

        let busy = JoinError::Refused {
            code: ErrorCode::RoomBusy as u16,
            message: "retry".into(),
        };
        let mut watch = FirstJoinWatch::new(FIRST_JOIN_DEADLINE);
        let refused_busy = JoinProgress {
            started: 2,
            joined: 0,
            definite_failures: 0,
            cause: Some(busy.clone()),
        };
        assert_eq!(watch.check(t0, &refused_busy, false), None);
        assert_eq!(
            watch.check(t0 + FIRST_JOIN_DEADLINE, &refused_busy, false),
            Some(busy)
        );
    }

    #[test]
    fn the_end_of_a_short_run_is_a_verdict_too() {
        let t0 = Instant::now();
        let mut watch = FirstJoinWatch::new(FIRST_JOIN_DEADLINE);
        assert_eq!(watch.check(t0, &progress(1, 0, 0), false), None);
        let end = t0 + Duration::from_secs(1);
        assert_eq!(
            watch.check(end, &progress(1, 0, 0), true),
            Some(JoinError::NoAnswer(Duration::from_secs(1)))
        );
    }
}
