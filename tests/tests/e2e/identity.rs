//! SPEC section 2 (identity) and the 401/403 rows of section 6, through Envoy.

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::tokens::{self, mint, TokenSpec};
use fairgate_e2e::upstream::Upstream;
use serde_json::{json, Value};

use crate::{bearer, client, get};

fn tenants() -> Value {
    json!({
        "acme": {"weight": 4},
        "globex": {"weight": 2},
        "free": {"weight": 1}
    })
}

async fn gateway(identity: Value, default_tenant: Option<&str>) -> (Envoy, Upstream) {
    let upstream = Upstream::start().await;
    let config = plugin::config(identity, tenants(), default_tenant);
    let envoy = Envoy::start(&EnvoyConfig::new(config).upstream("upstream", upstream.addr));
    (envoy, upstream)
}

fn token(alg: &str, kid: &str, tenant: &str) -> String {
    mint(&TokenSpec::new(alg, Some(kid), tenant)).expect("mint")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_every_algorithm_are_accepted_and_the_upstream_sees_only_the_verified_tenant() {
    let (envoy, upstream) = gateway(plugin::jwt_identity(), None).await;
    let client = client();
    for (alg, kid) in [
        ("HS256", "hs-1"),
        ("RS256", "rs-1"),
        ("PS256", "ps-1"),
        ("ES256", "es-1"),
        ("ES384", "es384-1"),
        ("EdDSA", "ed-1"),
    ] {
        let (name, value) = bearer(&token(alg, kid, "acme"));
        // The client tries to pick its own tenant, twice.
        let reply = get(
            &client,
            &envoy.url("/v1/chat/completions"),
            &[
                (name, &value),
                ("x-fairgate-tenant", "globex"),
                ("x-fairgate-tenant", "free"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{alg}: {}", reply.body);
        let seen = upstream.seen();
        let last = seen.last().expect("upstream saw the request");
        assert_eq!(last.values("x-fairgate-tenant"), vec!["acme"], "{alg}");
    }
    assert_eq!(upstream.count(), 6);
}

/// Tokens that must be refused, each with what is wrong with it.
fn forged_tokens() -> Vec<(&'static str, String)> {
    let claims = |tenant: &str| {
        b64(json!({
            "tenant": tenant, "iss": "https://auth.example.com", "aud": "llm-gateway",
            "exp": 4_000_000_000u64, "iat": 1_700_000_000u64
        })
        .to_string()
        .as_bytes())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"hs-1"}"#),
        claims("acme")
    );
    // The classic confusion: HMAC "signed" with the RSA public key, naming the RSA kid.
    let hs_with_rsa_public_key = {
        use jwt_simple::prelude::*;
        let claims = Claims::with_custom_claims(
            serde_json::Map::from_iter([("tenant".to_string(), json!("acme"))]),
            Duration::from_hours(1),
        )
        .with_issuer("https://auth.example.com")
        .with_audience("llm-gateway");
        HS256Key::from_bytes(tokens::RSA_PUBLIC.as_bytes())
            .with_key_id("rs-1")
            .authenticate(claims)
            .expect("sign")
    };
    let spec = |f: &dyn Fn(&mut TokenSpec)| {
        let mut s = TokenSpec::new("RS256", Some("rs-1"), "acme");
        f(&mut s);
        mint(&s).expect("mint")
    };
    let valid = token("RS256", "rs-1", "acme");
    let mut parts: Vec<&str> = valid.split('.').collect();
    let other_payload = claims("globex");
    parts[1] = &other_payload;
    let bad_signature = parts.join(".");
    vec![
        ("alg none", alg_none),
        (
            "HS256 signed with the RS256 public key",
            hs_with_rsa_public_key,
        ),
        ("expired", spec(&|s| s.expires_in_s = Some(-3600))),
        (
            "nbf in the future",
            spec(&|s| s.not_before_in_s = Some(3600)),
        ),
        (
            "wrong iss",
            spec(&|s| s.issuer = Some("https://evil.example.com".into())),
        ),
        (
            "wrong aud",
            spec(&|s| s.audience = Some("another-api".into())),
        ),
        ("unknown kid", spec(&|s| s.kid = Some("rs-9".into()))),
        ("bad signature", bad_signature),
        ("malformed base64", "!!!.@@@.###".to_string()),
        (
            "malformed JSON",
            format!("{}.{}.{}", b64(b"{not json"), claims("acme"), b64(b"sig")),
        ),
        ("64 KB token", "a".repeat(64 * 1024)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_invalid_tokens_get_401_and_nothing_is_forwarded() {
    let (mut envoy, upstream) = gateway(plugin::jwt_identity(), Some("free")).await;
    let client = client();
    for (what, forged) in forged_tokens() {
        let (name, value) = bearer(&forged);
        let reply = get(
            &client,
            &envoy.url("/v1/chat/completions"),
            &[(name, &value)],
        )
        .await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_tenant_token", "{what}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
        assert_eq!(upstream.count(), 0, "{what} reached the upstream");
    }
    // Envoy and the filter are still serving: no VM panic.
    let (name, value) = bearer(&token("HS256", "hs-1", "acme"));
    let reply = get(&client, &envoy.url("/"), &[(name, &value)]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(envoy.is_running());
    let log = envoy.log();
    assert!(!log.contains("panicked"), "the VM panicked:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_token_gets_401_missing_tenant() {
    let (envoy, upstream) = gateway(plugin::jwt_identity(), Some("free")).await;
    let client = client();
    let reply = get(
        &client,
        &envoy.url("/v1/models"),
        &[("x-fairgate-tenant", "acme")],
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "missing_tenant");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let reply = get(
        &client,
        &envoy.url("/"),
        &[("authorization", "Basic dXNlcjpwYXNz")],
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "invalid_tenant_token");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tenant_gets_the_default_policy_or_403_without_one() {
    let client = client();
    let (name, value) = bearer(&token("HS256", "hs-1", "initech"));

    let (envoy, upstream) = gateway(plugin::jwt_identity(), Some("free")).await;
    let reply = get(&client, &envoy.url("/"), &[(name, &value)]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = upstream.seen();
    assert_eq!(seen[0].values("x-fairgate-tenant"), vec!["initech"]);
    drop(envoy);

    let (envoy, upstream) = gateway(plugin::jwt_identity(), None).await;
    let reply = get(&client, &envoy.url("/"), &[(name, &value)]).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.error_code(), "unknown_tenant");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_mode_takes_the_tenant_from_the_configured_header() {
    let (envoy, upstream) = gateway(json!({"header": "x-tenant-id"}), None).await;
    let client = client();
    let reply = get(
        &client,
        &envoy.url("/"),
        &[("x-tenant-id", "globex"), ("x-fairgate-tenant", "acme")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        upstream.seen()[0].values("x-fairgate-tenant"),
        vec!["globex"]
    );

    let reply = get(&client, &envoy.url("/"), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "missing_tenant");
    let reply = get(&client, &envoy.url("/"), &[("x-tenant-id", "not a tenant")]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "invalid_tenant_token");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_and_a_header_the_header_counts_only_when_trusted() {
    let client = client();
    let (name, value) = bearer(&token("HS256", "hs-1", "acme"));
    let mut identity = plugin::jwt_identity();
    identity["header"] = json!("x-tenant-id");

    // Not trusted: the token decides, the header is ignored.
    let (envoy, upstream) = gateway(identity.clone(), None).await;
    let reply = get(
        &client,
        &envoy.url("/"),
        &[(name, &value), ("x-tenant-id", "globex")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(upstream.seen()[0].values("x-fairgate-tenant"), vec!["acme"]);
    let reply = get(&client, &envoy.url("/"), &[("x-tenant-id", "globex")]).await;
    assert_eq!(
        reply.status, 401,
        "an untrusted header alone is no identity"
    );
    drop(envoy);

    // Trusted (an authenticator in front wrote it): the header decides.
    identity["trust_header"] = json!(true);
    let (envoy, upstream) = gateway(identity, None).await;
    let reply = get(&client, &envoy.url("/"), &[("x-tenant-id", "globex")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        upstream.seen()[0].values("x-fairgate-tenant"),
        vec!["globex"]
    );
}
