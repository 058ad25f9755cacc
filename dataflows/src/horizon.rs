//! Lateness, dataflow timestamps, and sealing: what is decided where, and when state is released.
//!
//! # Timestamps
//! Every input stream (a recorded file, stdin, later a Kafka partition) keeps a [`StreamWatermark`]:
//! the newest event time it has delivered. A reading enters the dataflow stamped with that
//! watermark (including itself), rounded down to a multiple of the *tick*. Stamps therefore only
//! grow along a stream, and the source can hold its capability at the least stamp any of its
//! streams can still produce ([`StreamWatermark::lower_bound`]).
//!
//! # Lateness
//! A reading is late when its event time is more than `lateness` behind the newest event time among
//! the readings before it in the merged input. In a k-way merge by event time (the replay order),
//! that newest time is, whenever it exceeds the reading's own time, the newest time of the
//! reading's *own* stream: every reading of another stream popped before it was the least head at
//! its turn, hence no newer than the own stream's head at that turn, which was delivered before.
//! So lateness is decided per stream, wherever that stream is read, and the decision is the same
//! for any number of workers and any batching.
//!
//! # Sealing
//! A reading that is not late has `ts >= stamp - lateness` (its stamp is the watermark after it).
//! Once the dataflow frontier has passed time `f`, every reading still to come has a stamp of at
//! least `f`, hence `ts >= f - lateness`: [`Horizon::settled_before`]. Everything strictly older
//! than that is settled: windows ending there are sealed, deltas of readings older than that
//! never change again, and operators release the state that held them.

use crate::reading::EventTime;

/// The dataflow's timestamp: a tick-aligned event time in epoch milliseconds.
pub type Time = u64;

/// How late data may be and how coarse dataflow time is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Horizon {
    /// How far (ms) behind its stream's newest event time a reading may be and still be applied.
    pub lateness_ms: i64,
    /// Granularity (ms) of dataflow time: readings stamped within one tick are consolidated
    /// before they reach any stateful operator, and outputs change at most once per tick per key.
    pub tick_ms: i64,
}

impl Horizon {
    /// A horizon with the given lateness and tick, both in milliseconds.
    ///
    /// Panics if the tick is not positive or the lateness is negative: both are configuration
    /// errors the command line rejects before building a dataflow.
    pub fn new(lateness_ms: i64, tick_ms: i64) -> Horizon {
        assert!(tick_ms > 0, "tick must be positive");
        assert!(lateness_ms >= 0, "lateness must not be negative");
        Horizon {
            lateness_ms,
            tick_ms,
        }
    }

    /// The dataflow time for a watermark: the watermark rounded down to the tick.
    pub fn stamp(&self, watermark: EventTime) -> Time {
        debug_assert!(watermark >= 0);
        (watermark - watermark.rem_euclid(self.tick_ms)) as Time
    }

    /// The least dataflow time at or after `event_time`: where something due at that event time
    /// (a window's expiry) is scheduled.
    pub fn stamp_at_or_after(&self, event_time: EventTime) -> Time {
        let rem = event_time.rem_euclid(self.tick_ms);
        let up = if rem == 0 {
            event_time
        } else {
            event_time.saturating_add(self.tick_ms - rem)
        };
        up.max(0) as Time
    }

    /// Every reading still to come once the frontier is at `frontier` has `ts >=` the returned
    /// event time; `None` for an empty frontier means nothing comes any more.
    pub fn settled_before(&self, frontier: Option<Time>) -> EventTime {
        match frontier {
            Some(time) => (time as EventTime).saturating_sub(self.lateness_ms),
            None => EventTime::MAX,
        }
    }
}

/// What happens to a reading offered to a stream's watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Apply the reading; it enters the dataflow at `stamp`.
    OnTime {
        /// The dataflow time to send the reading at.
        stamp: Time,
    },
    /// The reading is too old: the stream had already delivered `newest`.
    Late {
        /// The newest event time delivered by the stream before this reading.
        newest: EventTime,
    },
}

/// The newest event time one input stream has delivered, and the lateness decision it implies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamWatermark {
    newest: Option<EventTime>,
}

impl StreamWatermark {
    /// A watermark for a stream that has delivered nothing yet.
    pub fn new() -> StreamWatermark {
        StreamWatermark::default()
    }

    /// A watermark that continues where a stream was: `newest` is what it had delivered.
    pub fn resumed(newest: Option<EventTime>) -> StreamWatermark {
        StreamWatermark { newest }
    }

    /// The newest event time delivered so far.
    pub fn newest(&self) -> Option<EventTime> {
        self.newest
    }

