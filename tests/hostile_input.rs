//! End-to-end: input built to break the job (a name of 100,000 characters, a line far over the
//! limit, an unreadable line under `--speed`) becomes bounded dead letters, and every output is
//! still written. Expected values are worked out by hand.

mod common;

use std::time::Duration;

use common::*;

/// A JSON reading line.
fn reading(room: &str, sensor: &str, ts: i64, value: f64) -> String {
    format!(r#"{{"room": "{room}", "sensor": "{sensor}", "ts": {ts}, "value": {value}}}"#)
}

#[test]
fn a_room_of_100000_characters_is_a_bounded_dead_letter_and_the_table_still_prints() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let huge_room = "r".repeat(100_000);
    // The longest name allowed (256 bytes) is a room like any other.
    let longest_room = "l".repeat(256);
    let huge_line = reading(&huge_room, "co2", 2000, 500.0);
    let text = [
        reading("1", "co2", 1000, 400.0),
        huge_line.clone(),
        reading(&longest_room, "co2", 3000, 600.0),
    ]
    .join("\n");
    std::fs::write(&input, &text).unwrap();
    // Without --out, the table goes to stdout.
    let output = ok(&["replay", input.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.lines().any(|line| line.starts_with("1 ")), "{table}");
    // Shown cut to 24 characters: 23 and an ellipsis.
    assert!(table.contains(&format!("{}…", "l".repeat(23))), "{table}");

    let out = dir.path().join("out");
    ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let dead = lines(&out.join("dead_letters.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["source"], format!("{}:2", input.display()));
    assert_eq!(
        dead[0]["reason"],
        "room name of 100000 bytes is longer than the 256 allowed"
    );
    // The line's first KiB, and its full length.
    let line = dead[0]["line"].as_str().unwrap();
    assert_eq!(line.len(), 1024);
    assert!(line.starts_with(r#"{"room": "rrr"#), "{line}");
    assert_eq!(dead[0]["line_bytes"], huge_line.len());
    assert!(
        dead[0].get("room").is_none(),
        "the name is not copied whole"
    );

    // The final state files are in any order (docs/schemas.md).
    let mut rooms: Vec<String> = lines(&out.join("room_averages.jsonl"))
        .iter()
        .map(|average| average["room"].as_str().unwrap().to_string())
        .collect();
    rooms.sort();
    assert_eq!(rooms, vec!["1".to_string(), longest_room]);
}

#[test]
fn a_line_over_the_limit_is_skipped_to_its_newline_and_the_next_line_applies() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    // 200,000 bytes of a JSON string that never closes, then a good line.
    let long_line = format!(r#"{{"room": "{}"#, "x".repeat(200_000 - 10));
    assert_eq!(long_line.len(), 200_000);
    std::fs::write(
        &input,
        format!("{long_line}\n{}\n", reading("2", "temperature", 1000, 21.5)),
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = ok(&[
        "replay",
        input.to_str().unwrap(),
        "--max-line-bytes",
        "4096",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("1 readings applied, 1 dead letters"),
        "{summary}"
    );
    let dead = lines(&out.join("dead_letters.jsonl"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["source"], format!("{}:1", input.display()));
    assert_eq!(
        dead[0]["reason"],
        "line of 200000 bytes is longer than the 4096 allowed (--max-line-bytes)"
    );
    assert_eq!(dead[0]["line"].as_str().unwrap().len(), 1024);
    assert_eq!(dead[0]["line_bytes"], 200_000);
    // The whole dead-letter file is bounded by the excerpt, not by the line.
    assert!(
        std::fs::metadata(out.join("dead_letters.jsonl"))
            .unwrap()
            .len()
            < 2048
    );
    let averages = lines(&out.join("room_averages.jsonl"));
    assert_eq!(averages.len(), 1);
    assert_eq!(
        (averages[0]["room"].as_str(), averages[0]["avg"].as_f64()),
        (Some("2"), Some(21.5))
    );
}

#[test]
fn an_unreadable_line_does_not_stop_a_paced_replay() {
    // Once, `--speed` waited "until" the event time `i64::MIN` the merge reports for a dead
    // letter: the subtraction wrapped around and the replay stopped for good at that line.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let text = [
        reading("1", "co2", 1_700_000_000_000, 400.0),
        r#"{"room": "1", "sensor": "co2", "ts": 1700000000500, "value": "n/a"}"#.to_string(),
        reading("1", "co2", 1_700_000_001_000, 600.0),
    ]
    .join("\n");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(["replay", input.to_str().unwrap(), "--speed", "10"])
        .args(["--out", out.to_str().unwrap()])
        .env("ROOMFLOW_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // One second of event time at ten times the pace: a tenth of a second, plus start-up.
    let status = exit_within(&mut child, Duration::from_secs(60), "the paced replay");
    assert!(status.success());
    assert_eq!(lines(&out.join("dead_letters.jsonl")).len(), 1);
    let averages = lines(&out.join("room_averages.jsonl"));
    assert_eq!(
        (averages[0]["count"].as_i64(), averages[0]["avg"].as_f64()),
        (Some(2), Some(500.0))
    );
}

#[test]
fn a_full_disk_fails_the_replay_naming_the_file_and_reports_nothing_as_done() {
    // /dev/full answers every write with ENOSPC: the output file links to it.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let full = out.join("room_averages.jsonl");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let stderr = failed_replay_to(dir.path(), &out);
    assert!(
        stderr.contains(&format!(
            "cannot write `{}`: No space left on device",
            full.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("results in"), "{stderr}");
}

#[test]
fn an_out_directory_that_cannot_be_made_fails_at_start_naming_it() {
    // A path under a regular file cannot become a directory, whoever runs the test (root
    // ignores permission bits, so a read-only directory would not do).
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let out = blocker.join("out");
    let stderr = failed_replay_to(dir.path(), &out);
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
    assert!(!stderr.contains("results in"), "{stderr}");
}

/// Replays one good reading (written in `dir`) to `--out out`, which must fail with exit 1; its
/// standard error.
fn failed_replay_to(dir: &std::path::Path, out: &std::path::Path) -> String {
    let input = dir.join("in.jsonl");
    std::fs::write(&input, reading("1", "co2", 1000, 400.0)).unwrap();
    let output = roomflow(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}
