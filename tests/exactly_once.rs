//! `roomflow run` exactly-once (the default, run here without the flag) against Apache Kafka (the one `scripts/test.sh`
//! starts, or `KAFKA_BROKERS`): killed with SIGKILL again and again, on one process or two, or
//! fenced by a second copy, the job's alpha topic read `read_committed` holds every change
//! exactly once, in time order per key, and applying it gives `roomflow replay`'s state; every
//! dead letter is there once; MongoDB, written by the killed job, ends with the collections of an
//! uninterrupted run. What a `read_uncommitted` reader sees is counted and printed: it has
//! repeats, which is what the committed read must not have.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka::{
    apply_changes, assert_same_state, brokers, publish, read_topic, read_topic_committed,
    replayed_state, require_broker, unique, wait_for_state, Record,
};
use common::mongo::{all_documents, assert_same_documents, mongo_uri, require_mongo};
use common::{lines, quiet_fixture, simulate, two_process_hostfile};
use rand::Rng;
use serde_json::Value;

/// One exactly-once run of the job (its processes and their log files); killed (SIGKILL) when
/// dropped.
struct Run(Vec<Child>, Vec<PathBuf>);

/// How a run's workers are laid out: `workers` per process, and one process or two (with a
/// hostfile).
#[derive(Clone, Copy)]
struct Layout<'a> {
    workers: usize,
    hostfile: Option<&'a Path>,
}

/// One process of two workers.
const ONE_PROCESS: Layout<'static> = Layout {
    workers: 2,
    hostfile: None,
};

impl Run {
    /// Starts the job on `topic` with `group`, laid out as `layout` says, logging to `log` (with
    /// the process number appended); with `mongo`, it also writes to that server, in a database
    /// named after the group.
    fn start(topic: &str, group: &str, log: &Path, layout: Layout, mongo: Option<&str>) -> Run {
        let hostfile = layout.hostfile;
        let processes = if hostfile.is_some() { 2 } else { 1 };
        let logs: Vec<PathBuf> = (0..processes)
            .map(|process| log.with_extension(format!("{process}.log")))
            .collect();
        let children = (0..processes)
            .map(|process| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_roomflow"));
                command
                    .args(["run", "--topics", topic, "--group", group])
                    .args(["-w", &layout.workers.to_string()])
                    .args(["--alpha-topic", &format!("{group}.alpha")])
                    .args(["--dead-letter-topic", &format!("{group}.dead")])
                    .args(["--brokers", &brokers()])
                    .args(["--exit-when-idle", "2s"])
                    // A catch-up commits every ten intervals (1 s at the default 100 ms): the
                    // whole fixture is a catch-up, over in a few seconds, and the kills must land
                    // between commits while it runs, not after it has ended.
                    .args(["--commit-interval", "20ms"]);
                if let Some(hostfile) = hostfile {
                    command.args(["-n", "2", "-p", &process.to_string()]);
                    command.args(["-h", hostfile.to_str().unwrap()]);
                }
                if let Some(uri) = mongo {
                    command.args(["--mongo", uri, "--mongo-db", group]);
                }
                command
                    .env("ROOMFLOW_LOG", "roomflow=info")
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&logs[process]).unwrap())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Run(children, logs)
    }

    /// Whether every process has exited.
    fn finished(&mut self) -> bool {
        self.0
            .iter_mut()
            .all(|child| child.try_wait().unwrap().is_some())
    }

    /// Waits for the end; every process must succeed.
    fn wait(mut self) {
        let deadline = Instant::now() + Duration::from_secs(240);
        for (child, log) in self.0.iter_mut().zip(&self.1) {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "the job failed: {status}\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                    break;
                }
                assert!(Instant::now() < deadline, "the job did not finish");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every (message key, dataflow time) of `records`, with how often each occurs.
fn change_counts(records: &[Record]) -> BTreeMap<(Vec<u8>, u64), usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        let change: Value = serde_json::from_slice(&record.payload).unwrap();
        let time = change["time"].as_u64().unwrap();
        *counts
            .entry((record.key.clone().unwrap(), time))
            .or_default() += 1;
    }
    counts
}

