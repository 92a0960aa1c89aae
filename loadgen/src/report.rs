//! The figures of a run over a time window, per tenant and for the shared pools.
//!
//! - Offered req/s: requests started in the window; served req/s: 2xx answers ended
//!   in it; tokens/s from their `usage`; latency percentiles (nearest rank) of those
//!   2xx answers; status counts of every request ended in it.
//! - Shares: each tenant of the share group (`Scenario::share_group`: on the shared
//!   pools, in their top priority band) gets `served / Σ served` of the group,
//!   counted in requests or in fair-scheduler cost (prompt + 2 × completion tokens),
//!   against its weight share `weight / Σ weight`.
//! - Jain's fairness index over the group's `share / weight share` ratios:
//!   `(Σx)² / (n · Σx²)`, 1 when every tenant gets exactly its weight share, 1/n when
//!   one takes everything. It only means something when every tenant of the group is
//!   backlogged (offers more than its fair share), which the scenario has to ensure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::{Log, Outcome};
use crate::scenario::{Scenario, ShareBy};

/// A whole run, or the part of it seen so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub label: String,
    pub target: String,
    pub scenario: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// The window the figures are over: after the warm-up, to the end.
    pub window_s: f64,
    pub share_by: ShareBy,
    pub share_group: Vec<String>,
    /// Over the share group; `None` where nothing of it was served.
    pub jain_index: Option<f64>,
    pub tenants: Vec<TenantReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantReport {
    pub name: String,
    pub weight: f64,
    pub priority: i32,
    pub cluster: Option<String>,
    pub noisy: bool,
    pub backlogged: bool,
    pub concurrency: u32,
    pub rate: f64,
    pub offered_rps: f64,
    pub served_rps: f64,
    pub prompt_tokens_per_s: f64,
    pub completion_tokens_per_s: f64,
    /// Of the share group's service; `None` outside the group.
    pub share: Option<f64>,
    pub weight_share: Option<f64>,
    pub latency_ms: Latency,
    pub status: StatusCounts,
    /// 2xx answers by the `x-mock-server` that gave them.
    pub served_by: BTreeMap<String, u64>,
}

/// Of the 2xx answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub ok: u64,
    pub too_many_requests: u64,
    pub unavailable: u64,
    /// Any other status, timeouts, errors and drops.
    pub other: u64,
    /// Every HTTP status seen, by code.
    pub codes: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub errors: u64,
    pub dropped: u64,
}

/// The labels of a report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub label: String,
    pub target: String,
    pub scenario: String,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Jain's fairness index of `xs`; `None` for no values or all zero.
pub fn jain(xs: &[f64]) -> Option<f64> {
    let sum: f64 = xs.iter().sum();
    let squares: f64 = xs.iter().map(|x| x * x).sum();
    (squares > 0.0).then(|| sum * sum / (xs.len() as f64 * squares))
}

