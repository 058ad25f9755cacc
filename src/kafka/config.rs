//! Broker address and librdkafka properties (`--brokers`, `-X key=value`), and the start-up check
//! that fails fast, with a message saying what to do, when no broker answers.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

use crate::telemetry::repeats::RepeatedWarnings;

/// The context of every consumer and admin client: client errors and librdkafka's own log lines
/// through [`client_error`] and [`client_log`].
pub struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(error, reason);
    }
}

/// Logs a client error as a warning: one that repeats (librdkafka reports "all brokers down"
/// about ten times a second on every client while they are) once per
/// `telemetry::repeats::REPEAT_INTERVAL`, with how many were held back; the end-of-partition
/// events the source asks for (`enable.partition.eof`) not at all, as they are not errors.
pub fn client_error(error: KafkaError, reason: &str) {
    let end_of_partition = matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF);
    if end_of_partition {
        return;
    }
    static WARNINGS: LazyLock<RepeatedWarnings> = LazyLock::new(RepeatedWarnings::new);
    if let Some(held_back) = WARNINGS.admit(reason, Instant::now()) {
        tracing::warn!(%error, held_back, "Kafka client: {reason}");
    }
}

/// Logs a line of librdkafka's own log (target `librdkafka`, at its level), at most once per
/// interval for each level and facility (a broker that is down makes every client report each
/// failed connection).
pub fn client_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    static LINES: LazyLock<RepeatedWarnings> = LazyLock::new(RepeatedWarnings::new);
    let Some(held_back) = LINES.admit(&format!("{level:?} {facility}"), Instant::now()) else {
        return;
    };
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", held_back, "{facility}: {message}")
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", held_back, "{facility}: {message}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", held_back, "{facility}: {message}")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", held_back, "{facility}: {message}")
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// The consumer type of the source.
pub type SourceConsumer = BaseConsumer<QuietEof>;

/// How long start-up waits for the brokers before giving up with an explanation.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Kafka is and how to talk to it.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Kafka")]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,
    /// A librdkafka property, KEY=VALUE, as kcat's -X (TLS, SASL, tuning). Repeatable; they
    /// override roomflow's own settings.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        value_parser = property,
        env = "ROOMFLOW_KAFKA_PROPERTIES",
        // They may hold sasl.password or ssl.key.password: `--help` must not print them.
        hide_env_values = true,
        value_delimiter = ';'
    )]
    pub properties: Vec<(String, String)>,
}

/// Parses `-X KEY=VALUE`.
pub fn property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!(
            "`{text}` is not KEY=VALUE (e.g. -X security.protocol=SSL)"
        )),
    }
}

impl KafkaArgs {
    /// A client configuration with the brokers, roomflow's `defaults`, then the user's `-X`
    /// properties (which win).
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Checks that the brokers answer a metadata request within [`CONNECT_TIMEOUT`].
    pub fn check_reachable(&self) -> anyhow::Result<()> {
        let consumer: BaseConsumer = self
            .client_config(&[])
            .create()
            .context("invalid Kafka configuration (check -X properties)")?;
        consumer
            .fetch_metadata(None, CONNECT_TIMEOUT)
            .map(|_| ())
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot reach Kafka at `{}` within {} s ({error}). Is a broker running there? \
                     Locally: scripts/kafka.sh start; elsewhere set --brokers or KAFKA_BROKERS.",
                    self.brokers,
                    CONNECT_TIMEOUT.as_secs()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_key_value_pairs() {
        assert_eq!(
            property("sasl.mechanism=PLAIN").unwrap(),
            ("sasl.mechanism".to_string(), "PLAIN".to_string())
        );
        assert_eq!(
            property("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert!(property("no-equals").is_err());
        assert!(property("=value").is_err());
    }
}
