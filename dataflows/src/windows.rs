//! Tumbling event-time windows: where a reading's window starts, and when a window is sealed.
//! `window_averages` itself is computed with the all-time averages, in `averages.rs`.

use serde::{Deserialize, Serialize};

use crate::horizon::{Horizon, Time};
use crate::reading::{EventTime, Name};

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
