//! The MongoDB sink and checkpoints, against real servers (Apache Kafka from `scripts/kafka.sh`
//! and the MongoDB stand-in from `scripts/mongo.sh`, or `KAFKA_BROKERS` and `ROOMFLOW_TEST_MONGO`): replay writes the
//! final state; a job killed with SIGKILL and restarted several times ends with the same
//! collections as one never interrupted, resuming from checkpoints; a MongoDB outage mid-run
//! loses nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka::{apply_changes, brokers, publish, read_topic, require_broker, unique};
use common::mongo::{
    all_documents, assert_same_documents, checkpoint_head, documents, mongo_uri, require_mongo,
};
use common::{lines, ok, simulate, two_process_hostfile};
use mongodb::bson::{Bson, Document};
use rand::Rng;
use serde_json::Value;

/// A job writing to database `db`, its stderr in `log` (process 0's; another's with its number
/// appended); killed with SIGKILL on drop.
struct Job {
    children: Vec<Child>,
}

/// Workers per process, and a hostfile for two processes (none: one process).
type Layout = (usize, Option<PathBuf>);

impl Job {
    fn spawn(topic: &str, group: &str, uri: &str, db: &str, log: &Path, extra: &[&str]) -> Job {
        Job::spawn_laid_out(topic, group, uri, db, log, extra, (2, None))
    }

    fn spawn_laid_out(
        topic: &str,
        group: &str,
        uri: &str,
        db: &str,
        log: &Path,
        extra: &[&str],
        (workers, hostfile): Layout,
    ) -> Job {
        let processes = if hostfile.is_some() { 2 } else { 1 };
        let children = (0..processes)
            .map(|process| {
                let log = match process {
                    0 => log.to_path_buf(),
                    _ => log.with_extension(format!("{process}.log")),
                };
                let mut command = Command::new(env!("CARGO_BIN_EXE_roomflow"));
                command
                    .args(["run", "--topics", topic, "--group", group])
                    // MongoDB checkpoints: the at-least-once job's way to restart exactly.
                    .args(["--alpha-guarantee", "at-least-once"])
                    .args(["-w", &workers.to_string()]);
                if let Some(hostfile) = &hostfile {
                    command.args(["-n", "2", "-p", &process.to_string()]);
                    command.args(["-h", hostfile.to_str().unwrap()]);
                }
                command
                    .args(["--alpha-topic", &format!("{group}.alpha")])
                    .args(["--dead-letter-topic", &format!("{group}.dead")])
                    .args(["--brokers", &brokers(), "--mongo", uri, "--mongo-db", db])
                    .args(["--checkpoint-interval", "200ms"])
                    .args(if extra.is_empty() {
                        &["--exit-when-idle", "2s"][..]
                    } else {
                        extra
                    })
                    // With where resumed partitions end, for when a restart does not progress.
                    .env(
                        "ROOMFLOW_LOG",
                        "roomflow=info,roomflow::kafka::partition=debug",
                    )
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(log).unwrap())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Job { children }
    }

    /// Whether every process has exited.
    fn finished(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|child| child.try_wait().unwrap().is_some())
    }

    /// Waits for a clean exit of every process.
    fn wait(mut self) {
        let deadline = Instant::now() + Duration::from_secs(240);
        for child in &mut self.children {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "the job failed: {status}");
                    break;
                }
                assert!(Instant::now() < deadline, "the job did not finish");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The three collections as the JSON outputs of `replay --out` give them, keyed like MongoDB.
fn replayed_documents(input: &Path, out: &Path) -> BTreeMap<&'static str, BTreeMap<String, Value>> {
    ok(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut collections = BTreeMap::new();
    for (collection, key_fields) in [
        ("room_averages", &["room", "sensor"][..]),
        ("window_averages", &["room", "sensor", "window_start"][..]),
        ("temperature_deltas", &["room", "ts"][..]),
    ] {
        let mut documents = BTreeMap::new();
        for record in lines(&out.join(format!("{collection}.jsonl"))) {
            let key: Vec<&Value> = key_fields.iter().map(|field| &record[*field]).collect();
            documents.insert(serde_json::to_string(&key).unwrap(), record);
        }
        collections.insert(collection, documents);
    }
    collections
}

/// A document as JSON, without `_id`.
fn json(document: &Document) -> Value {
    let mut document = document.clone();
    document.remove("_id");
    Bson::Document(document).into_relaxed_extjson()
}

fn fixture(dir: &Path, readings: &str, seed: &str) -> PathBuf {
    simulate(
        dir,
        "readings.jsonl",
        &["--rooms", "20", "--readings", readings, "--seed", seed],
    )
}

#[test]
fn replay_writes_one_document_per_key_equal_to_the_json_outputs() {
    require_mongo();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "5000", "11");
    let expected = replayed_documents(&input, &dir.path().join("out"));
    let db = unique("replay");
    let uri = mongo_uri();
    // Twice: the second replay replaces what the first wrote.
    for _ in 0..2 {
        ok(&[
            "replay",
            input.to_str().unwrap(),
            "--mongo",
            &uri,
            "--mongo-db",
            &db,
            "-w",
            "2",
        ]);
    }
    for (collection, expected) in expected {
        let written = documents(&uri, &db, collection);
        assert_eq!(written.len(), expected.len(), "{collection}");
        for (id, record) in expected {
            let document = written
                .get(&id)
                .unwrap_or_else(|| panic!("{collection} {id}"));
            assert_eq!(json(document), record, "{collection} {id}");
        }
    }
    let dead = lines(&dir.path().join("out/dead_letters.jsonl"));
    let written = documents(&uri, &db, "dead_letters");
    assert_eq!(written.len(), dead.len());
    for record in dead {
        let document = &written[record["source"].as_str().unwrap()];
        assert_eq!(json(document), record);
    }
}

