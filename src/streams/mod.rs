//! What flows between sources and sinks, shared by both so neither imports the other.
//!
//! - `mod.rs`: the stream types: readings, rejected input, changes.
//! - `rejected.rs`: dead letters and late readings, as data, with where they came from.
//!
//! A change is [`roomflow_dataflows::Change`]: the dataflows form it, every sink consumes it.

pub mod rejected;

use roomflow_dataflows::{Change, Reading, Time};
use timely::dataflow::Stream;

pub use rejected::{RejectKind, Rejected};

/// Readings as a source emits them: differential updates `(reading, time, +1)`.
pub type ReadingStream<'s> = Stream<'s, Time, Vec<(Reading, Time, isize)>>;

/// Dead letters and late readings, each at the dataflow time it was judged at.
pub type RejectedStream<'s> = Stream<'s, Time, Vec<Rejected>>;

/// Changes of the output collections (see [`roomflow_dataflows::changes()`]).
pub type ChangeStream<'s> = Stream<'s, Time, Vec<Change>>;
