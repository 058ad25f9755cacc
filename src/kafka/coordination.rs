//! Workers telling each other how far they are.
//!
//! Timely's progress tracking tells every worker the *least* capability in the computation, but
//! two decisions of the Kafka job need more:
//! - A worker whose partitions are all caught up (or that owns none) must not hold back the
//!   frontier. It moves its capability up to the *newest* capability any worker reports: its
//!   partitions, when they deliver again, continue from there (see `source.rs`).
//! - Consumed offsets may be committed only once every worker's sink has had the changes they
//!   caused acknowledged by the broker: the *least* acknowledged time over all workers.
//!
//! Both travel through a tiny side dataflow (separate from the main one, so no cycle): each
//! worker broadcasts its [`Report`] when it changes, and every worker keeps the latest report of
//! every peer. Channels between two workers are FIFO, so the latest received is the latest sent.

use std::cell::RefCell;
use std::rc::Rc;

use roomflow_dataflows::Time;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Input;
use timely::dataflow::InputHandle;
use timely::worker::Worker;

/// What a worker tells the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Its source's capability; `None` once the source has stopped.
    pub capability: Option<Time>,
    /// Every change its sinks made at times before this is acknowledged by the broker; `None`
    /// once its sinks are complete and everything is acknowledged.
    pub acked: Option<Time>,
    /// Every MongoDB write at times before this is acknowledged; `None` once its MongoDB sink is
    /// complete, or without one. (Exactly-once commits wait for it alone.)
    pub written: Option<Time>,
    /// The greatest time its source sent anything at.
    pub sent_up_to: Time,
    /// The greatest time its source sent a message's effects at (the capability aside).
    pub newest_effect: Option<Time>,
}

/// The side dataflow's input: (worker index, its report), at successive rounds.
type ReportInput = InputHandle<u64, CapacityContainerBuilder<Vec<(usize, Report)>>>;

/// One worker's end of the side dataflow.
pub struct Coordination {
    index: usize,
    input: Option<ReportInput>,
    round: u64,
    last_sent: Option<Report>,
    reports: Rc<RefCell<Vec<Option<Report>>>>,
}

impl Coordination {
    /// Builds the side dataflow on `worker`.
    pub fn new(worker: &mut Worker) -> Coordination {
        let peers = worker.peers();
        let reports = Rc::new(RefCell::new(vec![None; peers]));
        let received = reports.clone();
        let input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, stream) = scope.new_input::<Vec<(usize, Report)>>();
            stream
                .broadcast()
                .sink(Pipeline, "Coordination", move |(input, _)| {
                    let mut reports = received.borrow_mut();
                    input.for_each(|_, data| {
                        for (from, report) in data.drain(..) {
                            reports[from] = Some(report);
                        }
                    });
                });
            input
        });
        Coordination {
            index: worker.index(),
            input: Some(input),
            round: 0,
            last_sent: None,
            reports,
        }
    }

    /// Sends `report` to every worker, unless it is what was sent last.
    pub fn publish(&mut self, report: Report) {
        if self.last_sent == Some(report) {
            return;
        }
        if let Some(input) = self.input.as_mut() {
            input.send((self.index, report));
            self.round += 1;
            input.advance_to(self.round);
            self.last_sent = Some(report);
        }
    }

    /// A shared view of the reports, for the source operator.
    pub fn view(&self) -> CoordinationView {
        CoordinationView {
            reports: self.reports.clone(),
        }
    }

    /// Stops sending; the side dataflow completes once every worker has stopped.
    pub fn close(&mut self) {
        self.input = None;
    }
}

/// Read access to the latest report of every worker.
#[derive(Clone)]
pub struct CoordinationView {
    reports: Rc<RefCell<Vec<Option<Report>>>>,
}

impl CoordinationView {
    /// The greatest time any worker's source sent a message's effects at.
    pub fn newest_effect(&self) -> Option<Time> {
        self.reports
            .borrow()
            .iter()
            .flatten()
            .filter_map(|report| report.newest_effect)
            .max()
    }

    /// The newest capability any worker reports.
    pub fn newest_capability(&self) -> Option<Time> {
        self.reports
            .borrow()
            .iter()
            .filter_map(|report| report.and_then(|r| r.capability))
            .max()
    }

