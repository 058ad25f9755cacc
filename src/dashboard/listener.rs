//! The dashboard's connections: accepted within a limit, each served with HTTP/1.1 by hyper,
//! none held by a client that sends nothing.
//!
//! The protocol, in one place:
//! - **Headers within [`HEADER_TIMEOUT`].** A connection whose request headers have not all
//!   arrived within it is closed, and so is one idle that long between requests (hyper's header
//!   read timeout: its clock starts whenever the connection waits for a request). A page's event
//!   stream is a request being answered, never idle: it stays.
//! - **At most [`ConnectionLimit::max`] connections at once**, never more than the open-file limit
//!   allows less [`RESERVED_FILES`] for the process's own (the soft limit is raised to the hard one
//!   at start). Beyond them `accept` would fail and a health check would wait: when the limit is
//!   reached, the oldest connection that has not yet sent a request is closed to make room, so a
//!   flood of silent connections cannot keep anyone out for longer than it takes to connect; if
//!   every connection is serving requests, the new one is closed at once. Connections being closed
//!   still hold their files: no more than [`CLOSING_SLACK`] of them are let pile up before
//!   accepting more.
//!
//! axum's own `serve` sets no header timeout and no limit (200 silent connections kept `/livez`
//! from answering until they closed, under a container's default open-file limit).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_service::Service;

/// How long a connection may take to send its request headers, or stay idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Open files kept for the process itself (the followed files, Kafka's sockets, logs) when the
/// connection limit is taken from the open-file limit.
pub const RESERVED_FILES: u64 = 64;

/// How many connections beyond the limit may be open while they are being closed.
const CLOSING_SLACK: usize = 16;

/// How many connections may be open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimit {
    /// The limit.
    pub max: usize,
    /// Whether the open-file limit lowered it from what was asked.
    pub lowered_from: Option<usize>,
}

impl ConnectionLimit {
    /// `wanted` connections, or fewer if the open-file limit (raised to its hard limit first)
    /// cannot hold them beside [`RESERVED_FILES`].
    pub fn for_this_process(wanted: usize) -> ConnectionLimit {
        let files = raise_open_file_limit();
        let fits = files.map_or(usize::MAX, |files| {
            files.saturating_sub(RESERVED_FILES).max(1) as usize
        });
        ConnectionLimit {
            max: wanted.min(fits),
            lowered_from: (fits < wanted).then_some(wanted),
        }
    }
}

/// Raises the soft open-file limit to the hard one; the soft limit then in force, if known.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

/// One open connection, as the limit sees it.
struct Open {
    /// It has sent (the headers of) a request: it is not silent.
    requested: Arc<AtomicBool>,
    /// Closes it; `None` once it is being closed.
    close: Option<oneshot::Sender<()>>,
}

/// The open connections (those being closed too, until their task ends), oldest first.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, Open>,
}

impl Connections {
    /// Makes room for one more under `max` open (not being closed): `false` if every open
    /// connection is serving.
    fn make_room(&mut self, max: usize) -> bool {
        let open = self.open.values().filter(|open| open.close.is_some());
        if open.count() < max {
            return true;
        }
        let silent = self
            .open
            .values_mut()
            .find(|open| open.close.is_some() && !open.requested.load(Ordering::Relaxed));
        match silent.and_then(|oldest| oldest.close.take()) {
            Some(close) => {
                let _ = close.send(());
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, router: Router, limit: ConnectionLimit) {
    let connections: Arc<Mutex<Connections>> = Arc::default();
    let ended = Arc::new(tokio::sync::Notify::new());
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str, error: Option<std::io::Error>| {
        // A flood would log a line per connection: one a second says it.
        if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(1)) {
            last_warning = Some(Instant::now());
            match error {
                Some(error) => tracing::warn!(%error, "{what}"),
                None => tracing::warn!(limit = limit.max, "{what}"),
            }
        }
    };
    loop {
        let pending = connections
            .lock()
            .expect("no panics holding the lock")
            .open
            .len();
        if pending >= limit.max + CLOSING_SLACK {
            // Connections being closed still hold their files: wait for one to end.
            ended.notified().await;
            continue;
        }
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of files (or a connection reset before it was accepted): try again soon.
                warn("cannot accept a connection", Some(error));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (id, requested, closed) = {
            let mut connections = connections.lock().expect("no panics holding the lock");
            if !connections.make_room(limit.max) {
                warn(
                    "refusing a connection: every connection the limit allows is serving",
                    None,
                );
                continue;
            }
            let id = connections.next;
            connections.next += 1;
            let requested = Arc::new(AtomicBool::new(false));
            let (close, closed) = oneshot::channel();
            connections.open.insert(
                id,
                Open {
                    requested: requested.clone(),
                    close: Some(close),
                },
            );
            (id, requested, closed)
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let (connections, ended) = (connections.clone(), ended.clone());
        tokio::spawn(async move {
            serve_connection(stream, router, requested, closed).await;
            connections
                .lock()
                .expect("no panics holding the lock")
                .open
                .remove(&id);
            ended.notify_one();
        });
    }
}

/// Serves one connection until it ends, times out, or `closed` fires.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    requested: Arc<AtomicBool>,
    closed: oneshot::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        requested.store(true, Ordering::Relaxed);
        let mut router = router.clone();
        async move {
            // A Router is always ready: no poll_ready needed.
            let response = router.call(request.map(axum::body::Body::new)).await;
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Errors are the client's: a reset, a timeout, a malformed request (answered 400).
        _ = connection => {}
        _ = closed => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(requested: bool) -> (Open, oneshot::Receiver<()>) {
        let (close, closed) = oneshot::channel();
        (
            Open {
                requested: Arc::new(AtomicBool::new(requested)),
                close: Some(close),
            },
            closed,
        )
    }

    #[test]
    fn at_the_limit_the_oldest_silent_connection_makes_room() {
        let mut connections = Connections::default();
        let mut closed = Vec::new();
        for (id, requested) in [(0, true), (1, false), (2, false)] {
            let (entry, receiver) = open(requested);
            connections.open.insert(id, entry);
            closed.push(receiver);
        }
        assert!(connections.make_room(4), "below the limit");
        assert_eq!(connections.open.len(), 3);
        assert!(connections.make_room(3));
        // 1 is the oldest silent one; 0 is serving. 1 stays listed until its task ends.
        assert!(closed[1].try_recv().is_ok());
        assert!(closed[0].try_recv().is_err());
        assert!(connections.open[&1].close.is_none());
        assert!(connections.make_room(3), "1 is being closed: 2 open of 3");
        connections.open.remove(&1);
        connections
            .open
            .get(&2)
            .unwrap()
            .requested
            .store(true, Ordering::Relaxed);
        assert!(!connections.make_room(2), "every connection is serving");
    }
}
