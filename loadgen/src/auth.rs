//! JWTs the load generator signs for its tenants, with the scenario's keys (for the
//! demo, the public test keys in `testdata/keys`: never use them anywhere else).
//!
//! A tenant's tokens are signed once, at start, valid for `expires_in_s`: the filter
//! caches verified tokens, so the algorithm does not change the load's cost.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::{Map, Value};

/// What every token says besides its tenant.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim naming the tenant.
    pub claim: String,
    pub expires_in: Duration,
}

/// A key as the scenario gives it.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// `secret_base64`, for HS256/384/512.
    Secret(String),
    /// A private key in PEM, for the other algorithms.
    Pem(String),
}

enum Key {
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
    Rs256(RS256KeyPair),
    Rs384(RS384KeyPair),
    Rs512(RS512KeyPair),
    Ps256(PS256KeyPair),
    Es256(ES256KeyPair),
    Es384(ES384KeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A parsed signing key, its `kid` already set on it.
pub struct Signer {
    kid: Option<String>,
    alg: String,
    key: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Parses `material` for `alg`. The error names the field at fault and why.
    pub fn new(
        alg: &str,
        kid: Option<String>,
        material: KeyMaterial,
    ) -> Result<Signer, (&'static str, String)> {
        let pem_err = |e: jwt_simple::Error| ("pem_file", format!("not a {alg} private key: {e}"));
        let id = kid.clone();
        macro_rules! with_kid {
            ($key:expr) => {
                match &id {
                    Some(kid) => $key.with_key_id(kid),
                    None => $key,
                }
            };
        }
        let key = match (alg, &material) {
            ("HS256" | "HS384" | "HS512", KeyMaterial::Secret(b64)) => {
                let secret = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| ("secret_base64", format!("not base64: {e}")))?;
                if secret.is_empty() {
                    return Err(("secret_base64", "must not be empty".to_string()));
                }
                match alg {
                    "HS256" => Key::Hs256(with_kid!(HS256Key::from_bytes(&secret))),
                    "HS384" => Key::Hs384(with_kid!(HS384Key::from_bytes(&secret))),
                    _ => Key::Hs512(with_kid!(HS512Key::from_bytes(&secret))),
                }
            }
            ("RS256", KeyMaterial::Pem(pem)) => {
                Key::Rs256(with_kid!(RS256KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("RS384", KeyMaterial::Pem(pem)) => {
                Key::Rs384(with_kid!(RS384KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("RS512", KeyMaterial::Pem(pem)) => {
                Key::Rs512(with_kid!(RS512KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("PS256", KeyMaterial::Pem(pem)) => {
                Key::Ps256(with_kid!(PS256KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("ES256", KeyMaterial::Pem(pem)) => {
                Key::Es256(with_kid!(ES256KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("ES384", KeyMaterial::Pem(pem)) => {
                Key::Es384(with_kid!(ES384KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("EdDSA", KeyMaterial::Pem(pem)) => {
                Key::EdDsa(with_kid!(Ed25519KeyPair::from_pem(pem).map_err(pem_err)?))
            }
            ("HS256" | "HS384" | "HS512", KeyMaterial::Pem(_)) => {
                return Err(("pem_file", format!("{alg} takes secret_base64")))
            }
            (
                "RS256" | "RS384" | "RS512" | "PS256" | "ES256" | "ES384" | "EdDSA",
                KeyMaterial::Secret(_),
            ) => return Err(("secret_base64", format!("{alg} takes pem_file"))),
            _ => {
                return Err((
                    "alg",
                    format!(
                        "unsupported {alg:?} (HS256/384/512, RS256/384/512, PS256, ES256, ES384, EdDSA)"
                    ),
                ))
            }
        };
        Ok(Signer {
            kid,
            alg: alg.to_string(),
            key,
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// A token naming `tenant` in `claims.claim`, valid from now for `claims.expires_in`.
    pub fn mint(&self, claims: &TokenClaims, tenant: &str) -> Result<String, String> {
        let mut custom = Map::new();
        custom.insert(claims.claim.clone(), Value::String(tenant.to_string()));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut c = Claims::with_custom_claims(
            custom,
            jwt_simple::prelude::Duration::from_secs(claims.expires_in.as_secs()),
        );
        c.issued_at = Some(jwt_simple::prelude::Duration::from_secs(now));
        c.expires_at = Some(jwt_simple::prelude::Duration::from_secs(
            now + claims.expires_in.as_secs(),
        ));
        c.invalid_before = None;
        c.issuer = claims.issuer.clone();
        c.audiences = claims.audience.clone().map(Audiences::AsString);
        let signed = match &self.key {
            Key::Hs256(k) => k.authenticate(c),
            Key::Hs384(k) => k.authenticate(c),
            Key::Hs512(k) => k.authenticate(c),
            Key::Rs256(k) => k.sign(c),
            Key::Rs384(k) => k.sign(c),
            Key::Rs512(k) => k.sign(c),
            Key::Ps256(k) => k.sign(c),
            Key::Es256(k) => k.sign(c),
            Key::Es384(k) => k.sign(c),
            Key::EdDsa(k) => k.sign(c),
        };
        signed.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            issuer: Some("https://auth.example.com".into()),
            audience: Some("llm-gateway".into()),
            claim: "tenant".into(),
            expires_in: Duration::from_secs(600),
        }
    }

    #[test]
    fn an_hs256_token_verifies_with_the_secret_and_names_the_tenant() {
        let signer = Signer::new(
            "HS256",
            Some("hs-1".into()),
            KeyMaterial::Secret("ZmFpcmdhdGUtZGVtby1zZWNyZXQtZG8tbm90LXVzZSE=".into()),
        )
        .unwrap();
        let token = signer.mint(&claims(), "globex").unwrap();
        let key = HS256Key::from_bytes(b"fairgate-demo-secret-do-not-use!");
        let opts = VerificationOptions {
            allowed_issuers: Some(HashSet::from_strings(&["https://auth.example.com"])),
            allowed_audiences: Some(HashSet::from_strings(&["llm-gateway"])),
            ..Default::default()
        };
        let verified = key
            .verify_token::<Map<String, Value>>(&token, Some(opts))
            .unwrap();
        assert_eq!(verified.custom["tenant"], "globex");
        let header = Token::decode_metadata(&token).unwrap();
        assert_eq!(header.key_id(), Some("hs-1"));
        assert_eq!(header.algorithm(), "HS256");
    }

    #[test]
    fn an_rs256_token_verifies_with_the_test_public_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys");
        let private = std::fs::read_to_string(dir.join("rsa.key.pem")).unwrap();
        let public = std::fs::read_to_string(dir.join("rsa.pub.pem")).unwrap();
        let signer = Signer::new("RS256", Some("rs-1".into()), KeyMaterial::Pem(private)).unwrap();
        let token = signer.mint(&claims(), "acme").unwrap();
        let key = RS256PublicKey::from_pem(&public).unwrap();
        let verified = key
            .verify_token::<Map<String, Value>>(&token, None)
            .unwrap();
        assert_eq!(verified.custom["tenant"], "acme");
    }

    #[test]
    fn mismatched_key_material_is_refused_with_the_field() {
        let e = Signer::new("RS256", None, KeyMaterial::Secret("YQ==".into())).unwrap_err();
        assert_eq!(e.0, "secret_base64");
        let e = Signer::new("RS256", None, KeyMaterial::Pem("garbage".into())).unwrap_err();
        assert_eq!(e.0, "pem_file");
        let e = Signer::new("none", None, KeyMaterial::Secret("YQ==".into())).unwrap_err();
        assert_eq!(e.0, "alg");
    }
}
