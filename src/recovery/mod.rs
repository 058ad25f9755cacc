//! Recovery: checkpoints of `roomflow run` in MongoDB, and resuming from them.
//!
//! A checkpoint at dataflow time `T` is the input position of every partition (the offset after
//! the last message whose effects are all at times before `T`, and the partition's watermark
//! there) together with the computation's state as of those messages (see
//! `roomflow_dataflows::checkpoint`). It is written only once every output at times before `T`
//! is acknowledged by MongoDB and the alpha topic, so outputs and checkpoint agree: a job
//! resumed from it re-reads exactly the messages whose effects may be missing, restores the
//! state, and rewrites the same values.
//!
//! What each file owns:
//! - `checkpoint.rs`: what a checkpoint holds (its time, the partitions' positions, the state).
//! - `gather.rs`: the operator that assembles each checkpoint on worker 0 from the positions and
//!   every worker's part of the state.
//! - `saver.rs`: when the leading worker writes a checkpoint (once every output before it is
//!   acknowledged, one at a time) and the checkpoint-age gauge.
//! - `store.rs`: writing checkpoints to the `_checkpoints` collection atomically, and loading the
//!   latest at start.

pub mod checkpoint;
pub mod gather;
pub mod saver;
pub mod store;
