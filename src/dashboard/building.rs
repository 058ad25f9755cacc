//! The building as the dashboard holds it: the alpha topic (or a `changes.jsonl`) applied by key,
//! exactly as the README tells consumers to, bounded per room to what the pages show.
//!
//! Applying a change never fails: a message that is not a change envelope of a known collection
//! is counted as malformed, with where it was and why, and the state is left as it was.
//!
//! Everything kept is bounded, whatever the input (`bounds.rs`): a message longer than
//! [`MAX_MESSAGE_BYTES`] is malformed, names longer than the job accepts ([`MAX_NAME_BYTES`]) are
//! malformed, and every text kept to show (errors, reasons, sources, raw lines) is an
//! [`excerpt`]. So is what a page is sent, and what a page that never reads holds (one event at a
//! time).

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use serde_json::Value;

use super::bounds::{excerpt, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_TEXT_BYTES};
use super::rejected::{RejectedInput, RejectedTally};

/// How many malformed messages the dashboard keeps to show (the count has them all).
pub const MALFORMED_KEPT: usize = 20;

/// An average as the collections carry it.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct Average {
    /// Readings in it.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// `sum / count`.
    pub avg: f64,
}

/// One temperature delta: a room's reading at `ts` against its previous one.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct Delta {
    /// The reading's event time (epoch ms).
    pub ts: i64,
    /// The previous reading's event time.
    pub prev_ts: i64,
    /// The reading's value.
    pub value: f64,
    /// The previous reading's value.
    pub prev_value: f64,
    /// `value - prev_value`.
    pub delta: f64,
}

/// One sensor of a room.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sensor {
    /// Its all-time average (`room_averages`), if the key has a value.
    pub all_time: Option<Average>,
    /// Its newest windows (`window_averages`) by window start, at most the retention.
    pub windows: BTreeMap<i64, Average>,
}

/// One room: its sensors, its newest temperature deltas, its rejected inputs.
#[derive(Clone, Debug, Default)]
pub struct Room {
    /// Sensors by name.
    pub sensors: BTreeMap<String, Sensor>,
    /// Its newest temperature deltas by event time, at most the retention.
    pub deltas: BTreeMap<i64, Delta>,
    /// The dataflow time of its newest change (event time, epoch ms): when it was last heard from.
    pub last_heard: Option<i64>,
    /// Its dead letters and late readings: counts and the newest few.
    pub rejected: RejectedTally,
    /// The building's version when this room last changed.
    pub changed: u64,
}

/// A message that was not a change: where it was and what was wrong.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Malformed {
    /// `topic/partition/offset` or `file:line`.
    pub source: String,
    /// What was wrong with it.
    pub error: String,
}

/// The whole building.
#[derive(Debug)]
pub struct Building {
    /// Windows kept per room and sensor, and deltas per room.
    retain: usize,
    /// Rooms by name.
    pub rooms: BTreeMap<String, Room>,
    /// Dead letters and late readings of the whole building.
    pub rejected: RejectedTally,
    /// Messages that were not changes: how many.
    pub malformed: u64,
    /// The newest of them.
    pub malformed_recent: VecDeque<Malformed>,
    /// Changes applied.
    pub applied: u64,
    /// The newest dataflow time of any change: "now" for the building.
    pub newest_time: Option<i64>,
    /// Goes up by one with every message handled; a room's `changed` says when it last did.
    pub version: u64,
    /// Goes up by one when the state starts over (its input was replaced): a page then redraws
    /// every tile instead of patching the changed ones.
    pub generation: u64,
}

