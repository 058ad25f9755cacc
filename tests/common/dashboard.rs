//! A `roomflow dashboard` started for a test, its API read over plain HTTP, and change envelopes
//! written by hand for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Job;

/// A dashboard started for a test, and where it serves.
pub struct Dashboard {
    pub job: Job,
    pub address: String,
}

impl Dashboard {
    pub fn start(args: &[&str]) -> Dashboard {
        Dashboard::start_with(args, None)
    }

    /// Starts a dashboard with `args`, its open-file limit (soft and hard) set to `open_files`.
    pub fn start_with(args: &[&str], open_files: Option<u64>) -> Dashboard {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roomflow"));
        command
            .arg("dashboard")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("ROOMFLOW_LOG", "warn")
            .stdout(Stdio::piped());
        if let Some(files) = open_files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: files,
                rlim_max: files,
            };
            // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent's.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("roomflow starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let job = Job(child);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the dashboard says where it is");
        let address = line
            .trim()
            .strip_prefix("roomflow dashboard: http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Dashboard { job, address }
    }

    /// GETs `path`: the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).expect("the dashboard listens");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let response = String::from_utf8(response).expect("a text response");
        let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
        let status = head[9..12].parse().expect("a status code");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    }

    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// The building, once `ready` holds of it (or a failure after `timeout`).
    pub fn building_when(&self, timeout: Duration, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let building = self.json("/api/building");
            if ready(&building) {
                return building;
            }
            assert!(
                Instant::now() < deadline,
                "not there after {timeout:?}: {building:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

pub fn envelope(collection: &str, key: Value, data: Option<Value>, time: i64) -> String {
    let operation = if data.is_some() { "upsert" } else { "delete" };
    json!({"collection": collection, "operation": operation, "key": key, "data": data, "time": time})
        .to_string()
}

pub fn window(room: &str, sensor: &str, start: i64, count: u64, sum: f64, time: i64) -> String {
    envelope(
        "window_averages",
        json!({"room": room, "sensor": sensor, "window_start": start}),
        Some(
            json!({"room": room, "sensor": sensor, "window_start": start, "count": count, "sum": sum, "avg": sum / count as f64}),
        ),
        time,
    )
}

pub fn room_average(room: &str, sensor: &str, count: u64, sum: f64, time: i64) -> String {
    envelope(
        "room_averages",
        json!({"room": room, "sensor": sensor}),
        Some(
            json!({"room": room, "sensor": sensor, "count": count, "sum": sum, "avg": sum / count as f64}),
        ),
        time,
    )
}

pub fn delta(room: &str, prev_ts: i64, ts: i64, prev_value: f64, value: f64, time: i64) -> String {
    envelope(
        "temperature_deltas",
        json!({"room": room, "ts": ts}),
        Some(
            json!({"room": room, "ts": ts, "prev_ts": prev_ts, "value": value, "prev_value": prev_value, "delta": value - prev_value}),
        ),
        time,
    )
}

pub fn append(path: &Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

pub fn room<'a>(building: &'a Value, name: &str) -> &'a Value {
    building["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tile| tile["room"] == name)
        .unwrap_or_else(|| panic!("no room {name} in {building:#}"))
}

pub fn sensor<'a>(tile: &'a Value, name: &str) -> &'a Value {
    tile["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sensor| sensor["sensor"] == name)
        .unwrap_or_else(|| panic!("no sensor {name} in {tile:#}"))
}
