//! The state changelog of exactly-once runs: a compacted Kafka topic written inside each alpha
//! transaction (see the protocol in `mod.rs` and `docs/exactly-once.md`), and the checkpoint a
//! restart reads back from it.
//!
//! | key | value |
//! |---|---|
//! | `{"state":{"room":"<room>"}}` | all of the room's records (its aggregates, open windows and held temperatures): the byte `1` (the format), then the records in bincode; no value (a tombstone) once it holds none |
//! | `{"position":["<topic>",<partition>]}` | `{"next":<offset>,"newest":<event time or null>}` |
//! | `"progress"` | `{"time":<T>}`: everything before `T` is in this and earlier transactions |
//!
//! Every transaction writes the rooms that changed since the previous mark, every partition
//! position, and the progress record, so the latest value of each key, read `read_committed`, is
//! the state as of the last committed `T`. Keys are JSON, to be read by people and tools; a room's
//! records are binary, to be read back fast: a restart reads every room of a portfolio.
//!
//! An earlier roomflow kept one JSON record per aggregate, window and held temperature
//! (`{"state":{"Room":["413","co2"]}}`); a changelog in that form is refused at start, naming
//! what to do, rather than resumed wrongly.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use roomflow_dataflows::{Checkpointed, StateChange, StateKey, Time};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::kafka::config::KafkaArgs;
use crate::kafka::discovery::Partition;
use crate::kafka::position::PartitionPosition;
use crate::kafka::read::read_to_end_in_batches;
use crate::recovery::checkpoint::Checkpoint;

/// How long reading the changelog back may take.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// A changelog key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Key {
    State(StateKey),
    Position(String, i32),
    Progress,
}

/// A partition's position, as the changelog holds it.
#[derive(Serialize, Deserialize)]
struct Position {
    next: i64,
    newest: Option<i64>,
}

/// The progress record.
#[derive(Serialize, Deserialize)]
struct Progress {
    time: Time,
}

/// The first byte of a room's value: the form of what follows.
const ROOM_FORMAT: u8 = 1;

fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("changelog records serialize")
}

/// A room's records as its changelog value.
fn encode_room(records: &[Checkpointed]) -> Vec<u8> {
    let mut value = vec![ROOM_FORMAT];
    bincode::serialize_into(&mut value, records).expect("records serialize");
    value
}

/// A room's records from its changelog value.
fn decode_room(value: &[u8]) -> anyhow::Result<Vec<Checkpointed>> {
    match value.split_first() {
        Some((&ROOM_FORMAT, records)) => Ok(bincode::deserialize(records)?),
        Some((format, _)) => bail!("a room record of unknown form {format}"),
        None => bail!("an empty room record"),
    }
}

/// The changelog records of one mark's checkpoint: key, and value (`None`: a tombstone).
pub fn changelog_records(checkpoint: &Checkpoint<StateChange>) -> Vec<(String, Option<Vec<u8>>)> {
    let mut records = Vec::with_capacity(checkpoint.state.len() + checkpoint.positions.len() + 1);
    for change in &checkpoint.state {
        let value = (!change.records.is_empty()).then(|| encode_room(&change.records));
        records.push((encode(&Key::State(change.key.clone())), value));
    }
    for position in checkpoint.positions.values() {
        let key = Key::Position(
            position.partition.topic.clone(),
            position.partition.partition,
        );
        let value = Position {
            next: position.next,
            newest: position.newest,
        };
        records.push((encode(&key), Some(encode(&value).into_bytes())));
    }
    records.push((
        encode(&Key::Progress),
        Some(
            encode(&Progress {
                time: checkpoint.time,
            })
            .into_bytes(),
        ),
    ));
    records
}

/// The checkpoint a changelog holds: the latest value of each key, read in order. `None` when
/// it holds no progress record (nothing was ever committed).
pub fn checkpoint_from_changelog(
    entries: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
) -> anyhow::Result<Option<Checkpoint>> {
    // The latest value of each key (hashed: sorting 1.3M keys of a portfolio cost half a second).
    let mut latest: FxHashMap<Vec<u8>, Option<Vec<u8>>> = FxHashMap::default();
    for (key, value) in entries {
        latest.insert(key, value);
    }
    let mut time = None;
    let mut positions = BTreeMap::new();
    let mut state = Vec::new();
    for (key, value) in latest {
        let Some(value) = value else { continue };
        let parsed: Key =
            serde_json::from_slice(&key).map_err(|error| unreadable_key(&key, error))?;
        let context = || format!("unreadable changelog value of {parsed:?}");
        match &parsed {
            Key::State(_) => state.extend(decode_room(&value).with_context(context)?),
            Key::Position(topic, partition) => {
                let position: Position = serde_json::from_slice(&value).with_context(context)?;
                let partition = Partition {
                    topic: topic.clone(),
                    partition: *partition,
                };
                positions.insert(
                    partition.clone(),
                    PartitionPosition {
                        partition,
                        next: position.next,
                        newest: position.newest,
                    },
                );
            }
            Key::Progress => {
                let progress: Progress = serde_json::from_slice(&value).with_context(context)?;
                time = Some(progress.time);
            }
        }
    }
    let Some(time) = time else {
        if !state.is_empty() || !positions.is_empty() {
            bail!(
                "the changelog holds state but no progress record: it was not written by roomflow"
            );
        }
        return Ok(None);
    };
    Ok(Some(Checkpoint {
        time,
        positions,
        state,
    }))
}

