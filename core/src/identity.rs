//! Tenant identity: who is asking, from a verified JWT or a trusted header.
//!
//! - `jwt` alone: the tenant is the configured claim of the `authorization: Bearer`
//!   token, verified against the key set (see `jwt`), remembered in the per-VM
//!   `VerifiedTokenCache` until the token expires.
//! - `header` alone: the tenant is that header's value.
//! - both: the header is believed only when `trust_header` is set (an authenticator
//!   in front of Envoy wrote it); otherwise the token decides.
//!
//! A tenant id from any source must be a valid id (`config::is_valid_tenant_id`).
//!
//! With `jwt.policy_claim`, the token of a tenant the config does not list may carry
//! its policy (`policy_claim`): read once, when the token is verified, and cached
//! with it; a claim out of bounds makes the token invalid.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::config::{
    is_valid_tenant_id, IdentityConfig, JwksConfig, JwtConfig, TenantPolicy, Tenants,
};
use crate::jwt::{Expectations, KeySet, TokenError, VerifiedToken};
use crate::token_cache::VerifiedTokenCache;

/// Tokens with no `exp` (only where `require_exp` is off) are re-verified this often.
const NO_EXP_CACHE_TTL_S: u64 = 300;

/// Read access to the request's headers; names are lower-case.
pub trait RequestHeaders {
    fn header(&self, name: &str) -> Option<String>;
}

/// Why no tenant could be established: both are a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// Nothing that identifies a tenant was sent (`missing_tenant`).
    Missing(String),
    /// Something was sent and it does not hold (`invalid_tenant_token`).
    Invalid(String),
}

/// Who a request is from: its tenant and, for a tenant the config does not list,
/// the policy its token carries, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub tenant: Rc<str>,
    pub claimed: Option<Rc<TenantPolicy>>,
}

/// Resolves the tenant of requests for one VM: the config plus that VM's token cache.
#[derive(Debug)]
pub struct TenantIdentifier {
    header: Option<String>,
    trust_header: bool,
    jwt: Option<JwtVerifier>,
}

#[derive(Debug)]
struct JwtVerifier {
    config: JwtConfig,
    expect: Expectations,
    cache: VerifiedTokenCache<Identity>,
    /// The configured tenants, whose tokens' policy claims are not read.
    listed: BTreeSet<Rc<str>>,
    /// The keys fetched from `jwks`, once a fetch succeeded.
    fetched: Option<KeySet>,
    /// A token named a `kid` no key has: the JWKS may have rotated.
    wants_refetch: bool,
}

impl TenantIdentifier {
    /// `cache_seed` keys the token cache's hash; draw it at random per VM.
    pub fn new(config: IdentityConfig, tenants: &Tenants, cache_seed: [u8; 16]) -> Self {
        let jwt = config.jwt.map(|jwt| JwtVerifier {
            expect: jwt.expectations(),
            cache: VerifiedTokenCache::new(jwt.cache_size, cache_seed),
            listed: tenants.by_name.keys().cloned().collect(),
            config: jwt,
            fetched: None,
            wants_refetch: false,
        });
        Self {
            header: config.header,
            trust_header: config.trust_header,
            jwt,
        }
    }

    /// Where keys are fetched from, if they are (`identity.jwt.jwks`).
    pub fn jwks(&self) -> Option<&JwksConfig> {
        self.jwt.as_ref().and_then(|j| j.config.jwks.as_ref())
    }

    /// The keys of the latest good JWKS fetch, in place of the previous ones; the
    /// tokens verified so far are checked again (a key may be gone).
    pub fn set_fetched_keys(&mut self, keys: KeySet) {
        if let Some(jwt) = self.jwt.as_mut() {
            jwt.fetched = Some(keys);
            jwt.cache.clear();
        }
    }

    /// Whether a token named an unknown `kid` since the last call: the JWKS should be
    /// fetched again early.
    pub fn take_refetch_wish(&mut self) -> bool {
        self.jwt
            .as_mut()
            .is_some_and(|j| std::mem::take(&mut j.wants_refetch))
    }

    /// The headers `identify` may read, so the glue can fetch exactly those.
    pub fn headers_read(&self) -> impl Iterator<Item = &str> {
        let header = self
            .header
            .as_deref()
            .filter(|_| self.jwt.is_none() || self.trust_header);
        header
            .into_iter()
            .chain(self.jwt.as_ref().map(|_| "authorization"))
    }

