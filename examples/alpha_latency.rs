//! Latency of the live job, for `scripts/bench-kafka.sh`: reads the alpha topic and, for every
//! `temperature_deltas` upsert, takes the time from the reading's event time (which the live
//! simulator sets to the moment it produces the reading) to the change's produce timestamp.
//!
//! `cargo run --release --example alpha_latency -- BROKERS ALPHA_TOPIC FROM_MS UNTIL_MS [arrivals|committed]`
//! (only readings with FROM_MS <= ts < UNTIL_MS count: leave out the warm-up and the stop).
//!
//! With `arrivals` or `committed`, it is the consumer itself: started before the readings, it
//! reads alpha as changes arrive (`committed`: `read_committed`, as downstream of a
//! transactional job reads) and takes the time from the reading's event time to the moment the
//! change reached it: what a user sees, with the producer's batching, the broker, the fetch and,
//! for a transactional job, the wait for the commit.

use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::ClientConfig;
use roomflow::kafka::read::read_to_end;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, from, until, mode) = match &args[..] {
        [_, brokers, topic, from, until] => (brokers, topic, from, until, "produced"),
        [_, brokers, topic, from, until, mode] if mode == "committed" || mode == "arrivals" => {
            (brokers, topic, from, until, mode.as_str())
        }
        _ => {
            eprintln!(
                "usage: alpha_latency BROKERS ALPHA_TOPIC FROM_MS UNTIL_MS [arrivals|committed]"
            );
            std::process::exit(2);
        }
    };
    let (from, until): (i64, i64) = (
        from.parse().expect("FROM_MS"),
        until.parse().expect("UNTIL_MS"),
    );
    let mut latencies: Vec<i64> = Vec::new();
    // The slowest change and its reading's event time, to tell a stall from a steady delay.
    let mut slowest: (i64, i64) = (i64::MIN, 0);
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    if mode != "produced" {
        let isolation = if mode == "committed" {
            "read_committed"
        } else {
            "read_uncommitted"
        };
        config.set("isolation.level", isolation);
        latencies = arrivals(config, topic, from, until, &mut slowest);
    } else {
        read_to_end(config, topic, Duration::from_secs(600), |message| {
            let Some(produced) = message.timestamp().to_millis() else {
                return;
            };
            let change: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
            if change["collection"] != "temperature_deltas" || change["operation"] != "upsert" {
                return;
            }
            let ts = change["key"]["ts"].as_i64().expect("ts");
            if (from..until).contains(&ts) {
                latencies.push(produced - ts);
                slowest = slowest.max((produced - ts, ts));
            }
        })
        .expect("reading alpha");
    }
    if latencies.is_empty() {
        eprintln!("no temperature_deltas upserts for readings in the window");
        std::process::exit(1);
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "latency over {} readings (event time → change {}): p50 {} ms, p99 {} ms, max {} ms (a reading {:.1} s into the window)",
        latencies.len(),
        match mode {
            "committed" => "read by a read_committed consumer",
            "arrivals" => "read by a consumer",
            _ => "produced to alpha",
        },
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1],
        (slowest.1 - from) as f64 / 1000.0
    );
}

/// Reads `topic` as changes arrive until readings up to `until` have had time to arrive, and
/// returns each window reading's latency to its arrival here.
fn arrivals(
    mut config: ClientConfig,
    topic: &str,
    from: i64,
    until: i64,
    slowest: &mut (i64, i64),
) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64
    };
    let consumer: BaseConsumer = config
        .set("group.id", "roomflow-latency")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    // The topic may not exist yet: wait until it has partitions.
    let partitions = loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !partitions.is_empty() {
            break partitions;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("valid offset");
    }
    consumer.assign(&assignment).expect("assign");
    let mut latencies = Vec::new();
    // Until the last window reading has had 10 s to arrive.
    while now() < until + 10_000 {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Ok(message) = message else { continue };
        let arrived = now();
        let Ok(change) =
            serde_json::from_slice::<serde_json::Value>(message.payload().unwrap_or_default())
        else {
            continue;
        };
        if change["collection"] != "temperature_deltas" || change["operation"] != "upsert" {
            continue;
        }
        let ts = change["key"]["ts"].as_i64().expect("ts");
        if (from..until).contains(&ts) {
            latencies.push(arrived - ts);
            *slowest = (*slowest).max((arrived - ts, ts));
        }
    }
    latencies
}
