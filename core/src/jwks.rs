//! JWKS documents (RFC 7517), as an identity provider publishes its signing keys
//! (SPEC 11): RSA, EC P-256 and P-384, OKP Ed25519, and oct keys.
//!
//! A key's algorithm comes from its `alg` member, else from its type: RSA is RS256,
//! P-256 is ES256, P-384 is ES384, Ed25519 is EdDSA, oct is HS256. Keys for another
//! use than signatures (`use` other than `sig`), of an unsupported type or curve, or
//! malformed are skipped, each with its reason; a document with no usable key at all
//! is refused as a whole, so that the last good keys stay in place.

use base64::Engine;
use serde_json::Value;

use crate::headroom::PollClaim;
use crate::jwt::VerifyingKey;

/// A larger document is refused unread (a real one is a few KB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The usable keys of a document, each with its `kid`, and what was skipped.
#[derive(Debug)]
pub struct Jwks {
    pub keys: Vec<(Option<String>, VerifyingKey)>,
    /// Why each skipped key was skipped (its `kid` or index, and the reason).
    pub skipped: Vec<String>,
}

/// When a fetch is due: `refresh_ms` after the last one, or, where a token named an
/// unknown `kid` (`wish`), `min_refetch_ms` after it.
pub fn due(
    last_ms: Option<u64>,
    now_ms: u64,
    refresh_ms: u64,
    min_refetch_ms: u64,
    wish: bool,
) -> bool {
    let Some(last) = last_ms else {
        return true;
    };
    let wait = if wish { min_refetch_ms } else { refresh_ms };
    now_ms.saturating_sub(last) >= wait
}

/// The elected fetcher's claim (`headroom::PollClaim`, polled every `refresh_ms`)
/// brought forward for an early refetch: due `min_refetch_ms` after the last fetch,
/// or now. `None` where it is due sooner already.
pub fn hasten(
    claim: PollClaim,
    now_ms: u64,
    refresh_ms: u64,
    min_refetch_ms: u64,
) -> Option<PollClaim> {
    let last = claim.next_poll_ms.saturating_sub(refresh_ms);
    let due = now_ms.max(last.saturating_add(min_refetch_ms));
    (due < claim.next_poll_ms).then_some(PollClaim {
        next_poll_ms: due,
        ..claim
    })
}

/// Reads a JWKS document.
pub fn parse(body: &[u8]) -> Result<Jwks, String> {
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!(
            "a JWKS of {} bytes, over the {MAX_JWKS_BYTES} allowed",
            body.len()
        ));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
        return Err("no `keys` array".to_string());
    };
    let mut jwks = Jwks {
        keys: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_string);
        match key(entry) {
            Ok(key) => jwks.keys.push((kid, key)),
            Err(reason) => {
                let name = kid.unwrap_or_else(|| format!("keys[{i}]"));
                jwks.skipped.push(format!("{name}: {reason}"));
            }
        }
    }
    if jwks.keys.is_empty() {
        return Err(format!(
            "no usable signing key ({} skipped: {})",
            jwks.skipped.len(),
            jwks.skipped.join("; ")
        ));
    }
    Ok(jwks)
}

fn member<'a>(jwk: &'a Value, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

