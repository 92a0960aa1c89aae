//! The mock through real HTTP: one test per behaviour in `mock/README.md`.

// The helpers are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use fairgate_mock::{spawn, MockConfig, MockHandle, Stats};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";
const EMBEDDINGS: &str = "/v1/embeddings";

fn fast() -> MockConfig {
    MockConfig {
        prefill_ms: 1,
        token_ms: 1,
        default_completion_tokens: 8,
        ..MockConfig::default()
    }
}

async fn start(config: MockConfig) -> MockHandle {
    spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("mock starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(
    mock: &MockHandle,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Response {
    try_post(mock, path, headers, body).await.expect("answered")
}

async fn try_post(
    mock: &MockHandle,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client()
        .post(mock.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// The `data:` payloads of an SSE body.
fn events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("a data event").to_owned())
        .collect()
}

fn chunks(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// Waits (5 s at most) until the mock's stats satisfy `done`.
async fn until(mock: &MockHandle, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = mock.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "stats never got there: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn chat(content: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": content}]})
}

/// Starts a streamed answer too long to end during the test; it holds a slot (the
/// answer's headers come after prefill, in the slot) until the response is dropped.
async fn hold_a_slot(mock: &MockHandle) -> reqwest::Response {
    let mut body = chat("hold the slot");
    body["stream"] = json!(true);
    let completion_tokens = ("x-mock-completion-tokens", "100000");
    post(mock, CHAT, &[completion_tokens], &body).await
}

/// Sends `tenant`'s chat request from a task of its own, which gives the status.
fn spawn_chat(mock: &MockHandle, tenant: &'static str) -> JoinHandle<reqwest::StatusCode> {
    let url = mock.url(CHAT);
    tokio::spawn(async move {
        client()
            .post(url)
            .header("x-fairgate-tenant", tenant)
            .body(chat("hello").to_string())
            .send()
            .await
            .unwrap()
            .status()
    })
}

#[tokio::test]
async fn chat_usage_is_prompt_bytes_over_four_and_a_token_a_word() {
    let mock = start(fast()).await;
    let body = json!({"model": "llama", "max_tokens": 32, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
    ]});
    let response = post(&mock, CHAT, &[("x-fairgate-tenant", "acme")], &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-mock-server"], "mock");
    let answer = json_of(response).await;
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "llama");
    assert_eq!(answer["created"], 0);
    let choice = &answer["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "hello acme from mock tok4 tok5 tok6 tok7"
    );
    assert_eq!(choice["finish_reason"], "stop");
    // 9 + 9 bytes of text: ceil(18 / 4) = 5; the default answer: 8 words.
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );
}

#[tokio::test]
async fn the_answer_length_header_is_capped_by_max_tokens() {
    let mock = start(fast()).await;
    let body = json!({"prompt": ["abcd", "efgh"], "max_tokens": 6});
    let capped = post(
        &mock,
        COMPLETIONS,
        &[("x-mock-completion-tokens", "20")],
        &body,
    )
    .await;
    let answer = json_of(capped).await;
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], "fairgate-mock-1", "the configured model");
    assert_eq!(
        answer["choices"][0]["text"],
        "hello anonymous from mock tok4 tok5"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "length");
    assert_eq!(answer["usage"]["prompt_tokens"], 2);
    assert_eq!(answer["usage"]["completion_tokens"], 6);
    let short = post(
        &mock,
        COMPLETIONS,
        &[("x-mock-completion-tokens", "2")],
        &body,
    )
    .await;
    let answer = json_of(short).await;
    assert_eq!(answer["choices"][0]["text"], "hello anonymous");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn cached_tokens_come_from_the_header_up_to_the_prompt() {
    let mock = start(fast()).await;
    let prompt = "x".repeat(40);
    for (cached, expected) in [("4", 4), ("100", 10)] {
        let response = post(
            &mock,
            CHAT,
            &[("x-mock-cached-tokens", cached)],
            &chat(&prompt),
        )
        .await;
        let usage = json_of(response).await["usage"].clone();
        assert_eq!(usage["prompt_tokens"], 10);
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], expected);
    }
    assert_eq!(mock.stats().tenants["anonymous"].cached_tokens, 14);
}

