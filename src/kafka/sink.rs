//! Producing to Kafka: every change to the alpha topic, every rejected message to the
//! dead-letter topic, and which dataflow times the broker has acknowledged.
//!
//! Each worker produces the changes of the keys it owns (the envelope operator routes every key
//! to one worker), in time order, with an idempotent producer: the changes of one key go to one
//! partition (librdkafka partitions by the message key), in order, without duplicates from
//! retries. Each message carries its dataflow time as its delivery token; a time counts as
//! acknowledged once no message of it or before it is outstanding and the sink's input has
//! passed it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{counter, histogram, Counter, Histogram};

use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use roomflow_dataflows::sized::MapSized;
use roomflow_dataflows::{Change, Time};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concatenate;

use super::config::KafkaArgs;
use crate::streams::{ChangeStream, RejectKind, Rejected, RejectedStream};
use crate::telemetry::catalog;

/// Why a message could not be produced, for good.
#[derive(Clone, Debug)]
pub enum DeliveryFailure {
    /// The broker refused it (retries exhausted, message too large, not authorized, ...).
    Refused {
        /// The topic it was for.
        topic: String,
        /// What librdkafka reported.
        error: KafkaError,
    },
    /// The producer cannot take it: it failed for good (e.g. fenced), or refused the message
    /// before sending it.
    NotSent {
        /// What librdkafka reported.
        reason: String,
    },
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryFailure::Refused { topic, error } => write!(f, "to topic `{topic}`: {error}"),
            DeliveryFailure::NotSent { reason } => write!(f, "cannot produce: {reason}"),
        }
    }
}

/// Messages produced and not yet acknowledged, per dataflow time (with when its first message
/// was sent), and the first failure.
pub struct Deliveries {
    outstanding: Mutex<BTreeMap<Time, (u64, Instant)>>,
    failure: Mutex<Option<DeliveryFailure>>,
    /// From a time's first message to its last acknowledgement.
    batch_seconds: Histogram,
}

impl Deliveries {
    pub(crate) fn new() -> Self {
        Deliveries {
            outstanding: Mutex::default(),
            failure: Mutex::default(),
            batch_seconds: histogram!(catalog::SINK_BATCH_SECONDS, "sink" => catalog::SINK_ALPHA),
        }
    }

    fn sent(&self, time: Time) {
        self.outstanding
            .lock()
            .expect("no panics holding the lock")
            .entry(time)
            .or_insert_with(|| (0, Instant::now()))
            .0 += 1;
    }

    /// One message of `time` is acknowledged.
    fn acknowledged(&self, time: Time) {
        let mut outstanding = self.outstanding.lock().expect("no panics holding the lock");
        if let Some((count, first_sent)) = outstanding.get_mut(&time) {
            *count -= 1;
            if *count == 0 {
                self.batch_seconds.record(first_sent.elapsed());
                outstanding.remove(&time);
            }
        }
    }

    /// The least time with a message not yet acknowledged.
    pub fn least_outstanding(&self) -> Option<Time> {
        self.outstanding
            .lock()
            .expect("no panics holding the lock")
            .keys()
            .next()
            .copied()
    }

    /// The first delivery that failed for good, if any.
    pub fn failure(&self) -> Option<DeliveryFailure> {
        self.failure
            .lock()
            .expect("no panics holding the lock")
            .clone()
    }

    /// Records `failure`, unless one is recorded already.
    fn fail(&self, failure: impl FnOnce() -> DeliveryFailure) {
        let mut first = self.failure.lock().expect("no panics holding the lock");
        first.get_or_insert_with(failure);
    }
}

/// The producer's context: counts deliveries back in.
pub struct DeliveryTracker(pub Arc<Deliveries>);

impl ClientContext for DeliveryTracker {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::config::client_log(level, facility, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::config::client_error(error, reason);
    }
}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, time: usize) {
        if let Err((error, message)) = result {
            use rdkafka::message::Message;
            self.0.fail(|| DeliveryFailure::Refused {
                topic: message.topic().to_string(),
                error: error.clone(),
            });
            // Leave it outstanding: its time is never acknowledged, so its offsets are never
            // committed, and the job stops with the failure.
            return;
        }
        self.0.acknowledged(time as Time);
    }
}

