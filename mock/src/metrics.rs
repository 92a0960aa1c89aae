//! `GET /metrics`: the load series a vLLM server exposes, under vLLM's names, so the
//! sidecar's model-server scraper reads the mock as it reads vLLM.
//!
//! - `vllm:num_requests_running`, `vllm:num_requests_waiting`: requests in a slot and
//!   waiting for one;
//! - `vllm:kv_cache_usage_perc`: `running / slots` (0..1, as in vLLM since 0.10) — the
//!   mock's KV cache is its slots;
//! - `mock_requests_total`: inference requests received.

use std::fmt::Write;

use crate::ledger::Stats;

/// The Prometheus text page for `stats`, series labelled `model_name="<model>"`.
pub fn render(stats: &Stats, model: &str) -> String {
    let label = format!("{{model_name=\"{}\"}}", escape(model));
    let kv_cache = if stats.slots == 0 {
        0.0
    } else {
        stats.running as f64 / stats.slots as f64
    };
    let mut page = String::new();
    let mut series = |name: &str, kind: &str, help: &str, labels: &str, value: String| {
        // Writing to a String cannot fail.
        let _ = write!(
            page,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
        );
    };
    series(
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        &label,
        stats.running.to_string(),
    );
    series(
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        &label,
        stats.waiting.to_string(),
    );
    series(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        &label,
        kv_cache.to_string(),
    );
    series(
        "mock_requests_total",
        "counter",
        "Inference requests received by the mock.",
        "",
        stats.requests_total.to_string(),
    );
    page
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_cache_usage_is_running_over_slots() {
        let stats = Stats {
            slots: 4,
            running: 3,
            waiting: 7,
            requests_total: 12,
            ..Stats::default()
        };
        let page = render(&stats, "m\"1");
        assert!(page.contains("vllm:num_requests_running{model_name=\"m\\\"1\"} 3\n"));
        assert!(page.contains("vllm:num_requests_waiting{model_name=\"m\\\"1\"} 7\n"));
        assert!(page.contains("vllm:kv_cache_usage_perc{model_name=\"m\\\"1\"} 0.75\n"));
        assert!(page.contains("\nmock_requests_total 12\n"));
        assert!(page.contains("# TYPE mock_requests_total counter\n"));
    }
}