/// Checks what a read_committed consumer of the group's topics sees: each change once, times
/// increasing per key, the replayed state, every dead letter once. Returns the repeats a
/// read_uncommitted consumer sees.
fn assert_exactly_once(group: &str, input: &Path, dir: &Path) -> usize {
    let committed = read_topic_committed(&format!("{group}.alpha"));
    let repeated: Vec<_> = change_counts(&committed)
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .collect();
    assert!(
        repeated.is_empty(),
        "{} changes repeated on the read_committed alpha, e.g. {:?}",
        repeated.len(),
        repeated.first()
    );
    let mut newest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for record in &committed {
        let change: Value = serde_json::from_slice(&record.payload).unwrap();
        let time = change["time"].as_u64().unwrap();
        if let Some(before) = newest.insert(record.key.clone().unwrap(), time) {
            assert!(
                before < time,
                "a key's time went back from {before} to {time}"
            );
        }
    }
    let replayed = replayed_state(&[input], &dir.join("replay"));
    assert_same_state(&apply_changes(&committed), &replayed);

    let dead = read_topic_committed(&format!("{group}.dead"));
    let places: BTreeSet<(String, String, String)> = dead
        .iter()
        .map(|record| {
            (
                record.headers["roomflow.topic"].clone(),
                record.headers["roomflow.partition"].clone(),
                record.headers["roomflow.offset"].clone(),
            )
        })
        .collect();
    assert_eq!(places.len(), dead.len(), "a dead letter repeated");
    let expected = lines(&dir.join("replay/dead_letters.jsonl")).len()
        + lines(&dir.join("replay/late.jsonl")).len();
    assert_eq!(dead.len(), expected, "dead letters and late readings");

    let uncommitted = read_topic(&format!("{group}.alpha"));
    change_counts(&uncommitted)
        .values()
        .map(|count| count - 1)
        .sum()
}

/// How many transactions `group`'s job has committed: its progress records, read_committed.
fn commits(group: &str) -> usize {
    read_topic_committed(&format!("roomflow.{group}.state"))
        .iter()
        .filter(|record| record.key.as_deref() == Some(&b"\"progress\""[..]))
        .count()
}

/// Runs the job on `topic` as `group`, killing it at `kills` random points, then to the end,
/// each start laid out as `layout` says for its number (the last start's is `kills`); how many
/// starts resumed from a committed transaction.
fn run_with_kills<'a>(
    topic: &str,
    group: &str,
    dir: &Path,
    kills: usize,
    layout: impl Fn(usize) -> Layout<'a>,
    mongo: Option<&str>,
) -> usize {
    let mut rng = rand::thread_rng();
    let mut resumed = 0;
    let resumed_in = |log: &Path| {
        (0..2).any(|process| {
            std::fs::read_to_string(log.with_extension(format!("{process}.log")))
                .is_ok_and(|text| text.contains("resuming from the last transaction"))
        })
    };
    for attempt in 0..kills {
        let log = dir.join(format!("{group}-{attempt}"));
        let before = commits(group);
        let mut run = Run::start(topic, group, &log, layout(attempt), mongo);
        // Killed at a random point after a new commit, so that every restart has something new
        // to resume from: some kills land in the middle of a transaction, some right after one.
        let deadline = Instant::now() + Duration::from_secs(120);
        while commits(group) == before && !run.finished() {
            assert!(Instant::now() < deadline, "no transaction committed");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..1_500)));
        let finished = run.finished();
        drop(run);
        resumed += usize::from(resumed_in(&log));
        if finished {
            break;
        }
    }
    let log = dir.join(format!("{group}-last"));
    Run::start(topic, group, &log, layout(kills), mongo).wait();
    resumed + usize::from(resumed_in(&log))
}

fn fixture(dir: &Path) -> std::path::PathBuf {
    simulate(
        dir,
        "readings.jsonl",
        &[
            "--rooms",
            "12",
            "--readings",
            "60000",
            "--seed",
            "5",
            "--malformed",
            "0.002",
        ],
    )
}

#[test]
fn killed_at_random_points_a_read_committed_consumer_sees_every_change_once() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path());
    let topic = unique("sensors");
    publish(&input, &topic, "2");
    require_mongo();
    let uri = mongo_uri();
    let reference = unique("eo-uninterrupted");
    Run::start(
        &topic,
        &reference,
        &dir.path().join("reference"),
        ONE_PROCESS,
        Some(&uri),
    )
    .wait();
    let group = unique("eo");
    let resumed = run_with_kills(&topic, &group, dir.path(), 10, |_| ONE_PROCESS, Some(&uri));
    assert!(
        resumed >= 2,
        "only {resumed} starts resumed from a transaction"
    );
    let repeats = assert_exactly_once(&group, &input, dir.path());
    // MongoDB's writes are idempotent by key and a transaction commits only after them: the
    // killed job's collections end as the uninterrupted run's.
    assert_same_documents(
        &all_documents(&uri, &reference),
        &all_documents(&uri, &group),
    );
    eprintln!("read_uncommitted: {repeats} repeated changes; read_committed: none");
}

