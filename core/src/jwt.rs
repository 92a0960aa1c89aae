//! JWT verification with `jwt-simple`: the configured keys, chosen by `kid`.
//!
//! Each key is bound to one algorithm when the config is loaded. A token is checked
//! in this order, cheapest first: size, compact shape and header, `kid` lookup, the
//! header's `alg` against the key's `alg` (so `none`, and an HS256 token "signed"
//! with an RSA public key, never reach a verifier), then signature and claims
//! (`exp`, `nbf` with leeway, `iss`, `aud`). Time is passed in, never read here.

use std::collections::HashSet;

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

/// Why a key could not be built from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    UnknownAlg(String),
    BadKey(String),
}

/// One verification key, bound to its algorithm.
pub enum VerifyingKey {
    HS256(HS256Key),
    HS384(HS384Key),
    HS512(HS512Key),
    RS256(RS256PublicKey),
    RS384(RS384PublicKey),
    RS512(RS512PublicKey),
    PS256(PS256PublicKey),
    ES256(ES256PublicKey),
    ES384(ES384PublicKey),
    EdDSA(Ed25519PublicKey),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg())
    }
}

/// The algorithms a key may be configured with.
pub const SUPPORTED: &str = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA";

/// Whether `alg` is one of `SUPPORTED`.
pub fn is_supported_alg(alg: &str) -> bool {
    SUPPORTED.split(", ").any(|a| a == alg)
}

impl VerifyingKey {
    /// An HMAC key for `HS256`, `HS384` or `HS512`.
    pub fn hmac(alg: &str, secret: &[u8]) -> Result<Self, String> {
        Ok(match alg {
            "HS256" => Self::HS256(HS256Key::from_bytes(secret)),
            "HS384" => Self::HS384(HS384Key::from_bytes(secret)),
            "HS512" => Self::HS512(HS512Key::from_bytes(secret)),
            other => {
                return Err(format!(
                    "unsupported alg {other:?} (supported: {SUPPORTED})"
                ))
            }
        })
    }

    /// A public key from PEM (SubjectPublicKeyInfo) for the asymmetric algorithms.
    pub fn public(alg: &str, pem: &str) -> Result<Self, KeyError> {
        fn bad<E: std::fmt::Display>(alg: &str) -> impl FnOnce(E) -> KeyError + '_ {
            move |e| KeyError::BadKey(format!("not a valid {alg} public key in PEM: {e}"))
        }
        let pem = pem.trim();
        Ok(match alg {
            "RS256" => Self::RS256(RS256PublicKey::from_pem(pem).map_err(bad(alg))?),
            "RS384" => Self::RS384(RS384PublicKey::from_pem(pem).map_err(bad(alg))?),
            "RS512" => Self::RS512(RS512PublicKey::from_pem(pem).map_err(bad(alg))?),
            "PS256" => Self::PS256(PS256PublicKey::from_pem(pem).map_err(bad(alg))?),
            "ES256" => Self::ES256(ES256PublicKey::from_pem(pem).map_err(bad(alg))?),
            "ES384" => Self::ES384(ES384PublicKey::from_pem(pem).map_err(bad(alg))?),
            "EdDSA" => Self::EdDSA(Ed25519PublicKey::from_pem(pem).map_err(bad(alg))?),
            other => {
                return Err(KeyError::UnknownAlg(format!(
                    "unsupported alg {other:?} (supported: {SUPPORTED})"
                )))
            }
        })
    }

    /// A public key from one JWK (RFC 7517) of a JWKS document, for `alg`, the
    /// algorithm it is bound to. jwt-simple checks the members against the key type.
    pub fn from_jwk(alg: &str, jwk: &str) -> Result<Self, KeyError> {
        fn bad<E: std::fmt::Display>(alg: &str) -> impl FnOnce(E) -> KeyError + '_ {
            move |e| KeyError::BadKey(format!("not a valid {alg} JWK: {e}"))
        }
        Ok(match alg {
            "RS256" => Self::RS256(RS256PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            "RS384" => Self::RS384(RS384PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            "RS512" => Self::RS512(RS512PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            "PS256" => Self::PS256(PS256PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            "ES256" => Self::ES256(ES256PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            "ES384" => Self::ES384(ES384PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            "EdDSA" => Self::EdDSA(Ed25519PublicKey::from_jwk(jwk).map_err(bad(alg))?),
            other => {
                return Err(KeyError::UnknownAlg(format!(
                    "unsupported alg {other:?} for a public JWK"
                )))
            }
        })
    }

    /// The JOSE name of the algorithm this key verifies.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::HS256(_) => "HS256",
            Self::HS384(_) => "HS384",
            Self::HS512(_) => "HS512",
            Self::RS256(_) => "RS256",
            Self::RS384(_) => "RS384",
            Self::RS512(_) => "RS512",
            Self::PS256(_) => "PS256",
            Self::ES256(_) => "ES256",
            Self::ES384(_) => "ES384",
            Self::EdDSA(_) => "EdDSA",
        }
    }

    fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<Map<String, Value>>, jwt_simple::Error> {
        let options = Some(options);
        match self {
            Self::HS256(k) => k.verify_token(token, options),
            Self::HS384(k) => k.verify_token(token, options),
            Self::HS512(k) => k.verify_token(token, options),
            Self::RS256(k) => k.verify_token(token, options),
            Self::RS384(k) => k.verify_token(token, options),
            Self::RS512(k) => k.verify_token(token, options),
            Self::PS256(k) => k.verify_token(token, options),
            Self::ES256(k) => k.verify_token(token, options),
            Self::ES384(k) => k.verify_token(token, options),
            Self::EdDSA(k) => k.verify_token(token, options),
        }
    }
}

/// The configured keys, in config order, each with its optional `kid`.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<(Option<String>, VerifyingKey)>,
}

/// Why a token was refused. The text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    TooLarge,
    Malformed,
    UnknownKid,
    AlgMismatch,
    BadSignature,
    Expired,
    MissingExp,
    NotYetValid,
    IssuerMismatch,
    AudienceMismatch,
    MissingClaim,
    InvalidClaim,
    /// Keys come only from a JWKS and none has arrived yet.
    KeysNotLoaded,
    Invalid(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::TooLarge => "token is too large",
            Self::Malformed => "token is malformed",
            Self::UnknownKid => "token key id is unknown",
            Self::AlgMismatch => "token algorithm does not match its key",
            Self::BadSignature => "token signature is invalid",
            Self::Expired => "token has expired",
            Self::MissingExp => "token has no expiry",
            Self::NotYetValid => "token is not valid yet",
            Self::IssuerMismatch => "token issuer is not accepted",
            Self::AudienceMismatch => "token audience is not accepted",
            Self::MissingClaim => "token carries no tenant claim",
            Self::InvalidClaim => "token tenant claim is not a valid tenant id",
            Self::KeysNotLoaded => "the signing keys are not loaded yet",
            Self::Invalid(reason) => return write!(f, "token is invalid: {reason}"),
        };
        f.write_str(s)
    }
}