/// The figures of `log` over `[from_s, to_s)`.
pub fn summarise(scenario: &Scenario, log: &Log, info: &RunInfo, from_s: f64, to_s: f64) -> Report {
    let window = (to_s - from_s).max(1e-9);
    let inside = |t: f64| t >= from_s && t < to_s;
    let n = scenario.tenants.len();
    let mut offered = vec![0u64; n];
    for &(tenant, at) in &log.started {
        if inside(at) && tenant < n {
            offered[tenant] += 1;
        }
    }
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut status: Vec<StatusCounts> = vec![StatusCounts::default(); n];
    let mut prompt = vec![0u64; n];
    let mut completion = vec![0u64; n];
    let mut served_by: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); n];
    for f in log
        .finished
        .iter()
        .filter(|f| inside(f.ended_s) && f.tenant < n)
    {
        let s = &mut status[f.tenant];
        match f.outcome {
            Outcome::Status(code) => {
                *s.codes.entry(code.to_string()).or_default() += 1;
                match code {
                    429 => s.too_many_requests += 1,
                    503 => s.unavailable += 1,
                    _ if f.outcome.is_success() => s.ok += 1,
                    _ => s.other += 1,
                }
            }
            Outcome::Timeout => {
                s.timeouts += 1;
                s.other += 1;
            }
            Outcome::Error => {
                s.errors += 1;
                s.other += 1;
            }
            Outcome::Dropped => {
                s.dropped += 1;
                s.other += 1;
            }
        }
        if f.outcome.is_success() {
            latencies[f.tenant].push((f.ended_s - f.started_s) * 1000.0);
            if let Some(u) = f.usage {
                prompt[f.tenant] += u.prompt_tokens;
                completion[f.tenant] += u.completion_tokens;
            }
            let cluster = f
                .cluster
                .and_then(|c| log.clusters.get(c))
                .map_or("unknown", String::as_str);
            *served_by[f.tenant].entry(cluster.to_string()).or_default() += 1;
        }
    }

    let group = scenario.share_group();
    let service: Vec<f64> = (0..n)
        .map(|i| match scenario.share_by {
            ShareBy::Requests => status[i].ok as f64,
            ShareBy::Tokens => (prompt[i] + 2 * completion[i]) as f64,
        })
        .collect();
    let served_total: f64 = group.iter().map(|&i| service[i]).sum();
    let weight_total: f64 = group.iter().map(|&i| scenario.tenants[i].weight).sum();
    let share_of = |i: usize| {
        group.contains(&i).then(|| {
            let share = (served_total > 0.0).then(|| service[i] / served_total);
            (share, scenario.tenants[i].weight / weight_total)
        })
    };
    let ratios: Option<Vec<f64>> = group
        .iter()
        .map(|&i| share_of(i).and_then(|(s, w)| Some(s? / w)))
        .collect();

    let tenants = scenario
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut l = std::mem::take(&mut latencies[i]);
            l.sort_by(f64::total_cmp);
            let (share, weight_share) = match share_of(i) {
                Some((s, w)) => (s, Some(w)),
                None => (None, None),
            };
            TenantReport {
                name: t.name.clone(),
                weight: t.weight,
                priority: t.priority,
                cluster: t.cluster.clone(),
                noisy: t.noisy,
                backlogged: t.backlogged,
                concurrency: t.concurrency,
                rate: t.rate,
                offered_rps: offered[i] as f64 / window,
                served_rps: status[i].ok as f64 / window,
                prompt_tokens_per_s: prompt[i] as f64 / window,
                completion_tokens_per_s: completion[i] as f64 / window,
                share,
                weight_share,
                latency_ms: Latency {
                    count: l.len() as u64,
                    p50: percentile(&l, 50.0),
                    p90: percentile(&l, 90.0),
                    p99: percentile(&l, 99.0),
                    max: l.last().copied(),
                },
                status: std::mem::take(&mut status[i]),
                served_by: std::mem::take(&mut served_by[i]),
            }
        })
        .collect();

    Report {
        label: info.label.clone(),
        target: info.target.clone(),
        scenario: info.scenario.clone(),
        duration_s: scenario.duration.as_secs_f64(),
        warmup_s: scenario.warmup.as_secs_f64(),
        window_s: window,
        share_by: scenario.share_by,
        share_group: group
            .iter()
            .map(|&i| scenario.tenants[i].name.clone())
            .collect(),
        jain_index: ratios.and_then(|r| jain(&r)),
        tenants,
    }
}

impl Report {
    pub fn tenant(&self, name: &str) -> Option<&TenantReport> {
        self.tenants.iter().find(|t| t.name == name)
    }

