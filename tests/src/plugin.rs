//! Plugin configurations (SPEC section 2) for the tests, built as JSON values.

use serde_json::{json, Value};

use crate::tokens;

/// The JWT identity section trusting every test key: `hs-1` (HS256), `rs-1` (RS256),
/// `es-1` (ES256), `es384-1` (ES384), `ed-1` (EdDSA), `ps-1` (PS256, the RSA key).
pub fn jwt_identity() -> Value {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.encode(tokens::HS256_SECRET);
    json!({
        "jwt": {
            "issuer": "https://auth.example.com",
            "audiences": ["llm-gateway"],
            "claim": "tenant",
            "leeway_s": 60,
            "keys": [
                {"kid": "hs-1", "alg": "HS256", "secret_base64": secret},
                {"kid": "rs-1", "alg": "RS256", "pem": tokens::RSA_PUBLIC},
                {"kid": "ps-1", "alg": "PS256", "pem": tokens::RSA_PUBLIC},
                {"kid": "es-1", "alg": "ES256", "pem": tokens::P256_PUBLIC},
                {"kid": "es384-1", "alg": "ES384", "pem": tokens::P384_PUBLIC},
                {"kid": "ed-1", "alg": "EdDSA", "pem": tokens::ED25519_PUBLIC}
            ]
        },
        "forward_header": "x-fairgate-tenant"
    })
}

/// A whole plugin config: `identity`, `tenants`, and `default_tenant` when given.
pub fn config(identity: Value, tenants: Value, default_tenant: Option<&str>) -> String {
    let mut cfg = json!({"identity": identity, "tenants": tenants});
    if let Some(d) = default_tenant {
        cfg["default_tenant"] = json!(d);
    }
    cfg.to_string()
}
