//! Liveness, readiness and metrics for operators.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the state store answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!("not ready: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "state store unreachable").into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    let s = state.events.stats();
    for (name, help, v) in [
        (
            "rampart_events_files",
            "Parquet files in the event store.",
            s.files as u64,
        ),
        (
            "rampart_events_file_rows",
            "Rows in the event store's Parquet files.",
            s.file_rows,
        ),
        (
            "rampart_events_file_bytes",
            "Bytes of the event store's Parquet files.",
            s.file_bytes,
        ),
        (
            "rampart_events_hot_rows",
            "Rows in the in-memory hot tail, not yet in Parquet.",
            s.hot_rows,
        ),
        (
            "rampart_events_hot_bytes",
            "Memory held by the hot tail.",
            s.hot_bytes,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
