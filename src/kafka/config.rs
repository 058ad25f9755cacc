//! Broker address and librdkafka properties (`--brokers`, `-X key=value`), and the start-up check
//! that fails fast, with a message saying what to do, when no broker answers or the broker refuses
//! the TLS handshake or the credentials. Secret properties never reach a log line: the arguments'
//! `Debug` shows them as `[redacted]`.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
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
#[derive(Args, Clone)]
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

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret(key) { "[redacted]" } else { value };
                (key.as_str(), shown)
            })
            .collect();
        formatter
            .debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .finish()
    }
}

/// Whether a librdkafka property holds a secret: passwords, private keys, OAuth client secrets and
/// the JAAS-style configs that embed them.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "ssl.key.pem",
        "ssl_key",
        "sasl.oauthbearer.config",
        "jaas",
    ]
    .iter()
    .any(|marker| key.contains(marker))
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

    /// Checks that the brokers answer a metadata request within [`CONNECT_TIMEOUT`], failing as
    /// soon as one refuses the credentials or the TLS handshake (librdkafka would otherwise retry
    /// until the timeout, and the timeout's message would blame an absent broker).
    pub fn check_reachable(&self) -> anyhow::Result<()> {
        let consumer: BaseConsumer<StartupProbe> = self
            .client_config(&[])
            .create_with_context(StartupProbe::default())
            .context("invalid Kafka configuration (check -X properties)")?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250));
            let error = match consumer.fetch_metadata(None, slice) {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            // A consumer hands client errors out of `poll`, not to its context.
            while let Some(Err(polled)) = consumer.poll(Duration::ZERO) {
                let reason = consumer.context().last_failure();
                match Refusal::from_error(&polled, reason.as_deref().unwrap_or("")) {
                    Some(refusal) => return Err(refusal.explain(&self.brokers)),
                    None => client_error(polled, "start-up check"),
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "cannot reach Kafka at `{}` within {} s ({error}). Is a broker running there? \
                     Locally: scripts/kafka.sh start; elsewhere set --brokers or KAFKA_BROKERS.",
                    self.brokers,
                    CONNECT_TIMEOUT.as_secs()
                );
            }
        }
    }
}

/// Why a broker turned the start-up check's connection away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// SASL authentication failed (wrong user, password or mechanism).
    Credentials(String),
    /// The TLS handshake failed (unknown CA, wrong host name, plaintext port).
    Tls(String),
}

impl Refusal {
    fn from_error(error: &KafkaError, reason: &str) -> Option<Self> {
        let reason = if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_string()
        };
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                Some(Self::Credentials(reason))
            }
            Some(RDKafkaErrorCode::SSL) => Some(Self::Tls(reason)),
            _ => None,
        }
    }

    fn explain(&self, brokers: &str) -> anyhow::Error {
        match self {
            Self::Credentials(reason) => anyhow::anyhow!(
                "Kafka at `{brokers}` refused roomflow's credentials: {reason}. Check \
                 -X sasl.mechanism, sasl.username and sasl.password (or ROOMFLOW_KAFKA_PROPERTIES)."
            ),
            Self::Tls(reason) => anyhow::anyhow!(
                "the TLS handshake with Kafka at `{brokers}` failed: {reason}. Check \
                 -X security.protocol, ssl.ca.location (the CA that signed the broker's \
                 certificate) and that the port is the broker's TLS listener."
            ),
        }
    }
}

/// The start-up check's client context: keeps librdkafka's last connection failure line, which
/// says why (the error polled out of the consumer has only a code).
#[derive(Default)]
struct StartupProbe {
    last_failure: Mutex<Option<String>>,
}

impl StartupProbe {
    fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().expect("failure lock").clone()
    }
}

impl rdkafka::ClientContext for StartupProbe {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "FAIL" {
            *self.last_failure.lock().expect("failure lock") = Some(message.to_string());
        }
        client_log(level, facility, message);
    }
}

impl rdkafka::consumer::ConsumerContext for StartupProbe {}

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

    #[test]
    fn debug_output_hides_secret_properties() {
        let args = KafkaArgs {
            brokers: "b:9092".to_string(),
            properties: vec![
                property("sasl.username=alice").unwrap(),
                property("sasl.password=hunter2").unwrap(),
                property("ssl.key.password=k3y").unwrap(),
                property("sasl.oauthbearer.client.secret=0auth").unwrap(),
            ],
        };
        let shown = format!("{args:?}");
        assert!(shown.contains("alice"), "{shown}");
        for secret in ["hunter2", "k3y", "0auth"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(shown.matches("[redacted]").count(), 3, "{shown}");
    }

    #[test]
    fn refusals_are_told_apart_from_absent_brokers() {
        let credentials = KafkaError::Global(RDKafkaErrorCode::Authentication);
        assert_eq!(
            Refusal::from_error(&credentials, "SASL authentication error"),
            Some(Refusal::Credentials("SASL authentication error".into()))
        );
        let tls = KafkaError::Global(RDKafkaErrorCode::SSL);
        assert!(matches!(
            Refusal::from_error(&tls, "x"),
            Some(Refusal::Tls(_))
        ));
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(Refusal::from_error(&down, "all brokers down"), None);
    }
}