/// The envelope, as read; its key and data are typed once the collection is known.
#[derive(Deserialize)]
struct Envelope {
    collection: String,
    operation: Operation,
    key: Value,
    data: Option<Value>,
    time: i64,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Operation {
    Upsert,
    Delete,
}

#[derive(Deserialize)]
struct SensorKey {
    room: String,
    sensor: String,
}

#[derive(Deserialize)]
struct WindowKey {
    room: String,
    sensor: String,
    window_start: i64,
}

#[derive(Deserialize)]
struct DeltaKey {
    room: String,
    ts: i64,
}

/// What one change does, once read.
enum Effect {
    RoomAverage(SensorKey, Option<Average>),
    WindowAverage(WindowKey, Option<Average>),
    TemperatureDelta(DeltaKey, Option<Delta>),
}

impl Building {
    /// An empty building keeping `retain` windows per room and sensor (and deltas per room).
    pub fn new(retain: usize) -> Building {
        Building {
            retain: retain.max(1),
            rooms: BTreeMap::new(),
            rejected: RejectedTally::default(),
            malformed: 0,
            malformed_recent: VecDeque::new(),
            applied: 0,
            newest_time: None,
            version: 0,
            generation: 0,
        }
    }

    /// Forgets everything, to apply an input again from its beginning.
    pub fn reset(&mut self) {
        let (version, generation) = (self.version + 1, self.generation + 1);
        *self = Building::new(self.retain);
        self.version = version;
        self.generation = generation;
    }

    /// How many windows (and deltas) are kept.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// Applies one alpha message (its value, the change envelope) read at `source`.
    pub fn apply(&mut self, source: &str, bytes: &[u8]) {
        self.version += 1;
        if bytes.len() > MAX_MESSAGE_BYTES {
            let error = format!(
                "a message of {} bytes is longer than the {MAX_MESSAGE_BYTES} allowed",
                bytes.len()
            );
            return self.malformed(source, error);
        }
        match read_change(bytes) {
            Ok((effect, time)) => {
                self.applied += 1;
                self.newest_time = Some(self.newest_time.map_or(time, |newest| newest.max(time)));
                self.apply_effect(effect, time);
            }
            Err(error) => self.malformed(source, error),
        }
    }

    /// Counts a rejected input (a dead letter or a late reading), in its room when it names one.
    pub fn reject(&mut self, input: RejectedInput) {
        self.version += 1;
        let input = input.bounded();
        self.rejected.count(&input);
        if let Some(room) = &input.room {
            let version = self.version;
            let room = self.rooms.entry(room.clone()).or_default();
            room.changed = version;
            room.rejected.count(&input);
            room.rejected.keep(input.clone());
        }
        self.rejected.keep(input);
    }

    /// Records a message that is not a change.
    pub fn malformed(&mut self, source: &str, error: String) {
        self.malformed += 1;
        if self.malformed_recent.len() == MALFORMED_KEPT {
            self.malformed_recent.pop_front();
        }
        self.malformed_recent.push_back(Malformed {
            source: excerpt(source, MAX_TEXT_BYTES),
            error: excerpt(&error, MAX_TEXT_BYTES),
        });
    }