#[test]
fn a_job_killed_at_random_points_ends_with_the_collections_of_an_uninterrupted_run() {
    let (resumed, restarts) = killed_and_restarted("40000", 4, |_| (2, None));
    assert!(
        resumed >= 2,
        "only {resumed} of {restarts} restarts resumed from a checkpoint"
    );
}

/// A portfolio grows: the job checkpointed with two workers resumes with three, then as two
/// processes of one worker, then as one process of one worker, each killed at a random point
/// after a new checkpoint (the last run goes to the end): its collections and alpha end as an
/// uninterrupted run's.
#[test]
fn a_changed_layout_resumes_every_checkpoint_and_ends_identical() {
    let hosts = tempfile::tempdir().unwrap();
    let hostfile = two_process_hostfile(hosts.path());
    let layouts = [(2, None), (3, None), (1, Some(hostfile)), (1, None)];
    let (resumed, _) = killed_and_restarted("40000", 3, |start| layouts[start].clone());
    assert!(
        resumed >= 2,
        "only {resumed} starts resumed from a checkpoint"
    );
}

/// The soak (`scripts/soak.sh`, not part of the test command: minutes long): the job killed
/// with SIGKILL `SOAK_KILLS` times (default 10) at random points of a run over `SOAK_READINGS`
/// readings (default 1,000,000), every restart resuming from a checkpoint, and its collections and
/// alpha topic ending identical to an uninterrupted run's.
#[test]
#[ignore = "minutes long: run by scripts/soak.sh"]
fn soak_many_sigkills_each_restart_resumes_and_ends_identical() {
    let readings = std::env::var("SOAK_READINGS").unwrap_or_else(|_| "1000000".into());
    let kills: usize = std::env::var("SOAK_KILLS").map_or(10, |kills| kills.parse().unwrap());
    let began = Instant::now();
    let (resumed, restarts) = killed_and_restarted(&readings, kills, |_| (2, None));
    eprintln!(
        "soak: {restarts} SIGKILLs over {readings} readings, {resumed}/{restarts} restarts \
         resumed from a checkpoint, collections and alpha identical to an uninterrupted run \
         ({:.0} s)",
        began.elapsed().as_secs_f64()
    );
    assert_eq!(
        restarts, kills,
        "the job finished before it was killed {kills} times"
    );
    assert_eq!(
        resumed, restarts,
        "a restart did not resume from a checkpoint"
    );
}

/// Runs the job over `readings` uninterrupted, and again killed (SIGKILL) at up to `kills` random
/// points, each after a new checkpoint, then to the end; asserts both end with the same
/// collections and the same alpha state. Returns how many restarts resumed from a checkpoint,
/// and how many restarts there were (one per kill). Each start is laid out as `layout` says for
/// its number (the last start's is `kills`).
fn killed_and_restarted(
    readings: &str,
    kills: usize,
    layout: impl Fn(usize) -> Layout,
) -> (usize, usize) {
    require_broker();
    require_mongo();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), readings, "12");
    let topic = unique("sensors");
    // One partition per worker: each worker's progress follows its own partition.
    publish(&input, &topic, "2");
    let uri = mongo_uri();

    let reference = unique("uninterrupted");
    Job::spawn(
        &topic,
        &reference,
        &uri,
        &reference,
        &dir.path().join("reference.log"),
        &[],
    )
    .wait();

    let killed = unique("killed");
    let mut rng = rand::thread_rng();
    let (mut resumed, mut restarts) = (0, 0);
    let generation = |head: Option<Document>| head.map(|h| h.get("generation").cloned());
    for attempt in 0..kills {
        let log = dir.path().join(format!("killed-{attempt}.log"));
        let before = generation(checkpoint_head(&uri, &killed, &killed));
        let laid_out = layout(attempt);
        let mut job = Job::spawn_laid_out(&topic, &killed, &uri, &killed, &log, &[], laid_out);
        // Kill at a random point after the job has written a new checkpoint, so that every
        // restart has something to resume from (and finds the job's output ahead of it).
        let deadline = Instant::now() + Duration::from_secs(120);
        while generation(checkpoint_head(&uri, &killed, &killed)) == before {
            assert!(
                Instant::now() < deadline,
                "no checkpoint written; the job's log:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
            if job.finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..1_500)));
        let finished = job.finished();
        drop(job); // SIGKILL
        restarts += usize::from(!finished);
        if std::fs::read_to_string(&log)
            .unwrap()
            .contains("resuming from the checkpoint")
        {
            resumed += 1;
        }
        if finished {
            break;
        }
    }
    let last_log = dir.path().join("last.log");
    let laid_out = layout(kills);
    Job::spawn_laid_out(&topic, &killed, &uri, &killed, &last_log, &[], laid_out).wait();
    if std::fs::read_to_string(&last_log)
        .unwrap()
        .contains("resuming from the checkpoint")
    {
        resumed += 1;
    }

    assert_same_documents(
        &all_documents(&uri, &reference),
        &all_documents(&uri, &killed),
    );
    assert!(checkpoint_head(&uri, &killed, &killed).is_some());

    // The alpha topic, applied in order by key, ends in the same state as the uninterrupted
    // job's, despite the changes repeated after each restart.
    let rebuilt = apply_changes(&read_topic(&format!("{killed}.alpha")));
    let reference_rebuilt = apply_changes(&read_topic(&format!("{reference}.alpha")));
    assert_eq!(rebuilt.len(), reference_rebuilt.len());
    for (key, value) in &reference_rebuilt {
        assert_eq!(rebuilt.get(key), Some(value), "{key:?}");
    }
    (resumed, restarts)
}

