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
//!
//! A change's document is serialized straight into BSON bytes (a `RawDocumentBuf`), which the
//! writer wraps into its commands and the driver sends as they are: building a tree of
//! `Document`s, cloning it into the command and serializing it again cost most of the sink's CPU.

use mongodb::bson::{doc, Document, RawDocument, RawDocumentBuf};
use roomflow_dataflows::{Change, CollectionChange, KeyChange, Reading};

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
    /// Its new content, `_id` included (first); `None` deletes it.
    pub document: Option<RawDocumentBuf>,
}

/// A change's new value in its output shape, for serializers that take a value.
struct Data<'a>(&'a Change);

impl serde::Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.serialize_data(serializer) {
            Some(result) => result,
            None => Err(serde::ser::Error::custom("a delete has no data")),
        }
    }
}

impl Item {
    /// The write this item makes. Fails only for an envelope this program did not make.
    pub fn write(self) -> Result<Write, String> {
        match self {
            Item::Change(change) => {
                let target = Target::from_name(change.collection())
                    .ok_or_else(|| format!("unknown collection {:?}", change.collection()))?;
                let id = change.key_id();
                let document = match &change.change {
                    CollectionChange::RoomAverages(KeyChange::Delete(_))
                    | CollectionChange::WindowAverages(KeyChange::Delete(_))
                    | CollectionChange::TemperatureDeltas(KeyChange::Delete(_)) => None,
                    _ => {
                        let fields = mongodb::bson::to_raw_document_buf(&Data(&change))
                            .map_err(|error| format!("{error}"))?;
                        Some(with_id(&id, &fields)?)
                    }
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
                let fields = mongodb::bson::to_raw_document_buf(&rejected.json())
                    .map_err(|e| format!("{e}"))?;
                Ok(Write {
                    target,
                    document: Some(with_id(&id, &fields)?),
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
                    document: Some(
                        RawDocumentBuf::from_document(&document).map_err(|e| format!("{e}"))?,
                    ),
                })
            }
        }
    }
}

/// `fields` with `_id` first (replacements must carry their `_id`). A BSON document is its
/// length, its elements and a 0 byte: the `_id` element is written and the elements of
/// `fields` copied behind it as they are, without parsing them.
fn with_id(id: &str, fields: &RawDocument) -> Result<RawDocumentBuf, String> {
    let elements = &fields.as_bytes()[4..fields.as_bytes().len() - 1];
    // Element: type 0x02 (string), the name "_id" and its 0, the string's length with its 0,
    // the string, its 0.
    let id_element = 1 + 4 + 4 + id.len() + 1;
    let length = 4 + id_element + elements.len() + 1;
    let mut bytes = Vec::with_capacity(length);
    bytes.extend_from_slice(
        &i32::try_from(length)
            .map_err(|e| e.to_string())?
            .to_le_bytes(),
    );
    bytes.push(0x02);
    bytes.extend_from_slice(b"_id\0");
    bytes.extend_from_slice(
        &i32::try_from(id.len() + 1)
            .map_err(|e| e.to_string())?
            .to_le_bytes(),
    );
    bytes.extend_from_slice(id.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(elements);
    bytes.push(0);
    RawDocumentBuf::from_bytes(bytes).map_err(|e| format!("{e}"))
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
                document: Some(
                    RawDocumentBuf::from_document(&doc! {
                        "_id": id, "room": "413", "sensor": "co2", "window_start": 60000i64,
                        "count": 2i64, "sum": 900.5, "avg": 450.25,
                    })
                    .unwrap()
                ),
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
    fn the_id_comes_first_and_the_fields_follow_unchanged() {
        let fields = RawDocumentBuf::from_document(&doc! {
            "room": "Zimmer ü", "count": 2i64, "avg": 1.5, "nested": { "a": [1, 2] },
        })
        .unwrap();
        let id = r#"["Zimmer ü","co2"]"#;
        let document = with_id(id, &fields).unwrap();
        let keys: Vec<&str> = document.iter().map(|field| field.unwrap().0).collect();
        assert_eq!(keys, ["_id", "room", "count", "avg", "nested"]);
        assert_eq!(
            document.to_document().unwrap(),
            doc! { "_id": id, "room": "Zimmer ü", "count": 2i64, "avg": 1.5,
            "nested": { "a": [1, 2] } }
        );
        // Its length is what BSON says it is: the bytes re-read as they are.
        assert_eq!(
            RawDocumentBuf::from_document(&document.to_document().unwrap()).unwrap(),
            document
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
            write.document.unwrap().to_document().unwrap(),
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
