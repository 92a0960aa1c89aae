//! SPEC sections 3 and 4 in tokens: token budgets, reservations settled against the
//! real `usage` (JSON and SSE), streams passed on byte for byte, aborted and reset
//! streams charged for what was delivered, bad bodies refused, and the fair
//! scheduler's cost counted in tokens; through Envoy and the mock model server.

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_mock::{MockConfig, MockHandle};
use serde_json::{json, Value};

use crate::{client, expect_prometheus, prometheus_value, send, Reply};

struct Gateway {
    envoy: Envoy,
    mock: MockHandle,
}

async fn gateway(tenants: Value, pool: Option<Value>, mock: MockConfig, workers: u32) -> Gateway {
    let mock = fairgate_mock::spawn(mock, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let mut config: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        tenants,
        None,
    ))
    .expect("json");
    if let Some(pool) = pool {
        config["pool"] = pool;
    }
    config["tokens"] = json!({"default_max_tokens": 256, "min_clamp_tokens": 8});
    let envoy = Envoy::start(
        &EnvoyConfig::new(config.to_string())
            .concurrency(workers)
            .upstream("mock", mock.addr),
    );
    Gateway { envoy, mock }
}

/// A one-worker gateway for `acme` with `policy`, in front of a fast mock.
async fn acme_gateway(policy: Value) -> Gateway {
    gateway(json!({ "acme": policy }), None, fast_mock(), 1).await
}

impl Gateway {
    /// `acme` asks "hi there" (2 prompt tokens) for up to `max_tokens`; the model
    /// answers `answer` tokens where the cap allows.
    async fn ask(&self, max_tokens: u64, stream: bool, answer: u64) -> Reply {
        let url = self.envoy.url("/v1/chat/completions");
        let body = json_body(&chat("hi there", max_tokens, stream));
        let answer = answer.to_string();
        let headers = [("x-mock-completion-tokens", answer.as_str())];
        post(&client(), &url, "acme", body, &headers).await
    }
}

fn fast_mock() -> MockConfig {
    MockConfig {
        slots: 16,
        prefill_ms: 1,
        token_ms: 1,
        ..MockConfig::default()
    }
}

fn chat(content: &str, max_tokens: u64, stream: bool) -> Value {
    json!({"model": "fairgate-mock-1",
           "messages": [{"role": "user", "content": content}],
           "max_tokens": max_tokens, "stream": stream})
}

/// POSTs `body` (JSON, or raw bytes) to `url` as `tenant`.
async fn post(
    client: &reqwest::Client,
    url: &str,
    tenant: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> Reply {
    let req = client
        .post(url)
        .header("x-tenant-id", tenant)
        .header("content-type", "application/json")
        .body(body);
    send(req, headers).await
}

/// POSTs `total` bytes of spaces to `url` as a chunked body (no content-length), in
/// 64 KiB chunks, while reading the answer; stops sending when the answer is
/// complete or the connection refuses more. Returns the status, the answer's body
/// and the body bytes sent by then.
async fn post_chunked(url: &str, tenant: &str, total: usize) -> (u16, String, usize) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect to Envoy");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\nx-tenant-id: {tenant}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    let sender = tokio::spawn(async move {
        let chunk = vec![b' '; 64 << 10];
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        while counted.load(Ordering::Relaxed) < total {
            let frame = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            if writer.write_all(&frame).await.is_err() {
                return;
            }
            counted.fetch_add(chunk.len(), Ordering::Relaxed);
            // Paced like an upload over a network (64 KiB a millisecond at most): a
            // client that fills loopback's socket buffers while Envoy is descheduled
            // would hand Envoy megabytes in one read, and Envoy's own buffer limit
            // (per_connection_buffer_limit_bytes, 4 MiB) would answer before fairgate
            // saw the body pass its cap (seen once on the 2-core machine).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut answer = Vec::new();
    let complete = |answer: &[u8]| -> Option<(u16, String)> {
        let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))?
            .trim()
            .parse()
            .ok()?;
        let body = answer.get(end..end + length)?;
        Some((status, String::from_utf8_lossy(body).into_owned()))
    };
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(done) = complete(&answer) {
                return Some(done);
            }
            match reader.read_buf(&mut answer).await {
                Ok(0) | Err(_) => return complete(&answer),
                Ok(_) => {}
            }
        }
    })
    .await;
    // The answer is in: whatever is still being sent is cut off.
    sender.abort();
    let sent = sent.load(Ordering::Relaxed);
    let (status, body) = read
        .expect("an answer within 20 s")
        .unwrap_or_else(|| panic!("no whole answer: {}", String::from_utf8_lossy(&answer)));
    (status, body, sent)
}

