//! The writer of one worker: batches from the sink operator, written on the tokio runtime.
//!
//! Batches come in dataflow-time order, and every key is owned by one worker, so one sequential
//! task per worker keeps each key's writes in order. Whatever is queued when the task wakes is
//! written together: the changes of one key collapse to the last (a document is the key's
//! current value, not its history), and each collection gets one `update` command for its
//! upserts and one `delete` command for its deletes, of up to [`STATEMENTS`] statements each.
//! A command that fails for lack of a server is retried with backoff, forever and visibly;
//! one the server rejects stops the job, since retrying cannot help.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::{counter, histogram};
use mongodb::bson::{rawdoc, RawArrayBuf, RawBsonRef, RawDocumentBuf};
use mongodb::Database;
use rustc_hash::FxHashMap;
use tokio::sync::mpsc::Receiver;

use super::documents::{Item, Target};
use crate::telemetry::catalog;

/// Statements per command; far below the 16 MiB limit for documents of our size.
pub const STATEMENTS: usize = 2_000;

/// Items written together at most (more waits for the next round).
const COALESCE: usize = 50_000;

/// Longest wait between two attempts while the server is away.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A batch of items, numbered in the order the sink hands them over.
pub struct Batch {
    /// Its number: batches are written in order.
    pub seq: u64,
    /// What to write.
    pub items: Vec<Item>,
}

/// What a writer reports back.
#[derive(Default)]
pub struct WriterProgress {
    /// Every batch up to this number (1-based; 0: none) is written.
    pub written: AtomicU64,
    /// Commands sent (round trips), including retries.
    pub round_trips: AtomicU64,
    /// Documents written or deleted.
    pub documents: AtomicU64,
    /// A write the server rejected, which stops the job.
    pub failure: Mutex<Option<String>>,
}

impl WriterProgress {
    /// The first rejected write, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .expect("no panics holding the lock")
            .clone()
    }

    fn fail(&self, message: String) {
        let mut failure = self.failure.lock().expect("no panics holding the lock");
        failure.get_or_insert(message);
    }
}

/// The latest write per key of each collection (`None`: delete).
#[derive(Default)]
struct Coalesced {
    writes: BTreeMap<Target, FxHashMap<String, Option<RawDocumentBuf>>>,
    items: usize,
}

impl Coalesced {
    fn add(&mut self, items: Vec<Item>, progress: &WriterProgress) {
        self.items += items.len();
        for item in items {
            match item.write() {
                Ok(write) => {
                    self.writes
                        .entry(write.target)
                        .or_default()
                        .insert(write.id, write.document);
                }
                Err(error) => progress.fail(format!("cannot write to MongoDB: {error}")),
            }
        }
    }
}

/// One write command: its collection, its body (as the driver sends it) and how many
/// statements it holds.
#[derive(Debug, PartialEq)]
struct Command {
    target: Target,
    body: RawDocumentBuf,
    statements: usize,
}

impl Coalesced {
    /// The commands that write it: per collection, its upserts in `update` commands and its
    /// deletes in `delete` commands, [`STATEMENTS`] at most each, keys in order.
    fn into_commands(self) -> Vec<Command> {
        let mut commands = Vec::new();
        for (target, writes) in self.writes {
            let mut writes: Vec<(String, Option<RawDocumentBuf>)> = writes.into_iter().collect();
            writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
            for (id, document) in writes {
                let query = rawdoc! { "_id": id };
                match document {
                    Some(document) => {
                        let mut statement = RawDocumentBuf::new();
                        statement.append_ref("q", RawBsonRef::Document(&query));
                        statement.append_ref("u", RawBsonRef::Document(&document));
                        statement.append_ref("upsert", RawBsonRef::Boolean(true));
                        upserts.push(statement);
                    }
                    None => {
                        let mut statement = RawDocumentBuf::new();
                        statement.append_ref("q", RawBsonRef::Document(&query));
                        statement.append_ref("limit", RawBsonRef::Int32(1));
                        deletes.push(statement);
                    }
                }
            }
            for (verb, list, statements) in [
                ("update", "updates", upserts),
                ("delete", "deletes", deletes),
            ] {
                let mut statements = statements.into_iter().peekable();
                while statements.peek().is_some() {
                    let mut array = RawArrayBuf::new();
                    let mut count = 0;
                    for statement in statements.by_ref().take(STATEMENTS) {
                        array.push(statement);
                        count += 1;
                    }
                    let mut body = RawDocumentBuf::new();
                    body.append_ref(verb, RawBsonRef::String(target.name()));
                    body.append_ref(list, RawBsonRef::Array(&array));
                    body.append_ref("ordered", RawBsonRef::Boolean(false));
                    commands.push(Command {
                        target,
                        body,
                        statements: count,
                    });
                }
            }
        }
        commands
    }
}