    fn apply_effect(&mut self, effect: Effect, time: i64) {
        let retain = self.retain;
        let version = self.version;
        let room_name = match &effect {
            Effect::RoomAverage(key, _) => &key.room,
            Effect::WindowAverage(key, _) => &key.room,
            Effect::TemperatureDelta(key, _) => &key.room,
        };
        // A delete of a key this dashboard never held creates no room.
        let is_delete = matches!(
            &effect,
            Effect::RoomAverage(_, None)
                | Effect::WindowAverage(_, None)
                | Effect::TemperatureDelta(_, None)
        );
        let room = match self.rooms.get_mut(room_name.as_str()) {
            Some(room) => room,
            None if is_delete => return,
            None => self.rooms.entry(room_name.clone()).or_default(),
        };
        room.changed = version;
        room.last_heard = Some(room.last_heard.map_or(time, |last| last.max(time)));
        match effect {
            Effect::RoomAverage(key, value) => {
                let sensor = room.sensors.entry(key.sensor).or_default();
                sensor.all_time = value;
            }
            Effect::WindowAverage(key, value) => {
                let sensor = room.sensors.entry(key.sensor).or_default();
                match value {
                    Some(average) => {
                        keep_newest(&mut sensor.windows, key.window_start, average, retain)
                    }
                    None => {
                        sensor.windows.remove(&key.window_start);
                    }
                }
            }
            Effect::TemperatureDelta(key, value) => match value {
                Some(delta) => keep_newest(&mut room.deltas, key.ts, delta, retain),
                None => {
                    room.deltas.remove(&key.ts);
                }
            },
        }
    }
}

/// Inserts `value` at `at`, then drops the oldest entries beyond `retain`: a value older than
/// every kept one, when the map is full, is not kept at all.
fn keep_newest<V>(map: &mut BTreeMap<i64, V>, at: i64, value: V, retain: usize) {
    map.insert(at, value);
    while map.len() > retain {
        map.pop_first();
    }
}

/// Reads one change envelope: what it does and its dataflow time, or why it is not a change.
fn read_change(bytes: &[u8]) -> Result<(Effect, i64), String> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a change envelope: {error}"))?;
    let data = match (envelope.operation, envelope.data) {
        (Operation::Upsert, Some(data)) if !data.is_null() => Some(data),
        (Operation::Upsert, _) => return Err("an upsert without data".into()),
        (Operation::Delete, _) => None,
    };
    let key = envelope.key;
    let effect = match envelope.collection.as_str() {
        "room_averages" => Effect::RoomAverage(typed(key, "key")?, typed_data(data)?),
        "window_averages" => Effect::WindowAverage(typed(key, "key")?, typed_data(data)?),
        "temperature_deltas" => Effect::TemperatureDelta(typed(key, "key")?, typed_data(data)?),
        other => {
            return Err(format!(
                "unknown collection `{}`",
                excerpt(other, MAX_NAME_BYTES)
            ))
        }
    };
    let (room, sensor) = match &effect {
        Effect::RoomAverage(key, _) => (&key.room, Some(&key.sensor)),
        Effect::WindowAverage(key, _) => (&key.room, Some(&key.sensor)),
        Effect::TemperatureDelta(key, _) => (&key.room, None),
    };
    for (what, name) in [("room", Some(room)), ("sensor", sensor)] {
        let length = name.map_or(0, String::len);
        if length > MAX_NAME_BYTES {
            return Err(format!(
                "its {what} name of {length} bytes is longer than the {MAX_NAME_BYTES} allowed"
            ));
        }
    }
    Ok((effect, envelope.time))
}

fn typed<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value).map_err(|error| format!("its {what}: {error}"))
}

