//! Tumbling event-time windows: where a reading's window starts, when a window is sealed, and
//! whether a window is emitted as it changes or once when sealed. `window_averages` itself is
//! computed with the all-time averages, in `averages.rs`.

use serde::{Deserialize, Serialize};

use crate::horizon::{Horizon, Time};
use crate::reading::{EventTime, Name};

/// The aggregate of one sensor of one room over one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
// Aligned to 8, not to the `i128`'s 16: 8 bytes less per aggregate (and per key holding one) at
// a portfolio's size. Fields are read by value (the derives copy them; the type is `Copy`).
#[repr(C, packed(8))]
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

/// When `window_averages` emits a window (`--emit`).
///
/// Both give the same final collection; they differ in how many versions of a window reach the
/// outputs and when. Kafka Streams calls the second "emit final" (KIP-825).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Emit {
    /// Every new version of a window, once per tick in which readings of it arrive: a window is
    /// seen soon, and changes until it is sealed.
    #[default]
    Updates,
    /// One version per window, its final value, at the window's expiry (its end plus the
    /// lateness): never retracted, but seen only once the lateness has passed.
    Final,
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
