//! The HTTP server: HTTP/1.1 connections served by hyper, one task each, all owned by
//! the accept loop's task (stopping it stops them), and the inference path: read the
//! request, wait in FIFO order for a GPU slot, prefill, answer.
//!
//! A GPU slot is a permit of a fair (FIFO) semaphore of `slots` permits, so no more
//! than `slots` requests are ever in service; a request that finds none free waits,
//! unless `max_queue` already wait (503 `overloaded`). The permit lives as long as
//! the request's handler or, for a stream, its body.

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::ledger::{Ledger, Outcome, Ticket};
use crate::openai::{self, Endpoint, Job};
use crate::tokens::{self, Answer};
use crate::{metrics, stream, MockConfig};

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// The header naming the tenant (fairgate's filter writes the verified one there).
pub const TENANT_HEADER: &str = "x-fairgate-tenant";
/// The header naming the server on every response.
pub const SERVER_HEADER: &str = "x-mock-server";
/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The fault-injection and test-control request headers.
#[derive(Debug, Default)]
struct Controls {
    /// `x-mock-status`: answer this error status after prefill.
    status: Option<StatusCode>,
    /// `x-mock-reset-after`: abort the connection after this many token chunks.
    reset_after: Option<u64>,
    /// `x-mock-completion-tokens`: the answer's length, before the request's cap.
    completion_tokens: Option<u64>,
    /// `x-mock-split-bytes`: send a stream this many bytes at a time.
    split_bytes: Option<u64>,
    /// `x-mock-cached-tokens`: prompt tokens to report as cached.
    cached_tokens: u64,
}

impl Controls {
    fn read(headers: &HeaderMap) -> Result<Self, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            headers
                .get(name)
                .map(|v| {
                    v.to_str()
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| format!("{name}: must be a whole number"))
                })
                .transpose()
        };
        let status = number("x-mock-status")?
            .map(|code| {
                u16::try_from(code)
                    .ok()
                    .filter(|code| (400..=599).contains(code))
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or_else(|| "x-mock-status: must be 400..=599".to_owned())
            })
            .transpose()?;
        Ok(Self {
            status,
            reset_after: number("x-mock-reset-after")?,
            completion_tokens: number("x-mock-completion-tokens")?,
            cached_tokens: number("x-mock-cached-tokens")?.unwrap_or(0),
            split_bytes: number("x-mock-split-bytes")?,
        })
    }
}

/// What the handler does with the connection.
enum Reply {
    Respond(Response<Body>),
    /// Close it without an answer.
    Hangup,
}

/// The error that makes hyper close a connection without a response.
#[derive(Debug)]
struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("x-mock-reset-after: connection dropped")
    }
}

impl std::error::Error for Hangup {}

#[derive(Debug, Clone, Copy)]
enum Route {
    Infer(Endpoint),
    Models,
    Metrics,
    Health,
    Stats,
    Reset,
}