    /// The time before which every worker's changes are acknowledged: `Some(None)` when all are,
    /// `None` while some worker has not reported yet.
    pub fn acked(&self) -> Option<Option<Time>> {
        let reports = self.reports.borrow();
        let mut least: Option<Time> = None;
        for report in reports.iter() {
            let report = (*report)?;
            if let Some(acked) = report.acked {
                least = Some(least.map_or(acked, |least: Time| least.min(acked)));
            }
        }
        Some(least)
    }

    /// The time before which every worker's MongoDB writes are acknowledged, as [`Self::acked`].
    pub fn written(&self) -> Option<Option<Time>> {
        let reports = self.reports.borrow();
        let mut least: Option<Time> = None;
        for report in reports.iter() {
            let report = (*report)?;
            if let Some(written) = report.written {
                least = Some(least.map_or(written, |least: Time| least.min(written)));
            }
        }
        Some(least)
    }

    /// Once every worker but `index` has stopped its source: the greatest time any source sent
    /// anything at.
    pub fn others_stopped(&self, index: usize) -> Option<Time> {
        let reports = self.reports.borrow();
        let mut newest = 0;
        for (worker, report) in reports.iter().enumerate() {
            let report = (*report)?;
            if worker != index && report.capability.is_some() {
                return None;
            }
            newest = newest.max(report.sent_up_to);
        }
        Some(newest)
    }

    /// Whether every worker has stopped its source and had all its output acknowledged.
    pub fn all_complete(&self) -> bool {
        self.reports.borrow().iter().all(|report| {
            report.is_some_and(|report| report.capability.is_none() && report.acked.is_none())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(reports: Vec<Option<Report>>) -> CoordinationView {
        CoordinationView {
            reports: Rc::new(RefCell::new(reports)),
        }
    }

    fn report(capability: Option<Time>, acked: Option<Time>) -> Option<Report> {
        Some(Report {
            capability,
            acked,
            ..Report::default()
        })
    }

    #[test]
    fn acknowledged_time_is_the_least_over_workers_once_all_reported() {
        assert_eq!(view(vec![report(Some(5), Some(3)), None]).acked(), None);
        let workers = view(vec![report(Some(9), Some(7)), report(Some(4), Some(3))]);
        assert_eq!(workers.acked(), Some(Some(3)));
        assert_eq!(workers.newest_capability(), Some(9));
        assert!(!workers.all_complete());
        let sent = |newest_effect| {
            Some(Report {
                newest_effect,
                ..Report::default()
            })
        };
        assert_eq!(
            view(vec![sent(Some(7)), None, sent(None)]).newest_effect(),
            Some(7)
        );
        assert_eq!(view(vec![sent(None), None]).newest_effect(), None);
        // A complete worker no longer bounds anything.
        let workers = view(vec![report(None, None), report(Some(4), Some(3))]);
        assert_eq!(workers.acked(), Some(Some(3)));
        assert_eq!(workers.newest_capability(), Some(4));
        let done = view(vec![report(None, None), report(None, None)]);
        assert_eq!(done.acked(), Some(None));
        assert!(done.all_complete());
    }

    #[test]
    fn the_leader_learns_when_the_others_stopped_and_how_far_they_sent() {
        let sent = |capability: Option<Time>, sent_up_to: Time| {
            Some(Report {
                capability,
                sent_up_to,
                ..Report::default()
            })
        };
        // Worker 1 still reads: not yet.
        assert_eq!(
            view(vec![sent(Some(10), 8), sent(Some(12), 15)]).others_stopped(0),
            None
        );
        // Worker 1 stopped having sent up to 15; the leader's own 8 counts too.
        assert_eq!(
            view(vec![sent(Some(10), 8), sent(None, 15)]).others_stopped(0),
            Some(15)
        );
        // Not everyone has reported: unknown.
        assert_eq!(view(vec![sent(Some(10), 8), None]).others_stopped(0), None);
        let written = |written: Option<Time>| {
            Some(Report {
                written,
                ..Report::default()
            })
        };
        assert_eq!(
            view(vec![written(Some(7)), written(None)]).written(),
            Some(Some(7))
        );
        assert_eq!(view(vec![written(None), None]).written(), None);
    }
}
