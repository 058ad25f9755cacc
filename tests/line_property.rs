//! A property, over generated recordings: every line either yields a reading that reaches every
//! output of `replay` (the JSON files, the change log, MongoDB) with its names and value intact,
//! or becomes exactly one dead letter, naming its line and giving a reason — never both, never
//! neither. Names are drawn from all of Unicode, control characters, JSON's and MongoDB's special
//! characters included; bad lines from the ways recordings go wrong. The expected counts, sums
//! and deltas are worked out from the generated readings, not from roomflow's output.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::kafka::unique;
use common::mongo::{documents, mongo_uri, require_mongo};
use common::{hundredths, lines, ok};
use proptest::prelude::*;
use serde_json::{json, Value};

/// One generated line.
#[derive(Clone, Debug)]
enum Line {
    /// A reading; the value is in hundredths, so that sums are exact integers here.
    Reading {
        room: String,
        sensor: String,
        hundredths: i64,
    },
    /// A line that must become a dead letter.
    Bad(String),
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,6}",
        // Any characters but surrogates, control characters included.
        "[\\u{0}-\\u{D7FF}\\u{E000}-\\u{10FFFF}]{1,12}",
        // What JSON escapes and MongoDB treats specially in keys.
        "[\"\\\\$.\\u{0}\\u{7}\\n\\t]{1,6}",
        Just("temperature".to_string()),
        // The longest name allowed.
        Just("n".repeat(256)),
    ]
}

fn reading_json(room: &str, sensor: &str, ts: i64, value: Value) -> String {
    json!({"room": room, "sensor": sensor, "ts": ts, "value": value}).to_string()
}

/// The ways a line goes wrong; `ts` is the line's time.
fn bad_line(ts: i64) -> impl Strategy<Value = String> {
    prop_oneof![
        (name(), name()).prop_map(move |(room, sensor)| reading_json(
            &room,
            &sensor,
            ts,
            json!("n/a")
        )),
        name().prop_map(move |room| json!({"room": room, "sensor": "co2", "ts": ts}).to_string()),
        name().prop_map(move |sensor| reading_json("", &sensor, ts, json!(1.5))),
        (257..400usize).prop_map(move |length| reading_json(
            &"r".repeat(length),
            "co2",
            ts,
            json!(1)
        )),
        // Cut short anywhere: the object is never closed.
        (name(), name(), any::<prop::sample::Index>()).prop_map(move |(room, sensor, cut)| {
            let line = reading_json(&room, &sensor, ts, json!(2.25));
            let ends: Vec<usize> = line.char_indices().map(|(at, _)| at).skip(1).collect();
            line[..*cut.get(&ends)].to_string()
        }),
        // Not JSON at all (always something but blanks).
        "[a-zA-Z0-9 ,:\\[\\]{}]{0,20}[a-z]",
        Just(format!(
            r#"{{"room":"r","sensor":"s","ts":{ts},"value":1e999}}"#
        )),
    ]
}

fn line(ts: i64) -> impl Strategy<Value = Line> {
    prop_oneof![
        3 => (name(), prop_oneof![name(), Just("temperature".to_string())], -100_000..100_000i64)
            .prop_map(|(room, sensor, hundredths)| Line::Reading { room, sensor, hundredths }),
        1 => bad_line(ts).prop_map(Line::Bad),
    ]
}

/// Lines a second apart, so that none is late.
const BASE_TS: i64 = 1_700_000_000_000;

fn recording() -> impl Strategy<Value = Vec<Line>> {
    (1..40usize).prop_flat_map(|length| {
        (0..length)
            .map(|index| line(BASE_TS + index as i64 * 1000))
            .collect::<Vec<_>>()
    })
}

