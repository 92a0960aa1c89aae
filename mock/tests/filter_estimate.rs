//! The mock's `usage` agrees with what fairgate's filter reserves for the same body:
//! the prompt estimate exactly, and the answer's length where the request caps it.

use fairgate_filter::llm::{Endpoint, LlmRequest};
use fairgate_mock::{spawn, MockConfig};
use serde_json::{json, Value};

#[tokio::test]
async fn usage_matches_the_filters_estimate_and_cap() {
    let mock = spawn(
        MockConfig {
            prefill_ms: 0,
            token_ms: 0,
            ..MockConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
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
