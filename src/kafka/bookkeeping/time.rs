//! Where a worker's Kafka source puts time: how far its capability can go, when it sends a
//! checkpoint mark and where, and when it waits for the dataflow to catch up. Methods of
//! [`SourceBookkeeping`], kept apart from reading and assigning partitions (`mod.rs`).

use std::time::{Duration, Instant};

use roomflow_dataflows::Time;
use timely::dataflow::ProbeHandle;

use super::SourceBookkeeping;
use crate::kafka::partition::Phase;
use crate::kafka::source_options::{CheckpointTrigger, LastMark, MarkTime};

/// While a partition catches up, a transaction every this many commit intervals: each commit
/// costs the broker a round of markers on every partition it wrote, however little it holds,
/// and a backlog's changes wait anyway (fewer, larger transactions: see docs/performance.md).
const CATCH_UP_MARKS_EVERY: u32 = 10;

/// What [`SourceBookkeeping::last_mark`] decides.
pub(in crate::kafka) enum LastMarkNow {
    /// Stop now, with a last mark at this time if any.
    Now(Option<Time>),
    /// Keep the capability: other workers still read.
    Wait,
}

impl SourceBookkeeping {
    /// The time of a checkpoint mark to send now, at `now` (the marks' capability; the reading
    /// capability is at `capability`), if this worker asks for checkpoints: once the interval has
    /// passed and the previous one is written, or, when the source is `stopping`, a last one
    /// where it stops (so a restart resumes from there). Everything this worker sends from then
    /// on is at or after it.
    ///
    /// While this worker's partitions are quiet, not at the interval but whenever some worker
    /// has sent effects at or after the last mark: once everything read is processed up to the
    /// capability that the quiet closed, a mark there covers all of it, and the capability moves
    /// one tick past it so that it completes (see [`SourceBookkeeping::capability_target`]).
    /// Marks at the interval would each wait at the capability until messages come again, and a
    /// job that paused would keep its last readings out of its checkpoints (and, exactly-once,
    /// out of committed transactions).
    pub fn checkpoint_mark(&mut self, now: Time, capability: Time, stopping: bool) -> Option<Time> {
        let trigger = self.options.checkpoints.as_ref()?;
        if self.last_mark.1 == Some(now) {
            return None;
        }
        if stopping {
            return Some(now);
        }
        if trigger.in_flight.get() >= trigger.max_in_flight {
            return None;
        }
        match self.closed_capability() {
            Some(closed) => {
                let newest = self.options.coordination.newest_effect();
                let unmarked = newest.is_some_and(|newest| self.last_mark.1 <= Some(newest));
                // What the mark covers once complete: everything before `now`, or, a mark at
                // progress - 1, before `now + 1` (see `MarkTime::AtProgress`).
                let covers = self.completed_by(now);
                if !unmarked || covers < capability || capability < closed {
                    return None;
                }
                self.quiet_mark = Some(covers);
            }
            None if self.last_mark.0.elapsed() < self.mark_interval(trigger) => return None,
            None => {}
        }
        tracing::debug!(time = now, "checkpoint mark");
        trigger.in_flight.set(trigger.in_flight.get() + 1);
        self.last_mark = (Instant::now(), Some(now));
        Some(now)
    }

    /// The time between marks now: the trigger's interval, or, for transactions while one of
    /// this worker's partitions catches up, [`CATCH_UP_MARKS_EVERY`] of them.
    fn mark_interval(&self, trigger: &CheckpointTrigger) -> Duration {
        let catching_up = self.readers.iter().any(|reader| reader.catching_up);
        if trigger.at == MarkTime::AtProgress && catching_up {
            trigger.interval * CATCH_UP_MARKS_EVERY
        } else {
            trigger.interval
        }
    }

    /// Where the source's last mark goes now that it stops: at once (perhaps no mark at all), or
    /// not yet, while other workers still read (see [`LastMark::AfterEverything`]).
    pub fn last_mark(&mut self, capability: Time) -> LastMarkNow {
        let Some(trigger) = &self.options.checkpoints else {
            return LastMarkNow::Now(None);
        };
        match trigger.last {
            LastMark::WhereItStops => {
                LastMarkNow::Now(self.checkpoint_mark(capability, capability, true))
            }
            LastMark::AfterEverything => {
                match self.options.coordination.others_stopped(self.index) {
                    None => LastMarkNow::Wait,
                    Some(sent) => {
                        let after = sent.max(self.sent_up_to) + 1;
                        LastMarkNow::Now(Some(capability.max(after)))
                    }
                }
            }
        }
    }

