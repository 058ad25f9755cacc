//! Where readings come from.
//!
//! - `formats/`: line parsers for JSON lines, the KETI layout and the Intel lab format, one file
//!   per format.
//! - `files.rs`: finding and opening recorded inputs, reading each as a stream of items.
//! - `validity.rs`: plausibility ranges per sensor.
//! - `rejected.rs`: dead letters and late readings, as data.
//! - `pacing.rs`: `--speed`, event time against wall time.
//! - `replay.rs`: the timely source merging a worker's inputs by event time.

pub mod files;
pub mod formats;
pub mod pacing;
pub mod rejected;
pub mod replay;
pub mod validity;
