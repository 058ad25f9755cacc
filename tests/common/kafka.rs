//! Helpers for the tests against a Kafka broker: the address (`KAFKA_BROKERS`, which
//! `scripts/test.sh` sets to the Apache Kafka it starts, else the one `scripts/kafka.sh start`
//! runs), unique topic names (tests run at the same time, and again against the same broker when
//! `KAFKA_BROKERS` names one), creating and growing topics, and reading a whole topic back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use serde_json::Value;

use super::{lines, ok};

/// The brokers the tests use.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// Fails with instructions unless a broker answers.
pub fn require_broker() {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    if let Err(error) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
        panic!(
            "no Kafka broker at {} ({error}): start one with scripts/kafka.sh start, or set KAFKA_BROKERS",
            brokers()
        );
    }
}

/// A topic name no other test or run has used.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One message read back.
#[derive(Clone, Debug)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// Every message of `topic`, partition by partition in offset order (none if it does not exist).
pub fn read_topic(topic: &str) -> Vec<Record> {
    read_topic_as(topic, "read_uncommitted")
}

/// What a `read_committed` consumer reads of `topic`: nothing of aborted or open transactions.
pub fn read_topic_committed(topic: &str) -> Vec<Record> {
    read_topic_as(topic, "read_committed")
}

fn read_topic_as(topic: &str, isolation: &str) -> Vec<Record> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers());
    config.set("isolation.level", isolation);
    let mut records = Vec::new();
    roomflow::kafka::read::read_to_end(config, topic, Duration::from_secs(120), |message| {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    })
    .unwrap_or_else(|error| panic!("{error:#}"));
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

/// The state a consumer of the alpha topic holds after applying `records` in order: upsert or
/// delete by (collection, key). Also checks that every change of a key is in one partition.
pub fn apply_changes(records: &[Record]) -> BTreeMap<(String, String), Value> {
    let mut state = BTreeMap::new();
    let mut partition_of: BTreeMap<(String, String), i32> = BTreeMap::new();
    for record in records {
        let change: Value = serde_json::from_slice(&record.payload).unwrap();
        let key = (
            change["collection"].as_str().unwrap().to_string(),
            change["key"].to_string(),
        );
        let expected_key = serde_json::to_string(&(&key.0, &change["key"])).unwrap();
        assert_eq!(
            record.key.as_deref(),
            Some(expected_key.as_bytes()),
            "message key"
        );
        let partition = *partition_of.entry(key.clone()).or_insert(record.partition);
        assert_eq!(
            partition, record.partition,
            "changes of {key:?} in two partitions"
        );
        match change["operation"].as_str().unwrap() {
            "upsert" => {
                state.insert(key, change["data"].clone());
            }
            "delete" => {
                state.remove(&key);
            }
            other => panic!("unknown operation {other}"),
        }
    }
    state
}

/// Grows `topic` to `total` partitions (CreatePartitions), as an operator would while the job runs.
pub fn add_partitions(topic: &str, total: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let grown = futures_executor::block_on(admin.create_partitions(
        &[NewPartitions::new(topic, total)],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .unwrap();
    assert!(grown.iter().all(Result::is_ok), "{grown:?}");
}

/// Publishes `input` to `topic` with `roomflow publish`, creating it with `partitions`.
pub fn publish(input: &std::path::Path, topic: &str, partitions: &str) {
    super::ok(&[
        "publish",
        input.to_str().unwrap(),
        "--topic",
        topic,
        "--partitions",
        partitions,
        "--brokers",
        &brokers(),
    ]);
}

/// Creates `topic` with `partitions` and produces `messages` (key, payload) to it, in order,
/// each to partition `key`'s hash picks (librdkafka's default), exactly as given: the bytes need
/// not be text.
pub fn produce(topic: &str, partitions: i32, messages: &[(&str, &[u8])]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let created = futures_executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (key, payload) in messages {
        producer
            .send(BaseRecord::to(topic).key(*key).payload(*payload))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// The final state of a replay, by (collection, key), from its `--out` files.
pub fn replayed_state(inputs: &[&Path], out: &Path) -> BTreeMap<(String, String), Value> {
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

/// Asserts the state rebuilt from alpha is the replayed one.
pub fn assert_same_state(
    rebuilt: &BTreeMap<(String, String), Value>,
    replayed: &BTreeMap<(String, String), Value>,
) {
    assert_eq!(rebuilt.len(), replayed.len(), "number of keys");
    for (key, value) in replayed {
        assert_eq!(rebuilt.get(key), Some(value), "{key:?}");
    }
}

/// Polls `read` (a topic applied by key) every half second until it equals `expected`, while
/// `still_running` holds; fails after 60 s saying what it held, with `context()`.
pub fn wait_for_state(
    read: impl Fn() -> BTreeMap<(String, String), Value>,
    expected: &BTreeMap<(String, String), Value>,
    mut still_running: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let held = read();
        if &held == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after 60 s the topic holds {} of the {} keys, or older values\n{}",
            held.len(),
            expected.len(),
            context()
        );
        assert!(still_running(), "the job stopped by itself\n{}", context());
        std::thread::sleep(Duration::from_millis(500));
    }
}
