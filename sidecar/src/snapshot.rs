//! One poll's result: every GPU reading, every model-server scrape, and each cluster's
//! assessment (see [`crate::headroom`]), plus its rendering as the `/v1/headroom` JSON.

use crate::config::Cluster;
use crate::gpu::GpuStat;
use crate::headroom::{self, Assessment, ServerLoad};
use crate::wire;

/// One model server's scrape in a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub url: String,
    /// The load it reported, or why the scrape failed.
    pub load: Result<ServerLoad, String>,
}

/// One cluster in a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterState {
    pub name: String,
    pub base_capacity: u32,
    pub assessment: Assessment,
    /// The readings of the GPUs the cluster names that the source found.
    pub gpus: Vec<GpuStat>,
    pub endpoints: Vec<Endpoint>,
}

impl ClusterState {
    /// Sum of waiting, sum of running and mean KV-cache usage over the servers that
    /// reported each; `None` where none did.
    pub fn server_totals(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let loads: Vec<&ServerLoad> = self
            .endpoints
            .iter()
            .filter_map(|e| e.load.as_ref().ok())
            .collect();
        let sum = |f: fn(&ServerLoad) -> Option<f64>| {
            loads
                .iter()
                .filter_map(|l| f(l))
                .fold(None, |acc: Option<f64>, v| Some(acc.unwrap_or(0.0) + v))
        };
        let kv: Vec<f64> = loads.iter().filter_map(|l| l.kv_cache_usage).collect();
        let kv_mean = (!kv.is_empty()).then(|| kv.iter().sum::<f64>() / kv.len() as f64);
        (sum(|l| l.waiting), sum(|l| l.running), kv_mean)
    }
}

/// Everything one poll saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub generated_at_ms: u64,
    pub source: &'static str,
    pub gpus: Vec<GpuStat>,
    pub clusters: Vec<ClusterState>,
}

impl Snapshot {
    /// Assesses every cluster from one poll's readings. `scrapes[i]` holds the results
    /// for `clusters[i].endpoints`, in order.
    pub fn build(
        version: u64,
        generated_at_ms: u64,
        source: &'static str,
        clusters: &[Cluster],
        gpus: Vec<GpuStat>,
        mut scrapes: Vec<Vec<Result<ServerLoad, String>>>,
    ) -> Snapshot {
        scrapes.resize(clusters.len(), Vec::new());
        let states = clusters
            .iter()
            .zip(scrapes)
            .map(|(cluster, results)| {
                let named: Vec<Option<&GpuStat>> = cluster
                    .gpus
                    .iter()
                    .map(|r| gpus.iter().find(|g| r.matches(g)))
                    .collect();
                let endpoints: Vec<Endpoint> = cluster
                    .endpoints
                    .iter()
                    .zip(
                        results
                            .into_iter()
                            .chain(std::iter::repeat_with(|| Err("not scraped".to_string()))),
                    )
                    .map(|(url, load)| Endpoint {
                        url: url.to_string(),
                        load,
                    })
                    .collect();
                let loads: Vec<ServerLoad> = endpoints
                    .iter()
                    .filter_map(|e| e.load.as_ref().ok().copied())
                    .collect();
                ClusterState {
                    name: cluster.name.clone(),
                    base_capacity: cluster.policy.base_capacity,
                    assessment: headroom::assess(&cluster.policy, &named, &loads),
                    gpus: named.into_iter().flatten().cloned().collect(),
                    endpoints,
                }
            })
            .collect();
        Snapshot {
            version,
            generated_at_ms,
            source,
            gpus,
            clusters: states,
        }
    }