/// The producer type of the sinks.
pub type AlphaProducer = ThreadedProducer<DeliveryTracker>;

/// Creates a worker's producer: idempotent, every in-sync replica acknowledging.
pub fn producer(kafka: &KafkaArgs) -> Result<(AlphaProducer, Arc<Deliveries>), KafkaError> {
    let deliveries = Arc::new(Deliveries::new());
    let producer = kafka
        .client_config(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("compression.type", "lz4"),
        ])
        .create_with_context(DeliveryTracker(deliveries.clone()))?;
    Ok((producer, deliveries))
}

/// What the sink of one worker shares with the worker's loop.
#[derive(Default)]
pub struct SinkState {
    /// The sink's input frontier; `None` once the input is complete.
    pub frontier: Option<Time>,
    /// Changes produced to the alpha topic.
    pub changes: u64,
    /// Messages produced to the dead-letter topic.
    pub dead_letters: u64,
    /// Changes produced, by collection.
    changes_out: BTreeMap<&'static str, Counter>,
}

impl SinkState {
    /// Every message at times before the returned one is acknowledged; `None` when everything
    /// is, and nothing more will come.
    pub fn acked(&self, deliveries: &Deliveries) -> Option<Time> {
        match (self.frontier, deliveries.least_outstanding()) {
            (None, None) => None,
            (Some(frontier), None) => Some(frontier),
            (None, Some(outstanding)) => Some(outstanding),
            (Some(frontier), Some(outstanding)) => Some(frontier.min(outstanding)),
        }
    }

    /// The state of a sink whose input starts at `start`.
    pub fn starting_at(start: Time) -> Self {
        SinkState {
            frontier: Some(start),
            ..SinkState::default()
        }
    }

    /// Counts a change of `collection`.
    pub(crate) fn count_change(&mut self, collection: &'static str) {
        if let Some(counter) = self.changes_out.get(collection) {
            counter.increment(1);
            return;
        }
        let counter = counter!(
            catalog::CHANGES_OUT,
            "collection" => collection.to_string(),
            "sink" => catalog::SINK_ALPHA
        );
        counter.increment(1);
        self.changes_out.insert(collection, counter);
    }
}

/// What goes out.
#[derive(Clone, Debug)]
enum Outgoing {
    Change(Change),
    Rejected(Rejected),
}

/// Topic names of the sinks.
#[derive(Clone, Debug)]
pub struct SinkTopics {
    /// Changes.
    pub alpha: String,
    /// Malformed messages and late readings.
    pub dead_letters: String,
}

/// Produces `changes` and `rejected` of this worker.
pub fn kafka_sink<'s>(
    changes: ChangeStream<'s>,
    rejected: RejectedStream<'s>,
    producer: Arc<AlphaProducer>,
    deliveries: Arc<Deliveries>,
    topics: SinkTopics,
    state: Rc<RefCell<SinkState>>,
) {
    let scope = changes.scope();
    let streams = vec![
        changes.map_sized(Outgoing::Change),
        rejected.map_sized(Outgoing::Rejected),
    ];
    // Every change is encoded into these two, reused: no allocation per message.
    let (mut key, mut line) = (Vec::with_capacity(128), Vec::with_capacity(512));
    scope
        .concatenate(streams)
        .sink(Pipeline, "KafkaSink", move |(input, frontier)| {
            let mut state = state.borrow_mut();
            input.for_each_stamp(|stamp, data| {
                let time = *stamp.least().expect("a message has a time");
                for container in data {
                    for outgoing in container.drain(..) {
                        match outgoing {
                            Outgoing::Change(change) => {
                                change.write_message(&mut key, &mut line);
                                produce_change(&producer, &deliveries, &topics, time, &key, &line);
                                state.changes += 1;
                                state.count_change(change.collection());
                            }
                            Outgoing::Rejected(rejected) => {
                                if produce_dead_letter(
                                    &producer,
                                    &deliveries,
                                    &topics,
                                    time,
                                    &rejected,
                                ) {
                                    state.dead_letters += 1;
                                }
                            }
                        }
                    }
                }
            });
            state.frontier = frontier.frontier().first().copied();
        });
}

