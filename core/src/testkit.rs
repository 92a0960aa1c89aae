//! Test code only: `lib.rs` declares this module under #[cfg(test)].
//!
//! Helpers shared by the unit tests: the test keys of `testdata/keys`, tokens signed
//! at a fixed time, hand-built tokens, a configuration trusting every test key,
//! request headers, and a reply-header lookup.
//!
//! Every time claim of a token is set explicitly relative to `NOW_S`, and tokens are
//! verified with the time passed in, so no test depends on the wall clock.

use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

use crate::config::{Config, JwtConfig, TenantPolicy};
use crate::identity::RequestHeaders;
use crate::response::LocalReply;

/// The fixed "now" of every test, Unix seconds.
pub const NOW_S: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://auth.example.com";
pub const AUDIENCE: &str = "llm-gateway";
/// The verification leeway of `config_json`, seconds.
pub const LEEWAY_S: u64 = 60;
/// The HMAC secret of the HS* keys of `config_json` (32 bytes).
pub const HMAC_SECRET: &[u8] = b"fairgate-unit-test-hmac-secret!!";

pub const RSA_PRIVATE: &str = include_str!("../../testdata/keys/rsa.key.pem");
pub const RSA_PUBLIC: &str = include_str!("../../testdata/keys/rsa.pub.pem");
pub const RSA2_PRIVATE: &str = include_str!("../../testdata/keys/rsa2.key.pem");
pub const P256_PRIVATE: &str = include_str!("../../testdata/keys/p256.key.pem");
pub const P256_PUBLIC: &str = include_str!("../../testdata/keys/p256.pub.pem");
pub const P384_PRIVATE: &str = include_str!("../../testdata/keys/p384.key.pem");
pub const P384_PUBLIC: &str = include_str!("../../testdata/keys/p384.pub.pem");
pub const ED25519_PRIVATE: &str = include_str!("../../testdata/keys/ed25519.key.pem");
pub const ED25519_PUBLIC: &str = include_str!("../../testdata/keys/ed25519.pub.pem");

/// Every algorithm the filter verifies.
pub const ALL_ALGS: [&str; 10] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
];

/// The `kid` of the key for `alg` in `config_json`: the alg, lower-cased.
pub fn kid_of(alg: &str) -> String {
    alg.to_ascii_lowercase()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Base64url without padding, as in a compact JWT.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact token assembled by hand from a header, a payload and a signature.
pub fn compact(header: &Value, payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes()),
        signature
    )
}

/// The config entry of the test key for `alg`, with kid `kid_of(alg)`.
pub fn key_json(alg: &str) -> Value {
    let kid = kid_of(alg);
    let pem = match alg {
        "RS256" | "RS384" | "RS512" | "PS256" => RSA_PUBLIC,
        "ES256" => P256_PUBLIC,
        "ES384" => P384_PUBLIC,
        "EdDSA" => ED25519_PUBLIC,
        _ => return json!({"kid": kid, "alg": alg, "secret_base64": b64(HMAC_SECRET)}),
    };
    json!({"kid": kid, "alg": alg, "pem": pem})
}

/// The policy of a tenant configured with a weight and nothing else: no limits.
pub fn weight_only(weight: f64) -> TenantPolicy {
    TenantPolicy {
        weight,
        priority: 0,
        requests: None,
        tokens: None,
        max_concurrency: None,
        min_concurrency: None,
        cluster: None,
        clamp_max_tokens: false,
        shadow: false,
        models: Default::default(),
    }
}

/// A configuration trusting every test key (issuer `ISSUER`, audience `AUDIENCE`,
/// leeway `LEEWAY_S`), tenant header `x-tenant-id` (not trusted), tenants `acme`
/// (1 request/s, burst 2) and `free` (1 request/s, burst 1), `free` the default.
pub fn config_json() -> Value {
    let keys: Vec<Value> = ALL_ALGS.iter().map(|alg| key_json(alg)).collect();
    json!({
        "identity": {
            "jwt": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "claim": "tenant",
                "leeway_s": LEEWAY_S,
                "keys": keys
            },
            "header": "x-tenant-id"
        },
        "tenants": {
            "acme": {"weight": 4, "requests_per_second": 1, "request_burst": 2},
            "free": {"weight": 1, "requests_per_second": 1, "request_burst": 1}
        },
        "default_tenant": "free"
    })
}

