//! Consumed positions waiting for their output to be acknowledged.
//!
//! A message consumed by the source leads to changes at dataflow times no earlier than the stamp
//! it was sent at. So once every change at times up to the greatest stamp sent so far has been
//! acknowledged by the broker, every message consumed so far is fully reflected in the alpha
//! topic and its offset may be committed. Committing only then keeps the group's position behind
//! the output: after a crash nothing between the two is lost, it is read again.

use std::collections::{BTreeMap, VecDeque};

use roomflow_dataflows::Time;

use super::discovery::Partition;

/// Next offsets to read, per partition.
pub type Positions = BTreeMap<Partition, i64>;

/// Snapshots of the consumed positions, each with the greatest stamp sent before it was taken.
#[derive(Default)]
pub struct PendingOffsets {
    snapshots: VecDeque<(Time, Positions)>,
    /// Positions of every partition read so far, the latest committed or not.
    latest: Positions,
    dirty: bool,
}

impl PendingOffsets {
    /// Records that the next message of `partition` is at `next`.
    pub fn consumed(&mut self, partition: &Partition, next: i64) {
        match self.latest.get_mut(partition) {
            Some(offset) => *offset = next.max(*offset),
            None => {
                self.latest.insert(partition.clone(), next);
            }
        }
        self.dirty = true;
    }

    /// Closes a snapshot: everything consumed so far was sent at stamps up to `sent_up_to`.
    pub fn snapshot(&mut self, sent_up_to: Time) {
        if self.dirty {
            self.snapshots.push_back((sent_up_to, self.latest.clone()));
            self.dirty = false;
        }
    }

    /// The positions that may be committed now that every change at times before `acked` is
    /// acknowledged (`None`: every change is), or `None` if nothing new may be.
    pub fn committable(&mut self, acked: Option<Time>) -> Option<Positions> {
        let mut ready = None;
        while let Some((stamp, _)) = self.snapshots.front() {
            if acked.is_some_and(|acked| *stamp >= acked) {
                break;
            }
            ready = self.snapshots.pop_front().map(|(_, positions)| positions);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(partition: i32) -> Partition {
        Partition {
            topic: "t".into(),
            partition,
        }
    }

    #[test]
    fn positions_wait_for_every_change_up_to_their_stamp() {
        let mut pending = PendingOffsets::default();
        pending.consumed(&p(0), 10);
        pending.snapshot(1_000);
        pending.consumed(&p(1), 5);
        pending.consumed(&p(0), 12);
        pending.snapshot(2_000);
        // Nothing new: no snapshot.
        pending.snapshot(3_000);

        // Changes at 1000 not yet acknowledged.
        assert_eq!(pending.committable(Some(1_000)), None);
        assert_eq!(
            pending.committable(Some(1_001)),
            Some(Positions::from([(p(0), 10)]))
        );
        assert_eq!(pending.committable(Some(1_500)), None);
        assert_eq!(
            pending.committable(None),
            Some(Positions::from([(p(0), 12), (p(1), 5)]))
        );
        assert_eq!(pending.committable(None), None);
    }
}
