//! `fairgate-mock`: a deterministic OpenAI-compatible model server, the stand-in for
//! a GPU model server in fairgate's demo (a GPU and an LLM cannot run here).
//!
//! `fairgate-mock [--listen 127.0.0.1:18000]` serves:
//! - `POST /v1/chat/completions`, `POST /v1/completions`: a fixed answer naming the
//!   tenant fairgate verified (`x-fairgate-tenant`), with `usage` counted in
//!   whitespace-separated words (prompt) and answer words (completion), capped by
//!   `max_tokens`;
//! - `GET /v1/models`;
//! - `GET /mock/stats`: completed requests and tokens per tenant, for tests and demos.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
struct Stats {
    tenants: BTreeMap<String, TenantStats>,
}

#[derive(Default, serde::Serialize)]
struct TenantStats {
    completed: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

type Shared = Arc<Mutex<Stats>>;

const MODEL: &str = "fairgate-mock-1";

fn tenant_of(headers: &HeaderMap) -> String {
    headers
        .get("x-fairgate-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_string()
}

fn prompt_words(body: &Value) -> u64 {
    let text = match body.get("messages").and_then(Value::as_array) {
        Some(messages) => messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        None => body
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    text.split_whitespace().count() as u64
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
        ),
    )
}

async fn complete(
    State(stats): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
    chat: bool,
) -> (StatusCode, Json<Value>) {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let tenant = tenant_of(&headers);
    let answer_words: Vec<String> =
        format!("Hello {tenant}, this answer comes from the fairgate mock model server.")
            .split_whitespace()
            .map(str::to_string)
            .collect();
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let answer: Vec<String> = answer_words
        .into_iter()
        .take(usize::try_from(max_tokens).unwrap_or(usize::MAX))
        .collect();
    let prompt_tokens = prompt_words(&body);
    let completion_tokens = answer.len() as u64;
    if let Ok(mut s) = stats.lock() {
        let t = s.tenants.entry(tenant).or_default();
        t.completed += 1;
        t.prompt_tokens += prompt_tokens;
        t.completion_tokens += completion_tokens;
    }
    let text = answer.join(" ");
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": text, "finish_reason": "stop"})
    };
    (
        StatusCode::OK,
        Json(json!({
            "id": "cmpl-fairgate-mock",
            "object": if chat { "chat.completion" } else { "text_completion" },
            "created": 0,
            "model": body.get("model").and_then(Value::as_str).unwrap_or(MODEL),
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens
            }
        })),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 18000));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|a| a.parse())) {
            ("--listen", Some(Ok(addr))) => listen = addr,
            _ => {
                eprintln!("usage: fairgate-mock [--listen ADDR:PORT]");
                std::process::exit(2);
            }
        }
    }
    let stats: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|s: State<Shared>, h: HeaderMap, b: axum::body::Bytes| complete(s, h, b, true)),
        )
        .route(
            "/v1/completions",
            post(|s: State<Shared>, h: HeaderMap, b: axum::body::Bytes| complete(s, h, b, false)),
        )
        .route(
            "/v1/models",
            get(|| async { Json(json!({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fairgate"}]})) }),
        )
        .route(
            "/mock/stats",
            get(|State(stats): State<Shared>| async move {
                let tenants = stats
                    .lock()
                    .map(|s| serde_json::to_value(&s.tenants).unwrap_or_default())
                    .unwrap_or_default();
                Json(json!({"tenants": tenants}))
            }),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint on the mock") })
        .with_state(stats);
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fairgate-mock: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("fairgate-mock: serving on http://{listen}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("fairgate-mock: {e}");
        std::process::exit(1);
    }
}
