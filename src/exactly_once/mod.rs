//! Exactly-once output (`--alpha-guarantee exactly-once`): the protocol, in one place. Kafka I/O
//! that both guarantees use (clients, the source, the at-least-once sink) stays in `kafka/`; the
//! design and its alternatives (Flink's, Materialize's) are in `docs/exactly-once.md`.
//!
//! ## The protocol
//!
//! 1. **Fence, then restore** (`producer.rs`, `changelog.rs`). Process 0 creates the job's one
//!    transactional producer with the stable id `roomflow-<group>`: `init_transactions` aborts
//!    whatever an earlier incarnation left open and fences it. Then every process reads the state
//!    changelog (a compacted topic) `read_committed` to its end: the latest value of each key is
//!    the state, the partition positions and the progress time `T` of the last commit. The job
//!    resumes at `T`: the restored state enters just before `T`, every partition continues at its
//!    recorded offset.
//! 2. **Marks.** Every `--commit-interval`, once the previous transaction is committed, the
//!    leading worker's source sends a *mark* at the dataflow's progress `T` (the source's
//!    `CheckpointTrigger`, shared with MongoDB checkpoints). Once the frontier passes `T`, every
//!    worker's state changes before `T` and every partition's position reach worker 0, where
//!    the gathering operator (`recovery/gather.rs`) assembles the mark's checkpoint.
//! 3. **The sink** (`sink.rs`) runs on every worker; all changes and dead letters are routed to
//!    worker 0, whose operator produces whole times, in order, into the open transaction. At a
//!    time that has a mark it stops: the *barrier*. Nothing at or after `T` is in a transaction
//!    that commits at `T`.
//! 4. **Commit** (`commit.rs`, driven between steps by the worker loop): when the sink waits at
//!    barrier `T`, `T`'s checkpoint is assembled and every MongoDB write before `T` is
//!    acknowledged, the checkpoint's changelog records (the rooms that changed, every position,
//!    the progress record `T`) join the transaction, and once a second the positions are also
//!    sent to the consumer group. When the broker has acknowledged every message of the
//!    transaction, it commits, the next one begins, and the sink goes on past `T`.
//! 5. **The end.** The leader's last mark comes after everything any worker sent; once it is
//!    committed the open (empty) transaction is aborted and the job exits.
//! 6. **Failure.** Anything that fails on the way (fenced by a newer incarnation, a message the
//!    broker refused, a commit refused) stops the job with a typed error
//!    ([`crate::run::error::JobError`]); what it had not committed is aborted by the broker or by
//!    the next incarnation's fencing, which resumes from the last commit.
//!
//! What a `read_committed` consumer sees is therefore each change once, and what a restart
//! resumes from is exactly what that consumer has seen: the two are one atomic thing.
//!
//! What each file owns:
//! - `producer.rs`: the transactional id and producer, fencing at start.
//! - `sink.rs`: the sink operator and the state it shares with the worker loop (the barrier).
//! - `commit.rs`: the transaction state machine (mark → records → acknowledged → commit → next),
//!   written against [`commit::TransactionalProducer`] so it is tested without a broker.
//! - `changelog.rs`: the changelog's records, and reading it back at start.

pub mod changelog;
pub mod commit;
pub mod producer;
pub mod sink;
