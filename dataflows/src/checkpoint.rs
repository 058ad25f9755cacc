//! Checkpoints: the state a job needs to resume, taken at a dataflow time, and how a resumed job
//! starts from it.
//!
//! A checkpoint at time `T` holds the effect of every reading stamped before `T`:
//! - every room's all-time aggregate ([`RoomAverage`], exact sum and count);
//! - every window not yet sealed at `T` (its expiry is at or after `T`);
//! - per room, the temperature readings that can still gain a neighbour, plus the newest one
//!   before them: what `temperature_deltas` keeps (see `deltas.rs`).
//!
//! [`checkpoint_state`] keeps exactly that, next to the computation, and emits it whenever a
//! *mark* at time `T` arrives: the source of one worker sends a mark at its capability, so no
//! reading before `T` is missing and no reading at or after `T` is included, on any worker. The
//! state arrives as records at time `T`, so whoever gathers them knows from the frontier when
//! every worker's part is in.
//!
//! A resumed job feeds the checkpointed records to [`crate::analytics_resumed`] one time before
//! the checkpoint's, at [`restored_at`]`(T)`: aggregates enter the averages as contributions
//! (windows are sealed at their expiry as usual), and the held temperatures enter the deltas as
//! readings. Every collection then holds before `T` what it held before, restricted to what can
//! still change, and continues as if never stopped. Its outputs are taken from `T` on
//! ([`crate::Collections::since`]): a key the input does not touch again is not written again
//! (its value is in the outputs already, up to `T`), and one it touches changes from its
//! restored value. Restored at `T` itself, every key was written again at every restart: 1.2M
//! alpha messages and as many changelog records for a portfolio of 100,000 rooms, each time.

use std::collections::BTreeMap;

use differential_dataflow::hashable::Hashable;
use differential_dataflow::VecCollection;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Capability, Concatenate};
use timely::dataflow::Stream;

use crate::horizon::Time;
use crate::kept_state::{KeptState, Update};
use crate::reading::Reading;
use crate::sized::GiveSized;
use crate::Settings;

pub use crate::kept_state::{Checkpointed, StateChange, StateKey};

/// The time at which a job resumed from a checkpoint at `resume` feeds the restored records:
/// the time just before it (see the module documentation).
pub fn restored_at(resume: Time) -> Time {
    resume.saturating_sub(1)
}

/// Keeps, per room, what a resumed job needs (see the module documentation), and at each mark's
/// time `T` emits it as [`Checkpointed`] records at `T`: the state as of every reading stamped
/// before `T`.
///
/// `readings` are the readings the computation applies, `restored` what it was resumed from,
/// and `marks` the times to take checkpoints at, each sent at its own time from any worker (they
/// are broadcast).
pub fn checkpoint_state<'s>(
    readings: VecCollection<'s, Time, Reading>,
    restored: VecCollection<'s, Time, Checkpointed>,
    marks: Stream<'s, Time, Vec<Time>>,
    settings: Settings,
) -> Stream<'s, Time, Vec<Checkpointed>> {
    keep_state(
        readings,
        restored,
        marks,
        settings,
        KeptState::snapshot,
        false,
    )
}

/// Like [`checkpoint_state`], but emits at each mark only the keys that changed since the
/// previous one ([`StateChange`]s), for a changelog that keeps the latest value per key.
pub fn state_changes<'s>(
    readings: VecCollection<'s, Time, Reading>,
    restored: VecCollection<'s, Time, Checkpointed>,
    marks: Stream<'s, Time, Vec<Time>>,
    settings: Settings,
) -> Stream<'s, Time, Vec<StateChange>> {
    keep_state(
        readings,
        restored,
        marks,
        settings,
        KeptState::changes,
        true,
    )
}

/// The state keeper: `emit` writes what a mark at a time takes; `track_changes` keeps the keys
/// changed between marks.
fn keep_state<'s, O: Clone + 'static>(
    readings: VecCollection<'s, Time, Reading>,
    restored: VecCollection<'s, Time, Checkpointed>,
    marks: Stream<'s, Time, Vec<Time>>,
    settings: Settings,
    emit: fn(&mut KeptState, Time, &Settings, &mut Vec<O>),
    track_changes: bool,
) -> Stream<'s, Time, Vec<O>> {
    let scope = readings.inner.scope();
    let updates = scope.concatenate(vec![
        readings
            .inner
            .map(|(reading, time, diff)| (Update::Reading(reading), time, diff)),
        restored
            .inner
            .map(|(record, time, diff)| (Update::Restored(record), time, diff)),
    ]);
    let route = Exchange::new(|(update, _, _): &(Update, Time, isize)| update.room().hashed());
    updates.binary_frontier(
        marks.broadcast(),
        route,
        Pipeline,
        "CheckpointState",
        move |_, _| {
            let mut pending: BTreeMap<Time, Vec<Update>> = BTreeMap::new();
            let mut marked: BTreeMap<Time, Capability<Time>> = BTreeMap::new();
            let mut state = KeptState::new(track_changes);
            let mut records = Vec::new();
            move |(updates, updates_frontier), (marks, marks_frontier), output| {
                updates.for_each(|_, data| {
                    for (update, time, diff) in data.drain(..) {
                        debug_assert_eq!(diff, 1, "readings and restored records are inserted");
                        pending.entry(time).or_default().push(update);
                    }
                });
                marks.for_each(|cap, data| {
                    for time in data.drain(..) {
                        marked.entry(time).or_insert_with(|| cap.delayed(&time, 0));
                    }
                });
                loop {
                    let next_update = pending.keys().next().copied();
                    let next_mark = marked.keys().next().copied();
                    // A mark at T is taken once every update before T is in and applied.
                    if let Some(mark) = next_mark {
                        if next_update.is_none_or(|time| time >= mark)
                            && !updates_frontier.less_than(&mark)
                        {
                            let capability = marked.remove(&mark).expect("the first mark");
                            emit(&mut state, mark, &settings, &mut records);
                            output.session(&capability).give_sized(records.drain(..));
                            continue;
                        }
                    }
                    // An update at t is applied once nothing more at t can come, and no mark at
                    // or before t can come.
                    if let Some(time) = next_update {
                        if !updates_frontier.less_equal(&time)
                            && !marks_frontier.less_equal(&time)
                            && next_mark.is_none_or(|mark| mark > time)
                        {
                            for update in pending.remove(&time).expect("the first time") {
                                state.apply(update, &settings.windows);
                            }
                            continue;
                        }
                    }
                    break;
                }
            }
        },
    )
}
