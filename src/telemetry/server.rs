//! The `--metrics ADDR` endpoint: Prometheus metrics at `/metrics`, liveness at `/livez` and
//! readiness at `/readyz` (200 or 503, with a one-line reason), for compose health checks and
//! Kubernetes probes. It runs on its own thread, away from the workers.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tiny_http::{Header, Response, Server};

use super::catalog;
use super::health::Health;

/// Installs the Prometheus recorder and serves it, with `health`, on `address`. Fails at once,
/// naming the flag, when the address cannot be bound.
pub fn serve(address: SocketAddr, health: Arc<Health>) -> anyhow::Result<()> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(catalog::SINK_BATCH_SECONDS.to_string()),
            catalog::SINK_BATCH_BUCKETS,
        )
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    catalog::describe();
    let server = Server::http(address)
        .map_err(|error| anyhow::anyhow!("--metrics {address}: cannot listen there: {error}"))?;
    tracing::info!(%address, "serving /metrics, /livez and /readyz");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = respond(request.url(), &handle, &health);
                // A scraper that hung up is not our problem.
                let _ = request.respond(response);
            }
        })
        .context("cannot start the metrics thread")?;
    Ok(())
}

fn respond(
    url: &str,
    handle: &PrometheusHandle,
    health: &Health,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let text = |body: String, status: u16, content_type: &str| {
        Response::from_string(body)
            .with_status_code(status)
            .with_header(Header::from_bytes("Content-Type", content_type).expect("a valid header"))
    };
    let path = url.split('?').next().unwrap_or(url);
    match path {
        "/metrics" => {
            // Histograms are folded into their buckets on demand.
            handle.run_upkeep();
            text(handle.render(), 200, "text/plain; version=0.0.4")
        }
        "/livez" | "/readyz" => {
            let status = health.status();
            let ok = if path == "/livez" {
                status.live
            } else {
                status.ready
            };
            text(
                format!("{}\n", status.detail),
                if ok { 200 } else { 503 },
                "text/plain",
            )
        }
        _ => text(
            "not found: try /metrics, /livez or /readyz\n".into(),
            404,
            "text/plain",
        ),
    }
}
