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

const SUPPORTED: &str = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA";

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
}

impl KeySet {
    pub fn new(keys: Vec<(Option<String>, VerifyingKey)>) -> Self {
        Self { keys }
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
        Ok(VerifiedToken { tenant, exp_s })
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
        Some(e) => TokenError::Invalid(e.to_string()),
        None => TokenError::Malformed,
    }
}
