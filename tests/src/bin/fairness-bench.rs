//! Fairness benchmark, run by hand: `cargo run --release -p fairgate-e2e --bin fairness-bench`
//! (after `cargo build -p fairgate-filter --target wasm32-wasip1 --release`).
//!
//! One scenario, run twice in the same process: with fairgate's weighted-fair
//! scheduler, then with a plain first-come-first-served pool (`pool.scheduler: fifo`).
//! Envoy runs with two workers in front of an upstream that holds each request for
//! `SERVICE_MS`; the pool has `CAPACITY` slots. Tenants `a`, `b`, `c` (weights 1, 2, 4)
//! each keep `CLIENTS` requests outstanding the whole time (all backlogged); `polite`
//! (weight 1) sends one request at a time. Printed per tenant: clients, completed/s,
//! share of the backlogged tenants' completions vs their weight share, p50/p99
//! latency; Jain's index of weight-normalised throughput over `a`, `b`, `c`; and the
//! cross-worker wake-up latency (slot released on one worker to waiter resumed on the
//! other) from the filter's `fg_wakeup_us` histogram. With the native module
//! (`FAIRGATE_HOST=module`, after `cargo build -p fairgate-module --release`) every
//! wake-up goes through the waiting stream's scheduler, on whichever worker it is, and
//! every one is counted.
//!
//! Environment: `DURATION_S` (10), `CAPACITY` (8), `SERVICE_MS` (50), `CLIENTS` (12),
//! `FAIRGATE_HOST` (`wasm` or `module`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{prometheus_name, Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::upstream::Upstream;
use serde_json::json;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TENANTS: [(&str, f64); 4] = [("a", 1.0), ("b", 2.0), ("c", 4.0), ("polite", 1.0)];

/// A completed request: tenant, when it was sent, how long it took.
type Completion = (&'static str, Instant, Duration);

struct Run {
    completed: BTreeMap<&'static str, Vec<Duration>>,
    refused: u64,
    window: Duration,
    wakeup_p50_us: Option<f64>,
    wakeup_p99_us: Option<f64>,
    wakeups: Option<f64>,
}

/// `P50(interval,cumulative)` → the cumulative value.
fn quantile(stats: &str, q: &str) -> Option<f64> {
    let start = stats.find(&format!(" {q}("))? + q.len() + 2;
    let inner = &stats[start..start + stats[start..].find(')')?];
    inner.split(',').nth(1)?.trim().parse().ok()
}

async fn run(
    scheduler: &str,
    duration: Duration,
    capacity: u64,
    service: Duration,
    clients: u64,
) -> Run {
    let upstream = Upstream::with_service_time(service).await;
    let tenants: serde_json::Map<String, serde_json::Value> = TENANTS
        .iter()
        .map(|(t, w)| (t.to_string(), json!({"weight": w})))
        .collect();
    let mut config: serde_json::Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        serde_json::Value::Object(tenants),
        None,
    ))
    .expect("config");
    config["pool"] = json!({"max_concurrency": capacity, "queue_timeout_ms": 120000,
                            "max_queue_per_tenant": 4096, "scheduler": scheduler});
    let envoy = Envoy::start(
        &EnvoyConfig::new(config.to_string())
            .concurrency(2)
            .upstream("upstream", upstream.addr),
    );
    let url = envoy.url("/");
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let (from, end) = (start + warmup, start + warmup + duration);
    let done: Arc<Mutex<Vec<Completion>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (tenant, _) in TENANTS {
        let n = if tenant == "polite" { 1 } else { clients };
        for _ in 0..n {
            let (url, done, refused) = (url.clone(), done.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(150))
                    .build()
                    .expect("client");
                while Instant::now() < end {
                    let sent = Instant::now();
                    match client.get(&url).header("x-tenant-id", tenant).send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            if let Ok(mut d) = done.lock() {
                                d.push((tenant, sent, sent.elapsed()));
                            }
                        }
                        _ => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut completed: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for (tenant, sent, latency) in done.lock().expect("lock").iter() {
        if *sent >= from && *sent + *latency <= end {
            completed.entry(tenant).or_default().push(*latency);
        }
    }
    for l in completed.values_mut() {
        l.sort();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = envoy.admin("/stats?filter=fg_wakeup_us");
    let count = format!("{} ", prometheus_name("fg_wakeup_us_count{}"));
    let wakeups = envoy
        .admin("/stats/prometheus")
        .lines()
        .find_map(|l| l.strip_prefix(&count)?.trim().parse().ok());
    Run {
        completed,
        refused: refused.load(std::sync::atomic::Ordering::Relaxed),
        window: duration,
        wakeup_p50_us: quantile(&stats, "P50"),
        wakeup_p99_us: quantile(&stats, "P99"),
        wakeups,
    }
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(sorted.len() * p).div_ceil(100).saturating_sub(1)].as_secs_f64() * 1000.0
}

fn report(name: &str, r: &Run, clients: u64) {
    println!("\n{name}  (refused or failed: {})", r.refused);
    println!(
        "{:<8} {:>7} {:>8} {:>12} {:>11} {:>9} {:>9}",
        "tenant", "clients", "done/s", "share", "fair share", "p50 ms", "p99 ms"
    );
    let backlogged: f64 = ["a", "b", "c"]
        .iter()
        .map(|t| r.completed.get(t).map_or(0, Vec::len) as f64)
        .sum();
    for (tenant, weight) in TENANTS {
        let lat = r.completed.get(tenant).map(Vec::as_slice).unwrap_or(&[]);
        let n = lat.len() as f64;
        let (share, fair) = if tenant == "polite" {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.3}", n / backlogged),
                format!("{:.3}", weight / 7.0),
            )
        };
        println!(
            "{:<8} {:>7} {:>8.1} {:>12} {:>11} {:>9.1} {:>9.1}",
            tenant,
            if tenant == "polite" { 1 } else { clients },
            n / r.window.as_secs_f64(),
            share,
            fair,
            pct(lat, 50),
            pct(lat, 99)
        );
    }
    let x: Vec<f64> = TENANTS[..3]
        .iter()
        .map(|(t, w)| r.completed.get(t).map_or(0, Vec::len) as f64 / w)
        .collect();
    let jain =
        x.iter().sum::<f64>().powi(2) / (x.len() as f64 * x.iter().map(|v| v * v).sum::<f64>());
    println!("Jain's index (a, b, c; weight-normalised): {jain:.4}");
    match (r.wakeup_p50_us, r.wakeup_p99_us) {
        (Some(p50), Some(p99)) => println!(
            "cross-worker wake-up: p50 {p50:.0} us, p99 {p99:.0} us over {} wake-ups",
            r.wakeups.unwrap_or(0.0)
        ),
        _ => println!("cross-worker wake-up: none recorded"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let duration = Duration::from_secs(env("DURATION_S", 10));
    let capacity = env("CAPACITY", 8);
    let service = Duration::from_millis(env("SERVICE_MS", 50));
    let clients = env("CLIENTS", 12);
    println!(
        "fairness: {}s measured after 1s warm-up, pool of {capacity} slots, upstream service {} ms, \
         Envoy --concurrency 2; a, b, c (weights 1, 2, 4) with {clients} clients each, polite (weight 1) one at a time",
        duration.as_secs(),
        service.as_millis()
    );
    let fair = run("fair", duration, capacity, service, clients).await;
    report("fairgate (weighted fair)", &fair, clients);
    let fifo = run("fifo", duration, capacity, service, clients).await;
    report(
        "first come, first served (pool.scheduler: fifo)",
        &fifo,
        clients,
    );
}
