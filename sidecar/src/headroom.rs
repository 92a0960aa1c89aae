//! Headroom and capacity of one cluster, from its GPUs and its model servers.
//!
//! Two pressures, each from 0 (idle) to 1 (saturated):
//!
//! - **memory** = the mean KV-cache usage of the cluster's model servers that report
//!   it; where none does, the used fraction of the cluster's GPU memory,
//!   `1 − Σ free / Σ total`.
//! - **compute** = the requests waiting per reporting model server, divided by the
//!   cluster's `queue_limit` and capped at 1; where no server reports a queue, the mean
//!   utilisation of the cluster's GPUs.
//!
//! Then:
//!
//! ```text
//! healthy  = every GPU the cluster names is present and healthy,
//!            and at least one pressure is known
//! headroom = 1 − max(memory, compute)            (0 when unhealthy; 4 decimals)
//! capacity = max(min_capacity, round(base_capacity × headroom))   (0 when unhealthy)
//! ```
//!
//! Model-server signals take precedence over the GPU's own because they measure what
//! limits an LLM server: once vLLM has reserved its KV cache, NVML's free memory is
//! flat (about 10 % whatever the load), and NVML's utilisation reads close to 100 % as
//! soon as one request is running. The GPU readings remain the fallback for clusters
//! without (or with unreachable) model-server metrics. Requests *running* are reported
//! but not used: they are the load the filter itself admits, and feeding them back
//! would make capacity chase its own tail. `min_capacity` (default 1) keeps a
//! saturated but healthy cluster draining its queue instead of stalling.
//!
//! Headroom never rises when a pressure rises, and capacity never rises when headroom
//! falls. Cost: O(GPUs + endpoints) per cluster per poll.

use crate::gpu::GpuStat;

/// A cluster's capacity settings, from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Concurrent requests the cluster takes when idle.
    pub base_capacity: u32,
    /// The least capacity a healthy cluster reports.
    pub min_capacity: u32,
    /// Waiting requests per model server that count as a full queue.
    pub queue_limit: u32,
}

/// The signal behind a cluster's headroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    KvCache,
    GpuMemory,
    Queue,
    GpuUtilization,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::KvCache => "kv_cache",
            Signal::GpuMemory => "gpu_memory",
            Signal::Queue => "queue",
            Signal::GpuUtilization => "gpu_utilization",
        }
    }
}

/// What one model server reported; each field absent where its series was missing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerLoad {
    pub waiting: Option<f64>,
    pub running: Option<f64>,
    /// 0..1.
    pub kv_cache_usage: Option<f64>,
}

/// A cluster's headroom, capacity and health.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub headroom: f64,
    pub capacity: u32,
    pub healthy: bool,
    /// The pressure that set `headroom`; `None` when unhealthy.
    pub limited_by: Option<Signal>,
}

impl Assessment {
    const UNHEALTHY: Assessment = Assessment {
        headroom: 0.0,
        capacity: 0,
        healthy: false,
        limited_by: None,
    };
}

/// Assesses a cluster. `gpus` holds, for each GPU the cluster names, its reading (or
/// `None` when the source did not find it); `servers` the loads of the model servers
/// that answered their scrape.
pub fn assess(policy: &Policy, gpus: &[Option<&GpuStat>], servers: &[ServerLoad]) -> Assessment {
    let mut readings = Vec::with_capacity(gpus.len());
    for gpu in gpus {
        match gpu {
            Some(gpu) if gpu.healthy => readings.push(*gpu),
            _ => return Assessment::UNHEALTHY,
        }
    }
    let memory = mean(servers.iter().filter_map(|s| s.kv_cache_usage))
        .map(|p| (Signal::KvCache, p))
        .or_else(|| gpu_memory_used(&readings).map(|p| (Signal::GpuMemory, p)));
    let compute = mean(servers.iter().filter_map(|s| s.waiting))
        .map(|w| (Signal::Queue, w / f64::from(policy.queue_limit.max(1))))
        .or_else(|| {
            mean(readings.iter().filter_map(|g| g.utilization)).map(|u| (Signal::GpuUtilization, u))
        });
    let worst = match (memory, compute) {
        (Some(m), Some(c)) => Some(if c.1 > m.1 { c } else { m }),
        (m, c) => m.or(c),
    };
    let Some((signal, pressure)) = worst else {
        return Assessment::UNHEALTHY;
    };
    let headroom = ((1.0 - pressure.clamp(0.0, 1.0)) * 10_000.0).round() / 10_000.0;
    let capacity = (f64::from(policy.base_capacity) * headroom).round() as u32;
    Assessment {
        headroom,
        capacity: capacity.max(policy.min_capacity),
        healthy: true,
        limited_by: Some(signal),
    }
}