/// What a verified token establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub tenant: String,
    /// Expiry, Unix seconds; `None` only where `require_exp` is off.
    pub exp_s: Option<u64>,
    /// The policy claim (`Expectations::policy_claim`), unread, where the token has it.
    pub policy: Option<Value>,
}

/// The checks applied to every token besides its signature.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub claim: String,
    pub leeway_s: u64,
    pub require_exp: bool,
    pub max_token_bytes: usize,
    /// The name of the object claim that carries a policy, where one may.
    pub policy_claim: Option<String>,
}

impl KeySet {
    pub fn new(keys: Vec<(Option<String>, VerifyingKey)>) -> Self {
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key a token names by `kid`; a token without `kid` is accepted only where
    /// exactly one key is configured.
    fn select(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| key),
            None if self.keys.len() == 1 => self.keys.first().map(|(_, key)| key),
            None => None,
        }
    }

    /// Verifies `token` at `now_s` (Unix seconds) and extracts the tenant claim.
    pub fn verify(
        &self,
        token: &str,
        expect: &Expectations,
        now_s: u64,
    ) -> Result<VerifiedToken, TokenError> {
        if token.len() > expect.max_token_bytes {
            return Err(TokenError::TooLarge);
        }
        let metadata = Token::decode_metadata(token).map_err(|_| TokenError::Malformed)?;
        let key = self
            .select(metadata.key_id())
            .ok_or(TokenError::UnknownKid)?;
        let alg = metadata.algorithm();
        // jwt-simple also accepts "Ed25519" for EdDSA; the key's own name is the contract.
        if alg != key.alg() {
            return Err(TokenError::AlgMismatch);
        }
        let options = VerificationOptions {
            allowed_issuers: expect.issuer.as_ref().map(|i| HashSet::from([i.clone()])),
            allowed_audiences: expect
                .audiences
                .as_ref()
                .map(|a| a.iter().cloned().collect()),
            time_tolerance: Some(Duration::from_secs(expect.leeway_s)),
            max_token_length: Some(expect.max_token_bytes),
            artificial_time: Some(Duration::from_secs(now_s)),
            ..Default::default()
        };
        let claims = key.verify(token, options).map_err(classify)?;
        let exp_s = claims.expires_at.map(|d| d.as_secs());
        if expect.require_exp && exp_s.is_none() {
            return Err(TokenError::MissingExp);
        }
        let policy = expect
            .policy_claim
            .as_ref()
            .and_then(|name| claims.custom.get(name).cloned());
        let tenant = match expect.claim.as_str() {
            "sub" => claims.subject,
            name => match claims.custom.get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(TokenError::InvalidClaim),
                None => None,
            },
        }
        .ok_or(TokenError::MissingClaim)?;
        if !crate::config::is_valid_tenant_id(&tenant) {
            return Err(TokenError::InvalidClaim);
        }
        Ok(VerifiedToken {
            tenant,
            exp_s,
            policy,
        })
    }
}

