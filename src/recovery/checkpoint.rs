//! What a checkpoint holds.

use std::collections::BTreeMap;

use roomflow_dataflows::{Checkpointed, Time};

use crate::kafka::discovery::Partition;
use crate::kafka::position::{PartitionPosition, Resume};

/// A whole checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint<S = Checkpointed> {
    /// Position and state are as of every effect before this time.
    pub time: Time,
    /// Partition positions.
    pub positions: BTreeMap<Partition, PartitionPosition>,
    /// The computation's state (or, for a changelog, its changes since the previous mark).
    pub state: Vec<S>,
}

impl<S> Checkpoint<S> {
    /// Where a job resumed from this checkpoint starts.
    pub fn resume(&self) -> Resume {
        Resume {
            time: self.time,
            positions: self.positions.clone(),
        }
    }
}
