//! Fleet mode in the real binary, with its Redis out of reach (the leasing itself, on
//! a real redis-server, is tested in `src/fleet/redis_tests.rs`): a sidecar for fleet
//! leases only starts, answers polls in its Envoy's outage mode, and says so in its
//! metrics.

use crate::harness::Sidecar;

/// Nothing listens on port 1.
const FLEET_ONLY: &str = r#"
poll_ms = 50

[fleet]
redis_url = "redis://127.0.0.1:1/0"
replica = "gw-test"
timeout_ms = 100
"#;

const POLL: &str = r#"{"envoy": "envoy-a", "boot": "b1", "outage": "closed", "poll_ms": 100,
  "tenants": {"acme": {"limits": {"requests_per_second": 10, "request_burst": 20},
    "demand": true, "requests": {"spent": 0, "applied": 0}}}}"#;

#[tokio::test]
async fn a_fleet_only_sidecar_with_redis_down_answers_the_outage_mode() {
    let sidecar = Sidecar::start(FLEET_ONLY, &[]);
    let headroom = sidecar.headroom().await;
    assert_eq!(headroom["source"], "none");
    assert_eq!(headroom["clusters"], serde_json::json!({}));

    let (status, body) = sidecar.post("/v1/fleet/poll", POLL).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["source"], "none",
        "the headroom snapshot, with fleet added"
    );
    assert_eq!(answer["fleet"]["state"], "closed");
    assert_eq!(answer["fleet"]["replicas"], 1);
    assert_eq!(answer["fleet"]["sidecar"], "gw-test");
    let lease = &answer["fleet"]["tenants"]["acme"]["requests"];
    assert_eq!(lease["grants"], serde_json::json!([]));
    assert_eq!(lease["expires_in_ms"], 0);

    let (status, body) = sidecar.post("/v1/fleet/poll", r#"{"envoy": ""}"#).await;
    assert_eq!(status, 400, "{body}");
    let (_, _, metrics) = sidecar.get("/metrics").await;
    for line in [
        "fairgate_fleet_redis_up 0",
        "fairgate_fleet_replicas 1",
        r#"fairgate_fleet_envoys{state="closed"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    let (status, log) = sidecar.stop();
    assert_eq!(status, Some(0), "{log}");
    assert!(log.contains("fleet: the store failed"), "{log}");
}

#[tokio::test]
async fn without_fleet_mode_the_fleet_poll_is_not_found() {
    let config = std::fs::read_to_string(crate::harness::example_config()).unwrap();
    let sidecar = Sidecar::start(&config, &["--source", "sim"]);
    let (status, body) = sidecar.post("/v1/fleet/poll", POLL).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("fleet mode is off"), "{body}");
}

#[test]
fn check_names_the_fleet_without_its_password() {
    let dir = crate::harness::TempDir::new();
    let path = dir.write(
        "sidecar.toml",
        "[fleet]\nredis_url = \"rediss://app:s3cret@redis.example:6380/0\"\n",
    );
    let output = crate::harness::run_to_exit(&["--config", &path.display().to_string(), "--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("fleet on rediss://app:***@redis.example:6380/0"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");
}
