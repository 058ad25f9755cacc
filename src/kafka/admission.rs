//! What one Kafka message does to its partition and to the dataflow: parsed into a reading or a
//! dead letter, the reading judged against the partition's watermark (on time, and stamped; or
//! late), and every effect of the message at one dataflow time, never earlier than the previous
//! message's. Nothing here touches the consumer or timely, so it is tested message by message.

use std::sync::Arc;

use metrics::{counter, Counter};
use roomflow_dataflows::{Admission, Horizon, Reading, Time};

use super::partition::{note_backlog, PartitionReader, Phase};
use super::position::PartitionPosition;
use crate::sources::formats::{parse_line, Format, StreamContext};
use crate::sources::validity::ValidRanges;
use crate::streams::rejected::{KafkaOrigin, Rejected};
use crate::telemetry::catalog::{self, DeadLetterReason};

/// The rules every message of a job is judged by.
pub struct Rules {
    /// Lateness and tick.
    pub horizon: Horizon,
    /// Plausible ranges (`--valid`).
    pub valid: Arc<ValidRanges>,
    /// The longest message read as a reading (`--max-line-bytes`).
    pub max_message_bytes: usize,
    /// The tick of a partition working through a backlog.
    pub catch_up_tick_ms: i64,
    /// Backlog (messages) above which a partition is catching up.
    pub catch_up_lag: i64,
}

/// A message as admission sees it.
pub struct Incoming<'m> {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<&'m [u8]>,
    /// Its value.
    pub payload: &'m [u8],
}

/// What a worker's source has admitted so far: the counts admission keeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceCounts {
    /// Messages consumed.
    pub messages: u64,
    /// Readings sent into the dataflow.
    pub readings: u64,
    /// Messages that were not readings.
    pub dead_letters: u64,
    /// Readings too late to apply.
    pub late: u64,
}

/// What messages did, waiting to be sent: readings at their stamps, rejections and partition
/// positions at the time of their message's effects.
pub struct Effects {
    /// Readings to apply, at their stamps.
    pub readings: Vec<(Reading, Time, isize)>,
    /// Dead letters and late readings.
    pub rejections: Vec<(Rejected, Time)>,
    /// Positions completed at a time: every effect of the messages before each is before it.
    pub positions: Vec<(PartitionPosition, Time)>,
    parsed: Vec<Reading>,
    late: Vec<Rejected>,
    context: StreamContext,
    late_readings: Counter,
}

impl Default for Effects {
    fn default() -> Self {
        Effects::new()
    }
}

impl Effects {
    /// Nothing yet.
    pub fn new() -> Self {
        Effects {
            readings: Vec::new(),
            rejections: Vec::new(),
            positions: Vec::new(),
            parsed: Vec::new(),
            late: Vec::new(),
            context: StreamContext::default(),
            late_readings: counter!(catalog::LATE_READINGS, "reason" => catalog::BEYOND_LATENESS),
        }
    }
}

/// One message for [`admit_messages`]: its key and its value.
pub type Message<'m> = (Option<&'m [u8]>, &'m [u8]);

