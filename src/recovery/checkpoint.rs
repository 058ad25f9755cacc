//! What a checkpoint holds.

use std::collections::BTreeMap;

use roomflow_dataflows::{Checkpointed, EventTime, Time};
use serde::{Deserialize, Serialize};

use crate::kafka::discovery::Partition;

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

/// A whole checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Position and state are as of every effect before this time.
    pub time: Time,
    /// Partition positions.
    pub positions: BTreeMap<Partition, PartitionPosition>,
    /// The computation's state.
    pub state: Vec<Checkpointed>,
}

impl Checkpoint {
    /// Where a job resumed from this checkpoint starts.
    pub fn resume(&self) -> Resume {
        Resume {
            time: self.time,
            positions: self.positions.clone(),
        }
    }
}
