//! Warnings that repeat for as long as a condition lasts are logged once, then at most once per
//! interval with how many were held back. A broker that is down makes librdkafka report it about
//! ten times a second on every client; the log should say that the job is waiting, not bury
//! everything else under it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a repeating warning is logged again.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Distinct warnings remembered at most: past this, the memory starts over (a flood of distinct
/// warnings is logged rather than held).
const REMEMBERED: usize = 256;

/// The warnings of one call site, by their text.
#[derive(Default)]
pub struct RepeatedWarnings {
    /// When each warning was last logged, and how many were held back since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RepeatedWarnings {
    /// Nothing seen yet.
    pub fn new() -> Self {
        RepeatedWarnings::default()
    }

    /// Whether the warning `text`, raised at `now`, is to be logged: `Some(held_back)` with the
    /// number of the same warning not logged since it last was, or `None` to hold it back.
    pub fn admit(&self, text: &str, now: Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match seen.get_mut(text) {
            Some((last, held_back)) if now.duration_since(*last) < REPEAT_INTERVAL => {
                *held_back += 1;
                None
            }
            Some((last, held_back)) => {
                *last = now;
                Some(std::mem::take(held_back))
            }
            None => {
                if seen.len() >= REMEMBERED {
                    seen.clear();
                }
                seen.insert(text.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_warning_is_logged_once_per_interval_with_the_count_held_back() {
        let warnings = RepeatedWarnings::new();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(warnings.admit("all brokers down", at(0)), Some(0));
        // Every 100 ms, as librdkafka repeats it: held back until 5 s have passed.
        for ms in (100..5_000).step_by(100) {
            assert_eq!(warnings.admit("all brokers down", at(ms)), None, "{ms}");
        }
        assert_eq!(warnings.admit("all brokers down", at(5_000)), Some(49));
        assert_eq!(warnings.admit("all brokers down", at(5_100)), None);
        // Another warning is its own.
        assert_eq!(warnings.admit("unknown topic", at(5_100)), Some(0));
    }
}
