//! `--out DIR`: the final state of a collection, one JSON object per key. Keys that can no
//! longer change (sealed windows, settled deltas) are written as they settle and forgotten, so
//! memory follows the keys inside the lateness horizon, not the size of the output.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use differential_dataflow::VecCollection;
use roomflow_dataflows::json::WriteJson;
use roomflow_dataflows::{EventTime, HeldByTime, KeyedState, Record, Time, Windows};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::files::{SharedFile, FLUSH_BYTES};

/// Writes the final state of `collection` to `file`.
///
/// No exchange: every collection here is produced by an operator that owns each key on one
/// worker (the aggregate arrangement, the deltas operator keyed by room), so the worker that
/// receives a key's first update receives all of them. The tests comparing outputs across worker
/// counts would see a key split over workers as a duplicate line.
pub fn final_state<'s, R: Record>(
    collection: VecCollection<'s, Time, R>,
    file: SharedFile,
    windows: Windows,
) {
    let horizon = windows.horizon;
    let mut pending: HeldByTime<(R, isize)> = HeldByTime::default();
    let mut state: KeyedState<R> = KeyedState::default();
    // Keys that settle, least settling time first. A key deleted and inserted again may be queued
    // twice; the second turn finds it gone and writes nothing.
    let mut settling: BinaryHeap<Reverse<(EventTime, R::Key)>> = BinaryHeap::new();
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
                state.apply(updates.drain(..), |key, record| {
                    if let Some(settles_at) = record.settles_at(&windows) {
                        settling.push(Reverse((settles_at, key.clone())));
                    }
                });
                pending.recycle(updates);
            }
            let settled = horizon.settled_before(frontier);
            while settling
                .peek()
                .is_some_and(|Reverse((at, _))| *at <= settled)
            {
                let Reverse((_, key)) = settling.pop().expect("checked");
                if let Some(record) = state.remove(&key) {
                    record.json().write_json(&mut buffer);
                    buffer.push(b'\n');
                }
            }
            if frontier.is_none() {
                for record in state.drain() {
                    record.json().write_json(&mut buffer);
                    buffer.push(b'\n');
                }
                settling.clear();
            }
            if buffer.len() >= FLUSH_BYTES || (frontier.is_none() && !buffer.is_empty()) {
                file.append(&mut buffer);
            }
        });
}