/// A server of its own, on a free port, with a store that survives a stop.
struct OwnServer {
    port: u16,
    state: PathBuf,
}

impl OwnServer {
    fn script(&self, action: &str) {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mongo.sh"))
            .arg(action)
            .env("MONGO_PORT", self.port.to_string())
            .env("MONGO_STATE", &self.state)
            .env("MONGO_STORE", self.state.join("store.db"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/mongo.sh {action}");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.script("stop");
    }
}

#[test]
fn a_mongodb_outage_mid_run_loses_nothing() {
    require_broker();
    require_mongo();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "30000", "13");
    let expected = replayed_documents(&input, &dir.path().join("out"));
    // The first half before the outage, the second during it: the job has writes to retry.
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = (
        dir.path().join("first.jsonl"),
        dir.path().join("second.jsonl"),
    );
    std::fs::write(&first, lines[..15_000].join("\n") + "\n").unwrap();
    std::fs::write(&second, lines[15_000..].join("\n") + "\n").unwrap();
    let topic = unique("sensors");
    publish(&first, &topic, "2");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = OwnServer {
        port,
        state: dir.path().join("mongo"),
    };
    server.script("start");
    let uri = format!("mongodb://127.0.0.1:{port}");
    let group = unique("outage");
    let log = dir.path().join("job.log");
    // Idle long enough to outlast the outage below before the second half arrives (however slow
    // a loaded machine is); the job stops on its own once it has read and written everything.
    let job = Job::spawn(
        &topic,
        &group,
        &uri,
        "roomflow",
        &log,
        &["--exit-when-idle", "20s"],
    );
    let wait_for = |what: &str, condition: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !condition() {
            assert!(Instant::now() < deadline, "waited too long for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the first writes", &|| {
        !documents(&uri, "roomflow", "room_averages").is_empty()
    });
    server.script("stop");
    publish(&second, &topic, "2");
    // MongoDB stays away until the job has tried to write and failed.
    wait_for("a failed write", &|| {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("cannot write to MongoDB; retrying")
    });
    std::thread::sleep(Duration::from_secs(2));
    server.script("start");
    job.wait();
    for (collection, expected) in expected {
        let written = documents(&uri, "roomflow", collection);
        assert_eq!(written.len(), expected.len(), "{collection}");
        for (id, record) in expected {
            assert_eq!(json(&written[&id]), record, "{collection} {id}");
        }
    }
}

#[test]
fn a_job_killed_while_its_input_pauses_resumes_with_nothing_to_read_again() {
    // A paused stream closes its last tick after a tick of quiet, and one checkpoint then
    // covers everything read: a job killed during the pause has nothing to read again. (Before,
    // checkpoints waited at the held tick until new messages came, and a restart re-read from
    // the last one written while reading.)
    require_broker();
    require_mongo();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "3000", "21");
    let topic = unique("sensors");
    publish(&input, &topic, "2");
    let (uri, group) = (mongo_uri(), unique("paused"));
    let log = dir.path().join("first.log");
    let job = Job::spawn(&topic, &group, &uri, &group, &log, &["--from", "earliest"]);
    // Every message read, then quiet: wait for the checkpoint that covers it all (its log line
    // after the last message's), with time to spare for one that should not come.
    let deadline = Instant::now() + Duration::from_secs(60);
    let replayed = replayed_documents(&input, &dir.path().join("replay"));
    while all_documents(&uri, &group)["room_averages"].len() < replayed["room_averages"].len()
        || !std::fs::read_to_string(&log)
            .unwrap()
            .contains("checkpoint written")
    {
        assert!(
            Instant::now() < deadline,
            "no checkpoint after the input; the job's log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    drop(job); // SIGKILL

    let log = dir.path().join("restart.log");
    Job::spawn(&topic, &group, &uri, &group, &log, &[]).wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("resuming from the checkpoint"), "{text}");
    assert!(text.contains("offsets committed messages=0 "), "{text}");
}
