//! `roomflow`: real-time sensor analytics on timely/differential dataflow, as a library that the
//! `roomflow` binary, the examples and the tests share.
//!
//! Data flows one way: a command (`replay`, `run`, `publish`, `simulate`) wires sources
//! (`sources`, `kafka::source`) to the pure computations of the `roomflow-dataflows` crate, and
//! the one typed change stream those produce to sinks (`sinks`, `kafka::sink`, `mongo`).
//! `streams` holds the stream types sources and sinks share; `cli` every command's flags;
//! `recovery` what a checkpoint is and how it is gathered, saved and loaded; `exactly_once` the
//! protocol of transactional output and its state changelog; `telemetry` the
//! metrics, health probes and logs; `dashboard` the live web page that reads the alpha topic
//! back, as any consumer would.

pub mod cli;
pub mod dashboard;
pub mod exactly_once;
pub mod kafka;
pub mod mongo;
pub mod publish;
pub mod recovery;
pub mod replay;
pub mod run;
pub mod simulate;
pub mod sinks;
pub mod sources;
pub mod streams;
pub mod telemetry;
