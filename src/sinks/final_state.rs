//! `--out DIR`: the final state of a collection, one JSON object per key. Keys that can no
//! longer change (sealed windows, settled deltas) are written as they settle and forgotten, so
//! memory follows the keys inside the lateness horizon, not the size of the output.

use differential_dataflow::VecCollection;
use roomflow_dataflows::json::WriteJson;
use roomflow_dataflows::{HeldByTime, Record, SettlingState, Time, Windows};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::files::{SharedFile, FLUSH_BYTES};

/// Writes the final state of `collection` to `file`.
///
/// No exchange: every collection here is produced by an operator that owns each key on one
/// worker (the aggregates' running totals, the deltas operator keyed by room), so the worker that
/// receives a key's first update receives all of them. The tests comparing outputs across worker
/// counts would see a key split over workers as a duplicate line.
pub fn final_state<'s, R: Record>(
    collection: VecCollection<'s, Time, R>,
    file: SharedFile,
    windows: Windows,
) {
    let horizon = windows.horizon;
    let mut pending: HeldByTime<(R, isize)> = HeldByTime::default();
    let mut state: SettlingState<R> = SettlingState::new(windows);
    let mut buffer = Vec::new();
    collection
        .inner
        .sink(Pipeline, "FinalState", move |(input, frontier)| {
            input.for_each(|_, data| {
                for (record, time, diff) in data.drain(..) {
                    pending.entry(time).push((record, diff));
                }
            });
            let frontier = frontier.frontier().first().copied();
            while let Some((_, (), mut updates)) = pending.pop_complete(frontier) {
                state.apply(updates.drain(..));
                pending.recycle(updates);
            }
            // Appended as the buffer fills: at the end of a replay, the whole state is written at
            // once (67 MB of JSON at 100,000 rooms, held in the buffer when it was appended last).
            let mut write = |record: R| {
                record.json().write_json(&mut buffer);
                buffer.push(b'\n');
                if buffer.len() >= FLUSH_BYTES {
                    file.append(&mut buffer);
                }
            };
            let settled = horizon.settled_before(frontier);
            while let Some(record) = state.pop_settled(settled) {
                write(record);
            }
            if frontier.is_none() {
                for record in state.drain() {
                    write(record);
                }
                if !buffer.is_empty() {
                    file.append(&mut buffer);
                }
            }
        });
}