fn gpu_memory_used(gpus: &[&GpuStat]) -> Option<f64> {
    let total: u64 = gpus.iter().map(|g| g.memory_total_bytes).sum();
    let free: u64 = gpus
        .iter()
        .map(|g| g.memory_free_bytes.min(g.memory_total_bytes))
        .sum();
    (total > 0).then(|| 1.0 - free as f64 / total as f64)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        base_capacity: 64,
        min_capacity: 1,
        queue_limit: 8,
    };

    fn gpu(free_gib: u64, utilization: f64) -> GpuStat {
        GpuStat {
            memory_free_bytes: free_gib << 30,
            memory_total_bytes: 80 << 30,
            utilization: Some(utilization),
            ..crate::testkit::gpu(0, None, "GPU-0")
        }
    }

    fn server(waiting: f64, kv: f64) -> ServerLoad {
        ServerLoad {
            waiting: Some(waiting),
            running: Some(10.0),
            kv_cache_usage: Some(kv),
        }
    }

    #[test]
    fn gpu_only_headroom_is_the_worse_of_memory_and_utilisation() {
        let (a, b) = (gpu(40, 0.2), gpu(20, 0.4));
        let got = assess(&POLICY, &[Some(&a), Some(&b)], &[]);
        // memory: 1 − 60/160 = 0.625; utilisation: 0.3.
        assert_eq!(got.headroom, 0.375);
        assert_eq!(got.capacity, 24);
        assert!(got.healthy);
        assert_eq!(got.limited_by, Some(Signal::GpuMemory));

        let busy = gpu(70, 0.9);
        let got = assess(&POLICY, &[Some(&busy)], &[]);
        assert_eq!(got.headroom, 0.1);
        assert_eq!(got.limited_by, Some(Signal::GpuUtilization));
    }

    #[test]
    fn model_server_signals_replace_the_gpus_own() {
        // vLLM has reserved 90 % of the memory and keeps the GPU busy; its KV cache is
        // a quarter full with nothing waiting: the cluster has three quarters free.
        let reserved = gpu(8, 0.99);
        let got = assess(&POLICY, &[Some(&reserved)], &[server(0.0, 0.25)]);
        assert_eq!(got.headroom, 0.75);
        assert_eq!(got.capacity, 48);
        assert_eq!(got.limited_by, Some(Signal::KvCache));
    }

    #[test]
    fn a_queue_at_its_limit_leaves_no_headroom() {
        let got = assess(&POLICY, &[], &[server(4.0, 0.1), server(12.0, 0.1)]);
        assert_eq!(got.headroom, 0.0);
        assert_eq!(got.limited_by, Some(Signal::Queue));
        assert_eq!(
            got.capacity, POLICY.min_capacity,
            "a healthy cluster keeps draining"
        );
    }

    #[test]
    fn a_server_reporting_part_of_the_signals_falls_back_for_the_rest() {
        let g = gpu(60, 0.5);
        let kv_only = ServerLoad {
            kv_cache_usage: Some(0.2),
            ..ServerLoad::default()
        };
        let got = assess(&POLICY, &[Some(&g)], &[kv_only]);
        assert_eq!(got.headroom, 0.5);
        assert_eq!(got.limited_by, Some(Signal::GpuUtilization));
    }

    #[test]
    fn an_unhealthy_or_missing_gpu_makes_the_cluster_unhealthy() {
        let mut sick = gpu(80, 0.0);
        sick.healthy = false;
        let fine = gpu(80, 0.0);
        for gpus in [vec![Some(&fine), Some(&sick)], vec![Some(&fine), None]] {
            let got = assess(&POLICY, &gpus, &[server(0.0, 0.0)]);
            assert_eq!(got, Assessment::UNHEALTHY);
        }
    }

    #[test]
    fn a_cluster_with_nothing_to_measure_is_unhealthy() {
        assert_eq!(assess(&POLICY, &[], &[]), Assessment::UNHEALTHY);
        let silent = ServerLoad::default();
        assert_eq!(assess(&POLICY, &[], &[silent]), Assessment::UNHEALTHY);
    }

    #[test]
    fn headroom_falls_as_any_pressure_rises() {
        let mut last = (f64::INFINITY, u32::MAX);
        for step in 0..=20 {
            let p = f64::from(step) / 20.0;
            let g = gpu(80, p);
            let got = assess(&POLICY, &[Some(&g)], &[]);
            assert!(got.headroom <= last.0 && got.capacity <= last.1, "at {p}");
            last = (got.headroom, got.capacity);
        }
        let mut last = f64::INFINITY;
        for waiting in 0..20 {
            let got = assess(&POLICY, &[], &[server(f64::from(waiting), 0.3)]);
            assert!(got.headroom <= last, "at {waiting} waiting");
            last = got.headroom;
        }
        assert_eq!(last, 0.0);
    }

    #[test]
    fn capacity_rounds_base_capacity_times_headroom() {
        let policy = Policy {
            base_capacity: 10,
            min_capacity: 0,
            queue_limit: 8,
        };
        let cases = [(0.0, 10), (0.44, 6), (0.46, 5), (0.96, 0), (1.0, 0)];
        for (kv, want) in cases {
            let got = assess(&policy, &[], &[server(0.0, kv)]);
            assert_eq!(got.capacity, want, "kv {kv}");
        }
    }

    #[test]
    fn nan_signals_are_ignored() {
        let g = gpu(40, 0.2);
        let nan = ServerLoad {
            waiting: Some(f64::NAN),
            running: None,
            kv_cache_usage: Some(f64::NAN),
        };
        let got = assess(&POLICY, &[Some(&g)], &[nan]);
        assert_eq!(got.headroom, 0.5);
        assert_eq!(got.limited_by, Some(Signal::GpuMemory));
    }
}
