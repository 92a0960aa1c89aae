//! The sidecar's `/metrics`: GPU, cluster and sidecar series in Prometheus (OpenMetrics)
//! text, through `prometheus-client`.
//!
//! GPU series carry `gpu` (the index; `index:mig` for a MIG instance) and `uuid`, with
//! DCGM's meaning: `fairgate_gpu_memory_free_bytes`, `_used_bytes`, `_total_bytes`,
//! `fairgate_gpu_utilization_ratio` (0..1), `fairgate_gpu_temperature_celsius`,
//! `fairgate_gpu_power_watts`, `fairgate_gpu_healthy`. Cluster series carry `cluster`:
//! `fairgate_cluster_headroom_ratio`, `_capacity`, `_base_capacity`, `_healthy`, and,
//! from its model servers, `_requests_waiting`, `_requests_running`,
//! `_kv_cache_usage_ratio`; per endpoint, `fairgate_model_server_up` and
//! `fairgate_model_server_scrape_errors_total`. The sidecar's own:
//! `fairgate_sidecar_snapshot_version`, `fairgate_sidecar_snapshot_age_seconds`,
//! `fairgate_sidecar_poll_errors_total`. Fleet mode's `fairgate_fleet_*` series are
//! [`FleetMetrics`]'s, in the same registry.
//!
//! The poller rewrites the gauges after each poll ([`Metrics::record`]), dropping the
//! series of devices that went away; a scrape of `/metrics` only encodes.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::fleet::metrics::FleetMetrics;
use crate::snapshot::Snapshot;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpuLabels {
    gpu: String,
    uuid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    cluster: String,
    endpoint: String,
}

type GaugeF = Gauge<f64, AtomicU64>;