/// One JWK as a verifying key.
fn key(jwk: &Value) -> Result<VerifyingKey, String> {
    if !jwk.is_object() {
        return Err("not an object".to_string());
    }
    if let Some(usage) = member(jwk, "use").filter(|u| *u != "sig") {
        return Err(format!("for use {usage:?}, not signatures"));
    }
    let kty = member(jwk, "kty").ok_or("no kty")?;
    let crv = member(jwk, "crv");
    let by_type = match (kty, crv) {
        ("RSA", _) => "RS256",
        ("EC", Some("P-256")) => "ES256",
        ("EC", Some("P-384")) => "ES384",
        ("OKP", Some("Ed25519")) => "EdDSA",
        ("oct", _) => "HS256",
        (kty, crv) => return Err(format!("unsupported key type {kty:?} (curve {crv:?})")),
    };
    let alg = match member(jwk, "alg") {
        // JOSE also names EdDSA over Ed25519 "Ed25519".
        Some("Ed25519") => "EdDSA",
        Some(alg) => alg,
        None => by_type,
    };
    let fits = match kty {
        "RSA" => matches!(alg, "RS256" | "RS384" | "RS512" | "PS256"),
        "oct" => matches!(alg, "HS256" | "HS384" | "HS512"),
        _ => alg == by_type,
    };
    if !fits {
        return Err(format!("alg {alg:?} does not fit key type {kty:?}"));
    }
    if kty == "oct" {
        let k = member(jwk, "k").ok_or("no k")?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(k.trim_end_matches('='))
            .map_err(|e| format!("k is not base64url: {e}"))?;
        if secret.is_empty() {
            return Err("an empty secret".to_string());
        }
        return VerifyingKey::hmac(alg, &secret);
    }
    // jwt-simple reads the public members and refuses private ones or others of
    // another key type; the members it does not know (kid, alg, use, x5c...) are
    // dropped first.
    let public: serde_json::Map<String, Value> = ["kty", "crv", "n", "e", "x", "y"]
        .iter()
        .filter_map(|m| jwk.get(*m).map(|v| (m.to_string(), v.clone())))
        .collect();
    let text = Value::Object(public).to_string();
    VerifyingKey::from_jwk(alg, &text).map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Expectations, KeySet};
    use crate::testkit::{self, Mint, AUDIENCE, ISSUER, NOW_S};
    use jwt_simple::prelude::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// The public JWK of the test key for `alg`, with `kid` and `alg` set.
    fn public_jwk(alg: &str, kid: &str) -> Value {
        let text = match alg {
            "RS256" | "RS384" | "RS512" | "PS256" => {
                RS256KeyPair::from_pem(testkit::RSA_PRIVATE).map(|k| k.public_key().to_jwk())
            }
            "ES256" => {
                ES256KeyPair::from_pem(testkit::P256_PRIVATE).map(|k| k.public_key().to_jwk())
            }
            "ES384" => {
                ES384KeyPair::from_pem(testkit::P384_PRIVATE).map(|k| k.public_key().to_jwk())
            }
            "EdDSA" => {
                Ed25519KeyPair::from_pem(testkit::ED25519_PRIVATE).map(|k| k.public_key().to_jwk())
            }
            other => panic!("no public test key for {other}"),
        };
        let mut jwk: Value = serde_json::from_str(&text.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg);
        jwk["use"] = json!("sig");
        jwk
    }

    fn expect() -> Expectations {
        Expectations {
            issuer: Some(ISSUER.to_string()),
            audiences: Some(vec![AUDIENCE.to_string()]),
            claim: "tenant".to_string(),
            leeway_s: 60,
            require_exp: true,
            max_token_bytes: 16 * 1024,
            policy_claim: None,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_key_type_of_a_jwks_verifies_its_tokens() {
        let algs = [
            "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
        ];
        let mut keys: Vec<Value> = algs
            .iter()
            .map(|alg| public_jwk(alg, &testkit::kid_of(alg)))
            .collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(testkit::HMAC_SECRET);
        for alg in ["HS256", "HS384", "HS512"] {
            keys.push(json!({"kty": "oct", "kid": testkit::kid_of(alg), "alg": alg, "k": secret}));
        }
        let doc = json!({"keys": keys}).to_string();
        let jwks = parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert!(jwks.skipped.is_empty(), "{:?}", jwks.skipped);
        let set = KeySet::new(jwks.keys);
        for alg in testkit::ALL_ALGS {
            let token = Mint::new(alg, "acme").sign();
            let verified = set.verify(&token, &expect(), NOW_S);
            assert_eq!(verified.map(|v| v.tenant), Ok("acme".to_string()), "{alg}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_key_without_alg_takes_its_types_and_unusable_keys_are_skipped_with_a_reason() {
        let mut rsa = public_jwk("RS256", "rsa-1");
        rsa.as_object_mut().map(|o| o.remove("alg"));
        let doc = json!({"keys": [
            rsa,
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AA", "e": "AQAB"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "oct", "kid": "hs-rsa", "alg": "RS256", "k": "c2VjcmV0"},
            "not an object"
        ]});
        let jwks = parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(jwks.keys[0].0.as_deref(), Some("rsa-1"));
        assert_eq!(jwks.keys[0].1.alg(), "RS256");
        assert_eq!(jwks.skipped.len(), 5, "{:?}", jwks.skipped);
        assert!(
            jwks.skipped[0].starts_with("p521: unsupported"),
            "{:?}",
            jwks.skipped
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_fetch_is_due_each_refresh_and_early_for_an_unknown_kid_but_not_too_early() {
        assert!(due(None, 0, 300_000, 30_000, false));
        assert!(!due(Some(1_000), 200_000, 300_000, 30_000, false));
        assert!(due(Some(1_000), 301_000, 300_000, 30_000, false));
        assert!(!due(Some(1_000), 20_000, 300_000, 30_000, true));
        assert!(due(Some(1_000), 31_000, 300_000, 30_000, true));
        // The elected fetcher's claim: last fetch at 1000, next at 301000.
        let claim = PollClaim {
            holder: 3,
            lease_until_ms: 901_000,
            next_poll_ms: 301_000,
        };
        assert_eq!(
            hasten(claim, 5_000, 300_000, 30_000).map(|c| c.next_poll_ms),
            Some(31_000)
        );
        assert_eq!(
            hasten(claim, 90_000, 300_000, 30_000).map(|c| c.next_poll_ms),
            Some(90_000)
        );
        let soon = PollClaim {
            next_poll_ms: 20_000,
            ..claim
        };
        assert_eq!(hasten(soon, 5_000, 300_000, 30_000), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_document_without_a_usable_key_is_refused_whole() {
        for body in [
            &b"not json"[..],
            b"{}",
            b"{\"keys\": []}",
            b"{\"keys\": [{\"kty\": \"RSA\", \"use\": \"enc\"}]}",
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let huge = vec![b' '; MAX_JWKS_BYTES + 1];
        assert!(parse(&huge).is_err());
    }
}
