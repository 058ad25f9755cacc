//! Where readings come from.
//!
//! - `formats/`: line parsers for JSON lines, the KETI layout and the Intel lab format, one file
//!   per format.
//! - `inputs.rs`: finding recorded inputs, choosing their format, sharing them out.
//! - `opening.rs`: opening an input, gzip or not, and sniffing its first line without losing it
//!   (a pipe reads once).
//! - `bounded.rs`: reading one line while holding at most `--max-line-bytes` of it.
//! - `lines.rs`: reading one input line by line into readings and dead letters.
//! - `validity.rs`: plausibility: name lengths, ranges per sensor.
//! - `pacing.rs`: `--speed`, event time against wall time.
//! - `replay.rs`: the timely source merging a worker's inputs by event time.

pub mod bounded;
pub mod formats;
pub mod inputs;
pub mod lines;
pub mod opening;
pub mod pacing;
pub mod replay;
pub mod validity;
