//! `--speed X`: replay at X times the recorded pace, by comparing event time with wall time.

use std::time::{Duration, Instant};

use roomflow_dataflows::EventTime;

/// Maps event time onto wall time: event time `origin` happens at `start`, and `speed` event
/// milliseconds pass per wall millisecond.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// The event time that plays at `start`; every worker uses the same one.
    pub origin: EventTime,
    /// Wall-clock start of the replay.
    pub start: Instant,
    /// Event time per wall time.
    pub speed: f64,
}

impl Pacing {
    /// A pacing at `speed` whose event time `origin` (the inputs' first) plays now.
    pub fn starting_now(origin: EventTime, speed: f64) -> Pacing {
        Pacing {
            origin,
            start: Instant::now(),
            speed,
        }
    }

    /// How long to wait before a reading at `ts` is due, or `None` if it is due now. Any `ts`
    /// is allowed: the merge asks with `EventTime::MIN` when a dead letter is next, and a
    /// reading may claim a time centuries away.
    pub fn wait_for(&self, ts: EventTime, now: Instant) -> Option<Duration> {
        // Saturating: `EventTime::MIN - origin` once wrapped to a wait of millions of years,
        // so pacing stopped for good at the first unreadable line.
        let offset_ms = ts.saturating_sub(self.origin).max(0) as f64 / self.speed;
        let offset = Duration::try_from_secs_f64(offset_ms / 1000.0).unwrap_or(Duration::MAX);
        let Some(due) = self.start.checked_add(offset) else {
            // Further away than a clock can say: not due in this run's lifetime.
            return Some(Duration::MAX);
        };
        due.checked_duration_since(now)
            .filter(|wait| !wait.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_times_faster_means_a_minute_in_six_seconds() {
        let start = Instant::now();
        let pacing = Pacing {
            origin: 1_000_000,
            start,
            speed: 10.0,
        };
        assert_eq!(
            pacing.wait_for(1_060_000, start),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            pacing.wait_for(1_060_000, start + Duration::from_secs(6)),
            None
        );
        assert_eq!(
            pacing.wait_for(999_000, start),
            None,
            "earlier than the origin is due at once"
        );
    }

    #[test]
    fn a_dead_letter_next_is_due_at_once() {
        // The merge reports `EventTime::MIN` when an unreadable line is next; the origin is a
        // real epoch time, so the subtraction overflows unless it saturates.
        let start = Instant::now();
        let pacing = Pacing {
            origin: 1_700_000_000_000,
            start,
            speed: 2.0,
        };
        assert_eq!(pacing.wait_for(EventTime::MIN, start), None);
    }
}
