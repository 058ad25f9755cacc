//! Liveness and readiness of this process, as its worker loops report them.
//!
//! - *Live*: every worker that has started stepped within [`STALL_LIMIT`], and every worker
//!   started within [`START_LIMIT`]. A worker blocked that long (deadlocked, or stuck behind a
//!   sink that accepts nothing), or one that failed before it ran, makes the process not live,
//!   and an orchestrator may restart it: it resumes from its last checkpoint. A process shutting
//!   down stays live: its last flushes and checkpoint need not step the workers, and the
//!   orchestrator's grace period bounds them.
//! - *Ready*: every worker of this process has built its dataflow, is live, and the job is not
//!   shutting down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a worker may go without stepping and still count as live.
pub const STALL_LIMIT: Duration = Duration::from_secs(60);

/// How long after start every worker must be running.
pub const START_LIMIT: Duration = Duration::from_secs(120);

/// Never stepped.
const NOT_STARTED: u64 = u64::MAX;

/// The health of this process's workers, shared with the HTTP endpoint.
pub struct Health {
    epoch: Instant,
    /// Per local worker: milliseconds after `epoch` of its last step, or [`NOT_STARTED`].
    heartbeats: Vec<AtomicU64>,
    stopping: AtomicBool,
}

/// Whether the process is live and ready, with a reason when it is not.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    /// Every started worker steps.
    pub live: bool,
    /// Live, all workers running, not stopping.
    pub ready: bool,
    /// A short explanation.
    pub detail: String,
}

impl Health {
    /// The health of `workers` local workers, none started yet.
    pub fn new(workers: usize) -> Self {
        Health {
            epoch: Instant::now(),
            heartbeats: (0..workers).map(|_| AtomicU64::new(NOT_STARTED)).collect(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Local worker `worker` is stepping its dataflows.
    pub fn beat(&self, worker: usize) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.heartbeats[worker % self.heartbeats.len()].store(now, Ordering::Relaxed);
    }

    /// The job is shutting down: no longer ready (still live until it exits).
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The status now.
    pub fn status(&self) -> Status {
        self.status_at(self.epoch.elapsed())
    }

    fn status_at(&self, now: Duration) -> Status {
        let now = now.as_millis() as u64;
        let beats: Vec<u64> = self
            .heartbeats
            .iter()
            .map(|beat| beat.load(Ordering::Relaxed))
            .collect();
        let stalled = beats.iter().position(|&beat| {
            beat != NOT_STARTED && now.saturating_sub(beat) > STALL_LIMIT.as_millis() as u64
        });
        let waiting = beats.iter().filter(|&&beat| beat == NOT_STARTED).count();
        let stopping = self.stopping.load(Ordering::Relaxed);
        let late_start = waiting > 0 && now > START_LIMIT.as_millis() as u64;
        let live = stopping || (stalled.is_none() && !late_start);
        let ready = live && waiting == 0 && !stopping;
        let detail = match (stalled, waiting, stopping) {
            (_, _, true) => "shutting down".to_string(),
            (Some(worker), _, false) => format!(
                "worker {worker} has not stepped for more than {}s",
                STALL_LIMIT.as_secs()
            ),
            (None, 0, false) => "running".to_string(),
            (None, waiting, false) if late_start => format!(
                "{waiting} worker(s) not running {}s after start",
                START_LIMIT.as_secs()
            ),
            (None, waiting, false) => format!("starting: {waiting} worker(s) not running yet"),
        };
        Status {
            live,
            ready,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_worker_steps_and_until_stopping() {
        let health = Health::new(2);
        let at = |seconds| health.status_at(Duration::from_secs(seconds));
        assert_eq!(
            at(0),
            Status {
                live: true,
                ready: false,
                detail: "starting: 2 worker(s) not running yet".into()
            }
        );
        health.heartbeats[0].store(1_000, Ordering::Relaxed);
        assert!(!at(1).ready);
        health.heartbeats[1].store(1_000, Ordering::Relaxed);
        assert_eq!((at(2).live, at(2).ready), (true, true));
        // Worker 1 stops stepping: dead once the limit has passed.
        health.heartbeats[0].store(70_000, Ordering::Relaxed);
        assert_eq!((at(61).live, at(61).ready), (true, true));
        let stalled = at(62);
        assert_eq!((stalled.live, stalled.ready), (false, false));
        assert_eq!(stalled.detail, "worker 1 has not stepped for more than 60s");
        // Shutting down: live however long the last flushes take, never ready.
        health.stopping();
        assert_eq!(
            at(500),
            Status {
                live: true,
                ready: false,
                detail: "shutting down".into()
            }
        );
    }

    #[test]
    fn a_worker_that_never_runs_is_not_live_after_the_start_limit() {
        let health = Health::new(2);
        health.heartbeats[0].store(1_000, Ordering::Relaxed);
        health.heartbeats[0].store(119_000, Ordering::Relaxed);
        let at = |seconds| health.status_at(Duration::from_secs(seconds));
        assert_eq!((at(119).live, at(119).ready), (true, false));
        assert_eq!(
            at(121),
            Status {
                live: false,
                ready: false,
                detail: "1 worker(s) not running 120s after start".into()
            }
        );
    }
}
