//! `SumCount`: the difference type that lets differential accumulate sums and counts per key.
//!
//! Exploding a reading into `(key, SumCount { sum: value, count: 1 })` makes differential add
//! readings up as it consolidates, so an aggregate costs state per key, not per reading.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use serde::{Deserialize, Serialize};

use crate::reading::Fixed;

/// A sum of fixed-point values and how many values were added.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
// Aligned to 8, not to the `i128`'s 16: 8 bytes less per aggregate (and per key holding one) at
// a portfolio's size. Fields are read by value (the derives copy them; the type is `Copy`).
#[repr(C, packed(8))]
pub struct SumCount {
    /// Sum in micro-units; `i128` so that no realistic stream overflows it.
    pub sum: i128,
    /// Number of values.
    pub count: i64,
}

impl SumCount {
    /// The contribution of one value.
    pub fn of(value: Fixed) -> SumCount {
        SumCount {
            sum: value.0 as i128,
            count: 1,
        }
    }

    /// The contribution that cancels this one.
    pub fn negated(mut self) -> SumCount {
        self.negate();
        self
    }
}

impl IsZero for SumCount {
    fn is_zero(&self) -> bool {
        self.sum == 0 && self.count == 0
    }
}

impl Semigroup for SumCount {
    fn plus_equals(&mut self, rhs: &Self) {
        self.sum += rhs.sum;
        self.count += rhs.count;
    }
}

impl Monoid for SumCount {
    fn zero() -> Self {
        SumCount::default()
    }
}

impl Abelian for SumCount {
    fn negate(&mut self) {
        self.sum = -self.sum;
        self.count = -self.count;
    }
}

impl Multiply<isize> for SumCount {
    type Output = SumCount;
    fn multiply(self, rhs: &isize) -> SumCount {
        SumCount {
            sum: self.sum * *rhs as i128,
            count: self.count * *rhs as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_and_cancels() {
        let mut total = SumCount::of(Fixed(1_500_000));
        total.plus_equals(&SumCount::of(Fixed(2_500_000)).multiply(&2));
        assert_eq!(
            total,
            SumCount {
                sum: 6_500_000,
                count: 3
            }
        );
        total.plus_equals(&total.negated());
        assert!(total.is_zero());
    }
}

#[cfg(test)]
mod sizes {
    use super::*;
    use crate::{RoomAverage, WindowAverage};

    #[test]
    fn aggregates_are_as_small_as_their_fields() {
        // The sizes the memory model of docs/performance.md counts with.
        assert_eq!(std::mem::size_of::<SumCount>(), 24);
        assert_eq!(std::mem::size_of::<RoomAverage>(), 32);
        assert_eq!(std::mem::size_of::<WindowAverage>(), 40);
        assert_eq!(std::mem::align_of::<WindowAverage>(), 8);
    }
}