fn classify(err: jwt_simple::Error) -> TokenError {
    use jwt_simple::JWTError as E;
    match err.downcast_ref::<E>() {
        Some(E::TokenHasExpired) => TokenError::Expired,
        Some(E::TokenNotValidYet) | Some(E::ClockDrift) => TokenError::NotYetValid,
        Some(E::RequiredIssuerMismatch) | Some(E::RequiredIssuerMissing) => {
            TokenError::IssuerMismatch
        }
        Some(E::RequiredAudienceMismatch) | Some(E::RequiredAudienceMissing) => {
            TokenError::AudienceMismatch
        }
        Some(E::AlgorithmMismatch) => TokenError::AlgMismatch,
        Some(E::TokenTooLong) => TokenError::TooLarge,
        Some(E::InvalidAuthenticationTag) | Some(E::InvalidSignature) => TokenError::BadSignature,
        // Not three dot-separated parts (the header alone decoded).
        Some(E::CompactEncodingError) => TokenError::Malformed,
        Some(e) => TokenError::Invalid(e.to_string()),
        None => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{
        self, b64url, compact, jwt_config, kid_of, Mint, ALL_ALGS, AUDIENCE, LEEWAY_S, NOW_S,
        RSA2_PRIVATE, RSA_PUBLIC,
    };
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Verifies `token` with the keys and expectations of `testkit::config_json`.
    fn verify(token: &str) -> Result<VerifiedToken, TokenError> {
        verify_at(token, NOW_S)
    }

    fn verify_at(token: &str, now_s: u64) -> Result<VerifiedToken, TokenError> {
        let jwt = jwt_config();
        jwt.keys.verify(token, &jwt.expectations(), now_s)
    }

    /// Verifies `token` with the configured keys and the expectations changed by `f`.
    fn verify_expecting(
        token: &str,
        f: impl FnOnce(&mut Expectations),
    ) -> Result<VerifiedToken, TokenError> {
        let jwt = jwt_config();
        let mut expect = jwt.expectations();
        f(&mut expect);
        jwt.keys.verify(token, &expect, NOW_S)
    }

    fn tenant(result: Result<VerifiedToken, TokenError>) -> String {
        match result {
            Ok(verified) => verified.tenant,
            Err(e) => panic!("token refused: {e:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_of_every_supported_algorithm_is_accepted_with_its_tenant() {
        for alg in ALL_ALGS {
            let token = Mint::new(alg, "acme").sign();
            assert_eq!(
                verify(&token),
                Ok(VerifiedToken {
                    tenant: "acme".into(),
                    exp_s: Some(NOW_S + 3600),
                    policy: None
                }),
                "{alg}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_alg_none_token_is_refused_before_any_verifier() {
        let token = compact(
            &json!({"alg": "none", "typ": "JWT", "kid": kid_of("HS256")}),
            &json!({
                "tenant": "acme", "iss": testkit::ISSUER, "aud": AUDIENCE,
                "iat": NOW_S, "exp": NOW_S + 3600
            }),
            "",
        );
        assert_eq!(verify(&token), Err(TokenError::AlgMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
        // The classic confusion attack: "sign" with HMAC, using the RSA public key
        // (known to everyone) as the secret, and name the RSA key.
        let mut mint = Mint::new("HS256", "acme");
        mint.kid = Some(kid_of("RS256"));
        mint.hmac_secret = RSA_PUBLIC.as_bytes().to_vec();
        assert_eq!(verify(&mint.sign()), Err(TokenError::AlgMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_naming_a_key_of_another_algorithm_is_refused() {
        let mut mint = Mint::new("ES256", "acme");
        mint.kid = Some(kid_of("ES384"));
        assert_eq!(verify(&mint.sign()), Err(TokenError::AlgMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_expired_beyond_the_leeway_is_refused() {
        let mut mint = Mint::new("HS256", "acme");
        mint.issued_at = Some(NOW_S - 3600);
        mint.expires_at = Some(NOW_S - LEEWAY_S - 1);
        assert_eq!(verify(&mint.sign()), Err(TokenError::Expired));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_expired_within_the_leeway_is_accepted() {
        let mut mint = Mint::new("HS256", "acme");
        mint.issued_at = Some(NOW_S - 3600);
        mint.expires_at = Some(NOW_S - LEEWAY_S);
        assert_eq!(tenant(verify(&mint.sign())), "acme");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_not_valid_until_beyond_the_leeway_is_refused() {
        let mut mint = Mint::new("HS256", "acme");
        mint.not_before = Some(NOW_S + LEEWAY_S + 1);
        assert_eq!(verify(&mint.sign()), Err(TokenError::NotYetValid));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_not_valid_until_within_the_leeway_is_accepted() {
        let mut mint = Mint::new("HS256", "acme");
        mint.not_before = Some(NOW_S + LEEWAY_S);
        assert_eq!(tenant(verify(&mint.sign())), "acme");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_issued_in_the_future_beyond_the_leeway_is_refused() {
        let mut mint = Mint::new("HS256", "acme");
        mint.issued_at = Some(NOW_S + LEEWAY_S + 1);
        assert_eq!(verify(&mint.sign()), Err(TokenError::NotYetValid));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_from_another_issuer_is_refused() {
        let mut mint = Mint::new("RS256", "acme");
        mint.issuer = Some("https://evil.example.com".into());
        assert_eq!(verify(&mint.sign()), Err(TokenError::IssuerMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_issuer_is_refused_when_one_is_configured() {
        let mut mint = Mint::new("HS256", "acme");
        mint.issuer = None;
        assert_eq!(verify(&mint.sign()), Err(TokenError::IssuerMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_issuer_is_accepted_when_none_is_configured() {
        let mut mint = Mint::new("HS256", "acme");
        mint.issuer = None;
        let accepted = verify_expecting(&mint.sign(), |e| e.issuer = None);
        assert_eq!(tenant(accepted), "acme");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_for_another_audience_is_refused() {
        let mut mint = Mint::new("ES256", "acme");
        mint.audience = Some("billing".into());
        assert_eq!(verify(&mint.sign()), Err(TokenError::AudienceMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_audience_is_refused_when_one_is_configured() {
        let mut mint = Mint::new("HS256", "acme");
        mint.audience = None;
        assert_eq!(verify(&mint.sign()), Err(TokenError::AudienceMismatch));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_naming_an_unknown_kid_is_refused() {
        let mut mint = Mint::new("HS256", "acme");
        mint.kid = Some("hs-retired".into());
        assert_eq!(verify(&mint.sign()), Err(TokenError::UnknownKid));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_kid_is_refused_when_several_keys_are_configured() {
        let mut mint = Mint::new("HS256", "acme");
        mint.kid = None;
        assert_eq!(verify(&mint.sign()), Err(TokenError::UnknownKid));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_kid_is_verified_by_the_only_key() {
        let public = VerifyingKey::public("EdDSA", testkit::ED25519_PUBLIC).unwrap();
        let keys = KeySet::new(vec![(None, public)]);
        let mut mint = Mint::new("EdDSA", "acme");
        mint.kid = None;
        let expect = jwt_config().expectations();
        assert_eq!(tenant(keys.verify(&mint.sign(), &expect, NOW_S)), "acme");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_signed_by_another_rsa_key_under_a_trusted_kid_is_refused() {
        let mut mint = Mint::new("RS256", "acme");
        mint.rsa_private = RSA2_PRIVATE;
        assert_eq!(verify(&mint.sign()), Err(TokenError::BadSignature));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_whose_payload_was_changed_after_signing_is_refused() {
        for alg in ["HS256", "RS256", "ES256"] {
            let token = Mint::new(alg, "free").sign();
            let parts: Vec<&str> = token.split('.').collect();
            let payload =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
                    .unwrap();
            let mut claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            claims["tenant"] = json!("acme");
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                b64url(claims.to_string().as_bytes()),
                parts[2]
            );
            assert_eq!(verify(&forged), Err(TokenError::BadSignature), "{alg}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_header_that_is_not_base64url_is_malformed() {
        let token = Mint::new("HS256", "acme").sign();
        let (_, rest) = token.split_once('.').unwrap();
        assert_eq!(verify(&format!("e30*!.{rest}")), Err(TokenError::Malformed));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_header_that_is_not_json_is_malformed() {
        let token = Mint::new("HS256", "acme").sign();
        let (_, rest) = token.split_once('.').unwrap();
        let header = b64url(b"not json");
        assert_eq!(
            verify(&format!("{header}.{rest}")),
            Err(TokenError::Malformed)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_of_two_parts_is_malformed() {
        let token = Mint::new("HS256", "acme").sign();
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        assert_eq!(verify(unsigned), Err(TokenError::Malformed));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_of_four_parts_is_malformed() {
        let token = Mint::new("HS256", "acme").sign();
        assert_eq!(verify(&format!("{token}.e30")), Err(TokenError::Malformed));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_longer_than_max_token_bytes_is_refused_unread() {
        let token = Mint::new("HS256", "acme").sign();
        let limit = token.len() - 1;
        assert_eq!(
            verify_expecting(&token, |e| e.max_token_bytes = limit),
            Err(TokenError::TooLarge)
        );
        // Size is checked first: even garbage of that size is "too large".
        assert_eq!(
            verify_expecting(&"x".repeat(limit + 1), |e| e.max_token_bytes = limit),
            Err(TokenError::TooLarge)
        );
        assert_eq!(
            tenant(verify_expecting(&token, |e| e.max_token_bytes = token.len())),
            "acme"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_exp_is_refused_when_exp_is_required() {
        let mut mint = Mint::new("HS256", "acme");
        mint.expires_at = None;
        assert_eq!(verify(&mint.sign()), Err(TokenError::MissingExp));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_exp_is_accepted_when_exp_is_not_required() {
        let mut mint = Mint::new("HS256", "acme");
        mint.expires_at = None;
        assert_eq!(
            verify_expecting(&mint.sign(), |e| e.require_exp = false),
            Ok(VerifiedToken {
                tenant: "acme".into(),
                exp_s: None,
                policy: None
            })
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_without_the_tenant_claim_is_refused() {
        let mut mint = Mint::new("HS256", "acme");
        mint.custom.clear();
        mint.custom.insert("org".into(), json!("acme"));
        assert_eq!(verify(&mint.sign()), Err(TokenError::MissingClaim));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_claim_that_is_not_a_string_is_refused() {
        for value in [
            json!(42),
            json!(["acme"]),
            json!(null),
            json!({"id": "acme"}),
        ] {
            let mut mint = Mint::new("HS256", "acme");
            mint.custom.insert("tenant".into(), value.clone());
            assert_eq!(
                verify(&mint.sign()),
                Err(TokenError::InvalidClaim),
                "{value}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_claim_that_is_not_a_valid_tenant_id_is_refused() {
        let too_long = "a".repeat(65);
        for bad in ["acme.eu", "", "ac me", "acme\n", too_long.as_str()] {
            let token = Mint::new("HS256", bad).sign();
            assert_eq!(verify(&token), Err(TokenError::InvalidClaim), "{bad:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_claim_sub_takes_the_tenant_from_the_subject() {
        let mut mint = Mint::new("RS256", "not-this-one");
        mint.subject = Some("acme".into());
        let accepted = verify_expecting(&mint.sign(), |e| e.claim = "sub".into());
        assert_eq!(tenant(accepted), "acme");

        mint.subject = None;
        let refused = verify_expecting(&mint.sign(), |e| e.claim = "sub".into());
        assert_eq!(refused, Err(TokenError::MissingClaim));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_custom_claim_name_is_read() {
        let mut mint = Mint::new("HS384", "ignored");
        mint.custom.insert("org_id".into(), json!("globex"));
        let accepted = verify_expecting(&mint.sign(), |e| e.claim = "org_id".into());
        assert_eq!(tenant(accepted), "globex");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_same_token_is_judged_by_the_time_passed_in() {
        let token = Mint::new("HS512", "acme").sign();
        assert_eq!(tenant(verify_at(&token, NOW_S + 3600 + LEEWAY_S)), "acme");
        assert_eq!(
            verify_at(&token, NOW_S + 3600 + LEEWAY_S + 1),
            Err(TokenError::Expired)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_algorithm_cannot_be_configured() {
        assert!(matches!(
            VerifyingKey::public("ES512", testkit::P256_PUBLIC),
            Err(KeyError::UnknownAlg(_))
        ));
        assert!(VerifyingKey::hmac("HS1", b"0123456789abcdef").is_err());
        assert_eq!(
            VerifyingKey::public("PS256", RSA_PUBLIC).unwrap().alg(),
            "PS256"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refusals_read_as_client_safe_text() {
        assert_eq!(TokenError::Expired.to_string(), "token has expired");
        assert_eq!(
            TokenError::Invalid("x".into()).to_string(),
            "token is invalid: x"
        );
    }
}
