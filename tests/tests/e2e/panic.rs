//! What a panic does on each host. fairgate's code does not panic on any input, so the
//! proofs need test-only builds (`--features test-panic`) that panic in the headers
//! callback of a request with `x-fairgate-test-panic`; `scripts/test.sh` builds them
//! into `target/test-panic/` and runs these tests against them.
//!
//! - SPEC 10: inside the native module, the panic answers its request and takes
//!   nothing else down.
//! - SPEC 1, 4: a wasm VM that panics dies; FAIL_RELOAD replaces it, and the slots it
//!   held come back within its lease.

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{host, Envoy, EnvoyConfig, Host};
use fairgate_e2e::plugin;
use fairgate_e2e::upstream::Upstream;
use serde_json::json;

use crate::{client, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the module's test-panic build: FAIRGATE_HOST=module FAIRGATE_MODULE_DIR=target/test-panic (scripts/test.sh)"]
async fn a_panic_in_the_module_answers_its_request_500_and_envoy_serves_on() {
    assert_eq!(host(), Host::Module, "a test of the native module");
    let upstream = Upstream::start().await;
    let config = plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({"acme": {"weight": 1}}),
        None,
    );
    let mut envoy = Envoy::start(
        &EnvoyConfig::new(config)
            .concurrency(2)
            .upstream("model", upstream.addr),
    );
    let client = client();
    for _ in 0..3 {
        let panicked = get(
            &client,
            &envoy.url("/"),
            &[("x-tenant-id", "acme"), ("x-fairgate-test-panic", "1")],
        )
        .await;
        assert_eq!(
            (panicked.status, panicked.error_code().as_str()),
            (500, "internal_error"),
            "{}",
            panicked.body
        );
        let served = get(&client, &envoy.url("/"), &[("x-tenant-id", "acme")]).await;
        assert_eq!(served.status, 200, "{}", served.body);
    }
    assert!(envoy.is_running(), "Envoy went down");
    assert!(
        envoy.log().contains("a callback panicked"),
        "the panic was not logged:\n{}",
        envoy.log()
    );
    assert_eq!(
        upstream.count(),
        3,
        "only the requests that did not panic reach the upstream"
    );
}

/// The plugin config of the crashed-VM tests: tenants by `x-tenant-id`, one pool of
/// `slots` whose waiters wait up to 30 s.
fn pooled(tenants: serde_json::Value, slots: u32) -> String {
    let mut config: serde_json::Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        tenants,
        None,
    ))
    .expect("json");
    config["pool"] = json!({"max_concurrency": slots, "queue_timeout_ms": 30000});
    config.to_string()
}

/// The upstream in-flight count of tenant `acme`.
fn in_flight(upstream: &Upstream) -> u64 {
    upstream.load().get("acme").map_or(0, |l| l.in_flight)
}

