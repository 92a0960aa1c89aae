//! Streaming overhead of token accounting, through a real Envoy and the mock model
//! server: time to first byte, the gaps between chunks as the client sees them, and
//! Envoy's CPU time per streamed chunk, for three setups run in turn:
//!
//! - `direct`: the client talks to the mock model server itself;
//! - `fairgate`: through Envoy and fairgate (header identity) without token accounting;
//! - `accounting`: through Envoy and fairgate with a token budget: the body read and
//!   rewritten, the stream scanned for usage and its injected usage chunk stripped.
//!
//! `cargo run --release -p fairgate-e2e --bin stream-bench [-- STREAMS]` (default
//! 300 streams of 64 chunks, 4 at a time, a chunk every 2 ms). Needs the filter built
//! (`scripts/test.sh` or `scripts/lib.sh`'s `build_filter`) and Envoy (`ENVOY_BIN` or
//! the `.venv` the scripts install).

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_mock::MockConfig;
use serde_json::json;

const CHUNKS: u64 = 64;
const PARALLEL: usize = 4;

#[derive(Default)]
struct Samples {
    ttfb_us: Vec<u64>,
    gap_us: Vec<u64>,
    chunks: u64,
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Envoy's user + system CPU time, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

async fn run(url: &str, streams: usize) -> Samples {
    let mut tasks = Vec::new();
    for worker in 0..PARALLEL {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut s = Samples::default();
            for _ in (worker..streams).step_by(PARALLEL) {
                let body = json!({"messages": [{"role": "user", "content": "bench"}],
                                  "max_tokens": CHUNKS, "stream": true});
                let sent = Instant::now();
                let Ok(mut resp) = client
                    .post(&url)
                    .header("x-tenant-id", "acme")
                    .header("x-fairgate-tenant", "acme")
                    .header("x-mock-completion-tokens", CHUNKS.to_string())
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                else {
                    continue;
                };
                let mut last: Option<Instant> = None;
                while let Ok(Some(_)) = resp.chunk().await {
                    let now = Instant::now();
                    match last {
                        None => s.ttfb_us.push((now - sent).as_micros() as u64),
                        Some(l) => s.gap_us.push((now - l).as_micros() as u64),
                    }
                    s.chunks += 1;
                    last = Some(now);
                }
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.ttfb_us.extend(s.ttfb_us);
            all.gap_us.extend(s.gap_us);
            all.chunks += s.chunks;
        }
    }
    all
}

#[tokio::main]
async fn main() {
    let streams: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let mock = fairgate_mock::spawn(
        MockConfig {
            slots: 64,
            prefill_ms: 5,
            token_ms: 2,
            ..MockConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("mock");
    let identity = json!({"header": "x-tenant-id"});
    let plain = plugin::config(identity.clone(), json!({"acme": {"weight": 1}}), None);
    let mut accounting: serde_json::Value = serde_json::from_str(&plugin::config(
        identity,
        json!({"acme": {"weight": 1, "tokens_per_minute": 1.0e9, "token_burst": 1.0e9}}),
        None,
    ))
    .expect("json");
    accounting["tokens"] = json!({});
    let envoys = [
        Envoy::start(&EnvoyConfig::new(plain).upstream("mock", mock.addr)),
        Envoy::start(&EnvoyConfig::new(accounting.to_string()).upstream("mock", mock.addr)),
    ];
    let setups: [(&str, String, Option<u32>); 3] = [
        ("direct", mock.url("/v1/chat/completions"), None),
        (
            "fairgate",
            envoys[0].url("/v1/chat/completions"),
            Some(envoys[0].pid()),
        ),
        (
            "accounting",
            envoys[1].url("/v1/chat/completions"),
            Some(envoys[1].pid()),
        ),
    ];
    // Warm up (V8 compiles the filter's paths on first use).
    for (_, url, _) in &setups {
        run(url, 20).await;
    }
    println!(
        "{streams} streams of {CHUNKS} chunks, {PARALLEL} at a time, a chunk every 2 ms; Envoy --concurrency 1\n"
    );
    println!(
        "{:<11} {:>9} {:>9} {:>9} {:>9} {:>12} {:>14}",
        "setup", "ttfb p50", "ttfb p99", "gap p50", "gap p99", "chunks seen", "envoy CPU/chunk"
    );
    for (name, url, pid) in &setups {
        let before = pid.map(cpu_ticks);
        let mut s = run(url, streams).await;
        let cpu = match (pid, before) {
            (Some(p), Some(b)) => {
                let ticks = cpu_ticks(*p).saturating_sub(b);
                format!(
                    "{:.1} µs",
                    ticks as f64 * 10_000.0 / (streams as u64 * CHUNKS) as f64
                )
            }
            _ => "-".to_string(),
        };
        println!(
            "{:<11} {:>7}µs {:>7}µs {:>7}µs {:>7}µs {:>12} {:>14}",
            name,
            pct(&mut s.ttfb_us, 0.5),
            pct(&mut s.ttfb_us, 0.99),
            pct(&mut s.gap_us, 0.5),
            pct(&mut s.gap_us, 0.99),
            s.chunks,
            cpu
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("\nenvoy CPU/chunk: Envoy's CPU time over the run / streamed chunks (whole request cost included)");
}
