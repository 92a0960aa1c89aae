//! What fairgate's admitted request path costs in the filter's own logic, natively:
//! the request-header decision (`Gate::on_request_headers`) for a cached HS256 token
//! and a request budget too large to refuse (the same setup as `bench/overhead.sh`'s
//! (c)), against an in-memory shared store. Run by hand:
//!
//!     cargo run --release -p fairgate-core --example hot_path
//!
//! In Envoy the same code runs compiled to wasm under V8, plus the host calls (the
//! identity header, the clock, the tenant header write): this is the floor of what
//! the logic itself can cost, to tell it apart from what crossing into the VM does.

use std::hint::black_box;
use std::time::Instant;

use fairgate_core::clock::Clock;
use fairgate_core::config::Config;
use fairgate_core::identity::RequestHeaders;
use fairgate_core::pipeline::{Gate, Verdict};
use fairgate_core::store::MemoryStore;
use jwt_simple::prelude::*;

const SECRET: &[u8] = b"fairgate-demo-secret-do-not-use!";

struct Bearer(String);

impl RequestHeaders for Bearer {
    fn header(&self, name: &str) -> Option<String> {
        (name == "authorization").then(|| self.0.clone())
    }
}

/// From the real time at the start, a millisecond more every 64 reads (without a
/// system call per read: the filter's clock is a host call, priced apart).
struct Ticking {
    start_ms: u64,
    reads: std::cell::Cell<u64>,
}

impl Clock for Ticking {
    fn now_ms(&self) -> u64 {
        let n = self.reads.get() + 1;
        self.reads.set(n);
        self.start_ms + n / 64
    }
}

#[derive(Serialize, Deserialize)]
struct TenantClaim {
    tenant: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let config = serde_json::json!({
        "identity": {
            "jwt": {
                "issuer": "https://auth.example.com",
                "audiences": ["llm-gateway"],
                "claim": "tenant",
                "keys": [{"kid": "hs-1", "alg": "HS256",
                          "secret_base64": base64::engine::general_purpose::STANDARD.encode(SECRET)}]
            }
        },
        "tenants": {"acme": {"weight": 1, "requests_per_second": 1e9, "request_burst": 1e9}}
    });
    let config = Config::from_json(config.to_string().as_bytes()).map_err(|e| format!("{e}"))?;
    let mut gate = Gate::new(config, "fairgate.bench", [7; 16]);
    let claims = Claims::with_custom_claims(
        TenantClaim {
            tenant: "acme".into(),
        },
        Duration::from_hours(24),
    )
    .with_issuer("https://auth.example.com")
    .with_audience("llm-gateway");
    let token = HS256Key::from_bytes(SECRET)
        .with_key_id("hs-1")
        .authenticate(claims)?;
    let headers = Bearer(format!("Bearer {token}"));
    let store = MemoryStore::new();
    let clock = Ticking {
        start_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64,
        reads: std::cell::Cell::new(0),
    };

    let run = |gate: &mut Gate, n: u32| -> Result<f64, String> {
        let start = Instant::now();
        for _ in 0..n {
            if let Verdict::Reject { reply, .. } =
                black_box(gate.on_request_headers(&headers, &store, &clock))
            {
                return Err(format!("refused: {}", reply.body));
            }
        }
        Ok(start.elapsed().as_nanos() as f64 / f64::from(n))
    };
    run(&mut gate, 10_000)?; // the first verification, caches warm
    let mut rounds = (0..7)
        .map(|_| run(&mut gate, 500_000))
        .collect::<Result<Vec<f64>, String>>()?;
    rounds.sort_by(f64::total_cmp);
    println!(
        "Gate::on_request_headers, cached HS256 token, leased request budget: \
         median {:.0} ns, best {:.0} ns per request (7 rounds of 500000)",
        rounds[3], rounds[0]
    );
    Ok(())
}
