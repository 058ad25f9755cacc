//! The change envelope every sink writes, and how differential updates become key-level changes.
//!
//! A collection changes at a dataflow time by a set of `(record, ±1)` updates. Downstream stores
//! (files, the alpha topic, MongoDB) hold one value per key, so the updates of one time are turned
//! into per-key operations: `upsert` with the key's new record, or `delete` when the key's only
//! update is a retraction.

use std::fmt::Debug;
use std::hash::Hash;

use differential_dataflow::consolidation::consolidate;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::hash_map::Entry;

use crate::averages::RoomAverage;
use crate::deltas::TemperatureDelta;
use crate::horizon::Time;
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

/// What happened to one key at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChange<R: Record> {
    /// The key now holds this record.
    Upsert(R),
    /// The key holds nothing any more.
    Delete(R::Key),
}

/// Turns the updates of one time into per-key changes, in key order. `updates` is consolidated
/// in place and emptied.
pub fn key_changes<R: Record>(updates: &mut Vec<(R, isize)>) -> Vec<KeyChange<R>> {
    consolidate(updates);
    let mut changes: Vec<KeyChange<R>> = Vec::with_capacity(updates.len());
    let mut current: Option<(R::Key, Option<R>)> = None;
    for (record, diff) in updates.drain(..) {
        let key = record.key();
        if current.as_ref().is_some_and(|(k, _)| *k != key) {
            changes.push(finish(current.take().expect("checked")));
        }
        let entry = current.get_or_insert_with(|| (key, None));
        if diff > 0 {
            debug_assert!(
                entry.1.is_none() && diff == 1,
                "one value per key: {record:?}"
            );
            entry.1 = Some(record);
        }
    }
    if let Some(last) = current {
        changes.push(finish(last));
    }
    changes
}

fn finish<R: Record>((key, record): (R::Key, Option<R>)) -> KeyChange<R> {
    match record {
        Some(record) => KeyChange::Upsert(record),
        None => KeyChange::Delete(key),
    }
}

/// The current value of each key, maintained from the updates of successive times.
///
/// The updates of one time must be consolidated (as every collection here emits them): then each
/// key sees at most a retraction of its old value and an insertion of its new one, and applying
/// retractions before insertions needs no sorting.
pub struct KeyedState<R: Record> {
    values: FxHashMap<R::Key, R>,
}

impl<R: Record> Default for KeyedState<R> {
    fn default() -> Self {
        KeyedState {
            values: FxHashMap::default(),
        }
    }
}

impl<R: Record> KeyedState<R> {
    /// Applies one time's consolidated updates; `on_new_key` sees each key that had no value.
    pub fn apply(&mut self, updates: Vec<(R, isize)>, mut on_new_key: impl FnMut(&R::Key, &R)) {
        let (insertions, retractions): (Vec<_>, Vec<_>) =
            updates.into_iter().partition(|(_, diff)| *diff > 0);
        // Insert first: a key whose value is replaced keeps a value throughout, and the retraction
        // of its old value then finds the new one and leaves it.
        for (record, diff) in insertions {
            debug_assert_eq!(diff, 1, "one value per key: {record:?}");
            match self.values.entry(record.key()) {
                Entry::Occupied(mut slot) => {
                    slot.insert(record);
                }
                Entry::Vacant(slot) => {
                    on_new_key(slot.key(), &record);
                    slot.insert(record);
                }
            }
        }
        for (record, _) in retractions {
            let key = record.key();
            if self.values.get(&key) == Some(&record) {
                self.values.remove(&key);
            }
        }
    }

    /// Removes and returns the value of `key`.
    pub fn remove(&mut self, key: &R::Key) -> Option<R> {
        self.values.remove(key)
    }

    /// Removes and returns every value.
    pub fn drain(&mut self) -> impl Iterator<Item = R> + '_ {
        self.values.drain().map(|(_, record)| record)
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Operation of a change, as written in the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Insert or replace the key's value.
    Upsert,
    /// Remove the key.
    Delete,
}

/// The envelope of one change, as every sink writes it: which collection, what to do, to which
/// key, the new value (for an upsert) and the dataflow time it took effect at.
#[derive(Serialize)]
pub struct Envelope<'a, R: Record + 'a> {
    /// Collection name.
    pub collection: &'static str,
    /// `upsert` or `delete`.
    pub operation: Operation,
    /// The key.
    pub key: R::Key,
    /// The new value for an upsert, `null` for a delete.
    pub data: Option<R::Json<'a>>,
    /// Dataflow time (tick-aligned event time, epoch ms) of the change.
    pub time: Time,
}

impl<'a, R: Record> Envelope<'a, R> {
    /// The envelope of `change` at `time`.
    pub fn new(change: &'a KeyChange<R>, time: Time) -> Self {
        match change {
            KeyChange::Upsert(record) => Envelope {
                collection: R::COLLECTION,
                operation: Operation::Upsert,
                key: record.key(),
                data: Some(record.json()),
                time,
            },
            KeyChange::Delete(key) => Envelope {
                collection: R::COLLECTION,
                operation: Operation::Delete,
                key: key.clone(),
                data: None,
                time,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn average(room: &str, count: i64, sum: i128) -> RoomAverage {
        RoomAverage {
            room: room.into(),
            sensor: "co2".into(),
            count,
            sum,
        }
    }

    #[test]
    fn replacement_is_an_upsert_and_lone_retraction_a_delete() {
        let mut updates = vec![
            (average("b", 2, 10), 1),
            (average("a", 1, 5), -1),
            (average("b", 1, 4), -1),
            (average("c", 1, 1), 1),
            (average("c", 1, 1), -1),
        ];
        let changes = key_changes(&mut updates);
        assert_eq!(
            changes,
            vec![
                KeyChange::Delete(average("a", 1, 5).key()),
                KeyChange::Upsert(average("b", 2, 10)),
            ]
        );
    }

    #[test]
    fn keyed_state_follows_replacements_and_deletions() {
        let mut state = KeyedState::default();
        let mut new_keys = Vec::new();
        state.apply(
            vec![(average("a", 1, 5), 1), (average("b", 1, 4), 1)],
            |key, _| new_keys.push(key.room.to_string()),
        );
        // At the next time: a is replaced (insertion listed before the retraction), b deleted.
        state.apply(
            vec![
                (average("a", 2, 9), 1),
                (average("a", 1, 5), -1),
                (average("b", 1, 4), -1),
            ],
            |key, _| new_keys.push(key.room.to_string()),
        );
        assert_eq!(new_keys, vec!["a", "b"]);
        assert_eq!(state.len(), 1);
        assert_eq!(state.drain().collect::<Vec<_>>(), vec![average("a", 2, 9)]);
    }

    #[test]
    fn envelope_has_the_documented_fields() {
        let change = KeyChange::Upsert(average("413", 4, 95_500_000));
        let json = serde_json::to_value(Envelope::new(&change, 60_000)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "collection": "room_averages",
                "operation": "upsert",
                "key": {"room": "413", "sensor": "co2"},
                "data": {"room": "413", "sensor": "co2", "count": 4, "sum": 95.5, "avg": 23.875},
                "time": 60000,
            })
        );
        let delete = KeyChange::<RoomAverage>::Delete(average("413", 4, 0).key());
        let json = serde_json::to_value(Envelope::new(&delete, 1)).unwrap();
        assert_eq!(json["operation"], "delete");
        assert_eq!(json["data"], serde_json::Value::Null);
    }
}
