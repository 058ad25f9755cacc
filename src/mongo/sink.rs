//! The MongoDB sink operator of one worker: it hands every completed dataflow time's changes,
//! rejected input and (with `--archive-readings`) readings to the worker's writer task, and
//! tracks which times MongoDB has acknowledged.
//!
//! The hand-over is a bounded queue of batches: when it is full the worker waits for the writer,
//! so a slow MongoDB slows the dataflow down instead of piling work up in memory. A time is
//! acknowledged once the sink's input has passed it and every batch holding it is written.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use roomflow_dataflows::sized::MapSized;
use roomflow_dataflows::{HeldByTime, Time};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concatenate;
use tokio::sync::mpsc::{error::TrySendError, Sender};

use super::config::Mongo;
use super::documents::Item;
use super::writer::{write_batches, Batch, WriterProgress};
use crate::streams::{ChangeStream, ReadingStream, RejectedStream};

/// Batches waiting for the writer at most: beyond, the worker waits.
const QUEUE: usize = 8;

/// Items per batch at most.
const BATCH_ITEMS: usize = 10_000;

/// One worker's end of its writer: what it handed over and what is written.
pub struct MongoSinkState {
    sender: Option<Sender<Batch>>,
    /// What the writer reports.
    pub progress: Arc<WriterProgress>,
    /// Batches handed over and not known to be written: (number, least time in it).
    in_flight: VecDeque<(u64, Time)>,
    next_seq: u64,
    /// The sink's input frontier; `None` once complete.
    frontier: Option<Time>,
    /// The writer task, to wait for at the end.
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl MongoSinkState {
    /// Starts the writer task of one worker whose dataflow starts at `start` (the sink's input
    /// frontier until the operator first runs).
    pub fn start(mongo: &Mongo, start: Time) -> Rc<RefCell<MongoSinkState>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(QUEUE);
        let progress = Arc::new(WriterProgress::default());
        let (db, writer_progress) = (mongo.db.clone(), progress.clone());
        let task = mongo.runtime.spawn(async move {
            write_batches(db, receiver, &writer_progress).await;
        });
        Rc::new(RefCell::new(MongoSinkState {
            sender: Some(sender),
            progress,
            in_flight: VecDeque::new(),
            next_seq: 1,
            frontier: Some(start),
            task: Some(task),
            runtime: mongo.runtime.clone(),
        }))
    }

    fn hand_over(&mut self, least_time: Time, items: Vec<Item>) {
        let Some(sender) = &self.sender else { return };
        let batch = Batch {
            seq: self.next_seq,
            items,
        };
        self.in_flight.push_back((self.next_seq, least_time));
        self.next_seq += 1;
        match sender.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => {
                // Backpressure: wait for the writer.
                if sender.blocking_send(batch).is_err() {
                    tracing::error!("the MongoDB writer stopped");
                }
            }
            Err(TrySendError::Closed(_)) => tracing::error!("the MongoDB writer stopped"),
        }
    }

    /// Every write at times before the returned one is acknowledged; `None` when everything
    /// is, and nothing more will come.
    pub fn acked(&mut self) -> Option<Time> {
        let written = self.progress.written.load(Ordering::Acquire);
        while self
            .in_flight
            .front()
            .is_some_and(|(seq, _)| *seq <= written)
        {
            self.in_flight.pop_front();
        }
        let outstanding = self.in_flight.front().map(|(_, time)| *time);
        match (self.frontier, outstanding) {
            (None, None) => None,
            (Some(time), None) | (None, Some(time)) => Some(time),
            (Some(frontier), Some(outstanding)) => Some(frontier.min(outstanding)),
        }
    }

    /// Closes the queue and waits until the writer has written everything handed over.
    pub fn finish(&mut self) {
        self.sender = None;
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(task);
        }
    }
}

/// Writes `changes`, `rejected` and, if given, `readings` of this worker to MongoDB.
pub fn mongo_sink<'s>(
    changes: ChangeStream<'s>,
    rejected: RejectedStream<'s>,
    readings: Option<ReadingStream<'s>>,
    state: Rc<RefCell<MongoSinkState>>,
) {
    let scope = changes.scope();
    let mut streams = vec![
        changes.map_sized(Item::Change),
        rejected.map_sized(Item::Rejected),
    ];
    if let Some(readings) = readings {
        streams.push(readings.map_sized(|(reading, _, _)| Item::Reading(reading)));
    }
    let mut pending: HeldByTime<Item> = HeldByTime::default();
    scope
        .concatenate(streams)
        .sink(Pipeline, "MongoSink", move |(input, frontier)| {
            input.for_each_stamp(|stamp, data| {
                let time = *stamp.least().expect("a message has a time");
                let items = pending.entry(time);
                for container in data {
                    items.append(container);
                }
            });
            let frontier = frontier.frontier().first().copied();
            let mut state = state.borrow_mut();
            // Complete times, in order, in batches of whole times.
            let mut batch: Vec<Item> = Vec::new();
            let mut least = None;
            while let Some((time, (), mut items)) = pending.pop_complete(frontier) {
                least.get_or_insert(time);
                batch.append(&mut items);
                if batch.len() >= BATCH_ITEMS {
                    state.hand_over(least.take().expect("set above"), std::mem::take(&mut batch));
                }
            }
            if let Some(least) = least {
                if !batch.is_empty() {
                    state.hand_over(least, batch);
                }
            }
            state.frontier = frontier;
        });
}
