//! `GET /v1/headroom`, `/metrics` and `/healthz` on simulated GPUs of constant load.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::harness::Sidecar;

/// Three GPUs: pool_a half full and 40 % busy, pool_b a quarter full and 20 % busy,
/// and a broken one.
const CONFIG: &str = r#"
source = "sim"
poll_ms = 50

[[sim.gpus]]
uuid = "GPU-test-0"
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.4, memory_used = 0.5 }]

[[sim.gpus]]
uuid = "GPU-test-1"
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.2, memory_used = 0.25 }]

[[sim.gpus]]
uuid = "GPU-test-2"
memory_total_gib = 40
healthy = false
curve = [{ t_s = 0, utilization = 0.0, memory_used = 0.0 }]

[clusters.pool_a]
gpus = [0]
base_capacity = 64

[clusters.pool_b]
gpus = ["GPU-test-1"]
base_capacity = 64

[clusters.broken]
gpus = [2]
base_capacity = 8
"#;

const GIB: u64 = 1 << 30;

#[tokio::test]
async fn headroom_has_the_spec_shape_and_the_sim_values() {
    let sidecar = Sidecar::start(CONFIG, &[]);
    let (status, content_type, body) = sidecar.get("/v1/headroom").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");

    assert!(json["version"].as_u64().expect("version") >= 1);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let generated = json["generated_at_ms"].as_u64().expect("generated_at_ms");
    assert!(
        generated <= now_ms && now_ms - generated < 3_600_000,
        "{generated} vs {now_ms}"
    );
    assert_eq!(json["source"], "sim");

    let a = &json["clusters"]["pool_a"];
    assert_eq!(a["headroom"], 0.5);
    assert_eq!(a["capacity"], 32);
    assert_eq!(a["healthy"], true);
    assert_eq!(a["limited_by"], "gpu_memory");
    assert_eq!(
        a["gpus"],
        serde_json::json!([{
            "index": 0, "uuid": "GPU-test-0", "name": "fairgate simulated GPU",
            "memory_free_bytes": 40 * GIB, "memory_total_bytes": 80 * GIB,
            "utilization": 0.4, "healthy": true
        }])
    );

    let b = &json["clusters"]["pool_b"];
    assert_eq!(b["headroom"], 0.75);
    assert_eq!(b["capacity"], 48);
    assert_eq!(b["gpus"][0]["index"], 1);
    assert_eq!(b["gpus"][0]["memory_free_bytes"], 60 * GIB);

    let broken = &json["clusters"]["broken"];
    assert_eq!(broken["healthy"], false);
    assert_eq!(broken["headroom"], 0.0);
    assert_eq!(broken["capacity"], 0);
    assert_eq!(broken["gpus"][0]["healthy"], false);
}

#[tokio::test]
async fn version_increments_with_every_snapshot() {
    let sidecar = Sidecar::start(CONFIG, &[]);
    let first = sidecar.headroom().await;
    let v1 = first["version"].as_u64().expect("version");
    let later = sidecar
        .headroom_when(|h| h["version"].as_u64() > Some(v1 + 1))
        .await;
    assert!(later["generated_at_ms"].as_u64() >= first["generated_at_ms"].as_u64());
    assert_eq!(
        later["clusters"], first["clusters"],
        "constant load, same answer"
    );
}

#[tokio::test]
async fn metrics_carry_gpu_cluster_and_sidecar_series() {
    let sidecar = Sidecar::start(CONFIG, &[]);
    let (status, content_type, text) = sidecar.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for line in [
        r#"fairgate_gpu_memory_free_bytes{gpu="0",uuid="GPU-test-0"} 42949672960.0"#,
        r#"fairgate_gpu_memory_used_bytes{gpu="0",uuid="GPU-test-0"} 42949672960.0"#,
        r#"fairgate_gpu_memory_total_bytes{gpu="1",uuid="GPU-test-1"} 85899345920.0"#,
        r#"fairgate_gpu_utilization_ratio{gpu="1",uuid="GPU-test-1"} 0.2"#,
        r#"fairgate_gpu_temperature_celsius{gpu="0",uuid="GPU-test-0"} 50.0"#,
        r#"fairgate_gpu_power_watts{gpu="0",uuid="GPU-test-0"} 340.0"#,
        r#"fairgate_gpu_healthy{gpu="2",uuid="GPU-test-2"} 0.0"#,
        r#"fairgate_cluster_headroom_ratio{cluster="pool_b"} 0.75"#,
        r#"fairgate_cluster_capacity{cluster="pool_a"} 32.0"#,
        r#"fairgate_cluster_healthy{cluster="broken"} 0.0"#,
        "fairgate_sidecar_poll_errors_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    for series in [
        "fairgate_sidecar_snapshot_version ",
        "fairgate_sidecar_snapshot_age_seconds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(series)),
            "missing {series} in\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn healthz_is_ok_while_polls_succeed() {
    let sidecar = Sidecar::start(CONFIG, &[]);
    let (status, _, body) = sidecar.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["status"], "ok");
    assert!(json["version"].as_u64() >= Some(1));
    let (status, _, _) = sidecar.get("/nope").await;
    assert_eq!(status, 404);
}
