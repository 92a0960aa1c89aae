//! SPEC section 5 through Envoy and the real sidecar binary (simulated GPUs):
//! polling, live capacity, staleness, routing by headroom.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{host, Envoy, EnvoyConfig, Host};
use fairgate_e2e::plugin;
use fairgate_e2e::sidecar::Sidecar;
use fairgate_e2e::upstream::Upstream;
use serde_json::{json, Value};

use crate::{client, expect_prometheus, get};

/// Constant simulated load: pool_a at half headroom (capacity 2 of 4), pool_b at
/// 0.8 (8 of 10), acme_dedicated at 0.9 (9 of 10).
pub const SIDECAR: &str = r#"
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
const FRESH: &str = "sidecar headroom is fresh";
const STALE: &str = "sidecar headroom is stale";
const STALE_MS: u64 = 1000;

fn plugin_config(shared: &[&str], pool: Option<Value>) -> String {
    let mut cfg: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({
            "acme": {"weight": 4, "cluster": "acme_dedicated"},
            "globex": {"weight": 1},
            "probe": {"weight": 1}
        }),
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

/// Waits until the VMs of Envoy's `workers` and of its main thread, each on a
/// thread of its own, have all logged `line`. The Prometheus gauges show only the first VM that
/// applied a snapshot; each VM applies it on its own 100 ms tick, which a loaded
/// machine delays, so a test that asserts what every worker enforces waits for all.
/// The native module polls on the main thread, whose snapshot every worker reads
/// at once: its one line is enough.
async fn wait_for_every_vm(envoy: &Envoy, line: &str, workers: usize) {
    let vms = match host() {
        Host::Wasm => workers + 1,
        Host::Module => 1,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = envoy.log();
        let threads: std::collections::HashSet<&str> = log
            .lines()
            .filter(|l| l.contains(line))
            .filter_map(|l| l.split("][").nth(1))
            .collect();
        if threads.len() >= vms {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {vms} VMs logged {line:?}:\n{log}",
            threads.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // One poll per period, not one per worker: polls are claimed on a 100 ms tick,
    // on schedule (a tick delayed past a whole period, on a loaded machine, skips one).
    assert!(
        polls <= periods + 1.0,
        "{polls} polls in {periods:.1} periods"
    );
    assert!(
        polls >= periods / 2.0,
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
    wait_for_every_vm(&envoy, FRESH, 2).await;
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
    wait_for_every_vm(&envoy, STALE, 2).await;
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
    wait_for_every_vm(&envoy, FRESH, 2).await;
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

/// Load that swaps every 5 s (a 10 s loop from the sidecar's start): pool_a idle
/// (headroom 0.9, capacity 9 of 10) and pool_b busy (0.1, capacity 1), then the
/// reverse.
const SWAPPING: &str = r#"
source = "sim"
poll_ms = 50
stale_ms = 1000

[[sim.gpus]]
uuid = "GPU-a"
memory_total_gib = 80
curve = [
  { t_s = 0, utilization = 0.1, memory_used = 0.1 },
  { t_s = 4.999, utilization = 0.1, memory_used = 0.1 },
  { t_s = 5, utilization = 0.9, memory_used = 0.9 },
  { t_s = 9.999, utilization = 0.9, memory_used = 0.9 },
  { t_s = 10, utilization = 0.1, memory_used = 0.1 },
]

[[sim.gpus]]
uuid = "GPU-b"
memory_total_gib = 80
curve = [
  { t_s = 0, utilization = 0.9, memory_used = 0.9 },
  { t_s = 4.999, utilization = 0.9, memory_used = 0.9 },
  { t_s = 5, utilization = 0.1, memory_used = 0.1 },
  { t_s = 9.999, utilization = 0.1, memory_used = 0.1 },
  { t_s = 10, utilization = 0.9, memory_used = 0.9 },
]

[[sim.gpus]]
uuid = "GPU-c"
memory_total_gib = 48
curve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }]

[clusters.pool_a]
gpus = [0]
base_capacity = 10

[clusters.pool_b]
gpus = [1]
base_capacity = 10

[clusters.acme_dedicated]
gpus = [2]
base_capacity = 10
"#;

/// Seconds since `start`.
fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_follows_headroom_as_it_changes_and_a_pinned_tenant_never_moves() {
    let sidecar = Sidecar::start(SWAPPING);
    let epoch = Instant::now();
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
    let mut routed: Vec<(f64, &str)> = Vec::new();
    while since(epoch) < 11.6 {
        let (before_a, before_b) = (a.count(), b.count());
        let r = get(&client, &envoy.url("/"), &[("x-tenant-id", "globex")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let to = match (a.count() > before_a, b.count() > before_b) {
            (true, false) => "pool_a",
            (false, true) => "pool_b",
            other => panic!("went to {other:?}"),
        };
        routed.push((since(epoch), to));
        let before = dedicated.count();
        let r = get(&client, &envoy.url("/"), &[("x-tenant-id", "acme")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            dedicated.count(),
            before + 1,
            "acme left its dedicated cluster"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let phase = |from: f64, to: f64| -> Vec<&str> {
        let mut v: Vec<&str> = routed
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, c)| *c)
            .collect();
        v.dedup();
        v
    };
    assert_eq!(phase(2.5, 4.8), ["pool_a"], "pool_a had the headroom");
    assert_eq!(phase(6.0, 9.8), ["pool_b"], "pool_b had the headroom");
    assert_eq!(phase(11.0, 11.6), ["pool_a"], "back to pool_a");
    let first_after = |change: f64, to: &str| {
        routed
            .iter()
            .find(|(t, c)| *t >= change && *c == to)
            .map(|(t, _)| t - change)
            .unwrap_or(f64::NAN)
    };
    let (swap, back) = (first_after(5.0, "pool_b"), first_after(10.0, "pool_a"));
    eprintln!(
        "from a headroom change to the first request routed differently: {:.0} ms and {:.0} ms (poll_ms {POLL_MS})",
        swap * 1000.0,
        back * 1000.0
    );
    assert!(swap < 1.0 && back < 1.0, "{swap} s, {back} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_follows_headroom() {
    let sidecar = Sidecar::start(SWAPPING);
    let epoch = Instant::now();
    let upstream = Upstream::with_service_time(Duration::from_millis(500)).await;
    let envoy = Envoy::start(
        &EnvoyConfig::new(plugin_config(
            &["pool_a"],
            Some(json!({"max_concurrency": 16})),
        ))
        .concurrency(2)
        .route_by_header("x-fairgate-cluster")
        .upstream("fairgate_sidecar", sidecar.addr)
        .upstream("pool_a", upstream.addr),
    );
    let burst = |tenant: &'static str, n: usize| {
        let url = envoy.url("/");
        async move {
            let tasks: Vec<_> = (0..n)
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
    expect_prometheus(&envoy, &["fg_sidecar_fresh{} 1"]).await;
    wait_for_every_vm(&envoy, FRESH, 2).await;
    // Idle pool_a (0 .. 5 s): capacity 9.
    tokio::time::sleep(Duration::from_secs_f64((2.0 - since(epoch)).max(0.0))).await;
    assert!(since(epoch) < 3.5, "too late for the idle phase");
    burst("globex", 12).await;
    // Busy pool_a (5 .. 10 s): capacity 1.
    tokio::time::sleep(Duration::from_secs_f64((5.8 - since(epoch)).max(0.0))).await;
    burst("probe", 4).await;
    assert!(
        since(epoch) < 10.0,
        "the busy phase ended before the burst did"
    );
    let load = upstream.load();
    assert_eq!(load["globex"].max_in_flight, 9, "{load:?}");
    assert_eq!(load["probe"].max_in_flight, 1, "{load:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sidecar_fails_no_request_and_a_restart_is_picked_up() {
    let mut sidecar = Sidecar::start(SIDECAR);
    let upstream = Upstream::with_service_time(Duration::from_millis(20)).await;
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
    expect_prometheus(&envoy, &["fg_sidecar_fresh{} 1"]).await;
    let end = Instant::now() + Duration::from_millis(STALE_MS + 2000);
    let failures = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (url, failures) = (envoy.url("/"), failures.clone());
            tokio::spawn(async move {
                let client = client();
                while Instant::now() < end {
                    let r = get(&client, &url, &[("x-tenant-id", "globex")]).await;
                    if r.status != 200 {
                        failures.lock().expect("lock").push((r.status, r.body));
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sidecar.stop();
    for t in tasks {
        t.await.expect("client");
    }
    assert!(
        failures.lock().expect("lock").is_empty(),
        "{:?}",
        failures.lock()
    );
    expect_prometheus(
        &envoy,
        &[
            "fg_sidecar_fresh{} 0",
            r#"fg_pool_capacity{cluster="pool_a"} 8"#,
        ],
    )
    .await;

    let _restarted = Sidecar::start_on(SIDECAR, &sidecar.addr.to_string());
    expect_prometheus(
        &envoy,
        &[
            "fg_sidecar_fresh{} 1",
            r#"fg_pool_capacity{cluster="pool_a"} 2"#,
        ],
    )
    .await;
}

/// A stand-in sidecar whose answer the test sets.
async fn scripted_sidecar(body: Arc<Mutex<String>>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move || {
        let body = body.lock().map(|b| b.clone()).unwrap_or_default();
        async move { body }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_or_oversized_answer_is_ignored_and_the_last_good_snapshot_kept() {
    let good = r#"{"version": 1, "generated_at_ms": 0, "source": "sim",
        "clusters": {"pool_a": {"headroom": 0.3, "capacity": 3, "healthy": true, "gpus": []}}}"#;
    let body = Arc::new(Mutex::new(good.to_string()));
    let addr = scripted_sidecar(body.clone()).await;
    let mut cfg: Value = serde_json::from_str(&plugin_config(
        &["pool_a"],
        Some(json!({"max_concurrency": 8})),
    ))
    .expect("json");
    cfg["sidecar"]["stale_ms"] = json!(60000);
    let envoy = Envoy::start(
        &EnvoyConfig::new(cfg.to_string())
            .concurrency(2)
            .upstream("fairgate_sidecar", addr),
    );
    let kept = [
        "fg_sidecar_fresh{} 1",
        r#"fg_sidecar_capacity{cluster="pool_a"} 3"#,
    ];
    expect_prometheus(&envoy, &kept).await;
    for (what, answer) in [
        ("garbage", "this is not json".to_string()),
        ("out of range", good.replace("0.3", "7.5")),
        (
            "oversized",
            format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20)),
        ),
    ] {
        *body.lock().expect("lock") = answer;
        tokio::time::sleep(Duration::from_millis(3 * POLL_MS + 200)).await;
        expect_prometheus(&envoy, &kept).await;
        let log = envoy.log();
        assert!(
            log.contains("sidecar poll failed, last good snapshot kept"),
            "{what}: no log line"
        );
        *body.lock().expect("lock") = good.to_string();
        tokio::time::sleep(Duration::from_millis(2 * POLL_MS + 200)).await;
    }
    assert!(
        envoy.log().contains("oversized") || envoy.log().contains("over the"),
        "oversized answer not reported"
    );
}
