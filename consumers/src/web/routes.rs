//! The HTTP side: the page, its script and style, the JSON API and the live stream. Every route
//! is a GET that reads the sections' latest values; nothing here changes anything or reaches the
//! broker or the database.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use tokio::sync::watch;

use super::Sections;

/// Only the page's own files run and load: an injected tag could neither run inline script nor
/// load any from elsewhere, on top of the page building its DOM with `textContent`.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The routes, with the headers every response carries.
pub fn router(sections: Sections) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", include_str!("assets/index.html")) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/app.js")) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/style.css")) }))
        .route("/favicon.svg", get(|| async { asset("image/svg+xml", include_str!("assets/favicon.svg")) }))
        .route("/api/openapi.json", get(|| async { asset("application/json", include_str!("assets/openapi.json")) }))
        .route("/api/sales", get(|State(s): State<Sections>| async move { latest(&s.sales) }))
        .route("/api/events", get(|State(s): State<Sections>| async move { latest(&s.events) }))
        .route("/api/pipeline", get(|State(s): State<Sections>| async move { latest(&s.pipeline) }))
        .route("/api/live", get(live))
        .with_state(sections)
        .layer(axum::middleware::map_response(secure))
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A section's latest JSON.
fn latest(section: &watch::Receiver<Arc<str>>) -> Response {
    let json = section.borrow().clone();
    ([(header::CONTENT_TYPE, "application/json")], json.to_string()).into_response()
}

/// `/api/live`: Server-Sent Events named `sales`, `events` and `pipeline`, each carrying the
/// section's JSON: all three at once, then each section whenever it changes. A client that
/// reads slowly gets the latest value when it is ready, never a backlog.
async fn live(State(sections): State<Sections>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut sections = sections;
    let pending: Vec<Event> = vec![
        event("pipeline", &mut sections.pipeline),
        event("events", &mut sections.events),
        event("sales", &mut sections.sales),
    ];
    let stream = futures::stream::unfold((sections, pending), |(mut s, mut pending)| async move {
        loop {
            if let Some(next) = pending.pop() {
                return Some((Ok(next), (s, pending)));
            }
            let changed = tokio::select! {
                _ = s.shutdown.cancelled() => None,
                changed = s.sales.changed() => changed.ok().map(|_| "sales"),
                changed = s.events.changed() => changed.ok().map(|_| "events"),
                changed = s.pipeline.changed() => changed.ok().map(|_| "pipeline"),
            };
            let section = match changed? {
                "sales" => &mut s.sales,
                "events" => &mut s.events,
                _ => &mut s.pipeline,
            };
            pending.push(event(changed?, section));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The SSE event `name` with the section's latest JSON, marking it seen.
fn event(name: &'static str, section: &mut watch::Receiver<Arc<str>>) -> Event {
    Event::default().event(name).data(&**section.borrow_and_update())
}
