//! The reading: one sensor value of one room at one instant, with an exact fixed-point value.
//!
//! `f64` is not `Ord`, and sums of floats depend on the order they are added in, which would make
//! results depend on the number of workers. Values therefore travel through the dataflow as
//! integers of micro-units ([`Fixed`]) and are divided only when an output is written.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Event time: milliseconds since the Unix epoch.
pub type EventTime = i64;

pub use crate::name::Name;

/// A value in micro-units (value × 1,000,000), exact and totally ordered.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Fixed(pub i64);

impl Fixed {
    /// Micro-units per unit.
    pub const SCALE: i64 = 1_000_000;
    /// Decimal digits of [`Fixed::SCALE`]: units are millionths.
    pub const SCALE_DIGITS: u32 = 6;

    /// The largest magnitude, in units, that a value may have: about 2.25 billion. Up to it, a
    /// value written as a double (the JSON outputs, alpha) reads back as the same units (the
    /// double times 10^6 is within units * 2^-52 < 0.5 of them); beyond it, not always. No
    /// sensor reads that much: larger values are refused as out of range.
    pub const MAX_UNITS: i64 = 1 << 51;

    /// The fixed-point value nearest to `value`, or `None` if it is not finite or its magnitude
    /// is over [`Fixed::MAX_UNITS`].
    ///
    /// Values are rounded to six decimals; every sensor value of the recorded data sets has at
    /// most four.
    pub fn from_f64(value: f64) -> Option<Fixed> {
        if !value.is_finite() {
            return None;
        }
        let scaled = (value * Self::SCALE as f64).round();
        if scaled.abs() > Self::MAX_UNITS as f64 {
            return None;
        }
        Some(Fixed(scaled as i64))
    }

    /// The value as a float, for output.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_f64())
    }
}

/// A sum of fixed-point values, divided back into units for output.
pub fn sum_to_f64(sum: i128) -> f64 {
    // Split to keep the integer part exact even for sums beyond 2^53 micro-units.
    let scale = Fixed::SCALE as i128;
    (sum / scale) as f64 + (sum % scale) as f64 / scale as f64
}

/// The mean of `count` values whose sum is `sum` micro-units.
pub fn mean_to_f64(sum: i128, count: i64) -> f64 {
    if count == 0 {
        return f64::NAN;
    }
    sum as f64 / count as f64 / Fixed::SCALE as f64
}

/// One sensor reading, the unit of input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reading {
    /// The room the sensor is in.
    pub room: Name,
    /// What the sensor measures: `temperature`, `humidity`, `co2`, `light`, ...
    pub sensor: Name,
    /// When it was measured, epoch milliseconds.
    pub ts: EventTime,
    /// The measured value.
    pub value: Fixed,
}

impl Reading {
    /// The sensor name whose readings feed `temperature_deltas`.
    pub const TEMPERATURE: &'static str = "temperature";

    /// Whether this reading is a temperature.
    pub fn is_temperature(&self) -> bool {
        self.sensor == Self::TEMPERATURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_is_exact_for_recorded_precision() {
        assert_eq!(Fixed::from_f64(23.93), Some(Fixed(23_930_000)));
        assert_eq!(Fixed::from_f64(20.5666), Some(Fixed(20_566_600)));
        assert_eq!(Fixed::from_f64(-8983.0), Some(Fixed(-8_983_000_000)));
        assert_eq!(Fixed::from_f64(f64::NAN), None);
        assert_eq!(Fixed::from_f64(f64::INFINITY), None);
        assert_eq!(Fixed::from_f64(1e300), None);
    }

    /// Every value a reading may have survives the outputs: written as its double (as the JSON
    /// outputs and alpha write it) and read back, the same units. Found by the line_formats
    /// fuzz target: 3,772,913,729,908 did not (it came back 512 units off), and is now refused.
    #[test]
    fn values_survive_their_double_and_larger_ones_are_refused() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(23);
        let round_trip = |units: i64| {
            let text = serde_json::to_string(&Fixed(units).to_f64()).unwrap();
            Fixed::from_f64(text.parse().unwrap())
        };
        for _ in 0..200_000 {
            let magnitude = rng.gen_range(0..=51);
            let units = rng.gen_range(0..=(1i64 << magnitude)) * if rng.gen() { 1 } else { -1 };
            assert_eq!(round_trip(units), Some(Fixed(units)), "{units}");
        }
        for units in [Fixed::MAX_UNITS, -Fixed::MAX_UNITS, Fixed::MAX_UNITS - 1] {
            assert_eq!(round_trip(units), Some(Fixed(units)), "{units}");
        }
        assert_eq!(Fixed::from_f64(3_772_913_729_908.0), None);
        assert_eq!(Fixed::from_f64(2_251_799_813.685_249), None);
    }

    #[test]
    fn sums_and_means_divide_back() {
        // 23.93 + 23.94 = 47.87; mean 23.935
        let sum = 23_930_000i128 + 23_940_000;
        assert_eq!(sum_to_f64(sum), 47.87);
        assert!((mean_to_f64(sum, 2) - 23.935).abs() < 1e-12);
        assert!(mean_to_f64(0, 0).is_nan());
    }
}
