//! End-to-end: the final collections and change logs of `roomflow replay` are right, and the
//! same for any number of workers, batchings and processes. Expected values come from independent
//! computations over the fixture in this file, never from the program's own output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

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

    let hostfile = two_process_hostfile(dir.path());
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

/// Two shard files of 20,000 readings over 6 rooms, with disorder and late readings.
fn disordered_shards(dir: &std::path::Path) -> std::path::PathBuf {
    simulate(
        dir,
        "shards",
        &[
            "--rooms",
            "6",
            "--readings",
            "20000",
            "--shards",
            "2",
            "--out-of-order",
            "0.05",
            "--late",
            "0.005",
        ],
    )
}

#[test]
fn applying_the_change_log_in_order_rebuilds_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    // Disorder and late readings, so the log holds corrections (retractions and replacements).
    let input = disordered_shards(dir.path());
    let out = dir.path().join("out");
    ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--changes",
        "--tick",
        "1s",
        "-w",
        "2",
    ]);

    // What a downstream consumer does: upsert or delete by (collection, key), in file order.
    let mut state: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut times = Vec::new();
    let (mut upserts, mut deletes) = (0, 0);
    for change in lines(&out.join("changes.jsonl")) {
        let key = (
            change["collection"].as_str().unwrap().to_string(),
            change["key"].to_string(),
        );
        times.push(change["time"].as_u64().unwrap());
        match change["operation"].as_str().unwrap() {
            "upsert" => {
                upserts += 1;
                state.insert(key, change["data"].clone());
            }
            "delete" => {
                deletes += 1;
                state.remove(&key);
            }
            other => panic!("unknown operation {other}"),
        }
    }
    assert!(
        times.windows(2).all(|t| t[0] <= t[1]),
        "changes are in time order"
    );
    assert!(upserts > 1000, "{upserts} upserts");

    let mut rebuilt: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((collection, _), data) in state {
        rebuilt
            .entry(collection)
            .or_default()
            .insert(data.to_string());
    }
    for collection in ["room_averages", "window_averages", "temperature_deltas"] {
        let written: BTreeSet<String> = lines(&out.join(format!("{collection}.jsonl")))
            .iter()
            .map(Value::to_string)
            .collect();
        assert_eq!(
            rebuilt.remove(collection).unwrap_or_default(),
            written,
            "{collection}"
        );
    }
    // Nothing is ever deleted: sealing retractions are filtered out, and a delta is keyed by its
    // own reading, which stays; so a consumer sees no deletions at all.
    assert_eq!(deletes, 0);
}

#[test]
fn emit_final_ends_with_the_same_collections_and_logs_each_window_once() {
    let dir = tempfile::tempdir().unwrap();
    // Disorder and late readings: some windows gain readings after first appearing.
    let input = disordered_shards(dir.path());
    let replay = |emit: &str| {
        let out = dir.path().join(emit);
        ok(&[
            "replay",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--changes",
            "--tick",
            "1s",
            "--emit",
            emit,
            "-w",
            "2",
        ]);
        let changes = lines(&out.join("changes.jsonl"));
        std::fs::remove_file(out.join("changes.jsonl")).unwrap();
        (outputs(&out), changes)
    };
    let (updates, updates_log) = replay("updates");
    let (finals, finals_log) = replay("final");
    assert_eq!(finals, updates, "the final collections differ");

    let windows = |log: &[Value]| -> Vec<Value> {
        log.iter()
            .filter(|change| change["collection"] == "window_averages")
            .cloned()
            .collect()
    };
    let window_count = updates["window_averages.jsonl"].len();
    // With updates, windows change many times (a 1 s tick); with final, once each, an upsert of
    // the value the final collection holds, and nothing else in the log differs.
    assert!(windows(&updates_log).len() > 2 * window_count);
    let final_windows = windows(&finals_log);
    assert_eq!(final_windows.len(), window_count);
    let keys: BTreeSet<String> = final_windows
        .iter()
        .map(|change| change["key"].to_string())
        .collect();
    assert_eq!(keys.len(), window_count, "a window changed twice");
    let written: BTreeSet<String> = updates["window_averages.jsonl"]
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap().to_string())
        .collect();
    for change in &final_windows {
        assert_eq!(change["operation"], "upsert");
        assert!(written.contains(&change["data"].to_string()), "{change}");
    }
    let others = |log: &[Value]| -> Vec<Value> {
        log.iter()
            .filter(|change| change["collection"] != "window_averages")
            .cloned()
            .collect()
    };
    assert_eq!(others(&finals_log), others(&updates_log));
}
