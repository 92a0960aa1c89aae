//! SPEC sections 1, 3 and 6: a request that fairgate refuses never reaches a model
//! server. Not its headers, not a connection: a tenant over its budget costs the
//! shared pool nothing, and a request waiting for a slot has sent nothing either.
//! Counted at the wire by a tap (`fairgate_e2e::tap`) between Envoy and the mock model
//! server.

use std::time::{Duration, Instant};

use fairgate_e2e::flood::{self, chat, Body, BODIES};
use fairgate_e2e::plugin;
use fairgate_e2e::tap::{Tap, TappedGateway};
use serde_json::{json, Value};

use crate::{client, expect_prometheus, send, Reply};

/// A gateway (`workers` workers) with fairgate (`tenants`, identity by `x-tenant-id`,
/// the other top-level fields in `extra`) in front of the tap and the mock.
async fn gateway(tenants: Value, extra: Value, workers: u32, hold_headers: bool) -> Gateway {
    let mut config: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        tenants,
        None,
    ))
    .expect("json");
    for (key, value) in extra.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    Gateway(TappedGateway::start(config.to_string(), workers, hold_headers).await)
}

struct Gateway(TappedGateway);

impl std::ops::Deref for Gateway {
    type Target = TappedGateway;
    fn deref(&self) -> &TappedGateway {
        &self.0
    }
}

impl Gateway {
    async fn ask(&self, tenant: &str, body: Body, max_tokens: u64, answer: u64) -> u16 {
        let url = self.envoy.url("/v1/chat/completions");
        flood::ask(&client(), &url, tenant, body, max_tokens, answer).await
    }
}

async fn post(url: &str, tenant: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if !tenant.is_empty() {
        req = req.header("x-tenant-id", tenant);
    }
    send(req, headers).await
}

/// The tenant of every request head that reached the upstream, in order.
fn tenants_at_upstream(tap: &Tap) -> Vec<String> {
    tap.heads().iter().map(|h| h.tenant().to_string()).collect()
}

