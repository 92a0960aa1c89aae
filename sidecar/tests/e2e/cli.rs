//! The command line: refused configs, the missing NVIDIA driver, `--check`, signals.

use crate::harness::{example_config, run_to_exit, Sidecar, TempDir};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bad_config_is_refused_with_the_field_path_and_a_nonzero_exit() {
    let dir = TempDir::new();
    let cases = [
        (
            "source = \"sim\"\n[[sim.gpus]]\nmemory_total_gib = 8\ncurve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }]\n[clusters.pool_a]\ngpus = [0]\nbase_capacity = 4\nweight = 2\n",
            "clusters.pool_a.weight: unknown field `weight`",
        ),
        (
            "source = \"sim\"\n[[sim.gpus]]\nmemory_total_gib = 8\ncurve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }]\n[clusters.pool_a]\ngpus = [0, 1]\nbase_capacity = 4\n",
            "clusters.pool_a.gpus[1]: no GPU with index 1 (sim found 1 GPU)",
        ),
        (
            "poll_ms = 0\n[clusters.pool_a]\ngpus = [0]\nbase_capacity = 4\n",
            "poll_ms: must be >= 10",
        ),
        (
            "[clusters.pool_a]\ngpus = [0]\nbase_capacity = 4\n[clusters.pool_a]\ngpus = [1]\nbase_capacity = 4\n",
            "duplicate key",
        ),
    ];
    for (text, want) in cases {
        let path = dir.write("bad.toml", text);
        let output = run_to_exit(&[
            "--config",
            &path.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ]);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "want {want:?} in {stderr:?}");
        assert!(
            stderr.starts_with(&format!("fairgate-sidecar: {}: ", path.display())),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    }
}

#[test]
fn a_missing_config_file_is_refused() {
    let output = run_to_exit(&["--config", "/nonexistent/sidecar.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("cannot read /nonexistent/sidecar.toml"));
}

#[test]
fn the_nvml_source_without_a_driver_exits_2_with_one_clear_line() {
    let dir = TempDir::new();
    // Index 4096 exists nowhere, so this exits on a GPU machine too (code 1).
    let path = dir.write(
        "nvml.toml",
        "[clusters.all]\ngpus = [4096]\nbase_capacity = 8\n",
    );
    let output = run_to_exit(&[
        "--config",
        &path.display().to_string(),
        "--source",
        "nvml",
        "--listen",
        "127.0.0.1:0",
    ]);
    let stderr = stderr_of(&output);
    if std::path::Path::new("/proc/driver/nvidia").exists() {
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("no GPU with index 4096 (nvml found"),
            "{stderr}"
        );
        return;
    }
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.starts_with("fairgate-sidecar: NVML is unavailable ("),
        "{stderr}"
    );
    assert!(stderr.contains("NVIDIA driver"), "{stderr}");
    assert!(stderr.contains("--source sim"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_accepts_the_example_config() {
    let config = example_config();
    let output = run_to_exit(&["--config", &config.display().to_string(), "--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stdout.contains("ok (3 clusters, source sim)"), "{stdout}");
}

#[tokio::test]
async fn the_example_config_serves_its_three_clusters_and_stops_on_sigterm() {
    let sidecar = Sidecar::start_file(&example_config(), &[]);
    let headroom = sidecar.headroom().await;
    assert_eq!(headroom["source"], "sim");
    let clusters = headroom["clusters"].as_object().expect("clusters");
    let names: Vec<&str> = clusters.keys().map(String::as_str).collect();
    assert_eq!(names, ["acme_dedicated", "pool_a", "pool_b"]);
    for (name, cluster) in clusters {
        let h = cluster["headroom"].as_f64().expect("headroom");
        assert!((0.0..=1.0).contains(&h), "{name}: {h}");
        assert_eq!(cluster["healthy"], true, "{name}");
        assert!(
            cluster["capacity"].as_u64().expect("capacity") >= 1,
            "{name}"
        );
    }
    assert_eq!(clusters["pool_a"]["gpus"].as_array().map(Vec::len), Some(2));
    assert_eq!(clusters["pool_b"]["gpus"][1]["uuid"], "GPU-sim-pool-b-1");
    // acme's GPU is constant: 40 % of 48 GiB used, 35 % busy.
    let acme = &clusters["acme_dedicated"];
    assert_eq!(acme["headroom"], 0.6);
    assert_eq!(acme["capacity"], 10);
    assert_eq!(acme["limited_by"], "gpu_memory");

    let (status, log) = sidecar.stop();
    assert_eq!(status, Some(0), "{log}");
}