    /// Decides whether a reading at `ts` (>= 0) is applied or late, and advances the watermark.
    pub fn admit(&mut self, ts: EventTime, horizon: &Horizon) -> Admission {
        match self.newest {
            Some(newest) if ts < newest.saturating_sub(horizon.lateness_ms) => {
                Admission::Late { newest }
            }
            _ => {
                let newest = self.newest.map_or(ts, |newest| newest.max(ts));
                self.newest = Some(newest);
                Admission::OnTime {
                    stamp: horizon.stamp(newest),
                }
            }
        }
    }

    /// Moves the watermark up to `time` (if it is behind), as if the stream had delivered a reading
    /// then. A live source calls this when a stream that was idle delivers again after the
    /// others moved on: the stream continues from where the computation is, so its readings are
    /// judged late against that and stamped no earlier than the source's capability.
    pub fn catch_up(&mut self, time: EventTime) {
        self.newest = Some(self.newest.map_or(time, |newest| newest.max(time)));
    }

    /// The least stamp this stream can still produce, knowing (when known) the event time of the
    /// next reading it will offer.
    pub fn lower_bound(&self, next: Option<EventTime>, horizon: &Horizon) -> Time {
        let bound = match (self.newest, next) {
            (Some(newest), Some(next)) => newest.max(next),
            (Some(newest), None) => newest,
            (None, Some(next)) => next,
            (None, None) => 0,
        };
        horizon.stamp(bound.max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn stamps_round_down_and_expiries_round_up() {
        let horizon = Horizon::new(5 * MIN, 1_000);
        assert_eq!(horizon.stamp(12_345), 12_000);
        assert_eq!(horizon.stamp(12_000), 12_000);
        assert_eq!(horizon.stamp_at_or_after(12_001), 13_000);
        assert_eq!(horizon.stamp_at_or_after(13_000), 13_000);
    }

    #[test]
    fn lateness_is_measured_from_the_newest_reading_of_the_stream() {
        let horizon = Horizon::new(5 * MIN, 1_000);
        let mut watermark = StreamWatermark::new();
        assert_eq!(
            watermark.admit(10 * MIN, &horizon),
            Admission::OnTime { stamp: 600_000 }
        );
        // Out of order but within five minutes: applied, stamped with the newest time.
        assert_eq!(
            watermark.admit(6 * MIN, &horizon),
            Admission::OnTime { stamp: 600_000 }
        );
        // Exactly five minutes behind is still on time; a millisecond more is late.
        assert_eq!(
            watermark.admit(5 * MIN, &horizon),
            Admission::OnTime { stamp: 600_000 }
        );
        assert_eq!(
            watermark.admit(5 * MIN - 1, &horizon),
            Admission::Late { newest: 10 * MIN }
        );
        // A late reading does not move the watermark.
        assert_eq!(watermark.newest(), Some(10 * MIN));
        assert_eq!(
            watermark.admit(11 * MIN + 500, &horizon),
            Admission::OnTime { stamp: 660_000 }
        );
    }

    #[test]
    fn lower_bound_covers_every_future_stamp() {
        let horizon = Horizon::new(5 * MIN, 1_000);
        let mut watermark = StreamWatermark::new();
        assert_eq!(watermark.lower_bound(None, &horizon), 0);
        assert_eq!(watermark.lower_bound(Some(7_500), &horizon), 7_000);
        watermark.admit(9_999, &horizon);
        assert_eq!(watermark.lower_bound(Some(1), &horizon), 9_000);
        assert_eq!(watermark.lower_bound(None, &horizon), 9_000);
    }

    #[test]
    fn an_idle_stream_catches_up_with_the_computation() {
        let horizon = Horizon::new(5 * MIN, 1_000);
        let mut watermark = StreamWatermark::new();
        watermark.admit(MIN, &horizon);
        // The others moved on to 20 min while this stream was idle.
        watermark.catch_up(20 * MIN);
        assert_eq!(
            watermark.admit(14 * MIN, &horizon),
            Admission::Late { newest: 20 * MIN }
        );
        assert_eq!(
            watermark.admit(16 * MIN, &horizon),
            Admission::OnTime { stamp: 1_200_000 }
        );
        // Catching up never moves a watermark back.
        watermark.catch_up(2 * MIN);
        assert_eq!(watermark.newest(), Some(20 * MIN));
    }

    #[test]
    fn settled_time_trails_the_frontier_by_the_lateness() {
        let horizon = Horizon::new(5 * MIN, 1_000);
        assert_eq!(horizon.settled_before(Some(10 * MIN as Time)), 5 * MIN);
        assert_eq!(horizon.settled_before(None), EventTime::MAX);
    }
}