/// Admits `messages`, at offsets 0, 1, …, of one newly assigned partition `topic/0` under
/// `rules`, as a source reading at `capability` would: what they did, the counts, and the time
/// of each message's effects. For the fuzz target and tests: the same path as the job's.
pub fn admit_messages(
    rules: &Rules,
    messages: &[Message<'_>],
    capability: Time,
) -> (Effects, SourceCounts, Vec<Time>) {
    let partition = crate::kafka::discovery::Partition {
        topic: "topic".into(),
        partition: 0,
    };
    let mut reader = PartitionReader::new(partition, None, 0, Phase::Unknown);
    let (mut effects, mut counts) = (Effects::new(), SourceCounts::default());
    let end = Some(messages.len() as i64);
    let times = messages
        .iter()
        .enumerate()
        .map(|(offset, (key, payload))| {
            let incoming = Incoming {
                offset: offset as i64,
                key: *key,
                payload,
            };
            reader.admit(incoming, end, capability, rules, &mut effects, &mut counts)
        })
        .collect();
    (effects, counts, times)
}

impl PartitionReader {
    /// Admits the next `message` of the partition, read while the source's capability is at
    /// `capability` and the partition's fetched end is `end`; its effects go to `effects`, its
    /// counts to `counts`. Returns the time of its effects.
    pub(super) fn admit(
        &mut self,
        message: Incoming<'_>,
        end: Option<i64>,
        capability: Time,
        rules: &Rules,
        effects: &mut Effects,
        counts: &mut SourceCounts,
    ) -> Time {
        self.next_offset = Some(message.offset + 1);
        self.phase = Phase::Active;
        counts.messages += 1;
        self.metrics.messages.increment(1);
        note_backlog(
            &mut self.catching_up,
            &self.partition,
            message.offset,
            end,
            rules.catch_up_lag,
        );
        // A partition that paused continues from where the computation is.
        if std::mem::take(&mut self.needs_catch_up) {
            self.watermark.catch_up(capability as i64);
        }
        let payload = message.payload;
        let origin = || {
            Box::new(KafkaOrigin {
                topic: self.partition.topic.clone(),
                partition: self.partition.partition,
                offset: message.offset,
                key: message.key.map(<[u8]>::to_vec),
                payload: payload.to_vec(),
            })
        };
        let source = || format!("{}/{}", self.partition, message.offset);
        effects.parsed.clear();
        // The length first, before even the UTF-8 check reads the whole message: the broker
        // bounds a message, but far above any reading.
        let text = (payload.len() <= rules.max_message_bytes).then(|| std::str::from_utf8(payload));
        let outcome = match text {
            None => Err((
                DeadLetterReason::TooLong,
                format!(
                    "message of {} bytes is longer than the {} allowed (--max-line-bytes)",
                    payload.len(),
                    rules.max_message_bytes
                ),
            )),
            Some(Err(_)) => Err((DeadLetterReason::NotUtf8, "not UTF-8".to_string())),
            Some(Ok(text)) if text.trim().is_empty() => {
                Err((DeadLetterReason::Empty, "empty message".to_string()))
            }
            Some(Ok(text)) => parse_line(Format::Json, &effects.context, text, &mut effects.parsed)
                .map_err(|reason| (DeadLetterReason::Malformed, reason))
                .and_then(|()| {
                    effects
                        .parsed
                        .iter()
                        .try_for_each(|r| rules.valid.check(r))
                        .map_err(|reason| (DeadLetterReason::Implausible, reason))
                }),
        };
        // Every effect of the message at one time (see `last_effect`).
        let effect = if let Err((cause, reason)) = outcome {
            counts.dead_letters += 1;
            counter!(catalog::DEAD_LETTERS, "reason" => cause.label()).increment(1);
            let effect = self.last_effect.max(capability);
            // The dead-letter topic gets the message's bytes unchanged (`origin`); the files and
            // MongoDB a bounded excerpt.
            let mut rejected =
                Rejected::unreadable(source(), reason, payload, payload.len() as u64);
            rejected.origin = Some(origin());
            effects.rejections.push((rejected, effect));
            effect
        } else {
            let mut message_stamp: Option<Time> = None;
            for reading in effects.parsed.drain(..) {
                match self.watermark.admit(reading.ts, &rules.horizon) {
                    Admission::OnTime { stamp } => {
                        // Later readings of the message take the first one's stamp: lower than
                        // their own, which sealing allows.
                        let stamp = *message_stamp.get_or_insert_with(|| {
                            self.stamp(stamp, capability, rules.catch_up_tick_ms)
                                .max(self.last_effect)
                        });
                        counts.readings += 1;
                        self.metrics.readings.increment(1);
                        effects.readings.push((reading, stamp, 1));
                    }
                    Admission::Late { newest } => {
                        counts.late += 1;
                        effects.late_readings.increment(1);
                        effects.late.push(Rejected::late(
                            reading,
                            source(),
                            "partition",
                            newest,
                            rules.horizon.lateness_ms,
                            Some(origin()),
                        ));
                    }
                }
            }
            let effect = message_stamp.unwrap_or(self.last_effect.max(capability));
            let late = effects.late.drain(..).map(|rejected| (rejected, effect));
            effects.rejections.extend(late);
            effect
        };
        self.last_effect = effect;
        let position = PartitionPosition {
            partition: self.partition.clone(),
            next: message.offset + 1,
            newest: self.watermark.newest(),
        };
        // One position per partition and effect time: the last one.
        if let Some((time, previous)) = self.unreported.replace((effect, position)) {
            if time != effect {
                effects.positions.push((previous, time));
            }
        }
        effect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::discovery::Partition;
    use crate::streams::rejected::{RejectKind, EXCERPT_BYTES};

    /// The capability the messages are read at: not a multiple of the one-minute catch-up tick
    /// (1,700,000,000,000 = 28,333,333 minutes and 20 s).
    const C: Time = 1_700_000_000_000;

    fn reading(ts: Time, value: &str) -> Vec<u8> {
        format!(r#"{{"room": "a", "sensor": "temperature", "ts": {ts}, "value": {value}}}"#)
            .into_bytes()
    }

    fn rules() -> Rules {
        Rules {
            horizon: Horizon::new(300_000, 100),
            valid: Arc::new(ValidRanges::new(&["temperature=-40..85".parse().unwrap()])),
            max_message_bytes: 1000,
            catch_up_tick_ms: 60_000,
            catch_up_lag: 10_000,
        }
    }

    fn partition() -> Partition {
        Partition {
            topic: "t".into(),
            partition: 0,
        }
    }

    /// The kinds, sources and times of the rejections.
    fn rejected(effects: &Effects) -> Vec<(RejectKind, String, Time)> {
        effects
            .rejections
            .iter()
            .map(|(r, time)| (r.kind, r.source.clone(), *time))
            .collect()
    }

    #[test]
    fn a_message_over_the_limit_is_a_dead_letter_keeping_its_bytes_for_the_topic_only() {
        let mut reader = PartitionReader::new(partition(), None, 0, Phase::Unknown);
        let (rules, mut effects, mut counts) = (rules(), Effects::new(), SourceCounts::default());
        // A valid reading padded with spaces to 5,000 bytes: over the limit of 1,000 in `rules`.
        let mut payload = reading(C + 250, "21.5");
        payload.resize(5_000, b' ');
        let incoming = Incoming {
            offset: 7,
            key: None,
            payload: &payload,
        };
        reader.admit(incoming, Some(8), C, &rules, &mut effects, &mut counts);
        assert!(effects.readings.is_empty());
        let (rejected, _) = &effects.rejections[0];
        assert_eq!(
            rejected.reason,
            "message of 5000 bytes is longer than the 1000 allowed (--max-line-bytes)"
        );
        assert_eq!(rejected.line.as_deref().map(str::len), Some(EXCERPT_BYTES));
        assert_eq!(rejected.line_bytes, Some(5_000));
        assert_eq!(rejected.origin.as_ref().unwrap().payload, payload);
    }

    #[test]
    fn every_effect_of_a_message_is_at_one_time_that_never_decreases() {
        let mut reader = PartitionReader::new(partition(), None, 0, Phase::Unknown);
        let (rules, mut effects, mut counts) = (rules(), Effects::new(), SourceCounts::default());
        let messages: Vec<(i64, Vec<u8>)> = vec![
            (0, reading(C + 250, "21.5")),
            (1, b"not json".to_vec()),
            // 400,250 ms behind the newest (C + 250): late.
            (2, reading(C - 400_000, "20")),
            // Outside --valid: a dead letter, and the watermark does not move.
            (3, reading(C + 1_000, "500")),
            (4, reading(C + 1_150, "22")),
        ];
        let mut times = Vec::new();
        for (offset, payload) in &messages {
            let incoming = Incoming {
                offset: *offset,
                key: Some(b"a"),
                payload,
            };
            times.push(reader.admit(incoming, Some(5), C, &rules, &mut effects, &mut counts));
        }
        // A new partition starts at the capability; C + 250 is stamped down to its 100 ms tick.
        // Messages without readings take the previous message's time.
        assert_eq!(times, vec![C + 200, C + 200, C + 200, C + 200, C + 1_100]);
        let readings: Vec<(i64, String, Time)> = effects
            .readings
            .iter()
            .map(|(r, stamp, diff)| {
                assert_eq!(*diff, 1);
                (r.ts, r.value.to_string(), *stamp)
            })
            .collect();
        assert_eq!(
            readings,
            vec![
                (C as i64 + 250, "21.5".to_string(), C + 200),
                (C as i64 + 1_150, "22".to_string(), C + 1_100),
            ]
        );
        assert_eq!(
            rejected(&effects),
            vec![
                (RejectKind::DeadLetter, "t/0/1".into(), C + 200),
                (RejectKind::Late, "t/0/2".into(), C + 200),
                (RejectKind::DeadLetter, "t/0/3".into(), C + 200),
            ]
        );
        assert_eq!(
            effects.rejections[1].0.reason,
            "event time 1699999600000 is 400250 ms behind the newest event time 1700000000250 \
             of its partition (lateness 300000 ms)"
        );
        let origin = effects.rejections[0].0.origin.as_ref().unwrap();
        assert_eq!(
            (
                origin.offset,
                origin.payload.as_slice(),
                origin.key.as_deref()
            ),
            (1, &b"not json"[..], Some(&b"a"[..]))
        );
        // The position after message 3 is complete at C + 200: every effect before it is
        // before C + 1_100. The one after message 4 waits for a later time.
        assert_eq!(
            effects.positions,
            vec![(
                PartitionPosition {
                    partition: partition(),
                    next: 4,
                    newest: Some(C as i64 + 250),
                },
                C + 200
            )]
        );
        assert_eq!(
            reader.unreported.as_ref().map(|(time, p)| (*time, p.next)),
            Some((C + 1_100, 5))
        );
        assert_eq!(
            (
                counts.messages,
                counts.readings,
                counts.dead_letters,
                counts.late
            ),
            (5, 2, 2, 1)
        );
    }

    #[test]
    fn a_resumed_partition_judges_lateness_by_its_own_watermark_and_a_backlog_is_coarse() {
        // Resumed from a checkpoint at C with its watermark at C + 30 s.
        let resumed = PartitionPosition {
            partition: partition(),
            next: 100,
            newest: Some(C as i64 + 30_000),
        };
        let mut reader = PartitionReader::new(partition(), Some(&resumed), C, Phase::Unknown);
        let (rules, mut effects, mut counts) = (rules(), Effects::new(), SourceCounts::default());
        let mut admit = |offset: i64, ts: Time, end: i64| {
            let payload = reading(ts, "20");
            let incoming = Incoming {
                offset,
                key: None,
                payload: &payload,
            };
            reader.admit(incoming, Some(end), C, &rules, &mut effects, &mut counts)
        };
        // 305 s behind the resumed watermark: late (a new partition would have started at the
        // capability C, 275 s ahead of it, and applied it). At the checkpoint's time.
        assert_eq!(admit(100, C - 275_000, 20_101), C);
        // 20,000 messages behind the end: catching up, stamped at the start of the minute that
        // holds C + 95 s, which starts at C + 40 s (C is 20 s past a minute).
        assert_eq!(admit(101, C + 95_000, 20_101), C + 40_000);
        // 29 s behind the newest: on time, in the same coarse tick.
        assert_eq!(admit(102, C + 66_000, 20_101), C + 40_000);
        // Caught up: fine stamps again.
        assert_eq!(admit(103, C + 95_150, 104), C + 95_100);
        assert_eq!((counts.readings, counts.late), (3, 1));
        assert_eq!(
            rejected(&effects),
            vec![(RejectKind::Late, "t/0/100".into(), C)]
        );
    }
}
