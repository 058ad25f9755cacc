//! End-to-end: inputs that are not plain files. A pipe (`<(zcat …)`), a named FIFO and stdin
//! (`-`), gzip or not, give exactly the outputs of the same recording read from its file: format
//! detection must not eat their first bytes. Directories are walked through symlinks, loops and
//! dangling links are reported with their path and skipped.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The bundled sample: 20,000 lines (1.5 MB of text, 290 KB compressed), far more than the
/// 64 KiB format detection looks at.
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/building.jsonl.gz");

fn sample_text() -> Vec<u8> {
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(SAMPLE).unwrap()),
        &mut text,
    )
    .unwrap();
    text
}

/// The outputs of a run, each file's lines sorted, with every `source` naming `input` renamed
/// to `INPUT` (a pipe's dead letters are located in the pipe, a file's in the file).
fn outputs_of(dir: &Path, input: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut files = outputs(dir);
    let quoted = format!("\"source\":\"{}:", input.replace('"', "\\\""));
    for lines in files.values_mut() {
        for line in lines.iter_mut() {
            *line = line.replace(&quoted, "\"source\":\"INPUT:");
        }
        lines.sort();
    }
    files
}

/// Replays the sample from its file: what every stream must come to.
fn from_the_file(dir: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = dir.join("file");
    ok(&["replay", SAMPLE, "--out", out.to_str().unwrap()]);
    let files = outputs_of(&out, SAMPLE);
    // The sample's dead letters are there, and each is located in the input.
    assert_eq!(files["dead_letters.jsonl"].len(), 17);
    assert!(files["dead_letters.jsonl"]
        .iter()
        .all(|line| line.contains("\"source\":\"INPUT:")));
    files
}

#[test]
fn a_pipe_gives_exactly_the_files_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let want = from_the_file(dir.path());
    let out = dir.path().join("pipe");
    // Process substitution: the input is /dev/fd/N, a pipe that can be read once.
    let script = format!(
        "exec \"$0\" replay <(zcat '{SAMPLE}') --out '{}' --progress never",
        out.display()
    );
    let output = Command::new("bash")
        .args(["-c", &script, env!("CARGO_BIN_EXE_roomflow")])
        .env("ROOMFLOW_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dead = lines(&out.join("dead_letters.jsonl"));
    let pipe = dead[0]["source"].as_str().unwrap();
    let pipe = &pipe[..pipe.rfind(':').unwrap()];
    assert!(pipe.starts_with("/dev/fd/"), "{pipe}");
    assert_eq!(outputs_of(&out, pipe), want);
}

/// Writes `bytes` into a new FIFO `name` in `dir` from a thread (the write blocks until a reader
/// opens it), and returns its path.
fn fifo_fed_with(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let fifo = dir.join(name);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let path = fifo.clone();
    std::thread::spawn(move || {
        let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // The reader may stop early only by failing: the test then fails on its exit status.
        let _ = writer.write_all(&bytes);
    });
    fifo
}

#[test]
fn a_fifo_gives_exactly_the_files_outputs_plain_or_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let want = from_the_file(dir.path());
    for (name, bytes) in [
        ("plain", sample_text()),
        // Compressed bytes through a FIFO without a `.gz` name: told by its magic bytes.
        ("compressed", std::fs::read(SAMPLE).unwrap()),
    ] {
        let fifo = fifo_fed_with(dir.path(), name, bytes);
        let out = dir.path().join(format!("{name}-out"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomflow"))
            .args(["replay", fifo.to_str().unwrap(), "--out"])
            .arg(&out)
            .env("ROOMFLOW_LOG", "error")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Opening a FIFO a second time waits for a writer that is gone: this hung for good.
        let status = exit_within(&mut child, Duration::from_secs(60), "a replay of a FIFO");
        assert!(status.success(), "{name}");
        assert_eq!(outputs_of(&out, fifo.to_str().unwrap()), want, "{name}");
    }
}

#[test]
fn stdin_gives_exactly_the_files_outputs_plain_or_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let want = from_the_file(dir.path());
    for (name, bytes) in [
        ("plain", sample_text()),
        ("compressed", std::fs::read(SAMPLE).unwrap()),
    ] {
        let out = dir.path().join(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomflow"))
            .args(["replay", "-", "--out"])
            .arg(&out)
            .env("ROOMFLOW_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&bytes));
        let status = exit_within(&mut child, Duration::from_secs(60), "a replay of stdin");
        writer.join().unwrap().unwrap();
        assert!(status.success(), "{name}");
        assert_eq!(outputs_of(&out, "-"), want, "{name}");
    }
}

#[test]
fn speed_paces_a_replay_of_stdin_alone_from_its_first_reading() {
    // The sample spans 1,240 s of event time: 1.24 s at --speed 1000. The clock started at
    // event time 0 when no file gave a first reading: the first reading was 54 years away.
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args(["replay", "-", "--speed", "1000", "--progress", "never"])
        .env("ROOMFLOW_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&sample_text()));
    let started = std::time::Instant::now();
    let status = exit_within(
        &mut child,
        Duration::from_secs(60),
        "a paced replay of stdin",
    );
    writer.join().unwrap().unwrap();
    assert!(status.success());
    // Paced, not as fast as possible: at least most of the 1.24 s.
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// A directory `top` of one file, a symlink to a subdirectory holding another, a symlink to a
/// file, a dangling symlink and a symlink back to `top` (a loop).
fn linked_tree(dir: &Path) -> PathBuf {
    let reading = |room: &str, ts: i64, value: f64| {
        format!("{{\"room\": \"{room}\", \"sensor\": \"co2\", \"ts\": {ts}, \"value\": {value}}}\n")
    };
    let top = dir.join("top");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&top).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(top.join("a.jsonl"), reading("a", 1_000, 400.0)).unwrap();
    std::fs::write(elsewhere.join("b.jsonl"), reading("b", 2_000, 500.0)).unwrap();
    std::fs::write(dir.join("c.jsonl"), reading("c", 3_000, 600.0)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, top.join("linked")).unwrap();
    std::os::unix::fs::symlink(dir.join("c.jsonl"), top.join("c-link.jsonl")).unwrap();
    std::os::unix::fs::symlink(dir.join("gone.jsonl"), top.join("dangling.jsonl")).unwrap();
    std::os::unix::fs::symlink(&top, elsewhere.join("back-to-top")).unwrap();
    top
}

#[test]
fn a_directory_walk_follows_symlinks_and_skips_loops_and_dangling_links_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let top = linked_tree(dir.path());
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_roomflow"))
        .args([
            "replay",
            top.to_str().unwrap(),
            "--progress",
            "never",
            "--out",
        ])
        .arg(&out)
        .env("ROOMFLOW_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // a directly, b through the linked directory, c through the linked file: each once.
    let rooms: Vec<(String, i64)> = lines(&out.join("room_averages.jsonl"))
        .iter()
        .map(|r| {
            (
                r["room"].as_str().unwrap().to_string(),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut rooms = rooms;
    rooms.sort();
    assert_eq!(
        rooms,
        vec![("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]
    );
    // The loop and the dangling link are named where they are.
    let dangling = top.join("dangling.jsonl").display().to_string();
    let back = top.join("linked/back-to-top").display().to_string();
    assert!(
        stderr.contains(&dangling) && stderr.contains("dangling symlink"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&back) && stderr.contains("symlink loop"),
        "{stderr}"
    );
}
