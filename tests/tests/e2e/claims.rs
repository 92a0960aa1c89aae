//! SPEC 11, policy in the token: `identity.jwt.policy_claim`. Tenants the config does
//! not list carry their policy in their token, each held to its own buckets and
//! counted under one label; a claim out of bounds is a 401 naming the field.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::tokens::{mint, TokenSpec};
use fairgate_e2e::upstream::Upstream;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::{bearer, client, expect_prometheus, get};

/// Tenants carried by their claims alone.
const TENANTS: usize = 10_000;
/// Tenants asking at once.
const CONCURRENCY: usize = 64;

async fn gateway() -> (Envoy, Upstream) {
    let upstream = Upstream::start().await;
    let mut identity = plugin::jwt_identity();
    identity["jwt"]["policy_claim"] = json!({
        "claim": "fairgate",
        "max": {"weight": 4, "requests_per_second": 10, "request_burst": 4}
    });
    let config = plugin::config(identity, json!({"acme": {"weight": 1}}), None);
    let envoy = Envoy::start(&EnvoyConfig::new(config).upstream("upstream", upstream.addr));
    (envoy, upstream)
}

/// An HS256 token of `tenant` whose `fairgate` claim is `claim` (none: no claim).
fn token(tenant: &str, claim: Option<Value>) -> String {
    let mut spec = TokenSpec::new("HS256", Some("hs-1"), tenant);
    if let Some(claim) = claim {
        spec.extra.insert("fairgate".into(), claim);
    }
    mint(&spec).expect("mint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tenants_carried_by_their_claims_are_each_held_to_their_own_bucket() {
    let (envoy, upstream) = gateway().await;
    // Burst 2, one request back every 1000 s: a tenant's third request is refused.
    let claim = json!({"weight": 1, "requests_per_second": 0.001, "request_burst": 2});
    let url = Arc::new(envoy.url("/"));
    let client = client();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TENANTS {
        let tenant = format!("tenant-{i:05}");
        let (name, value) = bearer(&token(&tenant, Some(claim.clone())));
        let (client, url, permits) = (client.clone(), url.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.expect("semaphore");
            let mut statuses = Vec::with_capacity(3);
            for _ in 0..3 {
                statuses.push(get(&client, &url, &[(name, &value)]).await.status);
            }
            (tenant, statuses)
        });
    }
    let mut wrong = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (tenant, statuses) = joined.expect("task");
        if statuses != [200, 200, 429] {
            wrong.push((tenant, statuses));
        }
    }
    let took = started.elapsed();
    assert!(
        wrong.is_empty(),
        "{} of {TENANTS} tenants not [200, 200, 429], e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(upstream.count(), 2 * TENANTS);
    eprintln!(
        "{} requests of {TENANTS} claim tenants in {took:?}",
        3 * TENANTS
    );
    assert!(
        took < Duration::from_secs(120),
        "{took:?} for {} requests",
        3 * TENANTS
    );
    // One label for them all, not one per tenant.
    expect_prometheus(
        &envoy,
        &[
            &format!(
                "fg_requests{{tenant=\"claims\",decision=\"admitted\"}} {}",
                2 * TENANTS
            ),
            &format!("fg_requests{{tenant=\"claims\",decision=\"rate_limited\"}} {TENANTS}"),
        ],
    )
    .await;
    let prom = envoy.admin("/stats/prometheus");
    assert!(!prom.contains("tenant-0"), "a claim tenant's id is a label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_out_of_bounds_or_malformed_is_answered_401_naming_the_field() {
    let (envoy, upstream) = gateway().await;
    let client = client();
    let cases = [
        (
            json!({"weight": 1, "requests_per_second": 500}),
            "policy claim \\\"fairgate\\\": requests_per_second: 500 exceeds max 10",
        ),
        (
            json!({"weight": 1, "cluster": "gold"}),
            "policy claim \\\"fairgate\\\": cluster: \\\"gold\\\" is not one of",
        ),
        (
            json!({"weight": 1, "request_burst": 0}),
            "policy claim \\\"fairgate\\\": request_burst: must be >= 1",
        ),
        (
            json!({"weigth": 1}),
            "policy claim \\\"fairgate\\\": weigth: unknown field `weigth`",
        ),
        (
            json!("gold"),
            "policy claim \\\"fairgate\\\": must be a JSON object",
        ),
    ];
    for (claim, message) in cases {
        let (name, value) = bearer(&token("zeta", Some(claim.clone())));
        let reply = get(&client, &envoy.url("/"), &[(name, &value)]).await;
        assert_eq!(reply.status, 401, "{claim}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_tenant_token", "{claim}");
        assert!(reply.body.contains(message), "{claim}: {}", reply.body);
    }
    // No claim and no default tenant: unknown. A listed tenant ignores its claim.
    let (name, value) = bearer(&token("zeta", None));
    let reply = get(&client, &envoy.url("/"), &[(name, &value)]).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let loud = json!({"weight": 1000});
    let (name, value) = bearer(&token("acme", Some(loud)));
    let reply = get(&client, &envoy.url("/"), &[(name, &value)]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_tenants_are_admitted_to_the_pool_each_under_its_own_cap() {
    let upstream = Upstream::with_service_time(Duration::from_millis(100)).await;
    let mut identity = plugin::jwt_identity();
    identity["jwt"]["policy_claim"] = json!({"claim": "fairgate", "max": {"max_concurrency": 4}});
    let mut config: Value =
        serde_json::from_str(&plugin::config(identity, json!({}), None)).expect("json");
    config["pool"] = json!({"max_concurrency": 8, "queue_timeout_ms": 60000});
    let envoy = Envoy::start(
        &EnvoyConfig::new(config.to_string())
            .concurrency(2)
            .upstream("upstream", upstream.addr),
    );
    let url = envoy.url("/");
    let end = Instant::now() + Duration::from_secs(3);
    let mut clients = Vec::new();
    for (tenant, cap) in [("c-one", 1), ("c-two", 2), ("c-open", 8)] {
        // A claim that names no cap gets the max: 4.
        let claim = match cap {
            8 => json!({"weight": 1}),
            cap => json!({"weight": 1, "max_concurrency": cap}),
        };
        let (name, value) = bearer(&token(tenant, Some(claim)));
        for _ in 0..6 {
            let (url, value) = (url.clone(), value.clone());
            clients.push(tokio::spawn(async move {
                let client = client();
                while Instant::now() < end {
                    let reply = get(&client, &url, &[(name, &value)]).await;
                    assert_eq!(reply.status, 200, "{tenant}: {}", reply.body);
                }
            }));
        }
    }
    for c in clients {
        c.await.expect("client");
    }
    let load = upstream.load();
    let most = |t: &str| load.get(t).map_or(0, |l| l.max_in_flight);
    assert_eq!(
        (most("c-one"), most("c-two"), most("c-open")),
        (1, 2, 4),
        "{load:?}"
    );
}
