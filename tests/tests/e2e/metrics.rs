//! SPEC section 7: requests by tenant and decision in `/stats/prometheus`.

use fairgate_core::metrics::STATS_TAGS;
use fairgate_e2e::envoy::{repo_root, Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use serde_json::json;

use crate::{client, expect_prometheus, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_tenant_and_decision_in_prometheus() {
    let config = plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({
            "acme": {"weight": 1, "requests_per_second": 0.01, "request_burst": 3},
            "free": {"weight": 1}
        }),
        Some("free"),
    );
    let envoy = Envoy::start(&EnvoyConfig::new(config).concurrency(2));
    let client = client();
    for tenant in ["acme", "acme", "acme", "acme", "acme", "initech", "free"] {
        get(&client, &envoy.url("/"), &[("x-tenant-id", tenant)]).await;
    }
    get(&client, &envoy.url("/"), &[]).await;

    expect_prometheus(
        &envoy,
        &[
            r#"fg_requests{tenant="acme",decision="admitted"} 3"#,
            r#"fg_requests{tenant="acme",decision="rate_limited"} 2"#,
            // Unlisted tenants are counted under the default policy's name.
            r#"fg_requests{tenant="free",decision="admitted"} 2"#,
            r#"fg_requests{decision="unauthenticated"} 1"#,
        ],
    )
    .await;
}

#[test]
fn the_shipped_envoy_config_carries_the_stats_tags_the_filter_needs() {
    let shipped =
        std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).expect("envoy.yaml");
    for (name, regex) in STATS_TAGS {
        assert!(
            shipped.contains(&format!("tag_name: {name}")),
            "no tag {name}"
        );
        assert!(
            shipped.contains(&format!("regex: '{regex}'")),
            "tag {name} regex differs from {regex}"
        );
    }
}