fn typed_data<T: serde::de::DeserializeOwned>(data: Option<Value>) -> Result<Option<T>, String> {
    data.map(|data| typed(data, "data")).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room_average(room: &str, sensor: &str, count: u64, sum: f64, time: i64) -> String {
        format!(
            r#"{{"collection":"room_averages","operation":"upsert","key":{{"room":"{room}","sensor":"{sensor}"}},"data":{{"room":"{room}","sensor":"{sensor}","count":{count},"sum":{sum},"avg":{}}},"time":{time}}}"#,
            sum / count as f64
        )
    }

    fn window(room: &str, start: i64, count: u64, sum: f64, time: i64) -> String {
        format!(
            r#"{{"collection":"window_averages","operation":"upsert","key":{{"room":"{room}","sensor":"co2","window_start":{start}}},"data":{{"room":"{room}","sensor":"co2","window_start":{start},"count":{count},"sum":{sum},"avg":{}}},"time":{time}}}"#,
            sum / count as f64
        )
    }

    #[test]
    fn upserts_replace_and_deletes_remove_by_key() {
        let mut building = Building::new(10);
        building.apply(
            "f:1",
            room_average("413", "co2", 2, 900.0, 1_000).as_bytes(),
        );
        building.apply(
            "f:2",
            room_average("413", "co2", 3, 1_380.0, 2_000).as_bytes(),
        );
        let sensor = &building.rooms["413"].sensors["co2"];
        // The second upsert is the key's whole new value: 1380 / 3.
        assert_eq!(
            sensor.all_time,
            Some(Average {
                count: 3,
                sum: 1_380.0,
                avg: 460.0
            })
        );
        assert_eq!(building.rooms["413"].last_heard, Some(2_000));
        building.apply(
            "f:3",
            br#"{"collection":"room_averages","operation":"delete","key":{"room":"413","sensor":"co2"},"data":null,"time":3000}"#,
        );
        assert_eq!(building.rooms["413"].sensors["co2"].all_time, None);
        assert_eq!((building.applied, building.malformed), (3, 0));
        assert_eq!(building.newest_time, Some(3_000));
    }

    #[test]
    fn only_the_newest_windows_are_kept() {
        let mut building = Building::new(2);
        for start in [60_000, 0, 120_000, 180_000] {
            building.apply("f", window("1", start, 1, 400.0, start).as_bytes());
        }
        // A window older than both kept ones, arriving late, is not kept either.
        building.apply("f", window("1", 30_000, 1, 400.0, 200_000).as_bytes());
        let windows = &building.rooms["1"].sensors["co2"].windows;
        assert_eq!(
            windows.keys().copied().collect::<Vec<_>>(),
            [120_000, 180_000]
        );
    }

    #[test]
    fn deltas_are_kept_newest_first_and_retracted_by_key() {
        let mut building = Building::new(2);
        let delta = |ts: i64, prev_ts: i64, value: f64, prev: f64| {
            format!(
                r#"{{"collection":"temperature_deltas","operation":"upsert","key":{{"room":"7","ts":{ts}}},"data":{{"room":"7","ts":{ts},"prev_ts":{prev_ts},"value":{value},"prev_value":{prev},"delta":{}}},"time":{ts}}}"#,
                value - prev
            )
        };
        building.apply("f", delta(2_000, 1_000, 21.5, 21.0).as_bytes());
        building.apply("f", delta(3_000, 2_000, 21.25, 21.5).as_bytes());
        building.apply(
            "f",
            br#"{"collection":"temperature_deltas","operation":"delete","key":{"room":"7","ts":3000},"data":null,"time":3000}"#,
        );
        let deltas = &building.rooms["7"].deltas;
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[&2_000].delta, 0.5);
    }

    #[test]
    fn anything_else_is_counted_as_malformed_and_changes_nothing() {
        let mut building = Building::new(5);
        let inputs: [&[u8]; 5] = [
            b"not json",
            br#"{"collection":"rooms","operation":"upsert","key":{},"data":{},"time":1}"#,
            br#"{"collection":"room_averages","operation":"upsert","key":{"room":"1"},"data":{"count":1,"sum":1,"avg":1},"time":1}"#,
            br#"{"collection":"room_averages","operation":"upsert","key":{"room":"1","sensor":"x"},"data":null,"time":1}"#,
            b"\xff\xfe",
        ];
        for (offset, input) in inputs.iter().enumerate() {
            building.apply(&format!("alpha/0/{offset}"), input);
        }
        assert_eq!((building.applied, building.malformed), (0, 5));
        assert!(building.rooms.is_empty());
        assert_eq!(building.malformed_recent[1].source, "alpha/0/1");
        assert_eq!(
            building.malformed_recent[1].error,
            "unknown collection `rooms`"
        );
        assert!(building.malformed_recent[2]
            .error
            .contains("missing field `sensor`"));
    }

    #[test]
    fn a_delete_of_an_unknown_room_creates_none() {
        let mut building = Building::new(5);
        building.apply(
            "f",
            br#"{"collection":"window_averages","operation":"delete","key":{"room":"9","sensor":"co2","window_start":0},"data":null,"time":5}"#,
        );
        assert!(building.rooms.is_empty());
        assert_eq!(building.applied, 1);
    }
}