/// Every series, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// Held for writing while a poll rewrites the gauges, so that a scrape never sees
    /// a half-written set.
    update: RwLock<()>,
    gpu_memory_free: Family<GpuLabels, GaugeF>,
    gpu_memory_used: Family<GpuLabels, GaugeF>,
    gpu_memory_total: Family<GpuLabels, GaugeF>,
    gpu_utilization: Family<GpuLabels, GaugeF>,
    gpu_temperature: Family<GpuLabels, GaugeF>,
    gpu_power: Family<GpuLabels, GaugeF>,
    gpu_healthy: Family<GpuLabels, GaugeF>,
    cluster_headroom: Family<ClusterLabels, GaugeF>,
    cluster_capacity: Family<ClusterLabels, GaugeF>,
    cluster_base_capacity: Family<ClusterLabels, GaugeF>,
    cluster_healthy: Family<ClusterLabels, GaugeF>,
    cluster_waiting: Family<ClusterLabels, GaugeF>,
    cluster_running: Family<ClusterLabels, GaugeF>,
    cluster_kv_cache: Family<ClusterLabels, GaugeF>,
    endpoint_up: Family<EndpointLabels, GaugeF>,
    scrape_errors: Family<EndpointLabels, Counter>,
    poll_errors: Counter,
    headroom_requests: Counter,
    snapshot_version: GaugeF,
    snapshot_age: GaugeF,
    fleet: Arc<FleetMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fairgate");
        let bytes = || Some(Unit::Bytes);
        let ratio = || Some(Unit::Other("ratio".to_string()));

        let gpu = registry.sub_registry_with_prefix("gpu");
        let gpu_memory_free = add(gpu, "memory_free", "Free GPU memory", bytes());
        let gpu_memory_used = add(gpu, "memory_used", "Used GPU memory", bytes());
        let gpu_memory_total = add(gpu, "memory_total", "Total GPU memory", bytes());
        let gpu_utilization = add(
            gpu,
            "utilization",
            "Fraction of the last sample period a kernel was running (0..1)",
            ratio(),
        );
        let gpu_temperature = add(gpu, "temperature", "GPU temperature", Some(Unit::Celsius));
        let gpu_power = add(
            gpu,
            "power",
            "GPU power draw",
            Some(Unit::Other("watts".to_string())),
        );
        let gpu_healthy = add(
            gpu,
            "healthy",
            "1 when every reading of the GPU succeeded",
            None,
        );

        let cluster = registry.sub_registry_with_prefix("cluster");
        let cluster_headroom = add(
            cluster,
            "headroom",
            "Headroom of the cluster, 0 (saturated) .. 1 (idle)",
            ratio(),
        );
        let cluster_capacity = add(cluster, "capacity", "Suggested concurrency now", None);
        let cluster_base_capacity = add(
            cluster,
            "base_capacity",
            "Configured concurrency when idle",
            None,
        );
        let cluster_healthy = add(cluster, "healthy", "1 when the cluster is healthy", None);
        let cluster_waiting = add(
            cluster,
            "requests_waiting",
            "Requests waiting in the cluster's model servers",
            None,
        );
        let cluster_running = add(
            cluster,
            "requests_running",
            "Requests running in the cluster's model servers",
            None,
        );
        let cluster_kv_cache = add(
            cluster,
            "kv_cache_usage",
            "Mean KV-cache usage of the cluster's model servers (0..1)",
            ratio(),
        );

        let server = registry.sub_registry_with_prefix("model_server");
        let endpoint_up = add(
            server,
            "up",
            "1 when the last scrape of the endpoint succeeded",
            None,
        );
        let scrape_errors = add(
            server,
            "scrape_errors",
            "Failed scrapes of the endpoint",
            None,
        );

        let sidecar = registry.sub_registry_with_prefix("sidecar");
        let poll_errors = add(sidecar, "poll_errors", "Polls whose GPU read failed", None);
        let headroom_requests = add(
            sidecar,
            "headroom_requests",
            "GET /v1/headroom answered (the filter polls once per poll_ms per Envoy)",
            None,
        );
        let snapshot_version = add(
            sidecar,
            "snapshot_version",
            "Version of the latest snapshot",
            None,
        );
        let snapshot_age = add(
            sidecar,
            "snapshot_age",
            "Age of the latest snapshot when scraped",
            Some(Unit::Seconds),
        );

        let fleet = Arc::new(FleetMetrics::register(
            registry.sub_registry_with_prefix("fleet"),
        ));

        Self {
            registry,
            update: RwLock::new(()),
            gpu_memory_free,
            gpu_memory_used,
            gpu_memory_total,
            gpu_utilization,
            gpu_temperature,
            gpu_power,
            gpu_healthy,
            cluster_headroom,
            cluster_capacity,
            cluster_base_capacity,
            cluster_healthy,
            cluster_waiting,
            cluster_running,
            cluster_kv_cache,
            endpoint_up,
            scrape_errors,
            poll_errors,
            headroom_requests,
            snapshot_version,
            snapshot_age,
            fleet,
        }
    }

    /// Fleet mode's series.
    pub fn fleet(&self) -> Arc<FleetMetrics> {
        self.fleet.clone()
    }

    /// Rewrites the gauges from a new snapshot and counts its failed scrapes.
    pub fn record(&self, snapshot: &Snapshot) {
        let _writing = self.update.write();
        let gpu_families = [
            &self.gpu_memory_free,
            &self.gpu_memory_used,
            &self.gpu_memory_total,
            &self.gpu_utilization,
            &self.gpu_temperature,
            &self.gpu_power,
            &self.gpu_healthy,
        ];
        for family in gpu_families {
            family.clear();
        }
        for gpu in &snapshot.gpus {
            let labels = GpuLabels {
                gpu: gpu.label(),
                uuid: gpu.uuid.clone(),
            };
            let set = |family: &Family<GpuLabels, GaugeF>, v: f64| {
                family.get_or_create(&labels).set(v);
            };
            set(&self.gpu_healthy, bool_value(gpu.healthy));
            if gpu.memory_total_bytes > 0 {
                set(&self.gpu_memory_free, gpu.memory_free_bytes as f64);
                let used = gpu.memory_total_bytes.saturating_sub(gpu.memory_free_bytes);
                set(&self.gpu_memory_used, used as f64);
                set(&self.gpu_memory_total, gpu.memory_total_bytes as f64);
            }
            let optional = [
                (&self.gpu_utilization, gpu.utilization),
                (&self.gpu_temperature, gpu.temperature_c),
                (&self.gpu_power, gpu.power_w),
            ];
            for (family, value) in optional {
                if let Some(v) = value {
                    set(family, v);
                }
            }
        }

        let cluster_families = [
            &self.cluster_headroom,
            &self.cluster_capacity,
            &self.cluster_base_capacity,
            &self.cluster_healthy,
            &self.cluster_waiting,
            &self.cluster_running,
            &self.cluster_kv_cache,
        ];
        for family in cluster_families {
            family.clear();
        }
        self.endpoint_up.clear();
        for cluster in &snapshot.clusters {
            let labels = ClusterLabels {
                cluster: cluster.name.clone(),
            };
            let set = |family: &Family<ClusterLabels, GaugeF>, v: f64| {
                family.get_or_create(&labels).set(v);
            };
            let a = &cluster.assessment;
            set(&self.cluster_headroom, a.headroom);
            set(&self.cluster_capacity, f64::from(a.capacity));
            set(
                &self.cluster_base_capacity,
                f64::from(cluster.base_capacity),
            );
            set(&self.cluster_healthy, bool_value(a.healthy));
            let (waiting, running, kv) = cluster.server_totals();
            let optional = [
                (&self.cluster_waiting, waiting),
                (&self.cluster_running, running),
                (&self.cluster_kv_cache, kv),
            ];
            for (family, value) in optional {
                if let Some(v) = value {
                    set(family, v);
                }
            }
            for endpoint in &cluster.endpoints {
                let labels = EndpointLabels {
                    cluster: cluster.name.clone(),
                    endpoint: endpoint.url.clone(),
                };
                self.endpoint_up
                    .get_or_create(&labels)
                    .set(bool_value(endpoint.load.is_ok()));
                let errors = self.scrape_errors.get_or_create(&labels);
                if endpoint.load.is_err() {
                    errors.inc();
                }
            }
        }
        self.snapshot_version.set(snapshot.version as f64);
    }

    /// Counts an answered `GET /v1/headroom`.
    pub fn headroom_served(&self) {
        self.headroom_requests.inc();
    }

    /// Counts a poll whose GPU read failed.
    pub fn poll_failed(&self) {
        self.poll_errors.inc();
    }

    /// The OpenMetrics text of every series, with the snapshot's age as given.
    pub fn encode(&self, snapshot_age_s: f64) -> Result<String, std::fmt::Error> {
        let _reading = self.update.read();
        self.snapshot_age.set(snapshot_age_s);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// A new metric, registered under `name`.
fn add<M: Metric + Clone + Default>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
) -> M {
    let metric = M::default();
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, metric.clone()),
        None => registry.register(name, help, metric.clone()),
    }
    metric
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sim_snapshot;

    #[test]
    fn gpu_and_cluster_series_are_encoded() {
        let clusters = r#"
[clusters.pool_a]
gpus = [0]
endpoints = ["http://127.0.0.1:1/metrics"]
base_capacity = 8
"#;
        let snapshot = sim_snapshot(clusters, vec![vec![Err("refused".to_string())]]);
        let metrics = Metrics::new();
        metrics.record(&snapshot);
        metrics.record(&snapshot);
        let text = metrics.encode(0.25).unwrap();
        for line in [
            r#"fairgate_gpu_memory_free_bytes{gpu="0",uuid="GPU-sim-0"} 64424509440.0"#,
            r#"fairgate_gpu_memory_used_bytes{gpu="0",uuid="GPU-sim-0"} 21474836480.0"#,
            r#"fairgate_gpu_utilization_ratio{gpu="1",uuid="GPU-b"} 0.1"#,
            r#"fairgate_gpu_temperature_celsius{gpu="0",uuid="GPU-sim-0"} 55.0"#,
            r#"fairgate_gpu_power_watts{gpu="0",uuid="GPU-sim-0"} 400.0"#,
            r#"fairgate_cluster_headroom_ratio{cluster="pool_a"} 0.5"#,
            r#"fairgate_cluster_capacity{cluster="pool_a"} 4.0"#,
            r#"fairgate_cluster_healthy{cluster="pool_a"} 1.0"#,
            r#"fairgate_model_server_up{cluster="pool_a",endpoint="http://127.0.0.1:1/metrics"} 0.0"#,
            r#"fairgate_model_server_scrape_errors_total{cluster="pool_a",endpoint="http://127.0.0.1:1/metrics"} 2"#,
            "fairgate_sidecar_snapshot_version 7.0",
            "fairgate_sidecar_snapshot_age_seconds 0.25",
            "fairgate_sidecar_poll_errors_total 0",
            "fairgate_sidecar_headroom_requests_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
