//! The bodies of the sidecar's fuzz targets (`fuzz/`, `cargo +nightly fuzz run
//! <target>`), one per parser of untrusted input, here so that the corpora and every
//! input that ever crashed one are replayed on stable by `tests/fuzz_corpus.rs` in CI.
//! Each must return, whatever the bytes (a panic is a crash), and `Err` only where an
//! invariant broke (the targets turn it into a crash).

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use fairgate_wire::fleet::{BudgetKind, FleetGrants, FleetPoll};

use crate::config::{Config, Overrides, SourceKind};
use crate::fleet::clock::ManualClock;
use crate::fleet::memory::MemoryStore;
use crate::fleet::metrics::FleetMetrics;
use crate::fleet::{FleetManager, FleetSettings};
use crate::promtext::{self, Sample};

/// The sidecar's TOML file (clusters, `[sim]`, `[fleet]`): what it accepts keeps
/// every bound its checks state, and reads the same twice.
pub fn config(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let Ok(config) = Config::parse(text, Overrides::default()) else {
        return Ok(());
    };
    config_bounds(&config).map_err(|e| format!("{text:?} gave {config:?}: {e}"))?;
    match Config::parse(text, Overrides::default()) {
        Ok(again) if again == config => Ok(()),
        other => Err(format!("{text:?} read as {config:?}, then as {other:?}")),
    }
}

fn config_bounds(config: &Config) -> Result<(), &'static str> {
    let checks: [(bool, &'static str); 5] = [
        (config.poll >= Duration::from_millis(10), "poll under 10 ms"),
        (config.stale > config.poll, "stale not above poll"),
        (!config.scrape_timeout.is_zero(), "no scrape timeout"),
        (
            !config.clusters.is_empty() || config.fleet.is_some(),
            "neither clusters nor fleet",
        ),
        (
            config.source == SourceKind::Sim || config.sim.is_none(),
            "sim GPUs with another source",
        ),
    ];
    if let Some((_, broken)) = checks.iter().find(|(holds, _)| !holds) {
        return Err(broken);
    }
    if let Some(gpus) = &config.sim {
        let uuids: BTreeSet<&str> = gpus.iter().map(|g| g.uuid.as_str()).collect();
        if gpus.is_empty() || uuids.len() != gpus.len() {
            return Err("sim GPUs missing or sharing a UUID");
        }
        if gpus.iter().any(|g| g.memory_total_bytes == 0) {
            return Err("a sim GPU without memory");
        }
    }
    let mut last: Option<&str> = None;
    for cluster in &config.clusters {
        let name = cluster.name.as_str();
        let visible = (1..=255).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        let policy = &cluster.policy;
        if !visible
            || last.is_some_and(|l| l >= name)
            || (cluster.gpus.is_empty() && cluster.endpoints.is_empty())
            || policy.base_capacity == 0
            || policy.min_capacity > policy.base_capacity
            || policy.queue_limit == 0
            || cluster
                .endpoints
                .iter()
                .any(|u| u.scheme() != "http" || u.host().is_none())
        {
            return Err("a cluster out of bounds");
        }
        last = Some(name);
    }
    if let Some(fleet) = &config.fleet {
        if fleet.key_prefix.is_empty()
            || fleet.key_prefix.contains(['{', '}'])
            || fleet.replica.trim().is_empty()
            || fleet.timeout.is_zero()
            || (!fleet.cluster && fleet.redis_url.contains(','))
        {
            return Err("the fleet section out of bounds");
        }
    }
    Ok(())
}

/// A model server's `/metrics` page: every sample read has a valid name and label
/// names, there are no more samples than lines, and each sample written back in the
/// text format reads as itself.
pub fn promtext(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let samples: Vec<Sample<'_>> = promtext::samples(&text).collect();
    if samples.len() > text.lines().count() {
        return Err(format!("{text:?}: more samples than lines"));
    }
    let is_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for sample in &samples {
        let names_ok = is_name(sample.name) && sample.labels.iter().all(|(k, _)| !k.is_empty());
        let line = render_sample(sample);
        let again: Vec<Sample<'_>> = promtext::samples(&line).collect();
        let same = match again.as_slice() {
            [one] => {
                one.name == sample.name
                    && one.labels == sample.labels
                    && (one.value == sample.value || (one.value.is_nan() && sample.value.is_nan()))
            }
            _ => false,
        };
        if !names_ok || !same {
            return Err(format!(
                "{text:?}: {sample:?} written as {line:?} reads as {again:?}"
            ));
        }
    }
    Ok(())
}

/// One sample in the text format.
fn render_sample(sample: &Sample<'_>) -> String {
    let labels: Vec<String> = sample
        .labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{}{{{}}} {}", sample.name, labels.join(","), sample.value)
}

thread_local! {
    static RUNTIME: OnceCell<Option<tokio::runtime::Runtime>> = const { OnceCell::new() };
}

/// An Envoy's `POST /v1/fleet/poll` body, read as the sidecar reads it and, where
/// accepted, polled twice (a repeated poll) against a fresh fleet in memory: the
/// answers name only tenants of the poll, each lease's grants come in rising `seq`
/// order, and what a bucket grants in all stays within its burst (no time passes, so
/// nothing refills) while the store never counts more held than that.
pub fn fleet_poll(data: &[u8]) -> Result<(), String> {
    let Ok(poll) = crate::server::parse_poll(data) else {
        return Ok(());
    };
    RUNTIME.with(|runtime| {
        let runtime = runtime.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()
        });
        let Some(runtime) = runtime else {
            return Err("no runtime for the fleet poll target".to_string());
        };
        runtime.block_on(fleet_polls(&poll)).map(|_| ())
    })
}

