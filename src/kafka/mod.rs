//! Kafka: the live source of `roomflow run`, the alpha and dead-letter sinks, and what `publish`
//! and `simulate` need to feed a topic.
//!
//! What each file owns:
//! - `config.rs`: broker address and `-X` properties, turned into client configurations, and the
//!   start-up check that the brokers answer.
//! - `topics.rs`: creating missing topics through the admin API (brokers without auto-creation).
//! - `discovery.rs`: a thread per process that lists the partitions of the sensor topics and
//!   notices new ones; which worker owns which partition.
//! - `source.rs`: the timely source: each worker reads the partitions it owns, judges lateness
//!   per partition, and holds its capability where its partitions can still produce; it emits
//!   checkpoint positions and marks.
//! - `source_options.rs`: what a worker's source is given, and what it shares with the worker
//!   loop.
//! - `bookkeeping/`: what a worker's source keeps between activations, with the phases of an
//!   activation as its methods: assigning and draining partitions (`mod.rs`), and where time
//!   goes, the capability, checkpoint marks and waiting for the dataflow (`time.rs`).
//! - `partition.rs`: one partition as the source reads it: phase, watermark, stamping, end
//!   detection, and its metrics.
//! - `batch_queue.rs`: a partition's queue read in batches through librdkafka's batch call.
//! - `admission.rs`: what one message does: a reading (on time and stamped, or late) or a dead
//!   letter, every effect at one time, and the partition position after it.
//! - `coordination.rs`: a small side dataflow through which workers tell each other how far
//!   they are (capabilities and acknowledged output), so idle workers do not hold back progress
//!   and offsets are committed only behind acknowledged output.
//! - `position.rs`: where a partition is (next offset, watermark), as checkpoints record it, and
//!   where a resumed job starts.
//! - `offsets.rs`: consumed positions waiting for their output to be acknowledged.
//! - `committer.rs`: committing those positions to the consumer group, when and how.
//! - `feed.rs`: the canonical reading message and the producer `publish` and `simulate` feed
//!   sensor topics with.
//! - `read.rs`: reading a whole topic once to its end (tools, examples and tests).
//! - `sink.rs`: producing changes to the alpha topic and rejected input to the dead-letter
//!   topic, tracking which dataflow times the broker has acknowledged.

pub mod admission;
pub mod batch_queue;
mod bookkeeping;
pub mod committer;
pub mod config;
pub mod coordination;
pub mod discovery;
pub mod feed;
pub mod offsets;
pub mod partition;
pub mod position;
pub mod read;
pub mod sink;
pub mod source;
pub mod source_options;
pub mod topics;
