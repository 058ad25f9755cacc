//! `--changes`: every change of every collection, in dataflow-time order, as envelope lines.
//! Changes are formed where each key lives and encoded there; the lines are gathered on the first
//! worker of each process, which writes them time by time (lines of one time sorted, so the file
//! is the same however the work was spread).

use roomflow_dataflows::{Change, HeldByTime, Time};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::Stream;

use super::files::{SharedFile, FLUSH_BYTES};

/// Writes `changes` to `file` from worker `writer` (the first worker of this process), in time
/// order.
pub fn write_changes(changes: Stream<'_, Time, Vec<Change>>, writer: usize, file: SharedFile) {
    let route = Exchange::new(move |_: &(Time, String)| writer as u64);
    let mut pending: HeldByTime<String> = HeldByTime::default();
    let mut buffer = Vec::new();
    changes
        .map(|change| (change.time, change.envelope_line()))
        .sink(route, "WriteChanges", move |(input, frontier)| {
            input.for_each(|_, data| {
                for (time, line) in data.drain(..) {
                    pending.entry(time).push(line);
                }
            });
            let complete_before = frontier.frontier().first().copied();
            while let Some((_, (), mut lines)) = pending.pop_complete(complete_before) {
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
