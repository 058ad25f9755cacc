//! End-to-end over TLS and SASL/SCRAM-SHA-512, against a broker of this test's own with a
//! `SASL_SSL` listener (`scripts/kafka.sh` with `KAFKA_SASL_SSL_PORT`: its CA and certificate are
//! made when it starts). `publish`, `simulate` and `run` connect with `-X` properties as a user
//! would; a wrong password fails each at start with a message that says so, well before the
//! connect timeout; and with every secret in play and every log at debug level (librdkafka's own
//! `debug=all` included), no output — stdout, stderr, the metrics and health endpoints, the
//! alpha topic — ever shows the Kafka password or a MongoDB URI's password.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::kafka::{apply_changes, assert_same_state, read_topic, replayed_state, unique};
use common::simulate;

const KAFKA_PASSWORD: &str = "kafka-Pa55word-seen-nowhere";
const MONGO_PASSWORD: &str = "mongo-Pa55word-seen-nowhere";

/// The `-X` properties of a TLS + SCRAM client of `broker` with `password`.
fn secure(broker: &Broker, password: &str) -> Vec<String> {
    let (port, _) = broker.sasl_ssl.as_ref().unwrap();
    [
        format!("--brokers=127.0.0.1:{port}"),
        "-Xsecurity.protocol=SASL_SSL".into(),
        "-Xsasl.mechanism=SCRAM-SHA-512".into(),
        "-Xsasl.username=roomflow".into(),
        format!("-Xsasl.password={password}"),
        format!("-Xssl.ca.location={}", broker.ca().display()),
    ]
    .into()
}

/// Runs roomflow with `args` at debug level, its whole output kept for the secrets search.
fn roomflow_debug(args: &[String], transcript: &mut String) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(args)
        .env("ROOMFLOW_LOG", "debug")
        .output()
        .unwrap();
    transcript.push_str(&String::from_utf8_lossy(&output.stdout));
    transcript.push_str(&String::from_utf8_lossy(&output.stderr));
    output
}

/// `GET path` on `address`, the whole answer (status line, headers, body), or `None` if nothing
/// listens yet.
fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn arguments(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

#[test]
fn tls_and_scram_carry_the_job_and_no_secret_is_ever_shown() {
    let dir = tempfile::tempdir().unwrap();
    // Ports of this test's own, away from scripts/test.sh's 19092, the benchmarks' 19600 and
    // the broker faults test's 20000-20999.
    let port = 21_000 + (std::process::id() % 300) as u16 * 3;
    let broker = Broker {
        port,
        state: dir.path().join("broker"),
        sasl_ssl: Some((port + 2, KAFKA_PASSWORD.to_string())),
        host: None,
    };
    broker.script("start");
    // The helpers read alpha back through the plaintext listener; this binary holds one test.
    std::env::set_var("KAFKA_BROKERS", broker.address());
    let mut transcript = String::new();

    // A wrong password: each command fails at start, says why, and does not wait for the
    // 10 s connect timeout.
    let input = simulate(
        dir.path(),
        "in.jsonl",
        &["--rooms", "6", "--readings", "6000"],
    );
    let wrong = secure(&broker, "not-the-password");
    let attempts = [
        vec!["publish", input.to_str().unwrap(), "--topic", "never"],
        vec!["simulate", "--topic", "never", "--readings", "10"],
        vec!["run", "--topics", "never", "--alpha-topic", "never-alpha"],
    ];
    for attempt in attempts {
        let mut args = arguments(&attempt);
        args.extend(wrong.iter().cloned());
        let began = Instant::now();
        let output = roomflow_debug(&args, &mut transcript);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{attempt:?} succeeded:\n{stderr}");
        assert!(
            stderr.contains("refused roomflow's credentials"),
            "{attempt:?}:\n{stderr}"
        );
        assert!(
            began.elapsed() < Duration::from_secs(8),
            "{attempt:?} took {:?}",
            began.elapsed()
        );
    }

    // The right one, with librdkafka's every debug context on.
    let mut right = secure(&broker, KAFKA_PASSWORD);
    right.push("-Xdebug=all".into());
    let (topic, live, alpha) = (unique("sensors"), unique("live"), unique("alpha"));
    let mut args = arguments(&["publish", input.to_str().unwrap(), "--topic", &topic]);
    args.extend(right.iter().cloned());
    let published = roomflow_debug(&args, &mut transcript);
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );

    let mut args = arguments(&[
        "simulate",
        "--topic",
        &live,
        "--readings",
        "500",
        "--rate",
        "5000",
    ]);
    args.extend(right.iter().cloned());
    let simulated = roomflow_debug(&args, &mut transcript);
    assert!(
        simulated.status.success(),
        "{}",
        String::from_utf8_lossy(&simulated.stderr)
    );
    assert_eq!(read_topic(&live).len(), 500);

    let metrics = format!("127.0.0.1:{}", free_port());
    let mut args = arguments(&[
        "run",
        "--alpha-guarantee",
        "at-least-once",
        "--topics",
        &topic,
        "--alpha-topic",
        &alpha,
        "--group",
        &unique("group"),
        "--metrics",
        &metrics,
        "--exit-when-idle",
        "5s",
    ]);
    args.extend(right.iter().cloned());
    let log = dir.path().join("job.log");
    let mut job = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(&args)
        .env("ROOMFLOW_LOG", "debug")
        .stdout(std::fs::File::create(dir.path().join("job.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The endpoints, while the job runs.
    let began = Instant::now();
    let mut scraped = String::new();
    // Until the job has recorded something (the endpoint answers empty before).
    while !scraped.contains("roomflow_") && began.elapsed() < Duration::from_secs(30) {
        scraped = http_get(&metrics, "/metrics").unwrap_or_default();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scraped.contains("roomflow_"), "{scraped}");
    transcript.push_str(&scraped);
    for path in ["/livez", "/readyz"] {
        transcript.push_str(&http_get(&metrics, path).unwrap_or_default());
    }
    let status = job.wait().unwrap();
    let job_log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{job_log}");
    transcript.push_str(&job_log);
    transcript.push_str(&std::fs::read_to_string(dir.path().join("job.out")).unwrap());

    // Everything went through TLS and SCRAM: alpha holds replay's state.
    let records = read_topic(&alpha);
    for record in &records {
        transcript.push_str(&String::from_utf8_lossy(&record.payload));
    }
    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    assert_same_state(&apply_changes(&records), &replayed);

    // A MongoDB URI with a password: refused here (the stand-in has no users), and the refusal,
    // at debug level, names the server without the password.
    let uri = format!(
        "mongodb://roomflow:{MONGO_PASSWORD}@127.0.0.1:{}/",
        free_port()
    );
    let mongo = roomflow_debug(
        &arguments(&["replay", input.to_str().unwrap(), "--mongo", &uri]),
        &mut transcript,
    );
    assert!(!mongo.status.success());
    assert!(
        String::from_utf8_lossy(&mongo.stderr).contains("roomflow:***@127.0.0.1"),
        "{}",
        String::from_utf8_lossy(&mongo.stderr)
    );

    // The search: long enough to be sure something was looked through.
    assert!(
        transcript.len() > 100_000,
        "only {} bytes of output",
        transcript.len()
    );
    for secret in [KAFKA_PASSWORD, MONGO_PASSWORD] {
        if let Some(at) = transcript.find(secret) {
            let from = (0..=at.saturating_sub(300))
                .rev()
                .find(|&index| transcript.is_char_boundary(index))
                .unwrap_or(0);
            panic!("{secret} shown: …{}", &transcript[from..at + secret.len()]);
        }
    }
}
