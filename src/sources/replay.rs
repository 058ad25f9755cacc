//! The timely source that replays recorded inputs: each worker merges its share of the inputs
//! by event time, sends readings at their stamps, and holds its capability at the least stamp its
//! inputs can still produce, dropping it when they are exhausted.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomflow_dataflows::{Event, Horizon, Merge, Reading, Time};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{ProbeHandle, Scope};

use super::inputs::InputFile;
use super::lines::LineStream;
use super::pacing::Pacing;
use super::validity::ValidRanges;
use crate::streams::{ReadingStream, Rejected, RejectedStream};

/// How a worker replays its inputs.
pub struct ReplayOptions {
    /// This worker's inputs.
    pub inputs: Vec<InputFile>,
    /// The lateness horizon and tick.
    pub horizon: Horizon,
    /// Plausibility ranges.
    pub valid: Arc<ValidRanges>,
    /// The longest line read whole (`--max-line-bytes`).
    pub max_line_bytes: usize,
    /// Pacing, for `--speed`.
    pub pacing: Option<Pacing>,
    /// Bytes read from disk, for progress.
    pub bytes_read: Arc<AtomicU64>,
    /// Events per activation: larger batches consolidate better, smaller ones yield sooner.
    pub batch: usize,
    /// How far (dataflow time) this worker may run ahead of the output frontier: bounds what
    /// waits in operators when workers advance at different speeds.
    pub max_ahead: Time,
}

/// The replay source over this worker's inputs: reading updates for the dataflow, and rejected
/// inputs (dead letters, late readings). `progress` is probed at the end of the dataflow for flow
/// control.
pub fn replay<'s>(
    scope: Scope<'s, Time>,
    options: ReplayOptions,
    progress: ProbeHandle<Time>,
) -> (ReadingStream<'s>, RejectedStream<'s>) {
    let mut builder = OperatorBuilder::new("Replay".to_owned(), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let (readings_output, readings) = builder.new_output();
    let (rejected_output, rejected) = builder.new_output();
    let mut readings_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(readings_output);
    let mut rejected_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(rejected_output);

    builder.build(move |mut capabilities| {
        // One capability per output, always at the same time.
        let mut capabilities = Some((capabilities.remove(0), capabilities.remove(0)));
        let names: Vec<Arc<str>>;
        let mut merge = {
            let streams: Vec<LineStream> = options
                .inputs
                .iter()
                .map(|input| {
                    LineStream::open(
                        input,
                        options.valid.clone(),
                        options.bytes_read.clone(),
                        options.max_line_bytes,
                    )
                })
                .collect();
            names = streams.iter().map(|stream| stream.name().clone()).collect();
            Merge::new(streams, options.horizon)
        };
        let mut buffer: Vec<(Reading, Time, isize)> = Vec::new();
        let mut rejections: Vec<Rejected> = Vec::new();
        // Event time the last batch spanned: flow control lets a worker run about two batches
        // ahead, so workers overlap instead of taking turns, and memory stays a few batches.
        let mut last_span: Time = 0;
        move |_frontiers| {
            let Some((for_readings, for_rejected)) = capabilities.as_mut() else {
                return;
            };
            let mut readings_output = readings_output.activate();
            let mut rejected_output = rejected_output.activate();

            // Flow control: wait for the rest of the dataflow rather than pile up work in it.
            if let Some(frontier) = progress.with_frontier(|f| f.first().copied()) {
                if for_readings.time().saturating_sub(frontier) > options.max_ahead + 2 * last_span
                {
                    // Yield rather than sleep: the operators ahead of us usually catch up within
                    // this very step.
                    activator.activate();
                    return;
                }
            }

            let started_at = *for_readings.time();
            let mut stamp = started_at;
            let mut sent = 0;
            while sent < options.batch {
                if let (Some(pacing), Some(next)) = (&options.pacing, merge.next_time()) {
                    if let Some(wait) = pacing.wait_for(next, Instant::now()) {
                        activator.activate_after(wait.min(Duration::from_millis(100)));
                        break;
                    }
                }
                let Some(event) = merge.next() else { break };
                sent += 1;
                match event {
                    Event::Apply { reading, stamp: at } => {
                        if at != stamp && !buffer.is_empty() {
                            // Through the container builder, so `buffer` keeps its allocation.
                            readings_output
                                .session(&for_readings.delayed(&stamp))
                                .give_iterator(buffer.drain(..));
                        }
                        stamp = at;
                        buffer.push((reading, at, 1));
                    }
                    Event::Late {
                        reading,
                        stream,
                        position,
                        newest,
                    } => rejections.push(Rejected::late(
                        reading,
                        format!("{}:{}", names[stream], position),
                        "input",
                        newest,
                        options.horizon.lateness_ms,
                        None,
                    )),
                    Event::Other { item, .. } => rejections.push(*item),
                }
            }
            if !buffer.is_empty() {
                readings_output
                    .session(&for_readings.delayed(&stamp))
                    .give_iterator(buffer.drain(..));
            }
            if !rejections.is_empty() {
                rejected_output
                    .session(&*for_rejected)
                    .give_iterator(rejections.drain(..));
            }

            match merge.lower_bound() {
                Some(bound) => {
                    last_span = bound.saturating_sub(started_at);
                    for_readings.downgrade(&bound);
                    for_rejected.downgrade(&bound);
                    if options.pacing.is_none() || sent == options.batch {
                        activator.activate();
                    }
                }
                None => capabilities = None,
            }
        }
    });
    (readings, rejected)
}
