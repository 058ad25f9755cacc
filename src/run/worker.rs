//! One worker of the streaming job: it builds the job's dataflow, feeds the restored state, then
//! steps the dataflow and, between steps, merges what its sinks have had acknowledged, tells the
//! other workers, commits offsets and (on the leading worker) writes checkpoints; at the end it
//! flushes, writes the last checkpoint, commits synchronously and adds up its counts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use roomflow_dataflows::Time;
use timely::worker::Worker;

use super::dataflow::{build_job_dataflow, JobClients, JobDataflow};
use super::plan::JobPlan;
use crate::kafka::committer::{OffsetCommitter, COMMIT_INTERVAL};
use crate::kafka::config::QuietEof;
use crate::kafka::coordination::{Coordination, CoordinationView, Report};
use crate::kafka::sink::{flush, producer};
use crate::recovery::saver::CheckpointSaver;

/// How long a worker parks when nothing is ready.
const PARK: Duration = Duration::from_millis(10);

/// How long the end waits for the producer's last acknowledgements.
const FINAL_FLUSH: Duration = Duration::from_secs(30);

/// A worker of the job, built and running.
pub struct JobWorker<'w> {
    worker: &'w mut Worker,
    plan: &'w JobPlan,
    index: usize,
    clients: JobClients,
    dataflow: JobDataflow,
    coordination: Coordination,
    view: CoordinationView,
    committer: OffsetCommitter,
    /// On the leading worker, with `--mongo`.
    saver: Option<CheckpointSaver>,
}

impl<'w> JobWorker<'w> {
    /// Creates the worker's clients, builds its dataflows and feeds the restored state.
    pub fn start(worker: &'w mut Worker, plan: &'w JobPlan) -> Result<Self, String> {
        let index = worker.index();
        let clients = clients(plan)?;
        // Every worker builds its dataflows in the same order: the side dataflow first.
        let coordination = Coordination::new(worker);
        let view = coordination.view();
        let saver = if index == 0 {
            let store = plan
                .store
                .lock()
                .expect("no panics holding the lock")
                .take();
            match (store, &plan.mongo) {
                (Some(store), Some(mongo)) => {
                    Some(CheckpointSaver::new(store, mongo.runtime.clone()))
                }
                _ => None,
            }
        } else {
            None
        };
        let mut dataflow = build_job_dataflow(worker, plan, &clients, view.clone(), saver.as_ref());
        plan.health.beat(index);
        // The restored state enters at the checkpoint's time, through worker 0.
        if let Some(mut input) = dataflow.restored.take() {
            input.advance_to(plan.resume.time);
            if index == 0 {
                let records = plan
                    .restored
                    .lock()
                    .expect("no panics holding the lock")
                    .take();
                for record in records.into_iter().flatten() {
                    input.insert(record);
                }
            }
            input.close();
        }
        let committer = OffsetCommitter::new(clients.consumer.clone(), COMMIT_INTERVAL);
        Ok(JobWorker {
            worker,
            plan,
            index,
            clients,
            dataflow,
            coordination,
            view,
            committer,
            saver,
        })
    }

    /// Steps the dataflow once and does the bookkeeping between steps; `Ok(false)` once every
    /// worker's source has stopped and all their output is acknowledged.
    pub fn step(&mut self) -> Result<bool, String> {
        self.worker.step_or_park(Some(PARK));
        let health = &self.plan.health;
        health.beat(self.index);
        if self.plan.stop.load(Ordering::Relaxed) {
            health.stopping();
        }
        if let Some(failure) = self.clients.deliveries.failure() {
            return Err(format!("producing failed {failure}; offsets of the unacknowledged changes were not committed"));
        }
        let mut acked = self.dataflow.alpha.borrow().acked(&self.clients.deliveries);
        if let Some(mongo) = &self.dataflow.mongo {
            let mut mongo = mongo.borrow_mut();
            if let Some(failure) = mongo.progress.failure() {
                return Err(format!("{failure}; the job stops (nothing after the last checkpoint is lost: a restart redoes it)"));
            }
            acked = least_acked(acked, mongo.acked());
        }
        let capability = self.dataflow.source.borrow().capability;
        self.coordination.publish(Report { capability, acked });
        let everyone_acked = self.view.acked();
        if let Some(saver) = &mut self.saver {
            saver.step(everyone_acked);
        }
        self.committer.step(
            everyone_acked,
            &mut self.dataflow.source.borrow_mut().offsets,
        );
        Ok(!self.view.all_complete())
    }

    /// Flushes the producer, writes the last checkpoint, commits synchronously, lets the other
    /// workers finish, and adds this worker's counts to the plan's totals.
    pub fn finish(mut self) -> Result<(), String> {
        self.plan.health.stopping();
        flush(&self.clients.producer, FINAL_FLUSH).map_err(|e| e.to_string())?;
        // Everything is acknowledged: the newest complete checkpoint can be written.
        if let Some(saver) = &mut self.saver {
            saver.finish();
        }
        self.committer.finish();
        self.coordination.close();
        while self.worker.step_or_park(Some(PARK)) {}

        let mut totals = self.plan.totals.lock().expect("no panics holding the lock");
        let counts = self.dataflow.source.borrow().counts;
        totals.source.messages += counts.messages;
        totals.source.readings += counts.readings;
        totals.source.dead_letters += counts.dead_letters;
        totals.source.late += counts.late;
        let alpha = self.dataflow.alpha.borrow();
        totals.changes += alpha.changes;
        totals.dead_letter_messages += alpha.dead_letters;
        if let Some(mongo) = &self.dataflow.mongo {
            let mut mongo = mongo.borrow_mut();
            mongo.finish();
            totals.mongo_documents += mongo.progress.documents.load(Ordering::Relaxed);
            totals.mongo_round_trips += mongo.progress.round_trips.load(Ordering::Relaxed);
        }
        tracing::debug!(worker = self.index, "worker done");
        Ok(())
    }
}

/// Creates a worker's Kafka clients.
fn clients(plan: &JobPlan) -> Result<JobClients, String> {
    let consumer = plan
        .kafka
        .client_config(&[
            ("group.id", &plan.group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
        ])
        .create_with_context(QuietEof)
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
    let end_probe = plan
        .kafka
        .client_config(&[])
        .create()
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    let (producer, deliveries) =
        producer(&plan.kafka).map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
    Ok(JobClients {
        consumer: Arc::new(consumer),
        end_probe: Arc::new(end_probe),
        producer: Arc::new(producer),
        deliveries,
    })
}

/// The least of two sinks' acknowledged times, where `None` means "everything, and nothing more
/// will come".
fn least_acked(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (None, None) => None,
        (Some(time), None) | (None, Some(time)) => Some(time),
        (Some(a), Some(b)) => Some(a.min(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_is_acknowledged_up_to_its_slowest_sink() {
        assert_eq!(least_acked(Some(20), Some(10)), Some(10));
        // A sink that is done does not hold the other back.
        assert_eq!(least_acked(None, Some(10)), Some(10));
        assert_eq!(least_acked(Some(20), None), Some(20));
        assert_eq!(least_acked(None, None), None);
    }
}
