//! `roomflow dashboard`'s JSON API against state worked out by hand: changes files applied by key,
//! followed as they grow and started over when replaced; the alpha topic read from its beginning
//! with read_committed (an aborted transaction never shows); dead letters and malformed messages
//! counted, never fatal.

mod common;

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

use common::dashboard::*;
use common::kafka::{brokers, require_broker, unique};

#[test]
fn a_changes_file_is_applied_by_key_followed_and_started_over_when_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path().join("changes.jsonl");
    append(
        &changes,
        &[
            room_average("lab", "temperature", 2, 43.0, 60_000),
            window("lab", "temperature", 0, 2, 43.0, 60_000),
            window("lab", "temperature", 60_000, 1, 22.0, 120_000),
            // The key's new whole value: three readings now.
            room_average("lab", "temperature", 3, 65.0, 120_000),
            delta("lab", 30_000, 90_000, 21.5, 22.0, 120_000),
            window("hall", "co2", 0, 1, 400.0, 60_000),
            "{not a change".to_string(),
        ],
    );
    append(
        &dir.path().join("dead_letters.jsonl"),
        &[
            json!({"source": "in.jsonl:4", "reason": "missing field `value`", "line": "{\"room\":\"lab\",\"sensor\":\"co2\"}"}).to_string(),
        ],
    );
    append(
        &dir.path().join("late.jsonl"),
        &[
            json!({"source": "in.jsonl:9", "reason": "event time 5 is 700000 ms behind the newest event time 700005 of its input (lateness 300000 ms)", "room": "hall", "sensor": "co2", "ts": 5, "value": 410.0}).to_string(),
        ],
    );
    let dashboard = Dashboard::start(&[
        "--changes",
        changes.to_str().unwrap(),
        "--retain-windows",
        "2",
        "--stale-after",
        "30s",
    ]);

    let building = dashboard.building_when(Duration::from_secs(10), |building| {
        building["counters"]["changes"] == 6 && building["counters"]["late"]["total"] == 1
    });
    let counters = &building["counters"];
    assert_eq!(counters["rooms"], 2);
    assert_eq!(counters["malformed_changes"], 1);
    assert_eq!(
        counters["malformed_recent"][0]["source"],
        format!("{}:7", changes.display())
    );
    assert_eq!(
        counters["dead_letters"],
        json!({"total": 1, "by_reason": [{"reason": "missing field `value`", "count": 1}]})
    );
    assert_eq!(
        counters["late"]["by_reason"],
        json!([{"reason": "event time N is N ms behind the newest event time N of its input (lateness N ms)", "count": 1}])
    );
    assert_eq!(building["newest_time"], 120_000);
    let lab = room(&building, "lab");
    assert_eq!(lab["last_heard"], 120_000);
    assert_eq!(lab["stale"], false);
    assert_eq!((&lab["dead_letters"], &lab["late"]), (&json!(1), &json!(0)));
    let temperature = sensor(lab, "temperature");
    assert_eq!(
        temperature["window"],
        json!({"window_start": 60_000, "count": 1, "sum": 22.0, "avg": 22.0})
    );
    assert_eq!(
        temperature["all_time"],
        json!({"count": 3, "sum": 65.0, "avg": 65.0 / 3.0})
    );
    assert_eq!(temperature["trend"], json!([21.5, 22.0]));
    assert_eq!(
        lab["delta"],
        json!({"ts": 90_000, "prev_ts": 30_000, "value": 22.0, "prev_value": 21.5, "delta": 0.5})
    );
    // Heard last at 60 s, the building's newest is 120 s: more than 30 s behind.
    let hall = room(&building, "hall");
    assert_eq!((&hall["stale"], &hall["late"]), (&json!(true), &json!(1)));

    // The room's page: every retained window, its deltas, its rejected inputs; charts with one
    // marker per window.
    let lab_page = dashboard.json("/api/rooms/lab");
    assert_eq!(
        lab_page["sensors"][0]["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|window| window["window_start"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 60_000]
    );
    assert_eq!(lab_page["rejected"][0]["source"], "in.jsonl:4");
    let (status, chart) = dashboard.get("/api/rooms/lab/sensors/temperature/chart");
    assert_eq!(status, 200);
    assert_eq!(chart.matches("<circle").count(), 2);
    let (status, chart) = dashboard.get("/api/rooms/lab/deltas/chart");
    assert_eq!((status, chart.matches("<circle").count()), (200, 1));
    let (status, body) = dashboard.get("/api/rooms/nowhere");
    assert_eq!(status, 404);
    assert_eq!(body, r#"{"error":"no room `nowhere`"}"#);

    // Appended lines show; the oldest window leaves (two are kept); hall's window is retracted.
    append(
        &changes,
        &[
            window("lab", "temperature", 120_000, 1, 23.0, 180_000),
            envelope(
                "window_averages",
                json!({"room": "hall", "sensor": "co2", "window_start": 0}),
                None,
                180_000,
            ),
        ],
    );
    let building = dashboard.building_when(Duration::from_secs(10), |building| {
        building["counters"]["changes"] == 8
    });
    let lab = room(&building, "lab");
    assert_eq!(sensor(lab, "temperature")["trend"], json!([22.0, 23.0]));
    assert_eq!(
        sensor(room(&building, "hall"), "co2")["window"],
        Value::Null
    );

    // A new replay replaces the file: the building starts over from it (the rejected inputs
    // beside it are read again too).
    let replacement = dir.path().join("changes.new");
    append(
        &replacement,
        &[room_average("annex", "humidity", 4, 180.0, 240_000)],
    );
    std::fs::rename(&replacement, &changes).unwrap();
    let building = dashboard.building_when(Duration::from_secs(10), |building| {
        building["counters"]["changes"] == 1 && building["counters"]["late"]["total"] == 1
    });
    assert_eq!(
        sensor(room(&building, "annex"), "humidity")["all_time"],
        json!({"count": 4, "sum": 180.0, "avg": 45.0})
    );
    assert_eq!(room(&building, "lab")["sensors"], json!([]));
}

#[test]
fn the_part_files_of_several_processes_make_one_building() {
    let dir = tempfile::tempdir().unwrap();
    let parts = [
        dir.path().join("changes.0.jsonl"),
        dir.path().join("changes.1.jsonl"),
    ];
    append(&parts[0], &[room_average("east", "co2", 2, 810.0, 60_000)]);
    append(&parts[1], &[room_average("west", "co2", 1, 395.5, 60_000)]);
    append(
        &dir.path().join("dead_letters.jsonl"),
        &[
            json!({"source": "in.jsonl:2", "reason": "missing field `ts`", "line": "{}"})
                .to_string(),
        ],
    );
    let changes = format!("{},{}", parts[0].display(), parts[1].display());
    let dashboard = Dashboard::start(&["--changes", &changes]);
    let building = dashboard.building_when(Duration::from_secs(10), |building| {
        building["counters"]["changes"] == 2 && building["counters"]["dead_letters"]["total"] == 1
    });
    assert_eq!(
        sensor(room(&building, "east"), "co2")["all_time"]["avg"],
        405.0
    );
    assert_eq!(
        sensor(room(&building, "west"), "co2")["all_time"]["avg"],
        395.5
    );
    // The directory's dead letters are read once, not once per part file.
    std::thread::sleep(Duration::from_millis(300));
    let building = dashboard.json("/api/building");
    assert_eq!(building["counters"]["dead_letters"]["total"], 1);
}

#[test]
fn a_missing_changes_file_fails_at_start_with_what_to_do() {
    let output = common::roomflow(&["dashboard", "--changes", "/nonexistent/changes.jsonl"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--changes /nonexistent/changes.jsonl: no such file")
            && stderr.contains("roomflow replay"),
        "{stderr}"
    );
}

fn producer(transactional_id: Option<&str>) -> BaseProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true");
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
    }
    config.create().unwrap()
}

