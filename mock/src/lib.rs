//! `fairgate-mock`: a deterministic OpenAI-compatible model server, the stand-in for a
//! GPU model server (vLLM and the like) in fairgate's demo and tests.
//!
//! It behaves like a saturated GPU server without one: `slots` requests are served
//! at once, the rest wait in FIFO order (503 `overloaded` past `max_queue`); each
//! takes `prefill_ms`, then `token_ms` per answer token, streamed or not. Everything
//! it answers is a function of the request, so tests can work it out by hand:
//!
//! - prompt tokens: `max(1, ceil(bytes / 4))` of the text in the prompt fields
//!   (chat: `messages`, `tools`; completions: `prompt`, `suffix`; embeddings:
//!   `input`), by the rule of fairgate's filter, so that estimate and settlement
//!   agree (see [`tokens`]; a test holds the two to each other);
//! - answer tokens: the smallest of `max_tokens`, `max_completion_tokens` and
//!   `x-mock-completion-tokens` (else `default_completion_tokens`), a word a token.
//!
//! Endpoints: `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `GET /v1/models`, `/metrics` (vLLM's load series), `/health`, `GET /mock/stats`
//! (the [`Stats`] JSON), `POST /mock/reset`. Request headers `x-mock-status`,
//! `x-mock-reset-after`, `x-mock-completion-tokens` and `x-mock-cached-tokens`
//! inject faults and shape answers; `x-fairgate-tenant` names the tenant each
//! request is counted under. Every response carries `x-mock-server: <name>`.
//! `mock/README.md` has the details.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mock = fairgate_mock::spawn(Default::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! println!("{}", mock.url("/v1/chat/completions"));
//! let stats = mock.stats();
//! # Ok(()) }
//! ```

mod embedding;
mod ledger;
mod metrics;
mod openai;
mod server;
mod stream;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

pub use ledger::{Stats, TenantStats};

/// How the mock behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// The server's name: `x-mock-server` on every response, `name` in the stats.
    pub name: String,
    /// Requests served at once (GPU slots), at least 1.
    pub slots: usize,
    /// Requests that may wait for a slot; one more gets 503 `overloaded`.
    pub max_queue: usize,
    /// Milliseconds in a slot before the first token.
    pub prefill_ms: u64,
    /// Milliseconds per answer token.
    pub token_ms: u64,
    /// Answer length when neither the request nor `x-mock-completion-tokens` says.
    pub default_completion_tokens: u64,
    /// The model served (`/v1/models`, answers to requests that name none, metrics).
    pub model: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            name: "mock".into(),
            slots: 4,
            max_queue: 1024,
            prefill_ms: 20,
            token_ms: 5,
            default_completion_tokens: 64,
            model: "fairgate-mock-1".into(),
        }
    }
}

/// Starts a mock on `listen` (port 0: any free port) in a task of the current tokio
/// runtime. Fails when the address cannot be bound or `config` is invalid (no slots,
/// a name that cannot be a header value).
pub async fn spawn(config: MockConfig, listen: SocketAddr) -> std::io::Result<MockHandle> {
    let server = server::Server::new(config)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let ledger = Arc::clone(server.ledger());
    let task = tokio::spawn(server::serve(listener, Arc::new(server)));
    Ok(MockHandle { addr, ledger, task })
}

/// A running mock. Dropping it (or [`MockHandle::stop`]) stops it: it stops
/// listening and closes every connection, requests in flight included.
#[derive(Debug)]
pub struct MockHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    ledger: Arc<ledger::Ledger>,
    task: JoinHandle<()>,
}

impl MockHandle {
    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What `GET /mock/stats` would answer now.
    pub fn stats(&self) -> Stats {
        self.ledger.snapshot()
    }

    /// What `POST /mock/reset` does: zeroes the counters, keeps what is in flight.
    pub fn reset(&self) {
        self.ledger.reset();
    }

    /// Stops the server.
    pub fn stop(self) {}
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
