//! Latency of the live job, for `scripts/bench-kafka.sh`: reads the alpha topic and, for every
//! `temperature_deltas` upsert, takes the time from the reading's event time (which the live
//! simulator sets to the moment it produces the reading) to the change's produce timestamp.
//!
//! `cargo run --release --example alpha_latency -- BROKERS ALPHA_TOPIC FROM_MS UNTIL_MS`
//! (only readings with FROM_MS <= ts < UNTIL_MS count: leave out the warm-up and the stop).

use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::ClientConfig;
use roomflow::kafka::read::read_to_end;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, from, until] = &args[..] else {
        eprintln!("usage: alpha_latency BROKERS ALPHA_TOPIC FROM_MS UNTIL_MS");
        std::process::exit(2);
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
    if latencies.is_empty() {
        eprintln!("no temperature_deltas upserts for readings in the window");
        std::process::exit(1);
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "latency over {} readings (event time → change produced to alpha): p50 {} ms, p99 {} ms, max {} ms (a reading {:.1} s into the window)",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1],
        (slowest.1 - from) as f64 / 1000.0
    );
}