/// Waits (up to 5 s) until `tenant` has `n` request heads at the upstream.
async fn wait_for_heads(tap: &Tap, tenant: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while tap.heads_of(tenant) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tap.heads_of(tenant), n, "request heads of {tenant}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_refused_for_its_identity_body_or_budget_reaches_the_upstream() {
    let gw = gateway(
        json!({
            "acme": {"weight": 1},
            "limited": {"weight": 1, "requests_per_second": 0.01, "request_burst": 1},
            "thrifty": {"weight": 1, "tokens_per_minute": 60, "token_burst": 100}
        }),
        json!({"tokens": {"default_max_tokens": 64, "max_body_bytes": 4096}}),
        2,
        true,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");

    // Identity and the body's own faults: nothing has been admitted yet, so the
    // upstream must not even see a connection.
    let missing = post(&url, "", chat(8, false), &[]).await;
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (401, "missing_tenant")
    );
    let unknown = post(&url, "stranger", chat(8, false), &[]).await;
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (403, "unknown_tenant")
    );
    let bad = post(&url, "acme", b"{not json".to_vec(), &[]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let large = post(&url, "acme", vec![b' '; 5000], &[]).await;
    assert_eq!(large.status, 413, "{}", large.body);
    let chunked_large =
        flood::post_chunked(&url, &[b' '; 8000], &[("x-tenant-id", "acme")], None).await;
    assert_eq!(chunked_large, 413);
    assert_eq!(
        (
            gw.tap.connections(),
            gw.tap.heads().len(),
            gw.tap.partial_bytes()
        ),
        (0, 0, 0),
        "401, 403, 400 and 413 reached the upstream"
    );
    for reply in [&missing, &unknown, &bad, &large] {
        // No retry can fix these: the OpenAI SDKs are told not to try.
        assert_eq!(
            reply.header("x-should-retry"),
            Some("false"),
            "{}",
            reply.status
        );
    }

    // Budgets: the first request of each tenant is admitted, the rest are not.
    assert_eq!(gw.ask("limited", Body::Json, 8, 8).await, 200);
    let limited = post(&url, "limited", chat(8, false), &[]).await;
    assert_eq!(
        (
            limited.status,
            limited.header("x-ratelimit-remaining-requests")
        ),
        (429, Some("0"))
    );
    assert_eq!(limited.header("x-should-retry"), None, "waiting helps");
    assert_eq!(gw.ask("thrifty", Body::Json, 64, 64).await, 200);
    for body in BODIES {
        assert_eq!(gw.ask("thrifty", body, 64, 64).await, 429, "{body:?}");
    }
    wait_for_heads(&gw.tap, "limited", 1).await;
    wait_for_heads(&gw.tap, "thrifty", 1).await;

    assert_eq!(
        tenants_at_upstream(&gw.tap),
        ["limited", "thrifty"],
        "only the two admitted requests reach the upstream"
    );
    assert_eq!(gw.tap.partial_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_refused_or_waiting_at_admission_reaches_the_upstream() {
    let gw = gateway(
        json!({
            "acme": {"weight": 1},
            "sheddable": {"weight": 1, "priority": -1}
        }),
        json!({
            "pool": {"max_concurrency": 1, "queue_timeout_ms": 600, "max_queue_per_tenant": 1},
            "tokens": {"default_max_tokens": 64}
        }),
        2,
        true,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");

    // Fair admission: acme holds the one slot (about 1.2 s of answer).
    let holder = tokio::spawn({
        let url = url.clone();
        async move {
            let answer = [("x-mock-completion-tokens", "1500")];
            post(&url, "acme", chat(1500, false), &answer).await.status
        }
    });
    wait_for_heads(&gw.tap, "acme", 1).await;
    let shed = post(&url, "sheddable", chat(8, false), &[]).await;
    assert_eq!(
        (shed.status, shed.error_code().as_str()),
        (503, "overloaded")
    );
    let queued = tokio::spawn({
        let url = url.clone();
        async move { post(&url, "acme", chat(8, true), &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gw.tap.heads_of("acme"),
        1,
        "a queued request sent its headers"
    );
    let full = post(&url, "acme", chat(8, false), &[]).await;
    assert_eq!(
        (full.status, full.error_code().as_str()),
        (429, "queue_full")
    );
    let timed_out = queued.await.expect("queued request");
    assert_eq!(
        (timed_out.status, timed_out.error_code().as_str()),
        (503, "overloaded"),
        "{}",
        timed_out.body
    );
    assert_eq!(holder.await.expect("holder"), 200);

    assert_eq!(
        tenants_at_upstream(&gw.tap),
        ["acme"],
        "only the request holding the slot reaches the upstream"
    );
    assert_eq!(gw.tap.partial_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_its_token_budget_never_reaches_the_upstream_and_spares_the_others() {
    let gw = gateway(
        json!({
            "noisy": {"weight": 1, "tokens_per_minute": 600, "token_burst": 300},
            "calm": {"weight": 1}
        }),
        json!({"tokens": {"default_max_tokens": 64}}),
        2,
        true,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");
    let calm = tokio::spawn({
        let url = url.clone();
        async move { flood::flood(&url, "calm", 2, Duration::from_secs(3), 16, 16).await }
    });
    let noisy = flood::flood(&url, "noisy", 8, Duration::from_secs(3), 100, 100).await;
    let calm = calm.await.expect("calm clients");
    assert!(noisy.other.is_empty(), "the flood got {:?}", noisy.other);
    assert_eq!(
        (calm.refused, calm.other.as_slice()),
        (0, &[][..]),
        "the calm tenant saw errors during the flood"
    );
    let (admitted, refused, calm_sent) = (noisy.served, noisy.refused, calm.served as usize);
    println!(
        "flood: noisy {admitted} admitted, {refused} refused; calm {calm_sent} served; \
         upstream: {} connections, {} heads of noisy",
        gw.tap.connections(),
        gw.tap.heads_of("noisy")
    );
    assert!(refused > 100, "the flood was refused only {refused} times");
    assert_eq!(
        gw.tap.heads_of("noisy") as u64,
        admitted,
        "every request head of the noisy tenant at the upstream is one it was served"
    );
    assert_eq!(gw.tap.heads_of("calm"), calm_sent);
    assert_eq!(gw.tap.partial_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_reaches_the_upstream_unless_the_body_is_rewritten_and_then_the_new_one() {
    let gw = gateway(
        json!({"acme": {"weight": 1, "tokens_per_minute": 60000, "token_burst": 10000}}),
        json!({"tokens": {"default_max_tokens": 64}}),
        1,
        true,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");
    let json_body = chat(16, false);
    assert_eq!(post(&url, "acme", json_body.clone(), &[]).await.status, 200);
    // A stream that did not ask for its usage is asked for it: the body grows.
    let stream_body = chat(16, true);
    assert_eq!(
        post(&url, "acme", stream_body.clone(), &[]).await.status,
        200
    );
    wait_for_heads(&gw.tap, "acme", 2).await;
    let heads = gw.tap.heads();
    let lengths: Vec<(Option<&str>, Option<&str>)> = heads
        .iter()
        .map(|h| (h.header("content-length"), h.header("transfer-encoding")))
        .collect();
    let json_length = json_body.len().to_string();
    assert_eq!(lengths[0], (Some(json_length.as_str()), None), "unchanged");
    let rewritten: usize = lengths[1]
        .0
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("the rewritten body has no content-length: {lengths:?}"));
    assert!(
        rewritten > stream_body.len(),
        "{rewritten} ≤ {}",
        stream_body.len()
    );
    assert_eq!(lengths[1].1, None, "not chunked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envoy_that_cannot_hold_headers_still_serves_every_request_and_says_why() {
    let gw = gateway(
        json!({"acme": {"weight": 1, "tokens_per_minute": 60000, "token_burst": 10000}}),
        json!({"tokens": {"default_max_tokens": 64}}),
        1,
        false,
    )
    .await;
    let url = gw.envoy.url("/v1/chat/completions");
    // The first request with a body is held until the VM sees that no body comes.
    assert_eq!(post(&url, "acme", chat(8, false), &[]).await.status, 200);
    let started = Instant::now();
    for body in BODIES {
        assert_eq!(gw.ask("acme", body, 8, 8).await, 200, "{body:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "once learnt, requests are not held: {:?}",
        started.elapsed()
    );
    assert!(
        gw.envoy.log().contains("allow_on_headers_stop_iteration"),
        "the log says what to set"
    );
    expect_prometheus(&gw.envoy, &[r#"fg_forwarded_before_body{tenant="acme"} 6"#]).await;
    // What is known at the headers is still refused before anything leaves.
    let missing = post(&url, "", chat(8, false), &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(gw.tap.heads().len(), 6);
}
