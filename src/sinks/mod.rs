//! Where results go.
//!
//! - `files.rs`: output files shared by a process's workers, and part names per process.
//! - `final_state.rs`: `--out DIR/<collection>.jsonl`, the final value of each key.
//! - `changes.rs`: the `--changes` file, every change's envelope in time order.
//! - `rejected.rs`: dead letters and late readings, counted and written.
//! - `summary.rs`: the per-room table and final counts.

pub mod changes;
pub mod files;
pub mod final_state;
pub mod rejected;
pub mod summary;