/// The error for a key that is not one of ours, saying so plainly when it is an earlier
/// roomflow's.
fn unreadable_key(key: &[u8], error: serde_json::Error) -> anyhow::Error {
    let text = String::from_utf8_lossy(key);
    if serde_json::from_slice::<serde_json::Value>(key)
        .is_ok_and(|key| key["state"].is_object() && key["state"].get("room").is_none())
    {
        return anyhow::anyhow!(
            "the state changelog holds records of an earlier roomflow, one per aggregate, window \
             and temperature (e.g. {text}); this version keeps one per room and cannot resume \
             from them. Finish the job with the version that wrote it, or start this one on a \
             new group (--group) or state topic (--state-topic)"
        );
    }
    anyhow::Error::new(error).context(format!("unreadable changelog key {text}"))
}

/// Reads the changelog `topic` back, `read_committed`, to its end.
pub fn restore(kafka: &KafkaArgs, topic: &str) -> anyhow::Result<Option<Checkpoint>> {
    let started = std::time::Instant::now();
    let mut entries = Vec::new();
    let config = kafka.client_config(&[("isolation.level", "read_committed")]);
    read_to_end_in_batches(config, topic, RESTORE_TIMEOUT, |_, message| {
        if let Some(key) = message.key {
            // A tombstone has no payload (an empty one here); no value written is empty.
            let value = (!message.payload.is_empty()).then(|| message.payload.to_vec());
            entries.push((key.to_vec(), value));
        }
    })
    .with_context(|| format!("cannot read the state changelog `{topic}`"))?;
    tracing::info!(
        messages = entries.len(),
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "read the state changelog {topic:?}"
    );
    checkpoint_from_changelog(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomflow_dataflows::{Fixed, RoomAverage, WindowAverage};

    fn room(count: i64, sum: i128) -> Checkpointed {
        Checkpointed::Room(RoomAverage {
            room: "a".into(),
            sensor: "co2".into(),
            count,
            sum,
        })
    }

    fn window(start: i64) -> Checkpointed {
        Checkpointed::Window(WindowAverage {
            room: "a".into(),
            sensor: "co2".into(),
            window_start: start,
            count: 1,
            sum: 5,
        })
    }

    fn change(records: Vec<Checkpointed>, key: StateKey) -> StateChange {
        StateChange { key, records }
    }

    fn position(next: i64) -> BTreeMap<Partition, PartitionPosition> {
        let partition = Partition {
            topic: "sensors".into(),
            partition: 0,
        };
        [(
            partition.clone(),
            PartitionPosition {
                partition,
                next,
                newest: Some(1_000),
            },
        )]
        .into()
    }

    fn entries(records: Vec<(String, Option<Vec<u8>>)>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        records
            .into_iter()
            .map(|(key, value)| (key.into_bytes(), value))
            .collect()
    }

    #[test]
    fn the_latest_value_of_each_key_is_the_state_of_the_last_commit() {
        let room_a = StateKey { room: "a".into() };
        let room_b = StateKey { room: "b".into() };
        let held = Checkpointed::Temperature {
            room: "a".into(),
            ts: 7,
            value: Fixed(21_000_000),
        };
        let other = Checkpointed::Temperature {
            room: "b".into(),
            ts: 8,
            value: Fixed(19_000_000),
        };
        // Mark 10: room a at 1 reading, window 0 open, one temperature held; room b one
        // temperature.
        let first = Checkpoint {
            time: 10,
            positions: position(5),
            state: vec![
                change(vec![room(1, 5), window(0), held.clone()], room_a.clone()),
                change(vec![other], room_b.clone()),
            ],
        };
        // Mark 20: room a at 2 readings, window 0 sealed, the temperature still held; room b
        // holds nothing any more (a tombstone).
        let second = Checkpoint {
            time: 20,
            positions: position(9),
            state: vec![
                change(vec![room(2, 9), held.clone()], room_a),
                change(vec![], room_b),
            ],
        };
        let mut log = entries(changelog_records(&first));
        log.extend(entries(changelog_records(&second)));
        let restored = checkpoint_from_changelog(log).unwrap().unwrap();
        assert_eq!(restored.time, 20);
        assert_eq!(restored.positions, position(9));
        let mut state = restored.state;
        state.sort();
        let mut expected = vec![room(2, 9), held];
        expected.sort();
        assert_eq!(state, expected);
    }

    #[test]
    fn a_changelog_of_an_earlier_roomflow_is_refused_saying_what_to_do() {
        let earlier = vec![
            (
                br#"{"state":{"Room":["a","co2"]}}"#.to_vec(),
                Some(br#"[{"Room":{"room":"a","sensor":"co2","count":1,"sum":5}}]"#.to_vec()),
            ),
            (br#""progress""#.to_vec(), Some(br#"{"time":10}"#.to_vec())),
        ];
        let error = format!("{:#}", checkpoint_from_changelog(earlier).unwrap_err());
        assert!(error.contains("an earlier roomflow"), "{error}");
        assert!(error.contains("--state-topic"), "{error}");
    }

    #[test]
    fn an_empty_changelog_is_a_fresh_start_and_a_foreign_one_an_error() {
        assert_eq!(checkpoint_from_changelog(Vec::new()).unwrap(), None);
        let foreign = vec![(
            br#"{"position":["t",0]}"#.to_vec(),
            Some(b"{\"next\":1,\"newest\":null}".to_vec()),
        )];
        let error = checkpoint_from_changelog(foreign).unwrap_err();
        assert!(
            format!("{error:#}").contains("no progress record"),
            "{error:#}"
        );
        let garbage = vec![(b"hello".to_vec(), Some(b"{}".to_vec()))];
        let error = checkpoint_from_changelog(garbage).unwrap_err();
        assert!(
            format!("{error:#}").contains("unreadable changelog key hello"),
            "{error:#}"
        );
    }
}
