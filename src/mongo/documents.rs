//! What the MongoDB sink writes: one document per key of each collection, with `_id` the key.
//!
//! | collection | `_id` | fields |
//! |---|---|---|
//! | `room_averages` | `["<room>","<sensor>"]` | room, sensor, count, sum, avg |
//! | `window_averages` | `["<room>","<sensor>",<window_start>]` | room, sensor, window_start, count, sum, avg |
//! | `temperature_deltas` | `["<room>",<ts>]` | room, ts, prev_ts, value, prev_value, delta |
//! | `dead_letters` | where it was: `topic/partition/offset` or `file:line` | source, reason, line |
//! | `late_readings` | `<source>#<sensor>` | source, reason, room, sensor, ts, value |
//! | `readings` (`--archive-readings`) | `["<room>","<sensor>",<ts>]` | room, sensor, ts, value |
//!
//! `_id` is the key as a compact JSON array, so it is exact whatever the names hold. The fields
//! are those of the JSON outputs (`changes.jsonl`), without the dataflow time: a document is the
//! key's current value, the same whichever run wrote it.

use mongodb::bson::{doc, Bson, Document};
use roomflow_dataflows::{Change, Reading};

use crate::streams::{RejectKind, Rejected};

/// A collection the sink writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `room_averages`.
    RoomAverages,
    /// `window_averages`.
    WindowAverages,
    /// `temperature_deltas`.
    TemperatureDeltas,
    /// `dead_letters`.
    DeadLetters,
    /// `late_readings`.
    LateReadings,
    /// `readings`.
    Readings,
}

impl Target {
    /// Every collection.
    pub const ALL: [Target; 6] = [
        Target::RoomAverages,
        Target::WindowAverages,
        Target::TemperatureDeltas,
        Target::DeadLetters,
        Target::LateReadings,
        Target::Readings,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Target::RoomAverages => "room_averages",
            Target::WindowAverages => "window_averages",
            Target::TemperatureDeltas => "temperature_deltas",
            Target::DeadLetters => "dead_letters",
            Target::LateReadings => "late_readings",
            Target::Readings => "readings",
        }
    }

    fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }

    /// Keys of its secondary index: what users query by besides `_id`.
    pub fn index(self) -> Document {
        match self {
            Target::RoomAverages => doc! { "room": 1, "sensor": 1 },
            Target::WindowAverages => doc! { "room": 1, "window_start": 1 },
            Target::TemperatureDeltas | Target::Readings => doc! { "room": 1, "ts": 1 },
            Target::LateReadings => doc! { "room": 1 },
            Target::DeadLetters => Document::new(),
        }
    }
}

/// Something for MongoDB, as the sink operator hands it over (converted on the writer's thread).
#[derive(Clone, Debug)]
pub enum Item {
    /// A change of a collection.
    Change(Change),
    /// A dead letter or late reading.
    Rejected(Rejected),
    /// A reading to archive.
    Reading(Reading),
}

/// One write: the document of `_id` in `target` becomes `document`, or is deleted (`None`).
#[derive(Debug, PartialEq)]
pub struct Write {
    /// The collection.
    pub target: Target,
    /// The document's `_id`.
    pub id: String,
    /// Its new content, `_id` included; `None` deletes it.
    pub document: Option<Document>,
}

