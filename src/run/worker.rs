//! One worker of the streaming job: it builds the job's dataflow, feeds the restored state, then
//! steps the dataflow and, between steps, merges what its sinks have had acknowledged, tells the
//! other workers, and lets the job's guarantee ([`Durability`]) commit what it can; at the end
//! the guarantee finishes (last acknowledgements, checkpoint, offsets or transaction) and the
//! worker adds up its counts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use roomflow_dataflows::{restored_at, Time};
use timely::worker::Worker;

use super::dataflow::{build_job_dataflow, JobClients, JobDataflow};
use super::durability::Durability;
use super::error::JobError;
use super::plan::JobPlan;
use crate::kafka::config::QuietEof;
use crate::kafka::coordination::{Coordination, CoordinationView, Report};

/// How long a worker parks when nothing is ready.
const PARK: Duration = Duration::from_millis(10);

/// A worker of the job, built and running.
pub struct JobWorker<'w> {
    worker: &'w mut Worker,
    plan: &'w JobPlan,
    index: usize,
    dataflow: JobDataflow,
    coordination: Coordination,
    view: CoordinationView,
    /// The job's guarantee, as this worker drives it.
    durability: Durability,
}

impl<'w> JobWorker<'w> {
    /// Creates the worker's clients, builds its dataflows and feeds the restored state.
    pub fn start(worker: &'w mut Worker, plan: &'w JobPlan) -> Result<Self, JobError> {
        let index = worker.index();
        let clients = clients(plan)?;
        let durability = Durability::start(plan, &clients.consumer, index)?;
        // Every worker builds its dataflows in the same order: the side dataflow first.
        let coordination = Coordination::new(worker);
        let view = coordination.view();
        let mut dataflow = build_job_dataflow(worker, plan, &clients, view.clone(), &durability);
        plan.health.beat(index);
        // The restored state enters just before the checkpoint's time, a share through each
        // worker (the dataflow routes each record to the worker that owns its room).
        if let Some(mut input) = dataflow.restored.take() {
            input.advance_to(restored_at(plan.resume.time));
            for record in plan.restored.share(index, worker.peers()) {
                input.insert(record);
            }
            input.close();
        }
        Ok(JobWorker {
            worker,
            plan,
            index,
            dataflow,
            coordination,
            view,
            durability,
        })
    }

    /// Steps the dataflow once and does the bookkeeping between steps; `Ok(false)` once every
    /// worker's source has stopped and all their output is acknowledged.
    pub fn step(&mut self) -> Result<bool, JobError> {
        self.worker.step_or_park(Some(PARK));
        let health = &self.plan.health;
        health.beat(self.index);
        if self.plan.stop.load(Ordering::Relaxed) {
            health.stopping();
        }
        if let Some(worker) = self.plan.failed_worker() {
            return Err(JobError::AnotherWorker { worker });
        }
        if let Some(failure) = self.durability.failure() {
            return Err(failure);
        }
        let mut acked = self.durability.acked();
        let mut written = None;
        if let Some(mongo) = &self.dataflow.mongo {
            let mut mongo = mongo.borrow_mut();
            if let Some(detail) = mongo.progress.failure() {
                return Err(JobError::Mongo { detail });
            }
            written = mongo.acked();
            acked = least_acked(acked, written);
        }
        let source = self.dataflow.source.borrow();
        let report = Report {
            capability: source.capability,
            acked,
            written,
            sent_up_to: source.sent_up_to,
            newest_effect: source.newest_effect,
        };
        drop(source);
        self.coordination.publish(report);
        let offsets = &mut self.dataflow.source.borrow_mut().offsets;
        self.durability.step(&self.view, offsets)?;
        Ok(!self.view.all_complete())
    }

    /// Makes the output durable to the end (the guarantee's `finish`), lets the other workers
    /// finish, and adds this worker's counts to the plan's totals.
    pub fn finish(mut self) -> Result<(), JobError> {
        self.plan.health.stopping();
        self.durability.finish()?;
        self.coordination.close();
        while self.worker.step_or_park(Some(PARK)) {}

        let mut totals = self.plan.totals.lock().expect("no panics holding the lock");
        let counts = self.dataflow.source.borrow().counts;
        totals.source.messages += counts.messages;
        totals.source.readings += counts.readings;
        totals.source.dead_letters += counts.dead_letters;
        totals.source.late += counts.late;
        let (changes, dead_letters) = self.durability.counts();
        totals.changes += changes;
        totals.dead_letter_messages += dead_letters;
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

/// Creates a worker's Kafka clients (its producer comes with its [`Durability`]).
fn clients(plan: &JobPlan) -> Result<JobClients, JobError> {
    let consumer = plan
        .kafka
        .client_config(&[
            ("group.id", &plan.group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
            // librdkafka stops fetching a partition whose queue holds `queued.min.messages`
            // (100,000) and looks again only after this backoff (1 s by default). The source
            // empties such a queue in a fraction of that while catching up, then found nothing
            // to read: a 1M-reading catch-up stalled for most of a second (see
            // docs/performance.md).
            ("fetch.queue.backoff.ms", "10"),
            // Prefetched messages per partition (librdkafka's default, 100,000, held about 150 MB
            // of a 1M-reading catch-up's 290 MB). With the short backoff above, 20,000 read as
            // fast: 160–180 MB (see docs/performance.md).
            ("queued.min.messages", "20000"),
        ])
        .create_with_context(QuietEof)
        .map_err(|error| JobError::Client {
            what: "a Kafka consumer",
            error,
        })?;
    let end_probe = plan
        .kafka
        .client_config(&[])
        .create_with_context(QuietEof)
        .map_err(|error| JobError::Client {
            what: "a Kafka client",
            error,
        })?;
    Ok(JobClients {
        consumer: Arc::new(consumer),
        end_probe: Arc::new(end_probe),
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
