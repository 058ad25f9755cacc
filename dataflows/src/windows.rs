//! `window_averages`: per (room, sensor, tumbling event-time window), count, sum and mean.
//!
//! Each reading contributes to its window twice: once now, and once negated at the window's
//! *expiry*, the first dataflow time at which the window can no longer change (its end plus the
//! lateness). The negation empties the window's accumulation, so differential compacts its state
//! away; the retraction that `count_total` then reports is filtered out, because it says "sealed",
//! not "deleted". State is thus proportional to the windows inside the lateness horizon, and every
//! sealed window keeps its final value in the output.

use differential_dataflow::operators::CountTotal;
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Filter;

use crate::combine::combine;
use crate::horizon::{Horizon, Time};
use crate::reading::{EventTime, Name, Reading};
use crate::sum_count::SumCount;

/// The aggregate of one sensor of one room over one window.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowAverage {
    /// The room.
    pub room: Name,
    /// The sensor.
    pub sensor: Name,
    /// Start of the window, epoch ms (inclusive); the window ends at start + window length.
    pub window_start: EventTime,
    /// Readings applied.
    pub count: i64,
    /// Their sum, in micro-units.
    pub sum: i128,
}

/// Tumbling windows of a fixed length, aligned to the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Window length in milliseconds.
    pub length_ms: i64,
    /// The lateness horizon that decides when a window is sealed.
    pub horizon: Horizon,
}

impl Windows {
    /// The start of the window holding event time `ts`.
    pub fn start_of(&self, ts: EventTime) -> EventTime {
        ts - ts.rem_euclid(self.length_ms)
    }

    /// The dataflow time at which the window starting at `start` is sealed.
    pub fn expiry(&self, start: EventTime) -> Time {
        self.horizon
            .stamp_at_or_after(start + self.length_ms + self.horizon.lateness_ms)
    }

    /// Whether the window starting at `start` can still change once everything before
    /// `settled_before` is settled (see [`Horizon::settled_before`]).
    pub fn is_sealed(&self, start: EventTime, settled_before: EventTime) -> bool {
        start.saturating_add(self.length_ms) <= settled_before
    }
}

/// Per (room, sensor, window), the aggregate of the readings in that window.
pub fn window_averages<'s>(
    readings: VecCollection<'s, Time, Reading>,
    windows: Windows,
) -> VecCollection<'s, Time, WindowAverage> {
    let contributions = readings.join_function(move |reading| {
        let start = windows.start_of(reading.ts);
        let contribution = SumCount::of(reading.value);
        let key = (reading.room, reading.sensor, start);
        // A time of 0 joined with the update's own time leaves that time unchanged.
        [
            (key.clone(), 0, contribution),
            (key, windows.expiry(start), contribution.negated()),
        ]
    });
    combine(contributions)
        .count_total()
        .inner
        .filter(move |(((_, _, start), _), time, _)| *time < windows.expiry(*start))
        .as_collection()
        .map(|((room, sensor, window_start), total)| WindowAverage {
            room,
            sensor,
            window_start,
            count: total.count,
            sum: total.sum,
        })
}
