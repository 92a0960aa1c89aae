//! End-to-end tests: the real filter (built for wasm32-wasip1) in a real Envoy, real
//! HTTP on 127.0.0.1. Each test starts its own Envoy and upstream and stops them
//! however it ends. Run through `scripts/test.sh`, which builds the filter and
//! installs Envoy first.

mod admission;
mod budgets;
mod claims;
mod config;
mod fleet;
mod fleet_pools;
mod identity;
mod isolation;
mod jwks;
mod metrics;
mod module;
mod openai_sdk;
mod panic;
mod shadow;
mod sidecar;
mod soak;
mod tokens;

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{prometheus_name, Envoy};

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The OpenAI error `code` of an error reply.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// GET `url` with `headers`.
pub async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Reply {
    send(client.get(url), headers).await
}

/// Sends `req` with `headers` added; reads the whole answer.
pub async fn send(req: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Reply {
    let mut req = req;
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = req.send().await.expect("request");
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap_or_default(),
    }
}

/// `authorization: Bearer <token>`.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// Waits (up to 5 s: workers flush their counters every 100 ms) until every line of
/// `expected` is in Envoy's `/stats/prometheus`; panics with the fairgate series if not.
pub async fn expect_prometheus(envoy: &Envoy, expected: &[&str]) {
    // Written as the wasm module names them; the native module's names carry Envoy's
    // prefix.
    let expected: Vec<String> = expected.iter().map(|e| prometheus_name(e)).collect();
    let all_there = |prom: &str| expected.iter().all(|e| prom.lines().any(|l| l == e));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut prom = envoy.admin("/stats/prometheus");
    while !all_there(&prom) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        prom = envoy.admin("/stats/prometheus");
    }
    let fg: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with(&prometheus_name("fg_")))
        .collect();
    assert!(
        all_there(&prom),
        "want {expected:#?} in:\n{}",
        fg.join("\n")
    );
}

/// The value of one series (name and labels exactly as printed) in Envoy's
/// `/stats/prometheus`, if present.
pub fn prometheus_value(envoy: &Envoy, series: &str) -> Option<f64> {
    let series = prometheus_name(series);
    envoy.admin("/stats/prometheus").lines().find_map(|l| {
        l.strip_prefix(series.as_str())?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