#[tokio::test]
async fn a_stream_sends_the_role_a_chunk_a_token_the_finish_and_done() {
    let mock = start(fast()).await;
    let mut body = chat("hi");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(3);
    let response = post(&mock, CHAT, &[], &body).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-mock-server"], "mock");
    let events = events(&response.text().await.unwrap());
    assert_eq!(events.len(), 6, "{events:?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks = chunks(&events);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "hello anonymous from");
    assert!(chunks[..4]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn include_usage_adds_a_usage_chunk_before_done() {
    let mock = start(fast()).await;
    let body = json!({"prompt": "abcdefgh", "stream": true,
                      "stream_options": {"include_usage": true}});
    let response = post(
        &mock,
        COMPLETIONS,
        &[("x-mock-completion-tokens", "2")],
        &body,
    )
    .await;
    let events = events(&response.text().await.unwrap());
    assert_eq!(events.len(), 5, "2 tokens, finish, usage, done: {events:?}");
    assert_eq!(events[4], "[DONE]");
    let chunks = chunks(&events);
    assert_eq!(chunks[0]["choices"][0]["text"], "hello");
    assert_eq!(chunks[1]["choices"][0]["text"], " anonymous");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert!(chunks[..3]
        .iter()
        .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
    assert_eq!(chunks[3]["choices"], json!([]));
    assert_eq!(
        chunks[3]["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );
}

#[tokio::test]
async fn stream_chunks_are_sent_as_they_are_made() {
    let mock = start(MockConfig {
        prefill_ms: 0,
        token_ms: 100,
        ..fast()
    })
    .await;
    let body = json!({"prompt": "x", "stream": true, "max_tokens": 3});
    let mut response = post(&mock, COMPLETIONS, &[], &body).await;
    let mut arrivals = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        let text = String::from_utf8_lossy(&chunk).into_owned();
        arrivals.push((Instant::now(), text));
    }
    let tokens: Vec<Instant> = arrivals
        .iter()
        .filter(|(_, text)| text.contains("\"text\":\"") && !text.contains("\"text\":\"\""))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(tokens.len(), 3, "one read a token: {arrivals:?}");
    // A buffered body would bring them all at once; the tokens are 100 ms apart.
    assert!(tokens[2] - tokens[0] >= Duration::from_millis(150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_requests_run_at_once_than_there_are_slots() {
    let mock = start(MockConfig {
        slots: 2,
        token_ms: 2,
        ..fast()
    })
    .await;
    let clients: Vec<_> = ["acme", "globex"]
        .iter()
        .cycle()
        .take(10)
        .map(|tenant| spawn_chat(&mock, tenant))
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap(), 200);
    }
    let stats = until(&mock, |s| s.running == 0).await;
    assert_eq!(stats.max_running, 2);
    assert!(stats.max_waiting >= 1, "{stats:?}");
    assert_eq!(stats.requests_total, 10);
    for tenant in ["acme", "globex"] {
        let t = &stats.tenants[tenant];
        assert_eq!((t.completed, t.in_flight, t.completion_tokens), (5, 0, 40));
        assert!(t.max_running <= 2);
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_overloaded() {
    let mock = start(MockConfig {
        slots: 1,
        max_queue: 1,
        ..fast()
    })
    .await;
    let holder = hold_a_slot(&mock).await;
    let waiter = spawn_chat(&mock, "waiter");
    until(&mock, |s| s.waiting == 1).await;
    let refused = post(&mock, CHAT, &[("x-fairgate-tenant", "late")], &chat("x")).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["x-mock-server"], "mock");
    let error = json_of(refused).await;
    assert_eq!(error["error"]["code"], "overloaded");
    assert_eq!(error["error"]["type"], "server_error");
    // The client holding the slot goes away: its slot goes to the waiter.
    drop(holder);
    assert_eq!(waiter.await.unwrap(), 200);
    let stats = until(&mock, |s| s.running == 0).await;
    assert_eq!(stats.tenants["anonymous"].aborted, 1);
    assert_eq!(stats.tenants["waiter"].completed, 1);
    assert_eq!(stats.tenants["late"].rejected, 1);
    assert_eq!(stats.max_running, 1);
}

#[tokio::test]
async fn a_client_that_goes_away_frees_its_slot() {
    let mock = start(MockConfig { slots: 1, ..fast() }).await;
    let request = client()
        .post(mock.url(CHAT))
        .header("x-mock-completion-tokens", "100000")
        .timeout(Duration::from_millis(200))
        .body(chat("x").to_string())
        .send();
    assert!(request.await.unwrap_err().is_timeout());
    let stats = until(&mock, |s| s.running == 0).await;
    let t = &stats.tenants["anonymous"];
    assert_eq!((t.aborted, t.completion_tokens, t.in_flight), (1, 0, 0));
    let next = post(&mock, CHAT, &[], &chat("x")).await;
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn reset_after_aborts_a_stream_and_counts_the_tokens_sent() {
    let mock = start(fast()).await;
    let mut body = chat("x");
    body["stream"] = json!(true);
    let mut response = post(&mock, CHAT, &[("x-mock-reset-after", "3")], &body).await;
    assert_eq!(response.status(), 200);
    let mut received = String::new();
    let ended = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(None) => break "a clean end",
            Err(_) => break "a reset",
        }
    };
    assert_eq!(ended, "a reset");
    let events = events(&received);
    assert_eq!(events.len(), 4, "the role and 3 tokens: {events:?}");
    assert!(!received.contains("[DONE]") && !received.contains("finish_reason\":\""));
    let stats = until(&mock, |s| s.running == 0).await;
    let t = &stats.tenants["anonymous"];
    assert_eq!((t.aborted, t.completed, t.completion_tokens), (1, 0, 3));
}

#[tokio::test]
async fn reset_after_without_stream_drops_the_connection() {
    let mock = start(fast()).await;
    let sent = try_post(&mock, CHAT, &[("x-mock-reset-after", "0")], &chat("x")).await;
    assert!(sent.is_err(), "no answer at all: {sent:?}");
    let stats = until(&mock, |s| s.running == 0).await;
    let t = &stats.tenants["anonymous"];
    assert_eq!((t.aborted, t.prompt_tokens, t.completion_tokens), (1, 1, 0));
}

#[tokio::test]
async fn an_injected_status_is_an_openai_error_after_prefill() {
    let mock = start(MockConfig {
        prefill_ms: 50,
        ..fast()
    })
    .await;
    let started = Instant::now();
    let response = post(&mock, CHAT, &[("x-mock-status", "500")], &chat("x")).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(response.status(), 500);
    let error = json_of(response).await["error"].clone();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("server_error"), Some("mock_injected"))
    );
    let response = post(
        &mock,
        EMBEDDINGS,
        &[("x-mock-status", "429")],
        &json!({"input": "x"}),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        json_of(response).await["error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(mock.stats().tenants["anonymous"].failed, 2);
}

#[tokio::test]
async fn stats_count_each_tenant_apart_and_reset_zeroes_them() {
    let mock = start(fast()).await;
    let prompt = "y".repeat(20);
    for tenant in ["acme", "acme", "globex"] {
        post(
            &mock,
            CHAT,
            &[("x-fairgate-tenant", tenant)],
            &chat(&prompt),
        )
        .await;
    }
    let response = client().get(mock.url("/mock/stats")).send().await.unwrap();
    assert_eq!(response.headers()["x-mock-server"], "mock");
    let stats: Stats = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(stats, mock.stats());
    assert_eq!(
        (stats.name.as_str(), stats.slots, stats.requests_total),
        ("mock", 4, 3)
    );
    let acme = &stats.tenants["acme"];
    assert_eq!(
        (
            acme.requests,
            acme.completed,
            acme.prompt_tokens,
            acme.completion_tokens
        ),
        (2, 2, 10, 16)
    );
    assert_eq!(stats.tenants["globex"].completed, 1);
    let reset = client().post(mock.url("/mock/reset")).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    let stats = mock.stats();
    assert!(
        stats.tenants.is_empty() && stats.requests_total == 0,
        "{stats:?}"
    );
}

#[tokio::test]
async fn metrics_show_the_load_under_vllm_names() {
    let mock = start(MockConfig {
        slots: 2,
        model: "llama".into(),
        ..fast()
    })
    .await;
    let _holder = hold_a_slot(&mock).await;
    let page = client()
        .get(mock.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "vllm:num_requests_running{model_name=\"llama\"} 1",
        "vllm:num_requests_waiting{model_name=\"llama\"} 0",
        "vllm:kv_cache_usage_perc{model_name=\"llama\"} 0.5",
        "mock_requests_total 1",
    ] {
        assert!(
            page.lines().any(|l| l == line),
            "{line} missing from:\n{page}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_400_openai_error() {
    let mock = start(fast()).await;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], String);
    let cases: [Case; 5] = [
        (CHAT, &[], "not json".into()),
        (CHAT, &[], json!({"messages": "hi"}).to_string()),
        (
            COMPLETIONS,
            &[],
            json!({"prompt": "x", "max_tokens": -1}).to_string(),
        ),
        (EMBEDDINGS, &[], json!({"inputs": "x"}).to_string()),
        (CHAT, &[("x-mock-status", "abc")], chat("x").to_string()),
    ];
    for (path, headers, body) in cases {
        let mut request = client().post(mock.url(path)).body(body.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{path} {body}");
        assert_eq!(response.headers()["x-mock-server"], "mock");
        let error = json_of(response).await["error"].clone();
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(mock.stats().tenants["anonymous"].failed, 5);
    let missing = client().get(mock.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let wrong_method = client().get(mock.url(CHAT)).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn embeddings_are_the_same_unit_vectors_for_the_same_input() {
    let mock = start(fast()).await;
    let body = json!({"model": "embed", "input": ["abc", "defgh"], "dimensions": 4});
    let first = json_of(post(&mock, EMBEDDINGS, &[], &body).await).await;
    let again = json_of(post(&mock, EMBEDDINGS, &[], &body).await).await;
    assert_eq!(first, again);
    assert_eq!(first["model"], "embed");
    assert_eq!(
        first["usage"],
        json!({"prompt_tokens": 2, "total_tokens": 2})
    );
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    let vector: Vec<f64> = serde_json::from_value(data[1]["embedding"].clone()).unwrap();
    assert_eq!(vector.len(), 4);
    assert!((vector.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-5);
    let mut base64 = body.clone();
    base64["encoding_format"] = json!("base64");
    let encoded = json_of(post(&mock, EMBEDDINGS, &[], &base64).await).await;
    assert_eq!(
        encoded["data"][1]["embedding"].as_str().map(str::len),
        Some(24)
    );
}

#[tokio::test]
async fn models_lists_the_configured_model() {
    let mock = start(MockConfig {
        name: "pool_a".into(),
        ..fast()
    })
    .await;
    let response = client().get(mock.url("/v1/models")).send().await.unwrap();
    assert_eq!(response.headers()["x-mock-server"], "pool_a");
    let models = json_of(response).await;
    assert_eq!(models["data"][0]["id"], "fairgate-mock-1");
    assert_eq!(models["object"], "list");
}

#[tokio::test]
async fn a_stopped_mock_no_longer_answers() {
    let mock = start(fast()).await;
    let url = mock.url("/v1/models");
    mock.stop();
    tokio::task::yield_now().await;
    let answer = client()
        .get(url)
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(answer.is_err(), "{answer:?}");
}

#[tokio::test]
async fn invalid_configs_are_refused() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let no_slots = MockConfig { slots: 0, ..fast() };
    assert!(spawn(no_slots, addr).await.is_err());
    let bad_name = MockConfig {
        name: "a\nb".into(),
        ..fast()
    };
    assert!(spawn(bad_name, addr).await.is_err());
}
