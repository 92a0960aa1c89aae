//! Fleet mode's pools (SPEC 9, 4) end to end: a real `redis-server`, two Envoys
//! (`--concurrency 2`) with their own real sidecars, one slow upstream that counts
//! the requests in flight at once, all on 127.0.0.1. The pool's capacity is the
//! fleet's, and its slots go where the weighted backlog is.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::redis::RedisServer;
use fairgate_e2e::sidecar::Sidecar;
use fairgate_e2e::upstream::Upstream;
use serde_json::{json, Value};

use crate::{client, expect_prometheus, get, prometheus_value};

const CAPACITY: u32 = 14;
const POLL_MS: u64 = 200;
const SERVICE: Duration = Duration::from_millis(100);

struct Fleet {
    redis: RedisServer,
    sidecars: Vec<Sidecar>,
    envoys: Vec<Envoy>,
    upstream: Upstream,
}

fn plugin_config(fleet: bool, tenants: &Value) -> String {
    let mut cfg: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        tenants.clone(),
        None,
    ))
    .expect("json");
    cfg["pool"] = json!({"max_concurrency": CAPACITY, "queue_timeout_ms": 60000,
        "max_queue_per_tenant": 200});
    cfg["sidecar"] = json!({"cluster": "fairgate_sidecar", "poll_ms": POLL_MS, "stale_ms": 3000});
    if fleet {
        cfg["fleet"] = json!({"outage": "safe"});
    }
    cfg.to_string()
}

impl Fleet {
    /// Two Envoys with `tenants`, in fleet mode or not.
    async fn start(fleet: bool, tenants: Value) -> Fleet {
        let upstream = Upstream::with_service_time(SERVICE).await;
        let redis = RedisServer::start();
        let sidecars: Vec<Sidecar> = (0..2)
            .map(|i| {
                Sidecar::start(&format!(
                    "poll_ms = {POLL_MS}\nstale_ms = 2000\n\n[fleet]\nredis_url = \"{}\"\nreplica = \"sc-{i}\"\ntimeout_ms = 1000\n",
                    redis.url()
                ))
            })
            .collect();
        let envoys: Vec<Envoy> = sidecars
            .iter()
            .map(|s| {
                Envoy::start(
                    &EnvoyConfig::new(plugin_config(fleet, &tenants))
                        .concurrency(2)
                        .upstream("upstream", upstream.addr)
                        .upstream("fairgate_sidecar", s.addr),
                )
            })
            .collect();
        if fleet {
            for envoy in &envoys {
                expect_prometheus(envoy, &["fg_fleet_replicas{} 2"]).await;
            }
        }
        Fleet {
            redis,
            sidecars,
            envoys,
            upstream,
        }
    }

    fn capacity(&self, i: usize) -> f64 {
        prometheus_value(&self.envoys[i], r#"fg_pool_capacity{cluster="shared"}"#).unwrap_or(-1.0)
    }
}

type Done = Arc<Mutex<Vec<(&'static str, Instant)>>>;

/// Keeps `clients` requests of `tenant` outstanding through `url` until `end`;
/// records when each 200 arrived and counts the others.
fn flood(
    url: String,
    tenant: &'static str,
    clients: usize,
    end: Instant,
    done: Done,
    failed: Arc<Mutex<Vec<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (url, done, failed) = (url.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                let client = client();
                while Instant::now() < end {
                    let reply = get(&client, &url, &[("x-tenant-id", tenant)]).await;
                    if reply.status == 200 {
                        if let Ok(mut d) = done.lock() {
                            d.push((tenant, Instant::now()));
                        }
                    } else if let Ok(mut f) = failed.lock() {
                        f.push(format!("{tenant}: {} {}", reply.status, reply.body));
                    }
                }
            })
        })
        .collect()
}

/// Completions per tenant of `tenants` within `from..to`.
fn completed(done: &Done, tenants: &[&str], from: Instant, to: Instant) -> Vec<u64> {
    let done = done.lock().map(|d| d.clone()).unwrap_or_default();
    tenants
        .iter()
        .map(|t| {
            done.iter()
                .filter(|(n, at)| n == t && *at >= from && *at < to)
                .count() as u64
        })
        .collect()
}

