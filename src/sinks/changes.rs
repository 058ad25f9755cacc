//! Changes as envelopes, and `--changes`: every change of every collection, in dataflow-time order, in the envelope the
//! Kafka and MongoDB sinks use. Changes are formed where each key lives, then gathered on the
//! first worker of each process, which writes them time by time (lines of one time sorted, so the
//! file is the same however the work was spread).

use std::collections::BTreeMap;

use differential_dataflow::hashable::Hashable;
use differential_dataflow::VecCollection;
use roomflow_dataflows::{key_changes, Envelope, Record, Time};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, Concatenate};
use timely::dataflow::Stream;

use super::files::{SharedFile, FLUSH_BYTES};

/// One change: the time it took effect at, its message key (`["<collection>", <key>]`, which the
/// alpha topic partitions by) and its envelope as a JSON line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ChangeLine {
    /// Dataflow time of the change.
    pub time: Time,
    /// `["<collection>", <key as JSON>]`.
    pub key: String,
    /// The envelope.
    pub line: String,
}

/// Updates waiting for their time to complete, with the capability to send their changes at.
type Pending<R> = (Capability<Time>, Vec<(R, isize)>);

/// The changes of `collection` as envelope lines, one per key and time.
pub fn envelopes<'s, R: Record>(
    collection: VecCollection<'s, Time, R>,
) -> Stream<'s, Time, Vec<ChangeLine>> {
    let route = Exchange::new(|(record, _, _): &(R, Time, isize)| record.key().hashed());
    collection.inner.unary_frontier(route, "Envelopes", |_, _| {
        let mut pending: BTreeMap<Time, Pending<R>> = BTreeMap::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|cap, containers| {
                for container in containers {
                    for (record, time, diff) in container.drain(..) {
                        pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, 0), Vec::new()))
                            .1
                            .push((record, diff));
                    }
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let (capability, mut updates) = entry.remove();
                let time = *capability.time();
                let lines = key_changes(&mut updates).into_iter().map(|change| {
                    let envelope = Envelope::new(&change, time);
                    ChangeLine {
                        time,
                        key: serde_json::to_string(&(R::COLLECTION, &envelope.key))
                            .expect("keys serialize"),
                        line: serde_json::to_string(&envelope).expect("envelopes serialize"),
                    }
                });
                output.session(&capability).give_iterator(lines);
            }
        }
    })
}

/// Writes `streams` of change lines to `file` from worker `writer` (the first worker of this
/// process), in time order.
pub fn write_changes<'s>(
    streams: Vec<Stream<'s, Time, Vec<ChangeLine>>>,
    writer: usize,
    file: SharedFile,
) {
    let scope = streams[0].scope();
    let route = Exchange::new(move |_: &ChangeLine| writer as u64);
    let mut pending: BTreeMap<Time, Vec<String>> = BTreeMap::new();
    let mut buffer = Vec::new();
    scope
        .concatenate(streams)
        .sink(route, "WriteChanges", move |(input, frontier)| {
            input.for_each(|_, data| {
                for change in data.drain(..) {
                    pending.entry(change.time).or_default().push(change.line);
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let mut lines = entry.remove();
                lines.sort_unstable();
                for line in lines {
                    buffer.extend_from_slice(line.as_bytes());
                    buffer.push(b'\n');
                }
                if buffer.len() >= FLUSH_BYTES {
                    file.append(&mut buffer);
                }
            }
            if frontier.is_empty() {
                file.append(&mut buffer);
            }
        });
}
