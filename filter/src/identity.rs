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

use std::rc::Rc;

use crate::config::{is_valid_tenant_id, IdentityConfig, JwtConfig};
use crate::jwt::{Expectations, TokenError};
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
    cache: VerifiedTokenCache,
}

impl TenantIdentifier {
    /// `cache_seed` keys the token cache's hash; draw it at random per VM.
    pub fn new(config: IdentityConfig, cache_seed: [u8; 16]) -> Self {
        let jwt = config.jwt.map(|jwt| JwtVerifier {
            expect: Expectations {
                issuer: jwt.issuer.clone(),
                audiences: jwt.audiences.clone(),
                claim: jwt.claim.clone(),
                leeway_s: jwt.leeway_s,
                require_exp: jwt.require_exp,
                max_token_bytes: jwt.max_token_bytes,
            },
            cache: VerifiedTokenCache::new(jwt.cache_size, cache_seed),
            config: jwt,
        });
        Self {
            header: config.header,
            trust_header: config.trust_header,
            jwt,
        }
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

    /// The tenant of the request whose headers are `headers`, at `now_s` (Unix s).
    pub fn identify(
        &mut self,
        headers: &impl RequestHeaders,
        now_s: u64,
    ) -> Result<Rc<str>, IdentityError> {
        let header_decides = self.jwt.is_none() || self.trust_header;
        if let Some(name) = self.header.as_deref().filter(|_| header_decides) {
            match headers.header(name) {
                Some(value) => {
                    let value = value.trim();
                    return if is_valid_tenant_id(value) {
                        Ok(Rc::from(value))
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
        jwt.tenant_of(token, now_s)
            .map_err(|e| IdentityError::Invalid(e.to_string()))
    }
}

impl JwtVerifier {
    fn tenant_of(&mut self, token: &str, now_s: u64) -> Result<Rc<str>, TokenError> {
        if token.len() > self.expect.max_token_bytes {
            return Err(TokenError::TooLarge);
        }
        if let Some(tenant) = self.cache.get(token, now_s) {
            return Ok(tenant);
        }
        let verified = self.config.keys.verify(token, &self.expect, now_s)?;
        let tenant: Rc<str> = Rc::from(verified.tenant);
        let valid_until = match verified.exp_s {
            Some(exp) => exp.saturating_add(self.expect.leeway_s),
            None => now_s.saturating_add(NO_EXP_CACHE_TTL_S),
        };
        self.cache.insert(token, tenant.clone(), valid_until);
        Ok(tenant)
    }
}

/// The token of an `authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
