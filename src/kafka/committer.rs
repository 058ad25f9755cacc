//! Committing the job's consumed offsets to its consumer group: only positions whose output every
//! worker has had acknowledged (see `offsets.rs`), at most once per interval while output is
//! still in flight, and synchronously at the end so the last position is durable before the
//! process exits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::Time;

use super::config::SourceConsumer;
use super::offsets::{PendingOffsets, Positions};

/// How often offsets are committed while output is still in flight.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// One worker's committing of the offsets its source consumed.
pub struct OffsetCommitter {
    consumer: Arc<SourceConsumer>,
    interval: Duration,
    last_attempt: Instant,
    /// The last positions committed.
    committed: Option<Positions>,
}

impl OffsetCommitter {
    /// A committer through `consumer` (the source's own: commits belong to its group session).
    pub fn new(consumer: Arc<SourceConsumer>, interval: Duration) -> Self {
        OffsetCommitter {
            consumer,
            interval,
            last_attempt: Instant::now(),
            committed: None,
        }
    }

    /// Commits what may be committed, if it is time to. `acked` is what every worker has had
    /// acknowledged: `None` while not every worker has reported, `Some(None)` when everything
    /// is, `Some(Some(t))` when every output at times before `t` is.
    pub fn step(&mut self, acked: Option<Option<Time>>, offsets: &mut PendingOffsets) {
        let Some(acked) = acked else { return };
        if !is_due(acked, self.last_attempt.elapsed(), self.interval) {
            return;
        }
        self.last_attempt = Instant::now();
        if let Some(positions) = offsets.committable(acked) {
            commit(&self.consumer, &positions, CommitMode::Async);
            self.committed = Some(positions);
        }
    }

    /// Commits the last positions again, synchronously: durable before the process exits.
    pub fn finish(&mut self) {
        if let Some(positions) = &self.committed {
            commit(&self.consumer, positions, CommitMode::Sync);
        }
    }

    /// The last positions committed.
    pub fn last_committed(&self) -> Option<&Positions> {
        self.committed.as_ref()
    }
}

/// Whether to commit now: at once when everything is acknowledged (the job may be about to
/// stop), otherwise once per `interval`.
fn is_due(acked: Option<Time>, since_last: Duration, interval: Duration) -> bool {
    acked.is_none() || since_last >= interval
}

fn commit(consumer: &SourceConsumer, positions: &Positions, mode: CommitMode) {
    let mut list = TopicPartitionList::new();
    for (partition, next) in positions {
        list.add_partition_offset(&partition.topic, partition.partition, Offset::Offset(*next))
            .expect("valid offset");
    }
    if let Err(error) = consumer.commit(&list, mode) {
        tracing::warn!(%error, "cannot commit offsets; will retry with the next commit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_wait_for_the_interval_unless_everything_is_acknowledged() {
        let second = Duration::from_secs(1);
        assert!(!is_due(Some(10), Duration::from_millis(999), second));
        assert!(is_due(Some(10), second, second));
        assert!(is_due(None, Duration::ZERO, second));
    }
}
