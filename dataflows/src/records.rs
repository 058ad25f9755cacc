//! The records of the job's output collections: each one's key, its output shape (the JSON every
//! sink writes) and when it can no longer change.

use std::fmt::Debug;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::averages::RoomAverage;
use crate::deltas::TemperatureDelta;
use crate::json::{write_object, WriteJson};
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
    type Key: Clone
        + Ord
        + Hash
        + Debug
        + Serialize
        + serde::de::DeserializeOwned
        + WriteJson
        + Send
        + 'static;
    /// The output shape, with the derived fields (`avg`, `delta`) computed.
    type Json<'a>: Serialize + WriteJson
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
            room: self.room,
            sensor: self.sensor,
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
            room: self.room,
            sensor: self.sensor,
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
            room: self.room,
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

impl WriteJson for RoomSensorKey {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object!(out, "room": str &self.room, "sensor": str &self.sensor);
    }
}

impl WriteJson for RoomAverageJson<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object!(out,
            "room": str self.room,
            "sensor": str self.sensor,
            "count": num self.count,
            "sum": num self.sum,
            "avg": num self.avg,
        );
    }
}

impl WriteJson for WindowKey {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object!(out,
            "room": str &self.room,
            "sensor": str &self.sensor,
            "window_start": num self.window_start,
        );
    }
}

impl WriteJson for WindowAverageJson<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object!(out,
            "room": str self.room,
            "sensor": str self.sensor,
            "window_start": num self.window_start,
            "count": num self.count,
            "sum": num self.sum,
            "avg": num self.avg,
        );
    }
}

impl WriteJson for RoomTimeKey {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object!(out, "room": str &self.room, "ts": num self.ts);
    }
}

impl WriteJson for TemperatureDeltaJson<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object!(out,
            "room": str self.room,
            "ts": num self.ts,
            "prev_ts": num self.prev_ts,
            "value": num self.value,
            "prev_value": num self.prev_value,
            "delta": num self.delta,
        );
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::reading::Fixed;

    /// Names of 0 to 24 characters (inline and heap names) drawn from characters that need
    /// escaping, that do not, and multi-byte ones.
    fn name(rng: &mut SmallRng) -> Name {
        const CHARS: [char; 12] = [
            'a', 'Z', '0', ' ', '"', '\\', '\n', '\u{1}', '\u{7f}', 'é', '🌡', '/',
        ];
        let length = rng.gen_range(0..=24);
        let text: String = (0..length)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())])
            .collect();
        Name::from(text.as_str())
    }

    fn time(rng: &mut SmallRng) -> EventTime {
        match rng.gen_range(0..4) {
            0 => rng.gen(),
            1 => rng.gen_range(-1_000..1_000),
            _ => rng.gen_range(1_600_000_000_000..1_800_000_000_000),
        }
    }

    fn sum(rng: &mut SmallRng) -> i128 {
        match rng.gen_range(0..3) {
            0 => rng.gen::<i64>() as i128 * rng.gen_range(1..1_000_000) as i128,
            1 => rng.gen_range(-1_000_000_000..1_000_000_000),
            _ => 0,
        }
    }

    fn count(rng: &mut SmallRng) -> i64 {
        // 0 gives a NaN average, which serde_json writes as null.
        rng.gen_range(0..5_000_000)
    }

    fn same_as_serde<T: Serialize + WriteJson>(value: &T) {
        let mut out = b"kept".to_vec();
        value.write_json(&mut out);
        let mut expected = b"kept".to_vec();
        serde_json::to_writer(&mut expected, value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn hand_written_json_is_serde_jsons_for_random_records_and_keys() {
        let mut rng = SmallRng::seed_from_u64(17);
        for _ in 0..20_000 {
            let average = RoomAverage {
                room: name(&mut rng),
                sensor: name(&mut rng),
                count: count(&mut rng),
                sum: sum(&mut rng),
            };
            same_as_serde(&average.json());
            same_as_serde(&average.key());
            let window = WindowAverage {
                room: name(&mut rng),
                sensor: name(&mut rng),
                window_start: time(&mut rng),
                count: count(&mut rng),
                sum: sum(&mut rng),
            };
            same_as_serde(&window.json());
            same_as_serde(&window.key());
            let delta = TemperatureDelta {
                room: name(&mut rng),
                ts: time(&mut rng),
                prev_ts: time(&mut rng),
                value: Fixed(rng.gen_range(-1_000_000_000_000..1_000_000_000_000)),
                prev_value: Fixed(rng.gen_range(-1_000_000_000_000..1_000_000_000_000)),
            };
            same_as_serde(&delta.json());
            same_as_serde(&delta.key());
        }
    }
}