#[test]
fn alpha_is_read_committed_from_its_beginning_with_its_dead_letters() {
    require_broker();
    let alpha = unique("dashboard-alpha");
    let dead_letters = unique("dashboard-dead");
    // Messages keyed as the job keys them; one is not a change at all.
    let before = [
        room_average("413", "co2", 2, 900.0, 60_000),
        window("413", "co2", 0, 2, 900.0, 60_000),
        room_average("413", "co2", 4, 1_700.0, 120_000),
        "[1, 2".to_string(),
    ];
    let keyed: Vec<(String, &[u8])> = before
        .iter()
        .enumerate()
        .map(|(n, value)| (format!("key-{n}"), value.as_bytes()))
        .collect();
    let keyed: Vec<(&str, &[u8])> = keyed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    common::kafka::produce(&alpha, 2, &keyed);
    common::kafka::produce(&dead_letters, 1, &[]);

    // An aborted transaction (never shown) and a committed one.
    let transactional = producer(Some(&unique("dashboard-tx")));
    transactional
        .init_transactions(Duration::from_secs(30))
        .unwrap();
    transactional.begin_transaction().unwrap();
    let ghost = room_average("ghost", "co2", 1, 1.0, 130_000);
    transactional
        .send(BaseRecord::to(&alpha).key("ghost").payload(&ghost))
        .unwrap();
    transactional.flush(Duration::from_secs(30)).unwrap();
    transactional
        .abort_transaction(Duration::from_secs(30))
        .unwrap();
    transactional.begin_transaction().unwrap();
    let committed = delta("413", 100_000, 110_000, 21.75, 21.5, 140_000);
    transactional
        .send(BaseRecord::to(&alpha).key("delta").payload(&committed))
        .unwrap();
    transactional
        .commit_transaction(Duration::from_secs(30))
        .unwrap();

    // A late reading on the dead-letter topic, with the job's headers.
    let plain = producer(None);
    let headers = [
        ("roomflow.kind", "late"),
        (
            "roomflow.reason",
            "event time 1 is 400000 ms behind the newest event time 400001 of its partition (lateness 300000 ms)",
        ),
        ("roomflow.topic", "sensors"),
        ("roomflow.partition", "2"),
        ("roomflow.offset", "77"),
    ]
    .iter()
    .fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(*value),
        })
    });
    plain
        .send(
            BaseRecord::to(&dead_letters)
                .key("413")
                .payload(r#"{"room":"413","sensor":"co2","ts":1,"value":455.5}"#)
                .headers(headers),
        )
        .unwrap();
    plain.flush(Duration::from_secs(30)).unwrap();

    let brokers = brokers();
    let dashboard = Dashboard::start(&[
        "--brokers",
        &brokers,
        "--alpha-topic",
        &alpha,
        "--dead-letter-topic",
        &dead_letters,
    ]);
    let building = dashboard.building_when(Duration::from_secs(30), |building| {
        building["counters"]["changes"] == 4 && building["counters"]["late"]["total"] == 1
    });
    assert_eq!(building["counters"]["rooms"], 1, "{building:#}");
    assert_eq!(building["counters"]["malformed_changes"], 1);
    let tile = room(&building, "413");
    assert_eq!(
        sensor(tile, "co2")["all_time"],
        json!({"count": 4, "sum": 1_700.0, "avg": 425.0})
    );
    assert_eq!(tile["delta"]["delta"], json!(21.5 - 21.75));
    assert_eq!(tile["late"], 1);
    let page = dashboard.json("/api/rooms/413");
    assert_eq!(page["rejected"][0]["source"], "sensors/2/77");
    assert_eq!(page["rejected"][0]["value"], 455.5);

    // A change produced now shows while the dashboard runs.
    plain
        .send(
            BaseRecord::to(&alpha)
                .key("later")
                .payload(&window("413", "co2", 60_000, 1, 410.0, 180_000)),
        )
        .unwrap();
    plain.flush(Duration::from_secs(30)).unwrap();
    let building = dashboard.building_when(Duration::from_secs(10), |building| {
        building["counters"]["changes"] == 5
    });
    assert_eq!(
        sensor(room(&building, "413"), "co2")["trend"],
        json!([450.0, 410.0])
    );
}
