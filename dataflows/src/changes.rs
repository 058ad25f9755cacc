//! Changes: how the differential updates of a collection become key-level changes, the typed
//! change every sink consumes, and its envelope (the JSON of the alpha topic and `changes.jsonl`).
//!
//! A collection changes at a dataflow time by a set of `(record, ±1)` updates. Downstream stores
//! (files, the alpha topic, MongoDB) hold one value per key, so the updates of one time are turned
//! into per-key operations: `upsert` with the key's new record, or `delete` when the key's only
//! update is a retraction. The three collections' changes travel as one stream of [`Change`]s,
//! built once by [`changes`] and shared by every sink.

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::hashable::Hashable;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, Concatenate};
use timely::dataflow::Stream;

use crate::averages::RoomAverage;
use crate::deltas::TemperatureDelta;
use crate::held::HeldByTime;
use crate::horizon::Time;
use crate::json::{write_number, WriteJson};
use crate::records::Record;
use crate::sized::GiveSized;
use crate::windows::WindowAverage;
use crate::Collections;

/// What happened to one key at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
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

/// A change of one of the job's collections, typed: which collection is the variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectionChange {
    /// Of `room_averages`.
    RoomAverages(KeyChange<RoomAverage>),
    /// Of `window_averages`.
    WindowAverages(KeyChange<WindowAverage>),
    /// Of `temperature_deltas`.
    TemperatureDeltas(KeyChange<TemperatureDelta>),
}

/// One change, as every sink receives it: the dataflow time it took effect at, and what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Dataflow time (tick-aligned event time, epoch ms) of the change.
    pub time: Time,
    /// The collection's key change.
    pub change: CollectionChange,
}

/// Calls `$body` with `$change` bound to the `KeyChange<R>` of whichever collection it is.
macro_rules! with_key_change {
    ($collection_change:expr, $change:ident => $body:expr) => {
        match $collection_change {
            CollectionChange::RoomAverages($change) => $body,
            CollectionChange::WindowAverages($change) => $body,
            CollectionChange::TemperatureDeltas($change) => $body,
        }
    };
}

impl Change {
    /// The collection's name.
    pub fn collection(&self) -> &'static str {
        with_key_change!(&self.change, change => collection_of(change))
    }

    /// The message key of the alpha topic, `["<collection>",<key as JSON object>]`: the topic is
    /// partitioned by it, so each key's changes stay in order on one partition.
    pub fn message_key(&self) -> String {
        self.message().0
    }

    /// The envelope as one JSON line (without the newline): [`Envelope`] as serde_json writes it.
    pub fn envelope_line(&self) -> String {
        self.message().1
    }

    /// The message key and the envelope line, as new strings.
    pub fn message(&self) -> (String, String) {
        let (mut key, mut envelope) = (Vec::new(), Vec::new());
        self.write_message(&mut key, &mut envelope);
        let utf8 = |bytes| String::from_utf8(bytes).expect("JSON written from strings is UTF-8");
        (utf8(key), utf8(envelope))
    }

    /// Writes the message key (as [`Change::message_key`]) and the envelope line (as
    /// [`Change::envelope_line`]) into `key` and `envelope`, which are cleared first: a sink
    /// that keeps the two buffers encodes every change without allocating. Written by hand
    /// (`json.rs`): the bytes serde_json writes for the key and the [`Envelope`], tested against it.
    pub fn write_message(&self, key: &mut Vec<u8>, envelope: &mut Vec<u8>) {
        key.clear();
        envelope.clear();
        with_key_change!(&self.change, change => write_message_of(change, self.time, key, envelope))
    }

    /// The key as a compact JSON array of its fields' values, in order (e.g.
    /// `["413","co2",60000]`): an identifier exact whatever the names hold (MongoDB's `_id`).
    pub fn key_id(&self) -> String {
        with_key_change!(&self.change, change => key_id(&change.key()))
    }

    /// The new value in its output shape, serialized by `serializer`; `None` for a delete.
    pub fn serialize_data<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Option<Result<S::Ok, S::Error>> {
        with_key_change!(&self.change, change => match change {
            KeyChange::Upsert(record) => Some(record.json().serialize(serializer)),
            KeyChange::Delete(_) => None,
        })
    }
}

