//! The HTTP face: `GET /v1/headroom`, `GET /metrics`, `GET /healthz`. Every handler
//! reads the latest published snapshot and answers at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::poller::Published;

#[derive(Clone)]
pub struct AppState {
    pub latest: watch::Receiver<Arc<Published>>,
    pub metrics: Arc<Metrics>,
    /// `/healthz` fails once the last successful poll is older than this.
    pub stale: Duration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/headroom", get(headroom))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn headroom(State(state): State<AppState>) -> Response {
    state.metrics.headroom_served();
    let body = state.latest.borrow().body.clone();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let age = state.latest.borrow().at.elapsed().as_secs_f64();
    match state.metrics.encode(age) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let (age, version) = {
        let latest = state.latest.borrow();
        (latest.at.elapsed(), latest.snapshot.version)
    };
    let (status, body) = health(age, state.stale, version);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `/healthz`: 200 while the last good poll is younger than `stale`, else 503.
fn health(age: Duration, stale: Duration, version: u64) -> (StatusCode, String) {
    let fresh = age < stale;
    let body = serde_json::json!({
        "status": if fresh { "ok" } else { "stale" },
        "version": version,
        "age_ms": age.as_millis() as u64,
    });
    let status = if fresh {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_fails_once_the_last_good_poll_is_stale() {
        let stale = Duration::from_millis(3000);
        let (status, body) = health(Duration::from_millis(120), stale, 9);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"age_ms":120,"status":"ok","version":9}"#);
        let (status, body) = health(Duration::from_millis(3000), stale, 9);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains(r#""status":"stale""#), "{body}");
    }
}
