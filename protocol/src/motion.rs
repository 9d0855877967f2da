//! The motion component and the prediction its moves are coded against.
//!
//! A game may name one replicated component its *motion component*
//! (`Welcome.motion`): a uint32 packing two unsigned 16-bit axes as
//! `x << 16 | y`, as the arena's position does. A `moved` entry of a delta
//! then carries, instead of the value, its residual against a prediction
//! both ends make alike (`PROTOCOL.md` §6.3): the last value, plus the last
//! step when that step was taken in the tick just before. An entity that
//! walks on in a straight line costs one byte per axis.
//!
//! The server keeps a [`MotionTrack`] per entity, updated at each change;
//! a client keeps one per entity it holds, updated at each value it
//! receives. While the client has received every change, the two agree,
//! and the server encodes each entity's residual once for all such clients.

use crate::error::DecodeError;

/// The two axes of a packed motion value.
pub fn unpack(packed: u32) -> (i32, i32) {
    ((packed >> 16) as i32, (packed & 0xffff) as i32)
}

/// Packs two axes; `None` when either is outside 0…65535.
pub fn pack(x: i32, y: i32) -> Option<u32> {
    let x = u16::try_from(x).ok()?;
    let y = u16::try_from(y).ok()?;
    Some(u32::from(x) << 16 | u32::from(y))
}

/// The last value of an entity's motion component, the one before it and
/// the tick the last one came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotionTrack {
    value: u32,
    previous: u32,
    tick: u32,
}

impl MotionTrack {
    /// An entity first seen at `tick` with `value`: no step yet.
    pub fn new(value: u32, tick: u32) -> Self {
        Self {
            value,
            previous: value,
            tick,
        }
    }

    pub fn value(&self) -> u32 {
        self.value
    }

    /// The value became `value` at `tick` (a move, or an entry that
    /// carries the component).
    pub fn set(&mut self, value: u32, tick: u32) {
        self.previous = self.value;
        self.value = value;
        self.tick = tick;
    }

    /// The value predicted for `tick`, axis by axis: the last value, plus
    /// the last step if the last value came in the tick before.
    pub fn predict(&self, tick: u32) -> (i32, i32) {
        let (x, y) = unpack(self.value);
        if self.tick.wrapping_add(1) != tick {
            return (x, y);
        }
        let (px, py) = unpack(self.previous);
        (2 * x - px, 2 * y - py)
    }

    /// What a move of `tick` must carry for the value to become `value`.
    pub fn residual(&self, tick: u32, value: u32) -> (i32, i32) {
        let (px, py) = self.predict(tick);
        let (x, y) = unpack(value);
        (x - px, y - py)
    }

    /// Applies a move of `tick`; fails, changing nothing, when an axis
    /// lands outside 0…65535.
    pub fn apply(&mut self, tick: u32, dx: i32, dy: i32) -> Result<u32, DecodeError> {
        let (px, py) = self.predict(tick);
        let value = px
            .checked_add(dx)
            .zip(py.checked_add(dy))
            .and_then(|(x, y)| pack(x, y))
            .ok_or(DecodeError::OutOfRange {
                field: "moved position",
            })?;
        self.set(value, tick);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: i32, y: i32) -> u32 {
        pack(x, y).expect("inside the axes")
    }

    #[test]
    fn a_straight_walk_costs_no_residual_after_its_first_step() {
        let mut server = MotionTrack::new(at(107, 97), 1);
        let mut client = server;
        for tick in 2..10 {
            let value = at(100 + 7 * tick, 100 - 3 * tick);
            let (dx, dy) = server.residual(tick as u32, value);
            if tick > 2 {
                assert_eq!((dx, dy), (0, 0), "tick {tick}");
            }
            server.set(value, tick as u32);
            assert_eq!(client.apply(tick as u32, dx, dy), Ok(value));
        }
        assert_eq!(client, server);
    }

    #[test]
    fn a_gap_of_a_tick_predicts_a_standstill() {
        let mut t = MotionTrack::new(at(10, 10), 1);
        t.set(at(20, 15), 2);
        assert_eq!(t.predict(3), (30, 20));
        assert_eq!(t.predict(4), (20, 15));
    }

    #[test]
    fn a_move_off_the_axis_range_is_refused_and_changes_nothing() {
        let mut t = MotionTrack::new(at(65_530, 3), 1);
        let before = t;
        assert!(t.apply(2, 6, 0).is_err());
        assert!(t.apply(2, 0, -4).is_err());
        assert!(t.apply(2, i32::MAX, 0).is_err());
        assert_eq!(t, before);
        assert_eq!(t.apply(2, 5, -3), Ok(at(65_535, 0)));
    }
}