    /// The `/v1/headroom` answer.
    pub fn to_wire(&self) -> wire::Headroom {
        let clusters = self
            .clusters
            .iter()
            .map(|c| {
                let model_servers = (!c.endpoints.is_empty()).then(|| {
                    let (waiting, running, kv) = c.server_totals();
                    wire::ModelServers {
                        endpoints: c.endpoints.len() as u32,
                        endpoints_up: c.endpoints.iter().filter(|e| e.load.is_ok()).count() as u32,
                        requests_waiting: waiting,
                        requests_running: running,
                        kv_cache_usage: kv,
                    }
                });
                let gpus = c
                    .gpus
                    .iter()
                    .map(|g| wire::GpuHeadroom {
                        index: g.index,
                        mig_index: g.mig_index,
                        uuid: g.uuid.clone(),
                        name: g.name.clone(),
                        memory_free_bytes: g.memory_free_bytes,
                        memory_total_bytes: g.memory_total_bytes,
                        utilization: g.utilization.unwrap_or(0.0),
                        healthy: g.healthy,
                        error: g.error.clone(),
                    })
                    .collect();
                let a = &c.assessment;
                let cluster = wire::ClusterHeadroom {
                    headroom: a.headroom,
                    capacity: a.capacity,
                    healthy: a.healthy,
                    base_capacity: c.base_capacity,
                    limited_by: a.limited_by.map(|s| s.as_str().to_string()),
                    gpus,
                    model_servers,
                };
                (c.name.clone(), cluster)
            })
            .collect();
        wire::Headroom {
            version: self.version,
            generated_at_ms: self.generated_at_ms,
            source: self.source.to_string(),
            clusters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{sim_config, sim_gpus, sim_snapshot};

    const CLUSTERS: &str = r#"
[clusters.pool_a]
gpus = [0]
base_capacity = 10

[clusters.pool_b]
gpus = ["GPU-b"]
endpoints = ["http://10.0.0.1:8000/metrics", "http://10.0.0.2:8000/metrics"]
base_capacity = 20
"#;

    fn snapshot(scrapes: Vec<Vec<Result<ServerLoad, String>>>) -> Snapshot {
        sim_snapshot(CLUSTERS, scrapes)
    }

    #[test]
    fn the_wire_answer_has_the_spec_shape() {
        let wire = snapshot(vec![]).to_wire();
        let json = serde_json::to_value(&wire).unwrap();
        assert_eq!(json["version"], 7);
        assert_eq!(json["generated_at_ms"], 1_764_400_000_000u64);
        assert_eq!(json["source"], "sim");
        let a = &json["clusters"]["pool_a"];
        assert_eq!(a["headroom"], 0.5);
        assert_eq!(a["capacity"], 5);
        assert_eq!(a["healthy"], true);
        assert_eq!(a["gpus"][0]["index"], 0);
        assert_eq!(a["gpus"][0]["uuid"], "GPU-sim-0");
        assert_eq!(a["gpus"][0]["memory_total_bytes"], 80u64 << 30);
        assert_eq!(a["gpus"][0]["memory_free_bytes"], 60u64 << 30);
        assert_eq!(a["gpus"][0]["utilization"], 0.5);
        assert!(a.get("model_servers").is_none());
    }

    #[test]
    fn endpoints_that_answered_feed_headroom_and_the_others_are_counted_down() {
        let up = ServerLoad {
            waiting: Some(2.0),
            running: Some(5.0),
            kv_cache_usage: Some(0.6),
        };
        let snap = snapshot(vec![vec![], vec![Ok(up), Err("refused".into())]]);
        let b = &snap.to_wire().clusters["pool_b"];
        assert_eq!(b.headroom, 0.4);
        assert_eq!(b.capacity, 8);
        assert_eq!(b.limited_by.as_deref(), Some("kv_cache"));
        let servers = b.model_servers.as_ref().unwrap();
        assert_eq!((servers.endpoints, servers.endpoints_up), (2, 1));
        assert_eq!(servers.requests_waiting, Some(2.0));
        assert_eq!(servers.kv_cache_usage, Some(0.6));
    }

    #[test]
    fn a_missing_gpu_leaves_its_cluster_unhealthy() {
        let config = sim_config(CLUSTERS);
        let mut gpus = sim_gpus(&config);
        gpus.remove(0);
        let snap = Snapshot::build(1, 0, "sim", &config.clusters, gpus, vec![]);
        let a = &snap.to_wire().clusters["pool_a"];
        assert!(!a.healthy);
        assert_eq!((a.headroom, a.capacity), (0.0, 0));
        assert!(a.gpus.is_empty());
    }
}