fn route(method: &Method, path: &str) -> Result<Route, StatusCode> {
    let (expected, route) = match path {
        "/v1/chat/completions" => (Method::POST, Route::Infer(Endpoint::Chat)),
        "/v1/completions" => (Method::POST, Route::Infer(Endpoint::Completions)),
        "/v1/embeddings" => (Method::POST, Route::Infer(Endpoint::Embeddings)),
        "/v1/models" => (Method::GET, Route::Models),
        "/metrics" => (Method::GET, Route::Metrics),
        "/health" => (Method::GET, Route::Health),
        "/mock/stats" => (Method::GET, Route::Stats),
        "/mock/reset" => (Method::POST, Route::Reset),
        _ => return Err(StatusCode::NOT_FOUND),
    };
    if *method == expected {
        Ok(route)
    } else {
        Err(StatusCode::METHOD_NOT_ALLOWED)
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let body = Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Reply::Respond(response)
}

fn json(status: StatusCode, body: &Value) -> Reply {
    full(status, "application/json", body.to_string())
}

/// An OpenAI error body; `type` follows the status class.
fn error(status: StatusCode, message: &str, code: Option<&str>) -> Reply {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    json(status, &openai::error(message, kind, code))
}

/// The mock server's state, shared by its connections.
pub struct Server {
    config: MockConfig,
    server_header: HeaderValue,
    ledger: Arc<Ledger>,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
}

impl Server {
    /// Checks `config`: at least one slot, and a name that can be a header value.
    pub fn new(config: MockConfig) -> io::Result<Self> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        if config.slots == 0 || config.slots > Semaphore::MAX_PERMITS {
            return Err(invalid(format!(
                "slots: must be 1..={}",
                Semaphore::MAX_PERMITS
            )));
        }
        let server_header = HeaderValue::from_str(&config.name)
            .map_err(|_| invalid(format!("name: {:?} is not a header value", config.name)))?;
        Ok(Self {
            ledger: Arc::new(Ledger::new(&config.name, config.slots, config.max_queue)),
            slots: Arc::new(Semaphore::new(config.slots)),
            server_header,
            next_id: AtomicU64::new(1),
            config,
        })
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Body>, Hangup> {
        let reply = match route(request.method(), request.uri().path()) {
            Ok(Route::Infer(endpoint)) => self.infer(endpoint, request).await,
            Ok(Route::Models) => json(StatusCode::OK, &openai::models(&self.config.model)),
            Ok(Route::Metrics) => full(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::render(&self.ledger.snapshot(), &self.config.model),
            ),
            Ok(Route::Health) => full(StatusCode::OK, "text/plain", ""),
            Ok(Route::Stats) => match serde_json::to_value(self.ledger.snapshot()) {
                Ok(stats) => json(StatusCode::OK, &stats),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), None),
            },
            Ok(Route::Reset) => {
                self.ledger.reset();
                full(StatusCode::NO_CONTENT, "text/plain", "")
            }
            Err(status) => error(status, "no such endpoint on the mock", None),
        };
        match reply {
            Reply::Respond(mut response) => {
                response
                    .headers_mut()
                    .insert(SERVER_HEADER, self.server_header.clone());
                Ok(response)
            }
            Reply::Hangup => Err(Hangup),
        }
    }

    /// A GPU slot, waiting for it in FIFO order; `None` when the queue is full.
    async fn take_slot(&self, ticket: &mut Ticket) -> Option<OwnedSemaphorePermit> {
        // The semaphore is fair: a permit freed while others wait goes to the first of
        // them, so this never jumps the queue.
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(slot);
        }
        if !ticket.queue() {
            return None;
        }
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    async fn infer(&self, endpoint: Endpoint, request: Request<Incoming>) -> Reply {
        let tenant = request
            .headers()
            .get(TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anonymous")
            .to_owned();
        let mut ticket = self.ledger.arrive(&tenant);
        let read = async {
            let controls =
                Controls::read(request.headers()).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
            let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
                    Some(_) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                    None => (StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
                })?
                .to_bytes();
            let job = openai::parse(endpoint, &body).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
            Ok::<_, (StatusCode, String)>((controls, job))
        };
        let (controls, job) = match read.await {
            Ok(read) => read,
            Err((status, message)) => {
                ticket.end(Outcome::Failed);
                return error(status, &message, None);
            }
        };
        let Some(slot) = self.take_slot(&mut ticket).await else {
            ticket.end(Outcome::Rejected);
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the mock model server's queue is full",
                Some("overloaded"),
            );
        };
        let prompt_tokens = job.prompt_tokens();
        let cached_tokens = controls.cached_tokens.min(prompt_tokens);
        ticket.start(prompt_tokens, cached_tokens);
        sleep_ms(self.config.prefill_ms).await;
        if let Some(status) = controls.status {
            ticket.end(Outcome::Failed);
            return error(
                status,
                "error injected by x-mock-status",
                Some("mock_injected"),
            );
        }
        let streaming = matches!(&job, Job::Generate(g) if g.stream);
        if controls.reset_after.is_some() && !streaming {
            return Reply::Hangup;
        }
        let generate = match job {
            Job::Embed(embed) => {
                ticket.end(Outcome::Completed);
                let model = embed.model.as_deref().unwrap_or(&self.config.model);
                return json(StatusCode::OK, &openai::embeddings(&embed, model));
            }
            Job::Generate(generate) => generate,
        };
        let requested = controls
            .completion_tokens
            .unwrap_or(self.config.default_completion_tokens);
        let (n, finish) = tokens::answer_length(generate.cap, requested);
        let answer = Answer::new(&tenant, &self.config.name);
        let chat = endpoint == Endpoint::Chat;
        let reply = openai::Reply {
            chat,
            id: format!(
                "{}-mock-{}",
                if chat { "chatcmpl" } else { "cmpl" },
                self.next_id.fetch_add(1, Ordering::Relaxed)
            ),
            model: generate.model.unwrap_or_else(|| self.config.model.clone()),
        };
        let usage = openai::usage(prompt_tokens, n, cached_tokens);
        if !generate.stream {
            sleep_ms(self.config.token_ms.saturating_mul(n)).await;
            ticket.sent(n);
            ticket.end(Outcome::Completed);
            drop(slot);
            return json(
                StatusCode::OK,
                &reply.completion(&answer.text(n), finish, usage),
            );
        }
        let plan = stream::Plan {
            reply,
            answer,
            tokens: n,
            finish,
            usage,
            include_usage: generate.include_usage,
            abort_after: controls.reset_after,
            token_ms: self.config.token_ms,
            split_bytes: controls.split_bytes.map(|n| n as usize),
        };
        let mut response = Response::new(stream::body(plan, ticket, slot));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Reply::Respond(response)
    }
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Accepts and serves connections until the task is aborted, which drops (and so
/// aborts) every connection's task with it.
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, Arc::clone(&server)));
                }
                // Out of file descriptors and the like: let some connections end.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, server: Arc<Server>) {
    // Tokens are small writes that must not wait for more.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let server = Arc::clone(&server);
        async move { server.handle(request).await }
    });
    // A connection ends in error when a client goes away or a fault is injected; the
    // ledger has counted it already.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
