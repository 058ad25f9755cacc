//! A broker of a test's own: `scripts/kafka.sh` on ports of its own (so the other tests' broker is
//! never touched), started, stopped and killed by the test, stopped when it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A local Apache Kafka owned by one test.
pub struct Broker {
    /// The plaintext listener; the controller listens on the next port.
    pub port: u16,
    /// Its log directory, pid, log and (with TLS) certificates.
    pub state: PathBuf,
    /// With `Some((port, password))`, also a TLS + SASL/SCRAM-SHA-512 listener on `port` for the
    /// user `roomflow`.
    pub sasl_ssl: Option<(u16, String)>,
    /// The address the plaintext listener binds and advertises (`None`: 127.0.0.1).
    pub host: Option<String>,
}

impl Broker {
    /// Runs `scripts/kafka.sh command` for this broker and asserts it succeeded.
    pub fn script(&self, command: &str) {
        let status = self.command(command).status().unwrap();
        assert!(status.success(), "scripts/kafka.sh {command}");
    }

    /// The plaintext bootstrap address.
    pub fn address(&self) -> String {
        format!(
            "{}:{}",
            self.host.as_deref().unwrap_or("127.0.0.1"),
            self.port
        )
    }

    /// The CA that signed the TLS listener's certificate.
    pub fn ca(&self) -> PathBuf {
        self.state.join("tls/ca.pem")
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.state.join("kafka.pid")).unwrap();
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn command(&self, command: &str) -> Command {
        let mut script =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh"));
        script
            .arg(command)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_STATE", &self.state)
            .env_remove("KAFKA_SASL_SSL_PORT")
            .env("KAFKA_HOST", self.host.as_deref().unwrap_or("127.0.0.1"))
            .stdout(Stdio::null());
        if let Some((port, password)) = &self.sasl_ssl {
            script
                .env("KAFKA_SASL_SSL_PORT", port.to_string())
                .env("KAFKA_SCRAM_USER", "roomflow")
                .env("KAFKA_SCRAM_PASSWORD", password);
        }
        script
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.command("stop").status();
    }
}
