//! SPEC section 5 through Envoy and the real sidecar binary (simulated GPUs):
//! polling, live capacity, staleness, routing by headroom.

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::sidecar::Sidecar;
use fairgate_e2e::upstream::Upstream;
use serde_json::{json, Value};

use crate::{client, expect_prometheus, get};

/// Constant simulated load: pool_a at half headroom (capacity 2 of 4), pool_b at
/// 0.8 (8 of 10), acme_dedicated at 0.9 (9 of 10).
const SIDECAR: &str = r#"
source = "sim"
poll_ms = 50
stale_ms = 1000

[[sim.gpus]]
uuid = "GPU-a"
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.5, memory_used = 0.5 }]

[[sim.gpus]]
uuid = "GPU-b"
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.2, memory_used = 0.2 }]

[[sim.gpus]]
uuid = "GPU-c"
memory_total_gib = 48
curve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }]

[clusters.pool_a]
gpus = [0]
base_capacity = 4

[clusters.pool_b]
gpus = [1]
base_capacity = 10

[clusters.acme_dedicated]
gpus = [2]
base_capacity = 10
"#;

const POLL_MS: u64 = 200;
const STALE_MS: u64 = 1000;

fn plugin_config(shared: &[&str], pool: Option<Value>) -> String {
    let mut cfg: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({"acme": {"weight": 4, "cluster": "acme_dedicated"}, "globex": {"weight": 1}}),
        None,
    ))
    .expect("json");
    cfg["routing"] = json!({"header": "x-fairgate-cluster", "shared_clusters": shared});
    cfg["sidecar"] =
        json!({"cluster": "fairgate_sidecar", "poll_ms": POLL_MS, "stale_ms": STALE_MS});
    if let Some(p) = pool {
        cfg["pool"] = p;
    }
    cfg.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_is_polled_once_per_period_whatever_the_number_of_workers() {
    let sidecar = Sidecar::start(SIDECAR);
    let envoy = Envoy::start(
        &EnvoyConfig::new(plugin_config(&["pool_a"], None))
            .concurrency(4)
            .upstream("fairgate_sidecar", sidecar.addr),
    );
    expect_prometheus(&envoy, &["fg_sidecar_fresh{} 1"]).await;
    let count = || {
        sidecar
            .metric("fairgate_sidecar_headroom_requests_total")
            .unwrap_or(0.0)
    };
    let (before, start) = (count(), Instant::now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let polls = count() - before;
    let periods = start.elapsed().as_millis() as f64 / POLL_MS as f64;
    eprintln!("{polls} polls in {periods:.1} periods of {POLL_MS} ms, 5 VMs (4 workers + main)");
    // One poll per period: polls are claimed on a 100 ms tick, on schedule.
    assert!(
        (periods - 2.0..=periods + 1.0).contains(&polls),
        "{polls} polls in {periods:.1} periods"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_capacity_caps_the_pool_and_a_stale_snapshot_falls_back_to_the_configured_cap() {
    let mut sidecar = Sidecar::start(SIDECAR);
    let upstream = Upstream::with_service_time(Duration::from_millis(600)).await;
    let envoy = Envoy::start(
        &EnvoyConfig::new(plugin_config(
            &["pool_a"],
            Some(json!({"max_concurrency": 8})),
        ))
        .concurrency(2)
        .route_by_header("x-fairgate-cluster")
        .upstream("fairgate_sidecar", sidecar.addr)
        .upstream("pool_a", upstream.addr),
    );
    expect_prometheus(
        &envoy,
        &[
            "fg_sidecar_fresh{} 1",
            r#"fg_sidecar_capacity{cluster="pool_a"} 2"#,
            r#"fg_headroom_pct{cluster="pool_a"} 50"#,
        ],
    )
    .await;
    let burst = |tenant: &'static str| {
        let url = envoy.url("/");
        async move {
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let url = url.clone();
                    tokio::spawn(
                        async move { get(&client(), &url, &[("x-tenant-id", tenant)]).await },
                    )
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.expect("request").status, 200);
            }
        }
    };
    burst("globex").await;
    let load = upstream.load();
    assert_eq!(
        load["globex"].max_in_flight, 2,
        "the sidecar's capacity of 2 applies: {load:?}"
    );

    sidecar.stop();
    tokio::time::sleep(Duration::from_millis(STALE_MS + 500)).await;
    expect_prometheus(&envoy, &["fg_sidecar_fresh{} 0"]).await;
    assert!(
        envoy.log().contains("sidecar headroom is stale"),
        "no log line for stale"
    );
    burst("globex").await;
    let load = upstream.load();
    assert_eq!(
        load["globex"].max_in_flight, 6,
        "stale: the configured cap of 8 applies: {load:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_to_the_pinned_cluster_or_the_shared_cluster_with_most_headroom() {
    let sidecar = Sidecar::start(SIDECAR);
    let (a, b, dedicated) = (
        Upstream::start().await,
        Upstream::start().await,
        Upstream::start().await,
    );
    let envoy = Envoy::start(
        &EnvoyConfig::new(plugin_config(&["pool_a", "pool_b"], None))
            .concurrency(2)
            .route_by_header("x-fairgate-cluster")
            .upstream("fairgate_sidecar", sidecar.addr)
            .upstream("pool_a", a.addr)
            .upstream("pool_b", b.addr)
            .upstream("acme_dedicated", dedicated.addr),
    );
    expect_prometheus(&envoy, &["fg_sidecar_fresh{} 1"]).await;
    let client = client();
    for _ in 0..4 {
        // Clients cannot pick a cluster: the filter's choice replaces theirs.
        let r = get(
            &client,
            &envoy.url("/"),
            &[("x-tenant-id", "globex"), ("x-fairgate-cluster", "pool_a")],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = get(
            &client,
            &envoy.url("/"),
            &[("x-tenant-id", "acme"), ("x-fairgate-cluster", "pool_b")],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(a.count(), 0, "pool_a has less headroom than pool_b");
    assert_eq!(b.count(), 4, "globex goes to pool_b, the most headroom");
    assert_eq!(dedicated.count(), 4, "acme is pinned to acme_dedicated");
    expect_prometheus(
        &envoy,
        &[
            r#"fg_routed{cluster="pool_b"} 4"#,
            r#"fg_routed{cluster="acme_dedicated"} 4"#,
        ],
    )
    .await;
}
