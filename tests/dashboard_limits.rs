//! `roomflow dashboard` against hostile input and clients: connections that never send their
//! headers, a changes file of huge lines and names, a changes file that stops being a regular
//! file, hosts it does not know. What it holds and answers stays bounded; it never stops
//! answering or following.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use common::dashboard::*;

/// One GET with `host` as its Host header and a read timeout: the status and the head, or why
/// there was no answer.
fn get_as(
    address: &str,
    path: &str,
    host: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("no answer within {timeout:?}: {e}"))?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let head = response.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or(head.clone())?;
    Ok((status, head))
}

/// A changes file of one room, for a dashboard to show.
fn one_room(dir: &Path) -> std::path::PathBuf {
    let changes = dir.join("changes.jsonl");
    append(&changes, &[room_average("lab", "co2", 2, 900.0, 60_000)]);
    changes
}

#[test]
fn silent_connections_neither_keep_livez_waiting_nor_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let changes = one_room(dir.path());
    // A container's open-file limit, lowered below the silent connections: accepting all of them
    // would run out of files.
    let dashboard = Dashboard::start_with(&["--changes", changes.to_str().unwrap()], Some(128));
    let silent: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(&dashboard.address).unwrap();
            // Headers begun, never finished.
            stream
                .write_all(b"GET /api/building HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            stream
        })
        .collect();
    let asked = Instant::now();
    let answer = get_as(
        &dashboard.address,
        "/livez",
        "127.0.0.1",
        Duration::from_secs(2),
    );
    assert_eq!(
        answer.map(|(status, _)| status),
        Ok(200),
        "200 silent connections open"
    );
    assert!(asked.elapsed() < Duration::from_secs(2));
    // Past the header timeout (5 s), none of them is held.
    std::thread::sleep(Duration::from_secs(8));
    let mut held = 0;
    for mut stream in silent {
        stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut buffer = [0u8; 512];
        // Closed: end of stream (perhaps after a 408), or reset.
        let closed = loop {
            match stream.read(&mut buffer) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(error) => {
                    break !matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        };
        held += usize::from(!closed);
    }
    assert_eq!(held, 0, "connections still open after the header timeout");
    // And the dashboard still serves.
    assert_eq!(dashboard.json("/api/building")["counters"]["rooms"], 1);
}

