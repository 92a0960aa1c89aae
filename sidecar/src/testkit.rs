//! Fixtures shared by the unit tests.

use crate::config::{Config, Overrides};
use crate::gpu::GpuStat;
use crate::headroom::ServerLoad;
use crate::snapshot::Snapshot;

/// Two simulated 80 GiB GPUs of constant load: index 0 (`GPU-sim-0`) a quarter full
/// and half busy, index 1 (`GPU-b`) 10 % full and 10 % busy. Clusters follow.
pub const TWO_SIM_GPUS: &str = r#"
source = "sim"
[[sim.gpus]]
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.5, memory_used = 0.25 }]
[[sim.gpus]]
uuid = "GPU-b"
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }]
"#;

/// `TWO_SIM_GPUS` plus `clusters`, parsed.
pub fn sim_config(clusters: &str) -> Config {
    Config::parse(&format!("{TWO_SIM_GPUS}\n{clusters}"), Overrides::default())
        .expect("fixture config")
}

/// The readings of the config's simulated GPUs at start.
pub fn sim_gpus(config: &Config) -> Vec<GpuStat> {
    crate::sim::stats_at(config.sim.as_deref().expect("sim GPUs"), 0.0)
}

/// The snapshot (version 7) of `TWO_SIM_GPUS` plus `clusters`, with these scrapes.
pub fn sim_snapshot(clusters: &str, scrapes: Vec<Vec<Result<ServerLoad, String>>>) -> Snapshot {
    let config = sim_config(clusters);
    let gpus = sim_gpus(&config);
    Snapshot::build(7, 1_764_400_000_000, "sim", &config.clusters, gpus, scrapes)
}

/// A healthy, empty reading of one device.
pub fn gpu(index: u32, mig_index: Option<u32>, uuid: &str) -> GpuStat {
    GpuStat {
        index,
        mig_index,
        uuid: uuid.into(),
        name: String::new(),
        healthy: true,
        memory_free_bytes: 0,
        memory_total_bytes: 0,
        utilization: None,
        temperature_c: None,
        power_w: None,
        error: None,
    }
}
