//! vLLM-style `/metrics` pages feed headroom: served by a tiny axum server in the test.

use std::net::SocketAddr;

use crate::harness::Sidecar;

/// What a vLLM server under load shows: 10 running, 6 waiting, KV cache 35 % full.
const VLLM_PAGE: &str = include_str!("../../testdata/vllm_metrics.txt");

/// Serves `VLLM_PAGE` at `/metrics` on a free port.
async fn fake_vllm() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { VLLM_PAGE }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn config(vllm: SocketAddr, dead: u16) -> String {
    // Both GPUs look as vLLM leaves them: 90 % of the memory reserved, always busy.
    format!(
        r#"
source = "sim"
poll_ms = 50

[[sim.gpus]]
memory_total_gib = 80
curve = [{{ t_s = 0, utilization = 0.97, memory_used = 0.9 }}]

[[sim.gpus]]
memory_total_gib = 80
curve = [{{ t_s = 0, utilization = 0.97, memory_used = 0.9 }}]

[clusters.vllm_pool]
gpus = [0]
endpoints = ["http://{vllm}/metrics"]
base_capacity = 40

[clusters.dark_pool]
gpus = [1]
endpoints = ["http://127.0.0.1:{dead}/metrics"]
base_capacity = 40
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_metrics_feed_headroom_for_their_cluster() {
    let vllm = fake_vllm().await;
    let sidecar = Sidecar::start(&config(vllm, dead_port()), &[]);
    let headroom = sidecar
        .headroom_when(|h| h["clusters"]["vllm_pool"]["model_servers"]["endpoints_up"] == 1)
        .await;
    let pool = &headroom["clusters"]["vllm_pool"];
    // KV cache 35 % full; 6 waiting of a queue limit of 8: the queue leaves 25 %.
    assert_eq!(pool["healthy"], true);
    assert_eq!(pool["headroom"], 0.25);
    assert_eq!(pool["capacity"], 10);
    assert_eq!(pool["limited_by"], "queue");
    assert_eq!(
        pool["model_servers"],
        serde_json::json!({
            "endpoints": 1, "endpoints_up": 1,
            "requests_waiting": 6.0, "requests_running": 10.0, "kv_cache_usage": 0.35
        })
    );

    let (_, _, text) = sidecar.get("/metrics").await;
    for line in [
        r#"fairgate_cluster_requests_waiting{cluster="vllm_pool"} 6.0"#,
        r#"fairgate_cluster_requests_running{cluster="vllm_pool"} 10.0"#,
        r#"fairgate_cluster_kv_cache_usage_ratio{cluster="vllm_pool"} 0.35"#,
        &format!(
            r#"fairgate_model_server_up{{cluster="vllm_pool",endpoint="http://{vllm}/metrics"}} 1.0"#
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_model_server_leaves_the_gpu_signals_and_counts_errors() {
    let vllm = fake_vllm().await;
    let dead = dead_port();
    let sidecar = Sidecar::start(&config(vllm, dead), &[]);
    let headroom = sidecar.headroom().await;
    let dark = &headroom["clusters"]["dark_pool"];
    // No model-server signal: the GPU's own readings decide (97 % busy).
    assert_eq!(dark["healthy"], true);
    assert_eq!(dark["headroom"], 0.03);
    assert_eq!(dark["capacity"], 1, "min_capacity keeps it draining");
    assert_eq!(dark["limited_by"], "gpu_utilization");
    assert_eq!(dark["model_servers"]["endpoints"], 1);
    assert_eq!(dark["model_servers"]["endpoints_up"], 0);

    let endpoint = format!("http://127.0.0.1:{dead}/metrics");
    let (_, _, text) = sidecar.get("/metrics").await;
    let up =
        format!(r#"fairgate_model_server_up{{cluster="dark_pool",endpoint="{endpoint}"}} 0.0"#);
    assert!(text.lines().any(|l| l == up), "missing {up:?} in\n{text}");
    let errors = format!(
        r#"fairgate_model_server_scrape_errors_total{{cluster="dark_pool",endpoint="{endpoint}"}} "#
    );
    let count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&errors))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("missing {errors:?} in\n{text}"));
    assert!(count >= 1);

    let (status, log) = sidecar.stop();
    assert_eq!(status, Some(0), "{log}");
    assert!(
        log.contains(&format!("model server {endpoint} is failing")),
        "{log}"
    );
}