#[test]
fn huge_lines_names_and_errors_are_refused_and_what_is_kept_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path().join("changes.jsonl");
    let huge_room = "r".repeat(5 << 20);
    let long_room = "n".repeat(300);
    let long_collection = "c".repeat(600 << 10);
    let mut file = String::new();
    for line in [
        room_average("lab", "co2", 2, 900.0, 60_000),
        // 10 MB in one line, read in one 16 MiB chunk: the limit was skipped.
        room_average(&huge_room, "co2", 1, 1.0, 60_000),
        // Under the line limit, over the job's name limit (256 bytes).
        room_average(&long_room, "co2", 1, 1.0, 60_000),
        room_average("lab", &long_room, 1, 1.0, 60_000),
        // An error quoting 600 KiB of its input.
        json!({"collection": long_collection, "operation": "delete", "key": {}, "time": 1})
            .to_string(),
        room_average("hall", "co2", 1, 400.0, 60_000),
    ] {
        file.push_str(&line);
        file.push('\n');
    }
    std::fs::write(&changes, file).unwrap();
    // A dead letter naming the long room, with a source, a reason and a line of 300 KiB each.
    std::fs::write(
        dir.path().join("dead_letters.jsonl"),
        format!(
            "{}\n",
            json!({"source": "s".repeat(300 << 10), "reason": "x".repeat(300 << 10),
                   "line": format!("{{\"room\": \"{long_room}\"}}{}", "l".repeat(300 << 10))})
        ),
    )
    .unwrap();

    let dashboard = Dashboard::start(&["--changes", changes.to_str().unwrap()]);
    let building = dashboard.building_when(Duration::from_secs(10), |b| {
        b["counters"]["malformed_changes"] == 4 && b["counters"]["dead_letters"]["total"] == 1
    });
    let rooms: Vec<&str> = building["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, vec!["hall", "lab"]);
    let (_, body) = dashboard.get("/api/building");
    assert!(
        body.len() < 64 << 10,
        "/api/building is {} bytes",
        body.len()
    );
    let errors: Vec<&str> = building["counters"]["malformed_recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["error"].as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("longer than 1048576 bytes")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("room name of 300 bytes")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("sensor name of 300 bytes")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("unknown collection `ccc")),
        "{errors:?}"
    );

    // Eight pages that never read their event stream hold one bounded event each.
    let streams: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(&dashboard.address).unwrap();
            write!(
                stream,
                "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            .unwrap();
            stream
        })
        .collect();
    for _ in 0..20 {
        append(&changes, &[room_average("hall", "co2", 2, 800.0, 120_000)]);
        std::thread::sleep(Duration::from_millis(110));
    }
    let peak = peak_rss_bytes(dashboard.job.0.id());
    assert!(peak < 100 << 20, "peak RSS {} MB", peak >> 20);
    drop(streams);
}

/// A process's peak resident memory (VmHWM), in bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[test]
fn a_changes_file_that_is_not_regular_is_refused_at_start_with_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.jsonl");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let device = dir.path().join("zero.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &device).unwrap();
    for (path, what) in [
        (fifo, "a FIFO"),
        (device, "a device"),
        (dir.path().to_path_buf(), "a directory"),
    ] {
        let output = common::roomflow(&[
            "dashboard",
            "--changes",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains(what) && stderr.contains("not a regular file"),
            "{stderr}"
        );
    }
}

#[test]
fn a_changes_file_that_stops_being_regular_is_refused_and_the_others_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let changes = one_room(dir.path());
    let dead_letters = dir.path().join("dead_letters.jsonl");
    let dashboard = Dashboard::start(&["--changes", changes.to_str().unwrap()]);
    dashboard.building_when(Duration::from_secs(10), |b| b["counters"]["rooms"] == 1);

    // The dead letters become a FIFO (opening it would wait for a writer for good) ...
    assert!(std::process::Command::new("mkfifo")
        .arg(&dead_letters)
        .status()
        .unwrap()
        .success());
    // ... and the changes, a link to /dev/zero (endless, and of size 0: it looked cut short).
    let replacement = dir.path().join("replacement");
    std::os::unix::fs::symlink("/dev/zero", &replacement).unwrap();
    std::fs::rename(&replacement, &changes).unwrap();
    let building = dashboard.building_when(Duration::from_secs(10), |b| {
        b["counters"]["malformed_recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["error"].as_str().unwrap().contains("not a regular file"))
            .count()
            == 2
    });
    assert_eq!(building["counters"]["rooms"], 0);
    // It does not start over and over.
    let version = building["version"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let later = dashboard.json("/api/building")["version"].as_u64().unwrap();
    assert!(later - version < 5, "version {version} -> {later} in 1 s");

    // A regular file again: followed from its beginning.
    std::fs::remove_file(&changes).unwrap();
    append(&changes, &[room_average("hall", "co2", 1, 400.0, 60_000)]);
    dashboard.building_when(Duration::from_secs(10), |b| {
        b["rooms"].as_array().unwrap().len() == 1 && b["rooms"][0]["room"] == "hall"
    });
}

#[test]
fn hosts_it_does_not_know_are_refused_and_every_answer_carries_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let changes = one_room(dir.path());
    let dashboard = Dashboard::start(&[
        "--changes",
        changes.to_str().unwrap(),
        "--allowed-host",
        "dashboard.example.org",
    ]);
    let timeout = Duration::from_secs(10);
    for (host, path, want) in [
        ("attacker.example", "/api/building", 403),
        ("attacker.example:8080", "/", 403),
        ("attacker.example", "/livez", 200),
        ("dashboard.example.org:8080", "/api/building", 200),
        ("localhost:8080", "/", 200),
        ("127.0.0.1", "/assets/common.js", 200),
    ] {
        let (status, head) = get_as(&dashboard.address, path, host, timeout).unwrap();
        assert_eq!(status, want, "{host} {path}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{head}"
        );
    }
}

#[test]
fn rooms_named_dot_and_dot_dot_have_their_own_pages_api() {
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path().join("changes.jsonl");
    append(
        &changes,
        &[
            room_average(".", "co2", 1, 100.0, 60_000),
            room_average("..", "co2", 1, 200.0, 60_000),
            room_average("~..", "co2", 1, 300.0, 60_000),
            window("..", ".", 0, 1, 200.0, 60_000),
        ],
    );
    let dashboard = Dashboard::start(&["--changes", changes.to_str().unwrap()]);
    dashboard.building_when(Duration::from_secs(10), |b| b["counters"]["rooms"] == 3);
    // As the pages write them (common.js `segment`): one "~" more before a name of dots.
    for (segment, room, sum) in [
        ("~.", ".", 100.0),
        ("~..", "..", 200.0),
        ("~~..", "~..", 300.0),
    ] {
        let view = dashboard.json(&format!("/api/rooms/{segment}"));
        assert_eq!(view["room"], room);
        assert_eq!(sensor(&view, "co2")["all_time"]["sum"], sum);
    }
    let (status, body) = dashboard.get("/api/rooms/~../sensors/~./chart");
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("<svg"));
}