/// Writes every batch `batches` delivers, in order, until the sink closes it.
pub async fn write_batches(db: Database, mut batches: Receiver<Batch>, progress: &WriterProgress) {
    while let Some(first) = batches.recv().await {
        let mut last = first.seq;
        let mut coalesced = Coalesced::default();
        coalesced.add(first.items, progress);
        while coalesced.items < COALESCE {
            match batches.try_recv() {
                Ok(batch) => {
                    last = batch.seq;
                    coalesced.add(batch.items, progress);
                }
                Err(_) => break,
            }
        }
        for command in coalesced.into_commands() {
            run(&db, command.body, command.statements, progress).await;
            counter!(
                catalog::CHANGES_OUT,
                "collection" => command.target.name(),
                "sink" => catalog::SINK_MONGODB
            )
            .increment(command.statements as u64);
        }
        progress.written.store(last, Ordering::Release);
    }
}

/// Runs one write command until the server has it. Rejected statements stop the job.
async fn run(db: &Database, command: RawDocumentBuf, statements: usize, progress: &WriterProgress) {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 1;
    let first_sent = Instant::now();
    loop {
        progress.round_trips.fetch_add(1, Ordering::Relaxed);
        // A copy of the bytes per attempt: the driver takes the command by value.
        match db.run_raw_command(command.clone()).await {
            Ok(answer) => {
                if let Ok(errors) = answer.get_array("writeErrors") {
                    progress.fail(format!(
                        "MongoDB rejected {} of {statements} writes, e.g. {:?}",
                        errors.len(),
                        errors.first()
                    ));
                }
                progress
                    .documents
                    .fetch_add(statements as u64, Ordering::Relaxed);
                histogram!(catalog::SINK_BATCH_SECONDS, "sink" => catalog::SINK_MONGODB)
                    .record(first_sent.elapsed());
                if attempt > 1 {
                    tracing::info!(attempt, "MongoDB writes go through again");
                }
                return;
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    attempt,
                    retry_in = ?backoff,
                    "cannot write to MongoDB; retrying (nothing is lost, the job waits)"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Document};
    use roomflow_dataflows::records::RoomSensorKey;
    use roomflow_dataflows::{Change, CollectionChange, KeyChange, RoomAverage};

    fn average(room: &str, count: i64, sum: i128) -> Item {
        Item::Change(Change {
            time: 0,
            change: CollectionChange::RoomAverages(KeyChange::Upsert(RoomAverage {
                room: room.into(),
                sensor: "co2".into(),
                count,
                sum,
            })),
        })
    }

    fn deleted(room: &str) -> Item {
        Item::Change(Change {
            time: 0,
            change: CollectionChange::RoomAverages(KeyChange::Delete(RoomSensorKey {
                room: room.into(),
                sensor: "co2".into(),
            })),
        })
    }

    #[test]
    fn a_keys_writes_collapse_to_its_last_and_each_kind_is_one_command() {
        let progress = WriterProgress::default();
        let mut coalesced = Coalesced::default();
        // Batch 1: a twice (2 then 3 readings), b once. Batch 2: b deleted, c written.
        coalesced.add(
            vec![
                average("a", 2, 2_000_000),
                average("b", 1, 5_000_000),
                average("a", 3, 6_000_000),
            ],
            &progress,
        );
        coalesced.add(vec![deleted("b"), average("c", 1, 1_000_000)], &progress);
        assert_eq!(coalesced.items, 5);
        let commands = coalesced.into_commands();
        assert_eq!(progress.failure(), None);
        // One update with a (its last value: 3 readings, 6.0 in all, mean 2.0) and c; one delete of b.
        let commands: Vec<(Target, Document, usize)> = commands
            .into_iter()
            .map(|command| {
                let body = command.body.to_document().unwrap();
                (command.target, body, command.statements)
            })
            .collect();
        assert_eq!(
            commands,
            vec![
                (
                    Target::RoomAverages,
                    doc! { "update": "room_averages", "updates": [
                        { "q": { "_id": r#"["a","co2"]"# }, "u": {
                            "_id": r#"["a","co2"]"#, "room": "a", "sensor": "co2",
                            "count": 3i64, "sum": 6.0, "avg": 2.0 }, "upsert": true },
                        { "q": { "_id": r#"["c","co2"]"# }, "u": {
                            "_id": r#"["c","co2"]"#, "room": "c", "sensor": "co2",
                            "count": 1i64, "sum": 1.0, "avg": 1.0 }, "upsert": true },
                    ], "ordered": false },
                    2,
                ),
                (
                    Target::RoomAverages,
                    doc! { "delete": "room_averages", "deletes": [
                        { "q": { "_id": r#"["b","co2"]"# }, "limit": 1 },
                    ], "ordered": false },
                    1,
                ),
            ]
        );
    }

    #[test]
    fn commands_hold_at_most_their_statement_limit() {
        let progress = WriterProgress::default();
        let mut coalesced = Coalesced::default();
        let items = (0..STATEMENTS + 1)
            .map(|n| average(&format!("r{n:05}"), 1, 1))
            .collect();
        coalesced.add(items, &progress);
        let sizes: Vec<usize> = coalesced
            .into_commands()
            .iter()
            .map(|command| command.statements)
            .collect();
        assert_eq!(sizes, vec![STATEMENTS, 1]);
    }
}