fn write_message_of<R: Record>(
    change: &KeyChange<R>,
    time: Time,
    key: &mut Vec<u8>,
    envelope: &mut Vec<u8>,
) {
    // Collection names are literals that need no escaping.
    key.extend_from_slice(b"[\"");
    key.extend_from_slice(R::COLLECTION.as_bytes());
    key.extend_from_slice(b"\",");
    let key_start = key.len();
    match change {
        KeyChange::Upsert(record) => record.key().write_json(key),
        KeyChange::Delete(record_key) => record_key.write_json(key),
    }
    key.push(b']');
    envelope.extend_from_slice(b"{\"collection\":\"");
    envelope.extend_from_slice(R::COLLECTION.as_bytes());
    envelope.extend_from_slice(match change {
        KeyChange::Upsert(_) => b"\",\"operation\":\"upsert\",\"key\":".as_slice(),
        KeyChange::Delete(_) => b"\",\"operation\":\"delete\",\"key\":".as_slice(),
    });
    envelope.extend_from_slice(&key[key_start..key.len() - 1]);
    envelope.extend_from_slice(b",\"data\":");
    match change {
        KeyChange::Upsert(record) => record.json().write_json(envelope),
        KeyChange::Delete(_) => envelope.extend_from_slice(b"null"),
    }
    envelope.extend_from_slice(b",\"time\":");
    write_number(envelope, &time);
    envelope.push(b'}');
}

fn collection_of<R: Record>(_: &KeyChange<R>) -> &'static str {
    R::COLLECTION
}

fn key_id<K: Serialize>(key: &K) -> String {
    match serde_json::to_value(key).expect("keys serialize") {
        serde_json::Value::Object(fields) => {
            let values: Vec<&serde_json::Value> = fields.values().collect();
            serde_json::to_string(&values).expect("JSON values serialize")
        }
        other => other.to_string(),
    }
}

impl<R: Record> KeyChange<R> {
    /// The key that changed.
    pub fn key(&self) -> R::Key {
        match self {
            KeyChange::Upsert(record) => record.key(),
            KeyChange::Delete(key) => key.clone(),
        }
    }
}

/// The changes of `collection`, one per key and time, each formed on the worker that owns its key
/// once the time is complete.
pub fn key_changes_of<'s, R: Record>(
    collection: VecCollection<'s, Time, R>,
    typed: fn(KeyChange<R>) -> CollectionChange,
) -> Stream<'s, Time, Vec<Change>> {
    let route = Exchange::new(|(record, _, _): &(R, Time, isize)| record.key().hashed());
    collection
        .inner
        .unary_frontier(route, "KeyChanges", move |_, _| {
            let mut pending: HeldByTime<(R, isize), Capability<Time>> = HeldByTime::default();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, containers| {
                    for container in containers {
                        for (record, time, diff) in container.drain(..) {
                            pending
                                .entry_with(time, || cap.delayed(&time, 0))
                                .push((record, diff));
                        }
                    }
                });
                let complete_before = frontier.frontier().first().copied();
                while let Some((time, capability, mut updates)) =
                    pending.pop_complete(complete_before)
                {
                    let changes = key_changes(&mut updates).into_iter().map(|change| Change {
                        time,
                        change: typed(change),
                    });
                    output.session(&capability).give_sized(changes);
                    pending.recycle(updates);
                }
            }
        })
}