impl Item {
    /// The write this item makes. Fails only for an envelope this program did not make.
    pub fn write(self) -> Result<Write, String> {
        match self {
            Item::Change(change) => {
                let target = Target::from_name(change.collection())
                    .ok_or_else(|| format!("unknown collection {:?}", change.collection()))?;
                let id = change.key_id();
                let document = match change.serialize_data(mongodb::bson::Serializer::new()) {
                    None => None,
                    Some(Ok(Bson::Document(fields))) => Some(with_id(&id, fields)),
                    Some(Ok(other)) => {
                        return Err(format!("change data is not an object: {other}"))
                    }
                    Some(Err(error)) => return Err(format!("{error}")),
                };
                Ok(Write {
                    target,
                    id,
                    document,
                })
            }
            Item::Rejected(rejected) => {
                let (target, id) = match (rejected.kind, &rejected.reading) {
                    (RejectKind::Late, Some(reading)) => (
                        Target::LateReadings,
                        format!("{}#{}", rejected.source, reading.sensor),
                    ),
                    (RejectKind::Late, None) => (Target::LateReadings, rejected.source.clone()),
                    (RejectKind::DeadLetter, _) => (Target::DeadLetters, rejected.source.clone()),
                };
                let Bson::Document(fields) =
                    mongodb::bson::to_bson(&rejected.json()).map_err(|e| format!("{e}"))?
                else {
                    unreachable!("a struct serializes to a document")
                };
                Ok(Write {
                    target,
                    document: Some(with_id(&id, fields)),
                    id,
                })
            }
            Item::Reading(reading) => {
                let id = serde_json::to_string(&(&reading.room, &reading.sensor, reading.ts))
                    .expect("JSON values serialize");
                let document = doc! {
                    "_id": &id,
                    "room": reading.room.as_str(),
                    "sensor": reading.sensor.as_str(),
                    "ts": reading.ts,
                    "value": reading.value.to_f64(),
                };
                Ok(Write {
                    target: Target::Readings,
                    id,
                    document: Some(document),
                })
            }
        }
    }
}

/// `fields` with `_id` first (replacements must carry their `_id`).
fn with_id(id: &str, fields: Document) -> Document {
    let mut document = doc! { "_id": id };
    document.extend(fields);
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomflow_dataflows::records::RoomTimeKey;
    use roomflow_dataflows::{CollectionChange, Fixed, KeyChange, WindowAverage};

    fn change(change: CollectionChange) -> Item {
        Item::Change(Change { time: 7, change })
    }

    #[test]
    fn an_upsert_becomes_the_keys_document_and_a_delete_removes_it() {
        let upsert = change(CollectionChange::WindowAverages(KeyChange::Upsert(
            WindowAverage {
                room: "413".into(),
                sensor: "co2".into(),
                window_start: 60_000,
                count: 2,
                sum: 900_500_000,
            },
        )));
        let write = upsert.write().unwrap();
        let id = r#"["413","co2",60000]"#;
        assert_eq!(
            write,
            Write {
                target: Target::WindowAverages,
                id: id.into(),
                // 900.5 / 2 = 450.25; no dataflow time in a document.
                document: Some(doc! {
                    "_id": id, "room": "413", "sensor": "co2", "window_start": 60000i64,
                    "count": 2i64, "sum": 900.5, "avg": 450.25,
                }),
            }
        );
        let delete = change(CollectionChange::TemperatureDeltas(KeyChange::Delete(
            RoomTimeKey {
                room: "a".into(),
                ts: 5,
            },
        )));
        assert_eq!(
            delete.write().unwrap(),
            Write {
                target: Target::TemperatureDeltas,
                id: r#"["a",5]"#.into(),
                document: None,
            }
        );
    }

    #[test]
    fn rejected_input_is_keyed_by_where_it_was() {
        let late = Item::Rejected(Rejected {
            kind: RejectKind::Late,
            source: "sensors/2/17".into(),
            reason: "too late".into(),
            line: None,
            line_bytes: None,
            reading: Some(Reading {
                room: "a".into(),
                sensor: "co2".into(),
                ts: 5,
                value: Fixed(1_500_000),
            }),
            origin: None,
        });
        let write = late.write().unwrap();
        assert_eq!(write.target, Target::LateReadings);
        assert_eq!(write.id, "sensors/2/17#co2");
        assert_eq!(
            write.document.unwrap(),
            doc! { "_id": "sensors/2/17#co2", "source": "sensors/2/17", "reason": "too late",
            "room": "a", "sensor": "co2", "ts": 5i64, "value": 1.5 }
        );
        let dead = Item::Rejected(Rejected {
            kind: RejectKind::DeadLetter,
            source: "in.jsonl:3".into(),
            reason: "not JSON".into(),
            line: Some("{".into()),
            line_bytes: None,
            reading: None,
            origin: None,
        });
        let write = dead.write().unwrap();
        assert_eq!(
            (write.target, write.id.as_str()),
            (Target::DeadLetters, "in.jsonl:3")
        );
    }
}
