//! `roomflow publish` and `roomflow run` against a real Kafka-protocol broker (the local stand-in
//! that `scripts/kafka.sh start` runs, or `KAFKA_BROKERS`): the state rebuilt from the alpha
//! topic equals `roomflow replay` of the same input, dead letters keep their bytes and say where
//! they came from, and a restart after more input still agrees with a replay of all of it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::kafka::{apply_changes, brokers, read_topic, require_broker, unique};
use common::{lines, ok, simulate};
use serde_json::Value;

/// The final state of a replay, by (collection, key), from its `--out` files.
fn replayed_state(inputs: &[&Path], out: &Path) -> BTreeMap<(String, String), Value> {
    let mut args = vec!["replay"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    ok(&args);
    let mut state = BTreeMap::new();
    for (collection, key_fields) in [
        ("room_averages", &["room", "sensor"][..]),
        ("window_averages", &["room", "sensor", "window_start"][..]),
        ("temperature_deltas", &["room", "ts"][..]),
    ] {
        for record in lines(&out.join(format!("{collection}.jsonl"))) {
            let key: serde_json::Map<String, Value> = key_fields
                .iter()
                .map(|field| (field.to_string(), record[*field].clone()))
                .collect();
            state.insert(
                (collection.to_string(), Value::Object(key).to_string()),
                record,
            );
        }
    }
    state
}

fn publish(input: &Path, topic: &str) {
    ok(&[
        "publish",
        input.to_str().unwrap(),
        "--topic",
        topic,
        "--partitions",
        "4",
        "--brokers",
        &brokers(),
    ]);
}

fn run_until_idle(topic: &str, alpha: &str, dead: &str, group: &str) {
    ok(&[
        "run",
        "--topics",
        topic,
        "--alpha-topic",
        alpha,
        "--dead-letter-topic",
        dead,
        "--group",
        group,
        "--brokers",
        &brokers(),
        "--exit-when-idle",
        "1s",
        "-w",
        "2",
    ]);
}

fn assert_same_state(
    rebuilt: &BTreeMap<(String, String), Value>,
    replayed: &BTreeMap<(String, String), Value>,
) {
    assert_eq!(rebuilt.len(), replayed.len(), "number of keys");
    for (key, value) in replayed {
        assert_eq!(rebuilt.get(key), Some(value), "{key:?}");
    }
}

#[test]
fn the_alpha_topic_rebuilds_the_replayed_state_and_dead_letters_keep_their_bytes() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = simulate(
        dir.path(),
        "readings.jsonl",
        &[
            "--rooms",
            "12",
            "--readings",
            "20000",
            "--malformed",
            "0.005",
            "--out-of-order",
            "0.03",
            "--late",
            "0.002",
        ],
    );
    let (topic, alpha, dead) = (unique("sensors"), unique("alpha"), unique("dead"));
    publish(&input, &topic);
    run_until_idle(&topic, &alpha, &dead, &unique("group"));

    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    let rebuilt = apply_changes(&read_topic(&alpha));
    assert_same_state(&rebuilt, &replayed);

    // Every malformed line is a dead letter, with the exact bytes found at the offset it names.
    let published: BTreeMap<(i32, i64), Vec<u8>> = read_topic(&topic)
        .into_iter()
        .map(|record| ((record.partition, record.offset), record.payload))
        .collect();
    let dead_letters = read_topic(&dead);
    let replay_dead = lines(&dir.path().join("replay/dead_letters.jsonl"));
    let replay_late = lines(&dir.path().join("replay/late.jsonl"));
    let malformed: Vec<_> = dead_letters
        .iter()
        .filter(|r| r.headers["roomflow.kind"] == "malformed")
        .collect();
    let late = dead_letters
        .iter()
        .filter(|r| r.headers["roomflow.kind"] == "late")
        .count();
    assert_eq!(malformed.len(), replay_dead.len());
    assert!(!malformed.is_empty());
    assert_eq!(late, replay_late.len());
    for record in &malformed {
        assert_eq!(record.headers["roomflow.topic"], topic);
        let at = (
            record.headers["roomflow.partition"].parse().unwrap(),
            record.headers["roomflow.offset"].parse().unwrap(),
        );
        assert_eq!(published[&at], record.payload, "bytes at {at:?}");
        assert!(!record.headers["roomflow.reason"].is_empty());
    }
}

#[test]
fn after_a_clean_stop_and_more_input_a_restart_agrees_with_a_replay_of_everything() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let common = ["--rooms", "8", "--readings", "8000", "--late", "0.002"];
    let first = simulate(dir.path(), "first.jsonl", &common);
    // The second recording starts after the first ends (8000 readings of 8 rooms ≈ 21 min).
    let mut later = common.to_vec();
    later.extend(["--start", "1700003600000", "--seed", "2"]);
    let second = simulate(dir.path(), "second.jsonl", &later);

    let (topic, alpha, dead, group) = (
        unique("sensors"),
        unique("alpha"),
        unique("dead"),
        unique("group"),
    );
    publish(&first, &topic);
    run_until_idle(&topic, &alpha, &dead, &group);
    publish(&second, &topic);
    run_until_idle(&topic, &alpha, &dead, &group);

    let replayed = replayed_state(&[&first, &second], &dir.path().join("replay"));
    let rebuilt = apply_changes(&read_topic(&alpha));
    assert_same_state(&rebuilt, &replayed);
}
