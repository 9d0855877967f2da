//! What each bot does: which way it walks.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg32;
use tessera_protocol::arena::{WORLD_SIZE, Walk};

/// Built-in scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Bots spread over the whole arena, each walking in a direction it
    /// re-draws at a random angle every 2 s.
    Crowd,
    /// Every bot steers into one 400 x 400 area in the middle of the world:
    /// the worst case for interest management.
    Hotspot,
    /// The crowd, while bots keep leaving and joining again.
    Churn,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Crowd => "crowd",
            Self::Hotspot => "hotspot",
            Self::Churn => "churn",
        }
    }
}

/// Inputs per direction re-draw: 2 s at 10 inputs per second.
const REDRAW_EVERY: u64 = 20;
/// Side of the hotspot square.
const HOTSPOT: f32 = 400.0;

/// One bot's steering, seeded per bot so runs repeat.
#[derive(Debug)]
pub struct Steering {
    scenario: Scenario,
    rng: Pcg32,
    /// Inputs sent so far.
    inputs: u64,
    /// The input at which the direction is next re-drawn.
    next_redraw: u64,
    direction: (f32, f32),
    /// Hotspot scenario: the point inside the hotspot the bot heads for.
    goal: (f32, f32),
}

impl Steering {
    pub fn new(scenario: Scenario, seed: u64, bot: u64) -> Self {
        let mut rng = Pcg32::seed_from_u64(seed ^ bot.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut s = Self {
            scenario,
            next_redraw: rng.random_range(0..REDRAW_EVERY),
            direction: (0.0, 0.0),
            goal: (0.0, 0.0),
            inputs: 0,
            rng,
        };
        s.redraw();
        s
    }

    fn redraw(&mut self) {
        let angle = self.rng.random_range(0.0..std::f32::consts::TAU);
        self.direction = (angle.cos(), angle.sin());
        let low = (WORLD_SIZE - HOTSPOT) / 2.0;
        self.goal = (
            low + self.rng.random_range(0.0..HOTSPOT),
            low + self.rng.random_range(0.0..HOTSPOT),
        );
    }

    /// The intent for the next input, given where the bot is (if known).
    pub fn next(&mut self, position: Option<(f32, f32)>) -> Walk {
        if self.inputs == self.next_redraw {
            self.redraw();
            self.next_redraw += REDRAW_EVERY;
        }
        self.inputs += 1;
        let (dx, dy) = match (self.scenario, position) {
            (Scenario::Hotspot, Some((x, y))) => {
                let (gx, gy) = (self.goal.0 - x, self.goal.1 - y);
                let len = (gx * gx + gy * gy).sqrt();
                if len < 1.0 {
                    (0.0, 0.0)
                } else {
                    (gx / len, gy / len)
                }
            }
            _ => self.direction,
        };
        Walk::from_direction(dx, dy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowd_redraws_every_two_seconds_at_its_own_phase() {
        let mut s = Steering::new(Scenario::Crowd, 1, 7);
        let first_redraw = s.next_redraw;
        let walks: Vec<Walk> = (0..60).map(|_| s.next(None)).collect();
        let changes = walks.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            (2..=3).contains(&changes),
            "{changes} direction changes in 6 s"
        );
        assert!(first_redraw < REDRAW_EVERY);
        // Same seed and bot, same walk.
        let mut again = Steering::new(Scenario::Crowd, 1, 7);
        assert_eq!((0..60).map(|_| again.next(None)).collect::<Vec<_>>(), walks);
    }

    #[test]
    fn hotspot_steers_towards_the_middle() {
        let mut s = Steering::new(Scenario::Hotspot, 3, 1);
        let w = s.next(Some((10.0, 10.0)));
        assert!(w.dx > 0 && w.dy > 0, "{w:?}");
        let w = s.next(Some((4000.0, 4000.0)));
        assert!(w.dx < 0 && w.dy < 0, "{w:?}");
    }
}
