//! Operating a running job: its Prometheus metrics and health endpoints (`--metrics`), its JSON
//! logs (`--log-format json`), and a misconfigured `--metrics` failing at start. Needs a
//! Kafka-protocol broker and a MongoDB-protocol server (`scripts/test.sh` starts both).
//!
//! The input is written here by hand, so every count the metrics must show is known in advance;
//! the counts of changes are checked against the alpha topic and MongoDB as read back.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::kafka::{brokers, produce, read_topic, require_broker, unique};
use common::mongo::{documents, mongo_uri, require_mongo};
use common::Job;

/// `GET path` on `address`: the status code and the body.
fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

const BASE: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

fn reading(room: &str, sensor: &str, ts: i64, value: f64) -> Vec<u8> {
    format!(r#"{{"room": "{room}", "sensor": "{sensor}", "ts": {ts}, "value": {value}}}"#)
        .into_bytes()
}

#[test]
fn metrics_count_what_the_job_did_and_logs_are_json_lines() {
    require_broker();
    require_mongo();
    // Rooms a and b: 10 temperature readings each, a minute apart. Then, all keyed by room so
    // each lands behind its room's readings: one reading 15 minutes behind its partition's
    // newest (late, with the default 5 min lateness); one outside --valid; two that are not
    // readings; one not UTF-8; one empty.
    let mut messages: Vec<(&str, Vec<u8>)> = Vec::new();
    for i in 0..10 {
        for room in ["a", "b"] {
            messages.push((
                room,
                reading(room, "temperature", BASE + i * MINUTE, 20.0 + i as f64),
            ));
        }
    }
    messages.push(("a", reading("a", "temperature", BASE - 6 * MINUTE, 19.0)));
    messages.push(("b", reading("b", "temperature", BASE + 10 * MINUTE, 500.0)));
    messages.push(("a", br#"{"room": "a", "sensor": "temperature"}"#.to_vec()));
    messages.push(("b", b"not json".to_vec()));
    messages.push(("a", vec![b'{', 0xff, 0xfe, b'}']));
    messages.push(("b", Vec::new()));
    let topic = unique("sensors");
    let as_slices: Vec<(&str, &[u8])> = messages.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    produce(&topic, 2, &as_slices);

    let (alpha, dead, group, db) = (
        unique("alpha"),
        unique("dead"),
        unique("group"),
        unique("ops").replace('-', "_"),
    );
    let address = free_address();
    let log_path = tempfile::NamedTempFile::new().unwrap();
    let mut job = Job(std::process::Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args([
            "run",
            "--alpha-guarantee",
            "at-least-once",
            "--topics",
            &topic,
            "-w",
            "2",
            "--brokers",
            &brokers(),
        ])
        .args(["--alpha-topic", &alpha, "--dead-letter-topic", &dead])
        .args([
            "--group",
            &group,
            "--mongo",
            &mongo_uri(),
            "--mongo-db",
            &db,
        ])
        .args([
            "--valid",
            "temperature=-40..85",
            "--checkpoint-interval",
            "1s",
        ])
        .args(["--metrics", &address, "--log-format", "json"])
        .env("ROOMFLOW_LOG", "info")
        .stderr(log_path.reopen().unwrap())
        .spawn()
        .unwrap());

    // Ready once both workers run; the counts arrive as the job reads.
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "the job did not read all 26 messages"
        );
        assert!(
            job.0.try_wait().unwrap().is_none(),
            "the job stopped by itself"
        );
        std::thread::sleep(Duration::from_millis(300));
        let Some((200, text)) = get(&address, "/metrics") else {
            continue;
        };
        let metrics = samples(&text);
        let done = metrics.get(&format!("roomflow_messages_in_total{{topic=\"{topic}\"}}"));
        if done == Some(&26.0) {
            break metrics;
        }
    };
    assert_eq!(get(&address, "/readyz"), Some((200, "running\n".into())));
    assert_eq!(get(&address, "/livez"), Some((200, "running\n".into())));
    assert_eq!(
        get(&address, "/nothing").map(|(status, _)| status),
        Some(404)
    );
    let expected = [
        (
            format!("roomflow_readings_in_total{{topic=\"{topic}\"}}"),
            20.0,
        ),
        (
            "roomflow_late_readings_total{reason=\"beyond_lateness\"}".into(),
            1.0,
        ),
        (
            "roomflow_dead_letters_total{reason=\"implausible\"}".into(),
            1.0,
        ),
        (
            "roomflow_dead_letters_total{reason=\"malformed\"}".into(),
            2.0,
        ),
        (
            "roomflow_dead_letters_total{reason=\"not_utf8\"}".into(),
            1.0,
        ),
        ("roomflow_dead_letters_total{reason=\"empty\"}".into(), 1.0),
    ];
    for (series, value) in &expected {
        assert_eq!(metrics.get(series), Some(value), "{series}");
    }
    for partition in 0..2 {
        // Read to the end of both partitions.
        let series = format!(
            "roomflow_kafka_consumer_lag_messages{{topic=\"{topic}\",partition=\"{partition}\"}}"
        );
        let lag_deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = get(&address, "/metrics").unwrap().1;
            if samples(&text).get(&series) == Some(&0.0) {
                break;
            }
            assert!(
                Instant::now() < lag_deadline,
                "{series} never reached 0:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Caught up and idle: the frontier trails the newest event time by at most the open tick
    // (10 ms; the test allows 100 ms); a checkpoint is at most as old as the job. Lag 0 comes
    // first: a worker whose partition just reached its end moves its capability on at its next
    // exchange with the others, and only then does the frontier follow.
    let frontier_deadline = Instant::now() + Duration::from_secs(10);
    let now = loop {
        let text = get(&address, "/metrics").unwrap().1;
        let now = samples(&text);
        let frontier_lags: Vec<f64> = now
            .iter()
            .filter(|(series, _)| series.starts_with("roomflow_frontier_lag_seconds{worker="))
            .map(|(_, value)| *value)
            .collect();
        let settled =
            !frontier_lags.is_empty() && frontier_lags.iter().all(|lag| (0.0..=0.1).contains(lag));
        if settled || Instant::now() >= frontier_deadline {
            assert!(!frontier_lags.is_empty(), "no frontier lag:\n{text}");
            assert!(
                frontier_lags.iter().all(|lag| (0.0..=0.1).contains(lag)),
                "{frontier_lags:?}"
            );
            break now;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let age = now["roomflow_checkpoint_age_seconds"];
    assert!((0.0..120.0).contains(&age), "checkpoint age {age}");

    // Changes: what the metric counts is what reached the alpha topic, collection by
    // collection. The newest tick stays open while the job runs, so both grow until it stops;
    // they must meet.
    let alpha_counts = || {
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        for record in read_topic(&alpha) {
            let key: serde_json::Value = serde_json::from_slice(&record.key.unwrap()).unwrap();
            *counts
                .entry(key[0].as_str().unwrap().to_string())
                .or_default() += 1.0;
        }
        counts
    };
    let metric_counts = |sink: &str| {
        let text = get(&address, "/metrics").unwrap().1;
        samples(&text)
            .into_iter()
            .filter_map(|(series, value)| {
                let rest = series.strip_prefix("roomflow_changes_out_total{collection=\"")?;
                let (collection, labels) = rest.split_once('"')?;
                (labels == format!(",sink=\"{sink}\"}}")).then(|| (collection.to_string(), value))
            })
            .collect::<BTreeMap<String, f64>>()
    };
    let meet_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (counted, read) = (metric_counts("alpha"), alpha_counts());
        if counted == read && counted.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < meet_deadline,
            "changes counted {counted:?}, on the alpha topic {read:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // MongoDB: at least one write per current document, at most one per change (writes of a
    // key are coalesced); every write command's latency is recorded.
    let text = get(&address, "/metrics").unwrap().1;
    let metrics = samples(&text);
    let written = metric_counts("mongodb");
    let changes = alpha_counts();
    for collection in ["room_averages", "window_averages", "temperature_deltas"] {
        let current = documents(&mongo_uri(), &db, collection).len() as f64;
        let writes = written.get(collection).copied().unwrap_or(0.0);
        assert!(
            current <= writes && writes <= changes[collection],
            "{collection}: {writes} writes for {current} documents and {} changes",
            changes[collection]
        );
    }
    for sink in ["alpha", "mongodb"] {
        let count = metrics[&format!("roomflow_sink_batch_seconds_count{{sink=\"{sink}\"}}")];
        assert!(count >= 1.0, "{sink}: {count} batches timed");
    }

    // SIGTERM: a clean stop, and the log is JSON lines, one per event, none per message.
    assert!(job.terminate(), "the job did not stop cleanly");
    let log = std::fs::read_to_string(log_path.path()).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    for expected in [
        "roomflow run starting",
        "reading partitions",
        "roomflow run stopped cleanly; offsets committed",
    ] {
        assert!(
            messages.contains(&expected),
            "no `{expected}` in {messages:?}"
        );
    }
    assert!(
        messages.contains(&"checkpoint written") || messages.contains(&"last checkpoint written"),
        "no checkpoint in {messages:?}"
    );
    assert!(events
        .iter()
        .all(|e| e["level"].is_string() && e["timestamp"].is_string()));
    // Checkpoints come with time, not with messages; everything else is a handful of lines.
    let others = messages
        .iter()
        .filter(|m| !m.contains("checkpoint written"))
        .count();
    assert!(
        others < 26,
        "{others} log lines for 26 messages: {messages:?}"
    );
}

#[test]
fn a_busy_metrics_address_fails_at_start_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(["run", "--topics", "t", "--metrics", &address])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--metrics {address}: cannot listen there")),
        "{stderr}"
    );
}
