//! The `roomflow simulate` command: the options from its flags, and where the lines go (stdout, a
//! file, shard files, or a Kafka topic in live mode).

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use super::{generate, live, SimulateOptions};
use crate::cli::SimulateArgs;

/// `roomflow simulate`: writes to stdout, a file, or (with `--shards N > 1`) a directory of
/// `shard-<i>.jsonl` files.
pub fn command(args: SimulateArgs) -> anyhow::Result<()> {
    let options = SimulateOptions {
        rooms: args.rooms,
        readings: args.readings.unwrap_or(10_000),
        seed: args.seed,
        start_ms: args.start,
        malformed_ratio: args.malformed,
        out_of_order_ratio: args.out_of_order,
        late_ratio: args.late,
    };
    if let Some(topic) = &args.topic {
        let target = live::LiveTarget {
            kafka: args.kafka.clone(),
            topic: topic.clone(),
            partitions: args.partitions,
            rate: args.rate,
            limit: args.readings,
        };
        return live::produce(&options, target);
    }
    let shards = args.shards.max(1);
    let mut outputs: Vec<Box<dyn Write>> = match (&args.out, shards) {
        (None, 1) => vec![Box::new(BufWriter::with_capacity(
            1 << 16,
            io::stdout().lock(),
        ))],
        (None, _) => {
            anyhow::bail!("--shards {shards} needs --out DIR to write the shard files into")
        }
        (Some(path), 1) => vec![create(path)?],
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            (0..shards)
                .map(|i| create(&dir.join(format!("shard-{i}.jsonl"))))
                .collect::<anyhow::Result<_>>()?
        }
    };
    let summary =
        generate(&options, &mut outputs).context("cannot write the simulated readings")?;
    for output in &mut outputs {
        output
            .flush()
            .context("cannot write the simulated readings")?;
    }
    eprintln!(
        "simulated {} lines for {} rooms: {} malformed, {} out of order, {} late",
        summary.lines, options.rooms, summary.malformed, summary.out_of_order, summary.late
    );
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 16, file)))
}
