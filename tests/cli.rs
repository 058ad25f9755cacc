//! End-to-end: what a user sees at the command line: the table, the summary, configuration
//! errors, and the bundled sample.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

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
    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/building.jsonl.gz");
    let cases: [(&[&str], &str); 13] = [
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
        (&["run"], "--topics"),
        (&["run", "--topics", "s", "-X", "linger"], "KEY=VALUE"),
        (&["run", "--topics", "s", "--from", "yesterday"], "--from"),
        (
            &["run", "--topics", "s,alpha"],
            "must not include the job's own output topics",
        ),
        // Nothing listens on port 1: a clear error after the connect timeout, not a hang.
        (
            &["run", "--topics", "s", "--brokers", "127.0.0.1:1"],
            "cannot reach Kafka at `127.0.0.1:1`",
        ),
        (&["replay", SAMPLE, "--archive-readings"], "--mongo"),
        (
            &["replay", SAMPLE, "--mongo", "http://localhost"],
            "is not a MongoDB connection string",
        ),
        (
            &["replay", SAMPLE, "--mongo", "mongodb://127.0.0.1:1"],
            "cannot reach MongoDB at mongodb://127.0.0.1:1",
        ),
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
fn the_bundled_sample_replays() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/building.jsonl.gz");
    let output = ok(&["replay", sample.to_str().unwrap()]);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("20 rooms"), "{summary}");
}

#[test]
fn help_never_prints_a_secret_from_the_environment() {
    for command in ["run", "replay", "publish", "simulate", "dashboard"] {
        let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
            .args([command, "--help"])
            .env("MONGO_URI", "mongodb://user:mongo-secret@db:27017")
            .env("ROOMFLOW_KAFKA_PROPERTIES", "sasl.password=kafka-secret")
            .output()
            .unwrap();
        assert!(output.status.success(), "{command} --help");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            !help.contains("mongo-secret") && !help.contains("kafka-secret"),
            "{command} --help shows a secret:\n{help}"
        );
    }
    // The variables are still named, for a newcomer looking for them.
    let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("[env: MONGO_URI]"), "{help}");
    assert!(help.contains("[env: ROOMFLOW_KAFKA_PROPERTIES]"), "{help}");
}

#[test]
fn a_bad_mongodb_uri_is_reported_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "").unwrap();
    let output = roomflow(&[
        "replay",
        input.to_str().unwrap(),
        "--mongo",
        "mongodb://app:mongo-secret@db:notaport/x",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--mongo \"mongodb://app:***@db:notaport/x\" is not a MongoDB"),
        "{stderr}"
    );
    assert!(!stderr.contains("mongo-secret"), "{stderr}");
}

#[test]
fn the_job_is_exactly_once_unless_told_otherwise() {
    let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(["run", "--help"])
        .env_remove("ROOMFLOW_ALPHA_GUARANTEE")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    let line = help
        .lines()
        .skip_while(|line| !line.contains("--alpha-guarantee"))
        .take_while(|line| !line.trim_start().starts_with("--commit-interval"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(line.contains("[default: exactly-once]"), "{line}");
}
