//! The dashboard's HTTP server (axum): the pages and their assets, the JSON API under `/api/`, the
//! room charts as SVG, and `/api/events`, a server-sent event stream that keeps a page live.
//!
//! The event stream starts with the whole building (`building`), then sends the tiles of the
//! rooms changed since the last event (`rooms`), at most every [`MIN_EVENT_INTERVAL`]. Its
//! `retry` field makes a browser's EventSource reconnect a second after the connection drops, and
//! the first event after a reconnect is the whole building again, so a page never misses a change.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

use super::charts;
use super::guard::{guard, AllowedHosts};
use super::shared::Shared;
use super::views::{self, name_from_segment};

/// The shortest time between two events of one page's stream: changes arriving faster are
/// gathered into one event.
pub const MIN_EVENT_INTERVAL: Duration = Duration::from_millis(100);

/// The server's routes, answered under the `allowed` hosts only.
pub fn routes(shared: Arc<Shared>, allowed: AllowedHosts) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { html(include_str!("assets/building.html")) }),
        )
        .route(
            "/rooms/{room}",
            get(|| async { html(include_str!("assets/room.html")) }),
        )
        .route("/assets/{name}", get(asset))
        .route("/api/building", get(building))
        .route("/api/rooms/{room}", get(room))
        .route(
            "/api/rooms/{room}/sensors/{sensor}/chart",
            get(sensor_chart),
        )
        .route("/api/rooms/{room}/deltas/chart", get(delta_chart))
        .route("/api/events", get(events))
        .route("/livez", get(|| async { "ok\n" }))
        // Browsers ask for it on every page; there is none.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(|| async { not_found("no such page".into()) })
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(allowed, guard))
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    let (content_type, body) = match name.as_str() {
        "dashboard.css" => ("text/css", include_str!("assets/dashboard.css")),
        "common.js" => ("text/javascript", include_str!("assets/common.js")),
        "building.js" => ("text/javascript", include_str!("assets/building.js")),
        "room.js" => ("text/javascript", include_str!("assets/room.js")),
        "events.js" => ("text/javascript", include_str!("assets/events.js")),
        _ => return not_found(format!("no asset `{name}`")),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn not_found(error: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

/// A JSON body made while the building is locked.
fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn building(State(shared): State<Arc<Shared>>) -> Response {
    let building = shared.lock();
    json(to_json(&views::building(&building, shared.staleness, 0)))
}

async fn room(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let name = name_from_segment(name);
    let building = shared.lock();
    match views::room(&building, shared.staleness, &name) {
        Some(view) => json(to_json(&view)),
        None => not_found(format!("no room `{name}`")),
    }
}

async fn sensor_chart(
    State(shared): State<Arc<Shared>>,
    Path((name, sensor)): Path<(String, String)>,
) -> Response {
    let (name, sensor) = (name_from_segment(name), name_from_segment(sensor));
    let points: Vec<(i64, f64)> = {
        let building = shared.lock();
        let Some(state) = building
            .rooms
            .get(&name)
            .and_then(|room| room.sensors.get(&sensor))
        else {
            return not_found(format!("no sensor `{sensor}` in room `{name}`"));
        };
        state
            .windows
            .iter()
            .map(|(start, average)| (*start, average.avg))
            .collect()
    };
    svg(charts::line(&points))
}

async fn delta_chart(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let name = name_from_segment(name);
    let points: Vec<(i64, f64)> = {
        let building = shared.lock();
        let Some(room) = building.rooms.get(&name) else {
            return not_found(format!("no room `{name}`"));
        };
        room.deltas
            .values()
            .map(|delta| (delta.ts, delta.delta))
            .collect()
    };
    svg(charts::deltas(&points))
}

fn svg(chart: Result<String, String>) -> Response {
    match chart {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error).into_response(),
    }
}

fn to_json(view: &impl serde::Serialize) -> String {
    // The views hold strings and finite numbers only: serializing cannot fail.
    serde_json::to_string(view).expect("a view serializes")
}

/// Where one page's event stream is.
struct PageStream {
    shared: Arc<Shared>,
    changed: watch::Receiver<u64>,
    /// The version and generation the page has, once it has had the whole building.
    sent: Option<(u64, u64)>,
    last_event: Instant,
}

async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = PageStream {
        changed: shared.subscribe(),
        shared,
        sent: None,
        last_event: Instant::now(),
    };
    let stream = stream::unfold(start, |mut state| async move {
        if state.sent.is_some() {
            // The sender lives as long as the server: an error cannot happen, and if it did the
            // page would simply stop getting events.
            if state.changed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            let since_last = state.last_event.elapsed();
            if since_last < MIN_EVENT_INTERVAL {
                tokio::time::sleep(MIN_EVENT_INTERVAL - since_last).await;
            }
        }
        state.changed.borrow_and_update();
        let event = {
            let building = state.shared.lock();
            let staleness = state.shared.staleness;
            let event = match state.sent {
                Some((version, generation)) if generation == building.generation => {
                    Event::default()
                        .event("rooms")
                        .data(to_json(&views::building(&building, staleness, version)))
                }
                _ => Event::default()
                    .event("building")
                    .retry(Duration::from_secs(1))
                    .data(to_json(&views::building(&building, staleness, 0))),
            };
            state.sent = Some((building.version, building.generation));
            event
        };
        state.last_event = Instant::now();
        Some((Ok(event), state))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