    /// The share group's tenants that are not marked noisy: each should get its
    /// weight share.
    pub fn well_behaved(&self) -> impl Iterator<Item = &TenantReport> {
        self.tenants
            .iter()
            .filter(|t| !t.noisy && self.share_group.contains(&t.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Finished;
    use crate::usage::Usage;
    use std::path::Path;

    fn scenario(share_by: &str) -> Scenario {
        Scenario::parse(
            &format!(
                "share_by = \"{share_by}\"\nduration_s = 10\nwarmup_s = 2\n\
                 [[tenants]]\nname = \"acme\"\nweight = 4\ncluster = \"acme_dedicated\"\nconcurrency = 1\n\
                 [[tenants]]\nname = \"globex\"\nweight = 3\nconcurrency = 1\n\
                 [[tenants]]\nname = \"hooli\"\nweight = 1\nconcurrency = 1\nnoisy = true\n\
                 [[tenants]]\nname = \"free\"\nweight = 1\npriority = -1\nconcurrency = 1\n"
            ),
            Path::new("."),
        )
        .unwrap()
    }

    fn info() -> RunInfo {
        RunInfo {
            label: "t".into(),
            target: "http://x".into(),
            scenario: "s.toml".into(),
        }
    }

    fn ok(log: &mut Log, tenant: usize, start: f64, ms: f64, cluster: &str, completion: u64) {
        let cluster = Some(log.cluster_index(cluster));
        log.started.push((tenant, start));
        log.finished.push(Finished {
            tenant,
            started_s: start,
            ended_s: start + ms / 1000.0,
            outcome: Outcome::Status(200),
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: completion,
            }),
            cluster,
        });
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn jains_index_is_one_when_equal_and_one_over_n_when_one_takes_all() {
        assert_eq!(jain(&[1.0, 1.0, 1.0]), Some(1.0));
        assert!((jain(&[3.0, 0.0, 0.0]).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let j = jain(&[0.4, 0.6, 3.2]).unwrap();
        assert!(j > 1.0 / 3.0 && j < 1.0);
        assert_eq!(jain(&[0.0, 0.0]), None);
        assert_eq!(jain(&[]), None);
    }

    #[test]
    fn shares_count_the_share_group_only_against_weight_shares() {
        let s = scenario("requests");
        let mut log = Log::default();
        // In the window (2..10 s): globex 6 answers, hooli 2; acme and free do not count.
        for i in 0..6 {
            ok(&mut log, 1, 3.0 + f64::from(i), 100.0, "pool_a", 8);
        }
        ok(&mut log, 2, 3.0, 500.0, "pool_b", 8);
        ok(&mut log, 2, 4.0, 700.0, "pool_a", 8);
        ok(&mut log, 0, 3.0, 50.0, "acme_dedicated", 8);
        ok(&mut log, 3, 3.0, 50.0, "pool_a", 8);
        // Before the window: not counted.
        ok(&mut log, 2, 0.5, 100.0, "pool_a", 8);
        let r = summarise(&s, &log, &info(), 2.0, 10.0);
        assert_eq!(r.share_group, ["globex", "hooli"]);
        let globex = r.tenant("globex").unwrap();
        assert_eq!(globex.share, Some(0.75));
        assert_eq!(globex.weight_share, Some(0.75));
        assert_eq!(globex.served_rps, 6.0 / 8.0);
        assert_eq!(globex.served_by["pool_a"], 6);
        let hooli = r.tenant("hooli").unwrap();
        assert_eq!(hooli.share, Some(0.25));
        assert!((hooli.latency_ms.p50.unwrap() - 500.0).abs() < 1e-6);
        assert!((hooli.latency_ms.p99.unwrap() - 700.0).abs() < 1e-6);
        assert_eq!(hooli.served_by.len(), 2);
        assert_eq!(r.tenant("acme").unwrap().share, None);
        assert_eq!(r.tenant("free").unwrap().weight_share, None);
        assert!((r.jain_index.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(
            r.well_behaved()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["globex"]
        );
    }

    #[test]
    fn shares_by_tokens_weigh_completion_twice() {
        let s = scenario("tokens");
        let mut log = Log::default();
        ok(&mut log, 1, 3.0, 100.0, "pool_a", 20); // 10 + 40 = 50
        ok(&mut log, 2, 3.0, 100.0, "pool_a", 70); // 10 + 140 = 150
        let r = summarise(&s, &log, &info(), 2.0, 10.0);
        assert_eq!(r.tenant("globex").unwrap().share, Some(0.25));
        assert_eq!(r.tenant("hooli").unwrap().share, Some(0.75));
        assert!(r.jain_index.unwrap() < 0.7);
    }

    #[test]
    fn refusals_and_failures_are_counted_but_not_served() {
        let s = scenario("requests");
        let mut log = Log::default();
        for (outcome, at) in [
            (Outcome::Status(429), 3.0),
            (Outcome::Status(503), 3.1),
            (Outcome::Status(401), 3.2),
            (Outcome::Timeout, 3.3),
            (Outcome::Error, 3.4),
            (Outcome::Dropped, 3.5),
        ] {
            log.started.push((3, at));
            log.finished.push(Finished {
                tenant: 3,
                started_s: at,
                ended_s: at + 0.001,
                outcome,
                usage: None,
                cluster: None,
            });
        }
        log.started.push((3, 9.9)); // still in flight
        let r = summarise(&s, &log, &info(), 2.0, 10.0);
        let free = r.tenant("free").unwrap();
        assert_eq!(free.status.ok, 0);
        assert_eq!(free.status.too_many_requests, 1);
        assert_eq!(free.status.unavailable, 1);
        assert_eq!(free.status.other, 4);
        assert_eq!(free.status.codes["401"], 1);
        assert_eq!(
            (
                free.status.timeouts,
                free.status.errors,
                free.status.dropped
            ),
            (1, 1, 1)
        );
        assert_eq!(free.offered_rps, 7.0 / 8.0);
        assert_eq!(free.latency_ms.count, 0);
        assert_eq!(free.latency_ms.p99, None);
        // Nothing of the share group served: no shares, no index.
        assert_eq!(r.tenant("globex").unwrap().share, None);
        assert_eq!(r.jain_index, None);
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let s = scenario("requests");
        let mut log = Log::default();
        ok(&mut log, 1, 3.0, 100.0, "pool_a", 8);
        let r = summarise(&s, &log, &info(), 2.0, 10.0);
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