/// Produces one change (its message key and envelope line) to alpha, at `time`.
pub(crate) fn produce_change(
    producer: &AlphaProducer,
    deliveries: &Deliveries,
    topics: &SinkTopics,
    time: Time,
    key: &[u8],
    line: &[u8],
) {
    let record = BaseRecord::with_opaque_to(&topics.alpha, time as usize)
        .key(key)
        .payload(line);
    send(producer, deliveries, time, record);
}

/// Produces a rejected message to the dead-letter topic as it came, with `roomflow.*` headers
/// saying why and where from; whether there was one (rejected lines of files have no message).
pub(crate) fn produce_dead_letter(
    producer: &AlphaProducer,
    deliveries: &Deliveries,
    topics: &SinkTopics,
    time: Time,
    rejected: &Rejected,
) -> bool {
    let Some(origin) = &rejected.origin else {
        return false;
    };
    let kind = match rejected.kind {
        RejectKind::DeadLetter => "malformed",
        RejectKind::Late => "late",
    };
    let (partition, offset) = (origin.partition.to_string(), origin.offset.to_string());
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "roomflow.kind",
            value: Some(kind),
        })
        .insert(Header {
            key: "roomflow.reason",
            value: Some(&rejected.reason),
        })
        .insert(Header {
            key: "roomflow.topic",
            value: Some(&origin.topic),
        })
        .insert(Header {
            key: "roomflow.partition",
            value: Some(&partition),
        })
        .insert(Header {
            key: "roomflow.offset",
            value: Some(&offset),
        });
    let mut record = BaseRecord::with_opaque_to(&topics.dead_letters, time as usize)
        .payload(origin.payload.as_slice())
        .headers(headers);
    if let Some(key) = &origin.key {
        record = record.key(key.as_slice());
    }
    send(producer, deliveries, time, record);
    true
}

/// Sends `record`, counted as outstanding at `time`, waiting while librdkafka's queue is full.
pub fn send<K, P>(
    producer: &AlphaProducer,
    deliveries: &Deliveries,
    time: Time,
    mut record: BaseRecord<'_, K, P, usize>,
) where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    // Counted before sending: the delivery may be reported before `send` returns.
    deliveries.sent(time);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((
                rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                // Backpressure: librdkafka's queue is full until the broker acknowledges more;
                // unless the producer failed for good (e.g. fenced), when it never drains.
                if let Some((_, reason)) = producer.client().fatal_error() {
                    deliveries.fail(|| DeliveryFailure::NotSent { reason });
                    return;
                }
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => {
                deliveries.fail(|| DeliveryFailure::NotSent {
                    reason: error.to_string(),
                });
                return;
            }
        }
    }
}

/// Waits until every message produced is acknowledged, or `timeout`.
pub fn flush(producer: &AlphaProducer, timeout: Duration) -> Result<(), KafkaError> {
    producer.flush(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_acknowledged_once_all_its_messages_are_and_the_input_has_passed_it() {
        let deliveries = Deliveries::new();
        let mut sink = SinkState::starting_at(0);
        // Three messages at 10, one at 20; the sink's input has moved on to 30.
        for time in [10, 10, 20, 10] {
            deliveries.sent(time);
        }
        sink.frontier = Some(30);
        assert_eq!(sink.acked(&deliveries), Some(10));
        // Acknowledgements come in any order; 10 is out only when its last message is.
        deliveries.acknowledged(20);
        deliveries.acknowledged(10);
        deliveries.acknowledged(10);
        assert_eq!(sink.acked(&deliveries), Some(10));
        deliveries.acknowledged(10);
        assert_eq!(deliveries.least_outstanding(), None);
        // Nothing outstanding: acknowledged up to the input frontier, not beyond it.
        assert_eq!(sink.acked(&deliveries), Some(30));
        // A message sent at 40 while the input is at 30 holds it at 30 still.
        deliveries.sent(40);
        assert_eq!(sink.acked(&deliveries), Some(30));
        // The input done: what is outstanding holds it, then nothing does.
        sink.frontier = None;
        assert_eq!(sink.acked(&deliveries), Some(40));
        deliveries.acknowledged(40);
        assert_eq!(sink.acked(&deliveries), None);
    }
}