    /// Who sent the request whose headers are `headers`, at `now_s` (Unix s).
    pub fn identify(
        &mut self,
        headers: &impl RequestHeaders,
        now_s: u64,
    ) -> Result<Identity, IdentityError> {
        let header_decides = self.jwt.is_none() || self.trust_header;
        if let Some(name) = self.header.as_deref().filter(|_| header_decides) {
            match headers.header(name) {
                Some(value) => {
                    let value = value.trim();
                    return if is_valid_tenant_id(value) {
                        Ok(Identity {
                            tenant: Rc::from(value),
                            claimed: None,
                        })
                    } else {
                        Err(IdentityError::Invalid(format!(
                            "{name} is not a valid tenant id"
                        )))
                    };
                }
                None if self.jwt.is_none() => {
                    return Err(IdentityError::Missing(format!("no {name} header")));
                }
                None => {}
            }
        }
        let Some(jwt) = self.jwt.as_mut() else {
            return Err(IdentityError::Missing("no identity configured".into()));
        };
        let Some(authorization) = headers.header("authorization") else {
            return Err(IdentityError::Missing(
                "no authorization bearer token".into(),
            ));
        };
        let token = bearer_token(&authorization)
            .ok_or_else(|| IdentityError::Invalid("authorization is not a Bearer token".into()))?;
        jwt.identity_of(token, now_s)
    }
}

impl JwtVerifier {
    fn identity_of(&mut self, token: &str, now_s: u64) -> Result<Identity, IdentityError> {
        let invalid = |e: TokenError| IdentityError::Invalid(e.to_string());
        if token.len() > self.expect.max_token_bytes {
            return Err(invalid(TokenError::TooLarge));
        }
        if let Some(identity) = self.cache.get(token, now_s) {
            return Ok(identity);
        }
        let inline = &self.config.keys;
        let verified = match &self.fetched {
            // The fetched keys first; a `kid` they lack may be a configured one.
            Some(fetched) => match fetched.verify(token, &self.expect, now_s) {
                Err(TokenError::UnknownKid) if !inline.is_empty() => {
                    inline.verify(token, &self.expect, now_s)
                }
                other => other,
            },
            None if inline.is_empty() => Err(TokenError::KeysNotLoaded),
            None => inline.verify(token, &self.expect, now_s),
        };
        if verified == Err(TokenError::UnknownKid) && self.config.jwks.is_some() {
            self.wants_refetch = true;
        }
        let verified = verified.map_err(invalid)?;
        let valid_until = match verified.exp_s {
            Some(exp) => exp.saturating_add(self.expect.leeway_s),
            None => now_s.saturating_add(NO_EXP_CACHE_TTL_S),
        };
        let identity = self.identity(verified)?;
        self.cache.insert(token, identity.clone(), valid_until);
        Ok(identity)
    }

    /// The identity a verified token establishes: its tenant, and the policy its
    /// claim gives a tenant the config does not list.
    fn identity(&self, verified: VerifiedToken) -> Result<Identity, IdentityError> {
        let tenant: Rc<str> = Rc::from(verified.tenant);
        let claimed = match (&self.config.policy_claim, verified.policy) {
            (Some(claim), Some(value)) if !self.listed.contains(&tenant) => Some(Rc::new(
                claim.policy(&value).map_err(IdentityError::Invalid)?,
            )),
            _ => None,
        };
        Ok(Identity { tenant, claimed })
    }
}

