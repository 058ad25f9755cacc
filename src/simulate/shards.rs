//! Writing to the shards: each line to its shard, counted the way the job would see it with its
//! default lateness, and the lines held back to be written out of order or late.

use std::io::{self, Write};

use super::{SimulateSummary, LATENESS_MS};

/// Writes lines to their shards, keeping the summary of what was written.
pub(super) struct ShardWriter<'o, 'w, 's> {
    pub(super) outputs: &'o mut [Box<dyn Write + 'w>],
    /// The newest event time written to each shard.
    pub(super) newest: Vec<i64>,
    pub(super) summary: &'s mut SimulateSummary,
}

impl ShardWriter<'_, '_, '_> {
    /// Writes a line with event time `ts`, or a malformed line (`None`).
    pub(super) fn write(&mut self, shard: usize, ts: Option<i64>, line: &[u8]) -> io::Result<()> {
        self.outputs[shard].write_all(line)?;
        self.summary.lines += 1;
        let Some(ts) = ts else {
            self.summary.malformed += 1;
            return Ok(());
        };
        let newest = &mut self.newest[shard];
        let behind = newest.saturating_sub(ts);
        if behind > LATENESS_MS {
            self.summary.late += 1;
        } else if behind > 0 {
            self.summary.out_of_order += 1;
        }
        *newest = (*newest).max(ts);
        Ok(())
    }
}

/// A well-formed line held back until the generator's clock reaches `release`.
pub(super) struct Held {
    pub(super) release: i64,
    /// Which reading it was: orders lines released at the same event time.
    pub(super) sequence: u64,
    pub(super) shard: usize,
    pub(super) ts: i64,
    pub(super) line: Vec<u8>,
}

impl Held {
    fn key(&self) -> (i64, u64) {
        (self.release, self.sequence)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::tests::{options, parse, run};
    use crate::simulate::SimulateOptions;

    #[test]
    fn summary_counts_what_a_per_shard_lateness_judge_sees() {
        let options = SimulateOptions {
            out_of_order_ratio: 0.05,
            late_ratio: 0.01,
            ..options(10, 30_000)
        };
        let (shards, summary) = run(&options, 3);
        let parsed: Vec<_> = shards.iter().map(|shard| parse(shard)).collect();
        let newest_overall = parsed
            .iter()
            .flatten()
            .flatten()
            .map(|reading| reading.ts)
            .max()
            .unwrap();
        let mut counted = SimulateSummary {
            lines: 30_000,
            ..SimulateSummary::default()
        };
        for lines in parsed {
            let mut newest = i64::MIN;
            for line in lines {
                let Ok(reading) = line else {
                    counted.malformed += 1;
                    continue;
                };
                let behind = newest.saturating_sub(reading.ts);
                if behind > LATENESS_MS {
                    counted.late += 1;
                } else if behind > 0 {
                    counted.out_of_order += 1;
                }
                // Readings held back longer than the stream lasted come at its end, less behind
                // than intended; every other one is 10-120 s or 6-15 min (less the time since its
                // shard's previous line) behind.
                if reading.ts + 900_000 < newest_overall {
                    assert!(
                        behind <= 120_000 || (LATENESS_MS < behind && behind <= 900_000),
                        "{reading:?} is {behind} ms behind"
                    );
                }
                newest = newest.max(reading.ts);
            }
        }
        assert_eq!(summary, counted);
        assert!(summary.out_of_order > 0 && summary.late > 0, "{summary:?}");
    }
}