/// Every grant answered to `poll` sent twice, per bucket and `seq`, once checked.
type Answered = BTreeMap<(String, BudgetKind), BTreeMap<u64, u64>>;

async fn fleet_polls(poll: &FleetPoll) -> Result<Answered, String> {
    let clock = ManualClock::default();
    clock.advance_ms(1_000);
    let store = MemoryStore::new(Arc::new(clock.clone()));
    let metrics = FleetMetrics::register(&mut prometheus_client::registry::Registry::default());
    let manager = FleetManager::new(
        store.clone(),
        Arc::new(clock),
        FleetSettings {
            sidecar: "fuzz".to_string(),
            timeout: Duration::from_secs(1),
            envoy_ttl: Duration::from_secs(10),
            silent_claim: Duration::from_secs(30),
        },
        Arc::new(metrics),
    );
    let mut grants = Answered::new();
    for _ in 0..2 {
        let answer = manager.poll(poll).await;
        check_answer(poll, &answer, &mut grants)?;
    }
    for ((tenant, kind), seqs) in &grants {
        let burst = poll
            .tenants
            .get(tenant)
            .and_then(|report| report.limits.bucket(*kind))
            .map_or(0.0, |limit| limit.burst);
        let total: u128 = seqs.values().map(|&a| u128::from(a)).sum();
        let held = store.held(tenant, *kind).unwrap_or(0.0);
        if total as f64 > burst.floor() || held > burst || held < 0.0 {
            return Err(format!(
                "{tenant} {kind:?}: granted {total} ({seqs:?}), store holds {held}, burst {burst}"
            ));
        }
    }
    Ok(grants)
}

fn check_answer(
    poll: &FleetPoll,
    answer: &FleetGrants,
    grants: &mut Answered,
) -> Result<(), String> {
    if answer.replicas == 0 {
        return Err("an answer with no replica".into());
    }
    for (tenant, leases) in &answer.tenants {
        if !poll.tenants.contains_key(tenant) {
            return Err(format!("a lease for {tenant:?}, not in the poll"));
        }
        for kind in BudgetKind::ALL {
            let Some(lease) = leases.get(kind) else {
                continue;
            };
            let seqs = grants.entry((tenant.clone(), kind)).or_default();
            let mut last = 0;
            for grant in &lease.grants {
                if grant.seq <= last {
                    return Err(format!("{tenant} {kind:?}: grants out of order {lease:?}"));
                }
                last = grant.seq;
                if *seqs.entry(grant.seq).or_insert(grant.amount) != grant.amount {
                    return Err(format!(
                        "{tenant} {kind:?}: seq {} changed amount",
                        grant.seq
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairgate_wire::fleet::{FleetState, Grant, Lease, TenantLeases};

    #[test]
    fn the_example_config_is_accepted_and_keeps_its_bounds() {
        let text = include_str!("../sidecar.example.toml");
        let config = Config::parse(text, Overrides::default()).unwrap();
        assert_eq!(config_bounds(&config), Ok(()));
        assert_eq!(super::config(text.as_bytes()), Ok(()));
    }

    #[test]
    fn a_sample_written_back_reads_as_itself() {
        let text = "m{path=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} -Inf\nup NaN\n";
        assert_eq!(promtext::samples(text).count(), 2);
        assert_eq!(promtext(text.as_bytes()), Ok(()));
    }

    #[test]
    fn a_poll_is_granted_within_its_burst_and_a_bad_answer_is_caught() {
        let body = br#"{"envoy":"gw","boot":"b","poll_ms":500,"tenants":{"acme":
            {"limits":{"requests_per_second":20,"request_burst":40},"demand":true}}}"#;
        assert_eq!(fleet_poll(body), Ok(()));
        let poll = crate::server::parse_poll(body).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let granted = runtime.block_on(fleet_polls(&poll)).unwrap();
        let total: u64 = granted.values().flat_map(|seqs| seqs.values()).sum();
        assert!(total > 0 && total <= 40, "{granted:?}");
        let lease = |grants: Vec<(u64, u64)>| Lease {
            grants: grants
                .into_iter()
                .map(|(seq, amount)| Grant { seq, amount })
                .collect(),
            expires_in_ms: 1500,
        };
        let answer = |tenant: &str, grants| FleetGrants {
            state: FleetState::Exact,
            replicas: 1,
            sidecar: "s".into(),
            tenants: [(
                tenant.to_string(),
                TenantLeases {
                    requests: Some(lease(grants)),
                    tokens: None,
                },
            )]
            .into_iter()
            .collect(),
            pools: Default::default(),
        };
        let mut seen = BTreeMap::new();
        assert!(check_answer(&poll, &answer("acme", vec![(1, 4), (2, 4)]), &mut seen).is_ok());
        assert!(check_answer(&poll, &answer("acme", vec![(2, 5)]), &mut seen).is_err());
        assert!(check_answer(&poll, &answer("acme", vec![(3, 1), (3, 1)]), &mut seen).is_err());
        assert!(check_answer(&poll, &answer("other", vec![]), &mut seen).is_err());
    }
}
