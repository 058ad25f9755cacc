//! End-to-end tests of `roomflow replay` and `roomflow simulate`, run as the user runs them.
//! Expected values come from independent computations over the fixture (plain JSON parsing and
//! integer arithmetic in this file) or from hand arithmetic, never from the program's own output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn roomflow(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(args)
        .env("ROOMFLOW_LOG", "error")
        .output()
        .expect("roomflow runs");
    output
}

fn ok(args: &[&str]) -> Output {
    let output = roomflow(args);
    assert!(
        output.status.success(),
        "roomflow {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The sorted lines of every output file of a run, by file name.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mut content: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        content.sort();
        files.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            content,
        );
    }
    files
}

fn simulate(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["simulate", "--out", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(&args);
    path
}

/// Hundredths of a unit, exactly: simulated values have two decimals.
fn hundredths(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 100.0).round() as i64
}

#[test]
fn final_collections_equal_sums_computed_from_the_input() {
    let dir = tempfile::tempdir().unwrap();
    // In order (no disorder), with malformed lines: every well-formed line is applied.
    let input = simulate(
        dir.path(),
        "in.jsonl",
        &[
            "--rooms",
            "7",
            "--readings",
            "20000",
            "--seed",
            "3",
            "--out-of-order",
            "0",
            "--late",
            "0",
        ],
    );
    let out = dir.path().join("out");
    ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);

    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut windows: BTreeMap<(String, String, i64), (i64, i64)> = BTreeMap::new();
    let mut temperatures: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    let mut malformed = 0;
    for line in std::fs::read_to_string(&input).unwrap().lines() {
        let reading: Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(_) => {
                malformed += 1;
                continue;
            }
        };
        let (Some(room), Some(sensor), Some(ts), Some(value)) = (
            reading["room"].as_str(),
            reading["sensor"].as_str(),
            reading["ts"].as_i64(),
            reading["value"]
                .as_f64()
                .map(|_| hundredths(&reading["value"])),
        ) else {
            malformed += 1;
            continue;
        };
        let total = totals.entry((room.into(), sensor.into())).or_default();
        total.0 += 1;
        total.1 += value;
        let window = windows
            .entry((room.into(), sensor.into(), ts - ts % 60_000))
            .or_default();
        window.0 += 1;
        window.1 += value;
        if sensor == "temperature" {
            let at = temperatures
                .entry(room.into())
                .or_default()
                .entry(ts)
                .or_insert(i64::MIN);
            *at = (*at).max(value);
        }
    }
    assert!(malformed > 0, "the fixture should hold malformed lines");

    let got: BTreeMap<(String, String), (i64, i64)> = lines(&out.join("room_averages.jsonl"))
        .iter()
        .map(|r| {
            let key = (
                r["room"].as_str().unwrap().to_string(),
                r["sensor"].as_str().unwrap().to_string(),
            );
            let (count, sum) = (r["count"].as_i64().unwrap(), hundredths(&r["sum"]));
            let avg = r["avg"].as_f64().unwrap();
            assert!(
                (avg - sum as f64 / 100.0 / count as f64).abs() < 1e-9,
                "avg of {key:?}"
            );
            (key, (count, sum))
        })
        .collect();
    assert_eq!(got, totals);

    let got: BTreeMap<(String, String, i64), (i64, i64)> =
        lines(&out.join("window_averages.jsonl"))
            .iter()
            .map(|r| {
                let key = (
                    r["room"].as_str().unwrap().to_string(),
                    r["sensor"].as_str().unwrap().to_string(),
                    r["window_start"].as_i64().unwrap(),
                );
                (key, (r["count"].as_i64().unwrap(), hundredths(&r["sum"])))
            })
            .collect();
    assert_eq!(got, windows);

    let want: BTreeSet<(String, i64, i64, i64, i64, i64)> = temperatures
        .iter()
        .flat_map(|(room, series)| {
            let series: Vec<(i64, i64)> = series.iter().map(|(t, v)| (*t, *v)).collect();
            series
                .windows(2)
                .map(|p| {
                    (
                        room.clone(),
                        p[1].0,
                        p[0].0,
                        p[1].1,
                        p[0].1,
                        p[1].1 - p[0].1,
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let got: BTreeSet<(String, i64, i64, i64, i64, i64)> =
        lines(&out.join("temperature_deltas.jsonl"))
            .iter()
            .map(|d| {
                (
                    d["room"].as_str().unwrap().to_string(),
                    d["ts"].as_i64().unwrap(),
                    d["prev_ts"].as_i64().unwrap(),
                    hundredths(&d["value"]),
                    hundredths(&d["prev_value"]),
                    hundredths(&d["delta"]),
                )
            })
            .collect();
    assert_eq!(got, want);

    assert_eq!(lines(&out.join("dead_letters.jsonl")).len(), malformed);
    assert!(lines(&out.join("late.jsonl")).is_empty());
}

#[test]
fn worker_counts_and_batchings_give_identical_outputs_and_change_logs() {
    let dir = tempfile::tempdir().unwrap();
    // Four shards with disorder, late readings and malformed lines.
    let input = simulate(
        dir.path(),
        "shards",
        &[
            "--rooms",
            "12",
            "--readings",
            "30000",
            "--shards",
            "4",
            "--out-of-order",
            "0.05",
            "--late",
            "0.005",
        ],
    );
    let mut runs = Vec::new();
    for (workers, batch) in [("1", "8192"), ("2", "7"), ("4", "1000"), ("3", "1")] {
        let out = dir.path().join(format!("out-{workers}-{batch}"));
        ok(&[
            "replay",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--changes",
            "-w",
            workers,
            "--batch",
            batch,
        ]);
        let changes = std::fs::read(out.join("changes.jsonl")).unwrap();
        runs.push((outputs(&out), changes));
    }
    let (first, first_changes) = &runs[0];
    assert!(
        !first["late.jsonl"].is_empty(),
        "the fixture should hold late readings"
    );
    assert!(
        !first["dead_letters.jsonl"].is_empty(),
        "the fixture should hold malformed lines"
    );
    assert!(first_changes.len() > 1000);
    for (files, changes) in &runs[1..] {
        assert_eq!(files, first);
        assert!(
            changes == first_changes,
            "changes.jsonl differs between worker counts"
        );
    }
}

#[test]
fn two_processes_write_parts_that_together_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = simulate(
        dir.path(),
        "shards",
        &["--rooms", "9", "--readings", "20000", "--shards", "3"],
    );
    let single = dir.path().join("single");
    ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        single.to_str().unwrap(),
        "-w",
        "2",
    ]);

    // Two free ports for the two processes.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let hostfile = dir.path().join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    let cluster = dir.path().join("cluster");
    let spawn = |process: &str| {
        Command::new(env!("CARGO_BIN_EXE_roomflow"))
            .args([
                "replay",
                input.to_str().unwrap(),
                "--out",
                cluster.to_str().unwrap(),
            ])
            .args([
                "-w",
                "2",
                "-n",
                "2",
                "-p",
                process,
                "-h",
                hostfile.to_str().unwrap(),
            ])
            .env("ROOMFLOW_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (zero, one) = (spawn("0"), spawn("1"));
    for child in [zero, one] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let parts = outputs(&cluster);
    let single = outputs(&single);
    for collection in ["room_averages", "window_averages", "temperature_deltas"] {
        let mut joined: Vec<String> = [0, 1]
            .iter()
            .flat_map(|p| parts[&format!("{collection}.{p}.jsonl")].clone())
            .collect();
        joined.sort();
        assert_eq!(
            joined,
            single[&format!("{collection}.jsonl")],
            "{collection}"
        );
    }
    assert_eq!(parts["dead_letters.jsonl"], single["dead_letters.jsonl"]);
    assert_eq!(parts["late.jsonl"], single["late.jsonl"]);
}

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
fn without_out_a_table_of_rooms_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let input = simulate(
        dir.path(),
        "in.jsonl",
        &["--rooms", "3", "--readings", "2000"],
    );
    let output = ok(&["replay", input.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "header and three rooms:\n{table}");
    for column in ["room", "co2", "humidity", "light", "temperature"] {
        assert!(rows[0].contains(column), "{table}");
    }
    assert!(rows[1].starts_with("r000"), "{table}");
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("3 rooms") && summary.contains("readings/s"),
        "{summary}"
    );
}

#[test]
fn configuration_errors_fail_at_start_naming_the_problem() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["replay", "/no/such/input"],
            "cannot read input `/no/such/input`",
        ),
        (
            &["replay", "x", "--valid", "temperature"],
            "SENSOR=MIN..MAX",
        ),
        (&["replay", "x", "--window", "soon"], "--window"),
        (&["replay", "x", "-n", "2", "-p", "5"], "-p/--process"),
        (&["replay", "x", "--changes"], "--out"),
    ];
    for (args, message) in cases {
        let output = roomflow(args);
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(message),
            "{args:?}: expected `{message}` in:\n{stderr}"
        );
    }
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
fn the_bundled_sample_replays() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/building.jsonl.gz");
    let output = ok(&["replay", sample.to_str().unwrap()]);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("20 rooms"), "{summary}");
}
