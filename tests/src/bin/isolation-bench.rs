//! What a tenant over its token budget costs the model servers: a flood of chat
//! completions (JSON and streamed, with and without `content-length`) from a tenant
//! whose token bucket is empty, through a real Envoy (`--concurrency 2`) and fairgate,
//! into a tap in front of the mock model server that counts the connections Envoy
//! opens and the request heads it sends. Two setups, run in turn:
//!
//! - `hold`: the shipped config, `allow_on_headers_stop_iteration: true`: Envoy holds
//!   the headers while fairgate reads the body, so a refusal sends nothing upstream;
//! - `no-hold`: an Envoy without that option (an unpatched Istio `WasmPlugin`):
//!   fairgate learns it and reads bodies on their way through, after the headers left.
//!
//! `cargo run --release -p fairgate-e2e --bin isolation-bench [-- SECONDS]` (default
//! 10 s a setup, 8 clients). Needs the filter built and Envoy, as `stream-bench`.

use std::time::Duration;

use fairgate_e2e::flood;
use fairgate_e2e::plugin;
use fairgate_e2e::tap::TappedGateway;
use serde_json::json;

const CLIENTS: usize = 8;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!("flood of one tenant over its token budget, {CLIENTS} clients, {seconds} s a setup, Envoy --concurrency 2\n");
    println!(
        "{:<8} {:>9} {:>8} {:>12} {:>12} {:>22} {:>22}",
        "setup",
        "refused",
        "served",
        "connections",
        "heads",
        "connections/1000 ref.",
        "refused heads/1000 ref."
    );
    for hold in [false, true] {
        let mut config: serde_json::Value = serde_json::from_str(&plugin::config(
            json!({"header": "x-tenant-id"}),
            json!({"noisy": {"weight": 1, "tokens_per_minute": 600, "token_burst": 300}}),
            None,
        ))
        .expect("json");
        config["tokens"] = json!({"default_max_tokens": 64});
        let gw = TappedGateway::start(config.to_string(), 2, hold).await;
        let (envoy, tap) = (&gw.envoy, &gw.tap);
        let url = envoy.url("/v1/chat/completions");
        let outcome = flood::flood(
            &url,
            "noisy",
            CLIENTS,
            Duration::from_secs(seconds),
            100,
            100,
        )
        .await;
        // Let the last resets reach the tap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let heads = tap.heads_of("noisy") as u64;
        let per_1000 = |n: u64| n as f64 * 1000.0 / outcome.refused.max(1) as f64;
        println!(
            "{:<8} {:>9} {:>8} {:>12} {:>12} {:>22.1} {:>22.1}",
            if hold { "hold" } else { "no-hold" },
            outcome.refused,
            outcome.served,
            tap.connections(),
            heads,
            per_1000(tap.connections()),
            per_1000(heads.saturating_sub(outcome.served)),
        );
        if !outcome.other.is_empty() {
            println!("         other statuses: {:?}", outcome.other);
        }
    }
}
