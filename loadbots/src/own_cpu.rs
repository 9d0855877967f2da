//! The load generator's own CPU use over the measured window. A report whose
//! bots were near a full core measured the bots as much as the server, so
//! it says so (`bots_cpu_percent`).

use std::time::{Duration, Instant};

/// Linux reports process times in clock ticks of this many per second
/// (`USER_HZ`, 100 on every architecture Linux runs on).
const USER_HZ: f64 = 100.0;

/// This process's CPU time (user + system) at a moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    cpu: Duration,
}

impl CpuSample {
    /// Reads `/proc/self/stat`; `None` where there is no such file.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(Self {
            at: Instant::now(),
            cpu: cpu_time(&stat)?,
        })
    }

    /// CPU used between `self` and `later`, in percent of one core.
    pub fn percent_until(&self, later: &Self) -> Option<f64> {
        let wall = later.at.checked_duration_since(self.at)?.as_secs_f64();
        let cpu = later.cpu.checked_sub(self.cpu)?.as_secs_f64();
        (wall > 0.0).then(|| 100.0 * cpu / wall)
    }
}

/// User plus system time from the text of `/proc/<pid>/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// from its closing parenthesis: utime and stime are the 12th and 13th
/// after it.
fn cpu_time(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_past_an_awkward_name() {
        let stat = "4242 (tessera bots) (x)) S 1 4242 4242 0 -1 4194560 \
                    2051 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        assert_eq!(cpu_time(stat), Some(Duration::from_millis(3250)));
        assert_eq!(cpu_time("4242 (short) S 1"), None);
        assert_eq!(cpu_time("garbage"), None);
    }

    #[test]
    fn percent_of_one_core() {
        let start = CpuSample {
            at: Instant::now(),
            cpu: Duration::from_secs(1),
        };
        let end = CpuSample {
            at: start.at + Duration::from_secs(4),
            cpu: Duration::from_secs(3),
        };
        assert_eq!(start.percent_until(&end), Some(50.0));
        assert_eq!(end.percent_until(&start), None, "time runs forwards");
    }

    #[test]
    fn this_process_can_be_read_on_linux() {
        if cfg!(target_os = "linux") {
            let sample = CpuSample::now().expect("/proc/self/stat");
            assert!(sample.cpu < Duration::from_secs(24 * 3600));
        }
    }
}
