//! The HTTP face: `GET /v1/headroom`, `GET /metrics`, `GET /healthz`, and in fleet
//! mode `POST /v1/fleet/poll`. Every handler reads the latest published snapshot and
//! answers at once; the fleet poll also waits on at most one round of Redis calls,
//! bounded by `[fleet] timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use fairgate_wire::fleet::{FleetAnswer, FleetPoll, FLEET_POLL_PATH};
use tokio::sync::watch;

use crate::fleet::redis::RedisStore;
use crate::fleet::FleetManager;
use crate::metrics::Metrics;
use crate::poller::Published;

/// The longest Envoy id taken.
const MAX_ENVOY_ID_LEN: usize = 255;

#[derive(Clone)]
pub struct AppState {
    pub latest: watch::Receiver<Arc<Published>>,
    pub metrics: Arc<Metrics>,
    /// `/healthz` fails once the last successful poll is older than this.
    pub stale: Duration,
    /// Fleet mode's leasing, where it is on.
    pub fleet: Option<Arc<FleetManager<RedisStore>>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/headroom", get(headroom))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route(FLEET_POLL_PATH, post(fleet_poll))
        .with_state(state)
}

/// `POST /v1/fleet/poll`: takes in an Envoy's consumption, answers its grants and the
/// headroom snapshot (`fairgate_wire::fleet`).
async fn fleet_poll(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(fleet) = &state.fleet else {
        return refuse(
            StatusCode::NOT_FOUND,
            "fleet mode is off: give the sidecar a [fleet] section or --redis-url",
        );
    };
    let poll = match parse_poll(&body) {
        Ok(poll) => poll,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e),
    };
    let grants = fleet.poll(&poll).await;
    let headroom = state.latest.borrow().snapshot.to_wire();
    let answer = FleetAnswer {
        headroom,
        fleet: grants,
    };
    match serde_json::to_vec(&answer) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed"),
    }
}

/// Reads a fleet poll's body; `Err` is the 400's message.
pub fn parse_poll(body: &[u8]) -> Result<FleetPoll, String> {
    let poll: FleetPoll =
        serde_json::from_slice(body).map_err(|e| format!("bad fleet poll: {e}"))?;
    if poll.envoy.is_empty() || poll.envoy.len() > MAX_ENVOY_ID_LEN || poll.poll_ms == 0 {
        return Err("bad fleet poll: envoy must be 1 to 255 bytes and poll_ms >= 1".into());
    }
    Ok(poll)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
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
