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
    let mut config: serde_json::Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({"acme": {"weight": 1}}),
        None,
    ))
    .expect("json");
    config["pool"] = json!({"max_concurrency": 3, "queue_timeout_ms": 30000});
    let mut envoy = Envoy::start(
        &EnvoyConfig::new(config.to_string())
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