/// Jain's fairness index of throughputs normalized by weight (1: exactly by weight).
fn jain(throughputs: &[u64], weights: &[f64]) -> f64 {
    let x: Vec<f64> = throughputs
        .iter()
        .zip(weights)
        .map(|(t, w)| *t as f64 / w)
        .collect();
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    sum * sum / (x.len() as f64 * squares)
}

const WEIGHTS: [f64; 3] = [1.0, 2.0, 4.0];

fn tenants_abc() -> Value {
    json!({"a": {"weight": 1}, "b": {"weight": 2}, "c": {"weight": 4}})
}

/// Runs `floods` (Envoy, tenant, clients) for `secs`: (completions of each of
/// `tenants` in the measured window, its length in s, failures).
async fn measured_floods(
    fleet: &Fleet,
    floods: &[(usize, &'static str, usize)],
    secs: u64,
    tenants: &[&str],
) -> (Vec<u64>, f64, Vec<String>) {
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let done: Done = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for (envoy, tenant, clients) in floods {
        let url = fleet.envoys[*envoy].url("/");
        tasks.extend(flood(
            url,
            tenant,
            *clients,
            end,
            done.clone(),
            failed.clone(),
        ));
    }
    for t in tasks {
        t.await.expect("client");
    }
    // Measure once every tenant is backlogged, and stop before the clients wind down.
    let (from, to) = (
        start + Duration::from_secs(2),
        end - Duration::from_millis(500),
    );
    let counts = completed(&done, tenants, from, to);
    let failed = failed.lock().map(|f| f.clone()).unwrap_or_default();
    (counts, (to - from).as_secs_f64(), failed)
}

/// A only through Envoy 0, C only through Envoy 1, B through both, all backlogged
/// for `secs`: (completions of a, b, c in the measured window, its length, failures).
async fn split_flood(fleet: &Fleet, secs: u64) -> (Vec<u64>, f64, Vec<String>) {
    let floods = [(0, "a", 16), (0, "b", 8), (1, "b", 8), (1, "c", 16)];
    measured_floods(fleet, &floods, secs, &["a", "b", "c"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_envoys_share_one_pool_by_weight_and_never_exceed_its_capacity() {
    let fleet = Fleet::start(true, tenants_abc()).await;
    let (counts, secs, failed) = split_flood(&fleet, 9).await;
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(3)]);
    let total: u64 = counts.iter().sum();
    let shares: Vec<f64> = counts.iter().map(|c| *c as f64 / total as f64).collect();
    let index = jain(&counts, &WEIGHTS);
    let peak = fleet.upstream.total().max_in_flight;
    let served = total as f64 / secs;
    let possible = f64::from(CAPACITY) / SERVICE.as_secs_f64();
    eprintln!(
        "fleet: completed a/b/c {counts:?} in {secs:.1} s, shares {shares:.3?}, Jain {index:.4}, \
         peak in flight {peak} of {CAPACITY}, {served:.0}/s of {possible:.0}/s"
    );
    for (share, weight) in shares.iter().zip(WEIGHTS) {
        let want = weight / 7.0;
        assert!((share - want).abs() <= 0.05, "shares {shares:?}");
    }
    assert!(index >= 0.98, "Jain {index}");
    assert!(peak <= u64::from(CAPACITY), "{peak} in flight at once");
    assert!(served >= 0.8 * possible, "{served:.0}/s of {possible:.0}/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_fleet_mode_two_envoys_send_twice_the_capacity_and_weights_only_hold_per_envoy() {
    let fleet = Fleet::start(false, tenants_abc()).await;
    let (counts, _, failed) = split_flood(&fleet, 6).await;
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(3)]);
    let total: u64 = counts.iter().sum();
    let shares: Vec<f64> = counts.iter().map(|c| *c as f64 / total as f64).collect();
    let peak = fleet.upstream.total().max_in_flight;
    eprintln!(
        "per-replica baseline: shares {shares:.3?}, Jain {:.4}, peak in flight {peak}",
        jain(&counts, &WEIGHTS)
    );
    assert!(peak > u64::from(CAPACITY) * 3 / 2, "peak {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_envoy_whose_tenants_stop_gives_its_slots_up_within_two_polls() {
    let fleet = Fleet::start(true, tenants_abc()).await;
    let start = Instant::now();
    let (a_end, c_end) = (
        start + Duration::from_secs(8),
        start + Duration::from_secs(4),
    );
    let done: Done = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = flood(
        fleet.envoys[0].url("/"),
        "a",
        20,
        a_end,
        done.clone(),
        failed.clone(),
    );
    tasks.extend(flood(
        fleet.envoys[1].url("/"),
        "c",
        20,
        c_end,
        done.clone(),
        failed.clone(),
    ));
    // Equal backlogs, weights 1 and 4: a fifth of the pool for Envoy 0.
    tokio::time::sleep_until((start + Duration::from_secs(3)).into()).await;
    let before = fleet.capacity(0);
    tokio::time::sleep_until(c_end.into()).await;
    let stopped = Instant::now();
    let mut moved = None;
    while stopped.elapsed() < Duration::from_secs(3) {
        if fleet.capacity(0) >= f64::from(CAPACITY) {
            moved = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await.expect("client");
    }
    let a_in_flight = fleet
        .upstream
        .load()
        .get("a")
        .map_or(0, |l| l.max_in_flight);
    eprintln!(
        "Envoy 0 held {before} slots while both were busy; the whole pool {moved:?} after \
         Envoy 1's tenant stopped; a had up to {a_in_flight} in flight"
    );
    assert!(failed.lock().map(|f| f.is_empty()).unwrap_or(false));
    assert!(before <= 4.0, "Envoy 0 held {before} of {CAPACITY}");
    // Two polls, and the last requests' service time, and the gauge's tick.
    let moved = moved.expect("Envoy 0 never got the whole pool");
    assert!(
        moved <= Duration::from_millis(2 * POLL_MS + 1_000),
        "{moved:?}"
    );
    assert_eq!(a_in_flight, u64::from(CAPACITY));
    assert!(fleet.upstream.total().max_in_flight <= u64::from(CAPACITY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sheddable_tenant_is_refused_fleet_wide_while_the_pool_is_saturated() {
    let tenants = json!({"a": {"weight": 1}, "batch": {"weight": 1, "priority": -1}});
    let fleet = Fleet::start(true, tenants).await;
    let end = Instant::now() + Duration::from_secs(4);
    let done: Done = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let tasks = flood(fleet.envoys[0].url("/"), "a", 24, end, done, failed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = client();
    let batch = [("x-tenant-id", "batch")];
    for envoy in &fleet.envoys {
        let saturated = get(&client, &envoy.url("/"), &batch).await;
        assert_eq!(
            (saturated.status, saturated.error_code().as_str()),
            (503, "overloaded"),
            "{}",
            saturated.body
        );
    }
    for t in tasks {
        t.await.expect("client");
    }
    // The flood over: Envoy 1 leases slots again within a few polls.
    let deadline = Instant::now() + Duration::from_secs(3);
    let served = loop {
        let reply = get(&client, &fleet.envoys[1].url("/"), &batch).await;
        if reply.status == 200 || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(served.status, 200, "{}", served.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sheddable_flood_at_one_envoy_gets_the_whole_idle_pool_and_nothing_is_refused() {
    let tenants = json!({"batch": {"weight": 1, "priority": -1}});
    let fleet = Fleet::start(true, tenants).await;
    // Idle, each Envoy holds half the pool.
    let client = client();
    let url = fleet.envoys[0].url("/");
    let first = get(&client, &url, &[("x-tenant-id", "batch")]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fleet.capacity(0) != f64::from(CAPACITY / 2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fleet.capacity(0), f64::from(CAPACITY / 2));
    // 14 clients at Envoy 0, each sending its next request once the last is answered.
    let started = Instant::now();
    let end = started + Duration::from_secs(3);
    let done: Done = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let tasks = flood(
        url,
        "batch",
        CAPACITY as usize,
        end,
        done.clone(),
        failed.clone(),
    );
    let mut whole_pool = None;
    while Instant::now() < end {
        if whole_pool.is_none() && fleet.capacity(0) == f64::from(CAPACITY) {
            whole_pool = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await.expect("client");
    }
    let failed = failed.lock().map(|f| f.clone()).unwrap_or_default();
    let served = done.lock().map(|d| d.len()).unwrap_or(0);
    eprintln!(
        "sheddable flood at one Envoy: {served} served, {} refused; Envoy 0 held the whole pool after {whole_pool:?}",
        failed.len()
    );
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(5)]);
    assert!(whole_pool.is_some(), "Envoy 0 never held the whole pool");
    assert_eq!(fleet.upstream.total().max_in_flight, u64::from(CAPACITY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_higher_band_and_a_min_concurrency_hold_for_the_fleet_under_a_flood_through_every_envoy()
{
    // By weight alone, vip and gold would have 14 × 0.1 / 1.2 ≈ 1.2 slots each. vip,
    // a band above, at Envoy 0 only, takes the next slot free whenever it waits (each
    // of its clients waits only for one to free); gold, at Envoy 1 only, reserves 4.
    let tenants = json!({"a": {"weight": 1},
        "vip": {"weight": 0.1, "priority": 1},
        "gold": {"weight": 0.1, "min_concurrency": 4}});
    let fleet = Fleet::start(true, tenants).await;
    let floods = [(0, "a", 12), (1, "a", 12), (0, "vip", 5), (1, "gold", 6)];
    let (counts, secs, failed) = measured_floods(&fleet, &floods, 6, &["a", "vip", "gold"]).await;
    let rate = |n: u64| n as f64 / secs;
    let per_slot = 1.0 / SERVICE.as_secs_f64();
    let peak = fleet.upstream.total().max_in_flight;
    eprintln!(
        "bands and reservations: completed a/vip/gold {counts:?} in {secs:.1} s: vip {:.1}/s \
         (its 5 clients at most {:.0}/s), gold {:.1}/s (4 slots serve {:.0}/s), peak in flight \
         {peak} of {CAPACITY}",
        rate(counts[1]),
        5.0 * per_slot,
        rate(counts[2]),
        4.0 * per_slot
    );
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(3)]);
    assert!(rate(counts[1]) >= 0.5 * 5.0 * per_slot, "vip {counts:?}");
    let per_client = |n: u64, clients: u64| n as f64 / clients as f64;
    assert!(
        per_client(counts[1], 5) >= 2.0 * per_client(counts[0], 24),
        "vip's clients served no faster than a's: {counts:?}"
    );
    assert!(rate(counts[2]) >= 0.85 * 4.0 * per_slot, "gold {counts:?}");
    assert!(peak <= u64::from(CAPACITY), "{peak} in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_sidecar_leaves_its_envoy_half_the_pool_and_the_other_envoy_the_rest() {
    let mut fleet = Fleet::start(true, tenants_abc()).await;
    let start = Instant::now();
    let end = start + Duration::from_secs(10);
    let done: Done = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let (e0, e1) = (fleet.envoys[0].url("/"), fleet.envoys[1].url("/"));
    let mut tasks = flood(e0, "a", 12, end, done.clone(), failed.clone());
    tasks.extend(flood(e1, "c", 12, end, done.clone(), failed.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Envoy 0 cut off: its lease lapses, then it runs under 14 ÷ 2 (the N it last saw).
    fleet.sidecars[0].stop();
    let killed = Instant::now();
    let mut halves = None;
    let mut capacities = Vec::new();
    while Instant::now() < end {
        let both = (fleet.capacity(0), fleet.capacity(1));
        if halves.is_none() && both == (7.0, 7.0) {
            halves = Some(killed.elapsed());
        }
        capacities.push(both);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        t.await.expect("client");
    }
    let failed = failed.lock().map(|f| f.clone()).unwrap_or_default();
    let peak = fleet.upstream.total().max_in_flight;
    let last = capacities.last().copied();
    eprintln!(
        "sidecar 0 killed: both Envoys at 7 slots after {halves:?}, last {last:?}, peak in flight {peak} of {CAPACITY}"
    );
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(3)]);
    assert!(halves.is_some(), "{capacities:?}");
    assert_eq!(last, Some((7.0, 7.0)), "Envoy 1 leaves Envoy 0 its share");
    assert!(peak <= u64::from(CAPACITY), "{peak} in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_each_envoy_runs_under_half_the_pool_and_leases_again_after() {
    let mut fleet = Fleet::start(true, tenants_abc()).await;
    let start = Instant::now();
    let end = start + Duration::from_secs(11);
    let done: Done = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = flood(
        fleet.envoys[0].url("/"),
        "a",
        12,
        end,
        done.clone(),
        failed.clone(),
    );
    tasks.extend(flood(
        fleet.envoys[1].url("/"),
        "c",
        12,
        end,
        done.clone(),
        failed.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let port = fleet.redis.port;
    fleet.redis.stop();
    // The leases run out (three polls): capacity ÷ 2 on each, Envoy 0 (the smaller
    // lease) keeping to its lease for `stale_ms` (3 s) first.
    let down = Instant::now();
    let half = f64::from(CAPACITY / 2);
    while fleet.capacity(0) != half || fleet.capacity(1) != half {
        assert!(down.elapsed() < Duration::from_secs(6), "never halved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let halved = down.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    fleet.redis = RedisServer::start_on(port);
    let back = Instant::now();
    // Leased again: the weights (1 and 4) decide, not the halves.
    while fleet.capacity(1) <= half {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "never leased again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leased = back.elapsed();
    for t in tasks {
        t.await.expect("client");
    }
    let failed = failed.lock().map(|f| f.clone()).unwrap_or_default();
    let peak = fleet.upstream.total().max_in_flight;
    eprintln!(
        "Redis down: halves after {halved:?}; Redis back: leased again after {leased:?}; \
         peak in flight {peak}, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(3)]);
    assert!(peak <= u64::from(CAPACITY), "{peak} in flight at once");
}

/// Open-loop arrivals of tenant `a` at `rate` per second in all, spread over
/// `urls` in turn, for `secs`: each request's time beyond the upstream's service
/// time (its queue wait and the proxies' cost), sorted.
async fn open_loop(urls: &[String], rate: f64, secs: f64) -> Vec<Duration> {
    let start = Instant::now();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut at = 0.0;
    let mut tasks = Vec::new();
    let mut i = 0usize;
    while at < secs {
        // Exponential gaps (a fixed LCG: the same arrivals every run).
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let uniform = ((seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        at += -uniform.ln() / rate;
        let url = urls[i % urls.len()].clone();
        i += 1;
        let due = start + Duration::from_secs_f64(at);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let sent = Instant::now();
            let reply = get(&client(), &url, &[("x-tenant-id", "a")]).await;
            (reply.status, sent.elapsed())
        }));
    }
    let mut waits = Vec::new();
    for t in tasks {
        let (status, took) = t.await.expect("request");
        assert_eq!(status, 200);
        waits.push(took.saturating_sub(SERVICE));
    }
    waits.sort();
    waits
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// The figures of bench/fleet.sh for pools: the queue wait fleet mode adds at 80 % of
/// the pool's capacity, two Envoys sharing the pool against one Envoy holding it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark, run by bench/fleet.sh"]
async fn bench_fleet_pool_queue_wait() {
    let rate = 0.8 * f64::from(CAPACITY) / SERVICE.as_secs_f64();
    let secs = 20.0;
    let fleet = Fleet::start(true, tenants_abc()).await;
    let urls: Vec<String> = fleet.envoys.iter().map(|e| e.url("/")).collect();
    let fleet_waits = open_loop(&urls, rate, secs).await;
    let fleet_peak = fleet.upstream.total().max_in_flight;
    drop(fleet);
    let single = Fleet::start(false, tenants_abc()).await;
    let single_waits = open_loop(&[single.envoys[0].url("/")], rate, secs).await;
    let mean = |w: &[Duration]| w.iter().sum::<Duration>() / w.len().max(1) as u32;
    for (name, waits, peak) in [
        (
            "one Envoy, no fleet",
            &single_waits,
            single.upstream.total().max_in_flight,
        ),
        ("two Envoys, fleet mode", &fleet_waits, fleet_peak),
    ] {
        println!(
            "{name}: {} requests at {rate:.0}/s (80 % of {CAPACITY} slots × 100 ms): wait \
             beyond service mean {:?}, p50 {:?}, p99 {:?}; peak in flight {peak}",
            waits.len(),
            mean(waits),
            percentile(waits, 0.5),
            percentile(waits, 0.99),
        );
    }
}
