//! Dead letters and late readings: gathered on worker 0, counted, and (with `--out`) written to
//! `dead_letters.jsonl` and `late.jsonl`.

use std::sync::{Arc, Mutex};

use roomflow_dataflows::Time;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use super::files::{push_json_line, SharedFile, FLUSH_BYTES};
use crate::streams::{RejectKind, Rejected};

/// Counts of rejected inputs, with the first few reasons to show a human.
#[derive(Debug, Default, Clone)]
pub struct RejectedCounts {
    /// Dead letters seen.
    pub dead_letters: u64,
    /// Late readings seen.
    pub late: u64,
    /// Up to three example dead letters, `source: reason`.
    pub examples: Vec<String>,
}

/// Where rejected inputs go.
pub struct RejectedFiles {
    /// `dead_letters.jsonl`.
    pub dead_letters: SharedFile,
    /// `late.jsonl`.
    pub late: SharedFile,
}

/// Gathers `rejected` on worker 0, counts it into `counts`, and writes it to `files` if given.
pub fn rejected_sink(
    stream: Stream<'_, Time, Vec<Rejected>>,
    files: Option<RejectedFiles>,
    counts: Arc<Mutex<RejectedCounts>>,
) {
    let mut dead_letters = Vec::new();
    let mut late = Vec::new();
    stream.sink(
        Exchange::new(|_: &Rejected| 0),
        "Rejected",
        move |(input, frontier)| {
            let mut counts = counts.lock().expect("no panics holding the lock");
            input.for_each(|_, data| {
                for rejected in data.drain(..) {
                    match rejected.kind {
                        RejectKind::DeadLetter => {
                            counts.dead_letters += 1;
                            if counts.examples.len() < 3 {
                                counts
                                    .examples
                                    .push(format!("{}: {}", rejected.source, rejected.reason));
                            }
                            if files.is_some() {
                                push_json_line(&mut dead_letters, &rejected.json());
                            }
                        }
                        RejectKind::Late => {
                            counts.late += 1;
                            if files.is_some() {
                                push_json_line(&mut late, &rejected.json());
                            }
                        }
                    }
                }
            });
            if let Some(files) = &files {
                if dead_letters.len() >= FLUSH_BYTES || frontier.is_empty() {
                    files.dead_letters.append(&mut dead_letters);
                }
                if late.len() >= FLUSH_BYTES || frontier.is_empty() {
                    files.late.append(&mut late);
                }
            }
        },
    );
}