fn text_of(lines: &[Line]) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| match line {
            Line::Reading {
                room,
                sensor,
                hundredths,
            } => reading_json(
                room,
                sensor,
                BASE_TS + index as i64 * 1000,
                json!(*hundredths as f64 / 100.0),
            ),
            Line::Bad(text) => text.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check(recording: &[Line]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, text_of(recording)).unwrap();
    let out = dir.path().join("out");
    let db = unique("property");
    ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--changes",
        "--mongo",
        &mongo_uri(),
        "--mongo-db",
        &db,
    ]);

    // Worked out from the generated lines: the bad line numbers; count and sum of hundredths
    // per (room, sensor); each room's temperature readings in order.
    let mut bad = BTreeSet::new();
    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut temperatures: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (index, line) in recording.iter().enumerate() {
        match line {
            Line::Bad(_) => {
                bad.insert(index + 1);
            }
            Line::Reading {
                room,
                sensor,
                hundredths,
            } => {
                let total = totals.entry((room.clone(), sensor.clone())).or_default();
                total.0 += 1;
                total.1 += hundredths;
                if sensor == "temperature" {
                    let ts = BASE_TS + index as i64 * 1000;
                    temperatures
                        .entry(room.clone())
                        .or_default()
                        .push((ts, *hundredths));
                }
            }
        }
    }

    // Each bad line once, with its place and a reason; no good line.
    let dead = lines(&out.join("dead_letters.jsonl"));
    let places: Vec<usize> = dead
        .iter()
        .map(|letter| {
            assert!(!letter["reason"].as_str().unwrap().is_empty(), "{letter}");
            let source = letter["source"].as_str().unwrap();
            let (file, number) = source.rsplit_once(':').unwrap();
            assert!(file.ends_with("in.jsonl"), "{source}");
            number.parse().unwrap()
        })
        .collect();
    assert_eq!(places.len(), bad.len(), "{dead:?}");
    assert_eq!(places.into_iter().collect::<BTreeSet<_>>(), bad);

    // Every reading, in the all-time averages of the file, the change log and MongoDB.
    let key = |record: &Value| {
        (
            record["room"].as_str().unwrap().to_string(),
            record["sensor"].as_str().unwrap().to_string(),
        )
    };
    let averages: BTreeMap<_, _> = lines(&out.join("room_averages.jsonl"))
        .iter()
        .map(|record| {
            (
                key(record),
                (
                    record["count"].as_i64().unwrap(),
                    hundredths(&record["sum"]),
                ),
            )
        })
        .collect();
    assert_eq!(averages, totals);
    let mut from_changes = BTreeMap::new();
    for change in lines(&out.join("changes.jsonl")) {
        if change["collection"] == "room_averages" {
            let data = &change["data"];
            from_changes.insert(
                key(data),
                (data["count"].as_i64().unwrap(), hundredths(&data["sum"])),
            );
        }
    }
    assert_eq!(from_changes, totals);
    let stored: BTreeMap<_, _> = documents(&mongo_uri(), &db, "room_averages")
        .values()
        .map(|document| {
            let record = mongodb::bson::Bson::Document(document.clone()).into_relaxed_extjson();
            (
                key(&record),
                (
                    record["count"].as_i64().unwrap(),
                    hundredths(&record["sum"]),
                ),
            )
        })
        .collect();
    assert_eq!(stored, totals);
    assert_eq!(
        documents(&mongo_uri(), &db, "dead_letters").len(),
        bad.len()
    );

    // The window averages hold every reading once; the deltas follow each room's temperatures.
    let mut windowed: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for record in lines(&out.join("window_averages.jsonl")) {
        let total = windowed.entry(key(&record)).or_default();
        total.0 += record["count"].as_i64().unwrap();
        total.1 += hundredths(&record["sum"]);
    }
    assert_eq!(windowed, totals);
    let expected_deltas: BTreeSet<(String, i64, i64)> = temperatures
        .iter()
        .flat_map(|(room, readings)| {
            readings
                .windows(2)
                .map(move |pair| (room.clone(), pair[1].0, pair[1].1 - pair[0].1))
        })
        .collect();
    let deltas: BTreeSet<(String, i64, i64)> = lines(&out.join("temperature_deltas.jsonl"))
        .iter()
        .map(|record| {
            (
                record["room"].as_str().unwrap().to_string(),
                record["ts"].as_i64().unwrap(),
                hundredths(&record["delta"]),
            )
        })
        .collect();
    assert_eq!(deltas, expected_deltas);
}

proptest! {
    // Each case runs the binary and writes to MongoDB: a few dozen cases, not proptest's 256
    // (PROPTEST_CASES overrides).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn every_line_reaches_every_output_or_is_one_dead_letter(recording in recording()) {
        require_mongo();
        check(&recording);
    }
}