/// The token of an `authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, config_json, Headers, Mint, LEEWAY_S, NOW_S};
    use serde_json::{json, Value};
    use wasm_bindgen_test::wasm_bindgen_test;

    const SEED: [u8; 16] = [3; 16];

    /// An identifier for `config_json()` with its `identity` section changed by `f`.
    fn identifier_with(f: impl FnOnce(&mut Value)) -> TenantIdentifier {
        let mut config = config_json();
        f(&mut config["identity"]);
        let config = testkit::config(&config);
        TenantIdentifier::new(config.identity, &config.tenants, SEED)
    }

    /// JWT only, keys from a JWKS alone (none configured).
    fn jwks_only() -> TenantIdentifier {
        identifier_with(|identity| {
            identity.as_object_mut().unwrap().remove("header");
            identity["jwt"]["keys"] = json!([]);
            identity["jwt"]["jwks"] = json!({"cluster": "idp", "refresh_s": 60});
        })
    }

    /// The RS256 test key, as a fetched key set under `kid`.
    fn fetched_rsa(kid: &str) -> KeySet {
        let key = crate::jwt::VerifyingKey::public("RS256", testkit::RSA_PUBLIC).unwrap();
        KeySet::new(vec![(Some(kid.to_string()), key)])
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fetched_keys_verify_and_an_unknown_kid_asks_for_an_early_refetch() {
        let mut id = jwks_only();
        assert_eq!(id.jwks().map(|j| j.refresh_s), Some(60));
        let mut mint = Mint::new("RS256", "acme");
        mint.kid = Some("rotated-1".into());
        let token = Headers::bearer(&mint.sign());
        let before = id.identify(&token, NOW_S);
        assert_eq!(
            before,
            Err(IdentityError::Invalid(
                "the signing keys are not loaded yet".into()
            ))
        );
        assert!(!id.take_refetch_wish());
        id.set_fetched_keys(fetched_rsa("rotated-1"));
        assert_eq!(
            id.identify(&token, NOW_S).map(|t| t.tenant.to_string()),
            Ok("acme".into())
        );
        // Rotated away: the cached token is checked again, its kid is unknown now.
        id.set_fetched_keys(fetched_rsa("rotated-2"));
        assert!(id.identify(&token, NOW_S).is_err());
        assert!(id.take_refetch_wish());
        assert!(!id.take_refetch_wish(), "taken once");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn configured_keys_still_verify_beside_fetched_ones() {
        let mut id = identifier_with(|identity| {
            identity.as_object_mut().unwrap().remove("header");
            identity["jwt"]["jwks"] = json!({"cluster": "idp"});
        });
        id.set_fetched_keys(fetched_rsa("fetched"));
        let configured = Headers::bearer(&Mint::new("HS256", "globex").sign());
        assert_eq!(
            id.identify(&configured, NOW_S)
                .map(|t| t.tenant.to_string()),
            Ok("globex".into())
        );
        assert!(!id.take_refetch_wish());
    }

    /// JWT only.
    fn jwt_only() -> TenantIdentifier {
        identifier_with(|identity| {
            identity.as_object_mut().unwrap().remove("header");
        })
    }

    /// Header only.
    fn header_only() -> TenantIdentifier {
        identifier_with(|identity| {
            identity.as_object_mut().unwrap().remove("jwt");
        })
    }

    /// JWT and header, the header believed only when `trust_header`.
    fn both(trust_header: bool) -> TenantIdentifier {
        identifier_with(|identity| identity["trust_header"] = json!(trust_header))
    }

    fn acme_token() -> String {
        Mint::new("HS256", "acme").sign()
    }

    fn identified(
        identifier: &mut TenantIdentifier,
        headers: &Headers,
        now_s: u64,
    ) -> Result<String, IdentityError> {
        identifier
            .identify(headers, now_s)
            .map(|identity| identity.tenant.to_string())
    }

    fn is_missing(result: &Result<String, IdentityError>) -> bool {
        matches!(result, Err(IdentityError::Missing(_)))
    }

    fn is_invalid(result: &Result<String, IdentityError>) -> bool {
        matches!(result, Err(IdentityError::Invalid(_)))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_bearer_token_identifies_its_tenant() {
        let mut id = jwt_only();
        assert_eq!(
            identified(&mut id, &Headers::bearer(&acme_token()), NOW_S),
            Ok("acme".into())
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = acme_token();
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            // A fresh identifier each time, so that no answer comes from the cache.
            let mut id = jwt_only();
            let headers = Headers::new(&[("authorization", &format!("{scheme} {token}"))]);
            assert_eq!(
                identified(&mut id, &headers, NOW_S),
                Ok("acme".into()),
                "{scheme}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn no_authorization_header_is_a_missing_identity() {
        let mut id = jwt_only();
        assert!(is_missing(&identified(&mut id, &Headers::default(), NOW_S)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_authorization_that_is_not_a_bearer_token_is_invalid() {
        let mut id = jwt_only();
        let token = acme_token();
        for value in [
            "Basic YWNtZTpzZWNyZXQ=",
            "Bearer",
            "Bearer   ",
            token.as_str(),
        ] {
            let headers = Headers::new(&[("authorization", value)]);
            assert!(
                is_invalid(&identified(&mut id, &headers, NOW_S)),
                "{value:?}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_that_does_not_verify_is_invalid_and_says_why() {
        let mut id = jwt_only();
        let mut mint = Mint::new("HS256", "acme");
        mint.hmac_secret = b"some-other-secret-entirely".to_vec();
        let result = identified(&mut id, &Headers::bearer(&mint.sign()), NOW_S);
        assert_eq!(
            result,
            Err(IdentityError::Invalid(TokenError::BadSignature.to_string()))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_header_alone_identifies_the_tenant_in_header_mode() {
        let mut id = header_only();
        let headers = Headers::new(&[("x-tenant-id", " acme ")]);
        assert_eq!(identified(&mut id, &headers, NOW_S), Ok("acme".into()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn no_header_is_a_missing_identity_in_header_mode() {
        let mut id = header_only();
        let headers = Headers::bearer(&acme_token());
        assert!(is_missing(&identified(&mut id, &headers, NOW_S)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_invalid_tenant_id_in_the_header_is_invalid() {
        let mut id = header_only();
        for value in ["acme.eu", "", "ac me", "äcme"] {
            let headers = Headers::new(&[("x-tenant-id", value)]);
            assert!(
                is_invalid(&identified(&mut id, &headers, NOW_S)),
                "{value:?}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_untrusted_header_is_ignored_in_favour_of_the_token() {
        let mut id = both(false);
        let headers = Headers::new(&[
            ("x-tenant-id", "globex"),
            ("authorization", &format!("Bearer {}", acme_token())),
        ]);
        assert_eq!(identified(&mut id, &headers, NOW_S), Ok("acme".into()));
        let header_only = Headers::new(&[("x-tenant-id", "globex")]);
        assert!(is_missing(&identified(&mut id, &header_only, NOW_S)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_trusted_header_wins_over_the_token() {
        let mut id = both(true);
        let headers = Headers::new(&[
            ("x-tenant-id", "globex"),
            ("authorization", &format!("Bearer {}", acme_token())),
        ]);
        assert_eq!(identified(&mut id, &headers, NOW_S), Ok("globex".into()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn without_the_trusted_header_the_token_decides() {
        let mut id = both(true);
        let headers = Headers::bearer(&acme_token());
        assert_eq!(identified(&mut id, &headers, NOW_S), Ok("acme".into()));
        assert!(is_missing(&identified(&mut id, &Headers::default(), NOW_S)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_invalid_trusted_header_is_invalid_even_with_a_good_token() {
        let mut id = both(true);
        let headers = Headers::new(&[
            ("x-tenant-id", "acme.eu"),
            ("authorization", &format!("Bearer {}", acme_token())),
        ]);
        assert!(is_invalid(&identified(&mut id, &headers, NOW_S)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn only_the_headers_that_can_decide_are_read() {
        let read =
            |id: &TenantIdentifier| id.headers_read().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(read(&jwt_only()), ["authorization"]);
        assert_eq!(read(&header_only()), ["x-tenant-id"]);
        assert_eq!(read(&both(false)), ["authorization"]);
        assert_eq!(read(&both(true)), ["x-tenant-id", "authorization"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_verified_token_is_served_from_the_cache() {
        // A token valid from NOW_S: verified afresh a day earlier it is refused (not
        // yet valid); once verified at NOW_S the cache answers for it, so an earlier
        // clock reading (a skewed worker) no longer reaches the verifier.
        let mut mint = Mint::new("ES256", "acme");
        mint.not_before = Some(NOW_S);
        let headers = Headers::bearer(&mint.sign());
        let earlier = NOW_S - 86_400;

        assert!(is_invalid(&identified(&mut jwt_only(), &headers, earlier)));

        let mut id = jwt_only();
        assert_eq!(identified(&mut id, &headers, NOW_S), Ok("acme".into()));
        assert_eq!(identified(&mut id, &headers, earlier), Ok("acme".into()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_cached_token_is_refused_once_it_expires_past_the_leeway() {
        let mut id = jwt_only();
        let token = acme_token();
        let headers = Headers::bearer(&token);
        let exp = NOW_S + 3600;
        assert_eq!(identified(&mut id, &headers, NOW_S), Ok("acme".into()));
        assert_eq!(
            identified(&mut id, &headers, exp + LEEWAY_S),
            Ok("acme".into())
        );
        assert_eq!(
            identified(&mut id, &headers, exp + LEEWAY_S + 1),
            Err(IdentityError::Invalid(TokenError::Expired.to_string()))
        );
    }
}
