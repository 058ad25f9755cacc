//! End-to-end: every input format, gzip and stdin merged into one replay; malformed and late
//! lines reported with their location; pacing. Expected values are worked out by hand.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

#[test]
fn keti_intel_gzip_and_stdin_inputs_merge_into_one_replay() {
    let dir = tempfile::tempdir().unwrap();
    // KETI layout, one file gzipped; the first temperature of room 419 is implausible.
    let keti = dir.path().join("keti");
    std::fs::create_dir_all(keti.join("419")).unwrap();
    std::fs::create_dir_all(keti.join("413")).unwrap();
    std::fs::write(
        keti.join("413/co2.csv"),
        "1377299100, 400\n1377299105, 500\n",
    )
    .unwrap();
    let gz = std::fs::File::create(keti.join("419/temperature.csv.gz")).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(gz, flate2::Compression::default());
    encoder
        .write_all(b"1377299101, 579.27\n1377299102, 23.00\n1377299107, 23.50\n")
        .unwrap();
    encoder.finish().unwrap();
    // An Intel lab file: mote 7, one line without light.
    let intel = dir.path().join("7.txt");
    std::fs::write(
        &intel,
        "2013-08-23 23:05:00.5 1 7 20.0 40.0 100.0 2.5\n2013-08-23 23:05:30 2 7 21.0 41.0  2.4\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args([
            "replay",
            keti.to_str().unwrap(),
            intel.to_str().unwrap(),
            "-",
            "--valid",
            "temperature=-40..85",
        ])
        .args(["--out", out.to_str().unwrap()])
        .env("ROOMFLOW_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"room\": \"413\", \"sensor\": \"co2\", \"ts\": \"2013-08-23T23:05:10Z\", \"value\": 600}\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let averages: BTreeMap<(String, String), (i64, f64)> = lines(&out.join("room_averages.jsonl"))
        .iter()
        .map(|r| {
            (
                (
                    r["room"].as_str().unwrap().into(),
                    r["sensor"].as_str().unwrap().into(),
                ),
                (r["count"].as_i64().unwrap(), r["avg"].as_f64().unwrap()),
            )
        })
        .collect();
    let want: BTreeMap<(String, String), (i64, f64)> = [
        // 400, 500 from KETI and 600 from stdin (2013-08-23T23:05:10Z = 1377299110 s).
        (("413", "co2"), (3, 500.0)),
        // 579.27 is a dead letter: (23.00 + 23.50) / 2.
        (("419", "temperature"), (2, 23.25)),
        (("7", "temperature"), (2, 20.5)),
        (("7", "humidity"), (2, 40.5)),
        (("7", "light"), (1, 100.0)),
        (("7", "voltage"), (2, 2.45)),
    ]
    .into_iter()
    .map(|((room, sensor), v)| ((room.to_string(), sensor.to_string()), v))
    .collect();
    assert_eq!(
        averages.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (key, (count, avg)) in &want {
        let (got_count, got_avg) = averages[key];
        assert_eq!(got_count, *count, "{key:?}");
        assert!((got_avg - avg).abs() < 1e-9, "{key:?}: {got_avg} != {avg}");
    }
    let deltas = lines(&out.join("temperature_deltas.jsonl"));
    let mut deltas: Vec<(String, i64, f64)> = deltas
        .iter()
        .map(|d| {
            (
                d["room"].as_str().unwrap().into(),
                d["ts"].as_i64().unwrap(),
                d["delta"].as_f64().unwrap(),
            )
        })
        .collect();
    deltas.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(deltas.len(), 2);
    // 23.50 - 23.00 at 1377299107 s; 21.0 - 20.0 at 2013-08-23 23:05:30 = 1377299130 s.
    assert_eq!(
        (deltas[0].0.as_str(), deltas[0].1),
        ("419", 1_377_299_107_000)
    );
    assert!((deltas[0].2 - 0.5).abs() < 1e-9);
    assert_eq!(
        (deltas[1].0.as_str(), deltas[1].1),
        ("7", 1_377_299_130_000)
    );
    assert!((deltas[1].2 - 1.0).abs() < 1e-9);

    let dead = lines(&out.join("dead_letters.jsonl"));
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("419/temperature.csv.gz:1"),
        "{}",
        dead[0]
    );
    assert!(dead[0]["reason"]
        .as_str()
        .unwrap()
        .contains("plausible range"));
}

#[test]
fn malformed_and_late_lines_are_reported_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"room": "1", "sensor": "temperature", "ts": 600000, "value": 20}"#,
            r#"{"room": "1", "sensor": "temperature", "ts": 0, "value": 21}"#,
            r#"{"room": "1", "sensor": "temperature", "value": 22}"#,
            r#"{"room": "1", "sensor": "temperature", "ts": 300000, "value": 23}"#,
            r#"not json"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("2 readings applied, 2 dead letters, 1 late"),
        "{summary}"
    );

    let name = input.display().to_string();
    let dead = lines(&out.join("dead_letters.jsonl"));
    let sources: BTreeSet<&str> = dead.iter().map(|d| d["source"].as_str().unwrap()).collect();
    assert_eq!(
        sources,
        BTreeSet::from([format!("{name}:3").as_str(), format!("{name}:5").as_str()])
    );
    assert!(dead
        .iter()
        .any(|d| d["reason"].as_str().unwrap().contains("missing field `ts`")));
    assert!(dead.iter().any(|d| d["line"] == "not json"));
    // 0 s is ten minutes behind 600 s: late. 300 s is exactly five minutes behind: applied.
    let late = lines(&out.join("late.jsonl"));
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["source"], format!("{name}:2"));
    assert_eq!(late[0]["ts"], 0);
    let deltas = lines(&out.join("temperature_deltas.jsonl"));
    assert_eq!(deltas.len(), 1);
    assert_eq!(
        (deltas[0]["ts"].as_i64(), deltas[0]["prev_ts"].as_i64()),
        (Some(600_000), Some(300_000))
    );
}

#[test]
fn speed_paces_the_replay_by_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    // Two seconds of event time at twice the recorded pace: at least a second of wall time.
    std::fs::write(
        &input,
        (0..3)
            .map(|i| {
                format!(
                    r#"{{"room": "1", "sensor": "co2", "ts": {}, "value": 1}}"#,
                    1_000_000 + i * 1000
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    ok(&["replay", input.to_str().unwrap(), "--speed", "2"]);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_summary_counts_every_reading_and_room_with_out_and_two_workers() {
    // 100 rooms of two sensors, one reading each: about half the rooms have their two keys on
    // different workers, each worker then reporting that room with one reading. Equal reports
    // from two workers must both count.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut lines = String::new();
    for room in 0..100 {
        for sensor in ["co2", "humidity"] {
            lines.push_str(&format!(
                "{{\"room\": \"r{room}\", \"sensor\": \"{sensor}\", \"ts\": {}, \"value\": 1}}\n",
                1_000 + room
            ));
        }
    }
    std::fs::write(&input, lines).unwrap();
    let out = dir.path().join("out");
    let output = ok(&[
        "replay",
        input.to_str().unwrap(),
        "-w",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("replayed 200 inputs: 200 readings applied")
            && stderr.contains("; 100 rooms;"),
        "{stderr}"
    );
}
