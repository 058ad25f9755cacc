//! A producer that sends each line the moment it reads it, for `scripts/bench-dashboard.sh`:
//! kcat -P holds the last lines of a pipe that stays open, which would skew a latency measured
//! line by line. Reads `KEY<TAB>VALUE` lines from stdin and produces each to the topic at once
//! (`linger.ms=0`), then waits for every delivery when stdin ends.
//!
//! `cargo run --release --example produce_lines -- BROKERS TOPIC < lines.tsv`

use std::io::BufRead;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic] = &args[..] else {
        eprintln!("usage: produce_lines BROKERS TOPIC < KEY<TAB>VALUE lines");
        std::process::exit(2);
    };
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()
        .expect("a producer");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin is readable");
        let (key, value) = line.split_once('\t').unwrap_or(("", &line));
        let mut record = BaseRecord::to(topic).key(key).payload(value);
        // A full queue only waits for deliveries to make room.
        while let Err((error, returned)) = producer.send(record) {
            eprintln!("produce_lines: {error}; retrying");
            producer.poll(Duration::from_millis(100));
            record = returned;
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every line delivered");
}
