//! `roomflow dashboard`'s flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::duration;
use crate::kafka::config::KafkaArgs;

/// `roomflow dashboard`.
#[derive(Args, Debug)]
pub struct DashboardArgs {
    /// Show a replay's changes instead of the alpha topic: the changes.jsonl that
    /// `replay --out DIR --changes` writes (with DIR's dead_letters.jsonl and late.jsonl), followed
    /// as it grows. Repeatable, or comma-separated, for the part files of several processes.
    #[arg(
        long,
        value_name = "FILE",
        value_delimiter = ',',
        env = "ROOMFLOW_DASHBOARD_CHANGES"
    )]
    pub changes: Vec<PathBuf>,
    /// Topic the changes are read from (from its beginning, read_committed).
    #[arg(long, default_value = "alpha", env = "ROOMFLOW_ALPHA_TOPIC")]
    pub alpha_topic: String,
    /// Topic the dead letters and late readings are read from; empty for none.
    #[arg(
        long,
        default_value = "alpha.dead-letters",
        env = "ROOMFLOW_DEAD_LETTER_TOPIC"
    )]
    pub dead_letter_topic: String,
    /// Address the page is served on (0.0.0.0:8080 to be reachable from other hosts; port 0
    /// picks a free one, printed at start).
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        env = "ROOMFLOW_DASHBOARD_LISTEN"
    )]
    pub listen: SocketAddr,
    /// Windows kept per room and sensor (and temperature deltas per room): what a room's page
    /// charts. Memory follows rooms × sensors × this, not the length of the history.
    #[arg(
        long,
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        env = "ROOMFLOW_RETAIN_WINDOWS"
    )]
    pub retain_windows: u32,
    /// A room whose newest change is this much older (in event time) than the building's newest
    /// is shown as stale.
    #[arg(long, default_value = "10m", value_parser = duration, env = "ROOMFLOW_STALE_AFTER")]
    pub stale_after: Duration,
    /// A host name the page is served under, besides IP addresses and localhost (a request
    /// naming another host is refused, against DNS rebinding); `*` for any. Repeatable, or
    /// comma-separated.
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        env = "ROOMFLOW_ALLOWED_HOSTS"
    )]
    pub allowed_host: Vec<String>,
    /// The most connections served at once (fewer if the open-file limit cannot hold them). At
    /// the limit, the oldest connection that has sent no request yet is closed to make room.
    #[arg(
        long,
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..),
        env = "ROOMFLOW_DASHBOARD_MAX_CONNECTIONS"
    )]
    pub max_connections: u32,
    /// Kafka (unused with --changes).
    #[command(flatten)]
    pub kafka: KafkaArgs,
}