/// SPEC 1 and 4: a wasm VM that dies (a panic aborts it) is replaced under
/// `failure_policy: FAIL_RELOAD`, and the pool slots it held come back once its lease
/// runs out. Needs the filter's test-only build (`--features test-panic`), which
/// panics in the headers callback of a request with `x-fairgate-test-panic`;
/// `scripts/test.sh` builds it into `target/test-panic/` and runs this test with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the filter's test-panic build: FAIRGATE_WASM=target/test-panic/fairgate_filter.wasm (scripts/test.sh)"]
async fn a_crashed_vm_is_reloaded_and_the_slots_it_held_come_back_within_its_lease() {
    assert_eq!(host(), Host::Wasm, "a test of the wasm filter");
    let service = Duration::from_millis(1500);
    let upstream = Upstream::with_service_time(service).await;
    let config = pooled(json!({"acme": {"weight": 1}}), 3);
    let mut envoy = Envoy::start(
        &EnvoyConfig::new(config)
            .concurrency(2)
            .reload_on_failure()
            .upstream("model", upstream.addr),
    );
    // One HTTP/2 connection: every request below runs on the same worker, in the
    // same VM.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(40))
        .build()
        .expect("client");
    let url = envoy.url("/");
    let ask = |panic: bool| {
        let mut req = h2.get(&url).header("x-tenant-id", "acme");
        if panic {
            req = req.header("x-fairgate-test-panic", "1");
        }
        req.send()
    };
    // Two slow requests hold two of the pool's three slots.
    let slow: Vec<_> = (0..2).map(|_| tokio::spawn(ask(false))).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while in_flight(&upstream) < 2 {
        assert!(Instant::now() < deadline, "the two slow requests never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Their VM dies.
    let crash = Instant::now();
    let panicked = ask(true).await.map(|r| r.status().as_u16());
    assert!(
        !matches!(panicked, Ok(200)),
        "the panicking request was served: {panicked:?}"
    );
    // The filter comes back on that worker: a request gets the one free slot.
    let back = loop {
        let sent = crash.elapsed();
        if let Ok(r) = ask(false).await {
            if r.status() == 200 {
                break sent;
            }
        }
        assert!(
            crash.elapsed() < Duration::from_secs(10),
            "no request served within 10 s of the crash:\n{}",
            envoy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for s in slow {
        // Answered or cut: their VM is gone; either way they end.
        let _ = s.await;
    }
    // The dead VM's two slots come back once its lease (10 s) runs out: then three
    // requests run at once.
    let slots_back = loop {
        let before = upstream.count();
        let three: Vec<_> = (0..3).map(|_| tokio::spawn(ask(false))).collect();
        let deadline = Instant::now() + service / 2;
        let mut most = 0;
        while Instant::now() < deadline {
            most = most.max(in_flight(&upstream));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for t in three {
            let _ = t.await;
        }
        if most >= 3 {
            break crash.elapsed();
        }
        assert!(upstream.count() > before, "nothing ran");
        assert!(
            crash.elapsed() < Duration::from_secs(25),
            "the dead VM's slots did not come back within 25 s"
        );
    };
    eprintln!(
        "crashed VM: a request served again after {:.2} s (sent then), the dead VM's slots back after {:.1} s",
        back.as_secs_f64(),
        slots_back.as_secs_f64()
    );
    assert!(envoy.is_running(), "Envoy went down");
    assert!(
        back < Duration::from_secs(3),
        "the filter took {back:?} to come back"
    );
}

/// A client of its own: one HTTP/2 connection, so all its requests run in one VM.
fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// How a request ended, and when (from `since`).
#[derive(Debug)]
struct Ended {
    status: Option<u16>,
    after: Duration,
}

fn send(
    client: &reqwest::Client,
    url: &str,
    tenant: &str,
    panic: bool,
    since: Instant,
) -> tokio::task::JoinHandle<Ended> {
    let mut req = client.get(url).header("x-tenant-id", tenant);
    if panic {
        req = req.header("x-fairgate-test-panic", "1");
    }
    tokio::spawn(async move {
        let status = req.send().await.ok().map(|r| r.status().as_u16());
        Ended {
            status,
            after: since.elapsed(),
        }
    })
}

/// Waits until `series` reads `value` (the pool's gauges follow each VM's tick).
async fn wait_for(envoy: &Envoy, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while crate::prometheus_value(envoy, series) != Some(value) {
        assert!(Instant::now() < deadline, "{series} never read {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Envoy's `request_timeout` in the queued requests' test: above the other
/// worker's wait for the dead VM's slots (its requests' service, then the lease).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(16);

/// SPEC 1 and 4: the requests queued (paused in the fair queue) in a wasm VM that
/// dies end, and the dead VM's places in the pool's shared queue hold up no other
/// worker. Worker B holds both slots of the pool; two requests of `acme` (the higher
/// priority band) queue in worker A's VM, one of `beta` behind them in B's; A's VM
/// panics. When B's requests end, the pool grants both slots to A's dead waiters
/// (a wake-up nobody reads): they come back once the dead VM's lease (10 s) runs
/// out, and B's waiter is admitted. The requests paused in the dead VM end when
/// Envoy's `request_timeout` does (no callback of a dead VM runs: only Envoy can end
/// them), and worker B serves throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the filter's test-panic build: FAIRGATE_WASM=target/test-panic/fairgate_filter.wasm (scripts/test.sh)"]
async fn the_requests_queued_in_a_crashed_vm_end_and_its_places_in_the_queue_come_back() {
    assert_eq!(host(), Host::Wasm, "a test of the wasm filter");
    let service = Duration::from_secs(2);
    let upstream = Upstream::with_service_time(service).await;
    let tenants = json!({"acme": {"weight": 1, "priority": 1}, "beta": {"weight": 1}});
    let mut envoy = Envoy::start(
        &EnvoyConfig::new(pooled(tenants, 2))
            .concurrency(2)
            .reload_on_failure()
            .exact_balance()
            .request_timeout(REQUEST_TIMEOUT)
            .upstream("model", upstream.addr),
    );
    let url = envoy.url("/");
    let start = Instant::now();
    // Two connections, one per worker: an unknown tenant's request opens each.
    let (a, b) = (h2_client(), h2_client());
    for client in [&a, &b] {
        let opened = send(client, &url, "nobody", false, start)
            .await
            .expect("open");
        assert!(opened.status.is_some(), "{opened:?}");
    }
    let per_worker = envoy.admin("/stats?filter=worker_.\\.downstream_cx_active");
    let busy = per_worker.lines().filter(|l| l.ends_with(": 1")).count();
    assert_eq!(
        busy, 2,
        "the connections do not have a worker each:\n{per_worker}"
    );

    // B holds both slots; A queues two of acme's, then B one of beta's.
    let held: Vec<_> = (0..2)
        .map(|_| send(&b, &url, "beta", false, start))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.load().get("beta").map_or(0, |l| l.in_flight) < 2 {
        assert!(Instant::now() < deadline, "B's requests never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let queued_in_a: Vec<_> = (0..2)
        .map(|_| (send(&a, &url, "acme", false, start), start.elapsed()))
        .collect();
    wait_for(&envoy, r#"fg_queued{tenant="acme"}"#, 2.0).await;
    let queued_in_b = send(&b, &url, "beta", false, start);
    wait_for(&envoy, r#"fg_queued{tenant="beta"}"#, 1.0).await;

    // A's VM dies with its two waiters.
    let crash = Instant::now();
    let panicked = send(&a, &url, "acme", true, crash).await.expect("panic");
    assert_ne!(
        panicked.status,
        Some(200),
        "the panicking request was served"
    );

    // (c) B serves on: its two requests end 200 after their service time.
    for h in held {
        let ended = h.await.expect("held");
        assert_eq!(ended.status, Some(200), "{ended:?}");
    }
    // (a) The requests paused in the dead VM end: nothing in the dead VM runs, so
    // Envoy answers them at its request_timeout.
    let mut dead_ends = Vec::new();
    for (q, sent) in queued_in_a {
        let ended = q.await.expect("queued in A");
        let waited = ended.after.saturating_sub(sent);
        assert!(
            ended.status.is_some_and(|s| s != 200)
                && waited < REQUEST_TIMEOUT + Duration::from_secs(3),
            "a dead VM's waiter ended {ended:?}, {waited:?} after it was sent"
        );
        dead_ends.push((
            ended.after.saturating_sub(crash.duration_since(start)),
            ended.status,
        ));
    }
    // (b) B's waiter is admitted once the slots granted to A's dead waiters come back.
    let admitted = queued_in_b.await.expect("queued in B");
    assert_eq!(admitted.status, Some(200), "{admitted:?}");
    let admitted_after = admitted
        .after
        .saturating_sub(crash.duration_since(start) + service);
    assert!(
        admitted_after < Duration::from_secs(14),
        "B's waiter was admitted {admitted_after:?} after the crash"
    );
    assert!(
        envoy.log().contains("reclaimed 2 slots of workers"),
        "the dead VM's slots were not reclaimed:\n{}",
        envoy.log()
    );
    // Nothing of the dead VM's reached the upstream: B's three requests did.
    let acme = upstream
        .load()
        .get("acme")
        .map_or(0, |l| l.completed + l.in_flight);
    assert_eq!(acme, 0, "a dead VM's waiter reached the upstream");
    wait_for(&envoy, r#"fg_queued{tenant="acme"}"#, 0.0).await;
    eprintln!(
        "crashed VM: its queued requests ended (after the crash, status) {dead_ends:?}, \
         the other worker's waiter admitted {admitted_after:.2?} after the crash"
    );
    assert!(envoy.is_running(), "Envoy went down");
}
