//! The yardstick of `scripts/bench-kafka.sh`: a bare rdkafka consumer that reads a whole topic
//! (every partition, from the beginning, until the end) and does nothing with the messages.
//!
//! `cargo run --release --example bare_consumer -- BROKERS TOPIC`

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic] = &args[..] else {
        eprintln!("usage: bare_consumer BROKERS TOPIC");
        std::process::exit(2);
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bare-consumer")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut list = TopicPartitionList::new();
    for partition in &partitions {
        list.add_partition_offset(topic, *partition, Offset::Beginning)
            .expect("offset");
    }
    let started = Instant::now();
    consumer.assign(&list).expect("assign");
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut ended = BTreeSet::new();
    while ended.len() < partitions.len() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            Some(Err(error)) => eprintln!("{error}"),
            Some(Ok(message)) => {
                ended.remove(&message.partition());
                messages += 1;
                bytes += message.payload_len() as u64;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "bare consumer: {messages} messages ({bytes} bytes) in {seconds:.2} s: {:.0} messages/s",
        messages as f64 / seconds
    );
}
