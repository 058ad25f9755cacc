//! `roomflow publish` and `roomflow run` against Apache Kafka (the one `scripts/test.sh` starts,
//! or `KAFKA_BROKERS`): the state rebuilt from the alpha
//! topic equals `roomflow replay` of the same input, dead letters keep their bytes and say where
//! they came from, and a restart after more input still agrees with a replay of all of it.

mod common;

use std::collections::BTreeMap;

use common::kafka::{
    add_partitions, apply_changes, assert_same_state, brokers, publish, read_topic, replayed_state,
    require_broker, unique, wait_for_state,
};
use common::{exit_within, lines, ok, quiet_fixture, simulate, two_process_hostfile, Job};

/// The job's output topics and consumer group, unique to one test.
struct Outputs {
    alpha: String,
    dead: String,
    group: String,
}

impl Outputs {
    fn new() -> Outputs {
        Outputs {
            alpha: unique("alpha"),
            dead: unique("dead"),
            group: unique("group"),
        }
    }

    /// The `run` flags naming them, and the broker.
    fn flags(&self) -> Vec<String> {
        [
            "--alpha-topic",
            &self.alpha,
            "--dead-letter-topic",
            &self.dead,
            "--group",
            &self.group,
            "--brokers",
            &brokers(),
            // At-least-once, kept tested now that exactly-once is the default
            // (tests/exactly_once.rs runs the default).
            "--alpha-guarantee",
            "at-least-once",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// `roomflow run` with `args` and then `outputs`' flags, in the background, logging errors.
fn spawn_job(args: &[&str], outputs: &Outputs) -> Job {
    spawn_job_logging(args, outputs, "error")
}

/// [`spawn_job`], logging at `level` (to the test's stderr, shown whether it passes or fails).
fn spawn_job_logging(args: &[&str], outputs: &Outputs, level: &str) -> Job {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .arg("run")
        .args(args)
        .args(outputs.flags())
        .env("ROOMFLOW_LOG", level)
        .spawn()
        .unwrap();
    Job(child)
}

fn run_until_idle(topic: &str, outputs: &Outputs, extra: &[&str]) {
    let mut args = vec![
        "run",
        "--topics",
        topic,
        "--exit-when-idle",
        "1s",
        "-w",
        "2",
    ];
    args.extend_from_slice(extra);
    let flags = outputs.flags();
    args.extend(flags.iter().map(String::as_str));
    ok(&args);
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
    let (topic, outputs) = (unique("sensors"), Outputs::new());
    publish(&input, &topic, "4");
    // A small catch-up lag: most of the 5,000 messages per partition are read as a backlog, at
    // the 60 s catch-up tick instead of the fine live tick (`--tick`, 10 ms).
    run_until_idle(&topic, &outputs, &["--catch-up-lag", "500"]);

    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    let changes = read_topic(&outputs.alpha);
    let rebuilt = apply_changes(&changes);
    assert_same_state(&rebuilt, &replayed);
    // Coalesced: 48 room averages over about 35 minutes of readings change about once a minute
    // each while catching up (at 100 ms, nearly every reading would be a change of its own).
    let room_changes = changes
        .iter()
        .filter(|r| r.key.as_ref().unwrap().starts_with(br#"["room_averages""#))
        .count();
    assert!(
        room_changes < 20_000 / 4,
        "{room_changes} room average changes"
    );

    // Every malformed line is a dead letter, with the exact bytes found at the offset it names.
    let published: BTreeMap<(i32, i64), Vec<u8>> = read_topic(&topic)
        .into_iter()
        .map(|record| ((record.partition, record.offset), record.payload))
        .collect();
    let dead_letters = read_topic(&outputs.dead);
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

    let (topic, outputs) = (unique("sensors"), Outputs::new());
    publish(&first, &topic, "4");
    run_until_idle(&topic, &outputs, &[]);
    publish(&second, &topic, "4");
    run_until_idle(&topic, &outputs, &[]);

    let replayed = replayed_state(&[&first, &second], &dir.path().join("replay"));
    let rebuilt = apply_changes(&read_topic(&outputs.alpha));
    assert_same_state(&rebuilt, &replayed);
}

/// The total `count` of the room averages rebuilt from `alpha` so far.
fn applied_so_far(alpha: &str) -> i64 {
    apply_changes(&read_topic(alpha))
        .iter()
        .filter(|((collection, _), _)| collection == "room_averages")
        .map(|(_, data)| data["count"].as_i64().unwrap())
        .sum()
}

#[test]
fn a_worker_without_partitions_holds_nothing_back_and_sigterm_stops_cleanly() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = simulate(
        dir.path(),
        "readings.jsonl",
        &[
            "--rooms",
            "4",
            "--readings",
            "3000",
            "--late",
            "0",
            "--malformed",
            "0",
        ],
    );
    let (topic, outputs) = (unique("sensors"), Outputs::new());
    // One partition, two workers: one of them owns nothing.
    ok(&[
        "publish",
        input.to_str().unwrap(),
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--brokers",
        &brokers(),
    ]);
    let mut job = spawn_job(&["--topics", &topic, "-w", "2"], &outputs);

    // While the job runs, everything but the last tick reaches alpha: the idle worker follows
    // the busy one instead of holding the frontier at its start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut applied = 0;
    while applied < 3000 - 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {applied} of 3000 readings reached alpha while the job ran"
        );
        assert!(
            job.0.try_wait().unwrap().is_none(),
            "the job stopped by itself"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        applied = applied_so_far(&outputs.alpha);
    }

    // SIGTERM: the job flushes the last tick, commits, and exits 0.
    assert!(job.terminate(), "the job did not stop cleanly");
    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    assert_same_state(&apply_changes(&read_topic(&outputs.alpha)), &replayed);

    // The committed position is the end of the topic: nothing consumed is left uncommitted.
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &outputs.group)
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition(&topic, 0);
    let committed = consumer
        .committed_offsets(list, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition(&topic, 0).unwrap().offset(),
        rdkafka::Offset::Offset(3000)
    );
}

#[test]
fn two_processes_share_the_partitions_and_agree_with_a_replay() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = simulate(
        dir.path(),
        "readings.jsonl",
        &["--rooms", "8", "--readings", "8000", "--late", "0.002"],
    );
    let (topic, outputs) = (unique("sensors"), Outputs::new());
    publish(&input, &topic, "4");

    let hostfile = two_process_hostfile(dir.path());
    let spawn = |process: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_roomflow"))
            .args(["run", "--topics", &topic, "--exit-when-idle", "1s"])
            .args(outputs.flags())
            .args([
                "-w",
                "1",
                "-n",
                "2",
                "-p",
                process,
                "-h",
                hostfile.to_str().unwrap(),
            ])
            .env("ROOMFLOW_LOG", "error")
            .stderr(std::process::Stdio::piped())
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
    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    assert_same_state(&apply_changes(&read_topic(&outputs.alpha)), &replayed);
}

/// Waits until the room averages rebuilt from `alpha` count at least `readings`.
fn wait_for_applied(alpha: &str, readings: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let applied = applied_so_far(alpha);
        if applied >= readings {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {applied} of {readings} readings reached alpha"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn partitions_added_to_a_topic_while_running_are_read() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let quiet = ["--late", "0", "--malformed", "0"];
    let first = simulate(
        dir.path(),
        "first.jsonl",
        &[&["--rooms", "4", "--readings", "2000"][..], &quiet].concat(),
    );
    // Later than the first recording, and with more rooms, so the grown topic spreads them over
    // its new partitions too.
    let second = simulate(
        dir.path(),
        "second.jsonl",
        &[
            &["--rooms", "12", "--readings", "6000", "--seed", "2"][..],
            &["--start", "1700003600000"],
            &quiet,
        ]
        .concat(),
    );
    let (topic, outputs) = (unique("sensors"), Outputs::new());
    publish(&first, &topic, "1");
    // The second recording, published at full speed, spans ten minutes of event time in a
    // fraction of a second. Partitions at their end hold no time back, so the job's time may run
    // ahead with one partition's share of it before the others deliver theirs: a lateness of an
    // hour keeps those readings on time (live input would be seconds apart, not minutes).
    let mut job = spawn_job_logging(
        &[
            &["--topics", &topic, "--discover-interval", "500ms"][..],
            &["--lateness", "1h", "-w", "2"],
        ]
        .concat(),
        &outputs,
        "warn",
    );
    // Everything but the last tick of the first recording is out before the topic grows.
    wait_for_applied(&outputs.alpha, 2000 - 10);

    add_partitions(&topic, 3);
    publish(&second, &topic, "3");
    let published = read_topic(&topic);
    for partition in [1, 2] {
        assert!(
            published.iter().any(|r| r.partition == partition),
            "nothing was published to the new partition {partition}"
        );
    }
    wait_for_applied(&outputs.alpha, 8000 - 30);

    assert!(job.terminate(), "the job did not stop cleanly");
    let replayed = replayed_state(&[&first, &second], &dir.path().join("replay"));
    assert_same_state(&apply_changes(&read_topic(&outputs.alpha)), &replayed);
}

#[test]
fn topics_that_appear_while_running_are_read() {
    // A topic matching the pattern, created while the job runs: its partitions reach the job
    // by discovery, as the partitions added to a topic do.
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let first = simulate(
        dir.path(),
        "first.jsonl",
        &[
            "--rooms",
            "4",
            "--readings",
            "2000",
            "--late",
            "0",
            "--malformed",
            "0",
        ],
    );
    let second = simulate(
        dir.path(),
        "second.jsonl",
        &[
            "--rooms",
            "8",
            "--readings",
            "4000",
            "--late",
            "0",
            "--malformed",
            "0",
            "--start",
            "1700003600000",
            "--seed",
            "2",
        ],
    );
    let prefix = unique("building");
    let (topic, later, outputs) = (
        format!("{prefix}.floor1"),
        format!("{prefix}.floor2"),
        Outputs::new(),
    );
    let brokers = brokers();
    ok(&[
        "publish",
        first.to_str().unwrap(),
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--brokers",
        &brokers,
    ]);
    let mut job = spawn_job(
        &[
            "--topic-pattern",
            &format!("^{prefix}\\."),
            "--discover-interval",
            "500ms",
            "-w",
            "2",
        ],
        &outputs,
    );
    wait_for_applied(&outputs.alpha, 2000 - 10);

    ok(&[
        "publish",
        second.to_str().unwrap(),
        "--topic",
        &later,
        "--partitions",
        "2",
        "--brokers",
        &brokers,
    ]);
    wait_for_applied(&outputs.alpha, 6000 - 20);

    assert!(job.terminate(), "the job did not stop cleanly");
    let replayed = replayed_state(&[&first, &second], &dir.path().join("replay"));
    assert_same_state(&apply_changes(&read_topic(&outputs.alpha)), &replayed);
}

#[test]
fn with_emit_final_alpha_carries_each_window_once_and_the_replayed_state() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    // Out-of-order readings within the lateness reach windows that are already open; late ones
    // are dead letters.
    let input = simulate(
        dir.path(),
        "readings.jsonl",
        &[
            "--rooms",
            "8",
            "--readings",
            "12000",
            "--out-of-order",
            "0.05",
            "--late",
            "0.002",
        ],
    );
    let (topic, outputs) = (unique("sensors"), Outputs::new());
    publish(&input, &topic, "4");
    // The live tick, no coalescing: with updates, a window would change with nearly every one
    // of its readings.
    run_until_idle(
        &topic,
        &outputs,
        &["--emit", "final", "--catch-up-tick", "20ms"],
    );

    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    let changes = read_topic(&outputs.alpha);
    assert_same_state(&apply_changes(&changes), &replayed);
    let mut versions: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for record in &changes {
        let key = record.key.clone().unwrap();
        if key.starts_with(br#"["window_averages""#) {
            *versions.entry(key).or_default() += 1;
        }
    }
    let windows = replayed
        .keys()
        .filter(|(collection, _)| collection == "window_averages")
        .count();
    assert_eq!(versions.len(), windows);
    assert!(
        versions.values().all(|count| *count == 1),
        "a window reached alpha more than once"
    );
}

#[test]
fn an_unreadable_line_does_not_stop_a_paced_publish() {
    // Once, `--speed` waited "until" the event time `i64::MIN` that a dead letter carries: the
    // subtraction wrapped around and publish stopped for good at that line. The unreadable line
    // is produced unchanged (the job's dead-letter topic is where it belongs) and the rest
    // follows.
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("paced.jsonl");
    let lines_in = [
        r#"{"room": "1", "sensor": "co2", "ts": 1700000000000, "value": 400}"#,
        r#"{"room": "1", "sensor": "co2", "ts": 1700000000500, "value": "n/a"}"#,
        r#"{"room": "1", "sensor": "co2", "ts": 1700000001000, "value": 600}"#,
    ];
    std::fs::write(&input, lines_in.join("\n")).unwrap();
    let topic = unique("paced");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(["publish", input.to_str().unwrap(), "--speed", "10"])
        .args([
            "--topic",
            &topic,
            "--partitions",
            "1",
            "--brokers",
            &brokers(),
        ])
        .env("ROOMFLOW_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // One second of event time at ten times the pace: a tenth of a second, plus start-up.
    let status = exit_within(
        &mut child,
        std::time::Duration::from_secs(60),
        "the paced publish",
    );
    assert!(status.success());
    let published: Vec<String> = read_topic(&topic)
        .iter()
        .map(|record| String::from_utf8(record.payload.clone()).unwrap())
        .collect();
    assert_eq!(published.len(), 3, "{published:?}");
    assert!(published[1].contains("n/a"), "{published:?}");
    let values: Vec<f64> = [&published[0], &published[2]]
        .iter()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["value"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(values, [400.0, 600.0]);
}

#[test]
fn when_the_stream_pauses_the_last_readings_reach_alpha_before_any_new_message() {
    // A partition at its end could still deliver a reading of the newest tick, so that tick is
    // held open while messages come; once the stream has been quiet for a tick it closes, and
    // the last readings' changes go out (before, they waited for the next message, for good if
    // none came).
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = quiet_fixture(dir.path(), "600");
    let (topic, outputs) = (unique("paused"), Outputs::new());
    publish(&input, &topic, "2");
    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    let mut job = spawn_job(&["--topics", &topic, "-w", "2"], &outputs);
    wait_for_state(
        || apply_changes(&read_topic(&outputs.alpha)),
        &replayed,
        || job.0.try_wait().unwrap().is_none(),
        || "(the stream paused after its last message)".to_string(),
    );
    assert!(job.terminate(), "the job did not stop cleanly");
}