fn json_body(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The mock's totals for `tenant`: (prompt + completion tokens, completion tokens).
fn used(mock: &MockHandle, tenant: &str) -> (u64, u64) {
    let stats = mock.stats();
    stats.tenants.get(tenant).map_or((0, 0), |t| {
        (t.prompt_tokens + t.completion_tokens, t.completion_tokens)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_holds_real_tokens_in_json_and_streaming_mode() {
    // 100 tokens/s, burst 600; each request reserves 10 + 40 and uses 10 + 20.
    let gw = gateway(
        json!({"acme": {"weight": 1, "tokens_per_minute": 6000, "token_burst": 600}}),
        None,
        fast_mock(),
        2,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");
    let start = Instant::now();
    let end = start + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = client();
            let (mut ok, mut limited) = (0u32, 0u32);
            while Instant::now() < end {
                let body = json_body(&chat(&"x".repeat(40), 40, i % 2 == 0));
                let r = post(
                    &client,
                    &url,
                    "acme",
                    body,
                    &[("x-mock-completion-tokens", "20")],
                )
                .await;
                match r.status {
                    200 => ok += 1,
                    429 => {
                        limited += 1;
                        assert_eq!(r.header("x-ratelimit-limit-tokens"), Some("600"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    s => panic!("unexpected {s}: {}", r.body),
                }
            }
            (ok, limited)
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let (o, l) = t.await.expect("client");
        ok += o;
        limited += l;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (total, _) = used(&gw.mock, "acme");
    let allowed = 100.0 * elapsed + 600.0;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let charged = |kind: &str| {
        prometheus_value(
            &gw.envoy,
            &format!(r#"fg_tokens{{tenant="acme",kind="{kind}"}}"#),
        )
        .unwrap_or(0.0)
    };
    let stats = gw.mock.stats();
    let acme = &stats.tenants["acme"];
    println!(
        "{ok} served, {limited} limited; {total} real tokens of {allowed:.0} allowed; \
         charged {} + {}, the model counted {} + {}",
        charged("input"),
        charged("output"),
        acme.prompt_tokens,
        acme.completion_tokens
    );
    assert!(total as f64 <= allowed, "{total} tokens > {allowed:.0}");
    // Reservations held by the 8 clients at the end (8 × 50) are the most left unused.
    assert!(
        total as f64 >= 0.85 * (allowed - 400.0),
        "{total} tokens: the budget was not used"
    );
    assert!(limited > 0, "the budget must have bound");
    assert_eq!(acme.completed as u32, ok, "every 200 was a complete answer");
}

#[tokio::test]
async fn a_reservation_is_settled_to_the_real_use() {
    // Burst 5000, refilling 1 token a minute: the bucket only moves by settlement.
    let gw = acme_gateway(json!({"weight": 1, "tokens_per_minute": 1, "token_burst": 5000})).await;
    // Reserves 2 + 4000, uses 2 + 100.
    let r = gw.ask(4000, false, 100).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["usage"]["completion_tokens"], 100);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 4892 fits only if 4000 - 100 came back (5000 - 102 = 4898 left).
    let r = gw.ask(4890, true, 100).await;
    assert_eq!(
        r.status, 200,
        "the first reservation was not settled: {}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 204 used in all: 4796 left.
    let r = gw.ask(4850, false, 100).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.error_code(), "rate_limit_exceeded");
    let remaining: u64 = r
        .header("x-ratelimit-remaining-tokens")
        .and_then(|v| v.parse().ok())
        .expect("remaining tokens");
    assert!((4796..=4797).contains(&remaining), "{remaining} left");
    assert_eq!(used(&gw.mock, "acme"), (204, 200));
    expect_prometheus(
        &gw.envoy,
        &[
            r#"fg_tokens{tenant="acme",kind="input"} 4"#,
            r#"fg_tokens{tenant="acme",kind="output"} 200"#,
            r#"fg_tokens_reserved{tenant="acme"} 8894"#,
            r#"fg_requests{tenant="acme",decision="rate_limited"} 1"#,
        ],
    )
    .await;
}

#[tokio::test]
async fn a_clamped_request_is_served_shorter_and_says_so() {
    let gw = acme_gateway(
        json!({"weight": 1, "tokens_per_minute": 1, "token_burst": 300,
                                 "clamp_max_tokens": true}),
    )
    .await;
    let r = gw.ask(200, false, 1000).await;
    assert_eq!((r.status, r.header("x-fairgate-max-tokens")), (200, None));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 300 - 202 = 98 left: prompt 2, answer 96.
    let r = gw.ask(200, false, 1000).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-fairgate-max-tokens"), Some("96"));
    assert_eq!(
        r.json()["usage"]["completion_tokens"],
        96,
        "the model saw max_tokens 96"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = gw.ask(200, false, 1000).await;
    assert_eq!(r.status, 429, "nothing left worth an answer");
}

/// `body` with the mock's per-request ids made equal.
fn without_ids(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find("-mock-") {
        out.push_str(&rest[..i + 6]);
        rest = rest[i + 6..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('N');
    }
    out.push_str(rest);
    out
}

/// Chunks of answer text in SSE `bytes` (the role chunk's empty content aside).
fn content_chunks(bytes: &str) -> u64 {
    (bytes.matches("\"content\":\"").count() - bytes.matches("\"content\":\"\"").count()) as u64
}

/// A stream read chunk by chunk: (the bytes, the number of chunks).
async fn read_stream(resp: reqwest::Response) -> (String, usize) {
    let mut resp = resp;
    let mut bytes = Vec::new();
    let mut chunks = 0;
    while let Ok(Some(c)) = resp.chunk().await {
        bytes.extend_from_slice(&c);
        chunks += 1;
    }
    (String::from_utf8(bytes).expect("utf-8"), chunks)
}

#[tokio::test]
async fn streams_reach_the_client_byte_for_byte_without_the_injected_usage_chunk() {
    let gw = acme_gateway(json!({"weight": 1, "tokens_per_minute": 60000})).await;
    let client = client();
    let send = |url: String, body: Value| {
        client
            .post(url)
            .header("x-tenant-id", "acme")
            .header("x-fairgate-tenant", "acme")
            .header("x-mock-completion-tokens", "12")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    // What the model server sends when asked for usage, straight from it.
    let mut asked = chat("tell me", 50, true);
    asked["stream_options"] = json!({"include_usage": true});
    let direct = send(gw.mock.url("/v1/chat/completions"), asked.clone())
        .await
        .expect("direct");
    let (direct, _) = read_stream(direct).await;
    let events: Vec<&str> = direct.split_inclusive("\n\n").collect();
    let usage_event = events
        .iter()
        .find(|e| e.contains("\"choices\":[]"))
        .expect("a usage chunk");
    let without_usage: String = events
        .iter()
        .filter(|e| *e != usage_event)
        .copied()
        .collect();
    assert!(direct.ends_with("data: [DONE]\n\n"));

    // Through fairgate, not asking: the same bytes, less the usage chunk fairgate
    // asked for on the client's behalf.
    let resp = send(
        gw.envoy.url("/v1/chat/completions"),
        chat("tell me", 50, true),
    )
    .await
    .expect("stream");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let (through, chunks) = read_stream(resp).await;
    assert_eq!(without_ids(&through), without_ids(&without_usage));
    assert!(chunks > 1, "streamed, not buffered: {chunks} chunks");
    // Asking for usage itself, the client gets it, untouched.
    let resp = send(gw.envoy.url("/v1/chat/completions"), asked)
        .await
        .expect("stream");
    let (through, _) = read_stream(resp).await;
    assert_eq!(without_ids(&through), without_ids(&direct));
    // Both were charged from their usage chunk: 2 prompt + 12 answer each (the
    // direct request bypassed fairgate).
    expect_prometheus(
        &gw.envoy,
        &[
            r#"fg_tokens{tenant="acme",kind="input"} 4"#,
            r#"fg_tokens{tenant="acme",kind="output"} 24"#,
        ],
    )
    .await;
}

#[tokio::test]
async fn a_stream_cut_into_seven_byte_pieces_reads_the_same() {
    let gw = acme_gateway(json!({"weight": 1, "tokens_per_minute": 60000})).await;
    let resp = client()
        .post(gw.envoy.url("/v1/chat/completions"))
        .header("x-tenant-id", "acme")
        .header("x-mock-completion-tokens", "20")
        .header("x-mock-split-bytes", "7")
        .header("content-type", "application/json")
        .body(chat("tell me", 50, true).to_string())
        .send()
        .await
        .expect("stream");
    let (through, chunks) = read_stream(resp).await;
    assert!(chunks > 20, "cut up on the way: {chunks} reads");
    assert!(through.ends_with("data: [DONE]\n\n"), "{through}");
    assert!(
        !through.contains("\"choices\":[]"),
        "the injected usage chunk was stripped"
    );
    assert_eq!(content_chunks(&through), 20);
    // Charged from the usage chunk, found across the cuts: 2 prompt + 20 answer.
    expect_prometheus(
        &gw.envoy,
        &[
            r#"fg_tokens{tenant="acme",kind="input"} 2"#,
            r#"fg_tokens{tenant="acme",kind="output"} 20"#,
        ],
    )
    .await;
}

/// A gateway whose one slot shows whether it is given back: with a slot leaked, the
/// next request would wait out the 2 s queue timeout and get 503.
async fn one_slot_gateway(token_ms: u64) -> Gateway {
    gateway(
        json!({"acme": {"weight": 1, "tokens_per_minute": 600000, "token_burst": 100000}}),
        Some(json!({"max_concurrency": 1, "queue_timeout_ms": 2000})),
        MockConfig {
            slots: 4,
            prefill_ms: 1,
            token_ms,
            ..MockConfig::default()
        },
        2,
    )
    .await
}

async fn slot_is_free(gw: &Gateway) {
    let client = client();
    let url = gw.envoy.url("/v1/chat/completions");
    let started = Instant::now();
    let r = post(
        &client,
        &url,
        "acme",
        json_body(&chat("again", 5, false)),
        &[("x-mock-completion-tokens", "5")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the slot was held"
    );
    expect_prometheus(&gw.envoy, &[r#"fg_pool_in_flight{cluster="shared"} 0"#]).await;
}

fn output_charged(envoy: &Envoy) -> u64 {
    prometheus_value(envoy, r#"fg_tokens{tenant="acme",kind="output"}"#).unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_stream_is_charged_for_what_was_delivered() {
    let gw = one_slot_gateway(20).await;
    let resp = client()
        .post(gw.envoy.url("/v1/chat/completions"))
        .header("x-tenant-id", "acme")
        .header("x-mock-completion-tokens", "200")
        .header("content-type", "application/json")
        .body(chat("go on", 500, true).to_string())
        .send()
        .await
        .expect("stream");
    let mut resp = resp;
    let mut received = String::new();
    while content_chunks(&received) < 10 {
        let c = resp.chunk().await.expect("chunk").expect("more");
        received.push_str(&String::from_utf8_lossy(&c));
    }
    let delivered = content_chunks(&received);
    drop(resp);
    // The mock sees the reset and stops; wait for its count to settle.
    let deadline = Instant::now() + Duration::from_secs(3);
    while gw
        .mock
        .stats()
        .tenants
        .get("acme")
        .is_none_or(|t| t.in_flight > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, sent) = used(&gw.mock, "acme");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let charged = output_charged(&gw.envoy);
    println!("delivered {delivered}, charged {charged}, the model sent {sent}");
    assert!(
        charged >= delivered,
        "charged {charged} < delivered {delivered}"
    );
    assert!(
        charged <= sent && sent < 200,
        "charged {charged}, sent {sent}"
    );
    slot_is_free(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reset_mid_stream_is_charged_for_what_was_delivered() {
    let gw = one_slot_gateway(2).await;
    let resp = client()
        .post(gw.envoy.url("/v1/chat/completions"))
        .header("x-tenant-id", "acme")
        .header("x-mock-completion-tokens", "200")
        .header("x-mock-reset-after", "10")
        .header("content-type", "application/json")
        .body(chat("go on", 500, true).to_string())
        .send()
        .await
        .expect("stream");
    let (received, _) = read_stream(resp).await;
    assert!(!received.contains("[DONE]"), "the stream was cut");
    let delivered = content_chunks(&received);
    assert!(delivered <= 10, "{delivered}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while output_charged(&gw.envoy) < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        output_charged(&gw.envoy),
        10,
        "the ten chunks the upstream sent"
    );
    slot_is_free(&gw).await;
}

#[tokio::test]
async fn bad_bodies_get_a_clear_4xx_and_envoy_keeps_serving() {
    let gw = acme_gateway(json!({"weight": 1, "tokens_per_minute": 60000})).await;
    let url = gw.envoy.url("/v1/chat/completions");
    let client = client();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 400, ""),
        (b"{\"messages\": [".to_vec(), 400, ""),
        (b"\xff\xfe{}".to_vec(), 400, ""),
        (b"[1, 2, 3]".to_vec(), 400, ""),
        (br#"{"max_tokens": -5}"#.to_vec(), 400, "max_tokens"),
        (br#"{"max_tokens": "many"}"#.to_vec(), 400, "max_tokens"),
        (br#"{"max_tokens": 1e400}"#.to_vec(), 400, ""),
        (
            br#"{"max_tokens": 99999999999999999999999}"#.to_vec(),
            400,
            "max_tokens",
        ),
        (
            br#"{"max_completion_tokens": 1.5}"#.to_vec(),
            400,
            "max_completion_tokens",
        ),
        (br#"{"stream": "yes"}"#.to_vec(), 400, "stream"),
        (
            br#"{"messages": [], "stream_options": 3}"#.to_vec(),
            400,
            "stream_options",
        ),
        (vec![b' '; 10 << 20], 413, ""),
    ];
    for (body, status, param) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let r = post(&client, &url, "acme", body, &[]).await;
        assert_eq!(r.status, status, "{shown}: {}", r.body);
        let error = &r.json()["error"];
        assert_eq!(error["type"], "invalid_request_error", "{shown}");
        if !param.is_empty() {
            assert_eq!(error["param"], param, "{shown}");
        }
    }
    // The same 10 MB without a content-length (chunked): refused by fairgate (an
    // OpenAI error body, not Envoy's own plain 413 for its buffer limit) once what
    // Envoy buffered passes the cap.
    let (status, body, sent) = post_chunked(&url, "acme", 10 << 20).await;
    assert_eq!(status, 413, "{body}");
    let error: Value = serde_json::from_str(&body).expect("an OpenAI error body");
    assert_eq!(error["error"]["code"], "request_too_large", "{body}");
    // How much was sent by then depends on socket buffers: informative only.
    eprintln!("a chunked 10 MiB body: fairgate's 413 once {sent} bytes were sent");
    // The model server had the headers of each (they go on before the body is
    // read) but never a whole request: nothing was generated.
    let answered = gw
        .mock
        .stats()
        .tenants
        .get("acme")
        .map_or(0, |t| t.completed);
    assert_eq!(answered, 0, "nothing was answered by the model");
    let r = post(
        &client,
        &url,
        "acme",
        json_body(&chat("fine", 5, false)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    expect_prometheus(
        &gw.envoy,
        &[
            r#"fg_requests{tenant="acme",decision="bad_request"} 11"#,
            r#"fg_requests{tenant="acme",decision="too_large"} 2"#,
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_admission_counts_tokens_not_requests() {
    // Equal weights; `long` asks for answers ten times as long as `short`'s, with the
    // same max_tokens (the estimate is equal; the settlement tells them apart).
    let gw = gateway(
        json!({"short": {"weight": 1}, "long": {"weight": 1}}),
        Some(json!({"max_concurrency": 2, "queue_timeout_ms": 60000})),
        MockConfig {
            slots: 8,
            prefill_ms: 0,
            token_ms: 2,
            ..MockConfig::default()
        },
        2,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");
    let end = Instant::now() + Duration::from_secs(6);
    let mut tasks = Vec::new();
    for (tenant, tokens) in [("short", "6"), ("long", "60")] {
        for _ in 0..6 {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let client = client();
                while Instant::now() < end {
                    let body = json_body(&chat("same prompt", 64, false));
                    let r = post(
                        &client,
                        &url,
                        tenant,
                        body,
                        &[("x-mock-completion-tokens", tokens)],
                    )
                    .await;
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    gw.mock.reset();
    for t in tasks {
        t.await.expect("client");
    }
    let stats = gw.mock.stats();
    let cost = |t: &str| {
        stats
            .tenants
            .get(t)
            .map_or(0.0, |s| (s.prompt_tokens + 2 * s.completion_tokens) as f64)
    };
    let requests = |t: &str| stats.tenants.get(t).map_or(0, |s| s.completed);
    let (short, long) = (cost("short"), cost("long"));
    println!(
        "short: {} requests, cost {short}; long: {} requests, cost {long}",
        requests("short"),
        requests("long")
    );
    let ratio = short / long;
    assert!(
        (0.75..=1.33).contains(&ratio),
        "service in tokens should be equal: {short} vs {long}"
    );
    assert!(
        requests("short") > 4 * requests("long"),
        "so the short answers get many more requests"
    );
}

/// `acme` asks `model` for `max_tokens` (a prompt of 2 tokens), all of which the
/// model uses.
async fn ask_model(gw: &Gateway, model: &str, max_tokens: u64) -> Reply {
    let url = gw.envoy.url("/v1/chat/completions");
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi there"}],
                      "max_tokens": max_tokens});
    let headers = [("x-mock-completion-tokens", "1000")];
    post(&client(), &url, "acme", json_body(&body), &headers).await
}

#[tokio::test]
async fn a_model_budget_holds_beside_the_tenants_own() {
    let gw = acme_gateway(json!({
        "weight": 1, "tokens_per_minute": 1, "token_burst": 1000,
        "models": {"small-model": {"tokens_per_minute": 1, "token_burst": 300}}
    }))
    .await;
    let first = ask_model(&gw, "small-model", 200).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // 98 tokens left in the model's budget: refused, and it says so.
    let second = ask_model(&gw, "small-model", 200).await;
    assert_eq!(second.status, 429, "{}", second.body);
    assert_eq!(second.error_code(), "rate_limit_exceeded");
    assert_eq!(second.json()["error"]["param"], "model");
    assert!(
        second.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("small-model")),
        "{}",
        second.body
    );
    assert_eq!(second.header("x-ratelimit-limit-tokens"), Some("300"));
    // Another model takes from the tenant's budget alone (798 left), which still holds.
    let other = ask_model(&gw, "big-model", 500).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let over = ask_model(&gw, "big-model", 500).await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(over.header("x-ratelimit-limit-tokens"), Some("1000"));
    assert_eq!(
        gw.mock.stats().requests_total,
        2,
        "refused requests reach no model"
    );
}