/// Parses `value` as a plugin configuration that must be valid.
pub fn config(value: &Value) -> Config {
    match Config::from_json(value.to_string().as_bytes()) {
        Ok(config) => config,
        Err(e) => panic!("test config refused: {e}"),
    }
}

/// The JWT settings of `config_json`.
pub fn jwt_config() -> JwtConfig {
    config(&config_json())
        .identity
        .jwt
        .expect("config_json has a jwt section")
}

/// What goes into a test token. Built by `Mint::new`, adjusted through its fields,
/// signed by `sign`.
#[derive(Debug, Clone)]
pub struct Mint {
    pub alg: &'static str,
    pub kid: Option<String>,
    /// Claims besides the registered ones (the tenant claim lives here).
    pub custom: Map<String, Value>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub issued_at: Option<u64>,
    pub expires_at: Option<u64>,
    pub not_before: Option<u64>,
    /// The private key of the RS*/PS* algorithms.
    pub rsa_private: &'static str,
    /// The secret of the HS* algorithms.
    pub hmac_secret: Vec<u8>,
}

impl Mint {
    /// A token of `config_json`'s key for `alg`, for `tenant`: issued at `NOW_S`,
    /// valid for an hour, with the configured issuer and audience.
    pub fn new(alg: &'static str, tenant: &str) -> Self {
        let mut custom = Map::new();
        custom.insert("tenant".to_string(), Value::String(tenant.to_string()));
        Self {
            alg,
            kid: Some(kid_of(alg)),
            custom,
            subject: None,
            issuer: Some(ISSUER.to_string()),
            audience: Some(AUDIENCE.to_string()),
            issued_at: Some(NOW_S),
            expires_at: Some(NOW_S + 3600),
            not_before: None,
            rsa_private: RSA_PRIVATE,
            hmac_secret: HMAC_SECRET.to_vec(),
        }
    }

    fn claims(&self) -> JWTClaims<Map<String, Value>> {
        let mut claims = Claims::with_custom_claims(self.custom.clone(), Duration::from_secs(0));
        claims.issued_at = self.issued_at.map(Duration::from_secs);
        claims.expires_at = self.expires_at.map(Duration::from_secs);
        claims.invalid_before = self.not_before.map(Duration::from_secs);
        claims.subject = self.subject.clone();
        claims.issuer = self.issuer.clone();
        claims.audiences = self.audience.clone().map(Audiences::AsString);
        claims
    }

    /// The signed compact token.
    pub fn sign(&self) -> String {
        let claims = self.claims();
        let kid = self.kid.clone();
        macro_rules! with_kid {
            ($key:expr) => {{
                let key = $key;
                match kid {
                    Some(kid) => key.with_key_id(&kid),
                    None => key,
                }
            }};
        }
        let signed = match self.alg {
            "HS256" => with_kid!(HS256Key::from_bytes(&self.hmac_secret)).authenticate(claims),
            "HS384" => with_kid!(HS384Key::from_bytes(&self.hmac_secret)).authenticate(claims),
            "HS512" => with_kid!(HS512Key::from_bytes(&self.hmac_secret)).authenticate(claims),
            "RS256" => with_kid!(RS256KeyPair::from_pem(self.rsa_private).unwrap()).sign(claims),
            "RS384" => with_kid!(RS384KeyPair::from_pem(self.rsa_private).unwrap()).sign(claims),
            "RS512" => with_kid!(RS512KeyPair::from_pem(self.rsa_private).unwrap()).sign(claims),
            "PS256" => with_kid!(PS256KeyPair::from_pem(self.rsa_private).unwrap()).sign(claims),
            "ES256" => with_kid!(ES256KeyPair::from_pem(P256_PRIVATE).unwrap()).sign(claims),
            "ES384" => with_kid!(ES384KeyPair::from_pem(P384_PRIVATE).unwrap()).sign(claims),
            "EdDSA" => with_kid!(Ed25519KeyPair::from_pem(ED25519_PRIVATE).unwrap()).sign(claims),
            other => panic!("no test key for alg {other}"),
        };
        signed.unwrap()
    }
}

/// Request headers as a list of (lower-case name, value) pairs.
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Only `authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Self::new(&[("authorization", &format!("Bearer {token}"))])
    }
}

impl RequestHeaders for Headers {
    fn header(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// The value of header `name` in a local reply.
pub fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}
