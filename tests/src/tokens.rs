//! JWTs signed with the test keys in `testdata/keys` (public, for tests and demos only).

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

/// The HS256 demo secret, as configured in `envoy/` (`secret_base64`).
pub const HS256_SECRET: &[u8] = b"fairgate-demo-secret-do-not-use!";

pub const RSA_PRIVATE: &str = include_str!("../../testdata/keys/rsa.key.pem");
pub const RSA_PUBLIC: &str = include_str!("../../testdata/keys/rsa.pub.pem");
pub const RSA2_PRIVATE: &str = include_str!("../../testdata/keys/rsa2.key.pem");
pub const P256_PRIVATE: &str = include_str!("../../testdata/keys/p256.key.pem");
pub const P256_PUBLIC: &str = include_str!("../../testdata/keys/p256.pub.pem");
pub const P384_PRIVATE: &str = include_str!("../../testdata/keys/p384.key.pem");
pub const P384_PUBLIC: &str = include_str!("../../testdata/keys/p384.pub.pem");
pub const ED25519_PRIVATE: &str = include_str!("../../testdata/keys/ed25519.key.pem");
pub const ED25519_PUBLIC: &str = include_str!("../../testdata/keys/ed25519.pub.pem");

/// What goes into a test token.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub alg: String,
    pub kid: Option<String>,
    pub tenant: Option<String>,
    pub claim: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Seconds from now; negative for a token that has already expired.
    pub expires_in_s: Option<i64>,
    /// Seconds from now before which the token is not valid.
    pub not_before_in_s: Option<i64>,
    pub extra: Map<String, Value>,
}

impl TokenSpec {
    /// A token for `tenant` as the demo configuration expects it: issuer
    /// `https://auth.example.com`, audience `llm-gateway`, valid for an hour.
    pub fn new(alg: &str, kid: Option<&str>, tenant: &str) -> Self {
        Self {
            alg: alg.to_string(),
            kid: kid.map(str::to_string),
            tenant: Some(tenant.to_string()),
            claim: "tenant".to_string(),
            issuer: Some("https://auth.example.com".to_string()),
            audience: Some("llm-gateway".to_string()),
            expires_in_s: Some(3600),
            not_before_in_s: None,
            extra: Map::new(),
        }
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn claims(spec: &TokenSpec) -> JWTClaims<Map<String, Value>> {
    let mut custom = spec.extra.clone();
    if let Some(t) = &spec.tenant {
        custom.insert(spec.claim.clone(), Value::String(t.clone()));
    }
    let now = now_s();
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(3600));
    claims.issued_at = Some(Duration::from_secs(now.max(0) as u64));
    claims.expires_at = spec
        .expires_in_s
        .map(|s| Duration::from_secs((now + s).max(0) as u64));
    claims.invalid_before = spec
        .not_before_in_s
        .map(|s| Duration::from_secs((now + s).max(0) as u64));
    claims.issuer = spec.issuer.clone();
    claims.audiences = spec.audience.clone().map(Audiences::AsString);
    claims
}

/// Signs `spec` with the test key for its `alg`.
pub fn mint(spec: &TokenSpec) -> Result<String, String> {
    let c = claims(spec);
    let kid = spec.kid.clone();
    let err = |e: jwt_simple::Error| e.to_string();
    macro_rules! sign {
        ($key:expr) => {{
            let mut key = $key;
            if let Some(kid) = kid {
                key = key.with_key_id(&kid);
            }
            key.sign(c).map_err(err)
        }};
    }
    macro_rules! mac {
        ($key:expr) => {{
            let mut key = $key;
            if let Some(kid) = kid {
                key = key.with_key_id(&kid);
            }
            key.authenticate(c).map_err(err)
        }};
    }
    match spec.alg.as_str() {
        "HS256" => mac!(HS256Key::from_bytes(HS256_SECRET)),
        "HS384" => mac!(HS384Key::from_bytes(HS256_SECRET)),
        "HS512" => mac!(HS512Key::from_bytes(HS256_SECRET)),
        "RS256" => sign!(RS256KeyPair::from_pem(RSA_PRIVATE).map_err(err)?),
        "RS384" => sign!(RS384KeyPair::from_pem(RSA_PRIVATE).map_err(err)?),
        "RS512" => sign!(RS512KeyPair::from_pem(RSA_PRIVATE).map_err(err)?),
        "PS256" => sign!(PS256KeyPair::from_pem(RSA_PRIVATE).map_err(err)?),
        "ES256" => sign!(ES256KeyPair::from_pem(P256_PRIVATE).map_err(err)?),
        "ES384" => sign!(ES384KeyPair::from_pem(P384_PRIVATE).map_err(err)?),
        "EdDSA" => sign!(Ed25519KeyPair::from_pem(ED25519_PRIVATE).map_err(err)?),
        other => Err(format!("no test key for alg {other}")),
    }
}
