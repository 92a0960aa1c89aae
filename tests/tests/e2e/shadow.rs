//! SPEC 12: shadow mode. Every decision is computed and counted (`shadow_<decision>`)
//! and marked on the answer (`x-fairgate-shadow`), none enforced: nothing is refused,
//! queued or clamped. Globally (`"mode": "shadow"`) or per tenant.

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::upstream::Upstream;
use fairgate_mock::MockConfig;
use serde_json::{json, Value};

use crate::{client, expect_prometheus, get, send, Reply};

fn config(tenants: Value, extra: Value) -> String {
    let mut config: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        tenants,
        None,
    ))
    .expect("json");
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    config.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_request_bucket_refuses_nothing_in_shadow_mode_and_says_what_it_would_have_done() {
    let upstream = Upstream::start().await;
    let config = config(
        json!({"acme": {"weight": 1, "requests_per_second": 0.5, "request_burst": 2},
               "globex": {"weight": 1, "requests_per_second": 0.5, "request_burst": 2, "mode": "enforce"}}),
        json!({"mode": "shadow"}),
    );
    let envoy = Envoy::start(&EnvoyConfig::new(config).upstream("model", upstream.addr));
    let client = client();
    let mut marked = 0;
    for _ in 0..6 {
        let r = get(&client, &envoy.url("/"), &[("x-tenant-id", "acme")]).await;
        assert_eq!(r.status, 200, "shadow mode refused: {}", r.body);
        match r.header("x-fairgate-shadow") {
            Some("rate_limited") => marked += 1,
            None => {}
            other => panic!("unexpected x-fairgate-shadow: {other:?}"),
        }
    }
    assert!(marked >= 3, "{marked} of 6 marked rate_limited (burst 2)");
    assert_eq!(upstream.count(), 6, "every request reached the upstream");
    expect_prometheus(
        &envoy,
        &[&format!(
            "fg_requests{{tenant=\"acme\",decision=\"shadow_rate_limited\"}} {marked}"
        )],
    )
    .await;
    // A tenant that enforces under a global shadow is refused.
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for _ in 0..4 {
            s.push(
                get(&client, &envoy.url("/"), &[("x-tenant-id", "globex")])
                    .await
                    .status,
            );
        }
        s
    };
    assert!(statuses.contains(&429), "globex enforces: {statuses:?}");
}

/// `acme` asks the mock for `max_tokens` (a prompt of 2 tokens), the model answering
/// up to 1000.
async fn ask(envoy: &Envoy, max_tokens: u64) -> Reply {
    let body = json!({"model": "fairgate-mock-1",
                      "messages": [{"role": "user", "content": "hi there"}],
                      "max_tokens": max_tokens});
    let req = client()
        .post(envoy.url("/v1/chat/completions"))
        .header("x-tenant-id", "acme")
        .header("content-type", "application/json")
        .body(body.to_string());
    send(req, &[("x-mock-completion-tokens", "1000")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_in_shadow_mode_neither_clamps_nor_refuses() {
    let mock = fairgate_mock::spawn(
        MockConfig {
            slots: 16,
            prefill_ms: 1,
            token_ms: 0,
            ..MockConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("mock");
    let config = config(
        json!({"acme": {"weight": 1, "tokens_per_minute": 1, "token_burst": 300,
                        "clamp_max_tokens": true, "mode": "shadow"}}),
        json!({"tokens": {"default_max_tokens": 256, "min_clamp_tokens": 8}}),
    );
    let envoy = Envoy::start(&EnvoyConfig::new(config).upstream("mock", mock.addr));
    // 300 tokens: the first (202) passes; the second would be clamped to what is left;
    // the third would be refused.
    let first = ask(&envoy, 200).await;
    assert_eq!(
        (first.status, first.header("x-fairgate-shadow")),
        (200, None)
    );
    let second = ask(&envoy, 200).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.header("x-fairgate-shadow"), Some("clamped"));
    assert_eq!(second.header("x-fairgate-max-tokens"), None, "clamped");
    assert_eq!(
        second.json()["usage"]["completion_tokens"],
        200,
        "the model saw the client's max_tokens"
    );
    let third = ask(&envoy, 200).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(third.header("x-fairgate-shadow"), Some("rate_limited"));
    expect_prometheus(
        &envoy,
        &[
            "fg_requests{tenant=\"acme\",decision=\"admitted\"} 1",
            "fg_requests{tenant=\"acme\",decision=\"shadow_clamped\"} 1",
            "fg_requests{tenant=\"acme\",decision=\"shadow_rate_limited\"} 1",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_in_shadow_mode_queues_and_sheds_nothing() {
    let upstream = Upstream::with_service_time(Duration::from_millis(600)).await;
    let config = config(
        json!({"acme": {"weight": 1}, "free": {"weight": 1, "priority": -1}}),
        json!({"mode": "shadow", "pool": {"max_concurrency": 1}}),
    );
    let envoy = Envoy::start(
        &EnvoyConfig::new(config)
            .concurrency(2)
            .upstream("model", upstream.addr),
    );
    let url = envoy.url("/");
    let start = Instant::now();
    let requests: Vec<_> = ["acme", "acme", "acme", "free"]
        .into_iter()
        .map(|tenant| {
            let url = url.clone();
            tokio::spawn(async move { get(&client(), &url, &[("x-tenant-id", tenant)]).await })
        })
        .collect();
    let mut marks = Vec::new();
    for r in requests {
        let r = r.await.expect("task");
        assert_eq!(r.status, 200, "{}", r.body);
        marks.push(r.header("x-fairgate-shadow").map(str::to_string));
    }
    assert!(
        start.elapsed() < Duration::from_millis(1100),
        "requests waited: {:?}",
        start.elapsed()
    );
    let most = upstream.load().get("acme").map_or(0, |l| l.max_in_flight);
    assert!(
        most >= 3,
        "at most {most} of acme in flight: requests were queued"
    );
    let queued = marks
        .iter()
        .filter(|m| m.as_deref() == Some("queued"))
        .count();
    let shed = marks
        .iter()
        .filter(|m| m.as_deref() == Some("shed"))
        .count();
    assert!(queued >= 2, "marks: {marks:?}");
    assert!(shed <= 1, "marks: {marks:?}");
    // Nothing is left in the pool.
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect_prometheus(&envoy, &["fg_pool_in_flight{cluster=\"shared\"} 0"]).await;
}