/// Every change of the three collections, as one stream: built once per dataflow and shared by
/// every sink.
pub fn changes<'s>(collections: &Collections<'s>) -> Stream<'s, Time, Vec<Change>> {
    let scope = collections.room_averages.inner.scope();
    scope.concatenate(vec![
        key_changes_of(
            collections.room_averages.clone(),
            CollectionChange::RoomAverages,
        ),
        key_changes_of(
            collections.window_averages.clone(),
            CollectionChange::WindowAverages,
        ),
        key_changes_of(
            collections.temperature_deltas.clone(),
            CollectionChange::TemperatureDeltas,
        ),
    ])
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
    fn each_time_changes_arrive_in_a_container_of_their_size() {
        use differential_dataflow::input::Input;
        use std::sync::{Arc, Mutex};
        use timely::dataflow::channels::pact::Pipeline;

        // Room a's average at times 0, 2 and 3: one change per time, as a fine tick gives.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::execute_directly(move |worker| {
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, averages) = scope.new_collection::<RoomAverage, isize>();
                key_changes_of(averages, CollectionChange::RoomAverages).sink(
                    Pipeline,
                    "Containers",
                    move |(input, _)| {
                        input.for_each(|_, container| {
                            let shape = (container.len(), container.capacity());
                            let times: Vec<Time> = container.iter().map(|c| c.time).collect();
                            sink.lock().unwrap().push((shape, times));
                        });
                    },
                );
                input
            });
            input.insert(average("a", 1, 10));
            for time in 2..=3 {
                input.advance_to(time);
                input.remove(average("a", time as i64 - 1, 10 * (time as i128 - 1)));
                input.insert(average("a", time as i64, 10 * time as i128));
            }
        });
        // Timely's container builder would have given each change a container of 8 KiB.
        assert_eq!(
            *seen.lock().unwrap(),
            vec![((1, 1), vec![0]), ((1, 1), vec![2]), ((1, 1), vec![3])]
        );
    }

    #[test]
    fn written_messages_are_the_key_and_envelope_lines() {
        let (mut key, mut envelope) = (b"left over".to_vec(), b"from before".to_vec());
        for change in [
            Change {
                time: 60_000,
                change: CollectionChange::RoomAverages(KeyChange::Upsert(RoomAverage {
                    room: "413".into(),
                    sensor: "co2".into(),
                    count: 4,
                    sum: 95_500_000,
                })),
            },
            Change {
                time: 5,
                change: CollectionChange::TemperatureDeltas(KeyChange::Delete(
                    crate::records::RoomTimeKey {
                        room: "a\"b".into(),
                        ts: 5,
                    },
                )),
            },
            Change {
                time: u64::MAX,
                change: CollectionChange::WindowAverages(KeyChange::Upsert(WindowAverage {
                    room: "salle été\\\n".into(),
                    sensor: "co2".into(),
                    window_start: -60_000,
                    count: 0,
                    sum: 0,
                })),
            },
            Change {
                time: 0,
                change: CollectionChange::TemperatureDeltas(KeyChange::Upsert(TemperatureDelta {
                    room: "a-room-name-longer-than-sixteen".into(),
                    ts: 1_700_000_000_123,
                    prev_ts: 1_700_000_000_000,
                    value: crate::reading::Fixed(21_500_000),
                    prev_value: crate::reading::Fixed(-3_250_000),
                })),
            },
            Change {
                time: 9,
                change: CollectionChange::RoomAverages(KeyChange::Delete(
                    average("\u{1}", 1, 1).key(),
                )),
            },
        ] {
            change.write_message(&mut key, &mut envelope);
            // serde_json, the independent encoding.
            let (serde_key, serde_envelope) = with_key_change!(&change.change, typed => (
                serde_json::to_vec(&(collection_of(typed), typed.key())).unwrap(),
                serde_json::to_vec(&Envelope::new(typed, change.time)).unwrap(),
            ));
            assert_eq!(key, serde_key);
            assert_eq!(envelope, serde_envelope);
            assert_eq!(
                change.message(),
                (change.message_key(), change.envelope_line())
            );
        }
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

    #[test]
    fn a_change_knows_its_collection_key_and_envelope() {
        let window = WindowAverage {
            room: "413".into(),
            sensor: "co2".into(),
            window_start: 60_000,
            count: 2,
            sum: 900_500_000,
        };
        let upsert = Change {
            time: 120_000,
            change: CollectionChange::WindowAverages(KeyChange::Upsert(window)),
        };
        assert_eq!(upsert.collection(), "window_averages");
        assert_eq!(
            upsert.message_key(),
            r#"["window_averages",{"room":"413","sensor":"co2","window_start":60000}]"#
        );
        assert_eq!(upsert.key_id(), r#"["413","co2",60000]"#);
        // 900.5 / 2 = 450.25.
        assert_eq!(
            upsert.envelope_line(),
            r#"{"collection":"window_averages","operation":"upsert","key":{"room":"413","sensor":"co2","window_start":60000},"data":{"room":"413","sensor":"co2","window_start":60000,"count":2,"sum":900.5,"avg":450.25},"time":120000}"#
        );
        let data = upsert
            .serialize_data(serde_json::value::Serializer)
            .unwrap()
            .unwrap();
        assert_eq!(data["avg"], 450.25);
        let delete = Change {
            time: 7,
            change: CollectionChange::WindowAverages(KeyChange::Delete(window.key())),
        };
        assert!(delete
            .serialize_data(serde_json::value::Serializer)
            .is_none());
        assert_eq!(
            delete.envelope_line(),
            r#"{"collection":"window_averages","operation":"delete","key":{"room":"413","sensor":"co2","window_start":60000},"data":null,"time":7}"#
        );
    }
}
