//! The yardsticks of `scripts/bench-kafka.sh`: a bare consumer that reads a whole topic (every
//! partition, from the beginning, until the end) and does nothing with the messages, in one of
//! two ways:
//!
//! - `poll` (the default): the rdkafka crate's `BaseConsumer::poll`, one message per call, as
//!   roomflow's source reads its partition queues;
//! - `batch`: librdkafka's own batch call, `rd_kafka_consume_batch_queue`, up to 10,000 messages
//!   per call, as kcat reads (the queue is locked once per batch, not once per message).
//!
//! The gap between the two is what reading message by message through the crate costs.
//!
//! `cargo run --release --example bare_consumer -- BROKERS TOPIC [poll|batch]`

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use roomflow::kafka::read::read_to_end;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, mode) = match &args[..] {
        [_, brokers, topic] => (brokers, topic, "poll"),
        [_, brokers, topic, mode] if mode == "poll" || mode == "batch" => {
            (brokers, topic, mode.as_str())
        }
        _ => {
            eprintln!("usage: bare_consumer BROKERS TOPIC [poll|batch]");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let (messages, bytes) = match mode {
        "batch" => read_in_batches(brokers, topic),
        _ => {
            // roomflow's own reader of a whole topic: `BaseConsumer::poll`, one message a call.
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", brokers);
            let mut bytes = 0u64;
            let messages = read_to_end(config, topic, Duration::from_secs(3600), |message| {
                bytes += message.payload_len() as u64;
            })
            .expect("reading the topic");
            (messages, bytes)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "bare consumer ({mode}): {messages} messages ({bytes} bytes) in {seconds:.2} s: {:.0} messages/s",
        messages as f64 / seconds
    );
}

/// Messages and payload bytes of every partition of `topic`, from the beginning until each has
/// reported its end, through `rd_kafka_consume_batch_queue` on the consumer's queue.
fn read_in_batches(brokers: &str, topic: &str) -> (u64, u64) {
    const BATCH: usize = 10_000;
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
    consumer.assign(&list).expect("assign");
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut ended = BTreeSet::new();
    let mut batch: Vec<*mut rdsys::rd_kafka_message_t> = vec![std::ptr::null_mut(); BATCH];
    // SAFETY: the client outlives the queue handle, destroyed below; every message the batch
    // call returns is read once and then destroyed.
    unsafe {
        let queue = rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr());
        assert!(!queue.is_null(), "the consumer has a queue");
        while ended.len() < partitions.len() {
            let got = rdsys::rd_kafka_consume_batch_queue(queue, 100, batch.as_mut_ptr(), BATCH);
            assert!(got >= 0, "consume_batch_queue failed");
            for &message in &batch[..got as usize] {
                let m = &*message;
                match m.err {
                    rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => {
                        ended.remove(&m.partition);
                        messages += 1;
                        bytes += m.len as u64;
                    }
                    rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                        ended.insert(m.partition);
                    }
                    error => eprintln!("consumer error {error:?}"),
                }
                rdsys::rd_kafka_message_destroy(message);
            }
        }
        rdsys::rd_kafka_queue_destroy(queue);
    }
    (messages, bytes)
}
