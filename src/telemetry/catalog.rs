//! The metrics the job exports: names, help texts, label values and histogram buckets, in one
//! place so that the README's table, the recorders and the tests agree.
//!
//! Hot paths (per message) hold [`metrics::Counter`] handles registered once per partition, so a
//! message costs an atomic add, not a registry lookup.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Kafka messages consumed, by `topic`.
pub const MESSAGES_IN: &str = "roomflow_messages_in_total";
/// Readings applied to the computation (on time and well-formed), by `topic`.
pub const READINGS_IN: &str = "roomflow_readings_in_total";
/// Messages that are not readings, by `reason` ([`DeadLetterReason`]).
pub const DEAD_LETTERS: &str = "roomflow_dead_letters_total";
/// Readings too late to apply, by `reason` (`beyond_lateness`).
pub const LATE_READINGS: &str = "roomflow_late_readings_total";
/// Changes written, by `collection` and `sink` (`alpha`: messages produced; `mongodb`: document
/// upserts and deletes, after coalescing the changes of a key).
pub const CHANGES_OUT: &str = "roomflow_changes_out_total";
/// Time from a batch's first write to its acknowledgement, by `sink` (`alpha`: all messages of
/// one dataflow time; `mongodb`: one write command, retries included).
pub const SINK_BATCH_SECONDS: &str = "roomflow_sink_batch_seconds";
/// Messages between a partition's read position and its end, by `topic` and `partition`.
pub const CONSUMER_LAG: &str = "roomflow_kafka_consumer_lag_messages";
/// How far the dataflow's output frontier trails the newest event time a worker has read, by
/// `worker`: results up to that far behind the input are not final yet.
pub const FRONTIER_LAG: &str = "roomflow_frontier_lag_seconds";
/// Seconds since this process last wrote a checkpoint (or since it started, before the first).
pub const CHECKPOINT_AGE: &str = "roomflow_checkpoint_age_seconds";
/// Checkpoints written.
pub const CHECKPOINTS: &str = "roomflow_checkpoints_total";

/// Buckets of [`SINK_BATCH_SECONDS`]: from a millisecond (a local broker) to a minute (a
/// MongoDB outage being retried).
pub const SINK_BATCH_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Why a message went to the dead letters; the `reason` label of [`DEAD_LETTERS`]. The full
/// reason, with the position of the problem, travels with the dead letter itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The payload is not UTF-8.
    NotUtf8,
    /// The payload is empty or blank.
    Empty,
    /// Not a reading: bad JSON, a missing or ill-typed field, a bad timestamp or value.
    Malformed,
    /// A reading outside its sensor's `--valid` range, or with a name longer than allowed.
    Implausible,
    /// A message longer than `--max-line-bytes`.
    TooLong,
}

impl DeadLetterReason {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            DeadLetterReason::NotUtf8 => "not_utf8",
            DeadLetterReason::Empty => "empty",
            DeadLetterReason::Malformed => "malformed",
            DeadLetterReason::Implausible => "implausible",
            DeadLetterReason::TooLong => "too_long",
        }
    }
}

/// The `reason` label of [`LATE_READINGS`].
pub const BEYOND_LATENESS: &str = "beyond_lateness";

/// The `sink` label of the alpha topic.
pub const SINK_ALPHA: &str = "alpha";
/// The `sink` label of MongoDB.
pub const SINK_MONGODB: &str = "mongodb";
/// `sink` label of [`SINK_BATCH_SECONDS`] for exactly-once transactions (a commit: state records
/// produced, offsets sent, committed).
pub const SINK_TRANSACTION: &str = "transaction";

/// Registers the help texts and units (once, after the recorder is installed).
pub fn describe() {
    describe_counter!(MESSAGES_IN, "Kafka messages consumed, by topic.");
    describe_counter!(
        READINGS_IN,
        "Readings applied to the computation (on time and well-formed), by topic."
    );
    describe_counter!(
        DEAD_LETTERS,
        "Messages that are not readings (sent to the dead-letter topic), by reason."
    );
    describe_counter!(LATE_READINGS, "Readings too late to apply, by reason.");
    describe_counter!(
        CHANGES_OUT,
        "Changes written, by collection and sink (alpha: messages; mongodb: document writes)."
    );
    describe_histogram!(
        SINK_BATCH_SECONDS,
        Unit::Seconds,
        "Time from a batch's first write to its acknowledgement, by sink."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Messages between a partition's read position and its end."
    );
    describe_gauge!(
        FRONTIER_LAG,
        Unit::Seconds,
        "How far the output frontier trails the newest event time read, by worker."
    );
    describe_gauge!(
        CHECKPOINT_AGE,
        Unit::Seconds,
        "Seconds since this process last wrote a checkpoint (since start before the first)."
    );
    describe_counter!(CHECKPOINTS, "Checkpoints written by this process.");
}
