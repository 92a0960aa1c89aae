//! SPEC section 3 (request budgets) and the 429 row of section 6, through Envoy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::upstream::Upstream;
use serde_json::json;

use crate::{client, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_request_bucket_gets_429_with_retry_and_ratelimit_headers() {
    let upstream = Upstream::start().await;
    let config = plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({
            "acme": {"weight": 1, "requests_per_second": 0.5, "request_burst": 2},
            "globex": {"weight": 1, "requests_per_second": 0.5, "request_burst": 2}
        }),
        None,
    );
    let envoy = Envoy::start(&EnvoyConfig::new(config).upstream("upstream", upstream.addr));
    let client = client();
    let acme = [("x-tenant-id", "acme")];
    for _ in 0..2 {
        assert_eq!(get(&client, &envoy.url("/"), &acme).await.status, 200);
    }
    let reply = get(&client, &envoy.url("/"), &acme).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.error_code(), "rate_limit_exceeded");
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("whole seconds");
    let retry_after_ms: u64 = reply
        .header("retry-after-ms")
        .expect("retry-after-ms")
        .parse()
        .expect("ms");
    // One token at 0.5/s arrives within 2 s; whole seconds round up, never 0.
    assert!((1..=2).contains(&retry_after), "retry-after {retry_after}");
    assert!(
        (1..=2000).contains(&retry_after_ms),
        "retry-after-ms {retry_after_ms}"
    );
    assert_eq!(retry_after, retry_after_ms.div_ceil(1000));
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("0"));
    let reset = reply
        .header("x-ratelimit-reset-requests")
        .expect("reset header");
    assert!(reset.ends_with('s'), "reset {reset:?}");
    assert_eq!(upstream.count(), 2, "the refused request was not forwarded");

    // Another tenant's bucket is its own.
    let reply = get(&client, &envoy.url("/"), &[("x-tenant-id", "globex")]).await;
    assert_eq!(reply.status, 200);

    // After the advertised wait, the tenant is served again.
    tokio::time::sleep(Duration::from_millis(retry_after_ms + 50)).await;
    assert_eq!(get(&client, &envoy.url("/"), &acme).await.status, 200);
}

/// Sends requests for `tenant` from `connections` concurrent clients for `window`;
/// returns (admitted, refused, measured window).
async fn flood(
    url: String,
    tenant: &str,
    connections: usize,
    window: Duration,
) -> (u64, u64, Duration) {
    let admitted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, admitted, refused) = (url.clone(), admitted.clone(), refused.clone());
        let tenant = tenant.to_string();
        tasks.push(tokio::spawn(async move {
            let client = client();
            while start.elapsed() < window {
                let reply = get(&client, &url, &[("x-tenant-id", &tenant)]).await;
                match reply.status {
                    200 => admitted.fetch_add(1, Ordering::Relaxed),
                    429 => refused.fetch_add(1, Ordering::Relaxed),
                    other => panic!("unexpected status {other}: {}", reply.body),
                };
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
    (
        admitted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_across_workers_under_concurrent_load() {
    const RATE: f64 = 100.0;
    const BURST: f64 = 20.0;
    let config = plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({"acme": {"weight": 1, "requests_per_second": RATE, "request_burst": BURST}}),
        None,
    );
    // No upstream: Envoy answers admitted requests itself, so the load is all filter.
    let envoy = Envoy::start(&EnvoyConfig::new(config).concurrency(2));
    let (admitted, refused, window) =
        flood(envoy.url("/"), "acme", 32, Duration::from_secs(4)).await;
    let allowed = RATE * window.as_secs_f64() + BURST;
    eprintln!(
        "admitted {admitted}, refused {refused} in {:.3} s; rate × t + burst = {allowed:.1}",
        window.as_secs_f64()
    );
    assert!(
        refused > admitted,
        "the load must exceed the limit to test it"
    );
    assert!(
        admitted as f64 <= allowed,
        "admitted {admitted} > {allowed:.1}"
    );
    assert!(
        admitted as f64 >= 0.97 * allowed,
        "admitted {admitted} < 97 % of {allowed:.1}"
    );
    // Both workers served connections, so the bucket really was shared.
    let stats = envoy.admin("/stats?filter=worker_.\\.downstream_cx_total");
    let per_worker: Vec<u64> = stats
        .lines()
        .filter_map(|l| l.rsplit(": ").next()?.trim().parse().ok())
        .collect();
    assert_eq!(per_worker.len(), 2, "{stats}");
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "a worker had no connection: {stats}"
    );
}

/// Envoy's resident memory, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Envoy's memory while `FAIRGATE_TENANTS` (default 1,000,000) distinct tenants pass,
/// each with a bucket of the default policy, two requests each (the second refused):
/// run by hand (`bench/tenants.sh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark, run by bench/tenants.sh"]
async fn bench_memory_while_a_million_tenants_pass() {
    let tenants: u64 = std::env::var("FAIRGATE_TENANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let config = plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({"free": {"weight": 1, "requests_per_second": 1, "request_burst": 1}}),
        Some("free"),
    );
    let envoy = Envoy::start(&EnvoyConfig::new(config).concurrency(2));
    let url = envoy.url("/v1/models");
    let next = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    println!("FIGURE tenants=0 rss_mib={:.1}", rss_mib(envoy.pid()));
    let start = Instant::now();
    let step = tenants / 4;
    for quarter in 1..=4u64 {
        let end = step * quarter;
        let workers: Vec<_> = (0..64)
            .map(|_| {
                let (next, refused, url) = (next.clone(), refused.clone(), url.clone());
                tokio::spawn(async move {
                    let client = client();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            next.fetch_sub(1, Ordering::Relaxed);
                            break;
                        }
                        let tenant = format!("t{i}");
                        for _ in 0..2 {
                            let reply = get(&client, &url, &[("x-tenant-id", &tenant)]).await;
                            if reply.status == 429 {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("worker");
        }
        println!(
            "FIGURE tenants={end} rss_mib={:.1} refused={} elapsed_s={:.0}",
            rss_mib(envoy.pid()),
            refused.load(Ordering::Relaxed),
            start.elapsed().as_secs_f64()
        );
    }
    // Every tenant's second request was refused: each had a bucket of its own.
    assert_eq!(refused.load(Ordering::Relaxed), tenants / 4 * 4);
}
