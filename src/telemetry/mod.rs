//! What a running job tells its operators, apart from its outputs.
//!
//! - `catalog.rs`: every Prometheus metric the job exports, its name, help text and labels.
//! - `health.rs`: liveness and readiness, as the worker loops report them.
//! - `server.rs`: the `--metrics ADDR` HTTP endpoint serving both.
//! - `logging.rs`: the log subscriber, human-readable or JSON lines.
//! - `repeats.rs`: a warning that repeats while a condition lasts, logged once per interval.
//!
//! Metrics go through the `metrics` facade: without `--metrics` no recorder is installed and
//! every update is a no-op, so the sources and sinks record unconditionally.

pub mod catalog;
pub mod health;
pub mod logging;
pub mod repeats;
pub mod server;
