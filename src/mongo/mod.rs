//! MongoDB: the sink that keeps one document per key of every collection, for `roomflow run`
//! and `roomflow replay`.
//!
//! What each file owns:
//! - `config.rs`: `--mongo`/`--mongo-db`, the client and its tokio runtime (off the worker
//!   threads), the start-up check that the server answers, and the indexes.
//! - `documents.rs`: what is written where: each change, rejected input and archived reading
//!   as a target collection, an `_id` and a document (or a delete). The README's schema.
//! - `writer.rs`: one task per worker that writes batches with many statements per round trip,
//!   coalescing changes of one key, and retries with backoff while the server is away.
//! - `sink.rs`: the timely operator that hands each completed dataflow time to the writer
//!   through a bounded queue, and which times MongoDB has acknowledged.

pub mod config;
pub mod documents;
pub mod sink;
pub mod writer;
