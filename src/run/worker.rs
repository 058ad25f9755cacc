//! One worker of the streaming job: it builds the job's dataflow, feeds the restored state, then
//! steps the dataflow and, between steps, merges what its sinks have had acknowledged, tells the
//! other workers, commits offsets and (on the leading worker) writes checkpoints; at the end it
//! flushes, writes the last checkpoint, commits synchronously and adds up its counts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use roomflow_dataflows::{restored_at, Time};
use timely::worker::Worker;

use super::dataflow::{build_job_dataflow, AlphaSink, JobClients, JobDataflow, Recovery};
use super::plan::JobPlan;
use crate::kafka::committer::{OffsetCommitter, COMMIT_INTERVAL};
use crate::kafka::config::QuietEof;
use crate::kafka::coordination::{Coordination, CoordinationView, Report};
use crate::kafka::sink::{flush, producer};
use crate::kafka::transactional::TransactionState;
use crate::recovery::saver::CheckpointSaver;
use crate::recovery::transactions::Transactions;

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
    /// At-least-once: commits the group's offsets behind acknowledged output.
    committer: Option<OffsetCommitter>,
    /// At-least-once, on the leading worker, with `--mongo`.
    saver: Option<CheckpointSaver>,
    /// Exactly-once, on the leading worker.
    transactions: Option<Transactions>,
}

impl<'w> JobWorker<'w> {
    /// Creates the worker's clients, builds its dataflows and feeds the restored state.
    pub fn start(worker: &'w mut Worker, plan: &'w JobPlan) -> Result<Self, String> {
        let index = worker.index();
        let clients = clients(plan, index)?;
        // Every worker builds its dataflows in the same order: the side dataflow first.
        let coordination = Coordination::new(worker);
        let view = coordination.view();
        let (mut saver, mut transactions, mut committer) = (None, None, None);
        let mut dataflow = match &plan.exactly_once {
            None => {
                if index == 0 {
                    let store = plan
                        .store
                        .lock()
                        .expect("no panics holding the lock")
                        .take();
                    if let (Some(store), Some(mongo)) = (store, &plan.mongo) {
                        saver = Some(CheckpointSaver::new(store, mongo.runtime.clone()));
                    }
                }
                committer = Some(OffsetCommitter::new(
                    clients.consumer.clone(),
                    COMMIT_INTERVAL,
                ));
                let recovery = Recovery::AtLeastOnce(saver.as_ref());
                build_job_dataflow(worker, plan, &clients, view.clone(), recovery)
            }
            Some(exactly_once) => {
                let state = TransactionState::starting_at(plan.resume.time);
                if let Some((producer, deliveries)) = &clients.producer {
                    transactions = Some(Transactions::new(
                        producer.clone(),
                        deliveries.clone(),
                        clients.consumer.clone(),
                        state.clone(),
                        exactly_once.state_topic.clone(),
                    ));
                }
                let recovery = Recovery::ExactlyOnce(state, transactions.as_ref());
                build_job_dataflow(worker, plan, &clients, view.clone(), recovery)
            }
        };
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
            clients,
            dataflow,
            coordination,
            view,
            committer,
            saver,
            transactions,
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
        if let Some(failure) = self.plan.failure() {
            return Err(failure);
        }
        if let Some(failure) = self
            .transactions
            .as_ref()
            .and_then(Transactions::fatal_error)
        {
            return Err(failure);
        }
        if let Some((_, deliveries)) = &self.clients.producer {
            if let Some(failure) = deliveries.failure() {
                return Err(format!("producing failed {failure}; offsets of the unacknowledged changes were not committed"));
            }
        }
        let mut acked = match (&self.dataflow.alpha, &self.clients.producer) {
            (AlphaSink::AtLeastOnce(state), Some((_, deliveries))) => {
                state.borrow().acked(deliveries)
            }
            (AlphaSink::AtLeastOnce(_), None) => None,
            (AlphaSink::ExactlyOnce(state), _) => state.borrow().acked(),
        };
        let mut written = None;
        if let Some(mongo) = &self.dataflow.mongo {
            let mut mongo = mongo.borrow_mut();
            if let Some(failure) = mongo.progress.failure() {
                return Err(format!("{failure}; the job stops (nothing after the last checkpoint is lost: a restart redoes it)"));
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
        let everyone_acked = self.view.acked();
        if let Some(saver) = &mut self.saver {
            saver.step(everyone_acked);
        }
        if let Some(transactions) = &mut self.transactions {
            transactions.step(self.view.written())?;
        }
        if let Some(committer) = &mut self.committer {
            committer.step(
                everyone_acked,
                &mut self.dataflow.source.borrow_mut().offsets,
            );
        }
        Ok(!self.view.all_complete())
    }

    /// Flushes the producer, writes the last checkpoint, commits synchronously, lets the other
    /// workers finish, and adds this worker's counts to the plan's totals.
    pub fn finish(mut self) -> Result<(), String> {
        self.plan.health.stopping();
        match &mut self.transactions {
            // The last mark's transaction is committed (the job completes only then).
            Some(transactions) => transactions.finish(),
            None => {
                if let (Some((producer, _)), None) =
                    (&self.clients.producer, &self.plan.exactly_once)
                {
                    flush(producer, FINAL_FLUSH).map_err(|e| e.to_string())?;
                }
            }
        }
        // Everything is acknowledged: the newest complete checkpoint can be written.
        if let Some(saver) = &mut self.saver {
            saver.finish();
        }
        if let Some(committer) = &mut self.committer {
            committer.finish();
        }
        self.coordination.close();
        while self.worker.step_or_park(Some(PARK)) {}

        let mut totals = self.plan.totals.lock().expect("no panics holding the lock");
        let counts = self.dataflow.source.borrow().counts;
        totals.source.messages += counts.messages;
        totals.source.readings += counts.readings;
        totals.source.dead_letters += counts.dead_letters;
        totals.source.late += counts.late;
        let (changes, dead_letters) = self.dataflow.alpha.counts();
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

/// Creates a worker's Kafka clients: exactly-once, only worker 0 produces, with the job's
/// transactional producer.
fn clients(plan: &JobPlan, index: usize) -> Result<JobClients, String> {
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
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
    let end_probe = plan
        .kafka
        .client_config(&[])
        .create_with_context(QuietEof)
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    let producer = match &plan.exactly_once {
        Some(exactly_once) if index == 0 => exactly_once.producer.clone(),
        Some(_) => None,
        None => {
            let (producer, deliveries) = producer(&plan.kafka)
                .map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
            Some((Arc::new(producer), deliveries))
        }
    };
    Ok(JobClients {
        consumer: Arc::new(consumer),
        end_probe: Arc::new(end_probe),
        producer,
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
