//! One partition as the Kafka source reads it: its watermark and phase, the time of its
//! last message's effects, how its readings are stamped (fine, or coarse while it works through
//! a backlog), how its end is detected, and its metrics.

use std::time::{Duration, Instant};

use metrics::{counter, gauge, Counter, Gauge};
use rdkafka::consumer::Consumer;
use roomflow_dataflows::{Horizon, StreamWatermark, Time};

use super::discovery::Partition;
use super::position::PartitionPosition;
use crate::telemetry::catalog;

/// Whether a partition is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Assigned, not heard from yet: it may hold anything, so it holds the capability.
    Unknown,
    /// Delivering.
    Active,
    /// Caught up with the end of the partition.
    CaughtUp,
}

/// A partition being read, with everything the source keeps about it.
pub struct PartitionReader {
    pub(super) partition: Partition,
    pub(super) watermark: StreamWatermark,
    pub(super) phase: Phase,
    /// Whether its backlog exceeds the catch-up lag.
    pub(super) catching_up: bool,
    /// Whether its watermark catches up with the capability at the next message: for a new
    /// partition and one that was caught up, not for one resumed from a checkpoint (its
    /// watermark is where it was).
    pub(super) needs_catch_up: bool,
    /// The time of the last message's effects. Every effect of one message is at one time, and
    /// these times never decrease along a partition: so a position splits the partition into
    /// messages whose effects are before a time and messages whose effects are not.
    pub(super) last_effect: Time,
    /// The position after the last message, at `last_effect`, not yet reported.
    pub(super) unreported: Option<(Time, PartitionPosition)>,
    /// The offset after the last message read (or where a resumed partition starts).
    pub(super) next_offset: Option<i64>,
    /// When a resumed partition not heard from yet last asked the broker for its end.
    pub(super) end_asked: Option<Instant>,
    /// Its counters and lag gauge.
    pub(super) metrics: PartitionMetrics,
}

/// The metric handles of one partition, registered once so a message costs an atomic add.
pub struct PartitionMetrics {
    /// Messages consumed from its topic.
    pub messages: Counter,
    /// Readings of its topic applied.
    pub readings: Counter,
    /// Messages between its read position and its end: registered at the first figure, so a
    /// partition not read yet shows no lag rather than a false 0.
    lag: Option<Gauge>,
    partition: Partition,
}

impl PartitionMetrics {
    /// The handles of `partition`.
    pub fn new(partition: &Partition) -> Self {
        let topic = partition.topic.clone();
        PartitionMetrics {
            messages: counter!(catalog::MESSAGES_IN, "topic" => topic.clone()),
            readings: counter!(catalog::READINGS_IN, "topic" => topic),
            lag: None,
            partition: partition.clone(),
        }
    }

    /// Records the partition's lag: `end` (the fetched high watermark) less `next` (the offset
    /// to read next).
    pub fn set_lag(&mut self, end: i64, next: i64) {
        let partition = &self.partition;
        self.lag
            .get_or_insert_with(|| {
                gauge!(
                    catalog::CONSUMER_LAG,
                    "topic" => partition.topic.clone(),
                    "partition" => partition.partition.to_string()
                )
            })
            .set((end - next).max(0) as f64);
    }
}

impl PartitionReader {
    /// A reader of `partition`, in `phase`: fresh, or resumed at `resumed`, its
    /// position in the checkpoint taken at `resume_time` (time 0 for a fresh job).
    pub(super) fn new(
        partition: Partition,
        resumed: Option<&PartitionPosition>,
        resume_time: Time,
        phase: Phase,
    ) -> Self {
        PartitionReader {
            metrics: PartitionMetrics::new(&partition),
            watermark: StreamWatermark::resumed(resumed.and_then(|position| position.newest)),
            phase,
            catching_up: false,
            // Resumed partitions continue from their own watermark.
            needs_catch_up: resumed.is_none(),
            last_effect: resume_time,
            unreported: None,
            next_offset: resumed.map(|position| position.next),
            end_asked: resumed.map(|_| Instant::now()),
            partition,
        }
    }

    /// The stamp of a reading admitted now, given the fine `stamp` the watermark chose.
    pub(super) fn stamp(&self, stamp: Time, capability: Time, catch_up_tick_ms: i64) -> Time {
        if !self.catching_up {
            return stamp;
        }
        let newest = self.watermark.newest().unwrap_or(0).max(0);
        let coarse = (newest - newest.rem_euclid(catch_up_tick_ms)) as Time;
        coarse.max(capability)
    }

    /// The least stamp this partition can still produce (the capability may be above it).
    pub(super) fn lower_bound(&self, horizon: &Horizon, catch_up_tick_ms: i64) -> Time {
        let bound = self.watermark.lower_bound(None, horizon);
        if self.catching_up {
            bound - bound % catch_up_tick_ms as Time
        } else {
            bound
        }
    }

    /// The end of the partition as last fetched, from librdkafka's cache (no broker request).
    pub(super) fn fetched_end(&self, client: *mut rdkafka::bindings::rd_kafka_t) -> Option<i64> {
        let topic = std::ffi::CString::new(self.partition.topic.as_str()).ok()?;
        let (mut low, mut high) = (0i64, 0i64);
        // SAFETY: `client` is the live consumer's handle; the call only reads librdkafka's cached
        // offsets into the two integers.
        let error = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                client,
                topic.as_ptr(),
                self.partition.partition,
                &mut low,
                &mut high,
            )
        };
        (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high)
    }
}

/// A client of its own for asking where partitions end. The question is asked from a worker
/// thread and blocks it until answered: on the consumer's connection it would queue behind the
/// fetch the broker is holding (Kafka processes one request per connection at a time, in order,
/// as its protocol guide states, and holds a fetch of partitions at their end for up to
/// `fetch.wait.max.ms`, 500 ms by default), stalling the worker that long; on a connection of
/// its own it takes one round trip.
pub type EndProbe = rdkafka::consumer::BaseConsumer<super::config::QuietEof>;

/// The phase of a partition resumed at `next`: caught up if it ends there (brokers need not send
/// an end-of-partition event to a consumer that starts at the end). Asked when the partition is
/// assigned, and again while it says nothing.
pub(super) fn resumed_phase(probe: &EndProbe, partition: &Partition, next: i64) -> Phase {
    match probe.fetch_watermarks(
        &partition.topic,
        partition.partition,
        Duration::from_secs(2),
    ) {
        Ok((_, end)) if next >= end => {
            tracing::debug!(%partition, next, end, "resumed at the end");
            Phase::CaughtUp
        }
        Ok((_, end)) => {
            tracing::debug!(%partition, next, end, "resumed behind the end");
            Phase::Unknown
        }
        Err(error) => {
            // Asked again in a second; the partition holds time back meanwhile, as unread ones do.
            tracing::debug!(%partition, %error, "cannot read the end of a resumed partition");
            Phase::Unknown
        }
    }
}

/// Notes in `catching_up` whether the message at `offset` of `partition` is part of a backlog,
/// given the partition's fetched `end`.
pub(super) fn note_backlog(
    catching_up: &mut bool,
    partition: &Partition,
    offset: i64,
    end: Option<i64>,
    catch_up_lag: i64,
) {
    let Some(end) = end else { return };
    let now = end - (offset + 1) > catch_up_lag;
    if now != *catching_up {
        tracing::debug!(%partition, backlog = end - offset - 1, catching_up = now, "backlog");
    }
    *catching_up = now;
}
