//! Where a partition is, as a checkpoint records it and a resumed job starts from it: the next
//! offset and the partition's watermark. Positions are a Kafka partition's business; `recovery`
//! stores them in checkpoints (the arrow runs from `recovery` to here, never back).

use std::collections::BTreeMap;

use roomflow_dataflows::{EventTime, Time};
use serde::{Deserialize, Serialize};

use super::discovery::Partition;

/// Where a partition is: the next offset to read and its watermark after the message before.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionPosition {
    /// The partition.
    pub partition: Partition,
    /// The offset to read next.
    pub next: i64,
    /// The newest event time the partition delivered before `next`.
    pub newest: Option<EventTime>,
}

/// Where a resumed job starts: the checkpoint's time and partition positions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Every effect of a message after the positions is at or after this time.
    pub time: Time,
    /// Positions per partition; partitions not listed start as `--from` says.
    pub positions: BTreeMap<Partition, PartitionPosition>,
}