#[test]
fn two_processes_killed_together_still_deliver_every_change_once() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path());
    let topic = unique("sensors");
    publish(&input, &topic, "4");
    let group = unique("eo2");
    let hostfile = two_process_hostfile(dir.path());
    let two_processes = Layout {
        workers: 2,
        hostfile: Some(&hostfile),
    };
    let resumed = run_with_kills(&topic, &group, dir.path(), 4, |_| two_processes, None);
    assert!(
        resumed >= 2,
        "only {resumed} starts resumed from a transaction"
    );
    let repeats = assert_exactly_once(&group, &input, dir.path());
    eprintln!("two processes, read_uncommitted: {repeats} repeated changes");
}

/// A portfolio grows: the job checkpointed with two workers resumes with three, then as two
/// processes of one worker, then as one process of one worker, each killed at a random point
/// (the last run goes to the end). A read_committed consumer sees every change once, and
/// MongoDB ends as an uninterrupted run's.
#[test]
fn a_changed_layout_resumes_every_checkpoint_exactly() {
    require_broker();
    require_mongo();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path());
    let topic = unique("sensors");
    publish(&input, &topic, "4");
    let uri = mongo_uri();
    let reference = unique("eo-layout-uninterrupted");
    let log = dir.path().join("reference");
    Run::start(&topic, &reference, &log, ONE_PROCESS, Some(&uri)).wait();
    let hostfile = two_process_hostfile(dir.path());
    let layouts = [
        ONE_PROCESS,
        Layout {
            workers: 3,
            hostfile: None,
        },
        Layout {
            workers: 1,
            hostfile: Some(&hostfile),
        },
        Layout {
            workers: 1,
            hostfile: None,
        },
    ];
    let group = unique("eo-layout");
    let kills = layouts.len() - 1;
    let resumed = run_with_kills(
        &topic,
        &group,
        dir.path(),
        kills,
        |start| layouts[start],
        Some(&uri),
    );
    assert!(
        resumed >= 2,
        "only {resumed} starts resumed from a transaction"
    );
    assert_exactly_once(&group, &input, dir.path());
    assert_same_documents(
        &all_documents(&uri, &reference),
        &all_documents(&uri, &group),
    );
}

#[test]
fn a_second_copy_on_the_same_group_fences_the_first() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path());
    let topic = unique("sensors");
    publish(&input, &topic, "2");
    let group = unique("fenced");
    let first_log = dir.path().join("first");
    let mut first = Run::start(&topic, &group, &first_log, ONE_PROCESS, None);
    // Whichever copy starts its transactions last fences the other: the second starts once the
    // first has (it logs its start after fencing any earlier producer), not after a guessed
    // delay that a loaded machine overruns.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&first.1[0]).is_ok_and(|log| log.contains("run starting")) {
        assert!(Instant::now() < deadline, "the first copy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let second = Run::start(
        &topic,
        &group,
        &dir.path().join("second"),
        ONE_PROCESS,
        None,
    );
    second.wait();
    // The first stops with an error saying why, or had finished before the second began.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = first.0[0].try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the fenced copy did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(first_log.with_extension("0.log")).unwrap();
    // Fenced, it says so in its log and in its exit status (3: a supervisor must not restart
    // it, or the two would fence each other in turn).
    assert!(
        status.success() || (status.code() == Some(3) && log.contains("fenced")),
        "the first copy failed without saying it was fenced: {status}\n{log}"
    );
    if !status.success() {
        eprintln!("the first copy stopped: fenced");
    }
    assert_exactly_once(&group, &input, dir.path());
}

#[test]
fn when_the_input_pauses_the_last_changes_are_committed_before_any_new_message() {
    // The newest tick closes after a tick of quiet and one mark goes past it: a read_committed
    // consumer gets the whole state during the pause (before, the last transaction stayed open
    // until the next message).
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = quiet_fixture(dir.path(), "600");
    let topic = unique("sensors");
    publish(&input, &topic, "2");
    let group = unique("eo-paused");
    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    let log = dir.path().join("paused");
    let mut command = Command::new(env!("CARGO_BIN_EXE_roomflow"));
    command
        .args(["run", "--topics", &topic, "-w", "2", "--group", &group])
        .args(["--alpha-topic", &format!("{group}.alpha")])
        .args(["--dead-letter-topic", &format!("{group}.dead")])
        .args(["--brokers", &brokers()])
        .env("ROOMFLOW_LOG", "roomflow=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _job = Run(vec![command.spawn().unwrap()], vec![log.clone()]);
    wait_for_state(
        || apply_changes(&read_topic_committed(&format!("{group}.alpha"))),
        &replayed,
        || true,
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
}
