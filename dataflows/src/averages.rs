//! `room_averages`: per (room, sensor), the count, sum and mean of every reading applied so far.

use differential_dataflow::operators::CountTotal;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::combine::combine;
use crate::horizon::Time;
use crate::reading::{Name, Reading};
use crate::sum_count::SumCount;

/// The all-time aggregate of one sensor of one room.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoomAverage {
    /// The room.
    pub room: Name,
    /// The sensor.
    pub sensor: Name,
    /// Readings applied.
    pub count: i64,
    /// Their sum, in micro-units.
    pub sum: i128,
}

/// Per (room, sensor), the aggregate of all readings.
///
/// State is one accumulated `SumCount` per key: readings are exploded into their contribution and
/// differential adds contributions as it consolidates them.
pub fn room_averages<'s>(
    readings: VecCollection<'s, Time, Reading>,
) -> VecCollection<'s, Time, RoomAverage> {
    let contributions = readings
        .explode(|reading| Some(((reading.room, reading.sensor), SumCount::of(reading.value))));
    combine(contributions)
        .count_total()
        .map(|((room, sensor), total)| RoomAverage {
            room,
            sensor,
            count: total.count,
            sum: total.sum,
        })
}
