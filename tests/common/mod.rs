//! Helpers shared by the end-to-end tests: run the binary, read its outputs, make fixtures.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod broker;
pub mod dashboard;
pub mod kafka;
pub mod mongo;

/// A roomflow process in the background, killed if the test fails before it stops.
pub struct Job(pub std::process::Child);

impl Job {
    /// Sends SIGTERM and waits: whether the process then exited successfully.
    pub fn terminate(&mut self) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        sent.success() && self.0.wait().expect("the job can be waited for").success()
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary with `args`, whatever the outcome.
pub fn roomflow(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(args)
        .env("ROOMFLOW_LOG", "error")
        .output()
        .expect("roomflow runs");
    output
}

/// Runs the binary with `args` and fails the test, showing stderr, unless it succeeds.
pub fn ok(args: &[&str]) -> Output {
    let output = roomflow(args);
    assert!(
        output.status.success(),
        "roomflow {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The JSON objects of a `.jsonl` file, one per line.
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The sorted lines of every output file of a run, by file name.
pub fn outputs(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mut content: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        content.sort();
        files.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            content,
        );
    }
    files
}

/// Writes a simulated fixture `name` into `dir`, with extra `simulate` flags.
pub fn simulate(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["simulate", "--out", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(&args);
    path
}

/// Hundredths of a unit, exactly: simulated values have two decimals.
pub fn hundredths(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 100.0).round() as i64
}

/// A timely hostfile in `dir` naming two free local ports, for a two-process run.
pub fn two_process_hostfile(dir: &Path) -> PathBuf {
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let hostfile = dir.join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    hostfile
}

/// Waits for `child` to exit, for at most `limit`: its status; past that it is killed and the
/// test fails saying `what` did not finish.
pub fn exit_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A small recording that a running job reads and then waits on: `readings` readings of 3
/// rooms, none late or malformed, in `dir`.
pub fn quiet_fixture(dir: &Path, readings: &str) -> PathBuf {
    simulate(
        dir,
        "paused.jsonl",
        &[
            "--rooms",
            "3",
            "--readings",
            readings,
            "--late",
            "0",
            "--malformed",
            "0",
        ],
    )
}
