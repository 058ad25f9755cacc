//! Why the streaming job stops with an error, typed: the worker loop and the commit path return
//! [`JobError`], the first one stops every worker of the process, and `roomflow run` exits with
//! it (a fenced job with its own exit status, [`FENCED_EXIT_STATUS`], so a supervisor can tell
//! "another copy took over" from a failure worth a restart). Strings appear only where they are
//! what a library reported.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::cli::AlphaGuarantee;
use crate::kafka::sink::DeliveryFailure;

/// The exit status of a job that stopped because another instance fenced it.
pub const FENCED_EXIT_STATUS: u8 = 3;

/// A failure that stops the job.
#[derive(Clone, Debug)]
pub enum JobError {
    /// Another instance of this job (same `--group`, so the same transactional id) took over.
    Fenced {
        /// What this instance was doing when it found out.
        during: &'static str,
        /// What librdkafka reported.
        detail: String,
    },
    /// The Kafka producer failed for good, for another reason than fencing.
    ProducerFailed {
        /// What librdkafka reported.
        detail: String,
    },
    /// A message of the job's output could not be produced.
    Produce {
        /// Which, and why.
        failure: DeliveryFailure,
        /// What that means for the output: nothing unacknowledged is committed.
        guarantee: AlphaGuarantee,
    },
    /// A transactional call was refused (beginning, adding the offsets, committing).
    Transaction {
        /// Which call.
        during: &'static str,
        /// What librdkafka reported.
        error: KafkaError,
    },
    /// MongoDB refused a write.
    Mongo {
        /// The writer's report.
        detail: String,
    },
    /// A Kafka client could not be created.
    Client {
        /// Which client.
        what: &'static str,
        /// What librdkafka reported.
        error: KafkaError,
    },
    /// The last acknowledgements did not come at the end (at-least-once).
    FinalFlush {
        /// What librdkafka reported.
        error: KafkaError,
    },
    /// A worker of this process panicked.
    WorkerPanicked {
        /// The panic's message.
        detail: String,
    },
    /// Another worker of this process failed first; the job stops with that worker's error.
    AnotherWorker {
        /// Its index.
        worker: usize,
    },
}

impl JobError {
    /// A transactional call's failure: fencing when librdkafka's code says so.
    pub fn transaction(during: &'static str, error: KafkaError) -> Self {
        match error.rdkafka_error_code() {
            Some(code) if is_fencing(code) => JobError::Fenced {
                during,
                detail: error.to_string(),
            },
            _ => JobError::Transaction { during, error },
        }
    }

    /// The producer's fatal error (librdkafka's code and reason).
    pub fn producer_fatal(code: RDKafkaErrorCode, reason: String) -> Self {
        if is_fencing(code) {
            JobError::Fenced {
                during: "the Kafka producer failed",
                detail: reason,
            }
        } else {
            JobError::ProducerFailed { detail: reason }
        }
    }

    /// Whether another instance fenced this one.
    pub fn is_fenced(&self) -> bool {
        matches!(self, JobError::Fenced { .. })
    }
}

/// librdkafka's codes for "a newer producer with this transactional id exists".
pub fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Fenced { during, detail } => write!(
                f,
                "{during}: another instance of this job (same --group, so the same \
                 transactional id) took over and fenced this one, which stops without writing \
                 more ({detail})"
            ),
            JobError::ProducerFailed { detail } => {
                write!(f, "the Kafka producer failed for good: {detail}")
            }
            JobError::Produce { failure, guarantee } => {
                let consequence = match guarantee {
                    AlphaGuarantee::AtLeastOnce => {
                        "offsets of the unacknowledged changes were not committed"
                    }
                    AlphaGuarantee::ExactlyOnce => "the open transaction is not committed",
                };
                write!(f, "producing failed {failure}; {consequence}")
            }
            JobError::Transaction { during, error } => write!(f, "{during}: {error}"),
            JobError::Mongo { detail } => write!(
                f,
                "{detail}; the job stops (nothing after the last checkpoint is lost: a restart \
                 redoes it)"
            ),
            JobError::Client { what, error } => write!(f, "cannot create {what}: {error}"),
            JobError::FinalFlush { error } => write!(
                f,
                "the last changes were not acknowledged: {error}; their offsets are not committed"
            ),
            JobError::WorkerPanicked { detail } => write!(f, "a worker failed: {detail}"),
            JobError::AnotherWorker { worker } => write!(f, "worker {worker} failed"),
        }
    }
}

impl std::error::Error for JobError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_is_told_by_librdkafkas_code_not_by_its_words() {
        // `commit_transaction` flushes first, and a fenced flush fails with the fencing code.
        let fenced = KafkaError::Flush(RDKafkaErrorCode::ProducerFenced);
        let error = JobError::transaction("cannot commit the Kafka transaction", fenced);
        assert!(error.is_fenced(), "{error:?}");
        assert!(error.to_string().contains("another instance"), "{error}");
        let refused = KafkaError::Flush(RDKafkaErrorCode::InvalidTransactionTimeout);
        assert!(!JobError::transaction("cannot commit", refused).is_fenced());
        assert!(
            JobError::producer_fatal(RDKafkaErrorCode::InvalidProducerEpoch, "x".into())
                .is_fenced()
        );
        assert!(
            !JobError::producer_fatal(RDKafkaErrorCode::MessageSizeTooLarge, "x".into())
                .is_fenced()
        );
    }
}
