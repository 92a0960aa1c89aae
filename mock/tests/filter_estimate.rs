//! The mock and fairgate's filter read requests and answers alike: the mock's
//! `usage` is what the filter reserves for the same body (the prompt estimate
//! exactly, the answer's length where the request caps it), and the filter's stream
//! scanner finds in the mock's streams the usage and the delivered tokens the mock
//! counted.

// The helpers are test code too.
#![allow(clippy::unwrap_used)]

use fairgate_core::llm::{Endpoint, LlmRequest};
use fairgate_core::usage::{SseScanner, Usage};
use fairgate_mock::{spawn, MockConfig, MockHandle};
use serde_json::{json, Value};

async fn start() -> (MockHandle, reqwest::Client) {
    let config = MockConfig {
        prefill_ms: 0,
        token_ms: 0,
        ..MockConfig::default()
    };
    let mock = spawn(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    (mock, reqwest::Client::builder().no_proxy().build().unwrap())
}

#[tokio::test]
async fn usage_matches_the_filters_estimate_and_cap() {
    let (mock, client) = start().await;
    let cases = [
        (
            Endpoint::ChatCompletions,
            "/v1/chat/completions",
            json!({
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 12}),
        ),
        (
            Endpoint::ChatCompletions,
            "/v1/chat/completions",
            json!({
            "model": "m", "max_completion_tokens": 5, "max_tokens": 50, "messages": [
                {"role": "system", "name": "rules", "content": "Answer in French."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Décris cette image."},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
                    "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}],
            "tools": [{"type": "function", "function": {"name": "f",
                "description": "Looks things up", "parameters": {"type": "object"}}}]}),
        ),
        (
            Endpoint::Completions,
            "/v1/completions",
            json!({
            "prompt": ["Once upon", "a time"], "suffix": "the end", "max_tokens": 7}),
        ),
        (
            Endpoint::Completions,
            "/v1/completions",
            json!({
            "prompt": [101, 102, 103, 104, 105], "max_tokens": 3}),
        ),
        (
            Endpoint::Embeddings,
            "/v1/embeddings",
            json!({
            "input": ["one sentence", "and another, longer one"]}),
        ),
    ];
    for (endpoint, path, body) in cases {
        let bytes = body.to_string();
        let (estimate, _) = LlmRequest::parse(endpoint, bytes.as_bytes(), 64).unwrap();
        let response = client
            .post(mock.url(path))
            .header("x-mock-completion-tokens", "1000")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        let usage = &answer["usage"];
        assert_eq!(usage["prompt_tokens"], estimate.prompt_tokens, "{body}");
        if endpoint != Endpoint::Embeddings {
            assert_eq!(usage["completion_tokens"], estimate.max_output, "{body}");
        }
    }
}

#[tokio::test]
async fn the_filter_reads_the_mocks_streams_as_the_mock_counts_them() {
    let (mock, client) = start().await;
    let body = json!({"messages": [{"role": "user", "content": "Count to ten"}],
                      "stream": true, "stream_options": {"include_usage": true}});
    for reset_after in [None, Some("3")] {
        mock.reset();
        let mut request = client
            .post(mock.url("/v1/chat/completions"))
            .header("x-mock-completion-tokens", "10")
            .body(body.to_string());
        if let Some(k) = reset_after {
            request = request.header("x-mock-reset-after", k);
        }
        let mut response = request.send().await.unwrap();
        let mut scanner = SseScanner::new(false);
        while let Ok(Some(chunk)) = response.chunk().await {
            scanner.feed(&chunk, false);
        }
        scanner.feed(&[], true);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let sent = loop {
            let stats = mock.stats();
            if stats.running == 0 {
                break stats.tenants["anonymous"].completion_tokens;
            }
            assert!(std::time::Instant::now() < deadline, "{stats:?}");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        };
        assert_eq!(scanner.content_chunks, sent, "{reset_after:?}");
        let expected = reset_after.is_none().then_some(Usage {
            input: 3,
            output: 10,
            cached: 0,
        });
        assert_eq!(scanner.usage, expected);
        assert_eq!(scanner.done, reset_after.is_none());
    }
}
