//! `roomflow dashboard`: a live web page of the building, fed by the alpha topic as any downstream
//! consumer would be (every change applied by key, in order per partition), or by a replay's
//! `changes.jsonl`.
//!
//! Data flows one way: a feed (`alpha.rs` or `follow.rs`) applies messages to the building
//! (`building.rs`, `rejected.rs`) behind a lock (`shared.rs`); the server (`server.rs`) reads it
//! through its views (`views.rs`) and charts (`charts.rs`) and wakes live pages.
//!
//! What each file owns:
//! - `building.rs`: the state: change envelopes applied by key, bounded per room.
//! - `bounds.rs`: the most the dashboard keeps of any input (line, name, text lengths).
//! - `rejected.rs`: dead letters and late readings: read, counted by reason, tied to rooms.
//! - `views.rs`: the JSON the pages and `/api/` show.
//! - `charts.rs`: a room's charts as SVG (plotters).
//! - `shared.rs`: the building shared by the feed and the server, and the change signal.
//! - `alpha.rs`: the Kafka feed (alpha and dead-letter topics, read_committed, from the start).
//! - `follow.rs`: the file feed (`--changes`), followed as it grows.
//! - `server.rs`: the HTTP routes and the server-sent event stream.
//! - `guard.rs`: the hosts answered (against DNS rebinding) and the security headers.
//! - `listener.rs`: connections accepted within a limit, headers within a timeout (hyper).
//! - `assets/`: the pages, their script and style (our own; no third-party code).

pub mod alpha;
pub mod bounds;
pub mod building;
pub mod charts;
pub mod follow;
pub mod guard;
pub mod listener;
pub mod rejected;
pub mod server;
pub mod shared;
pub mod views;

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::cli::DashboardArgs;
use building::Building;
use shared::Shared;
use views::Staleness;

/// Runs the dashboard until interrupted (Ctrl-C or SIGTERM).
pub fn dashboard(args: DashboardArgs) -> anyhow::Result<()> {
    let stale_after_ms =
        i64::try_from(args.stale_after.as_millis()).context("--stale-after is too long")?;
    let shared = Arc::new(Shared::new(
        Building::new(args.retain_windows as usize),
        Staleness {
            after_ms: stale_after_ms,
        },
    ));
    let feed: Box<dyn FnOnce() + Send> = if args.changes.is_empty() {
        args.kafka.check_reachable()?;
        let consumer = alpha::consumer(&args.kafka)?;
        let topics = alpha::Topics {
            alpha: args.alpha_topic.clone(),
            dead_letters: Some(args.dead_letter_topic.clone()).filter(|topic| !topic.is_empty()),
        };
        tracing::info!(brokers = %args.kafka.brokers, alpha = %topics.alpha, "reading the alpha topic from its beginning");
        let shared = shared.clone();
        Box::new(move || alpha::follow(consumer, topics, shared))
    } else {
        for path in &args.changes {
            match std::fs::metadata(path) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                    "--changes {}: no such file. Write one with `roomflow replay FILES --out DIR \
                     --changes`, then show DIR/changes.jsonl.",
                    path.display()
                ),
                Err(error) => bail!("--changes {}: cannot read it: {error}", path.display()),
                Ok(metadata) => {
                    if let Some(kind) = follow::not_regular(&metadata) {
                        bail!(
                            "--changes {}: this is {kind}, not a regular file; the dashboard \
                             follows the changes.jsonl that `roomflow replay FILES --out DIR \
                             --changes` writes",
                            path.display()
                        );
                    }
                }
            }
        }
        let files = follow::files_for(&args.changes);
        let shared = shared.clone();
        Box::new(move || follow::follow(files, shared))
    };
    std::thread::Builder::new()
        .name("dashboard-feed".into())
        .spawn(feed)
        .context("cannot start the dashboard's feed")?;

    let limit = listener::ConnectionLimit::for_this_process(args.max_connections as usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the dashboard's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("--listen {}: cannot listen there", args.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "serving the dashboard");
        // On stdout too, for whoever started it (and for scripts that asked for port 0).
        println!("roomflow dashboard: http://{address}/");
        std::io::stdout().flush().ok();
        if let Some(wanted) = limit.lowered_from {
            tracing::warn!(
                wanted,
                limit = limit.max,
                "fewer connections than --max-connections: the open-file limit cannot hold more"
            );
        }
        let routes = server::routes(shared, guard::AllowedHosts::new(&args.allowed_host));
        // Live pages hold their event streams open: stop without waiting for them to close.
        tokio::select! {
            () = listener::serve(listener, routes, limit) => Ok(()),
            () = interrupted() => Ok(()),
        }
    })
}

/// Ctrl-C, or SIGTERM (what `docker stop` sends).
async fn interrupted() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(terminate) => terminate,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            () = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
