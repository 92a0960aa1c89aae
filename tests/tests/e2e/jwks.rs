//! SPEC 11: signing keys from the identity provider's JWKS, fetched through an Envoy
//! cluster, once per refresh per Envoy, shared by its workers; an unknown `kid`
//! fetches early; a failed or garbage fetch keeps the last good keys; before any key
//! is known, a clear 401.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::tokens::{self, TokenSpec};
use fairgate_e2e::upstream::Upstream;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

use crate::{bearer, client, expect_prometheus, get};

/// An identity provider on 127.0.0.1: answers its JWKS path with what the test sets
/// (status and body), and counts the fetches.
#[derive(Clone)]
struct Idp {
    answer: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicU64>,
}

impl Idp {
    async fn start(keys: &[Value]) -> (Idp, std::net::SocketAddr) {
        let idp = Idp {
            answer: Arc::new(Mutex::new((200, jwks(keys)))),
            fetches: Arc::new(AtomicU64::new(0)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind idp");
        let addr = listener.local_addr().expect("idp addr");
        let served = idp.clone();
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let served = served.clone();
                async move {
                    served.fetches.fetch_add(1, Ordering::Relaxed);
                    let (status, body) = served.answer.lock().expect("lock").clone();
                    let status = axum::http::StatusCode::from_u16(status).expect("status");
                    Ok::<_, Infallible>((status, body))
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (idp, addr)
    }

    fn publish(&self, status: u16, body: String) {
        *self.answer.lock().expect("lock") = (status, body);
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// The public JWK of the RSA test key (`RS256`) or the P-256 one (`ES256`), as `kid`.
fn jwk(alg: &str, kid: &str) -> Value {
    let text = match alg {
        "RS256" => RS256KeyPair::from_pem(tokens::RSA_PRIVATE).map(|k| k.public_key().to_jwk()),
        "ES256" => ES256KeyPair::from_pem(tokens::P256_PRIVATE).map(|k| k.public_key().to_jwk()),
        other => panic!("no test key for {other}"),
    };
    let mut jwk: Value = serde_json::from_str(&text.expect("jwk")).expect("json");
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg);
    jwk["use"] = json!("sig");
    jwk
}

/// Tenant `acme`, keys only from the JWKS of cluster `idp`, fetched every second.
fn jwks_config() -> String {
    let mut identity = plugin::jwt_identity();
    identity["jwt"]["keys"] = json!([]);
    identity["jwt"]["jwks"] = json!({"cluster": "idp", "refresh_s": 1, "min_refetch_s": 1});
    plugin::config(identity, json!({"acme": {"weight": 1}}), None)
}

fn token(alg: &str, kid: &str) -> String {
    tokens::mint(&TokenSpec::new(alg, Some(kid), "acme")).expect("token")
}

/// Asks as `token` until the status is `want` (within `within`); returns how long it took.
async fn until_status(envoy: &Envoy, token: &str, want: u16, within: Duration) -> Duration {
    let (start, client) = (Instant::now(), client());
    let auth = bearer(token);
    loop {
        let r = get(&client, &envoy.url("/"), &[(auth.0, auth.1.as_str())]).await;
        if r.status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {} after {within:?}, wanted {want}: {}\n{}",
            r.status,
            r.body,
            envoy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_at_the_identity_provider_and_a_bad_fetch_keeps_the_last_good_ones() {
    let upstream = Upstream::start().await;
    let (idp, idp_addr) = Idp::start(&[jwk("RS256", "k1")]).await;
    let config = jwks_config();
    let envoy = Envoy::start(
        &EnvoyConfig::new(config)
            .concurrency(4)
            .upstream("model", upstream.addr)
            .upstream("idp", idp_addr),
    );
    let (k1, k2) = (token("RS256", "k1"), token("ES256", "k2"));
    // The first fetch brings k1.
    until_status(&envoy, &k1, 200, Duration::from_secs(5)).await;

    // A new key: its first token names an unknown kid, which fetches again early.
    idp.publish(200, jwks(&[jwk("RS256", "k1"), jwk("ES256", "k2")]));
    let took = until_status(&envoy, &k2, 200, Duration::from_secs(4)).await;
    eprintln!("a newly published key verified after {took:?}");

    // k1 removed: refused after the next refresh.
    idp.publish(200, jwks(&[jwk("ES256", "k2")]));
    let took = until_status(&envoy, &k1, 401, Duration::from_secs(4)).await;
    eprintln!("a removed key refused after {took:?}");

    // An identity provider answering garbage, then down: the keys stay.
    for (status, body) in [(200, "not a jwks".to_string()), (503, String::new())] {
        idp.publish(status, body);
        let before = idp.fetches();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(idp.fetches() > before, "no fetch in 2.5 s");
        until_status(&envoy, &k2, 200, Duration::from_secs(1)).await;
    }
    expect_prometheus(&envoy, &["fg_jwks_keys{} 1"]).await;
    let errors = crate::prometheus_value(&envoy, "fg_jwks_fetch_errors{}").unwrap_or(0.0);
    assert!(errors >= 2.0, "{errors} failed fetches counted");

    // One fetch per refresh per Envoy, whatever the number of workers (4).
    idp.publish(200, jwks(&[jwk("ES256", "k2")]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (before, start) = (idp.fetches(), Instant::now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let fetches = idp.fetches() - before;
    let periods = start.elapsed().as_secs_f64();
    eprintln!("{fetches} fetches in {periods:.1} s, refresh 1 s, 4 workers");
    assert!(
        fetches as f64 <= periods + 1.0,
        "{fetches} fetches in {periods:.1} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_any_key_is_fetched_a_token_gets_a_clear_401() {
    let upstream = Upstream::start().await;
    let (idp, idp_addr) = Idp::start(&[]).await;
    idp.publish(503, String::new());
    let config = jwks_config();
    let envoy = Envoy::start(
        &EnvoyConfig::new(config)
            .upstream("model", upstream.addr)
            .upstream("idp", idp_addr),
    );
    let k1 = token("RS256", "k1");
    let auth = bearer(&k1);
    let r = get(&client(), &envoy.url("/"), &[(auth.0, auth.1.as_str())]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.error_code(), "invalid_tenant_token");
    assert!(r.body.contains("not loaded yet"), "{}", r.body);
    idp.publish(200, jwks(&[jwk("RS256", "k1")]));
    until_status(&envoy, &k1, 200, Duration::from_secs(4)).await;
    assert_eq!(upstream.count(), 1);
}
