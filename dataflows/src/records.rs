//! The records of the job's output collections: each one's key, its output shape (the JSON every
//! sink writes) and when it can no longer change.

use std::fmt::Debug;
use std::hash::Hash;

use serde::Serialize;

use crate::averages::RoomAverage;
use crate::deltas::TemperatureDelta;
use crate::reading::{mean_to_f64, sum_to_f64, EventTime, Name};
use crate::windows::{WindowAverage, Windows};

/// A record of an output collection: it has a key, an output shape, and (perhaps) a point after
/// which it can no longer change.
///
/// The key's fields come first in the record's field order, so that records of one key are
/// adjacent once updates are sorted.
pub trait Record: differential_dataflow::ExchangeData + Hash {
    /// The collection's name, as written in outputs.
    const COLLECTION: &'static str;
    /// The key: one value per key at any time.
    type Key: Clone + Ord + Hash + Debug + Serialize + Send + 'static;
    /// The output shape, with the derived fields (`avg`, `delta`) computed.
    type Json<'a>: Serialize
    where
        Self: 'a;
    /// This record's key.
    fn key(&self) -> Self::Key;
    /// This record in its output shape.
    fn json(&self) -> Self::Json<'_>;
    /// The event time before which everything must be settled for this record to be final
    /// (see `Horizon::settled_before`), or `None` if it may change as long as input comes.
    fn settles_at(&self, windows: &Windows) -> Option<EventTime>;
}

/// Key of `room_averages`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RoomSensorKey {
    /// The room.
    pub room: Name,
    /// The sensor.
    pub sensor: Name,
}

/// Output shape of a `room_averages` record.
#[derive(Serialize)]
pub struct RoomAverageJson<'a> {
    room: &'a str,
    sensor: &'a str,
    count: i64,
    sum: f64,
    avg: f64,
}

impl Record for RoomAverage {
    const COLLECTION: &'static str = "room_averages";
    type Key = RoomSensorKey;
    type Json<'a> = RoomAverageJson<'a>;
    fn key(&self) -> RoomSensorKey {
        RoomSensorKey {
            room: self.room.clone(),
            sensor: self.sensor.clone(),
        }
    }
    fn json(&self) -> RoomAverageJson<'_> {
        RoomAverageJson {
            room: &self.room,
            sensor: &self.sensor,
            count: self.count,
            sum: sum_to_f64(self.sum),
            avg: mean_to_f64(self.sum, self.count),
        }
    }
    fn settles_at(&self, _: &Windows) -> Option<EventTime> {
        None
    }
}

/// Key of `window_averages`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WindowKey {
    /// The room.
    pub room: Name,
    /// The sensor.
    pub sensor: Name,
    /// Window start, epoch ms.
    pub window_start: EventTime,
}

/// Output shape of a `window_averages` record.
#[derive(Serialize)]
pub struct WindowAverageJson<'a> {
    room: &'a str,
    sensor: &'a str,
    window_start: EventTime,
    count: i64,
    sum: f64,
    avg: f64,
}

impl Record for WindowAverage {
    const COLLECTION: &'static str = "window_averages";
    type Key = WindowKey;
    type Json<'a> = WindowAverageJson<'a>;
    fn key(&self) -> WindowKey {
        WindowKey {
            room: self.room.clone(),
            sensor: self.sensor.clone(),
            window_start: self.window_start,
        }
    }
    fn json(&self) -> WindowAverageJson<'_> {
        WindowAverageJson {
            room: &self.room,
            sensor: &self.sensor,
            window_start: self.window_start,
            count: self.count,
            sum: sum_to_f64(self.sum),
            avg: mean_to_f64(self.sum, self.count),
        }
    }
    fn settles_at(&self, windows: &Windows) -> Option<EventTime> {
        Some(self.window_start.saturating_add(windows.length_ms))
    }
}

/// Key of `temperature_deltas`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RoomTimeKey {
    /// The room.
    pub room: Name,
    /// Event time of the reading, epoch ms.
    pub ts: EventTime,
}

/// Output shape of a `temperature_deltas` record.
#[derive(Serialize)]
pub struct TemperatureDeltaJson<'a> {
    room: &'a str,
    ts: EventTime,
    prev_ts: EventTime,
    value: f64,
    prev_value: f64,
    delta: f64,
}

impl Record for TemperatureDelta {
    const COLLECTION: &'static str = "temperature_deltas";
    type Key = RoomTimeKey;
    type Json<'a> = TemperatureDeltaJson<'a>;
    fn key(&self) -> RoomTimeKey {
        RoomTimeKey {
            room: self.room.clone(),
            ts: self.ts,
        }
    }
    fn json(&self) -> TemperatureDeltaJson<'_> {
        TemperatureDeltaJson {
            room: &self.room,
            ts: self.ts,
            prev_ts: self.prev_ts,
            value: self.value.to_f64(),
            prev_value: self.prev_value.to_f64(),
            delta: self.delta().to_f64(),
        }
    }
    fn settles_at(&self, _: &Windows) -> Option<EventTime> {
        // No reading at or before `ts` can arrive once `ts` is settled.
        Some(self.ts.saturating_add(1))
    }
}