    /// Where the marks capability can go, the reading capability being at `capability`: there,
    /// or just before the dataflow's progress (see [`MarkTime`]).
    pub fn marks_target(&self, capability: Time, progress: &ProbeHandle<Time>) -> Time {
        match self.options.checkpoints.as_ref().map(|trigger| trigger.at) {
            Some(MarkTime::AtProgress) => progress
                .with_frontier(|frontier| frontier.first().copied())
                .map_or(capability, |done| done.min(capability))
                .saturating_sub(1),
            _ => capability,
        }
    }

    /// Where the marks capability goes once a mark at `mark` is sent: past it, when marks go
    /// just before the progress, so that the mark's time completes at once (the progress is
    /// past it already).
    pub fn completed_by(&self, mark: Time) -> Time {
        match self.options.checkpoints.as_ref().map(|trigger| trigger.at) {
            Some(MarkTime::AtProgress) => mark + 1,
            _ => mark,
        }
    }

    /// Whether the rest of the dataflow, or the sinks' acknowledgements, are too far behind the
    /// `capability` to read more (flow control: a slow MongoDB slows reading down).
    pub fn is_behind(&mut self, capability: Time, progress: &ProbeHandle<Time>) -> bool {
        let behind = progress
            .with_frontier(|f| f.first().copied())
            .into_iter()
            .chain(self.options.coordination.acked().flatten())
            .any(|done| capability.saturating_sub(done) > self.options.max_ahead);
        if behind {
            // Waiting for output is not being idle: new messages may wait unread.
            self.idle_since = None;
        }
        behind
    }

    /// Where the capability can go: the least stamp an active partition can still produce; with
    /// none active, up to the newest capability anywhere (so an idle worker holds no one back),
    /// and past the newest tick once every partition has been quiet for a tick.
    ///
    /// A partition at its end could still deliver a reading of the newest tick, so that tick is
    /// held open while messages keep coming. But held for good by a stream that paused, it would
    /// keep the last readings' changes from alpha and MongoDB, and the checkpoint that covers
    /// them from being written, until the next message, however long that takes. A tick of
    /// quiet closes it: a partition that delivers again continues from the capability (its
    /// watermark catches up to it, as a partition that was idle while others moved on does), so
    /// its next readings are stamped at the next tick and judged late against it, a difference
    /// of at most one tick.
    pub fn capability_target(&self) -> Option<Time> {
        let (horizon, catch_up_tick_ms) = (&self.options.horizon, self.options.catch_up_tick_ms);
        let active = self
            .readers
            .iter()
            .filter(|r| r.phase != Phase::CaughtUp)
            .map(|r| r.lower_bound(horizon, catch_up_tick_ms))
            .min();
        match active {
            Some(bound) => Some(bound),
            // Past this worker's own newest data (and its quiet mark) only: the capabilities
            // of the others, each bounded the same way, cannot carry it further.
            None if self.listed => self
                .readers
                .iter()
                .filter_map(|r| r.watermark.newest())
                .map(|newest| horizon.stamp(newest.max(0)))
                .chain(self.closed_capability())
                .chain(self.quiet_mark.map(|mark| mark + horizon.tick_ms as Time))
                .chain(self.options.coordination.newest_capability())
                .max(),
            None => None,
        }
    }

    /// Once every partition has been quiet for a tick: the tick after this worker's newest
    /// reading's, where its capability can go (see [`SourceBookkeeping::capability_target`]).
    fn closed_capability(&self) -> Option<Time> {
        let horizon = &self.options.horizon;
        let tick = Duration::from_millis(horizon.tick_ms.max(0) as u64);
        let all_caught_up = self.listed && self.readers.iter().all(|r| r.phase == Phase::CaughtUp);
        let quiet = all_caught_up && self.idle_since.is_some_and(|since| since.elapsed() >= tick);
        let newest = self
            .readers
            .iter()
            .filter_map(|r| r.watermark.newest())
            .max()
            .map_or(0, |newest| horizon.stamp(newest.max(0)));
        quiet.then_some(newest + horizon.tick_ms as Time)
    }
}
