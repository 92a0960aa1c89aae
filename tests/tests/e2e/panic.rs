//! SPEC 10: a panic inside the native module answers its request and takes nothing
//! else down. fairgate's code does not panic on any input, so the proof needs the
//! test-only build of the module (`--features test-panic`), which panics in the
//! headers callback of a request with `x-fairgate-test-panic`; `scripts/test.sh`
//! builds it into `target/test-panic/` and runs this test against it.

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
