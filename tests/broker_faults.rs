//! End-to-end against a broker of this test's own (`scripts/kafka.sh` on a port of its own, so
//! the other tests' broker is never touched): the broker stopped for 10 s while the job reads
//! and produces, and started again, then killed with SIGKILL and started again, both with the
//! same log directory. The job waits, says so in its log (without flooding it), resumes, and its
//! alpha topic applied by key equals a replay of everything.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::kafka::{
    apply_changes, assert_same_state, brokers, publish, read_topic, replayed_state, unique,
};
use common::simulate;

#[test]
fn the_broker_stopped_and_killed_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port of this test's own, away from scripts/test.sh's 19092 and the benchmarks' 19600.
    let broker = Broker {
        port: 20_000 + (std::process::id() % 500) as u16 * 2,
        state: dir.path().join("broker"),
        sasl_ssl: None,
        host: None,
    };
    broker.script("start");
    // The helpers read the broker from KAFKA_BROKERS; this binary holds only this test.
    std::env::set_var("KAFKA_BROKERS", format!("127.0.0.1:{}", broker.port));

    // Published whole before the job starts: a recording published while the job reads would
    // make partitions that reached their end resume at the job's time, and be late.
    let input = simulate(
        dir.path(),
        "in.jsonl",
        &["--rooms", "10", "--readings", "200000", "--late", "0.002"],
    );
    let (topic, alpha, group) = (unique("sensors"), unique("alpha"), unique("group"));
    publish(&input, &topic, "4");

    let log = dir.path().join("job.log");
    let mut job = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args([
            "run",
            "--alpha-guarantee",
            "at-least-once",
            "--topics",
            &topic,
            "--alpha-topic",
            &alpha,
            "--group",
            &group,
        ])
        .args([
            "--brokers",
            &brokers(),
            "-w",
            "2",
            // Idle counts while the broker is away too, once the partitions were read to their
            // end: longer than an outage and a restart.
            "--exit-when-idle",
            "30s",
        ])
        .env("ROOMFLOW_LOG", "warn,roomflow::run=info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Stopped while the job produces: once alpha holds its first changes, far from its last.
    let started = Instant::now();
    let mut produced = 0;
    while produced == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing reached alpha"
        );
        std::thread::sleep(Duration::from_millis(20));
        produced = messages_in(&alpha);
    }
    broker.script("stop");
    std::thread::sleep(Duration::from_secs(10));
    broker.script("start");
    std::thread::sleep(Duration::from_secs(2));
    broker.kill();
    std::thread::sleep(Duration::from_secs(10));
    broker.script("start");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = job.kill();
            panic!(
                "the job did not finish: {}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log_text}");
    // It said it was waiting, about once per 5 s per client rather than ten times a second.
    let down = log_text.matches("brokers are down").count();
    assert!(down >= 1, "{log_text}");
    assert!(down <= 40, "{down} lines about brokers down:\n{log_text}");
    // Every line was consumed.
    assert!(
        log_text.contains("offsets committed messages=200000 "),
        "{log_text}"
    );

    // The outage came while the job was producing, not after it.
    let in_the_end = messages_in(&alpha);
    eprintln!("alpha held {produced} messages when the broker stopped, {in_the_end} in the end");
    assert!(produced * 2 < in_the_end, "{produced} of {in_the_end}");

    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    // Shown when the state differs: the job's counts.
    eprintln!("{}", log_text.lines().last().unwrap_or_default());
    assert_same_state(&apply_changes(&read_topic(&alpha)), &replayed);
}

/// How many messages `topic` holds (the sum of its partitions' high watermarks; 0 while it does
/// not exist).
fn messages_in(topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return 0;
    };
    let Some(partitions) = metadata.topics().first().map(|t| t.partitions().len()) else {
        return 0;
    };
    (0..partitions as i32)
        .filter_map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .ok()
        })
        .map(|(_, high)| high)
        .sum()
}
