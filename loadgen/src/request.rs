//! One tenant's requests: the OpenAI body its mix asks for, its bearer tokens in
//! turn, and the answer read to the end for its status, `usage` and serving cluster.
//!
//! Which requests stream is decided by a counter, not a random draw: with a stream
//! share of 0.25, exactly every fourth request streams, so two runs send the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::record::{Outcome, Recorder};
use crate::scenario::{Api, RequestMix};
use crate::usage::{json_usage, SseReader, Usage};

/// The header the mock model server names itself in.
pub const SERVER_HEADER: &str = "x-mock-server";
/// The header that sets the mock model server's answer length.
pub const COMPLETION_TOKENS_HEADER: &str = "x-mock-completion-tokens";
/// JSON answers are kept up to this size to read their `usage`.
const MAX_JSON_BODY: usize = 4 << 20;

/// The body of one request.
pub fn body(api: Api, model: &str, mix: &RequestMix, stream: bool) -> Value {
    let prompt = vec!["lorem"; mix.prompt_words as usize].join(" ");
    let mut body = match api {
        Api::Chat => json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": mix.max_tokens,
        }),
        Api::Completions => json!({
            "model": model,
            "prompt": prompt,
            "max_tokens": mix.max_tokens,
        }),
    };
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// Whether request number `n` (from 0) streams, for a stream share `share`: the
/// streamed count after `n + 1` requests is `floor((n + 1) · share)`.
pub fn streams(n: u64, share: f64) -> bool {
    ((n + 1) as f64 * share).floor() > (n as f64 * share).floor()
}

/// Everything one tenant's requests share.
#[derive(Debug)]
pub struct TenantClient {
    pub tenant: usize,
    pub client: reqwest::Client,
    pub url: String,
    pub api: Api,
    pub model: String,
    pub mix: RequestMix,
    /// Bearer tokens, used in turn; empty: none sent.
    pub tokens: Vec<String>,
    sent: AtomicU64,
}

impl TenantClient {
    pub fn new(
        tenant: usize,
        client: reqwest::Client,
        url: String,
        api: Api,
        model: String,
        mix: RequestMix,
        tokens: Vec<String>,
    ) -> Self {
        Self {
            tenant,
            client,
            url,
            api,
            model,
            mix,
            tokens,
            sent: AtomicU64::new(0),
        }
    }

    /// Sends one request, reads the answer to the end and logs it; `t0` is the run's
    /// start.
    pub async fn send(&self, recorder: &Recorder, t0: Instant) -> Outcome {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let stream = streams(n, self.mix.stream);
        let body = body(self.api, &self.model, &self.mix, stream).to_string();
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if !self.tokens.is_empty() {
            let token = &self.tokens[(n % self.tokens.len() as u64) as usize];
            req = req.bearer_auth(token);
        }
        if let Some(c) = self.mix.completion_tokens {
            req = req.header(COMPLETION_TOKENS_HEADER, c);
        }
        let started = t0.elapsed();
        recorder.started(self.tenant, started.as_secs_f64());
        let (outcome, usage, cluster) = match exchange(req).await {
            Ok(answer) => (Outcome::Status(answer.status), answer.usage, answer.cluster),
            Err(e) if e.is_timeout() => (Outcome::Timeout, None, None),
            Err(_) => (Outcome::Error, None, None),
        };
        recorder.finished(
            self.tenant,
            started.as_secs_f64(),
            t0.elapsed().as_secs_f64(),
            outcome,
            usage,
            cluster.as_deref(),
        );
        outcome
    }

    /// Logs an open-loop request that was not sent (too many in flight).
    pub fn dropped(&self, recorder: &Recorder, t0: Instant) {
        let at = t0.elapsed().as_secs_f64();
        recorder.started(self.tenant, at);
        recorder.finished(self.tenant, at, at, Outcome::Dropped, None, None);
    }
}

struct Answer {
    status: u16,
    usage: Option<Usage>,
    cluster: Option<String>,
}

async fn exchange(req: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let mut resp = req.send().await?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cluster = header(SERVER_HEADER);
    let is_sse = header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
    let mut sse = SseReader::default();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if is_sse {
            sse.feed(&chunk);
        } else if body.len() + chunk.len() <= MAX_JSON_BODY {
            body.extend_from_slice(&chunk);
        }
    }
    let usage = if is_sse {
        sse.finish();
        sse.usage
    } else {
        json_usage(&body)
    };
    Ok(Answer {
        status,
        usage,
        cluster,
    })
}

/// A client for one tenant: HTTP/1.1 keep-alive, the scenario's timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(stream: f64) -> RequestMix {
        RequestMix {
            max_tokens: 32,
            prompt_words: 3,
            stream,
            completion_tokens: Some(8),
        }
    }

    #[test]
    fn a_stream_share_streams_exactly_that_fraction_evenly() {
        let count = |share: f64, n: u64| (0..n).filter(|&i| streams(i, share)).count();
        assert_eq!(count(0.0, 100), 0);
        assert_eq!(count(1.0, 100), 100);
        assert_eq!(count(0.25, 100), 25);
        assert_eq!(count(0.5, 7), 3);
        let quarter: Vec<bool> = (0..8).map(|i| streams(i, 0.25)).collect();
        assert_eq!(
            quarter,
            [false, false, false, true, false, false, false, true]
        );
    }

    #[test]
    fn a_streamed_chat_request_asks_for_usage() {
        let b = body(Api::Chat, "m", &mix(1.0), true);
        assert_eq!(b["messages"][0]["content"], "lorem lorem lorem");
        assert_eq!(b["max_tokens"], 32);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = body(Api::Completions, "m", &mix(0.0), false);
        assert_eq!(b["prompt"], "lorem lorem lorem");
        assert!(b.get("stream").is_none());
    }
}
