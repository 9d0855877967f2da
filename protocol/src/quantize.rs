//! Quantization helpers: floats in the simulation, small integers on the wire.

/// Maps `value` (world units) to an unsigned 16-bit grid with `steps_per_unit`
/// steps per unit, clamped to the representable range. NaN maps to 0.
pub fn coord_to_u16(value: f32, steps_per_unit: f32) -> u16 {
    let q = (value * steps_per_unit).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(0.0, f32::from(u16::MAX)) as u16
    }
}

/// Inverse of [`coord_to_u16`] (up to half a step of rounding).
pub fn u16_to_coord(q: u16, steps_per_unit: f32) -> f32 {
    f32::from(q) / steps_per_unit
}

/// Maps a component of a unit vector (-1..=1) to an `i8` (-127..=127).
/// NaN maps to 0.
pub fn unit_to_i8(value: f32) -> i8 {
    let q = (value * 127.0).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(-127.0, 127.0) as i8
    }
}

/// Inverse of [`unit_to_i8`].
pub fn i8_to_unit(q: i8) -> f32 {
    f32::from(q.max(-127)) / 127.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coords_clamp_and_round() {
        assert_eq!(coord_to_u16(-5.0, 16.0), 0);
        assert_eq!(coord_to_u16(4096.0, 16.0), u16::MAX);
        assert_eq!(coord_to_u16(1.03, 16.0), 16);
        assert_eq!(coord_to_u16(f32::NAN, 16.0), 0);
        assert!((u16_to_coord(coord_to_u16(1234.56, 16.0), 16.0) - 1234.56).abs() <= 1.0 / 32.0);
    }

    #[test]
    fn units_clamp() {
        assert_eq!(unit_to_i8(2.0), 127);
        assert_eq!(unit_to_i8(-2.0), -127);
        assert_eq!(i8_to_unit(-128), -1.0);
        assert_eq!(unit_to_i8(f32::NAN), 0);
    }
}
