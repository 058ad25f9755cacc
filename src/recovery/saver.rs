//! Writing checkpoints on the job's leading worker: the newest checkpoint assembled (by
//! `gather.rs`) is held until every output at times before its time is acknowledged, then written
//! in the background, one write at a time; the source asks for the next checkpoint only once the
//! previous one is written (the in-flight flag), and the age of the last one is a gauge.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, gauge, Gauge};
use roomflow_dataflows::Time;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::checkpoint::Checkpoint;
use super::store::CheckpointStore;
use crate::telemetry::catalog;

/// The leading worker's checkpoint writing.
pub struct CheckpointSaver {
    store: Arc<tokio::sync::Mutex<CheckpointStore>>,
    runtime: Arc<Runtime>,
    /// Checkpoints assembled and not yet written; the gathering operator appends them, and
    /// only the newest is worth writing.
    complete: Rc<RefCell<VecDeque<Checkpoint>>>,
    /// Set by the source when it sends a mark; cleared once that checkpoint's write ends.
    in_flight: Rc<Cell<u32>>,
    /// The write under way, resolving to the checkpoint's time.
    writing: Option<JoinHandle<anyhow::Result<Time>>>,
    last_written: Instant,
    age: Gauge,
}

impl CheckpointSaver {
    /// A saver writing to `store` on `runtime`.
    pub fn new(store: CheckpointStore, runtime: Arc<Runtime>) -> Self {
        CheckpointSaver {
            store: Arc::new(tokio::sync::Mutex::new(store)),
            runtime,
            complete: Rc::default(),
            in_flight: Rc::default(),
            writing: None,
            last_written: Instant::now(),
            age: gauge!(catalog::CHECKPOINT_AGE),
        }
    }

    /// Where the gathering operator leaves each complete checkpoint.
    pub fn complete_slot(&self) -> Rc<RefCell<VecDeque<Checkpoint>>> {
        self.complete.clone()
    }

    /// The flag the source sets when it asks for a checkpoint.
    pub fn in_flight_flag(&self) -> Rc<Cell<u32>> {
        self.in_flight.clone()
    }

    /// Starts writing the newest complete checkpoint if every output before its time is
    /// acknowledged (`acked` as in [`is_covered`]), and notes a write that ended.
    pub fn step(&mut self, acked: Option<Option<Time>>) {
        self.age.set(self.last_written.elapsed());
        {
            let mut complete = self.complete.borrow_mut();
            while complete.len() > 1 {
                complete.pop_front();
            }
        }
        let ready = self
            .complete
            .borrow()
            .back()
            .is_some_and(|checkpoint| is_covered(checkpoint.time, acked));
        if self.writing.is_none() && ready {
            let checkpoint = self.complete.borrow_mut().pop_back().expect("ready");
            let store = self.store.clone();
            self.writing = Some(self.runtime.spawn(async move {
                let mut store = store.lock().await;
                store.save(&checkpoint).await.map(|()| checkpoint.time)
            }));
        }
        if self.writing.as_ref().is_some_and(|task| task.is_finished()) {
            self.end_write();
        }
    }

    /// Waits for the write under way and reports how it ended.
    fn end_write(&mut self) {
        let task = self.writing.take().expect("a write under way");
        match self.runtime.block_on(task) {
            Ok(Ok(time)) => {
                tracing::info!(time, "checkpoint written");
                counter!(catalog::CHECKPOINTS).increment(1);
                self.last_written = Instant::now();
            }
            Ok(Err(error)) => tracing::warn!(
                error = format!("{error:#}"),
                "cannot write a checkpoint; the next one will be tried"
            ),
            Err(error) => tracing::warn!(%error, "cannot write a checkpoint"),
        }
        self.in_flight.set(0);
    }

    /// At the end, with every output acknowledged: waits for the write under way (reported like
    /// any other: at the end it may be the last one), then writes the newest complete checkpoint.
    pub fn finish(&mut self) {
        if self.writing.is_some() {
            self.end_write();
        }
        let Some(checkpoint) = self.complete.borrow_mut().pop_back() else {
            return;
        };
        let mut store = self.store.blocking_lock();
        match self.runtime.block_on(store.save(&checkpoint)) {
            Ok(()) => {
                tracing::info!(time = checkpoint.time, "last checkpoint written");
                counter!(catalog::CHECKPOINTS).increment(1);
            }
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "cannot write the last checkpoint"
            ),
        }
    }
}

/// Whether every output before `time` is acknowledged, given what every worker reports: `None`
/// while not all have reported, `Some(None)` when everything is acknowledged, `Some(Some(t))`
/// when everything before `t` is.
pub fn is_covered(time: Time, acked: Option<Option<Time>>) -> bool {
    match acked {
        None => false,
        Some(None) => true,
        Some(Some(acked)) => acked >= time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_waits_until_every_output_before_it_is_acknowledged() {
        // Not every worker has reported: nothing is known to be acknowledged.
        assert!(!is_covered(100, None));
        // Outputs before 99 acknowledged: something at 99 may still be in flight.
        assert!(!is_covered(100, Some(Some(99))));
        assert!(is_covered(100, Some(Some(100))));
        assert!(is_covered(100, Some(None)));
    }
}
